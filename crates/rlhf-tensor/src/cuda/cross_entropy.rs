//! Fused cross-entropy loss and dlogits with an ignore index (kernels/cross_entropy.cu), the
//! device twin of `ops::cross_entropy::cpu::loss_and_grad_rows`.

use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

use super::device::CudaDevice;
use super::dtype::CudaFloat;
use super::launch::{arg_opt_mut, as_i32, check_len, launched, row_config};
use super::registry::KernelModule;
use crate::{Result, TensorError};

/// Scalars of a cross-entropy launch; the layout of `CrossEntropyConfig` in cross_entropy.cu.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrossEntropyConfig {
    /// N, scored positions (rows of logits).
    pub rows: i64,
    /// V, the vocabulary.
    pub vocab: i32,
    /// Targets equal to this contribute no loss and no gradient (PyTorch's -100).
    pub ignore_index: i32,
    /// Multiplies the gradient: 1 / (number of scored rows) for a mean loss.
    pub grad_scale: f32,
}

// SAFETY: repr(C) plain old data matching the CUDA struct field for field.
unsafe impl DeviceRepr for CrossEntropyConfig {}

impl CrossEntropyConfig {
    /// Rows of `vocab` logits with the given ignore index and gradient scale.
    pub fn new(rows: usize, vocab: usize, ignore_index: i32, grad_scale: f32) -> Result<Self> {
        Ok(CrossEntropyConfig {
            rows: rows as i64,
            vocab: as_i32("cuda::CrossEntropyConfig", "vocab", vocab)?,
            ignore_index,
            grad_scale,
        })
    }
}

/// Per-row losses (N) and, when `dlogits` is given, `grad_scale * (softmax - onehot)` (N, V);
/// ignored rows give 0 and zero rows; an out-of-range target gives NaN.
pub fn cross_entropy_forward_backward<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: CrossEntropyConfig,
    logits: &CudaSlice<T>,
    targets: &CudaSlice<i32>,
    losses: &mut CudaSlice<f32>,
    dlogits: Option<&mut CudaSlice<T>>,
) -> Result<()> {
    let op = "cuda::cross_entropy";
    if cfg.rows < 0 || cfg.vocab <= 0 {
        return Err(TensorError::invalid(
            op,
            format!("bad shape ({}, {})", cfg.rows, cfg.vocab),
        ));
    }
    let rows = cfg.rows as usize;
    let vocab = cfg.vocab as usize;
    check_len(op, "logits", logits.len(), rows * vocab)?;
    check_len(op, "targets", targets.len(), rows)?;
    check_len(op, "losses", losses.len(), rows)?;
    if let Some(d) = &dlogits {
        check_len(op, "dlogits", d.len(), rows * vocab)?;
    }
    if rows == 0 {
        return Ok(());
    }
    let f = dev.typed::<T>(KernelModule::CrossEntropy, "cross_entropy_fwd_bwd")?;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&cfg).arg(logits).arg(targets).arg(losses);
    arg_opt_mut(&mut args, dlogits);
    // SAFETY: logits/dlogits hold rows * vocab, targets/losses rows (checked above); dlogits may
    // be null, which the kernel tests.
    launched(op, unsafe { args.launch(row_config(rows, vocab)) })
}
