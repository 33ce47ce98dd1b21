//! Next-token sampling on device buffers (kernels/sampling.cu): greedy, or temperature with
//! top-k and top-p, one block per row, from per-row uniforms drawn on the host. The algorithm
//! is stated in [`crate::ops::sampling`].

use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg};

use super::device::CudaDevice;
use super::dtype::CudaFloat;
use super::launch::{as_i32, check_len, launched};
use super::registry::KernelModule;
use crate::Result;

/// Threads per row block (the kernel's `SAMPLE_THREADS`, the size of its chunk table).
const SAMPLE_THREADS: u32 = 256;

/// Scalars of a sampling launch; the layout of `SampleConfig` in sampling.cu.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleConfig {
    /// N, rows of logits.
    pub rows: i64,
    /// V, the vocabulary.
    pub vocab: i32,
    /// Keep the k most likely tokens (0 or >= V: all).
    pub top_k: i32,
    /// 1 / temperature (1 when greedy).
    pub inv_temperature: f32,
    /// Nucleus mass in (0, 1] (1: all).
    pub top_p: f32,
    /// 1: argmax.
    pub greedy: i32,
}

// SAFETY: repr(C) plain old data matching the CUDA struct field for field.
unsafe impl DeviceRepr for SampleConfig {}

impl SampleConfig {
    /// Rows of `vocab` logits under `temperature` (0 = greedy), `top_k`, `top_p`.
    pub fn new(
        rows: usize,
        vocab: usize,
        temperature: f32,
        top_k: usize,
        top_p: f32,
    ) -> Result<Self> {
        let op = "cuda::SampleConfig";
        let greedy = temperature == 0.0;
        Ok(SampleConfig {
            rows: rows as i64,
            vocab: as_i32(op, "vocab", vocab)?,
            top_k: as_i32(op, "top_k", top_k.min(vocab))?,
            inv_temperature: if greedy { 1.0 } else { 1.0 / temperature },
            top_p,
            greedy: i32::from(greedy),
        })
    }
}

/// Per row of `logits` (N, V): the sampled token (-1 when the row holds NaN) and its log-prob
/// under softmax(logits / T), given `uniforms` (N) in [0, 1).
pub fn sample<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: SampleConfig,
    logits: &CudaSlice<T>,
    uniforms: &CudaSlice<f64>,
    tokens: &mut CudaSlice<i32>,
    logp: &mut CudaSlice<f32>,
) -> Result<()> {
    let op = "cuda::sample";
    let (rows, vocab) = (cfg.rows.max(0) as usize, cfg.vocab.max(0) as usize);
    check_len(op, "logits", logits.len(), rows * vocab)?;
    for (what, len) in [
        ("uniforms", uniforms.len()),
        ("tokens", tokens.len()),
        ("logp", logp.len()),
    ] {
        check_len(op, what, len, rows)?;
    }
    if rows == 0 {
        return Ok(());
    }
    let f = dev.typed::<T>(KernelModule::Sampling, "sample")?;
    let launch = LaunchConfig {
        grid_dim: (rows.clamp(1, 1 << 20) as u32, 1, 1),
        block_dim: (SAMPLE_THREADS, 1, 1),
        shared_mem_bytes: 0,
    };
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&cfg)
        .arg(logits)
        .arg(uniforms)
        .arg(tokens)
        .arg(logp);
    // SAFETY: logits hold rows * vocab, the per-row buffers rows (checked above).
    launched(op, unsafe { args.launch(launch) })
}
