//! The CUDA path of the cached attention: the tensor-level glue over `cuda::kv_cache` (f32 or
//! bf16 storage; the mask is f32 and is widened from bf16 when needed).

use crate::cuda::kv_cache::{KvConfig, kv_append, kv_attention};
use crate::cuda::storage::{DeviceElem, by_cuda_dtype, output};
use crate::{DType, Result, Tensor};

use super::Sizes;

fn config(s: &Sizes, start: usize) -> Result<KvConfig> {
    KvConfig::new(s.batch, s.new_len, s.heads, s.head_dim, s.capacity, start)
}

pub(super) fn append(
    keys: &mut Tensor,
    values: &mut Tensor,
    qkv: &Tensor,
    s: &Sizes,
    start: usize,
) -> Result<()> {
    by_cuda_dtype!(
        "kv_append",
        qkv.dtype(),
        append_t(keys, values, qkv, s, start)
    )
}

fn append_t<T: DeviceElem>(
    keys: &mut Tensor,
    values: &mut Tensor,
    qkv: &Tensor,
    s: &Sizes,
    start: usize,
) -> Result<()> {
    let op = "kv_append";
    let (dev, q) = qkv.cuda_parts::<T>(op)?;
    let cfg = config(s, start)?;
    let v = values.cuda_slice_mut::<T>(op)?;
    let k = keys.cuda_slice_mut::<T>(op)?;
    kv_append(&dev, cfg, q, k, v)
}

pub(super) fn attention(
    qkv: &Tensor,
    keys: &Tensor,
    values: &Tensor,
    mask: &Tensor,
    s: &Sizes,
    start: usize,
) -> Result<Tensor> {
    by_cuda_dtype!(
        "kv_attention",
        qkv.dtype(),
        attention_t(qkv, keys, values, mask, s, start)
    )
}

fn attention_t<T: DeviceElem>(
    qkv: &Tensor,
    keys: &Tensor,
    values: &Tensor,
    mask: &Tensor,
    s: &Sizes,
    start: usize,
) -> Result<Tensor> {
    let op = "kv_attention";
    let (dev, q) = qkv.cuda_parts::<T>(op)?;
    let widened;
    let mask = if mask.dtype() == DType::F32 {
        mask
    } else {
        widened = mask.to_dtype(DType::F32)?;
        &widened
    };
    let cfg = config(s, start)?;
    let mut out = output::<T>(&dev, s.batch * s.new_len * s.width)?;
    kv_attention(
        &dev,
        cfg,
        q,
        keys.cuda_slice::<T>(op)?,
        values.cuda_slice::<T>(op)?,
        mask.cuda_slice::<f32>(op)?,
        &mut out,
    )?;
    Tensor::from_cuda(dev, out, [s.batch, s.new_len, s.width])
}
