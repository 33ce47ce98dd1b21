//! Helpers of the GPU tests: detection with the skip line, fresh seeds, device-vs-CPU checks.

#![allow(dead_code)] // each test binary uses its own subset

use rlhf_tensor::testing::{first_mismatch, to_f64};
use rlhf_tensor::{Device, Rng, Tensor, cuda};

/// The GPU every test runs on.
pub const GPU: Device = Device::Cuda(0);

/// True when GPU 0 is usable; else one skip line (a failure under `RLHF_REQUIRE_GPU=1`).
pub fn gpu_ready(test: &str) -> bool {
    if cuda::gpu_count() > 0 {
        cuda::poison_op_outputs(true);
        return true;
    }
    assert!(
        !cuda::gpu_required(),
        "{test}: RLHF_REQUIRE_GPU=1 but no CUDA GPU is usable"
    );
    println!("skip {test}: no CUDA GPU (RLHF_REQUIRE_GPU=1 makes this a failure)");
    false
}

/// A new seed every run (printed by every failure).
pub fn fresh_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7)
}

/// Fails when `actual` and `expected` differ beyond `rtol` relative plus `atol_frac` of the
/// largest expected magnitude.
#[track_caller]
pub fn close_values(
    what: &str,
    seed: u64,
    actual: &[f32],
    expected: &[f32],
    rtol: f64,
    atol_frac: f64,
) {
    assert_eq!(actual.len(), expected.len(), "{what}: length (seed {seed})");
    let (actual, expected) = (to_f64(actual), to_f64(expected));
    let peak = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let atol = atol_frac * peak.max(1e-12);
    if let Some((i, a, e)) = first_mismatch(&actual, &expected, rtol, atol) {
        panic!("{what}: element {i} is {a} on the GPU, {e} on the CPU (seed {seed})");
    }
}

/// [`close_values`] for a GPU tensor against a CPU one of the same shape.
#[track_caller]
pub fn close(what: &str, seed: u64, gpu: &Tensor, cpu: &Tensor, rtol: f64, atol_frac: f64) {
    assert_eq!(gpu.device(), GPU, "{what}: not on the GPU");
    assert_eq!(gpu.dims(), cpu.dims(), "{what}: shape");
    let actual = gpu.try_to_vec_f32().expect("download");
    close_values(what, seed, &actual, &cpu.to_vec_f32(), rtol, atol_frac);
}

/// Sequences of the given lengths with ids in 1..vocab.
pub fn random_tokens(seed: u64, lengths: &[usize], vocab: usize) -> Vec<Vec<u32>> {
    let mut rng = Rng::new(seed);
    lengths
        .iter()
        .map(|&n| (0..n).map(|_| 1 + rng.below(vocab - 1) as u32).collect())
        .collect()
}
