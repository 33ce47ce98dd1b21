//! Causal self-attention kernels over a packed qkv buffer (B, T, 3C), as GPT-2's c_attn makes it.
//!
//! Per sequence b, the products run as batches over the heads through the crate's GEMM
//! ([`batched_gemm_into`], one head per rayon task) on strided views of qkv, so q, k and v are
//! never copied out; the masked softmax runs over all (head, query) rows in parallel. Per-head
//! results land in head-major scratch (H, T, D) and are then interleaved back into (T, C) rows.
//!
//! Masking: query i of sequence b attends to keys j <= i whose `key_mask[b, j]` is true. A padded
//! query (its own mask false) gets an all-zero probability row, so its output is 0 and it passes no
//! gradient; since a real query always sees itself, no row is ever empty of valid keys, and no NaN
//! can arise.

use rayon::prelude::*;

use crate::Float;
use crate::ops::matmul::cpu::{BatchOperand, MatLayout, batched_gemm_into};
use crate::ops::softmax::rowwise::{dot, exp_in_place, max, rows_per_task, sum};

/// The geometry of one attention call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionDims {
    /// Number of sequences B.
    pub batch: usize,
    /// Sequence length T.
    pub seq_len: usize,
    /// Number of heads H.
    pub n_head: usize,
    /// Channels per head D (C = H * D).
    pub head_dim: usize,
}

impl AttentionDims {
    /// Model width C = H * D.
    pub fn channels(&self) -> usize {
        self.n_head * self.head_dim
    }

    /// The 1 / sqrt(D) score scale.
    fn scale<T: Float>(&self) -> T {
        T::one() / T::c(self.head_dim as f64).sqrt()
    }

    /// Elements of one sequence in qkv: T * 3C.
    fn qkv_seq(&self) -> usize {
        self.seq_len * 3 * self.channels()
    }

    /// One head's (T, D) view inside a (T, row_stride) buffer; heads are D apart.
    fn head_view(&self, row_stride: usize) -> MatLayout {
        MatLayout {
            rows: self.seq_len,
            cols: self.head_dim,
            row_stride,
            col_stride: 1,
        }
    }

    /// Part `part` (0 = q, 1 = k, 2 = v) of sequence `b` as a batch-over-heads operand.
    fn qkv_operand<'a, T>(&self, qkv: &'a [T], b: usize, part: usize) -> BatchOperand<'a, T> {
        BatchOperand {
            data: &qkv[b * self.qkv_seq() + part * self.channels()..],
            layout: self.head_view(3 * self.channels()),
            batch_stride: self.head_dim,
        }
    }

    /// Sequence `b` of a (B, T, C) buffer (the output or its gradient) as a batch-over-heads
    /// operand.
    fn rows_operand<'a, T>(&self, rows: &'a [T], b: usize) -> BatchOperand<'a, T> {
        BatchOperand {
            data: &rows[b * self.seq_len * self.channels()..],
            layout: self.head_view(self.channels()),
            batch_stride: self.head_dim,
        }
    }

    /// A contiguous (H, T, T) buffer as a batch-over-heads operand.
    fn square_operand<'a, T>(&self, data: &'a [T]) -> BatchOperand<'a, T> {
        BatchOperand {
            data,
            layout: MatLayout::row_major(self.seq_len, self.seq_len),
            batch_stride: self.seq_len * self.seq_len,
        }
    }
}

/// `dst (H, rows, cols) = lhs[h] x rhs[h]` for every head, one head per task.
fn per_head_product<T: Float>(
    dims: &AttentionDims,
    dst: &mut [T],
    dst_layout: MatLayout,
    lhs: BatchOperand<'_, T>,
    rhs: BatchOperand<'_, T>,
) {
    let stride = dst_layout.rows * dst_layout.cols;
    batched_gemm_into(dst, dst_layout, stride, false, lhs, rhs, dims.n_head);
}

/// Forward: `out` (B, T, C) and the attention probabilities `att` (B, H, T, T) from `qkv`
/// (B, T, 3C) and an optional `key_mask` (B, T) of real (true) and padding (false) tokens.
pub fn attention_forward<T: Float>(
    dims: &AttentionDims,
    qkv: &[T],
    key_mask: Option<&[bool]>,
    out: &mut [T],
    att: &mut [T],
) {
    let (t_len, d, c) = (dims.seq_len, dims.head_dim, dims.channels());
    if t_len == 0 || dims.batch == 0 || c == 0 {
        return;
    }
    let square = t_len * t_len;
    let scale = dims.scale::<T>();
    let mut heads = vec![T::zero(); dims.n_head * t_len * d]; // (H, T, D)
    let att_seq = dims.n_head * square;
    for (b, att_b) in att.chunks_exact_mut(att_seq).enumerate() {
        // scores (H, T, T) = q k^T, unscaled.
        let k_t = BatchOperand {
            layout: dims.head_view(3 * c).t(),
            ..dims.qkv_operand(qkv, b, 1)
        };
        let square_layout = MatLayout::row_major(t_len, t_len);
        per_head_product(dims, att_b, square_layout, dims.qkv_operand(qkv, b, 0), k_t);
        let mask_b = key_mask.map(|m| &m[b * t_len..(b + 1) * t_len]);
        masked_softmax_rows(att_b, t_len, scale, mask_b);
        // heads (H, T, D) = att v
        per_head_product(
            dims,
            &mut heads,
            MatLayout::row_major(t_len, d),
            dims.square_operand(att_b),
            dims.qkv_operand(qkv, b, 2),
        );
        let out_b = &mut out[b * t_len * c..(b + 1) * t_len * c];
        interleave_heads(dims, &[&heads], out_b);
    }
}

/// Softmax of `scale * scores` over the allowed keys of each row of `att` (H * T rows of T);
/// disallowed entries become exactly 0, padded query rows all 0.
fn masked_softmax_rows<T: Float>(att: &mut [T], t_len: usize, scale: T, mask: Option<&[bool]>) {
    let rows_task = rows_per_task(t_len);
    att.par_chunks_mut(rows_task * t_len)
        .enumerate()
        .for_each(|(task, rows)| {
            for (r, row) in rows.chunks_exact_mut(t_len).enumerate() {
                let i = (task * rows_task + r) % t_len;
                if mask.is_some_and(|m| !m[i]) {
                    row.fill(T::zero());
                    continue;
                }
                let (live, future) = row.split_at_mut(i + 1);
                future.fill(T::zero());
                if let Some(mask) = mask {
                    for (s, &real) in live.iter_mut().zip(mask) {
                        if !real {
                            *s = T::neg_infinity();
                        }
                    }
                }
                // Key i itself is allowed, so the maximum is finite (unless the scores are not).
                let m = max(live);
                live.iter_mut().for_each(|s| *s = (*s - m) * scale);
                exp_in_place(live);
                let inv = T::one() / sum(live);
                live.iter_mut().for_each(|p| *p = *p * inv);
            }
        });
}

/// Writes head-major parts (each (H, T, D)) side by side into rows (T, parts * C): part p, head h
/// goes to columns p * C + h * D.
fn interleave_heads<T: Float>(dims: &AttentionDims, parts: &[&[T]], rows: &mut [T]) {
    let (t_len, d, c) = (dims.seq_len, dims.head_dim, dims.channels());
    rows.par_chunks_mut(parts.len() * c)
        .enumerate()
        .with_min_len(rows_per_task(parts.len() * c))
        .for_each(|(t, row)| {
            for (p, part) in parts.iter().enumerate() {
                for h in 0..dims.n_head {
                    let src = &part[(h * t_len + t) * d..(h * t_len + t + 1) * d];
                    row[p * c + h * d..p * c + (h + 1) * d].copy_from_slice(src);
                }
            }
        });
}

/// Backward: `dqkv` (B, T, 3C) from `dout` (B, T, C), the forward's `qkv` and its probabilities
/// `att` (B, H, T, T). `dqkv` is overwritten.
pub fn attention_backward<T: Float>(
    dims: &AttentionDims,
    dout: &[T],
    qkv: &[T],
    att: &[T],
    dqkv: &mut [T],
) {
    let (t_len, d, c) = (dims.seq_len, dims.head_dim, dims.channels());
    if t_len == 0 || dims.batch == 0 || c == 0 {
        return;
    }
    let square = t_len * t_len;
    let scale = dims.scale::<T>();
    let head_elems = dims.n_head * t_len * d;
    let mut dscores = vec![T::zero(); dims.n_head * square]; // (H, T, T)
    let mut dq = vec![T::zero(); head_elems]; // (H, T, D)
    let mut dk = vec![T::zero(); head_elems];
    let mut dv = vec![T::zero(); head_elems];
    let head_layout = MatLayout::row_major(t_len, d);
    let square_layout = MatLayout::row_major(t_len, t_len);
    for (b, att_b) in att.chunks_exact(dims.n_head * square).enumerate() {
        let dout_b = dims.rows_operand(dout, b);
        // dv = att^T dout
        per_head_product(
            dims,
            &mut dv,
            head_layout,
            transposed(dims.square_operand(att_b)),
            dout_b,
        );
        // datt = dout v^T
        per_head_product(
            dims,
            &mut dscores,
            square_layout,
            dout_b,
            transposed(dims.qkv_operand(qkv, b, 2)),
        );
        softmax_backward_rows(&mut dscores, att_b, t_len, scale);
        // dq = dscores k; dk = dscores^T q
        per_head_product(
            dims,
            &mut dq,
            head_layout,
            dims.square_operand(&dscores),
            dims.qkv_operand(qkv, b, 1),
        );
        per_head_product(
            dims,
            &mut dk,
            head_layout,
            transposed(dims.square_operand(&dscores)),
            dims.qkv_operand(qkv, b, 0),
        );
        let dqkv_b = &mut dqkv[b * dims.qkv_seq()..(b + 1) * dims.qkv_seq()];
        interleave_heads(dims, &[&dq, &dk, &dv], dqkv_b);
    }
}

/// The same operand read transposed.
fn transposed<T>(operand: BatchOperand<'_, T>) -> BatchOperand<'_, T> {
    BatchOperand {
        layout: operand.layout.t(),
        ..operand
    }
}

/// In place: `datt` -> d(raw scores) = scale * p * (datt - sum(datt * p)) per row; rows where p
/// is all zero (padded queries) and masked entries come out 0.
fn softmax_backward_rows<T: Float>(datt: &mut [T], att: &[T], t_len: usize, scale: T) {
    let task = rows_per_task(t_len) * t_len;
    datt.par_chunks_mut(task)
        .zip(att.par_chunks(task))
        .for_each(|(datt, att)| {
            for (g, p) in datt.chunks_exact_mut(t_len).zip(att.chunks_exact(t_len)) {
                let weighted = dot(g, p);
                for (g, &p) in g.iter_mut().zip(p) {
                    *g = scale * p * (*g - weighted);
                }
            }
        });
}
