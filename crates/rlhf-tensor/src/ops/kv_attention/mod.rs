//! Incremental decoding attention over a key/value cache: each generation step appends its
//! keys and values to per-layer buffers and attends only its new queries over the cached
//! positions, so a token costs O(current length) instead of a full causal pass.
//!
//! Shapes: qkv (B, n, 3C) GPT-2's packed projection of the n new positions; keys and values
//! (B, H, cap, D) with C = H D; mask (B, cap) f32, 1 at real tokens (padding is cached but never
//! attended to); out (B, n, C). New query i sits at position `start + i` and sees cached
//! positions `0..=start + i` whose mask is 1, with scale 1/sqrt(D); a query that sees nothing
//! (a padded query before any real token) outputs 0. Forward only (generation keeps no graph).

pub mod cpu;
mod cuda;

use crate::tensor::{check_same_device, check_same_dtype};
use crate::{Result, Shape, Tensor, TensorError};

/// (B, n, C, H, D, cap) after checking every shape.
struct Sizes {
    batch: usize,
    new_len: usize,
    width: usize,
    heads: usize,
    head_dim: usize,
    capacity: usize,
}

fn check(
    op: &'static str,
    qkv: &Tensor,
    keys: &Tensor,
    values: &Tensor,
    n_head: usize,
    start: usize,
) -> Result<Sizes> {
    let dims = qkv.dims();
    if dims.len() != 3
        || !dims[2].is_multiple_of(3)
        || n_head == 0
        || !(dims[2] / 3).is_multiple_of(n_head)
    {
        return Err(TensorError::InvalidShape {
            op,
            shape: qkv.shape().clone(),
            expected: format!("(B, n, 3C) with C divisible by {n_head} heads"),
        });
    }
    let (batch, new_len, width) = (dims[0], dims[1], dims[2] / 3);
    let head_dim = width / n_head;
    let kd = keys.dims();
    if kd.len() != 4 || kd[0] != batch || kd[1] != n_head || kd[3] != head_dim {
        return Err(TensorError::InvalidShape {
            op,
            shape: keys.shape().clone(),
            expected: format!("keys (B, H, cap, D) = ({batch}, {n_head}, cap, {head_dim})"),
        });
    }
    values.shape().expect_same(op, keys.shape())?;
    let capacity = kd[2];
    if start + new_len > capacity {
        return Err(TensorError::invalid(
            op,
            format!("{start} cached + {new_len} new positions exceed the cache's {capacity}"),
        ));
    }
    for t in [keys, values] {
        check_same_device(op, qkv, t)?;
    }
    check_same_dtype(op, &[qkv, keys, values])?;
    Ok(Sizes {
        batch,
        new_len,
        width,
        heads: n_head,
        head_dim,
        capacity,
    })
}

/// Writes the keys and values of `qkv` (B, n, 3C) into `keys` / `values` (B, H, cap, D) at
/// positions `start..start + n`.
pub fn kv_append(
    keys: &mut Tensor,
    values: &mut Tensor,
    qkv: &Tensor,
    n_head: usize,
    start: usize,
) -> Result<()> {
    let s = check("kv_append", qkv, keys, values, n_head, start)?;
    if qkv.is_cuda() {
        return cuda::append(keys, values, qkv, &s, start);
    }
    let q = qkv.as_f32_slice()?;
    cpu::append(
        keys.as_f32_slice_mut()?,
        values.as_f32_slice_mut()?,
        q,
        [s.batch, s.new_len, s.heads, s.head_dim, s.capacity, start],
    );
    Ok(())
}

/// Attention of the new queries in `qkv` (B, n, 3C) over the cached `keys` / `values` (B, H,
/// cap, D) (already holding this step's entries, see [`kv_append`]) under the real-token `mask`
/// (B, cap); (B, n, C).
///
/// ```
/// use rlhf_tensor::{Device, Tensor, ops::kv_attention::{kv_append, kv_attention}};
/// // One head of width 2, one position: attention over itself returns its value.
/// let qkv = Tensor::from_vec(vec![1.0, 0.0, 1.0, 0.0, 3.0, 4.0], [1, 1, 6], Device::Cpu)?;
/// let mut keys = Tensor::zeros([1, 1, 4, 2], Device::Cpu)?;
/// let mut values = keys.clone();
/// kv_append(&mut keys, &mut values, &qkv, 1, 0)?;
/// let mask = Tensor::from_vec(vec![1.0, 0.0, 0.0, 0.0], [1, 4], Device::Cpu)?;
/// let out = kv_attention(&qkv, &keys, &values, &mask, 1, 0)?;
/// assert_eq!(out.to_vec_f32(), vec![3.0, 4.0]);
/// # Ok::<(), rlhf_tensor::TensorError>(())
/// ```
pub fn kv_attention(
    qkv: &Tensor,
    keys: &Tensor,
    values: &Tensor,
    mask: &Tensor,
    n_head: usize,
    start: usize,
) -> Result<Tensor> {
    let op = "kv_attention";
    let s = check(op, qkv, keys, values, n_head, start)?;
    mask.shape()
        .expect_same(op, &Shape::new([s.batch, s.capacity]))?;
    check_same_device(op, qkv, mask)?;
    if qkv.is_cuda() {
        return cuda::attention(qkv, keys, values, mask, &s, start);
    }
    let mut out = Tensor::zeros([s.batch, s.new_len, s.width], qkv.device())?;
    cpu::attention(
        qkv.as_f32_slice()?,
        keys.as_f32_slice()?,
        values.as_f32_slice()?,
        mask.as_f32_slice()?,
        [s.batch, s.new_len, s.heads, s.head_dim, s.capacity, start],
        out.as_f32_slice_mut()?,
    );
    Ok(out)
}
