//! Shared helpers of the CUDA kernel tests: device gating (skip line, or failure under
//! `RLHF_REQUIRE_GPU=1`), fresh random inputs, NaN-poisoned outputs, per-dtype tolerances.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rlhf_tensor::cuda::{self, CudaDevice, CudaFloat, CudaSlice};

pub mod tensors;

/// Device 0, or None after printing one skip line (panics instead under RLHF_REQUIRE_GPU=1).
pub fn gpu(test: &str) -> Option<Arc<CudaDevice>> {
    if cuda::gpu_count() == 0 {
        assert!(
            !cuda::gpu_required(),
            "{test}: RLHF_REQUIRE_GPU=1 but no CUDA GPU is usable (driver library missing or no device)"
        );
        println!("skip {test}: no CUDA GPU (RLHF_REQUIRE_GPU=1 makes this a failure)");
        return None;
    }
    match CudaDevice::get(0) {
        Ok(dev) => Some(dev),
        Err(e) => panic!("{test}: a GPU was detected but device 0 failed: {e}"),
    }
}

/// A fresh seed per call (time-based), printed by failing checks so a failure can be replayed.
pub fn fresh_seed() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
}

/// `n` values uniform in [-scale, scale), rounded to T (so the CPU reference sees exactly what
/// the device sees).
pub fn random<T: CudaFloat>(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    rlhf_tensor::testing::random_values(seed, n)
        .into_iter()
        .map(|v| T::from_f32(v as f32 * scale).to_f32())
        .collect()
}

/// Uploads f32 host values as T.
pub fn upload<T: CudaFloat>(dev: &CudaDevice, values: &[f32]) -> CudaSlice<T> {
    let host: Vec<T> = values.iter().map(|&v| T::from_f32(v)).collect();
    dev.upload(&host).expect("upload")
}

/// A device buffer of `n` NaNs: any element a kernel fails to write stays NaN and fails the check.
pub fn poisoned<T: CudaFloat>(dev: &CudaDevice, n: usize) -> CudaSlice<T> {
    dev.full::<T>(n, f32::NAN).expect("poisoned buffer")
}

/// Downloads as f32.
pub fn download<T: CudaFloat>(dev: &CudaDevice, buffer: &CudaSlice<T>) -> Vec<f32> {
    dev.download(buffer)
        .expect("download")
        .into_iter()
        .map(CudaFloat::to_f32)
        .collect()
}

/// (rtol, atol) for outputs stored as T: f32 1e-5, bf16 1e-2.
pub fn tolerance<T: CudaFloat>() -> (f64, f64) {
    if T::SUFFIX == "f32" {
        (1e-5, 1e-5)
    } else {
        (1e-2, 1e-2)
    }
}

/// Fails with the seed, the dtype and the first bad element when `actual` and `expected` differ
/// beyond `scale` times T's tolerance.
#[track_caller]
pub fn check<T: CudaFloat>(what: &str, seed: u64, actual: &[f32], expected: &[f32], scale: f64) {
    let (rtol, atol) = tolerance::<T>();
    check_with(
        &format!("{what} [{}]", T::SUFFIX),
        seed,
        actual,
        expected,
        rtol * scale,
        atol * scale,
    );
}

/// As [`check`] with explicit tolerances.
#[track_caller]
pub fn check_with(what: &str, seed: u64, actual: &[f32], expected: &[f32], rtol: f64, atol: f64) {
    let actual = rlhf_tensor::testing::to_f64(actual);
    let expected = rlhf_tensor::testing::to_f64(expected);
    if let Some((i, a, e)) = rlhf_tensor::testing::first_mismatch(&actual, &expected, rtol, atol) {
        panic!(
            "{what}: element {i} is {a}, expected {e} (rtol {rtol}, atol {atol}, lengths {} and {}, seed {seed})",
            actual.len(),
            expected.len()
        );
    }
}

/// Runs a generic test body for f32 and bf16.
#[macro_export]
macro_rules! for_each_dtype {
    ($dev:expr, $body:ident) => {{
        $body::<f32>(&$dev, $crate::cuda_support::fresh_seed());
        $body::<half::bf16>(&$dev, $crate::cuda_support::fresh_seed());
    }};
}
