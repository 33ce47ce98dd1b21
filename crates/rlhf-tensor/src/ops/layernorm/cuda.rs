//! The CUDA path of LayerNorm: the tensor-level glue over `cuda::layernorm`. The row statistics
//! (mean, rstd) are f32 whatever the storage dtype; the weight and bias gradients are summed in
//! fp32 on the device (deterministically) and returned in the storage dtype.

use crate::cuda::layernorm::{
    LayerNormConfig, LayerNormStats, layernorm_backward, layernorm_forward,
};
use crate::cuda::storage::{DeviceElem, by_cuda_dtype, output};
use crate::tensor::check_same_dtype;
use crate::{Result, Tensor};

use super::{LayerNormCache, LayerNormGrads};

fn config(x: &Tensor, eps: f32) -> Result<LayerNormConfig> {
    LayerNormConfig::new(x.shape().leading_rows(), x.shape().last_dim(), eps)
}

/// The forward: out (..., C) and the statistics (N) in f32.
pub(super) fn forward(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
) -> Result<(Tensor, LayerNormCache)> {
    let dtype = check_same_dtype("layernorm", &[x, gamma, beta])?;
    by_cuda_dtype!("layernorm", dtype, forward_t(x, gamma, beta, eps))
}

fn forward_t<T: DeviceElem>(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
) -> Result<(Tensor, LayerNormCache)> {
    let op = "layernorm";
    let (dev, xs) = x.cuda_parts::<T>(op)?;
    let rows = x.shape().leading_rows();
    let mut out = output::<T>(&dev, xs.len())?;
    let mut mean = output::<f32>(&dev, rows)?;
    let mut rstd = output::<f32>(&dev, rows)?;
    layernorm_forward(
        &dev,
        config(x, eps)?,
        xs,
        gamma.cuda_slice::<T>(op)?,
        beta.cuda_slice::<T>(op)?,
        &mut out,
        LayerNormStats {
            mean: &mut mean,
            rstd: &mut rstd,
        },
    )?;
    let cache = LayerNormCache {
        mean: Tensor::from_cuda(dev.clone(), mean, [rows])?,
        rstd: Tensor::from_cuda(dev.clone(), rstd, [rows])?,
    };
    Ok((Tensor::from_cuda(dev, out, x.shape().clone())?, cache))
}

/// The backward: dx in x's dtype, dgamma and dbeta (C) in gamma's.
pub(super) fn backward(
    dout: &Tensor,
    x: &Tensor,
    gamma: &Tensor,
    cache: &LayerNormCache,
) -> Result<LayerNormGrads> {
    let dtype = check_same_dtype("layernorm_backward", &[dout, x, gamma])?;
    by_cuda_dtype!(
        "layernorm_backward",
        dtype,
        backward_t(dout, x, gamma, cache)
    )
}

fn backward_t<T: DeviceElem>(
    dout: &Tensor,
    x: &Tensor,
    gamma: &Tensor,
    cache: &LayerNormCache,
) -> Result<LayerNormGrads> {
    let op = "layernorm_backward";
    let (dev, xs) = x.cuda_parts::<T>(op)?;
    let cols = x.shape().last_dim();
    let mut dx = output::<T>(&dev, xs.len())?;
    let mut dgamma = dev.zeros::<f32>(cols)?;
    let mut dbeta = dev.zeros::<f32>(cols)?;
    layernorm_backward(
        &dev,
        // eps is not used by the backward (rstd carries it).
        config(x, 0.0)?,
        dout.cuda_slice::<T>(op)?,
        xs,
        gamma.cuda_slice::<T>(op)?,
        cache.mean.cuda_slice::<f32>(op)?,
        cache.rstd.cuda_slice::<f32>(op)?,
        &mut dx,
        &mut dgamma,
        &mut dbeta,
    )?;
    Ok(LayerNormGrads {
        dx: Tensor::from_cuda(dev.clone(), dx, x.shape().clone())?,
        dgamma: Tensor::from_cuda(dev.clone(), T::from_f32_buffer(&dev, dgamma)?, [cols])?,
        dbeta: Tensor::from_cuda(dev.clone(), T::from_f32_buffer(&dev, dbeta)?, [cols])?,
    })
}
