//! The trainer end to end on a tiny model: exact resume, the non-finite guard, learning a
//! rewarded token, critic layouts and PPO-ptx.

mod common;

use common::*;
use rlhf_ppo::{CriticKind, PpoConfig, PpoEvent, PpoTrainer, StepRecord, TrainError, train_ppo};
use rlhf_reward::{Episode, RewardFunction};
use rlhf_transformer::Gpt;

fn params_bits(model: &Gpt) -> Vec<u32> {
    model
        .params
        .tensors()
        .iter()
        .flat_map(|t| t.to_vec_f32())
        .map(f32::to_bits)
        .collect()
}

/// The records without the wall-clock parts.
fn comparable(history: &[StepRecord]) -> Vec<StepRecord> {
    history
        .iter()
        .map(|r| StepRecord {
            timing: Default::default(),
            tokens_per_second: 0.0,
            ..r.clone()
        })
        .collect()
}

#[test]
fn resume_is_exact() {
    for (critic, ptx_coef, adaptive) in [
        (CriticKind::Separate, 0.5, true),
        (CriticKind::Shared, 0.0, false),
    ] {
        let config = PpoConfig {
            critic,
            ptx_coef,
            adap_kl_ctrl: adaptive,
            target: 0.5,
            horizon: 100.0,
            ..config()
        };
        let straight_dir = workdir(&format!("straight-{critic:?}"));
        let mut straight = PpoTrainer::new(setup(config.clone(), good_token_reward())).unwrap();
        assert_eq!(straight.total_steps(), 4);
        straight.fit(Some(&straight_dir), &mut |_| {}).unwrap();

        let split_dir = workdir(&format!("split-{critic:?}"));
        let mut first = PpoTrainer::new(setup(config.clone(), good_token_reward())).unwrap();
        for _ in 0..2 {
            first.train_step(&mut |_| {}).unwrap();
        }
        first.save(&split_dir).unwrap();
        drop(first);
        let mut second =
            PpoTrainer::resume(setup(config.clone(), good_token_reward()), &split_dir).unwrap();
        assert_eq!(second.step(), 2);
        second.fit(Some(&split_dir), &mut |_| {}).unwrap();

        assert_eq!(
            params_bits(straight.policy_with_heads()),
            params_bits(second.policy_with_heads()),
            "{critic:?}: policy weights differ after resume"
        );
        if let (Some(a), Some(b)) = (straight.critic(), second.critic()) {
            assert_eq!(params_bits(a), params_bits(b), "critic weights differ");
        }
        assert_eq!(comparable(straight.history()), comparable(second.history()));
        // TRL's linear decay: the peak at the first step, peak (1 - s / N) at step s.
        let lrs: Vec<f64> = straight.history().iter().map(|r| r.lr).collect();
        for (lr, want) in lrs.iter().zip([3e-3, 2.25e-3, 1.5e-3, 0.75e-3]) {
            assert!((lr - want).abs() < 1e-9, "{lrs:?}");
        }
        assert_eq!(straight.kl_coef(), second.kl_coef());
        if adaptive {
            assert_ne!(straight.kl_coef(), config.kl_coef, "the controller moved");
        }
        // metrics.jsonl holds every step once, in order, with TRL's names.
        let lines = std::fs::read_to_string(split_dir.join("metrics.jsonl")).unwrap();
        let steps: Vec<u64> = lines
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(steps, vec![1, 2, 3, 4]);
        for name in [
            "objective/kl",
            "loss/value_avg",
            "val/var_explained",
            "timing/generation",
            "tokens/s",
        ] {
            assert!(lines.contains(name), "{name} missing");
        }
        assert_eq!(lines.contains("ptx_loss"), ptx_coef > 0.0);
        assert!(split_dir.join("policy/model.safetensors").is_file());
        let saved = Gpt::load(&split_dir.join("policy"), rlhf_tensor::Device::Cpu).unwrap();
        assert_eq!(
            saved.params.n_scalar_heads(),
            0,
            "the final policy is a plain LM"
        );
    }
}

#[test]
fn resume_refuses_another_reference_or_settings() {
    let dir = workdir("refuse");
    let mut trainer = PpoTrainer::new(setup(config(), good_token_reward())).unwrap();
    trainer.train_step(&mut |_| {}).unwrap();
    trainer.save(&dir).unwrap();
    let mut other = setup(config(), good_token_reward());
    other.policy = tiny_model(2, 0.0);
    let err = PpoTrainer::resume(other, &dir).err().unwrap().to_string();
    assert!(err.contains("reference"), "{err}");
    let changed = PpoConfig {
        cliprange: 0.3,
        ..config()
    };
    let err = PpoTrainer::resume(setup(changed, good_token_reward()), &dir)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("cliprange = 0.2"), "{err}");
}

/// Scores every episode with a fixed value.
struct Constant(f32);

impl RewardFunction for Constant {
    fn name(&self) -> &str {
        "constant"
    }
    fn score(&mut self, episodes: &[Episode<'_>]) -> rlhf_reward::Result<Vec<f32>> {
        Ok(vec![self.0; episodes.len()])
    }
}

#[test]
fn non_finite_updates_are_skipped_and_stop_the_run() {
    // A score of 1e38 makes the value loss overflow: every update is skipped, the weights stay
    // as they were, and the run stops at the limit.
    let config = PpoConfig {
        max_skipped_updates: 3,
        ..config()
    };
    let mut trainer = PpoTrainer::new(setup(config.clone(), Box::new(Constant(1e38)))).unwrap();
    let before = params_bits(trainer.policy_with_heads());
    let mut skipped = Vec::new();
    let err = trainer
        .fit(None, &mut |event| {
            if let PpoEvent::Skipped { step, reason } = event {
                skipped.push((*step, reason.clone()));
            }
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::NonFinite {
                skipped: 3,
                limit: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(skipped.len(), 3);
    assert!(skipped.iter().all(|(step, _)| *step == 1), "{skipped:?}");
    assert!(
        skipped[0].1.contains("inf") || skipped[0].1.contains("NaN"),
        "{skipped:?}"
    );
    assert_eq!(before, params_bits(trainer.policy_with_heads()));

    // A NaN score skips the whole step (no update at all) and says so.
    let mut trainer = PpoTrainer::new(setup(
        PpoConfig {
            max_skipped_updates: 10,
            ..config
        },
        Box::new(Constant(f32::NAN)),
    ))
    .unwrap();
    let mut events = Vec::new();
    let record = trainer
        .train_step(&mut |e| {
            if let PpoEvent::Skipped { reason, .. } = e {
                events.push(reason.clone());
            }
        })
        .unwrap();
    assert!(record.is_none());
    assert_eq!(trainer.step(), 1);
    assert!(events[0].contains("NaN"), "{events:?}");
    assert_eq!(before, params_bits(trainer.policy_with_heads()));
}

#[test]
fn ppo_learns_the_rewarded_token_within_the_kl_budget() {
    let config = PpoConfig {
        learning_rate: 1e-2,
        total_episodes: Some(8 * 12),
        kl_coef: 0.02,
        ..config()
    };
    let outcome = train_ppo(setup(config, good_token_reward()), None, false, &mut |_| {}).unwrap();
    let m = &outcome.metrics;
    let first: f64 = m[..3].iter().map(|r| r.metrics.scores).sum::<f64>() / 3.0;
    let last: f64 = m[m.len() - 3..]
        .iter()
        .map(|r| r.metrics.scores)
        .sum::<f64>()
        / 3.0;
    assert!(last > first + 0.2, "score {first:.3} -> {last:.3}");
    assert!(
        m.iter()
            .all(|r| r.metrics.kl.is_finite() && r.skipped_updates == 0)
    );
    assert!(m.last().unwrap().metrics.kl > 0.0);
    assert_eq!(outcome.policy.params.n_scalar_heads(), 0);
}

#[test]
fn critic_starts_from_the_given_model_and_bad_setups_are_refused() {
    let mut rm = tiny_model(7, 0.0);
    rm.params.score = Some(rlhf_transformer::ScalarHeads {
        weight: rlhf_tensor::Tensor::full([1, 8], 0.25, rlhf_tensor::Device::Cpu).unwrap(),
        bias: rlhf_tensor::Tensor::full([1], 0.5, rlhf_tensor::Device::Cpu).unwrap(),
    });
    let mut s = setup(config(), good_token_reward());
    s.critic_init = Some(rm.clone());
    let trainer = PpoTrainer::new(s).unwrap();
    assert_eq!(params_bits(trainer.critic().unwrap()), params_bits(&rm));

    let mut s = setup(
        PpoConfig {
            critic: CriticKind::Shared,
            ..config()
        },
        good_token_reward(),
    );
    s.critic_init = Some(rm);
    let err = PpoTrainer::new(s).err().unwrap().to_string();
    assert!(err.contains("`critic`"), "{err}");

    let mut s = setup(config(), good_token_reward());
    s.prompts[3].tokens.push(40);
    let err = PpoTrainer::new(s).err().unwrap().to_string();
    assert!(err.contains("prompt 3") && err.contains("40"), "{err}");

    let s = setup(
        PpoConfig {
            response_length: 30,
            ..config()
        },
        good_token_reward(),
    );
    let err = PpoTrainer::new(s).err().unwrap().to_string();
    assert!(err.contains("n_positions"), "{err}");

    let mut s = setup(
        PpoConfig {
            ptx_coef: 1.0,
            ..config()
        },
        good_token_reward(),
    );
    s.ptx_data.clear();
    let err = PpoTrainer::new(s).err().unwrap().to_string();
    assert!(err.contains("ptx_coef"), "{err}");

    let s = setup(
        PpoConfig {
            ptx_coef: 1.0,
            ptx_seq_len: 100,
            ..config()
        },
        good_token_reward(),
    );
    let err = PpoTrainer::new(s).err().unwrap().to_string();
    assert!(
        err.contains("ptx_seq_len") && err.contains("n_positions"),
        "{err}"
    );
}
