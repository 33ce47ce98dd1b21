//! Causal multi-head self-attention with a padding mask, forward and backward.
//!
//! Input: the packed `qkv` (B, T, 3C) that GPT-2's `c_attn` produces (`x @ W_attn + b_attn`):
//! q = qkv[..., 0..C], k = qkv[..., C..2C], v = qkv[..., 2C..3C], each read as (B, T, H, D) with
//! D = C / H. Scores are `q k^T / sqrt(D)`; query i attends to keys j <= i that are real tokens
//! under the optional padding mask (B, T) (true = real, false = padding; left or right padding
//! alike). Output: (B, T, C), heads side by side, ready for the output projection. The backward
//! returns dqkv (B, T, 3C), the gradient to feed back through `c_attn`.
//!
//! A padded query's output is 0 and it passes no gradient; no row ever produces NaN. The cache
//! keeps the probabilities (B, H, T, T), as llm.c does; the fused CUDA path (`RLHF_ATTENTION`,
//! see [`select`]) keeps the logsumexp (B, H, T), the output and the mask instead.

pub mod cpu;
mod cuda;
pub mod select;

use cpu::AttentionDims;

use crate::tensor::check_same_device;
use crate::{Result, Shape, Tensor, TensorError};

/// What [`attention_backward`] needs from the forward.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionCache {
    /// The attention probabilities, zero where masked (B, H, T, T); on the fused path (`fused`
    /// is set) the logsumexp of each row's scaled scores instead (B, H, T), f32, +inf for a
    /// padded query.
    pub att: Tensor,
    /// Number of heads H.
    pub n_head: usize,
    /// Set by the fused CUDA path only: what its backward needs beyond the logsumexp.
    pub fused: Option<FusedCache>,
}

/// The fused (flash) path's extra cache: the forward's output, for delta = rowsum(dout * out),
/// and the padding mask, since the backward recomputes the probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct FusedCache {
    /// The forward's output (B, T, C).
    pub out: Tensor,
    /// The padding mask (B T flags, true = real token), if any.
    pub padding_mask: Option<Vec<bool>>,
}

/// Causal self-attention over `qkv` (B, T, 3C) with `n_head` heads and an optional padding mask
/// (B T booleans, true = real token); returns the output (B, T, C) and the cache.
///
/// ```
/// use rlhf_tensor::{Device, Tensor, ops::attention::attention};
/// // B = 1, T = 2, C = 1, one head: q = k = 0 makes the second query average v0 and v1.
/// let qkv = Tensor::from_vec(vec![0.0, 0.0, 2.0, 0.0, 0.0, 4.0], [1, 2, 3], Device::Cpu)?;
/// let (out, _) = attention(&qkv, 1, None)?;
/// assert_eq!(out.to_vec_f32(), vec![2.0, 3.0]);
/// // With the first token marked as padding, it outputs 0 and is never attended.
/// let (out, _) = attention(&qkv, 1, Some(&[false, true]))?;
/// assert_eq!(out.to_vec_f32(), vec![0.0, 4.0]);
/// # Ok::<(), rlhf_tensor::TensorError>(())
/// ```
pub fn attention(
    qkv: &Tensor,
    n_head: usize,
    padding_mask: Option<&[bool]>,
) -> Result<(Tensor, AttentionCache)> {
    let op = "attention";
    let dims = check_qkv(op, qkv, n_head)?;
    if let Some(mask) = padding_mask {
        let expected = Shape::new([dims.batch, dims.seq_len]);
        if mask.len() != expected.numel() {
            return Err(TensorError::ShapeMismatch {
                op,
                detail: "the padding mask must hold one flag per (batch, position)".into(),
                left: [mask.len()].into(),
                right: expected,
            });
        }
    }
    if qkv.is_cuda() {
        return cuda::forward(&dims, qkv, padding_mask);
    }
    let (b, t, h, c) = (dims.batch, dims.seq_len, dims.n_head, dims.channels());
    let mut out = Tensor::zeros([b, t, c], qkv.device())?;
    let mut att = Tensor::zeros([b, h, t, t], qkv.device())?;
    cpu::attention_forward(
        &dims,
        qkv.as_f32_slice()?,
        padding_mask,
        out.as_f32_slice_mut()?,
        att.as_f32_slice_mut()?,
    );
    Ok((
        out,
        AttentionCache {
            att,
            n_head,
            fused: None,
        },
    ))
}

/// Gradient of [`attention`] with respect to `qkv` (B, T, 3C), from `dout` (B, T, C), the
/// forward's `qkv` and its cache (which carries the mask in its zeros).
pub fn attention_backward(dout: &Tensor, qkv: &Tensor, cache: &AttentionCache) -> Result<Tensor> {
    let op = "attention_backward";
    let dims = check_qkv(op, qkv, cache.n_head)?;
    let (b, t, h, c) = (dims.batch, dims.seq_len, dims.n_head, dims.channels());
    dout.shape().expect_same(op, &Shape::new([b, t, c]))?;
    let att_shape = match cache.fused {
        Some(_) => Shape::new([b, h, t]),
        None => Shape::new([b, h, t, t]),
    };
    cache.att.shape().expect_same(op, &att_shape)?;
    check_same_device(op, dout, qkv)?;
    check_same_device(op, &cache.att, qkv)?;
    if qkv.is_cuda() {
        return cuda::backward(&dims, dout, qkv, cache);
    }
    let mut dqkv = qkv.zeros_like()?;
    cpu::attention_backward(
        &dims,
        dout.as_f32_slice()?,
        qkv.as_f32_slice()?,
        cache.att.as_f32_slice()?,
        dqkv.as_f32_slice_mut()?,
    );
    Ok(dqkv)
}

/// Checks qkv is (B, T, 3C) with C divisible by `n_head`; returns the geometry.
fn check_qkv(op: &'static str, qkv: &Tensor, n_head: usize) -> Result<AttentionDims> {
    qkv.shape().expect_rank(op, 3)?;
    let [batch, seq_len, three_c] = [qkv.dims()[0], qkv.dims()[1], qkv.dims()[2]];
    let c = three_c / 3;
    if three_c % 3 != 0 || n_head == 0 || c % n_head != 0 || c == 0 {
        return Err(TensorError::InvalidShape {
            op,
            shape: qkv.shape().clone(),
            expected: format!(
                "(B, T, 3C) with C > 0 a multiple of n_head = {n_head} (packed q, k, v)"
            ),
        });
    }
    Ok(AttentionDims {
        batch,
        seq_len,
        n_head,
        head_dim: c / n_head,
    })
}

#[cfg(test)]
mod tests;
