//! A CPU emulation of kernels/flash_attention.cu, block by block, in fp32 with fused
//! multiply-adds: the same layouts (qkv (B, T, 3, H, D), out (B, T, C), lse (B, H, T)), the same
//! tiles (forward: query tiles of `fwd_q` rows, key tiles of `fwd_k`; backward: key tiles of
//! `bwd_k`, query tiles of `bwd_q` starting at the key tile's first causal query tile), the same
//! masking rule, the same online softmax (running max m with the m = -inf guard, running sum l,
//! O rescaled by exp(m_old - m_new)), lse = m + ln(l) or +inf for a padded query, and the same
//! backward (P recomputed from lse, delta = rowsum(dO * O), dS = P (dP - delta), dQ accumulated
//! across key-tile blocks as the atomics do, dK scaled at the end). It checks the algorithm, not
//! the CUDA code: thread mapping, shared-memory indexing and races are only checked by the GPU
//! test.

#![allow(dead_code)]

pub mod tensor_core;

/// Tile sizes (the kernels': `Tiles::KERNEL`).
#[derive(Debug, Clone, Copy)]
pub struct Tiles {
    pub fwd_q: usize,
    pub fwd_k: usize,
    pub bwd_q: usize,
    pub bwd_k: usize,
}

impl Tiles {
    /// The compiled kernels' tiles.
    pub const KERNEL: Tiles = Tiles {
        fwd_q: rlhf_tensor::cuda::flash_attention::FWD_BLOCK_Q,
        fwd_k: rlhf_tensor::cuda::flash_attention::FWD_BLOCK_K,
        bwd_q: rlhf_tensor::cuda::flash_attention::BWD_BLOCK_Q,
        bwd_k: rlhf_tensor::cuda::flash_attention::BWD_BLOCK_K,
    };
}

/// B, T, H, D.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    pub batch: usize,
    pub seq_len: usize,
    pub heads: usize,
    pub head_dim: usize,
}

impl Geometry {
    fn c(&self) -> usize {
        self.heads * self.head_dim
    }

    fn scale(&self) -> f32 {
        1.0 / (self.head_dim as f32).sqrt()
    }

    /// Offset of (b, t, part, h, 0) in qkv.
    fn qkv_at(&self, b: usize, t: usize, part: usize, h: usize) -> usize {
        ((b * self.seq_len + t) * 3 + part) * self.c() + h * self.head_dim
    }

    /// Offset of (b, t, h, 0) in out / dout.
    fn out_at(&self, b: usize, t: usize, h: usize) -> usize {
        (b * self.seq_len + t) * self.c() + h * self.head_dim
    }

    /// `token_real` of the kernels.
    fn real(&self, mask: Option<&[bool]>, b: usize, t: usize) -> bool {
        t < self.seq_len && mask.is_none_or(|m| m[b * self.seq_len + t])
    }
}

/// `rows` rows from `row0` of one head's part as an fp32 tile (rows >= T zero), like
/// `load_rows`.
fn load_rows(
    g: &Geometry,
    src: &[f32],
    at: impl Fn(usize) -> usize,
    row0: usize,
    rows: usize,
) -> Vec<f32> {
    let d = g.head_dim;
    let mut tile = vec![0.0f32; rows * d];
    for r in 0..rows {
        let t = row0 + r;
        if t < g.seq_len {
            tile[r * d..(r + 1) * d].copy_from_slice(&src[at(t)..at(t) + d]);
        }
    }
    tile
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0f32, |s, (&x, &y)| x.mul_add(y, s))
}

/// The forward kernel: (out (B, T, C), lse (B, H, T)).
pub fn forward(
    g: &Geometry,
    tiles: Tiles,
    qkv: &[f32],
    mask: Option<&[bool]>,
) -> (Vec<f32>, Vec<f32>) {
    let (t_len, d, scale) = (g.seq_len, g.head_dim, g.scale());
    let (br, bc) = (tiles.fwd_q, tiles.fwd_k);
    let mut out = vec![f32::NAN; g.batch * t_len * g.c()];
    let mut lse = vec![f32::NAN; g.batch * g.heads * t_len];
    for b in 0..g.batch {
        for h in 0..g.heads {
            for q0 in (0..t_len).step_by(br) {
                let q = load_rows(g, qkv, |t| g.qkv_at(b, t, 0, h), q0, br);
                let q_ok: Vec<bool> = (0..br).map(|r| g.real(mask, b, q0 + r)).collect();
                let mut m = vec![f32::NEG_INFINITY; br];
                let mut l = vec![0.0f32; br];
                let mut acc = vec![0.0f32; br * d];
                let kv_end = t_len.min(q0 + br);
                for k0 in (0..kv_end).step_by(bc) {
                    let k = load_rows(g, qkv, |t| g.qkv_at(b, t, 1, h), k0, bc);
                    let v = load_rows(g, qkv, |t| g.qkv_at(b, t, 2, h), k0, bc);
                    let mut p = vec![0.0f32; br * bc];
                    for r in 0..br {
                        let i = q0 + r;
                        let s: Vec<f32> = (0..bc)
                            .map(|j| {
                                let key = k0 + j;
                                let raw = dot(&q[r * d..(r + 1) * d], &k[j * d..(j + 1) * d]);
                                if q_ok[r] && g.real(mask, b, key) && key <= i {
                                    raw * scale
                                } else {
                                    f32::NEG_INFINITY
                                }
                            })
                            .collect();
                        let tile_max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        let m_new = m[r].max(tile_max);
                        let m_use = if m_new == f32::NEG_INFINITY {
                            0.0
                        } else {
                            m_new
                        };
                        let alpha = (m[r] - m_use).exp();
                        let mut row_sum = 0.0f32;
                        for j in 0..bc {
                            let e = (s[j] - m_use).exp();
                            row_sum += e;
                            p[r * bc + j] = e;
                        }
                        l[r] = l[r] * alpha + row_sum;
                        m[r] = m_new;
                        acc[r * d..(r + 1) * d].iter_mut().for_each(|a| *a *= alpha);
                    }
                    for r in 0..br {
                        for j in 0..bc {
                            let pj = p[r * bc + j];
                            for c in 0..d {
                                acc[r * d + c] = pj.mul_add(v[j * d + c], acc[r * d + c]);
                            }
                        }
                    }
                }
                for r in 0..br {
                    let i = q0 + r;
                    if i >= t_len {
                        continue;
                    }
                    let inv = if l[r] > 0.0 { 1.0 / l[r] } else { 0.0 };
                    let at = g.out_at(b, i, h);
                    for c in 0..d {
                        out[at + c] = acc[r * d + c] * inv;
                    }
                    lse[(b * g.heads + h) * t_len + i] = if l[r] > 0.0 {
                        m[r] + l[r].ln()
                    } else {
                        f32::INFINITY
                    };
                }
            }
        }
    }
    (out, lse)
}

/// The three backward kernels (prep, main, dq): dqkv (B, T, 3C).
pub fn backward(
    g: &Geometry,
    tiles: Tiles,
    qkv: &[f32],
    mask: Option<&[bool]>,
    out: &[f32],
    lse: &[f32],
    dout: &[f32],
) -> Vec<f32> {
    let (t_len, d, scale) = (g.seq_len, g.head_dim, g.scale());
    let (br, bc) = (tiles.bwd_q, tiles.bwd_k);
    let rows = g.batch * g.heads * t_len;
    // flash_bwd_prep
    let mut delta = vec![0.0f32; rows];
    let mut dq_acc = vec![f32::NAN; rows * d];
    for (row, dl) in delta.iter_mut().enumerate() {
        let (i, bh) = (row % t_len, row / t_len);
        let at = g.out_at(bh / g.heads, i, bh % g.heads);
        *dl = dot(&dout[at..at + d], &out[at..at + d]);
        dq_acc[row * d..(row + 1) * d].fill(0.0);
    }
    let mut dqkv = vec![f32::NAN; qkv.len()];
    // flash_bwd: one block per (key tile, b, h)
    for b in 0..g.batch {
        for h in 0..g.heads {
            let bh = b * g.heads + h;
            for k0 in (0..t_len).step_by(bc) {
                let k = load_rows(g, qkv, |t| g.qkv_at(b, t, 1, h), k0, bc);
                let v = load_rows(g, qkv, |t| g.qkv_at(b, t, 2, h), k0, bc);
                let mut dk = vec![0.0f32; bc * d];
                let mut dv = vec![0.0f32; bc * d];
                let mut q0 = (k0 / br) * br;
                while q0 < t_len {
                    let q = load_rows(g, qkv, |t| g.qkv_at(b, t, 0, h), q0, br);
                    let g_o = load_rows(g, dout, |t| g.out_at(b, t, h), q0, br);
                    let mut p = vec![0.0f32; br * bc];
                    let mut ds = vec![0.0f32; br * bc];
                    for r in 0..br {
                        let i = q0 + r;
                        let q_ok = g.real(mask, b, i);
                        let lse_i = if q_ok {
                            lse[bh * t_len + i]
                        } else {
                            f32::INFINITY
                        };
                        let delta_i = if q_ok { delta[bh * t_len + i] } else { 0.0 };
                        for j in 0..bc {
                            let key = k0 + j;
                            let s = dot(&q[r * d..(r + 1) * d], &k[j * d..(j + 1) * d]);
                            let dp = dot(&g_o[r * d..(r + 1) * d], &v[j * d..(j + 1) * d]);
                            let ok = q_ok && g.real(mask, b, key) && key <= i;
                            let pj = if ok { (s * scale - lse_i).exp() } else { 0.0 };
                            p[r * bc + j] = pj;
                            ds[r * bc + j] = pj * (dp - delta_i);
                        }
                    }
                    for r in 0..br {
                        for j in 0..bc {
                            for c in 0..d {
                                dv[j * d + c] =
                                    p[r * bc + j].mul_add(g_o[r * d + c], dv[j * d + c]);
                                dk[j * d + c] = ds[r * bc + j].mul_add(q[r * d + c], dk[j * d + c]);
                            }
                        }
                    }
                    for r in 0..br {
                        let i = q0 + r;
                        if !g.real(mask, b, i) {
                            continue;
                        }
                        for c in 0..d {
                            let mut acc = 0.0f32;
                            for j in 0..bc {
                                acc = ds[r * bc + j].mul_add(k[j * d + c], acc);
                            }
                            dq_acc[(bh * t_len + i) * d + c] += acc * scale;
                        }
                    }
                    q0 += br;
                }
                for j in 0..bc {
                    let key = k0 + j;
                    if key >= t_len {
                        continue;
                    }
                    let (ka, va) = (g.qkv_at(b, key, 1, h), g.qkv_at(b, key, 2, h));
                    for c in 0..d {
                        dqkv[ka + c] = dk[j * d + c] * scale;
                        dqkv[va + c] = dv[j * d + c];
                    }
                }
            }
        }
    }
    // flash_bwd_dq
    for (idx, &value) in dq_acc.iter().enumerate() {
        let c = idx % d;
        let rest = idx / d;
        let (t, bh) = (rest % t_len, rest / t_len);
        dqkv[g.qkv_at(bh / g.heads, t, 0, bh % g.heads) + c] = value;
    }
    dqkv
}
