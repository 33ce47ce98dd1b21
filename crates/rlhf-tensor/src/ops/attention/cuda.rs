//! The CUDA path of causal self-attention: the tensor-level glue over `cuda::attention` (cuBLAS
//! batched GEMMs, the key-padding mask on the scores, the causal softmax). The cache keeps only
//! the probabilities (B, H, T, T), as on the CPU; the backward splits q, k, v from qkv again.

use crate::cuda::attention::{HeadsConfig, attention_backward_qkv, attention_forward_masked};
use crate::cuda::storage::{DeviceElem, by_cuda_dtype, output};
use crate::tensor::check_same_dtype;
use crate::{Result, Tensor};

use super::AttentionCache;
use super::cpu::AttentionDims;

fn config(dims: &AttentionDims) -> Result<HeadsConfig> {
    HeadsConfig::new(dims.batch, dims.seq_len, dims.n_head, dims.head_dim)
}

/// The forward: out (B, T, C) and the probabilities.
pub(super) fn forward(
    dims: &AttentionDims,
    qkv: &Tensor,
    padding_mask: Option<&[bool]>,
) -> Result<(Tensor, AttentionCache)> {
    by_cuda_dtype!("attention", qkv.dtype(), forward_t(dims, qkv, padding_mask))
}

fn forward_t<T: DeviceElem>(
    dims: &AttentionDims,
    qkv: &Tensor,
    padding_mask: Option<&[bool]>,
) -> Result<(Tensor, AttentionCache)> {
    let (dev, qkv_data) = qkv.cuda_parts::<T>("attention")?;
    let (b, t, h, c) = (dims.batch, dims.seq_len, dims.n_head, dims.channels());
    let mask = padding_mask
        .map(|m| dev.upload_i32(&m.iter().map(|&real| real as i32).collect::<Vec<_>>()))
        .transpose()?;
    let mut out = output::<T>(&dev, b * t * c)?;
    let saved = attention_forward_masked(&dev, config(dims)?, qkv_data, mask.as_ref(), &mut out)?;
    let att = Tensor::from_cuda(dev.clone(), saved.probs, [b, h, t, t])?;
    let out = Tensor::from_cuda(dev, out, [b, t, c])?;
    Ok((out, AttentionCache { att, n_head: h }))
}

/// The backward: dqkv (B, T, 3C) from dout (B, T, C), qkv and the cached probabilities.
pub(super) fn backward(
    dims: &AttentionDims,
    dout: &Tensor,
    qkv: &Tensor,
    cache: &AttentionCache,
) -> Result<Tensor> {
    let op = "attention_backward";
    let dtype = check_same_dtype(op, &[qkv, dout, &cache.att])?;
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
    attention_backward_qkv(
        &dev,
        config(dims)?,
        qkv_data,
        cache.att.cuda_slice::<T>(op)?,
        dout.cuda_slice::<T>(op)?,
        &mut dqkv,
    )?;
    Tensor::from_cuda(dev, dqkv, qkv.shape().clone())
}
