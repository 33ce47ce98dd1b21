//! The CUDA path of the fused cross-entropy: the tensor-level glue over `cuda::cross_entropy`.
//! Targets are checked on the host (by the caller) and uploaded; per-row losses are f32, dlogits
//! in the logits' dtype. The mean is summed on the host in f64 from the per-row losses, as on
//! the CPU.

use crate::cuda::cross_entropy::{CrossEntropyConfig, cross_entropy_forward_backward};
use crate::cuda::storage::{DeviceElem, by_cuda_dtype, output};
use crate::{Result, Tensor};

/// Per-row losses (N) and, when `with_grad`, dlogits (..., V) scaled by `grad_scale`.
pub(super) fn losses_and_grad(
    op: &'static str,
    logits: &Tensor,
    targets: &[i32],
    ignore_index: i32,
    grad_scale: f32,
    with_grad: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    by_cuda_dtype!(
        op,
        logits.dtype(),
        losses_t(op, logits, targets, ignore_index, grad_scale, with_grad)
    )
}

fn losses_t<T: DeviceElem>(
    op: &'static str,
    logits: &Tensor,
    targets: &[i32],
    ignore_index: i32,
    grad_scale: f32,
    with_grad: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let (dev, xs) = logits.cuda_parts::<T>(op)?;
    let (rows, vocab) = (logits.shape().leading_rows(), logits.shape().last_dim());
    let cfg = CrossEntropyConfig::new(rows, vocab, ignore_index, grad_scale)?;
    let targets = dev.upload_i32(targets)?;
    let mut losses = output::<f32>(&dev, rows)?;
    let mut dlogits = if with_grad {
        Some(output::<T>(&dev, xs.len())?)
    } else {
        None
    };
    cross_entropy_forward_backward(&dev, cfg, xs, &targets, &mut losses, dlogits.as_mut())?;
    let dlogits = dlogits
        .map(|d| Tensor::from_cuda(dev.clone(), d, logits.shape().clone()))
        .transpose()?;
    Ok((Tensor::from_cuda(dev, losses, [rows])?, dlogits))
}
