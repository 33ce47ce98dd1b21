//! A lane-level emulation of the tensor-core forward (`flash_fwd_tc` in
//! kernels/flash_attention.cu): each warp's 32 lanes hold their fragments exactly as the kernel
//! indexes them, `mma.sync.m16n8k16` is emulated from the PTX ISA fragment layouts (A 16 x 16,
//! B 16 x 8, C 16 x 8; g = lane / 4, t = lane % 4), quad shuffles are reductions over the four
//! lanes of a g, and P is rounded to bf16 before the P V product, as the kernel packs it. It
//! checks the kernel's fragment indexing against the layouts as documented, not the hardware.

// Lanes, registers and tiles are indexed as the kernel indexes them, on purpose.
#![allow(clippy::needless_range_loop)]

use half::bf16;

use super::Geometry;

const BR: usize = 64;
const BC: usize = 64;
const WARPS: usize = BR / 16;

/// One lane's A fragment: four registers of two values (low, high half).
type AFrag = [[f32; 2]; 4];
/// One lane's B fragment.
type BFrag = [[f32; 2]; 2];

/// `c += A B` for one warp, every operand given as the 32 lanes' fragments.
fn mma(c: &mut [[f32; 4]; 32], a: &[AFrag; 32], b: &[BFrag; 32]) {
    let mut am = [[0.0f32; 16]; 16];
    let mut bm = [[0.0f32; 8]; 16];
    for lane in 0..32 {
        let (g, t) = (lane / 4, lane % 4);
        for e in 0..2 {
            am[g][2 * t + e] = a[lane][0][e];
            am[g + 8][2 * t + e] = a[lane][1][e];
            am[g][2 * t + 8 + e] = a[lane][2][e];
            am[g + 8][2 * t + 8 + e] = a[lane][3][e];
            bm[2 * t + e][g] = b[lane][0][e];
            bm[2 * t + 8 + e][g] = b[lane][1][e];
        }
    }
    for (lane, acc) in c.iter_mut().enumerate() {
        let (g, t) = (lane / 4, lane % 4);
        for (i, value) in acc.iter_mut().enumerate() {
            let (row, col) = (g + 8 * (i / 2), 2 * t + i % 2);
            *value += (0..16).map(|k| am[row][k] * bm[k][col]).sum::<f32>();
        }
    }
}

fn round_bf16(x: f32) -> f32 {
    bf16::from_f32(x).to_f32()
}

/// The tensor-core forward: (out (B, T, C), lse (B, H, T)). Inputs must be bf16 values.
pub fn forward(g: &Geometry, qkv: &[f32], mask: Option<&[bool]>) -> (Vec<f32>, Vec<f32>) {
    let (t_len, d, scale) = (g.seq_len, g.head_dim, g.scale());
    let (kd, nt, nd) = (d / 16, BC / 8, d / 8);
    let mut out = vec![f32::NAN; g.batch * t_len * g.c()];
    let mut lse = vec![f32::NAN; g.batch * g.heads * t_len];
    for b in 0..g.batch {
        for h in 0..g.heads {
            for q0 in (0..t_len).step_by(BR) {
                let sq = super::load_rows(g, qkv, |t| g.qkv_at(b, t, 0, h), q0, BR);
                for warp in 0..WARPS {
                    // Per lane: Q fragments, rows, running statistics, O accumulators.
                    let rq = |lane: usize| warp * 16 + lane / 4;
                    let qa: Vec<Vec<AFrag>> = (0..32)
                        .map(|lane| {
                            let (r, t) = (rq(lane), lane % 4);
                            (0..kd)
                                .map(|kc| {
                                    let at = |row: usize, col: usize| {
                                        [sq[row * d + col], sq[row * d + col + 1]]
                                    };
                                    let c0 = kc * 16 + 2 * t;
                                    [at(r, c0), at(r + 8, c0), at(r, c0 + 8), at(r + 8, c0 + 8)]
                                })
                                .collect()
                        })
                        .collect();
                    let rows = |lane: usize| [q0 + rq(lane), q0 + rq(lane) + 8];
                    let mut m = [[f32::NEG_INFINITY; 2]; 32];
                    let mut l = [[0.0f32; 2]; 32];
                    let mut o = vec![[[0.0f32; 4]; 32]; nd];
                    let kv_end = t_len.min(q0 + BR);
                    for k0 in (0..kv_end).step_by(BC) {
                        let sk = super::load_rows(g, qkv, |t| g.qkv_at(b, t, 1, h), k0, BC);
                        let sv = super::load_rows(g, qkv, |t| g.qkv_at(b, t, 2, h), k0, BC);
                        // S tiles: s[j][lane][e].
                        let mut s = vec![[[0.0f32; 4]; 32]; nt];
                        for kc in 0..kd {
                            let a: [AFrag; 32] = std::array::from_fn(|lane| qa[lane][kc]);
                            for (j, sj) in s.iter_mut().enumerate() {
                                let bfr: [BFrag; 32] = std::array::from_fn(|lane| {
                                    let (gg, t) = (lane / 4, lane % 4);
                                    let at = (j * 8 + gg) * d + kc * 16 + 2 * t;
                                    [[sk[at], sk[at + 1]], [sk[at + 8], sk[at + 9]]]
                                });
                                mma(sj, &a, &bfr);
                            }
                        }
                        let mut tile_max = [[f32::NEG_INFINITY; 2]; 32];
                        for lane in 0..32 {
                            let t = lane % 4;
                            for (j, sj) in s.iter_mut().enumerate() {
                                for e in 0..4 {
                                    let x = e / 2;
                                    let key = k0 + 8 * j + 2 * t + e % 2;
                                    let row = rows(lane)[x];
                                    let ok =
                                        g.real(mask, b, row) && key <= row && g.real(mask, b, key);
                                    sj[lane][e] = if ok {
                                        sj[lane][e] * scale
                                    } else {
                                        f32::NEG_INFINITY
                                    };
                                    tile_max[lane][x] = tile_max[lane][x].max(sj[lane][e]);
                                }
                            }
                        }
                        let quad =
                            |v: &[[f32; 2]; 32], lane: usize, x: usize, f: fn(f32, f32) -> f32| {
                                let base = lane & !3;
                                (base..base + 4).map(|q| v[q][x]).reduce(f).unwrap_or(0.0)
                            };
                        let mut m_use = [[0.0f32; 2]; 32];
                        let mut alpha = [[0.0f32; 2]; 32];
                        let reduced_max: Vec<[f32; 2]> = (0..32)
                            .map(|lane| {
                                [
                                    quad(&tile_max, lane, 0, f32::max),
                                    quad(&tile_max, lane, 1, f32::max),
                                ]
                            })
                            .collect();
                        for lane in 0..32 {
                            for x in 0..2 {
                                let m_new = m[lane][x].max(reduced_max[lane][x]);
                                m_use[lane][x] = if m_new == f32::NEG_INFINITY {
                                    0.0
                                } else {
                                    m_new
                                };
                                alpha[lane][x] = (m[lane][x] - m_use[lane][x]).exp();
                                m[lane][x] = m_new;
                            }
                        }
                        let mut row_sum = [[0.0f32; 2]; 32];
                        for sj in s.iter_mut() {
                            for lane in 0..32 {
                                for e in 0..4 {
                                    sj[lane][e] = (sj[lane][e] - m_use[lane][e / 2]).exp();
                                    row_sum[lane][e / 2] += sj[lane][e];
                                }
                            }
                        }
                        for lane in 0..32 {
                            for x in 0..2 {
                                let total = quad(&row_sum, lane, x, |a, b| a + b);
                                l[lane][x] = l[lane][x] * alpha[lane][x] + total;
                            }
                            for on in o.iter_mut() {
                                for e in 0..4 {
                                    on[lane][e] *= alpha[lane][e / 2];
                                }
                            }
                        }
                        for kc in 0..BC / 16 {
                            let pa: [AFrag; 32] = std::array::from_fn(|lane| {
                                let p = |j: usize, e: usize| round_bf16(s[j][lane][e]);
                                [
                                    [p(2 * kc, 0), p(2 * kc, 1)],
                                    [p(2 * kc, 2), p(2 * kc, 3)],
                                    [p(2 * kc + 1, 0), p(2 * kc + 1, 1)],
                                    [p(2 * kc + 1, 2), p(2 * kc + 1, 3)],
                                ]
                            });
                            for (n, on) in o.iter_mut().enumerate() {
                                // Vt[d][key] = V[key][d]; the kernel reads pairs along a Vt row.
                                let bfr: [BFrag; 32] = std::array::from_fn(|lane| {
                                    let (gg, t) = (lane / 4, lane % 4);
                                    let dd = n * 8 + gg;
                                    let key = kc * 16 + 2 * t;
                                    let vt = |k: usize| sv[k * d + dd];
                                    [[vt(key), vt(key + 1)], [vt(key + 8), vt(key + 9)]]
                                });
                                mma(on, &pa, &bfr);
                            }
                        }
                    }
                    for lane in 0..32 {
                        let t = lane % 4;
                        for x in 0..2 {
                            let i = rows(lane)[x];
                            if i >= t_len {
                                continue;
                            }
                            let inv = if l[lane][x] > 0.0 {
                                1.0 / l[lane][x]
                            } else {
                                0.0
                            };
                            let at = g.out_at(b, i, h);
                            for (n, on) in o.iter().enumerate() {
                                out[at + n * 8 + 2 * t] = on[lane][2 * x] * inv;
                                out[at + n * 8 + 2 * t + 1] = on[lane][2 * x + 1] * inv;
                            }
                            if t == 0 {
                                lse[(b * g.heads + h) * t_len + i] = if l[lane][x] > 0.0 {
                                    m[lane][x] + l[lane][x].ln()
                                } else {
                                    f32::INFINITY
                                };
                            }
                        }
                    }
                }
            }
        }
    }
    (out, lse)
}
