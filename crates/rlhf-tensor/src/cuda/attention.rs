//! Causal multi-head self-attention from simple parts (a fused flash attention is a later issue):
//! head layout kernels (kernels/attention.cu), cuBLAS strided-batched GEMMs and the causal
//! softmax of softmax.cu. Forward and backward are written out as in llm.c.
//!
//! Shapes: qkv (B, T, 3C) with C = H * D; q, k, v, y (B, H, T, D); scores and probs
//! (B, H, T, T); out (B, T, C); the optional key-padding mask (B, T) i32, 0 = padding.
//!
//! The key-padding mask sets the scores of padded keys, and whole rows of padded queries, to
//! -inf before the causal softmax (`mask_scores`): padded keys get probability 0, a padded
//! query's probabilities are all 0 (its output is 0 and it passes no gradient), as in the CPU
//! kernels. The backward needs no mask: the probabilities carry it in their zeros.

use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

use super::device::CudaDevice;
use super::dtype::CudaFloat;
use super::launch::{as_i32, check_len, flat_config, launched};
use super::matmul::{GemmShape, gemm};
use super::registry::KernelModule;
use super::softmax::{SoftmaxConfig, softmax_backward, softmax_forward};
use crate::Result;

/// Sizes of one attention layer; the layout of `HeadsConfig` in attention.cu.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadsConfig {
    /// B.
    pub batch: i32,
    /// T.
    pub seq_len: i32,
    /// H.
    pub heads: i32,
    /// D = C / H.
    pub head_dim: i32,
}

// SAFETY: repr(C) plain old data matching the CUDA struct field for field.
unsafe impl DeviceRepr for HeadsConfig {}

impl HeadsConfig {
    /// B, T, H, D.
    pub fn new(batch: usize, seq_len: usize, heads: usize, head_dim: usize) -> Result<HeadsConfig> {
        let op = "cuda::HeadsConfig";
        Ok(HeadsConfig {
            batch: as_i32(op, "batch", batch)?,
            seq_len: as_i32(op, "seq_len", seq_len)?,
            heads: as_i32(op, "heads", heads)?,
            head_dim: as_i32(op, "head_dim", head_dim)?,
        })
    }

    /// B * H * T * D = B * T * C.
    pub fn elements(&self) -> usize {
        self.batch.max(0) as usize
            * self.heads.max(0) as usize
            * self.seq_len.max(0) as usize
            * self.head_dim.max(0) as usize
    }

    fn bh(&self) -> usize {
        self.batch.max(0) as usize * self.heads.max(0) as usize
    }

    fn t(&self) -> usize {
        self.seq_len.max(0) as usize
    }

    fn d(&self) -> usize {
        self.head_dim.max(0) as usize
    }
}

fn layout<T: CudaFloat>(
    dev: &CudaDevice,
    op: &'static str,
    kernel: &str,
    cfg: HeadsConfig,
    inputs: &[&CudaSlice<T>],
    outputs: &mut [&mut CudaSlice<T>],
) -> Result<()> {
    let n = cfg.elements();
    let f = dev.typed::<T>(KernelModule::Attention, kernel)?;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&cfg);
    for x in inputs {
        args.arg(*x);
    }
    for y in outputs.iter_mut() {
        args.arg(&mut **y);
    }
    // SAFETY: the callers check that every buffer holds n elements (3n for qkv).
    launched(op, unsafe { args.launch(flat_config(dev, n)) })
}

/// qkv (B, T, 3, H, D) -> q, k, v (B, H, T, D).
pub fn qkv_to_heads<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: HeadsConfig,
    qkv: &CudaSlice<T>,
    q: &mut CudaSlice<T>,
    k: &mut CudaSlice<T>,
    v: &mut CudaSlice<T>,
) -> Result<()> {
    let op = "cuda::qkv_to_heads";
    let n = cfg.elements();
    check_len(op, "qkv", qkv.len(), 3 * n)?;
    for (what, len) in [("q", q.len()), ("k", k.len()), ("v", v.len())] {
        check_len(op, what, len, n)?;
    }
    layout(dev, op, "qkv_to_heads", cfg, &[qkv], &mut [q, k, v])
}

/// dq, dk, dv (B, H, T, D) -> dqkv (B, T, 3, H, D).
pub fn heads_to_qkv<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: HeadsConfig,
    dq: &CudaSlice<T>,
    dk: &CudaSlice<T>,
    dv: &CudaSlice<T>,
    dqkv: &mut CudaSlice<T>,
) -> Result<()> {
    let op = "cuda::heads_to_qkv";
    let n = cfg.elements();
    check_len(op, "dqkv", dqkv.len(), 3 * n)?;
    for (what, len) in [("dq", dq.len()), ("dk", dk.len()), ("dv", dv.len())] {
        check_len(op, what, len, n)?;
    }
    layout(dev, op, "heads_to_qkv", cfg, &[dq, dk, dv], &mut [dqkv])
}

/// y (B, H, T, D) -> out (B, T, H, D).
pub fn heads_to_seq<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: HeadsConfig,
    y: &CudaSlice<T>,
    out: &mut CudaSlice<T>,
) -> Result<()> {
    let op = "cuda::heads_to_seq";
    check_len(op, "y", y.len(), cfg.elements())?;
    check_len(op, "out", out.len(), cfg.elements())?;
    layout(dev, op, "heads_to_seq", cfg, &[y], &mut [out])
}

/// dout (B, T, H, D) -> dy (B, H, T, D).
pub fn seq_to_heads<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: HeadsConfig,
    dout: &CudaSlice<T>,
    dy: &mut CudaSlice<T>,
) -> Result<()> {
    let op = "cuda::seq_to_heads";
    check_len(op, "dout", dout.len(), cfg.elements())?;
    check_len(op, "dy", dy.len(), cfg.elements())?;
    layout(dev, op, "seq_to_heads", cfg, &[dout], &mut [dy])
}

/// Buffers the forward fills and the backward reads.
#[derive(Debug)]
pub struct AttentionSaved<T> {
    /// Queries (B, H, T, D).
    pub q: CudaSlice<T>,
    /// Keys (B, H, T, D).
    pub k: CudaSlice<T>,
    /// Values (B, H, T, D).
    pub v: CudaSlice<T>,
    /// Causal attention probabilities (B, H, T, T).
    pub probs: CudaSlice<T>,
}

fn softmax_config(cfg: HeadsConfig) -> Result<SoftmaxConfig> {
    let mut s = SoftmaxConfig::new(cfg.bh() * cfg.t(), cfg.t())?;
    s.scale = 1.0 / (cfg.d().max(1) as f32).sqrt();
    s.causal = 1;
    Ok(s)
}

/// Sets masked scores (B, H, T, T) to -inf: padded keys (`key_mask[b, j] == 0`) and the rows
/// of padded queries; `key_mask` (B, T) i32.
pub fn mask_scores<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: HeadsConfig,
    key_mask: &CudaSlice<i32>,
    scores: &mut CudaSlice<T>,
) -> Result<()> {
    let op = "cuda::mask_scores";
    let (bh, t) = (cfg.bh(), cfg.t());
    check_len(
        op,
        "key_mask",
        key_mask.len(),
        cfg.batch.max(0) as usize * t,
    )?;
    check_len(op, "scores", scores.len(), bh * t * t)?;
    if bh * t == 0 {
        return Ok(());
    }
    let f = dev.typed::<T>(KernelModule::Attention, "mask_scores")?;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&cfg).arg(key_mask).arg(scores);
    // SAFETY: key_mask holds B * T ints, scores B * H * T * T elements (checked above).
    launched(op, unsafe { args.launch(flat_config(dev, bh * t * t)) })
}

/// Causal self-attention: out (B, T, C) = merge_heads(softmax(q k^T / sqrt(D), causal) v), with
/// q, k, v split from qkv (B, T, 3C). Returns what the backward needs.
pub fn attention_forward<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: HeadsConfig,
    qkv: &CudaSlice<T>,
    out: &mut CudaSlice<T>,
) -> Result<AttentionSaved<T>> {
    attention_forward_masked(dev, cfg, qkv, None, out)
}

/// [`attention_forward`] with an optional key-padding mask (B, T), 0 = padding (see the module
/// docs).
pub fn attention_forward_masked<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: HeadsConfig,
    qkv: &CudaSlice<T>,
    key_mask: Option<&CudaSlice<i32>>,
    out: &mut CudaSlice<T>,
) -> Result<AttentionSaved<T>> {
    let op = "cuda::attention_forward";
    let n = cfg.elements();
    let (bh, t, d) = (cfg.bh(), cfg.t(), cfg.d());
    check_len(op, "qkv", qkv.len(), 3 * n)?;
    check_len(op, "out", out.len(), n)?;
    let mut q = dev.zeros::<T>(n)?;
    let mut k = dev.zeros::<T>(n)?;
    let mut v = dev.zeros::<T>(n)?;
    qkv_to_heads(dev, cfg, qkv, &mut q, &mut k, &mut v)?;
    // scores (BH, T, T) = q (T, D) @ k^T
    let mut scores = dev.zeros::<T>(bh * t * t)?;
    gemm(
        dev,
        GemmShape::new(t, t, d, false, true).batched(bh),
        &q,
        &k,
        &mut scores,
    )?;
    if let Some(mask) = key_mask {
        mask_scores(dev, cfg, mask, &mut scores)?;
    }
    let mut probs = dev.zeros::<T>(bh * t * t)?;
    softmax_forward(dev, softmax_config(cfg)?, &scores, &mut probs)?;
    // y (BH, T, D) = probs (T, T) @ v (T, D); scores' buffer is not needed any more.
    drop(scores);
    let mut y = dev.zeros::<T>(n)?;
    gemm(
        dev,
        GemmShape::new(t, d, t, false, false).batched(bh),
        &probs,
        &v,
        &mut y,
    )?;
    heads_to_seq(dev, cfg, &y, out)?;
    Ok(AttentionSaved { q, k, v, probs })
}

/// Backward of [`attention_forward`]: dqkv (B, T, 3C) from dout (B, T, C).
pub fn attention_backward<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: HeadsConfig,
    saved: &AttentionSaved<T>,
    dout: &CudaSlice<T>,
    dqkv: &mut CudaSlice<T>,
) -> Result<()> {
    attention_backward_from_qkv(
        dev,
        cfg,
        &saved.q,
        &saved.k,
        &saved.v,
        &saved.probs,
        dout,
        dqkv,
    )
}

/// Backward of [`attention_forward`] from the forward's `qkv` (B, T, 3C) and probabilities
/// (B, H, T, T) only: q, k and v are split from qkv again (one cheap layout pass) instead of being
/// kept, which is what the tensor-level attention keeps in its cache.
pub fn attention_backward_qkv<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: HeadsConfig,
    qkv: &CudaSlice<T>,
    probs: &CudaSlice<T>,
    dout: &CudaSlice<T>,
    dqkv: &mut CudaSlice<T>,
) -> Result<()> {
    let n = cfg.elements();
    check_len("cuda::attention_backward", "qkv", qkv.len(), 3 * n)?;
    let mut q = dev.zeros::<T>(n)?;
    let mut k = dev.zeros::<T>(n)?;
    let mut v = dev.zeros::<T>(n)?;
    qkv_to_heads(dev, cfg, qkv, &mut q, &mut k, &mut v)?;
    attention_backward_from_qkv(dev, cfg, &q, &k, &v, probs, dout, dqkv)
}

#[allow(clippy::too_many_arguments)]
fn attention_backward_from_qkv<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: HeadsConfig,
    q: &CudaSlice<T>,
    k: &CudaSlice<T>,
    v: &CudaSlice<T>,
    probs: &CudaSlice<T>,
    dout: &CudaSlice<T>,
    dqkv: &mut CudaSlice<T>,
) -> Result<()> {
    let op = "cuda::attention_backward";
    let n = cfg.elements();
    let (bh, t, d) = (cfg.bh(), cfg.t(), cfg.d());
    check_len(op, "dout", dout.len(), n)?;
    check_len(op, "dqkv", dqkv.len(), 3 * n)?;
    check_len(op, "probs", probs.len(), bh * t * t)?;
    for (what, len) in [("q", q.len()), ("k", k.len()), ("v", v.len())] {
        check_len(op, what, len, n)?;
    }
    let mut dy = dev.zeros::<T>(n)?;
    seq_to_heads(dev, cfg, dout, &mut dy)?;
    // dprobs (T, T) = dy (T, D) @ v^T; dv (T, D) = probs^T (T, T) @ dy
    let mut dprobs = dev.zeros::<T>(bh * t * t)?;
    gemm(
        dev,
        GemmShape::new(t, t, d, false, true).batched(bh),
        &dy,
        v,
        &mut dprobs,
    )?;
    let mut dv = dev.zeros::<T>(n)?;
    gemm(
        dev,
        GemmShape::new(t, d, t, true, false).batched(bh),
        probs,
        &dy,
        &mut dv,
    )?;
    // dscores = scale * softmax_backward(dprobs, probs), causal entries zero.
    let mut dscores = dev.zeros::<T>(bh * t * t)?;
    softmax_backward(dev, softmax_config(cfg)?, &dprobs, probs, &mut dscores)?;
    // dq (T, D) = dscores @ k; dk (T, D) = dscores^T @ q
    let mut dq = dev.zeros::<T>(n)?;
    gemm(
        dev,
        GemmShape::new(t, d, t, false, false).batched(bh),
        &dscores,
        k,
        &mut dq,
    )?;
    let mut dk = dev.zeros::<T>(n)?;
    gemm(
        dev,
        GemmShape::new(t, d, t, true, false).batched(bh),
        &dscores,
        q,
        &mut dk,
    )?;
    heads_to_qkv(dev, cfg, &dq, &dk, &dv, dqkv)
}
