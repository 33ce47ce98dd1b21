//! A CPU emulation of `kernels/gemm.cu` built from the kernel's own index math
//! (`rlhf_tensor::cuda::gemm::tiling`) and the PTX ISA's definitions of `ldmatrix` and the
//! `mma.m16n8k16` bf16 fragments. Every shared-memory slot, register and output element is
//! tracked, so a wrong swizzle, lane address or fragment mapping shows up as a wrong product, a
//! slot written twice, or an output written twice or never, without a GPU.

#![allow(dead_code)]

use rlhf_tensor::cuda::gemm::tiling::{
    self, BK, BM, BN, LOADS_PER_THREAD, MI, NI, Operand, SIMT_BK, SIMT_BM, THREADS, TILE,
};

/// A row-major problem: A stored (M, K) or (K, M) when `trans_a`, B (K, N) or (N, K), batches
/// at the given strides (0: shared), C (batch, M, N) dense.
#[derive(Debug, Clone, Copy)]
pub struct Problem {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub batch: usize,
    pub stride_a: usize,
    pub stride_b: usize,
}

impl Problem {
    pub fn new(m: usize, n: usize, k: usize, trans_a: bool, trans_b: bool) -> Problem {
        Problem {
            m,
            n,
            k,
            trans_a,
            trans_b,
            batch: 1,
            stride_a: m * k,
            stride_b: k * n,
        }
    }

    /// op(A)[z][row][kk].
    pub fn a_at(&self, a: &[f32], z: usize, row: usize, kk: usize) -> f32 {
        let base = z * self.stride_a;
        if self.trans_a {
            a[base + kk * self.m + row]
        } else {
            a[base + row * self.k + kk]
        }
    }

    /// op(B)[z][kk][col].
    pub fn b_at(&self, b: &[f32], z: usize, kk: usize, col: usize) -> f32 {
        let base = z * self.stride_b;
        if self.trans_b {
            b[base + col * self.k + kk]
        } else {
            b[base + kk * self.n + col]
        }
    }

    /// The reference product in f64, (batch, M, N).
    pub fn reference(&self, a: &[f32], b: &[f32]) -> Vec<f64> {
        let mut out = vec![0.0f64; self.batch * self.m * self.n];
        for z in 0..self.batch {
            for r in 0..self.m {
                for c in 0..self.n {
                    out[(z * self.m + r) * self.n + c] = (0..self.k)
                        .map(|kk| self.a_at(a, z, r, kk) as f64 * self.b_at(b, z, kk, c) as f64)
                        .sum();
                }
            }
        }
        out
    }
}

/// One ldmatrix.x4: `offsets[lane]` is the row start lane supplies (rows of 8 contiguous
/// elements); lanes 8q..8q+8 address matrix q. Returns each lane's 4 registers of 2 elements:
/// without .trans lane holds row lane/4, columns 2(lane%4), +1 of each matrix; with .trans
/// the transpose's row lane/4, i.e. rows 2(lane%4), +1 of column lane/4.
pub fn ldmatrix_x4(smem: &[f32], offsets: &[usize; 32], trans: bool) -> [[[f32; 2]; 4]; 32] {
    let mut out = [[[f32::NAN; 2]; 4]; 32];
    for q in 0..4 {
        for (lane, lane_out) in out.iter_mut().enumerate() {
            let (g, t) = (lane / 4, lane % 4);
            lane_out[q] = if trans {
                [
                    smem[offsets[8 * q + 2 * t] + g],
                    smem[offsets[8 * q + 2 * t + 1] + g],
                ]
            } else {
                [
                    smem[offsets[8 * q + g] + 2 * t],
                    smem[offsets[8 * q + g] + 2 * t + 1],
                ]
            };
        }
    }
    out
}

/// mma.m16n8k16.row.col: rebuilds the 16x16 A and 16x8 B tiles from the 32 lanes' fragments
/// (PTX ISA: a0 (g, 2t..), a1 (g+8, 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..); b0 (k 2t.., n g),
/// b1 (k 2t+8.., n g)), multiplies, and adds into each lane's c0..c3 ((g, 2t), (g, 2t+1),
/// (g+8, 2t), (g+8, 2t+1)).
pub fn mma(acc: &mut [[f32; 4]; 32], a: &[[[f32; 2]; 4]; 32], b: &[[[f32; 2]; 2]; 32]) {
    let mut am = [[f32::NAN; 16]; 16];
    let mut bm = [[f32::NAN; 8]; 16];
    let mut filled_a = [[0u8; 16]; 16];
    let mut filled_b = [[0u8; 8]; 16];
    for lane in 0..32 {
        let (g, t) = (lane >> 2, lane & 3);
        for (reg, (r, c)) in [
            (g, 2 * t),
            (g + 8, 2 * t),
            (g, 2 * t + 8),
            (g + 8, 2 * t + 8),
        ]
        .into_iter()
        .enumerate()
        {
            for e in 0..2 {
                am[r][c + e] = a[lane][reg][e];
                filled_a[r][c + e] += 1;
            }
        }
        for (reg, kr) in [2 * t, 2 * t + 8].into_iter().enumerate() {
            for e in 0..2 {
                bm[kr + e][g] = b[lane][reg][e];
                filled_b[kr + e][g] += 1;
            }
        }
    }
    assert!(filled_a.iter().flatten().all(|&f| f == 1), "A fragment map");
    assert!(filled_b.iter().flatten().all(|&f| f == 1), "B fragment map");
    for (lane, c) in acc.iter_mut().enumerate() {
        let (g, t) = (lane >> 2, lane & 3);
        for (e, (r, col)) in [
            (g, 2 * t),
            (g, 2 * t + 1),
            (g + 8, 2 * t),
            (g + 8, 2 * t + 1),
        ]
        .into_iter()
        .enumerate()
        {
            c[e] += (0..16).map(|kk| am[r][kk] * bm[kk][col]).sum::<f32>();
        }
    }
}

/// Fills one operand tile of shared memory the way `load_tile` does: every thread's slots,
/// each chunk's 8 elements along the stored row, zero past the matrix. `value(o, k)` reads the
/// operand at tile-relative (o, k) or returns None outside the matrix. Panics when a slot is
/// written twice or never.
pub fn fill_tile(kmajor: bool, value: impl Fn(usize, usize) -> Option<f32>) -> Vec<f32> {
    let mut smem = vec![f32::NAN; TILE];
    let mut written = vec![0u8; TILE];
    for thread in 0..THREADS {
        for j in 0..LOADS_PER_THREAD {
            let (off, o, k) = tiling::load_slot(kmajor, thread + j * THREADS);
            assert_eq!(off % 8, 0, "chunk offsets are 16-byte aligned");
            for e in 0..8 {
                let (oe, ke) = if kmajor { (o, k + e) } else { (o + e, k) };
                smem[off + e] = value(oe, ke).unwrap_or(0.0);
                written[off + e] += 1;
            }
        }
    }
    assert!(written.iter().all(|&w| w == 1), "every shared slot once");
    smem
}

/// Emulates `gemm_bf16_*_<layout>` on f32 values: C (batch, M, N), NaN where never written.
pub fn emulate_tensor_core(p: &Problem, a: &[f32], b: &[f32]) -> Vec<f32> {
    let (tiles_m, tiles_n) = (p.m.div_ceil(BM), p.n.div_ceil(BN));
    let mut out = vec![f32::NAN; p.batch * p.m * p.n];
    let mut writes = vec![0u8; out.len()];
    let (a_kmajor, b_kmajor) = (!p.trans_a, p.trans_b);
    for z in 0..p.batch {
        let mut seen = vec![false; tiles_m * tiles_n];
        for pid in 0..tiles_m * tiles_n {
            let (tm, tn) = tiling::tile_coords(pid, tiles_m, tiles_n);
            assert!(
                tm < tiles_m && tn < tiles_n,
                "tile ({tm}, {tn}) of pid {pid}"
            );
            assert!(!seen[tm * tiles_n + tn], "tile ({tm}, {tn}) twice");
            seen[tm * tiles_n + tn] = true;
            let (m0, n0) = (tm * BM, tn * BN);
            let mut acc = vec![[[[[0.0f32; 4]; 32]; NI]; MI]; THREADS / 32];
            for k0 in (0..p.k).step_by(BK) {
                let sa = fill_tile(a_kmajor, |o, k| {
                    (m0 + o < p.m && k0 + k < p.k).then(|| p.a_at(a, z, m0 + o, k0 + k))
                });
                let sb = fill_tile(b_kmajor, |o, k| {
                    (n0 + o < p.n && k0 + k < p.k).then(|| p.b_at(b, z, k0 + k, n0 + o))
                });
                for (warp, wacc) in acc.iter_mut().enumerate() {
                    let (wm, wn) = tiling::warp_origin(warp);
                    for kk in (0..BK).step_by(16) {
                        let frag = |smem: &[f32], kmajor: bool, operand: Operand, o0: usize| {
                            let mut offsets = [0usize; 32];
                            let mut trans = false;
                            for (lane, off) in offsets.iter_mut().enumerate() {
                                let (o, t) =
                                    tiling::ldmatrix_lane_offset(kmajor, operand, o0, kk, lane);
                                assert_eq!(o % 8, 0, "ldmatrix rows are 16-byte aligned");
                                *off = o;
                                trans = t;
                            }
                            ldmatrix_x4(smem, &offsets, trans)
                        };
                        let af: Vec<_> = (0..MI)
                            .map(|i| frag(&sa, a_kmajor, Operand::A, wm + i * 16))
                            .collect();
                        let bf: Vec<_> = (0..NI / 2)
                            .map(|jj| frag(&sb, b_kmajor, Operand::B, wn + jj * 16))
                            .collect();
                        for (i, a_frag) in af.iter().enumerate() {
                            for j in 0..NI {
                                let mut b_frag = [[[0.0f32; 2]; 2]; 32];
                                for (lane, regs) in b_frag.iter_mut().enumerate() {
                                    *regs = [
                                        bf[j >> 1][lane][(j & 1) * 2],
                                        bf[j >> 1][lane][(j & 1) * 2 + 1],
                                    ];
                                }
                                mma(&mut wacc[i][j], a_frag, &b_frag);
                            }
                        }
                    }
                }
            }
            for (warp, wacc) in acc.iter().enumerate() {
                for (i, tiles) in wacc.iter().enumerate() {
                    for (j, tile) in tiles.iter().enumerate() {
                        for (lane, regs) in tile.iter().enumerate() {
                            for (e, &v) in regs.iter().enumerate() {
                                let (r, c) = tiling::acc_coords(warp, lane, i, j, e);
                                let (row, col) = (m0 + r, n0 + c);
                                if row < p.m && col < p.n {
                                    let at = (z * p.m + row) * p.n + col;
                                    out[at] = v;
                                    writes[at] += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(writes.iter().all(|&w| w == 1), "every output element once");
    out
}

/// Emulates `gemm_f32_*_<layout>`: C (batch, M, N), NaN where never written.
pub fn emulate_simt(p: &Problem, a: &[f32], b: &[f32]) -> Vec<f32> {
    let (tiles_m, tiles_n) = (p.m.div_ceil(SIMT_BM), p.n.div_ceil(SIMT_BM));
    let mut out = vec![f32::NAN; p.batch * p.m * p.n];
    let mut writes = vec![0u8; out.len()];
    for z in 0..p.batch {
        for pid in 0..tiles_m * tiles_n {
            let (tm, tn) = tiling::tile_coords(pid, tiles_m, tiles_n);
            let (m0, n0) = (tm * SIMT_BM, tn * SIMT_BM);
            let mut acc = vec![[[0.0f32; 8]; 8]; THREADS];
            for k0 in (0..p.k).step_by(SIMT_BK) {
                let mut sa = vec![[f32::NAN; SIMT_BM]; SIMT_BK];
                let mut sb = vec![[f32::NAN; SIMT_BM]; SIMT_BK];
                for idx in 0..SIMT_BM * SIMT_BK {
                    let (am, ak) = tiling::simt_load_slot(p.trans_a, idx);
                    let (gm, gk) = (m0 + am, k0 + ak);
                    assert!(sa[ak][am].is_nan(), "A slot twice");
                    sa[ak][am] = if gm < p.m && gk < p.k {
                        p.a_at(a, z, gm, gk)
                    } else {
                        0.0
                    };
                    let (bn, bk) = tiling::simt_load_slot(!p.trans_b, idx);
                    let (gn, gk) = (n0 + bn, k0 + bk);
                    assert!(sb[bk][bn].is_nan(), "B slot twice");
                    sb[bk][bn] = if gn < p.n && gk < p.k {
                        p.b_at(b, z, gk, gn)
                    } else {
                        0.0
                    };
                }
                for (thread, tacc) in acc.iter_mut().enumerate() {
                    for k in 0..SIMT_BK {
                        for (i, row) in tacc.iter_mut().enumerate() {
                            for (j, v) in row.iter_mut().enumerate() {
                                let (r, c) = tiling::simt_coords(thread, i, j);
                                *v += sa[k][r] * sb[k][c];
                            }
                        }
                    }
                }
            }
            for (thread, tacc) in acc.iter().enumerate() {
                for (i, row) in tacc.iter().enumerate() {
                    for (j, v) in row.iter().enumerate() {
                        let (r, c) = tiling::simt_coords(thread, i, j);
                        let (row, col) = (m0 + r, n0 + c);
                        if row < p.m && col < p.n {
                            let at = (z * p.m + row) * p.n + col;
                            out[at] = *v;
                            writes[at] += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(writes.iter().all(|&w| w == 1), "every output element once");
    out
}
