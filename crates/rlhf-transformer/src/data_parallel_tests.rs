//! Data parallel with ranks as threads over the TCP ring: the same loss curve and weights as one
//! process with the same global batch, ZeRO-1 on and off alike, single-format checkpoints.

use std::path::PathBuf;
use std::time::Duration;

use rlhf_tensor::dist::Communicator;
use rlhf_tensor::{Device, Rng};

use crate::{DataParallel, Example, Gpt, GptConfig, StepLog, TrainConfig, Trainer, pack};

fn model() -> Gpt {
    // Two blocks, so the bucketed reduction has several units.
    Gpt::new(
        GptConfig::new(12, 16, 16, 2, 2),
        0,
        &mut Rng::new(3),
        Device::Cpu,
    )
    .unwrap()
}

/// Examples of varied length, so ranks score different token counts.
fn corpus() -> Vec<Example> {
    let stream: Vec<u32> = (0..500u32).map(|i| (i * 7 % 11 + i / 13) % 12).collect();
    let mut examples = pack(&stream, 12).unwrap();
    for (i, e) in examples.iter_mut().enumerate() {
        let keep = 5 + i % 8;
        e.tokens.truncate(keep);
        e.loss_mask.truncate(keep);
    }
    examples
}

fn config() -> TrainConfig {
    let mut c = TrainConfig::new(2e-2, 4, 12);
    c.batch_size = 5; // not divisible by 2: ranks take 3 and 2 examples
    c.grad_accum_steps = 2;
    c.max_grad_norm = Some(0.5); // clipping is active
    c
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rlhf-dp-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Trains `steps` steps on `world` ranks (threads); returns every rank's history and weights,
/// saving to `save` (rank 0 writes) when given.
fn train_on_ranks(
    tag: &str,
    world: usize,
    zero1: bool,
    save: Option<&std::path::Path>,
) -> Vec<(Vec<StepLog>, Vec<f32>)> {
    let dir = scratch(tag);
    let data = corpus();
    let out = std::thread::scope(|s| {
        let handles: Vec<_> = (0..world)
            .map(|rank| {
                let (dir, data) = (&dir, &data);
                s.spawn(move || {
                    let comm =
                        Communicator::tcp(dir, rank, world, tag, Duration::from_secs(30)).unwrap();
                    // Tiny buckets: the per-block overlap path with several buckets in flight.
                    let parallel = DataParallel::new(comm).zero1(zero1).bucket_bytes(2048);
                    let mut trainer = Trainer::new(model(), config()).unwrap();
                    trainer.set_data_parallel(parallel).unwrap();
                    trainer.fit(data, &[], save, &mut |_| {}).unwrap();
                    (trainer.history().to_vec(), weights(&trainer.model))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn weights(model: &Gpt) -> Vec<f32> {
    model
        .params
        .tensors()
        .iter()
        .flat_map(|t| t.to_vec_f32())
        .collect()
}

fn single() -> (Vec<StepLog>, Vec<f32>) {
    let mut trainer = Trainer::new(model(), config()).unwrap();
    trainer.fit(&corpus(), &[], None, &mut |_| {}).unwrap();
    (trainer.history().to_vec(), weights(&trainer.model))
}

/// The largest |a - b| over the weights (printed with where it is). Weights are O(0.02..1);
/// Adam turns rounding-level gradient differences on near-zero gradients into update
/// differences of a few 1e-6, so this is the meaningful scale, not an element-wise ratio.
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let (mut worst, mut at) = (0.0f32, 0);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if (x - y).abs() > worst {
            (worst, at) = ((x - y).abs(), i);
        }
    }
    println!(
        "max |weight difference| {worst:e} at {at}: {} vs {}",
        a[at], b[at]
    );
    worst
}

/// The step records without their wall times.
fn curve(history: &[StepLog]) -> Vec<(u64, f32, f32, f32, usize)> {
    history
        .iter()
        .map(|s| (s.step, s.loss, s.lr, s.grad_norm, s.tokens))
        .collect()
}

#[test]
fn two_ranks_follow_the_single_process_loss_curve() {
    let (reference, reference_weights) = single();
    let ranks = train_on_ranks("two", 2, false, None);
    for (history, w) in &ranks {
        for (a, b) in history.iter().zip(&reference) {
            assert_eq!(a.tokens, b.tokens, "global token count");
            let rel = ((a.loss - b.loss) / b.loss).abs();
            println!(
                "step {}: loss {} vs {} (relative {rel:e})",
                a.step, a.loss, b.loss
            );
            assert!(
                rel < 1e-5,
                "step {}: loss {} vs {} ({rel:e})",
                a.step,
                a.loss,
                b.loss
            );
            assert!(((a.grad_norm - b.grad_norm) / b.grad_norm).abs() < 1e-5);
        }
        assert!(max_abs_diff(w, &reference_weights) < 1e-5);
    }
    // The ring gives every rank the same bits, so the replicas never drift apart.
    assert_eq!(ranks[0].1, ranks[1].1);
}

#[test]
fn zero1_matches_plain_data_parallel_and_saves_the_single_format() {
    let plain = scratch("plain-ckpt");
    let sharded = scratch("zero1-ckpt");
    let without = train_on_ranks("z-off", 2, false, Some(&plain));
    let with = train_on_ranks("z-on", 3, true, Some(&sharded));
    assert!(max_abs_diff(&with[0].1, &without[0].1) < 1e-5);
    assert_eq!(with[0].1, with[2].1);
    for (a, b) in with[0].0.iter().zip(&without[0].0) {
        assert!(((a.loss - b.loss) / b.loss).abs() < 1e-5);
    }
    // Both checkpoints hold full per-parameter moments, and either resumes in one process.
    let resumed = |dir: &PathBuf| {
        let mut t = Trainer::resume(dir, config(), Device::Cpu).unwrap();
        let names: Vec<String> = t.model.params.named().into_iter().map(|(n, _)| n).collect();
        let moments: Vec<f32> = t
            .optimizer
            .named_state("", &names)
            .iter()
            .flat_map(|(_, m)| m.to_vec_f32())
            .collect();
        assert_eq!(moments.len(), 2 * t.model.params.numel());
        t.config.total_steps = 5;
        t.fit(&corpus(), &[], None, &mut |_| {}).unwrap();
        assert_eq!(t.step(), 5);
        (moments, weights(&t.model))
    };
    let (sharded_moments, sharded_weights) = resumed(&sharded);
    let (plain_moments, plain_weights) = resumed(&plain);
    assert!(max_abs_diff(&sharded_moments, &plain_moments) < 1e-6);
    assert!(max_abs_diff(&sharded_weights, &plain_weights) < 1e-5);
    let _ = std::fs::remove_dir_all(&plain);
    let _ = std::fs::remove_dir_all(&sharded);
}

#[test]
fn world_size_one_is_the_single_process_path_and_small_batches_are_refused() {
    let mut trainer = Trainer::new(model(), config()).unwrap();
    trainer
        .set_data_parallel(DataParallel::new(Communicator::Single))
        .unwrap();
    trainer.fit(&corpus(), &[], None, &mut |_| {}).unwrap();
    let (history, w) = single();
    assert_eq!(curve(trainer.history()), curve(&history));
    assert_eq!(weights(&trainer.model), w);

    let dir = scratch("small");
    let errors: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|rank| {
                let dir = &dir;
                s.spawn(move || {
                    let comm =
                        Communicator::tcp(dir, rank, 2, "small", Duration::from_secs(30)).unwrap();
                    let mut c = config();
                    c.batch_size = 1;
                    let mut trainer = Trainer::new(model(), c).unwrap();
                    trainer
                        .set_data_parallel(DataParallel::new(comm))
                        .unwrap_err()
                        .to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(errors[0].contains("batch_size"), "{}", errors[0]);
    let _ = std::fs::remove_dir_all(&dir);
}
