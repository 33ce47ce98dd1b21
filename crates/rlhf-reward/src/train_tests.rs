//! Training checks on a tiny model: a learnable preference is learned, and resuming from a
//! mid-epoch checkpoint ends bit-identical to the uninterrupted run.

use rlhf_tensor::optim::SgdConfig;
use rlhf_tensor::{Device, Rng};
use rlhf_transformer::{Gpt, GptConfig, OptimizerConfig};

use crate::batch::{Comparison, ComparisonPair};
use crate::model::{RewardModel, SequenceConfig};
use crate::objective::{ObjectiveConfig, PreferenceLoss};
use crate::train::{RewardEvent, RewardTrainConfig, RewardTrainer};

const EOS: u32 = 14;
const PAD: u32 = 15;

fn model(rules: usize, seed: u64) -> RewardModel {
    let gpt = Gpt::new(
        GptConfig::new(16, 16, 16, 1, 2),
        0,
        &mut Rng::new(seed),
        Device::Cpu,
    )
    .unwrap();
    let sequence = SequenceConfig {
        eos_token_id: EOS,
        pad_token_id: PAD,
        max_len: 16,
    };
    let rules = (0..rules).map(|i| format!("rule-{i}")).collect();
    RewardModel::from_sft(gpt, rules, sequence, &mut Rng::new(seed + 1)).unwrap()
}

/// Comparisons whose responses are ranked by how many 7s they hold (more is better); rule 0
/// is "holds a 3". K cycles through 2..=4; a prompt of 1-2 random tokens.
fn data(n: usize, seed: u64) -> Vec<Comparison> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let k = 2 + i % 3;
            let prompt: Vec<u32> = (0..1 + rng.below(2)).map(|_| rng.below(7) as u32).collect();
            let mut rows = Vec::new();
            let mut sevens = Vec::new();
            let mut labels = Vec::new();
            for j in 0..k {
                // Response j holds j sevens among filler 8s and maybe a 3.
                let mut r = prompt.clone();
                r.extend(std::iter::repeat_n(7u32, j));
                r.extend(std::iter::repeat_n(8u32, 1 + rng.below(2)));
                let three = rng.below(2) == 0;
                if three {
                    r.push(3);
                }
                r.push(EOS);
                rows.push(r);
                sevens.push(j);
                labels.push(f32::from(u8::from(three)));
            }
            let ranks: Vec<usize> = sevens.iter().map(|&s| k - 1 - s).collect();
            let pairs = (0..k)
                .flat_map(|a| (0..k).map(move |b| (a, b)))
                .filter(|&(a, b)| ranks[a] < ranks[b])
                .map(|(better, worse)| ComparisonPair {
                    better,
                    worse,
                    margin: 0.0,
                })
                .collect();
            Comparison {
                source: if i % 2 == 0 { "even" } else { "odd" }.into(),
                item_id: format!("c{i}"),
                prompt_key: format!("p{i}"),
                response_chars: rows.iter().map(Vec::len).collect(),
                rows,
                ranks,
                pairs,
                rule_mask: vec![1.0; labels.len()],
                rule_labels: labels,
            }
        })
        .collect()
}

#[test]
fn a_learnable_preference_is_learned() {
    let (train, val) = (data(48, 1), data(24, 2));
    let config = RewardTrainConfig {
        objective: ObjectiveConfig {
            rule_weight: 1.0,
            ..ObjectiveConfig::default()
        },
        lr: 3e-3,
        epochs: 8,
        batch_size: 8,
        ..RewardTrainConfig::default()
    };
    let mut trainer = RewardTrainer::new(model(1, 3), config).unwrap();
    let before = trainer.evaluate(&val).unwrap();
    let mut evals = 0;
    trainer
        .fit(&train, &val, None, &mut |e| {
            if matches!(e, RewardEvent::Eval { .. }) {
                evals += 1;
            }
        })
        .unwrap();
    let after = trainer.evaluate(&val).unwrap();
    assert_eq!(evals, 8);
    assert_eq!(trainer.step(), 8 * 6);
    assert!(after.overall.accuracy >= 0.9, "{before:?}\n{after:?}");
    assert!(after.loss < before.loss);
    assert!(after.rule_accuracy.unwrap() > 0.8, "{after:?}");
    assert_eq!(after.per_k.len(), 3);
    assert_eq!(after.per_source.len(), 2);
}

#[test]
fn resuming_mid_epoch_is_bit_identical() {
    let train = data(10, 4);
    let dir = std::env::temp_dir().join(format!("rlhf-reward-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for optimizer in [
        OptimizerConfig::Adamw(Default::default()),
        OptimizerConfig::Sgd(SgdConfig {
            momentum: 0.9,
            ..SgdConfig::default()
        }),
    ] {
        let config = RewardTrainConfig {
            objective: ObjectiveConfig {
                loss: PreferenceLoss::Kwise,
                centering: 0.01,
                rule_weight: 0.5,
            },
            optimizer,
            lr: 1e-3,
            warmup_steps: 2,
            epochs: 2,
            batch_size: 3, // 4 steps per epoch, the last of one comparison
            save_every: 3,
            ..RewardTrainConfig::default()
        };
        let mut whole = RewardTrainer::new(model(1, 5), config.clone()).unwrap();
        whole.fit(&train, &[], Some(&dir), &mut |_| {}).unwrap();
        assert_eq!(whole.step(), 8);
        // checkpoint-3 is mid-epoch; checkpoint-4 is the end of epoch 1.
        for from in ["checkpoint-3", "checkpoint-4", "checkpoint-6"] {
            let mut resumed =
                RewardTrainer::resume(&dir.join(from), config.clone(), Device::Cpu).unwrap();
            resumed.fit(&train, &[], None, &mut |_| {}).unwrap();
            assert_eq!(resumed.model, whole.model, "resumed from {from}");
            let losses = |t: &RewardTrainer| -> Vec<(f32, f32, f32)> {
                t.history()
                    .iter()
                    .map(|l| (l.loss, l.grad_norm, l.lr))
                    .collect()
            };
            assert_eq!(losses(&resumed), losses(&whole));
        }
        let final_model = RewardModel::load(&dir, Device::Cpu).unwrap();
        assert_eq!(final_model, whole.model);
        let other = RewardTrainConfig {
            lr: 5e-3,
            ..config.clone()
        };
        let err = RewardTrainer::resume(&dir.join("checkpoint-3"), other, Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("other settings"), "{err}");
        let mut wrong_data =
            RewardTrainer::resume(&dir.join("checkpoint-3"), config, Device::Cpu).unwrap();
        assert!(wrong_data.train_step(&train[..5]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The trunk options: a zero trunk learning-rate scale moves only the heads, a half scale moves
/// the trunk by half the full step, the LM term is logged, and a resumed run keeps the options.
#[test]
fn trunk_options_scale_the_trunk_step_and_survive_resume() {
    use crate::read::RewardRead;
    use crate::trunk::TrunkTraining;
    let train = data(6, 6);
    let config = RewardTrainConfig {
        lr: 1e-2,
        batch_size: 3,
        epochs: 1,
        ..RewardTrainConfig::default()
    };
    let start = model(1, 7).with_read(RewardRead::GatedLikelihood).unwrap();
    let trunk_of = |m: &RewardModel| -> Vec<f32> {
        m.gpt
            .params
            .named()
            .into_iter()
            .filter(|(n, _)| !n.starts_with("score."))
            .flat_map(|(_, t)| t.to_vec_f32())
            .collect()
    };
    let step_with = |scale: f32, lm_weight: f64| {
        let mut trainer = RewardTrainer::new(start.clone(), config.clone()).unwrap();
        trainer
            .set_trunk_training(TrunkTraining {
                lm_weight,
                trunk_lr_scale: scale,
                ..TrunkTraining::default()
            })
            .unwrap();
        let log = trainer.train_step(&train).unwrap();
        (trainer, log)
    };
    let (frozen, log) = step_with(0.0, 0.5);
    assert!(log.lm > 0.0 && (log.loss - log.preference - log.rules - log.lm).abs() < 1e-6);
    assert_eq!(trunk_of(&frozen.model), trunk_of(&start));
    assert_ne!(frozen.model.gpt.params.score, start.gpt.params.score);
    let (full, _) = step_with(1.0, 0.5);
    let (half, _) = step_with(0.5, 0.5);
    let (t0, t1, th) = (
        trunk_of(&start),
        trunk_of(&full.model),
        trunk_of(&half.model),
    );
    let moved: f32 = t0.iter().zip(&t1).map(|(a, b)| (a - b).abs()).sum();
    assert!(moved > 0.0);
    for ((a, b), h) in t0.iter().zip(&t1).zip(&th) {
        assert!((h - (a + 0.5 * (b - a))).abs() < 1e-6);
    }
    assert_eq!(half.model.gpt.params.score, full.model.gpt.params.score);
    // The options are saved with the state and cannot change mid-run.
    let dir = std::env::temp_dir().join(format!("rlhf-reward-trunk-{}", std::process::id()));
    half.save(&dir).unwrap();
    let mut resumed = RewardTrainer::resume(&dir, config, Device::Cpu).unwrap();
    assert_eq!(resumed.trunk_training().trunk_lr_scale, 0.5);
    assert_eq!(resumed.model.head.read, RewardRead::GatedLikelihood);
    assert!(
        resumed
            .set_trunk_training(TrunkTraining::default())
            .is_err()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
