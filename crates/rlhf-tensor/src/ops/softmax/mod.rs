//! Softmax and log-softmax over the last axis, numerically stable (max-subtracted), with backward.
//!
//! Shapes: x (..., V) -> (..., V). Backward takes the op's own output (probabilities or
//! log-probabilities), as llm.c keeps it, so the forward never has to be recomputed.

pub mod cpu;
mod cuda;
pub mod rowwise;

use crate::tensor::check_same_device;
use crate::{Result, Tensor, TensorError};

/// `softmax(x)` over the last axis: (..., V) -> (..., V).
///
/// ```
/// use rlhf_tensor::{Device, Tensor, ops::softmax::softmax};
/// let x = Tensor::from_vec(vec![0.0, 0.0, f32::NEG_INFINITY], [1, 3], Device::Cpu)?;
/// assert_eq!(softmax(&x)?.to_vec_f32(), vec![0.5, 0.5, 0.0]);
/// # Ok::<(), rlhf_tensor::TensorError>(())
/// ```
pub fn softmax(x: &Tensor) -> Result<Tensor> {
    row_op("softmax", x, cuda::Kind::Softmax, cpu::softmax_rows)
}

/// Gradient of [`softmax`] from `dout` (..., V) and the forward's output `probs` (..., V).
pub fn softmax_backward(dout: &Tensor, probs: &Tensor) -> Result<Tensor> {
    row_backward(
        "softmax_backward",
        dout,
        probs,
        cuda::Kind::Softmax,
        cpu::softmax_rows_backward,
    )
}

/// `log_softmax(x)` over the last axis: (..., V) -> (..., V).
pub fn log_softmax(x: &Tensor) -> Result<Tensor> {
    row_op(
        "log_softmax",
        x,
        cuda::Kind::LogSoftmax,
        cpu::log_softmax_rows,
    )
}

/// Gradient of [`log_softmax`] from `dout` (..., V) and the forward's output `logp` (..., V).
pub fn log_softmax_backward(dout: &Tensor, logp: &Tensor) -> Result<Tensor> {
    row_backward(
        "log_softmax_backward",
        dout,
        logp,
        cuda::Kind::LogSoftmax,
        cpu::log_softmax_rows_backward,
    )
}

fn check_rows(op: &'static str, x: &Tensor) -> Result<()> {
    if x.shape().rank() == 0 {
        return Err(TensorError::InvalidShape {
            op,
            shape: x.shape().clone(),
            expected: "at least one dimension (the softmax axis is the last)".into(),
        });
    }
    Ok(())
}

fn row_op(
    op: &'static str,
    x: &Tensor,
    kind: cuda::Kind,
    kernel: fn(&[f32], usize, &mut [f32]),
) -> Result<Tensor> {
    check_rows(op, x)?;
    if x.is_cuda() {
        return cuda::forward(op, kind, x);
    }
    let mut out = x.zeros_like()?;
    kernel(
        x.as_f32_slice()?,
        x.shape().last_dim(),
        out.as_f32_slice_mut()?,
    );
    Ok(out)
}

fn row_backward(
    op: &'static str,
    dout: &Tensor,
    saved: &Tensor,
    kind: cuda::Kind,
    kernel: fn(&[f32], &[f32], usize, &mut [f32]),
) -> Result<Tensor> {
    check_rows(op, saved)?;
    dout.shape().expect_same(op, saved.shape())?;
    check_same_device(op, dout, saved)?;
    if saved.is_cuda() {
        return cuda::backward(op, kind, dout, saved);
    }
    let mut dx = saved.zeros_like()?;
    kernel(
        dout.as_f32_slice()?,
        saved.as_f32_slice()?,
        saved.shape().last_dim(),
        dx.as_f32_slice_mut()?,
    );
    Ok(dx)
}

#[cfg(test)]
mod tests;
