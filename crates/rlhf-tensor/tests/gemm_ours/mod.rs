//! Our GEMM (`kernels/gemm.cu`, `cuda::gemm::gemm_ours`), part of the `cuda_gemm` test binary
//! (one binary less in the size-limited GPU bundle): `cargo test -p rlhf-tensor --release
//! --test cuda_gemm gemm_ours`.
//!
//! On every machine: a CPU emulation of the tensor-core and fp32 kernels built from their index
//! math (`cuda::gemm::tiling`) checks the products of odd shapes in all four layouts, that every
//! shared-memory slot and output element is written exactly once, that every ldmatrix and
//! cp.async phase is free of bank conflicts, and that the pipeline never overwrites a live stage.
//!
//! On a GPU (else one skip line; `RLHF_REQUIRE_GPU=1` makes that a failure): the kernels against
//! an f64 CPU product on fresh random inputs with NaN-poisoned outputs, in all layouts, odd
//! shapes (1x1x1, 17x33x65, 127x129x31, ...), batches (shared and strided operands), misaligned
//! operands (the scalar-load path), bias, GELU with its pre-activation, alpha and beta; bf16
//! outputs within 1e-2 of max |C|, f32 outputs within 1e-4. The GPT-2 vocabulary shapes
//! (4096 x 50304 x 768 and 4096 x 768 x 50304) run in full and are checked on a sample of
//! elements (the size budget: a full f64 reference would take minutes).

mod emulation;

use crate::cuda_support::{download, fresh_seed, gpu, poisoned, random, upload};
use emulation::{Problem, emulate_simt, emulate_tensor_core};
use half::bf16;
use rlhf_tensor::cuda::gemm::tiling::{
    self, BK, LOADS_PER_THREAD, MI, NI, Operand, STAGES, THREADS, TILE,
};
use rlhf_tensor::cuda::gemm::{Epilogue, gemm_ours};
use rlhf_tensor::cuda::matmul::GemmShape;
use rlhf_tensor::cuda::{CudaDevice, CudaFloat};

const LAYOUTS: [(bool, bool); 4] = [(false, false), (false, true), (true, false), (true, true)];

/// Fails unless every `got` is finite and within `rtol * max |want|` of `want`.
#[track_caller]
fn check_close(what: &str, seed: u64, got: &[f32], want: &[f64], rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let max = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-3);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if !g.is_finite() || (g as f64 - w).abs() > rtol * max {
            panic!(
                "{what}: element {i} is {g}, expected {w} (tolerance {rtol} x max |C| {max}, seed {seed})"
            );
        }
    }
}

fn gelu(x: f64) -> f64 {
    let u = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
    0.5 * x * (1.0 + u.tanh())
}

// ---- CPU emulation of the kernels' index math (runs everywhere) -------------------------------

fn emulation_problems() -> Vec<Problem> {
    let mut out = Vec::new();
    for (m, n, k) in [(1, 1, 1), (17, 33, 65), (127, 129, 31), (130, 260, 72)] {
        for (ta, tb) in LAYOUTS {
            out.push(Problem::new(m, n, k, ta, tb));
        }
    }
    // Batched, B shared by the batch.
    out.push(Problem {
        batch: 2,
        stride_b: 0,
        ..Problem::new(40, 24, 48, false, true)
    });
    out
}

#[test]
fn tensor_core_kernel_emulation_matches_the_reference_product() {
    let seed = fresh_seed();
    for p in emulation_problems() {
        let a = random::<bf16>(seed, p.stride_a * (p.batch - 1) + p.m * p.k, 1.0);
        let b = random::<bf16>(seed ^ 1, p.stride_b * (p.batch - 1) + p.k * p.n, 1.0);
        let got = emulate_tensor_core(&p, &a, &b);
        check_close(&format!("{p:?}"), seed, &got, &p.reference(&a, &b), 1e-5);
    }
}

#[test]
fn fp32_kernel_emulation_matches_the_reference_product() {
    let seed = fresh_seed();
    for p in emulation_problems() {
        let a = random::<f32>(seed, p.stride_a * (p.batch - 1) + p.m * p.k, 1.0);
        let b = random::<f32>(seed ^ 1, p.stride_b * (p.batch - 1) + p.k * p.n, 1.0);
        let got = emulate_simt(&p, &a, &b);
        check_close(&format!("{p:?}"), seed, &got, &p.reference(&a, &b), 1e-5);
    }
}

#[test]
fn grouped_tile_order_visits_every_tile_once() {
    for tiles_m in 1..=20 {
        for tiles_n in 1..=12 {
            let mut seen = vec![0u8; tiles_m * tiles_n];
            for pid in 0..tiles_m * tiles_n {
                let (tm, tn) = tiling::tile_coords(pid, tiles_m, tiles_n);
                assert!(
                    tm < tiles_m && tn < tiles_n,
                    "{tiles_m}x{tiles_n} pid {pid}"
                );
                seen[tm * tiles_n + tn] += 1;
            }
            assert!(seen.iter().all(|&s| s == 1), "{tiles_m}x{tiles_n}");
        }
    }
}

/// The 16-byte bank group (of 8) an element offset of a bf16 tile falls in.
fn bank_group(offset: usize) -> usize {
    (offset * 2 / 16) % 8
}

#[test]
fn shared_memory_phases_are_free_of_bank_conflicts() {
    for kmajor in [true, false] {
        // ldmatrix: each 8x8 matrix's 8 row addresses in 8 different bank groups.
        for (operand, o_step) in [(Operand::A, 16), (Operand::B, 16)] {
            for o0 in (0..tiling::BM).step_by(o_step) {
                for kk in (0..BK).step_by(16) {
                    for q in 0..4 {
                        let mut groups: Vec<usize> = (0..8)
                            .map(|r| {
                                let lane = 8 * q + r;
                                bank_group(
                                    tiling::ldmatrix_lane_offset(kmajor, operand, o0, kk, lane).0,
                                )
                            })
                            .collect();
                        groups.sort_unstable();
                        groups.dedup();
                        assert_eq!(
                            groups.len(),
                            8,
                            "ldmatrix conflict: kmajor {kmajor} {operand:?} o0 {o0} kk {kk} matrix {q}"
                        );
                    }
                }
            }
        }
        // cp.async / 16-byte stores: each quarter-warp's 8 chunks in 8 different bank groups.
        for j in 0..LOADS_PER_THREAD {
            for first in (0..THREADS).step_by(8) {
                let mut groups: Vec<usize> = (first..first + 8)
                    .map(|t| bank_group(tiling::load_slot(kmajor, t + j * THREADS).0))
                    .collect();
                groups.sort_unstable();
                groups.dedup();
                assert_eq!(
                    groups.len(),
                    8,
                    "store conflict: kmajor {kmajor} threads {first}.."
                );
            }
        }
    }
}

#[test]
fn pipeline_ring_never_overwrites_a_live_stage() {
    for k_tiles in 0..12 {
        let mut stage_tile: [Option<usize>; STAGES] = [None; STAGES];
        for (s, slot) in stage_tile.iter_mut().enumerate().take(STAGES - 1) {
            if s < k_tiles {
                *slot = Some(s);
            }
        }
        for kt in 0..k_tiles {
            assert_eq!(stage_tile[kt % STAGES], Some(kt), "tile {kt} of {k_tiles}");
            let next = kt + STAGES - 1;
            if next < k_tiles {
                // The overwritten stage held tile kt - 1 (done by every warp before the barrier).
                assert_ne!(next % STAGES, kt % STAGES);
                if kt > 0 {
                    assert_eq!(stage_tile[next % STAGES], Some(kt - 1));
                }
                stage_tile[next % STAGES] = Some(next);
            }
        }
    }
    // Geometry the mapping relies on.
    assert_eq!(TILE / 8, LOADS_PER_THREAD * THREADS);
    assert_eq!(MI * 16 * 2, tiling::BM);
    assert_eq!(NI * 8 * tiling::WARPS_N, tiling::BN);
    assert_eq!(tiling::SHARED_BYTES, 48 * 1024);
}

// ---- on the GPU ---------------------------------------------------------------------------------

/// What one GPU case fuses.
#[derive(Debug, Clone, Copy)]
struct Fuse {
    bias: bool,
    gelu: bool,
    alpha: f32,
    beta: f32,
}

const PLAIN: Fuse = Fuse {
    bias: false,
    gelu: false,
    alpha: 1.0,
    beta: 0.0,
};

/// Runs `p` through gemm_ours with inputs I and output O and checks C (and the pre-GELU
/// output) against the f64 product, on every element or on `sample` of them.
fn run_case<I: CudaFloat, O: CudaFloat>(
    dev: &CudaDevice,
    seed: u64,
    p: Problem,
    fuse: Fuse,
    sample: Option<usize>,
) {
    let what = format!("gemm_ours {}->{} {p:?} {fuse:?}", I::SUFFIX, O::SUFFIX);
    let a = random::<I>(seed, p.stride_a * (p.batch - 1) + p.m * p.k, 1.0);
    let b = random::<I>(seed ^ 1, p.stride_b * (p.batch - 1) + p.k * p.n, 1.0);
    let bias = random::<I>(seed ^ 2, p.n, 1.0);
    let c_len = p.batch * p.m * p.n;
    let c0 = random::<O>(seed ^ 3, c_len, 1.0);
    let mut c = if fuse.beta != 0.0 {
        upload::<O>(dev, &c0)
    } else {
        poisoned::<O>(dev, c_len)
    };
    let mut pre = poisoned::<O>(dev, c_len);
    let bias_dev = upload::<I>(dev, &bias);
    let shape = GemmShape {
        batch: p.batch,
        stride_a: p.stride_a,
        stride_b: p.stride_b,
        stride_c: p.m * p.n,
        alpha: fuse.alpha,
        beta: fuse.beta,
        ..GemmShape::new(p.m, p.n, p.k, p.trans_a, p.trans_b)
    };
    let epilogue = Epilogue {
        bias: fuse.bias.then_some(&bias_dev),
        gelu: fuse.gelu,
        pre_gelu: fuse.gelu.then_some(&mut pre),
    };
    gemm_ours::<I, O, _, _, _>(
        dev,
        shape,
        &upload::<I>(dev, &a),
        &upload::<I>(dev, &b),
        &mut c,
        epilogue,
    )
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    let got = download(dev, &c);
    let got_pre = download(dev, &pre);

    // The elements to check: all, or a sample including the four corners of every matrix.
    let elements: Vec<usize> = match sample {
        None => (0..c_len).collect(),
        Some(count) => {
            let mut rng = rlhf_tensor::Rng::new(seed ^ 4);
            let mut picks: Vec<usize> = (0..count)
                .map(|_| (rng.uniform_f64() * c_len as f64) as usize % c_len)
                .collect();
            picks.extend([0, p.n - 1, (p.m - 1) * p.n, p.m * p.n - 1]);
            picks
        }
    };
    let dot = |at: usize| -> f64 {
        let (z, rc) = (at / (p.m * p.n), at % (p.m * p.n));
        let (r, col) = (rc / p.n, rc % p.n);
        (0..p.k)
            .map(|kk| p.a_at(&a, z, r, kk) as f64 * p.b_at(&b, z, kk, col) as f64)
            .sum()
    };
    let mut want_pre = Vec::with_capacity(elements.len());
    for &at in &elements {
        let col = at % p.n;
        let mut v = fuse.alpha as f64 * dot(at);
        if fuse.beta != 0.0 {
            v += fuse.beta as f64 * c0[at] as f64;
        }
        if fuse.bias {
            v += bias[col] as f64;
        }
        want_pre.push(v);
    }
    let want: Vec<f64> = if fuse.gelu {
        want_pre.iter().map(|&v| gelu(v)).collect()
    } else {
        want_pre.clone()
    };
    let rtol = if O::SUFFIX == "bf16" { 1e-2 } else { 1e-4 };
    let pick = |v: &[f32]| elements.iter().map(|&i| v[i]).collect::<Vec<f32>>();
    check_close(&what, seed, &pick(&got), &want, rtol);
    if fuse.gelu {
        check_close(
            &format!("{what} pre_gelu"),
            seed,
            &pick(&got_pre),
            &want_pre,
            rtol,
        );
    } else {
        // Without GELU the pre-activation buffer is not touched (still NaN).
        assert!(
            got_pre.iter().all(|v| v.is_nan()),
            "{what}: pre_gelu written"
        );
    }
}

fn shapes() -> Vec<(usize, usize, usize)> {
    vec![
        (1, 1, 1),
        (17, 33, 65),
        (127, 129, 31),
        (128, 128, 32),
        (256, 192, 64),
        (64, 96, 40),
        (300, 136, 200),
    ]
}

fn layouts_and_batches<I: CudaFloat, O: CudaFloat>(dev: &CudaDevice) {
    for (m, n, k) in shapes() {
        for (ta, tb) in LAYOUTS {
            run_case::<I, O>(
                dev,
                fresh_seed(),
                Problem::new(m, n, k, ta, tb),
                PLAIN,
                None,
            );
        }
    }
    for (ta, tb) in LAYOUTS {
        // Strided batches, then a B shared by the batch (a weight).
        let p = Problem {
            batch: 3,
            ..Problem::new(37, 72, 56, ta, tb)
        };
        run_case::<I, O>(dev, fresh_seed(), p, PLAIN, None);
        let shared = Problem { stride_b: 0, ..p };
        run_case::<I, O>(dev, fresh_seed(), shared, PLAIN, None);
    }
}

#[test]
fn ours_bf16_matches_cpu_in_every_layout() {
    let Some(dev) = gpu("ours_bf16_matches_cpu_in_every_layout") else {
        return;
    };
    layouts_and_batches::<bf16, bf16>(&dev);
    layouts_and_batches::<bf16, f32>(&dev);
}

#[test]
fn ours_f32_matches_cpu_in_every_layout() {
    let Some(dev) = gpu("ours_f32_matches_cpu_in_every_layout") else {
        return;
    };
    layouts_and_batches::<f32, f32>(&dev);
}

fn epilogues<I: CudaFloat, O: CudaFloat>(dev: &CudaDevice) {
    let cases = [
        Fuse {
            bias: true,
            ..PLAIN
        },
        Fuse {
            bias: true,
            gelu: true,
            ..PLAIN
        },
        Fuse {
            gelu: true,
            alpha: 0.5,
            ..PLAIN
        },
        Fuse {
            bias: true,
            alpha: 0.7,
            beta: 0.5,
            ..PLAIN
        },
        Fuse {
            alpha: 1.0,
            beta: 1.0,
            ..PLAIN
        },
    ];
    for fuse in cases {
        for (m, n, k) in [(127, 129, 31), (96, 3 * 64, 64), (1, 7, 3)] {
            for (ta, tb) in [(false, false), (false, true), (true, false)] {
                run_case::<I, O>(dev, fresh_seed(), Problem::new(m, n, k, ta, tb), fuse, None);
            }
        }
    }
}

#[test]
fn ours_epilogue_bias_gelu_alpha_beta() {
    let Some(dev) = gpu("ours_epilogue_bias_gelu_alpha_beta") else {
        return;
    };
    epilogues::<bf16, bf16>(&dev);
    epilogues::<bf16, f32>(&dev);
    epilogues::<f32, f32>(&dev);
}

/// Operands one element past a 16-byte boundary: the scalar-load path of the tensor-core
/// kernel on shapes whose rows would otherwise take cp.async.
#[test]
fn ours_misaligned_operands_take_the_scalar_path() {
    let Some(dev) = gpu("ours_misaligned_operands_take_the_scalar_path") else {
        return;
    };
    let seed = fresh_seed();
    let (m, n, k) = (136, 144, 96);
    for (ta, tb) in LAYOUTS {
        let p = Problem::new(m, n, k, ta, tb);
        let a = random::<bf16>(seed, 1 + m * k, 1.0);
        let b = random::<bf16>(seed ^ 1, 1 + k * n, 1.0);
        let a_dev = upload::<bf16>(&dev, &a);
        let b_dev = upload::<bf16>(&dev, &b);
        let mut c = poisoned::<bf16>(&dev, m * n);
        gemm_ours::<bf16, bf16, _, _, _>(
            &dev,
            GemmShape::new(m, n, k, ta, tb),
            &a_dev.slice(1..),
            &b_dev.slice(1..),
            &mut c,
            Epilogue::none(),
        )
        .unwrap();
        let want = p.reference(&a[1..], &b[1..]);
        check_close(
            &format!("misaligned {p:?}"),
            seed,
            &download(&dev, &c),
            &want,
            1e-2,
        );
    }
}

/// The GPT-2 vocabulary products at full size (LM head forward NT, its input gradient NN),
/// checked on 4096 sampled elements plus the corners.
#[test]
fn ours_gpt2_vocabulary_shapes_sampled() {
    let Some(dev) = gpu("ours_gpt2_vocabulary_shapes_sampled") else {
        return;
    };
    for p in [
        Problem::new(4096, 50304, 768, false, true),
        Problem::new(4096, 768, 50304, false, false),
    ] {
        run_case::<bf16, bf16>(&dev, fresh_seed(), p, PLAIN, Some(4096));
    }
}

#[test]
fn ours_rejects_bad_operands_with_clear_errors() {
    let Some(dev) = gpu("ours_rejects_bad_operands_with_clear_errors") else {
        return;
    };
    let a = upload::<bf16>(&dev, &[1.0; 6]);
    let b = upload::<bf16>(&dev, &[1.0; 6]);
    let mut c = poisoned::<bf16>(&dev, 4);
    let shape = GemmShape::new(2, 2, 3, false, false);
    let short = upload::<bf16>(&dev, &[1.0; 1]);
    let err = gemm_ours::<bf16, bf16, _, _, _>(
        &dev,
        shape,
        &a,
        &b,
        &mut c,
        Epilogue {
            bias: Some(&short),
            ..Epilogue::none()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("bias"), "{err}");
    let err = gemm_ours::<bf16, bf16, _, _, _>(
        &dev,
        GemmShape::new(3, 2, 3, false, false),
        &a,
        &b,
        &mut c,
        Epilogue::none(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("a holds 6"), "{err}");
    let (af, bf) = (
        upload::<f32>(&dev, &[1.0; 6]),
        upload::<f32>(&dev, &[1.0; 6]),
    );
    let err = gemm_ours::<f32, bf16, _, _, _>(&dev, shape, &af, &bf, &mut c, Epilogue::none())
        .unwrap_err()
        .to_string();
    assert!(err.contains("f32 outputs only"), "{err}");
}
