//! Training end to end on tiny models: learning, accumulation equivalence, exact resume.

use rlhf_tensor::optim::SgdConfig;
use rlhf_tensor::{Device, Rng};

use crate::{Example, Gpt, GptConfig, OptimizerConfig, TrainConfig, TrainEvent, Trainer, pack};

fn tiny() -> Gpt {
    Gpt::new(
        GptConfig::new(12, 16, 16, 1, 2),
        0,
        &mut Rng::new(1),
        Device::Cpu,
    )
    .unwrap()
}

/// A corpus with structure: counting runs of varied length.
fn corpus() -> Vec<Example> {
    let stream: Vec<u32> = (0..400u32).map(|i| (i * 7 % 11 + i / 11) % 12).collect();
    pack(&stream, 12).unwrap()
}

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rlhf-train-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn pretraining_lowers_training_and_validation_loss() {
    let data = corpus();
    let mut config = TrainConfig::new(3e-2, 40, 12);
    config.warmup_steps = 4;
    config.batch_size = 4;
    let mut trainer = Trainer::new(tiny(), config).unwrap();
    let before = trainer.evaluate(&data).unwrap();
    let mut evals = Vec::new();
    trainer
        .fit(&data, &data, None, &mut |e| {
            if let TrainEvent::Eval(e) = e {
                evals.push(*e);
            }
        })
        .unwrap();
    let after = evals.last().copied().unwrap();
    assert_eq!(after.step, 40);
    assert!((before.loss - 12f32.ln()).abs() < 0.2, "{before:?}");
    assert!(after.loss < before.loss - 0.8, "{before:?} -> {after:?}");
    assert!((after.perplexity - after.loss.exp()).abs() < 1e-3);
}

#[test]
fn accumulating_two_half_batches_equals_one_full_batch() {
    let data = corpus();
    let mut full = TrainConfig::new(1e-2, 2, 12);
    full.batch_size = 4;
    let mut half = full.clone();
    half.batch_size = 2;
    half.grad_accum_steps = 2;
    let mut a = Trainer::new(tiny(), full).unwrap();
    let mut b = Trainer::new(tiny(), half).unwrap();
    for _ in 0..2 {
        let la = a.train_step(&data).unwrap();
        let lb = b.train_step(&data).unwrap();
        assert_eq!(la.tokens, lb.tokens);
        assert!((la.loss - lb.loss).abs() < 1e-5, "{la:?} vs {lb:?}");
        assert!((la.grad_norm - lb.grad_norm).abs() < 1e-4 * la.grad_norm);
    }
    let (pa, pb) = (
        a.model.params.wte.to_vec_f32(),
        b.model.params.wte.to_vec_f32(),
    );
    assert!(pa.iter().zip(&pb).all(|(x, y)| (x - y).abs() < 1e-5));
}

fn resume_matches_uninterrupted(optimizer: OptimizerConfig, tag: &str) {
    let data = corpus();
    let mut config = TrainConfig::new(2e-2, 7, 12);
    config.optimizer = optimizer;
    config.batch_size = 3; // 33 examples: epochs end mid-run and reshuffle
    config.grad_accum_steps = 2;
    config.warmup_steps = 2;
    config.save_every = 3;
    config.seed = 9;
    let dir = tmpdir(tag);
    let mut straight = Trainer::new(tiny(), config.clone()).unwrap();
    straight.fit(&data, &[], Some(&dir), &mut |_| {}).unwrap();
    let mut resumed =
        Trainer::resume(&dir.join("checkpoint-6"), config.clone(), Device::Cpu).unwrap();
    assert_eq!(resumed.step(), 6);
    resumed.fit(&data, &[], None, &mut |_| {}).unwrap();
    let losses = |t: &Trainer| t.history().iter().map(|s| s.loss).collect::<Vec<_>>();
    assert_eq!(losses(&resumed), losses(&straight));
    assert_eq!(resumed.model.params, straight.model.params);
    // The final directory holds the same model as the uninterrupted run.
    assert_eq!(Gpt::load(&dir, Device::Cpu).unwrap(), straight.model);
    let mut early = Trainer::resume(&dir.join("checkpoint-3"), config, Device::Cpu).unwrap();
    early.fit(&data, &[], None, &mut |_| {}).unwrap();
    assert_eq!(losses(&early), losses(&straight));
    assert_eq!(early.model.params, straight.model.params);
}

#[test]
fn resume_continues_exactly_adamw() {
    resume_matches_uninterrupted(
        OptimizerConfig::Adamw(rlhf_tensor::optim::AdamWConfig::default()),
        "adamw",
    );
}

#[test]
fn resume_continues_exactly_sgd_momentum() {
    let sgd = SgdConfig {
        momentum: 0.9,
        ..SgdConfig::default()
    };
    resume_matches_uninterrupted(OptimizerConfig::Sgd(sgd), "sgd");
}

#[test]
fn resume_with_other_settings_is_refused() {
    let data = corpus();
    let mut config = TrainConfig::new(1e-2, 2, 12);
    config.batch_size = 2;
    let dir = tmpdir("mismatch");
    Trainer::new(tiny(), config.clone())
        .unwrap()
        .fit(&data, &[], Some(&dir), &mut |_| {})
        .unwrap();
    config.seed = 1;
    let err = Trainer::resume(&dir, config, Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("trainer_state.json"), "{err}");
}

#[test]
fn bf16_on_the_cpu_is_refused_with_a_clear_error() {
    let mut config = TrainConfig::new(1e-2, 2, 12);
    config.precision = crate::Precision::Bf16;
    let err = Trainer::new(tiny(), config).unwrap_err().to_string();
    assert!(err.contains("bf16 needs a CUDA device"), "{err}");
    assert_eq!(
        "BF16".parse::<crate::Precision>().unwrap(),
        crate::Precision::Bf16
    );
    assert!("f16".parse::<crate::Precision>().is_err());
}
