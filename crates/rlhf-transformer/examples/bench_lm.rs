//! The Rust side of `benches/transformer_vs_torch.py`: times a training step (forward, backward,
//! AdamW) and KV-cache generation on a random GPT-2 and prints one JSON line per measurement.
//!
//! `bench_lm step LAYERS HEADS EMBD VOCAB BATCH SEQ ITERS`
//! `bench_lm generate LAYERS HEADS EMBD VOCAB PROMPTS NEW ITERS`
//! `bench_lm decode-curve LAYERS HEADS EMBD VOCAB BATCH` (time per token at growing context)

use std::time::Instant;

use rlhf_tensor::optim::{AdamW, AdamWConfig};
use rlhf_tensor::{Device, Rng};
use rlhf_transformer::{
    GenerationConfig, Gpt, GptConfig, KvCache, ModelInput, Sampling, ShardGrads, next_token_targets,
};

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn model(args: &[usize], n_positions: usize) -> Gpt {
    let config = GptConfig::new(args[3], n_positions, args[2], args[0], args[1]);
    Gpt::new(config, 0, &mut Rng::new(0), Device::Cpu).expect("valid config")
}

fn main() {
    // As the `rlhf` binary does: freed buffers stay mapped between steps.
    rlhf_tensor::host_memory::retain_freed_memory();
    let argv: Vec<String> = std::env::args().collect();
    let nums: Vec<usize> = argv[2..]
        .iter()
        .map(|a| a.parse().expect("a number"))
        .collect();
    let mut rng = Rng::new(1);
    match argv[1].as_str() {
        "step" => {
            let (b, t, iters) = (nums[4], nums[5], nums[6]);
            let mut m = model(&nums, t.max(1024));
            let tokens: Vec<u32> = (0..b * t).map(|_| rng.below(nums[3]) as u32).collect();
            let input = ModelInput::dense(tokens, b, t).unwrap();
            let targets = next_token_targets(&input, None).unwrap();
            let mut opt = AdamW::new(AdamWConfig::default());
            let mut grads = m.params.zeros_like().unwrap();
            let mut scratch = ShardGrads::default();
            let mut times = Vec::new();
            for i in 0..iters + 1 {
                let start = Instant::now();
                grads.fill_zero();
                // The trainer's pass: data-parallel shards on the CPU for small models.
                m.lm_forward_backward(&input, &targets, 1.0, &mut grads, &mut scratch)
                    .unwrap();
                let g = grads.tensors();
                opt.step(&mut m.params.tensors_mut(), &g).unwrap();
                if i > 0 {
                    times.push(start.elapsed().as_secs_f64()); // the first step warms up
                }
            }
            let s = median(times);
            println!(
                "{{\"what\": \"step\", \"seconds\": {s}, \"tokens_per_s\": {}}}",
                (b * t) as f64 / s
            );
        }
        "generate" => {
            let (prompts, new, iters) = (nums[4], nums[5], nums[6]);
            let m = model(&nums, 1024);
            // Prompts of 4..=11 tokens, left padded together.
            let batch: Vec<Vec<u32>> = (0..prompts)
                .map(|i| (0..4 + i % 8).map(|_| rng.below(nums[3]) as u32).collect())
                .collect();
            let config = GenerationConfig {
                max_new_tokens: new,
                sampling: Sampling::greedy(),
                eos_token_id: None,
                pad_token_id: 0,
                seed: 0,
            };
            let mut times = Vec::new();
            for i in 0..iters + 1 {
                let start = Instant::now();
                let out = m.generate(&batch, &config).unwrap();
                assert_eq!(out.steps, new);
                if i > 0 {
                    times.push(start.elapsed().as_secs_f64());
                }
            }
            let s = median(times);
            println!(
                "{{\"what\": \"generate\", \"seconds\": {s}, \"tokens_per_s\": {}}}",
                (prompts * new) as f64 / s
            );
        }
        "decode-curve" => {
            let b = nums[4];
            let m = model(&nums, 1024);
            let mut cache = KvCache::new(&m, b, 1024).unwrap();
            let mask = vec![true; b];
            let mut report = Vec::new();
            for len in 0..1024u32 {
                let tokens: Vec<u32> = (0..b).map(|_| rng.below(nums[3]) as u32).collect();
                let start = Instant::now();
                m.forward_cached(&mut cache, &tokens, &mask, &vec![len; b])
                    .unwrap();
                let dt = start.elapsed().as_secs_f64();
                if [63, 127, 255, 511, 1023].contains(&len) {
                    report.push(format!("\"{}\": {dt}", len + 1));
                }
            }
            println!(
                "{{\"what\": \"decode-curve\", \"seconds_per_step_at_length\": {{{}}}}}",
                report.join(", ")
            );
        }
        other => panic!("unknown mode {other}"),
    }
}
