//! The CUDA path of causal self-attention: the tensor-level glue over `cuda::attention` (cuBLAS
//! batched GEMMs, the key-padding mask on the scores, the causal softmax; the cache keeps the
//! probabilities (B, H, T, T), as on the CPU, and the backward splits q, k, v from qkv again) or,
//! when [`super::select`] says so, over `cuda::flash_attention` (the fused kernels; the cache
//! keeps the logsumexp (B, H, T), the output and the mask).

use crate::cuda::attention::{HeadsConfig, attention_backward_qkv, attention_forward_masked};
use crate::cuda::flash_attention::{FlashConfig, flash_backward, flash_forward};
use crate::cuda::storage::{DeviceElem, by_cuda_dtype, output};
use crate::cuda::{CudaDevice, CudaSlice};
use crate::tensor::check_same_dtype;
use crate::{Result, Tensor};

use super::cpu::AttentionDims;
use super::select::attention_impl;
use super::{AttentionCache, FusedCache};

fn config(dims: &AttentionDims) -> Result<HeadsConfig> {
    HeadsConfig::new(dims.batch, dims.seq_len, dims.n_head, dims.head_dim)
}

fn flash_config(dims: &AttentionDims) -> Result<FlashConfig> {
    FlashConfig::new(dims.batch, dims.seq_len, dims.n_head, dims.head_dim)
}

/// The mask (B, T) as the kernels' i32 flags on the device.
fn upload_mask(dev: &CudaDevice, mask: Option<&[bool]>) -> Result<Option<CudaSlice<i32>>> {
    mask.map(|m| dev.upload_i32(&m.iter().map(|&real| real as i32).collect::<Vec<_>>()))
        .transpose()
}

/// The forward: out (B, T, C) and the cache.
pub(super) fn forward(
    dims: &AttentionDims,
    qkv: &Tensor,
    padding_mask: Option<&[bool]>,
) -> Result<(Tensor, AttentionCache)> {
    let fused = attention_impl()?.use_flash(dims.head_dim)?;
    by_cuda_dtype!(
        "attention",
        qkv.dtype(),
        forward_t(dims, qkv, padding_mask, fused)
    )
}

fn forward_t<T: DeviceElem>(
    dims: &AttentionDims,
    qkv: &Tensor,
    padding_mask: Option<&[bool]>,
    fused: bool,
) -> Result<(Tensor, AttentionCache)> {
    let (dev, qkv_data) = qkv.cuda_parts::<T>("attention")?;
    let (b, t, h, c) = (dims.batch, dims.seq_len, dims.n_head, dims.channels());
    let mask = upload_mask(&dev, padding_mask)?;
    let mut out = output::<T>(&dev, b * t * c)?;
    if fused {
        let mut lse = output::<f32>(&dev, b * h * t)?;
        flash_forward(
            &dev,
            flash_config(dims)?,
            qkv_data,
            mask.as_ref(),
            &mut out,
            &mut lse,
        )?;
        let att = Tensor::from_cuda(dev.clone(), lse, [b, h, t])?;
        let out = Tensor::from_cuda(dev, out, [b, t, c])?;
        let fused = FusedCache {
            out: out.try_clone()?,
            padding_mask: padding_mask.map(<[bool]>::to_vec),
        };
        let cache = AttentionCache {
            att,
            n_head: h,
            fused: Some(fused),
        };
        return Ok((out, cache));
    }
    let saved = attention_forward_masked(&dev, config(dims)?, qkv_data, mask.as_ref(), &mut out)?;
    let att = Tensor::from_cuda(dev.clone(), saved.probs, [b, h, t, t])?;
    let out = Tensor::from_cuda(dev, out, [b, t, c])?;
    let cache = AttentionCache {
        att,
        n_head: h,
        fused: None,
    };
    Ok((out, cache))
}

/// The backward: dqkv (B, T, 3C) from dout (B, T, C), qkv and the cache.
pub(super) fn backward(
    dims: &AttentionDims,
    dout: &Tensor,
    qkv: &Tensor,
    cache: &AttentionCache,
) -> Result<Tensor> {
    let op = "attention_backward";
    let dtype = match &cache.fused {
        Some(fused) => check_same_dtype(op, &[qkv, dout, &fused.out])?,
        None => check_same_dtype(op, &[qkv, dout, &cache.att])?,
    };
    by_cuda_dtype!(op, dtype, backward_t(dims, dout, qkv, cache))
}

fn backward_t<T: DeviceElem>(
    dims: &AttentionDims,
    dout: &Tensor,
    qkv: &Tensor,
    cache: &AttentionCache,
) -> Result<Tensor> {
    let op = "attention_backward";
    let (dev, qkv_data) = qkv.cuda_parts::<T>(op)?;
    let mut dqkv = output::<T>(&dev, qkv_data.len())?;
    match &cache.fused {
        Some(fused) => {
            let mask = upload_mask(&dev, fused.padding_mask.as_deref())?;
            flash_backward(
                &dev,
                flash_config(dims)?,
                qkv_data,
                mask.as_ref(),
                fused.out.cuda_slice::<T>(op)?,
                cache.att.cuda_slice::<f32>(op)?,
                dout.cuda_slice::<T>(op)?,
                &mut dqkv,
            )?;
        }
        None => attention_backward_qkv(
            &dev,
            config(dims)?,
            qkv_data,
            cache.att.cuda_slice::<T>(op)?,
            dout.cuda_slice::<T>(op)?,
            &mut dqkv,
        )?,
    }
    Tensor::from_cuda(dev, dqkv, qkv.shape().clone())
}
