//! One PPO step (rollout of 16 episodes + 4 epochs x 2 minibatches) on a small GPT (V 512,
//! C 64, 2 layers, 16-token prompts, responses up to 32 tokens, separate critic), and the share of
//! the step spent in generation (goal: under half). The baseline in the same run is the
//! generation alone, so the ratio printed is the generation share measured by criterion.
//!
//! `cargo bench -p rlhf-ppo --bench ppo_step`

use criterion::{Criterion, criterion_group, criterion_main};
use rlhf_ppo::{PpoConfig, PpoPrompt, PpoSetup, PpoTrainer};
use rlhf_reward::{Episode, FnReward};
use rlhf_tensor::{Device, Rng};
use rlhf_transformer::{Gpt, GptConfig};

const VOCAB: usize = 512;

fn setup() -> PpoSetup {
    let mut rng = Rng::new(0);
    let policy = Gpt::new(
        GptConfig::new(VOCAB, 64, 64, 2, 4),
        0,
        &mut rng,
        Device::Cpu,
    )
    .unwrap();
    let prompts = (0..64)
        .map(|_| {
            let tokens: Vec<u32> = (0..16).map(|_| 2 + rng.below(VOCAB - 2) as u32).collect();
            PpoPrompt {
                text: String::new(),
                tokens,
            }
        })
        .collect();
    PpoSetup {
        config: PpoConfig {
            per_device_train_batch_size: 8,
            num_mini_batches: 2,
            response_length: 32,
            total_episodes: Some(1 << 30),
            learning_rate: 1e-4,
            ..PpoConfig::default()
        },
        policy,
        reference: None,
        critic_init: None,
        reward: Box::new(FnReward::new("length", |e: &Episode<'_>| {
            Ok(e.response_tokens.len() as f32 / 32.0)
        })),
        decode: Box::new(|t: &[u32]| Ok(format!("{t:?}"))),
        prompts,
        ptx_data: Vec::new(),
        eos_token_id: 0,
        pad_token_id: 1,
    }
}

fn bench(c: &mut Criterion) {
    let mut trainer = PpoTrainer::new(setup()).unwrap();
    let mut group = c.benchmark_group("ppo_step");
    group.sample_size(10);
    group.bench_function("step (B 16, R 32, 4 epochs)", |b| {
        b.iter(|| trainer.train_step(&mut |_| {}).unwrap())
    });
    let policy = trainer.policy();
    let spec = trainer.sample_spec();
    let prompts: Vec<Vec<u32>> = (0..16)
        .map(|i| (0..16).map(|j| 2 + ((i * 7 + j) % 500) as u32).collect())
        .collect();
    let refs: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
    group.bench_function("generation alone (B 16, R 32)", |b| {
        let mut rng = Rng::new(1);
        b.iter(|| rlhf_ppo::rollout::sample(&policy, &refs, &spec, &mut rng).unwrap())
    });
    group.finish();
    let history = trainer.history();
    let n = history.len() as f64;
    let mean = |f: &dyn Fn(&rlhf_ppo::Timing) -> f64| {
        history.iter().map(|r| f(&r.timing)).sum::<f64>() / n
    };
    let (generation, fwd, score, train) = (
        mean(&|t| t.generation),
        mean(&|t| t.rollout_forward),
        mean(&|t| t.scoring),
        mean(&|t| t.training),
    );
    let total = generation + fwd + score + train;
    println!(
        "ppo_step timing over {n} steps: generation {:.1} ms ({:.0}%), rollout forwards {:.1} ms ({:.0}%), scoring {:.2} ms, training {:.1} ms ({:.0}%); mean response {:.1} tokens",
        generation * 1e3,
        100.0 * generation / total,
        fwd * 1e3,
        100.0 * fwd / total,
        score * 1e3,
        train * 1e3,
        100.0 * train / total,
        history
            .iter()
            .map(|r| r.metrics.response_length)
            .sum::<f64>()
            / n,
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
