//! The CUDA path of softmax and log-softmax over the last axis: the tensor-level glue over
//! `cuda::softmax` (scale 1, not causal; f32 or bf16 storage).

use crate::cuda::softmax::{
    SoftmaxConfig, log_softmax_backward, log_softmax_forward, softmax_backward, softmax_forward,
};
use crate::cuda::storage::{DeviceElem, by_cuda_dtype, output};
use crate::tensor::check_same_dtype;
use crate::{Result, Tensor};

/// Which of the two row functions.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Softmax,
    LogSoftmax,
}

/// The forward over the rows of x (..., V).
pub(super) fn forward(op: &'static str, kind: Kind, x: &Tensor) -> Result<Tensor> {
    by_cuda_dtype!(op, x.dtype(), forward_t(op, kind, x))
}

fn config(x: &Tensor) -> Result<SoftmaxConfig> {
    SoftmaxConfig::new(x.shape().leading_rows(), x.shape().last_dim())
}

fn forward_t<T: DeviceElem>(op: &'static str, kind: Kind, x: &Tensor) -> Result<Tensor> {
    let (dev, xs) = x.cuda_parts::<T>(op)?;
    let mut out = output::<T>(&dev, xs.len())?;
    let cfg = config(x)?;
    match kind {
        Kind::Softmax => softmax_forward(&dev, cfg, xs, &mut out)?,
        Kind::LogSoftmax => log_softmax_forward(&dev, cfg, xs, &mut out)?,
    }
    Tensor::from_cuda(dev, out, x.shape().clone())
}

/// The backward from dout and the forward's output (probabilities or log-probabilities).
pub(super) fn backward(
    op: &'static str,
    kind: Kind,
    dout: &Tensor,
    saved: &Tensor,
) -> Result<Tensor> {
    let dtype = check_same_dtype(op, &[dout, saved])?;
    by_cuda_dtype!(op, dtype, backward_t(op, kind, dout, saved))
}

fn backward_t<T: DeviceElem>(
    op: &'static str,
    kind: Kind,
    dout: &Tensor,
    saved: &Tensor,
) -> Result<Tensor> {
    let (dev, ys) = saved.cuda_parts::<T>(op)?;
    let ds = dout.cuda_slice::<T>(op)?;
    let mut dx = output::<T>(&dev, ys.len())?;
    let cfg = config(saved)?;
    match kind {
        Kind::Softmax => softmax_backward(&dev, cfg, ds, ys, &mut dx)?,
        Kind::LogSoftmax => log_softmax_backward(&dev, cfg, ds, ys, &mut dx)?,
    }
    Tensor::from_cuda(dev, dx, saved.shape().clone())
}
