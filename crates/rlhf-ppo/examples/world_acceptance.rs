//! Acceptance of PPO on the synthetic HHH world: a small GPT is pretrained on the world's corpus
//! (which teaches facts and bad habits) and fine-tuned on its demonstrations (SFT); PPO against
//! the world's ground-truth reward must then raise the mean ground-truth score on held-out
//! prompts above the SFT model's while the KL to SFT stays bounded, for each seed; and PPO-ptx
//! must lower the rise in pretraining loss (the alignment tax) compared with plain PPO, on
//! average over the seeds (its ground-truth score and KL are reported, not judged).
//!
//! `cargo run --release -p rlhf-ppo --example world_acceptance -- [--seeds 3] [--episodes 768]`
//!
//! Prints one line per run and a summary; exits with failure when a criterion is not met.

use std::process::ExitCode;
use std::time::Instant;

use rlhf_data::tokenizer::{BpeTrainerConfig, Tokenizer, train_bpe};
use rlhf_data::world::{World, WorldConfig};
use rlhf_ppo::{EvalReport, PpoConfig, PpoPrompt, PpoSetup, SampleSpec, evaluate, train_ppo};
use rlhf_reward::{CriteriaReward, RewardFunction};
use rlhf_tensor::{Device, Rng};
use rlhf_transformer::{Example, Gpt, GptConfig, TrainConfig, Trainer, pack};

/// The KL (nats per response, to the SFT model) the PPO policy must stay within on the held-out
/// prompts: twice the controller's default target (6 nats, Ziegler et al.), to which it steers
/// the KL on the training prompts.
const KL_BOUND: f64 = 12.0;

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn world_reward(world: World) -> Box<dyn RewardFunction> {
    Box::new(CriteriaReward::ground_truth(std::sync::Arc::new(world)))
}

fn lm_train(model: Gpt, data: &[Example], steps: u64, lr: f32, seq_len: usize, pad: u32) -> Gpt {
    let mut config = TrainConfig::new(lr, steps, seq_len);
    config.batch_size = 16;
    config.pad_token_id = pad;
    config.warmup_steps = steps / 10;
    let mut trainer = Trainer::new(model, config).expect("valid LM config");
    trainer
        .fit(data, &[], None, &mut |_| {})
        .expect("LM training");
    trainer.model
}

fn main() -> ExitCode {
    let seeds: u64 = arg("--seeds", 3);
    let episodes: usize = arg("--episodes", 768);
    let sft_steps: u64 = arg("--sft-steps", 150);
    let ptx_coef: f64 = arg("--ptx-coef", 0.02);
    let started = Instant::now();
    let world = World::new(WorldConfig::default()).expect("the default world");
    let tok = train_bpe(
        world.corpus_texts(),
        &BpeTrainerConfig {
            vocab_size: 512,
            min_frequency: 2,
        },
    )
    .expect("tokenizer");
    let (eos, pad) = (tok.eos_id(), tok.pad_id());

    // Pretraining corpus: documents joined by EOS, packed into 64-token windows; the last tenth
    // is held out to measure the alignment tax.
    let mut stream = Vec::new();
    for text in world.corpus_texts() {
        stream.extend(tok.encode(text));
        stream.push(eos);
    }
    let windows = pack(&stream, 64).expect("windows");
    let held = windows.len() / 10;
    let (pretrain, held_out) = windows.split_at(windows.len() - held);
    let sft_data: Vec<Example> = world
        .demonstrations
        .iter()
        .map(|d| {
            let mut response = tok.encode(&format!(" {}", d.response));
            response.push(eos);
            Example::sft(&tok.encode(&d.prompt.render()), &response, true)
        })
        .collect();

    let config = GptConfig::new(tok.vocab_size(), 96, 64, 2, 4);
    let base = Gpt::new(config, 0, &mut Rng::new(0), Device::Cpu).expect("model");
    let base = lm_train(base, pretrain, 600, 3e-3, 64, pad);
    let sft = lm_train(base, &sft_data, sft_steps, 1e-3, 64, pad);
    println!(
        "world: {} pretraining windows, {} demonstrations, {} RL / {} eval prompts; base + SFT trained in {:.0} s",
        pretrain.len(),
        sft_data.len(),
        world.rl_prompts.len(),
        world.eval_prompts.len(),
        started.elapsed().as_secs_f64()
    );

    let to_prompts = |prompts: &[rlhf_data::world::WorldPrompt]| -> Vec<PpoPrompt> {
        prompts
            .iter()
            .map(|p| {
                let text = p.render();
                PpoPrompt {
                    tokens: tok.encode(&text),
                    text,
                }
            })
            .collect()
    };
    let rl_prompts = to_prompts(&world.rl_prompts);
    let eval_prompts = to_prompts(&world.eval_prompts);
    let decode_tok = tok.clone();
    let decode = move |ids: &[u32]| {
        decode_tok
            .decode_skip_special(ids)
            .map_err(|e| e.to_string())
    };
    let base_config = PpoConfig {
        learning_rate: arg("--lr", 5e-4),
        per_device_train_batch_size: 16,
        num_mini_batches: 2,
        total_episodes: Some(episodes),
        response_length: 20,
        kl_coef: arg("--kl-coef", 0.05),
        adap_kl_ctrl: true,
        target: arg("--target", 6.0),
        horizon: arg("--horizon", 100.0),
        ptx_batch_size: 8,
        ptx_seq_len: 64,
        ..PpoConfig::default()
    };
    let spec = SampleSpec {
        response_length: base_config.response_length,
        temperature: base_config.temperature as f32,
        stop_token_id: eos,
        pad_token_id: pad,
        chunk_rows: 64,
    };
    let measure = |policy: &Gpt, seed: u64| -> EvalReport {
        let mut reward = world_reward(world.clone());
        evaluate(
            policy,
            &sft,
            &eval_prompts,
            reward.as_mut(),
            &decode,
            &spec,
            1000 + seed,
            held_out,
        )
        .expect("evaluation")
    };

    let mut ok = true;
    let mut tax = [0.0f64; 2];
    println!(
        "| seed | run | ground-truth score | KL to SFT (held out) | KL (training, last quarter) | pretraining loss | tax | seconds |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for seed in 1..=seeds {
        let reference = measure(&sft, seed);
        println!(
            "| {seed} | SFT | {:.3} | {:.2} | - | {:.4} | - | - |",
            reference.mean_score,
            reference.kl_to_reference,
            reference.pretrain_loss.unwrap_or(f64::NAN)
        );
        for (i, ptx_coef) in [0.0, ptx_coef].into_iter().enumerate() {
            let clock = Instant::now();
            let setup = PpoSetup {
                config: PpoConfig {
                    seed,
                    ptx_coef,
                    ..base_config.clone()
                },
                policy: sft.clone(),
                reference: None,
                critic_init: None,
                reward: world_reward(world.clone()),
                decode: Box::new(decode.clone()),
                prompts: rl_prompts.clone(),
                ptx_data: pretrain.to_vec(),
                eos_token_id: eos,
                pad_token_id: pad,
            };
            let verbose = std::env::args().any(|a| a == "--verbose");
            let outcome = train_ppo(setup, None, false, &mut |event| {
                if let (true, rlhf_ppo::PpoEvent::Step(record)) = (verbose, event) {
                    eprintln!(
                        "  step {} {}",
                        record.step,
                        rlhf_ppo::progress::summary(record)
                    );
                }
            })
            .expect("PPO");
            let report = measure(&outcome.policy, seed);
            let rise = report.pretrain_loss.unwrap_or(f64::NAN)
                - reference.pretrain_loss.unwrap_or(f64::NAN);
            tax[i] += rise / seeds as f64;
            let name = if ptx_coef > 0.0 { "PPO-ptx" } else { "PPO" };
            let quarter = &outcome.metrics[outcome.metrics.len() * 3 / 4..];
            let train_kl =
                quarter.iter().map(|r| r.metrics.kl).sum::<f64>() / quarter.len().max(1) as f64;
            println!(
                "| {seed} | {name} | {:.3} | {:.2} | {train_kl:.2} | {:.4} | {rise:+.4} | {:.0} |",
                report.mean_score,
                report.kl_to_reference,
                report.pretrain_loss.unwrap_or(f64::NAN),
                clock.elapsed().as_secs_f64()
            );
            if ptx_coef == 0.0 && report.mean_score <= reference.mean_score {
                println!("FAIL: seed {seed} {name} does not beat SFT");
                ok = false;
            }
            if ptx_coef == 0.0 && report.kl_to_reference > KL_BOUND {
                println!(
                    "FAIL: seed {seed} {name} KL {:.2} > {KL_BOUND}",
                    report.kl_to_reference
                );
                ok = false;
            }
        }
    }
    println!(
        "mean alignment tax (pretraining-loss rise over SFT): PPO {:+.4}, PPO-ptx {:+.4}; total {:.0} s",
        tax[0],
        tax[1],
        started.elapsed().as_secs_f64()
    );
    if tax[1] >= tax[0] {
        println!("FAIL: PPO-ptx does not lower the alignment tax");
        ok = false;
    }
    if ok {
        println!("PASS");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
