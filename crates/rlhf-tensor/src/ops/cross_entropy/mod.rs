//! Fused cross-entropy with an ignore index: the mean loss and its gradient with respect to the
//! logits in one pass over each row (the exponentials are computed once, into the gradient).
//!
//! Shapes: logits (..., V) viewed as (N, V); targets (N) as `i32` class ids, where
//! `ignore_index` (PyTorch's -100 by convention, [`IGNORE_INDEX`]) marks a position that
//! contributes neither loss nor gradient (prompt tokens under a response-only loss, padding).
//!
//! When every position is ignored the mean is taken to be 0 with zero gradients and
//! `count == 0` (PyTorch gives NaN): a micro-batch holding only prompt tokens then adds nothing to
//! a training step instead of poisoning it, and the caller can still see it in `count`.

pub mod cpu;
mod cuda;

use crate::{Result, Tensor, TensorError};

/// The conventional ignore index (PyTorch's `ignore_index=-100`).
pub const IGNORE_INDEX: i32 = -100;

/// The result of [`cross_entropy`].
#[derive(Debug, Clone, PartialEq)]
pub struct CrossEntropy {
    /// Mean loss over the positions that are not ignored (0 when all are ignored).
    pub loss: f32,
    /// Per-position loss, `-log softmax(logits)[target]`; 0 at ignored positions. (N)
    pub losses: Tensor,
    /// Gradient of `loss` with respect to the logits, in the logits' shape. (..., V)
    pub dlogits: Tensor,
    /// How many positions were scored (not ignored).
    pub count: usize,
}

/// Mean cross-entropy of `logits` (..., V) against `targets` (N = product of the leading
/// dimensions), and its gradient, in one pass.
///
/// ```
/// use rlhf_tensor::{Device, Tensor, ops::cross_entropy::{cross_entropy, IGNORE_INDEX}};
/// let logits = Tensor::from_vec(vec![0.0, 0.0, 5.0, 1.0], [2, 2], Device::Cpu)?;
/// let ce = cross_entropy(&logits, &[1, IGNORE_INDEX], IGNORE_INDEX)?;
/// assert!((ce.loss - 2f32.ln()).abs() < 1e-6);
/// assert_eq!(ce.count, 1);
/// assert_eq!(ce.dlogits.to_vec_f32()[2..], [0.0, 0.0]);
/// # Ok::<(), rlhf_tensor::TensorError>(())
/// ```
pub fn cross_entropy(logits: &Tensor, targets: &[i32], ignore_index: i32) -> Result<CrossEntropy> {
    let op = "cross_entropy";
    let (rows, cols) = check_logits(op, logits, targets.len())?;
    let resolved = resolve_targets(op, targets, ignore_index, cols)?;
    let count = resolved.iter().flatten().count();
    let grad_scale = if count == 0 { 0.0 } else { 1.0 / count as f32 };
    let (losses, dlogits, total) = if logits.is_cuda() {
        let (losses, dlogits) =
            cuda::losses_and_grad(op, logits, targets, ignore_index, grad_scale, true)?;
        let total: f64 = losses.try_to_vec_f32()?.iter().map(|&l| l as f64).sum();
        let dlogits = dlogits.ok_or_else(|| TensorError::invalid(op, "no dlogits"))?;
        (losses, dlogits, total)
    } else {
        let mut losses = Tensor::zeros([rows], logits.device())?;
        let mut dlogits = logits.zeros_like()?;
        cpu::loss_and_grad_rows(
            logits.as_f32_slice()?,
            cols,
            &resolved,
            grad_scale,
            losses.as_f32_slice_mut()?,
            dlogits.as_f32_slice_mut()?,
        );
        let total: f64 = losses.as_f32_slice()?.iter().map(|&l| l as f64).sum();
        (losses, dlogits, total)
    };
    Ok(CrossEntropy {
        loss: (total * grad_scale as f64) as f32,
        losses,
        dlogits,
        count,
    })
}

/// Per-position cross-entropy losses (N) without the gradient (0 at ignored positions), for
/// evaluation.
pub fn cross_entropy_losses(logits: &Tensor, targets: &[i32], ignore_index: i32) -> Result<Tensor> {
    let op = "cross_entropy_losses";
    let (rows, cols) = check_logits(op, logits, targets.len())?;
    let resolved = resolve_targets(op, targets, ignore_index, cols)?;
    if logits.is_cuda() {
        return Ok(cuda::losses_and_grad(op, logits, targets, ignore_index, 0.0, false)?.0);
    }
    let mut losses = Tensor::zeros([rows], logits.device())?;
    cpu::losses_rows(
        logits.as_f32_slice()?,
        cols,
        &resolved,
        losses.as_f32_slice_mut()?,
    );
    Ok(losses)
}

/// Checks that logits are (..., V) with V > 0 and one target per row; returns (N, V).
pub(crate) fn check_logits(
    op: &'static str,
    logits: &Tensor,
    targets: usize,
) -> Result<(usize, usize)> {
    let shape = logits.shape();
    if shape.rank() < 1 || shape.last_dim() == 0 {
        return Err(TensorError::InvalidShape {
            op,
            shape: shape.clone(),
            expected: "(..., V) logits with V > 0".into(),
        });
    }
    let rows = shape.leading_rows();
    if targets != rows {
        return Err(TensorError::ShapeMismatch {
            op,
            detail: "one target per row of the logits".into(),
            left: shape.clone(),
            right: [targets].into(),
        });
    }
    Ok((rows, shape.last_dim()))
}

/// Maps targets to `Some(class)` or `None` (ignored), refusing ids outside the vocabulary.
fn resolve_targets(
    op: &'static str,
    targets: &[i32],
    ignore_index: i32,
    vocab: usize,
) -> Result<Vec<Option<usize>>> {
    targets
        .iter()
        .enumerate()
        .map(|(position, &target)| {
            if target == ignore_index {
                return Ok(None);
            }
            match usize::try_from(target) {
                Ok(class) if class < vocab => Ok(Some(class)),
                _ => Err(TensorError::invalid(
                    op,
                    format!(
                        "target {target} at position {position} is outside the vocabulary of \
                         {vocab} classes and is not the ignore index {ignore_index}"
                    ),
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
