//! PPO's per-token losses on CUDA against the CPU reference (`ops::ppo`): the clipped policy and
//! value losses (every statistic, the gradient left on the device) and the three KL estimators
//! with and without the clamp, on 37 x 77 tokens (not a multiple of the block) with a random
//! mask, ratios on both sides of the clip range, and a bad mask refused. f32 (the storage of
//! log-probs and values on every device). Without a GPU each test prints one skip line.

mod cuda_support;

use cuda_support::fresh_seed;
use cuda_support::tensors::{check_f32, from_values, gpu_ready};
use rlhf_tensor::Rng;
use rlhf_tensor::ops::ppo::{KlTerm, per_token_kl, policy_loss, value_loss};

const DIMS: [usize; 2] = [37, 77];

/// Random log-prob-like values, a mask keeping about 70% of tokens, all on both devices.
fn batch(seed: u64) -> [cuda_support::tensors::Input; 4] {
    let n = DIMS[0] * DIMS[1];
    let mut rng = Rng::new(seed);
    let new: Vec<f32> = (0..n).map(|_| -2.0 + rng.normal() * 0.5).collect();
    // Old values within about +-0.4 of the new ones: ratios on both sides of [0.8, 1.2].
    let old: Vec<f32> = new.iter().map(|v| v + rng.normal() * 0.2).collect();
    let target: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
    let mask: Vec<f32> = (0..n)
        .map(|_| if rng.uniform() < 0.7 { 1.0 } else { 0.0 })
        .collect();
    [new, old, target, mask].map(|v| from_values::<f32>(v, &DIMS))
}

fn close(what: &str, seed: u64, gpu: f32, cpu: f32) {
    let tol = 1e-5 * (1.0 + cpu.abs());
    assert!(
        (gpu - cpu).abs() <= tol,
        "{what}: GPU {gpu}, CPU {cpu} (seed {seed})"
    );
}

#[test]
fn ppo_losses_match_the_cpu() {
    if !gpu_ready("ppo_losses_match_the_cpu") {
        return;
    }
    let seed = fresh_seed();
    let [new, old, target, mask] = batch(seed);
    let gpu = policy_loss(&new.gpu, &old.gpu, &target.gpu, &mask.gpu, 0.2).unwrap();
    let cpu = policy_loss(&new.cpu, &old.cpu, &target.cpu, &mask.cpu, 0.2).unwrap();
    assert_eq!(gpu.kept, cpu.kept);
    assert!(
        cpu.clipfrac > 0.05 && cpu.clipfrac < 0.95,
        "{}",
        cpu.clipfrac
    );
    close("policy loss", seed, gpu.loss, cpu.loss);
    close("clipfrac", seed, gpu.clipfrac, cpu.clipfrac);
    close("approxkl", seed, gpu.approxkl, cpu.approxkl);
    close("ratio", seed, gpu.ratio_mean, cpu.ratio_mean);
    check_f32("policy grad", seed, &gpu.grad, &cpu.grad, 1.0);

    let gpu = value_loss(&new.gpu, &old.gpu, &target.gpu, &mask.gpu, 0.2).unwrap();
    let cpu = value_loss(&new.cpu, &old.cpu, &target.cpu, &mask.cpu, 0.2).unwrap();
    assert_eq!(gpu.kept, cpu.kept);
    close("value loss", seed, gpu.loss, cpu.loss);
    close("value clipfrac", seed, gpu.clipfrac, cpu.clipfrac);
    check_f32("value grad", seed, &gpu.grad, &cpu.grad, 1.0);

    for estimator in [KlTerm::K1, KlTerm::K2, KlTerm::K3] {
        for clamp in [None, Some(0.1)] {
            let g = per_token_kl(&new.gpu, &old.gpu, &mask.gpu, estimator, clamp).unwrap();
            let c = per_token_kl(&new.cpu, &old.cpu, &mask.cpu, estimator, clamp).unwrap();
            check_f32(&format!("kl {estimator:?} {clamp:?}"), seed, &g, &c, 1.0);
        }
    }
}

#[test]
fn a_bad_mask_is_refused_on_the_device() {
    if !gpu_ready("a_bad_mask_is_refused_on_the_device") {
        return;
    }
    let seed = fresh_seed();
    let [new, old, target, _] = batch(seed);
    let n = DIMS[0] * DIMS[1];
    let half = from_values::<f32>(
        (0..n).map(|i| if i == 5 { 0.5 } else { 1.0 }).collect(),
        &DIMS,
    );
    let message = policy_loss(&new.gpu, &old.gpu, &target.gpu, &half.gpu, 0.2)
        .unwrap_err()
        .to_string();
    assert!(message.contains("other than 0 and 1"), "{message}");
    assert!(value_loss(&new.gpu, &old.gpu, &target.gpu, &half.gpu, 0.2).is_err());
    assert!(per_token_kl(&new.gpu, &old.gpu, &half.gpu, KlTerm::K1, None).is_err());
}
