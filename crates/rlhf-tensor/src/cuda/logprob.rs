//! Selected log-probabilities and entropies under a temperature, forward and fused backward
//! (kernels/logprob_entropy.cu): the PPO policy quantities.

use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

use super::device::CudaDevice;
use super::dtype::CudaFloat;
use super::launch::{arg_opt, as_i32, check_len, launched, row_config};
use super::registry::KernelModule;
use crate::{Result, TensorError};

/// Scalars of a log-prob launch; the layout of `LogprobConfig` in logprob_entropy.cu.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogprobConfig {
    /// N, positions (rows of logits).
    pub rows: i64,
    /// V, the vocabulary.
    pub vocab: i32,
    /// Targets equal to this get log-prob 0 and no log-prob gradient.
    pub ignore_index: i32,
    /// 1 / temperature: logits are divided by the temperature before the softmax.
    pub inv_temperature: f32,
}

// SAFETY: repr(C) plain old data matching the CUDA struct field for field.
unsafe impl DeviceRepr for LogprobConfig {}

impl LogprobConfig {
    /// Rows of `vocab` logits at `temperature` (> 0).
    pub fn new(rows: usize, vocab: usize, ignore_index: i32, temperature: f32) -> Result<Self> {
        let op = "cuda::LogprobConfig";
        if !(temperature > 0.0 && temperature.is_finite()) {
            return Err(TensorError::invalid(
                op,
                format!("temperature must be finite and > 0, got {temperature}"),
            ));
        }
        Ok(LogprobConfig {
            rows: rows as i64,
            vocab: as_i32(op, "vocab", vocab)?,
            ignore_index,
            inv_temperature: 1.0 / temperature,
        })
    }

    fn shape(&self, op: &'static str) -> Result<(usize, usize)> {
        if self.rows < 0 || self.vocab <= 0 {
            return Err(TensorError::invalid(
                op,
                format!("bad shape ({}, {})", self.rows, self.vocab),
            ));
        }
        Ok((self.rows as usize, self.vocab as usize))
    }
}

/// Per row: `logp` = log softmax(logits / T) at the target, `entropy` of softmax(logits / T), and
/// `lse` = logsumexp(logits / T) kept for the backward; all (N) f32; logits (N, V).
pub fn logprob_entropy_forward<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: LogprobConfig,
    logits: &CudaSlice<T>,
    targets: &CudaSlice<i32>,
    logp: &mut CudaSlice<f32>,
    entropy: &mut CudaSlice<f32>,
    lse: &mut CudaSlice<f32>,
) -> Result<()> {
    let op = "cuda::logprob_entropy_forward";
    let (rows, vocab) = cfg.shape(op)?;
    check_len(op, "logits", logits.len(), rows * vocab)?;
    for (what, len) in [
        ("targets", targets.len()),
        ("logp", logp.len()),
        ("entropy", entropy.len()),
        ("lse", lse.len()),
    ] {
        check_len(op, what, len, rows)?;
    }
    if rows == 0 {
        return Ok(());
    }
    let f = dev.typed::<T>(KernelModule::LogprobEntropy, "logprob_entropy_fwd")?;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&cfg)
        .arg(logits)
        .arg(targets)
        .arg(logp)
        .arg(entropy)
        .arg(lse);
    // SAFETY: logits hold rows * vocab, the per-row buffers rows (checked above).
    launched(op, unsafe { args.launch(row_config(rows, vocab)) })
}

/// dlogits (N, V) from upstream gradients of the log-probs and/or entropies (N), given the
/// forward's `lse` and `entropy`; a missing upstream gradient counts as zero.
#[allow(clippy::too_many_arguments)]
pub fn logprob_entropy_backward<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: LogprobConfig,
    logits: &CudaSlice<T>,
    targets: &CudaSlice<i32>,
    lse: &CudaSlice<f32>,
    entropy: &CudaSlice<f32>,
    dlogp: Option<&CudaSlice<f32>>,
    dentropy: Option<&CudaSlice<f32>>,
    dlogits: &mut CudaSlice<T>,
) -> Result<()> {
    let op = "cuda::logprob_entropy_backward";
    let (rows, vocab) = cfg.shape(op)?;
    check_len(op, "logits", logits.len(), rows * vocab)?;
    check_len(op, "dlogits", dlogits.len(), rows * vocab)?;
    for (what, len) in [
        ("targets", targets.len()),
        ("lse", lse.len()),
        ("entropy", entropy.len()),
        ("dlogp", dlogp.map_or(rows, |d| d.len())),
        ("dentropy", dentropy.map_or(rows, |d| d.len())),
    ] {
        check_len(op, what, len, rows)?;
    }
    if rows == 0 {
        return Ok(());
    }
    let f = dev.typed::<T>(KernelModule::LogprobEntropy, "logprob_entropy_bwd")?;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&cfg)
        .arg(logits)
        .arg(targets)
        .arg(lse)
        .arg(entropy);
    arg_opt(&mut args, dlogp);
    arg_opt(&mut args, dentropy);
    args.arg(dlogits);
    // SAFETY: logits/dlogits hold rows * vocab, the per-row buffers rows (checked above); the
    // optional gradients may be null, which the kernel tests.
    launched(op, unsafe { args.launch(row_config(rows, vocab)) })
}
