//! A tiny PPO world for the trainer's tests: a vocabulary of 12 tokens (0 = EOS, 1 = PAD),
//! random prompts of 2-4 tokens, and a reward that counts how often the response says token 3.

#![allow(dead_code)]

use rlhf_ppo::{PpoConfig, PpoPrompt, PpoSetup};
use rlhf_reward::{Episode, FnReward, RewardFunction};
use rlhf_tensor::{Device, Rng, Tensor};
use rlhf_transformer::{Example, Gpt, GptConfig};

pub const VOCAB: usize = 12;
pub const EOS: u32 = 0;
pub const PAD: u32 = 1;
pub const GOOD: u32 = 3;

/// A tiny GPT; `noise` > 0 replaces weights by N(0, noise) (LayerNorm scales stay near 1) so
/// every gradient is far from zero.
pub fn tiny_model(seed: u64, noise: f32) -> Gpt {
    let mut rng = Rng::new(seed);
    let mut model = Gpt::new(GptConfig::new(VOCAB, 24, 8, 2, 2), 0, &mut rng, Device::Cpu).unwrap();
    if noise > 0.0 {
        for (name, t) in model.params.named_mut() {
            let draw = Tensor::randn(t.dims(), noise, &mut rng, Device::Cpu).unwrap();
            if name.contains("ln_") {
                t.add_assign(&draw).unwrap();
            } else {
                *t = draw;
            }
        }
    }
    model
}

/// 16 prompts of 2-4 tokens from 2..VOCAB.
pub fn prompts() -> Vec<PpoPrompt> {
    let mut rng = Rng::new(99);
    (0..16)
        .map(|i| {
            let len = 2 + i % 3;
            let tokens: Vec<u32> = (0..len).map(|_| 2 + rng.below(VOCAB - 2) as u32).collect();
            PpoPrompt {
                text: decode(&tokens),
                tokens,
            }
        })
        .collect()
}

/// Tokens as letters ('a' + id).
pub fn decode(tokens: &[u32]) -> String {
    tokens.iter().map(|&t| (b'a' + t as u8) as char).collect()
}

/// Share of the response's tokens that are GOOD (the letter 'd').
pub fn good_token_reward() -> Box<dyn RewardFunction> {
    Box::new(FnReward::new("count-d", |e: &Episode<'_>| {
        let n = e.response_tokens.len().max(1) as f32;
        Ok(e.response.chars().filter(|&c| c == 'd').count() as f32 / n)
    }))
}

/// Pretraining sequences for PPO-ptx: counting patterns.
pub fn ptx_data() -> Vec<Example> {
    (0..8)
        .map(|i| {
            Example::full(
                (0..10)
                    .map(|j| 2 + ((i + j) % (VOCAB - 2)) as u32)
                    .collect(),
            )
        })
        .collect()
}

/// A small config: 8 episodes per step in 2 minibatches of 2 x 2 micro-batches.
pub fn config() -> PpoConfig {
    PpoConfig {
        seed: 5,
        learning_rate: 3e-3,
        per_device_train_batch_size: 2,
        gradient_accumulation_steps: 2,
        num_mini_batches: 2,
        num_ppo_epochs: 2,
        total_episodes: Some(32),
        response_length: 6,
        temperature: 1.0,
        local_rollout_forward_batch_size: 3,
        ptx_seq_len: 10,
        ..PpoConfig::default()
    }
}

/// A setup on the tiny world with `reward`.
pub fn setup(config: PpoConfig, reward: Box<dyn RewardFunction>) -> PpoSetup {
    PpoSetup {
        config,
        policy: tiny_model(1, 0.0),
        reference: None,
        critic_init: None,
        reward,
        decode: Box::new(|t: &[u32]| Ok(decode(t))),
        prompts: prompts(),
        ptx_data: ptx_data(),
        eos_token_id: EOS,
        pad_token_id: PAD,
    }
}

/// A fresh temporary directory.
pub fn workdir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rlhf-ppo-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
