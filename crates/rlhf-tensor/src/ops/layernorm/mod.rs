//! Layernorm over the last axis with a learned scale (gamma) and shift (beta), as GPT-2 uses it.
//!
//! Shapes: x (..., C), gamma (C), beta (C) -> out (..., C); the cache keeps mean (N) and rstd (N)
//! for N = the product of the leading dimensions, and the backward returns dx (..., C),
//! dgamma (C) and dbeta (C).

pub mod cpu;
mod cuda;

use crate::tensor::check_same_device;
use crate::{Result, Tensor, TensorError};

/// What the backward needs from the forward: per-row statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNormCache {
    /// Mean of each row. (N)
    pub mean: Tensor,
    /// 1 / sqrt(variance + eps) of each row. (N)
    pub rstd: Tensor,
}

/// Gradients of [`layernorm`].
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNormGrads {
    /// Gradient with respect to x. (..., C)
    pub dx: Tensor,
    /// Gradient with respect to gamma. (C)
    pub dgamma: Tensor,
    /// Gradient with respect to beta. (C)
    pub dbeta: Tensor,
}

/// `(x - mean) / sqrt(var + eps) * gamma + beta` over the last axis (biased variance, as PyTorch
/// and GPT-2); returns the output (..., C) and the cache for [`layernorm_backward`].
///
/// ```
/// use rlhf_tensor::{Device, Tensor, ops::layernorm::layernorm};
/// let x = Tensor::from_vec(vec![1.0, 3.0], [1, 2], Device::Cpu)?;
/// let gamma = Tensor::from_vec(vec![1.0, 1.0], [2], Device::Cpu)?;
/// let beta = Tensor::from_vec(vec![0.0, 0.5], [2], Device::Cpu)?;
/// let (out, cache) = layernorm(&x, &gamma, &beta, 0.0)?;
/// assert_eq!(out.to_vec_f32(), vec![-1.0, 1.5]);
/// assert_eq!(cache.mean.to_vec_f32(), vec![2.0]);
/// # Ok::<(), rlhf_tensor::TensorError>(())
/// ```
pub fn layernorm(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
) -> Result<(Tensor, LayerNormCache)> {
    let op = "layernorm";
    check_params(op, x, gamma, beta)?;
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(TensorError::invalid(
            op,
            format!("eps must be finite and >= 0, got {eps}"),
        ));
    }
    if x.is_cuda() {
        return cuda::forward(x, gamma, beta, eps);
    }
    let rows = x.shape().leading_rows();
    let mut out = x.zeros_like()?;
    let mut mean = Tensor::zeros([rows], x.device())?;
    let mut rstd = Tensor::zeros([rows], x.device())?;
    cpu::layernorm_rows(
        x.as_f32_slice()?,
        gamma.as_f32_slice()?,
        beta.as_f32_slice()?,
        eps,
        out.as_f32_slice_mut()?,
        mean.as_f32_slice_mut()?,
        rstd.as_f32_slice_mut()?,
    );
    Ok((out, LayerNormCache { mean, rstd }))
}

/// Gradients of [`layernorm`] from `dout` (..., C), the forward's input and gamma, and its cache.
pub fn layernorm_backward(
    dout: &Tensor,
    x: &Tensor,
    gamma: &Tensor,
    cache: &LayerNormCache,
) -> Result<LayerNormGrads> {
    let op = "layernorm_backward";
    check_params(op, x, gamma, gamma)?;
    dout.shape().expect_same(op, x.shape())?;
    check_same_device(op, dout, x)?;
    let rows = [x.shape().leading_rows()].into();
    cache.mean.shape().expect_same(op, &rows)?;
    cache.rstd.shape().expect_same(op, &rows)?;
    check_same_device(op, &cache.mean, x)?;
    check_same_device(op, &cache.rstd, x)?;
    if x.is_cuda() {
        return cuda::backward(dout, x, gamma, cache);
    }
    let mut dx = x.zeros_like()?;
    let (dgamma, dbeta) = cpu::layernorm_rows_backward(
        dout.as_f32_slice()?,
        x.as_f32_slice()?,
        gamma.as_f32_slice()?,
        cache.mean.as_f32_slice()?,
        cache.rstd.as_f32_slice()?,
        dx.as_f32_slice_mut()?,
    );
    let cols = gamma.numel();
    Ok(LayerNormGrads {
        dx,
        dgamma: Tensor::from_vec(dgamma, [cols], x.device())?,
        dbeta: Tensor::from_vec(dbeta, [cols], x.device())?,
    })
}

fn check_params(op: &'static str, x: &Tensor, gamma: &Tensor, beta: &Tensor) -> Result<()> {
    if x.shape().rank() == 0 {
        return Err(TensorError::InvalidShape {
            op,
            shape: x.shape().clone(),
            expected: "(..., C) with at least one dimension".into(),
        });
    }
    for param in [gamma, beta] {
        check_same_device(op, x, param)?;
        if param.dims() != [x.shape().last_dim()] {
            return Err(TensorError::ShapeMismatch {
                op,
                detail: "gamma and beta must be (C), C the input's last dimension".into(),
                left: x.shape().clone(),
                right: param.shape().clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
