//! The fused (flash) causal attention against the CPU attention.
//!
//! - `emulation_*` run everywhere: the CPU emulation of the kernels' algorithm (tiles, online
//!   softmax, logsumexp, recomputing backward; `flash_emulation`) against
//!   `ops::attention::cpu` forward and backward, so an algorithmic mistake shows without a GPU.
//! - `emulation_of_the_tensor_core_forward_*`: a lane-level emulation of the bf16 tensor-core
//!   forward (fragment layouts of mma.m16n8k16) against the CPU attention.
//! - `gpu_*` run the kernels (`cuda::flash_attention`) and the tensor-level routing
//!   (`RLHF_ATTENTION=flash`): fresh random inputs, NaN-poisoned outputs, head dims 64 and 128,
//!   T = 1, 17, 129, 300 (not multiples of the tiles), no mask and a mask with left padding,
//!   right padding and one sequence padded throughout; f32 at 1e-4, bf16 at 2e-2. Without a GPU
//!   each prints one skip line; `RLHF_REQUIRE_GPU=1` makes that a failure.

mod cuda_support;
mod flash_emulation;

use cuda_support::{check_with, download, gpu, poisoned, random, upload};
use flash_emulation::{Geometry, Tiles};
use rlhf_tensor::cuda::flash_attention::{FlashConfig, flash_backward, flash_forward};
use rlhf_tensor::cuda::{CudaDevice, CudaFloat};
use rlhf_tensor::ops::attention::cpu::{AttentionDims, attention_backward, attention_forward};

const SEQ_LENS: [usize; 4] = [1, 17, 129, 300];
const BATCH: usize = 4;
const HEADS: usize = 2;

/// Sequence 0 dense, 1 left-padded by a third, 2 right-padded after half, 3 all padding.
fn padding_mask(t: usize) -> Vec<bool> {
    (0..BATCH * t)
        .map(|i| {
            let pos = i % t;
            match i / t {
                1 => pos >= t / 3,
                2 => pos < t.div_ceil(2),
                3 => false,
                _ => true,
            }
        })
        .collect()
}

/// The CPU attention in f32: (out (B, T, C), dqkv (B, T, 3C)).
fn reference(
    g: &Geometry,
    qkv: &[f32],
    mask: Option<&[bool]>,
    dout: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let dims = AttentionDims {
        batch: g.batch,
        seq_len: g.seq_len,
        n_head: g.heads,
        head_dim: g.head_dim,
    };
    let c = g.heads * g.head_dim;
    let mut out = vec![0.0f32; g.batch * g.seq_len * c];
    let mut att = vec![0.0f32; g.batch * g.heads * g.seq_len * g.seq_len];
    attention_forward(&dims, qkv, mask, &mut out, &mut att);
    let mut dqkv = vec![0.0f32; qkv.len()];
    attention_backward(&dims, dout, qkv, &att, &mut dqkv);
    (out, dqkv)
}

/// log sum_j exp(q_i . k_j / sqrt(D)) over the allowed keys, in f64; +inf for a padded query.
fn reference_lse(g: &Geometry, qkv: &[f32], mask: Option<&[bool]>) -> Vec<f32> {
    let (t, d, c) = (g.seq_len, g.head_dim, g.heads * g.head_dim);
    let real = |b: usize, i: usize| mask.is_none_or(|m| m[b * t + i]);
    let at = |b: usize, i: usize, part: usize, h: usize| ((b * t + i) * 3 + part) * c + h * d;
    let mut lse = vec![0.0f32; g.batch * g.heads * t];
    for b in 0..g.batch {
        for h in 0..g.heads {
            for i in 0..t {
                let row = &mut lse[(b * g.heads + h) * t + i];
                if !real(b, i) {
                    *row = f32::INFINITY;
                    continue;
                }
                let scores: Vec<f64> = (0..=i)
                    .filter(|&j| real(b, j))
                    .map(|j| {
                        let (qa, ka) = (at(b, i, 0, h), at(b, j, 1, h));
                        (0..d)
                            .map(|x| qkv[qa + x] as f64 * qkv[ka + x] as f64)
                            .sum::<f64>()
                            / (d as f64).sqrt()
                    })
                    .collect();
                let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                *row = (m + scores.iter().map(|s| (s - m).exp()).sum::<f64>().ln()) as f32;
            }
        }
    }
    lse
}

/// lse vs the reference: +inf exactly where the reference has it (padded queries), close
/// elsewhere.
#[track_caller]
fn check_lse(what: &str, seed: u64, lse: &[f32], expected: &[f32], tol: f64) {
    for (i, (&a, &e)) in lse.iter().zip(expected).enumerate() {
        assert_eq!(
            a == f32::INFINITY,
            e == f32::INFINITY,
            "{what}: element {i} is {a}, expected {e} (seed {seed})"
        );
    }
    let finite = |v: &[f32]| -> Vec<f32> {
        v.iter()
            .map(|&x| if x == f32::INFINITY { 0.0 } else { x })
            .collect()
    };
    check_with(what, seed, &finite(lse), &finite(expected), tol, tol);
}

fn all_finite(what: &str, values: &[f32]) {
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        panic!("{what}: element {i} is {}", values[i]);
    }
}

/// Padded queries output exactly 0 and pass no gradient (their dq, and dk, dv of padded keys).
fn padded_rows_are_zero(what: &str, g: &Geometry, mask: &[bool], out: &[f32], dqkv: &[f32]) {
    let c = g.heads * g.head_dim;
    for (row, _) in mask.iter().enumerate().filter(|(_, real)| !**real) {
        assert!(
            out[row * c..(row + 1) * c].iter().all(|&v| v == 0.0),
            "{what}: padded row {row} of out"
        );
        assert!(
            dqkv[row * 3 * c..(row + 1) * 3 * c]
                .iter()
                .all(|&v| v == 0.0),
            "{what}: padded row {row} of dqkv"
        );
    }
}

fn emulation_case(tiles: Tiles, head_dim: usize, t: usize, masked: bool, seed: u64) {
    let g = Geometry {
        batch: BATCH,
        seq_len: t,
        heads: HEADS,
        head_dim,
    };
    let c = HEADS * head_dim;
    // Scale 2 gives scores of a few units: the running max moves between key tiles.
    let qkv = random::<f32>(seed, BATCH * t * 3 * c, 2.0);
    let dout = random::<f32>(seed + 1, BATCH * t * c, 1.0);
    let mask = masked.then(|| padding_mask(t));
    let what = format!("emulation {tiles:?} D={head_dim} T={t} masked={masked}");
    let (out, lse) = flash_emulation::forward(&g, tiles, &qkv, mask.as_deref());
    let dqkv = flash_emulation::backward(&g, tiles, &qkv, mask.as_deref(), &out, &lse, &dout);
    let (out_ref, dqkv_ref) = reference(&g, &qkv, mask.as_deref(), &dout);
    all_finite(&format!("{what} out"), &out);
    all_finite(&format!("{what} dqkv"), &dqkv);
    check_with(&format!("{what} out"), seed, &out, &out_ref, 1e-4, 1e-5);
    check_with(&format!("{what} dqkv"), seed, &dqkv, &dqkv_ref, 1e-4, 1e-4);
    check_lse(
        &format!("{what} lse"),
        seed,
        &lse,
        &reference_lse(&g, &qkv, mask.as_deref()),
        1e-5,
    );
    if let Some(mask) = &mask {
        padded_rows_are_zero(&what, &g, mask, &out, &dqkv);
    }
}

#[test]
fn emulation_of_the_kernels_matches_the_cpu_attention() {
    let seed = cuda_support::fresh_seed();
    for head_dim in [64, 128] {
        for t in SEQ_LENS {
            for masked in [false, true] {
                emulation_case(Tiles::KERNEL, head_dim, t, masked, seed);
            }
        }
    }
}

#[test]
fn emulation_with_other_tiles_matches_the_cpu_attention() {
    // Query and key tiles that differ and do not divide each other: the loop bounds (causal
    // tile ranges, the backward's first query tile) must not assume equal tiles.
    let seed = cuda_support::fresh_seed();
    let tiles = Tiles {
        fwd_q: 16,
        fwd_k: 48,
        bwd_q: 48,
        bwd_k: 16,
    };
    for t in [1, 47, 100] {
        emulation_case(tiles, 64, t, true, seed);
    }
}

#[test]
fn emulation_of_the_tensor_core_forward_matches_the_cpu_attention() {
    // bf16 inputs; P is rounded to bf16 before P V, so 1e-2 (the bf16 tolerance; the output is
    // not rounded here).
    let seed = cuda_support::fresh_seed();
    for head_dim in [64, 128] {
        for t in [1, 17, 129] {
            for masked in [false, true] {
                let g = Geometry {
                    batch: BATCH,
                    seq_len: t,
                    heads: HEADS,
                    head_dim,
                };
                let c = HEADS * head_dim;
                let qkv = random::<half::bf16>(seed, BATCH * t * 3 * c, 2.0);
                let dout = random::<half::bf16>(seed + 1, BATCH * t * c, 1.0);
                let mask = masked.then(|| padding_mask(t));
                let what = format!("tensor-core emulation D={head_dim} T={t} masked={masked}");
                let (out, lse) = flash_emulation::tensor_core::forward(&g, &qkv, mask.as_deref());
                all_finite(&format!("{what} out"), &out);
                let (out_ref, _) = reference(&g, &qkv, mask.as_deref(), &dout);
                check_with(&format!("{what} out"), seed, &out, &out_ref, 1e-2, 1e-2);
                check_lse(
                    &format!("{what} lse"),
                    seed,
                    &lse,
                    &reference_lse(&g, &qkv, mask.as_deref()),
                    1e-4,
                );
            }
        }
    }
}

/// The kernels through `cuda::flash_attention` vs the CPU attention, storage T.
fn kernels_body<T: CudaFloat>(dev: &CudaDevice, seed: u64) {
    let (rtol, atol) = if T::SUFFIX == "f32" {
        (1e-4, 1e-4)
    } else {
        (2e-2, 2e-2)
    };
    for head_dim in [64, 128] {
        for t in SEQ_LENS {
            for masked in [false, true] {
                let what = format!("flash [{}] D={head_dim} T={t} masked={masked}", T::SUFFIX);
                let g = Geometry {
                    batch: BATCH,
                    seq_len: t,
                    heads: HEADS,
                    head_dim,
                };
                let c = HEADS * head_dim;
                let qkv = random::<T>(seed, BATCH * t * 3 * c, 2.0);
                let dout = random::<T>(seed + 1, BATCH * t * c, 1.0);
                let mask = masked.then(|| padding_mask(t));
                let mask_dev = mask.as_ref().map(|m| {
                    dev.upload_i32(&m.iter().map(|&r| r as i32).collect::<Vec<_>>())
                        .expect("mask upload")
                });
                let cfg = FlashConfig::new(BATCH, t, HEADS, head_dim).unwrap();
                let qkv_dev = upload::<T>(dev, &qkv);
                let mut out_dev = poisoned::<T>(dev, BATCH * t * c);
                let mut lse_dev = poisoned::<f32>(dev, BATCH * HEADS * t);
                flash_forward(
                    dev,
                    cfg,
                    &qkv_dev,
                    mask_dev.as_ref(),
                    &mut out_dev,
                    &mut lse_dev,
                )
                .unwrap();
                let mut dqkv_dev = poisoned::<T>(dev, qkv.len());
                flash_backward(
                    dev,
                    cfg,
                    &qkv_dev,
                    mask_dev.as_ref(),
                    &out_dev,
                    &lse_dev,
                    &upload::<T>(dev, &dout),
                    &mut dqkv_dev,
                )
                .unwrap();
                let out = download(dev, &out_dev);
                let lse = download(dev, &lse_dev);
                let dqkv = download(dev, &dqkv_dev);
                all_finite(&format!("{what} out"), &out);
                all_finite(&format!("{what} dqkv"), &dqkv);
                let (out_ref, dqkv_ref) = reference(&g, &qkv, mask.as_deref(), &dout);
                check_with(&format!("{what} out"), seed, &out, &out_ref, rtol, atol);
                check_with(&format!("{what} dqkv"), seed, &dqkv, &dqkv_ref, rtol, atol);
                check_lse(
                    &format!("{what} lse"),
                    seed,
                    &lse,
                    &reference_lse(&g, &qkv, mask.as_deref()),
                    1e-4,
                );
                if let Some(mask) = &mask {
                    padded_rows_are_zero(&what, &g, mask, &out, &dqkv);
                }
            }
        }
    }
}

#[test]
fn gpu_flash_kernels_match_the_cpu_attention() {
    let Some(dev) = gpu("gpu_flash_kernels_match_the_cpu_attention") else {
        return;
    };
    for_each_dtype!(dev, kernels_body);
}

#[test]
fn gpu_tensor_core_forward_matches_the_simt_forward() {
    // Both bf16 forwards on the same input: a failure of the CPU comparison above that shows
    // here too is the tensor-core kernel's (the SIMT one is also checked on f32).
    use rlhf_tensor::cuda::flash_attention::{ForwardKernel, flash_forward_with};
    let Some(dev) = gpu("gpu_tensor_core_forward_matches_the_simt_forward") else {
        return;
    };
    let seed = cuda_support::fresh_seed();
    for head_dim in [64, 128] {
        for t in SEQ_LENS {
            let c = HEADS * head_dim;
            let cfg = FlashConfig::new(BATCH, t, HEADS, head_dim).unwrap();
            let qkv =
                upload::<half::bf16>(&dev, &random::<half::bf16>(seed, BATCH * t * 3 * c, 2.0));
            let mask: Vec<i32> = padding_mask(t).iter().map(|&r| r as i32).collect();
            let mask = dev.upload_i32(&mask).unwrap();
            let run = |kernel| {
                let mut out = poisoned::<half::bf16>(&dev, BATCH * t * c);
                let mut lse = poisoned::<f32>(&dev, BATCH * HEADS * t);
                flash_forward_with(&dev, kernel, cfg, &qkv, Some(&mask), &mut out, &mut lse)
                    .unwrap();
                (download(&dev, &out), download(&dev, &lse))
            };
            let (out_tc, lse_tc) = run(ForwardKernel::TensorCore);
            let (out_simt, lse_simt) = run(ForwardKernel::Simt);
            let what = format!("tensor core vs SIMT D={head_dim} T={t}");
            check_with(&format!("{what} out"), seed, &out_tc, &out_simt, 2e-2, 2e-2);
            check_lse(&format!("{what} lse"), seed, &lse_tc, &lse_simt, 1e-3);
        }
    }
    let f32_qkv = upload::<f32>(&dev, &random::<f32>(seed, 3 * 64, 1.0));
    let cfg = FlashConfig::new(1, 1, 1, 64).unwrap();
    let (mut out, mut lse) = (poisoned::<f32>(&dev, 64), poisoned::<f32>(&dev, 1));
    let err = flash_forward_with(
        &dev,
        ForwardKernel::TensorCore,
        cfg,
        &f32_qkv,
        None,
        &mut out,
        &mut lse,
    );
    assert!(err.unwrap_err().to_string().contains("bf16"));
}

#[test]
fn gpu_flash_is_deterministic_in_forward_and_close_in_backward() {
    // The forward has no atomics: two runs agree bit for bit. The backward's dq is summed with
    // atomics in any order: two runs agree to rounding. A difference beyond that is a race.
    let Some(dev) = gpu("gpu_flash_is_deterministic_in_forward_and_close_in_backward") else {
        return;
    };
    let seed = cuda_support::fresh_seed();
    let (t, d) = (300, 64);
    let c = HEADS * d;
    let cfg = FlashConfig::new(BATCH, t, HEADS, d).unwrap();
    let qkv = upload::<f32>(&dev, &random::<f32>(seed, BATCH * t * 3 * c, 2.0));
    let dout = upload::<f32>(&dev, &random::<f32>(seed + 1, BATCH * t * c, 1.0));
    let run = || {
        let mut out = poisoned::<f32>(&dev, BATCH * t * c);
        let mut lse = poisoned::<f32>(&dev, BATCH * HEADS * t);
        flash_forward(&dev, cfg, &qkv, None, &mut out, &mut lse).unwrap();
        let mut dqkv = poisoned::<f32>(&dev, BATCH * t * 3 * c);
        flash_backward(&dev, cfg, &qkv, None, &out, &lse, &dout, &mut dqkv).unwrap();
        (download(&dev, &out), download(&dev, &dqkv))
    };
    let (out_a, dqkv_a) = run();
    let (out_b, dqkv_b) = run();
    assert_eq!(out_a, out_b, "forward differs between runs (seed {seed})");
    check_with("dqkv run to run", seed, &dqkv_a, &dqkv_b, 1e-5, 1e-6);
}

/// `ops::attention` on CUDA tensors with `RLHF_ATTENTION=flash` (set in-process) vs the CPU.
fn tensor_body<T: CudaFloat>(seed: u64) {
    use cuda_support::tensors::{check_tensor, input};
    use rlhf_tensor::ops::attention::select::{AttentionImpl, set_attention_impl};
    use rlhf_tensor::ops::attention::{attention, attention_backward};
    let scale = if T::SUFFIX == "f32" { 10.0 } else { 2.0 };
    let (t, d) = (129, 64);
    let c = HEADS * d;
    let qkv = input::<T>(seed, &[BATCH, t, 3 * c], 2.0);
    let dout = input::<T>(seed + 1, &[BATCH, t, c], 1.0);
    let mask = padding_mask(t);
    set_attention_impl(Some(AttentionImpl::Flash));
    for padding in [None, Some(mask.as_slice())] {
        let what = format!("attention via flash (mask: {})", padding.is_some());
        let (out_g, cache_g) = attention(&qkv.gpu, HEADS, padding).unwrap();
        assert!(
            cache_g.fused.is_some(),
            "{what}: the fused path did not run"
        );
        assert_eq!(cache_g.att.dims(), &[BATCH, HEADS, t], "{what}: lse shape");
        let (out_c, cache_c) = attention(&qkv.cpu, HEADS, padding).unwrap();
        check_tensor::<T>(&format!("{what} out"), seed, &out_g, &out_c, scale);
        let dq_g = attention_backward(&dout.gpu, &qkv.gpu, &cache_g).unwrap();
        let dq_c = attention_backward(&dout.cpu, &qkv.cpu, &cache_c).unwrap();
        check_tensor::<T>(&format!("{what} dqkv"), seed, &dq_g, &dq_c, scale);
    }
    // Head dim 16 has no fused kernels: `flash` says so, `auto` falls back.
    let small = input::<T>(seed + 2, &[2, 5, 3 * 32], 1.0);
    let err = attention(&small.gpu, 2, None).unwrap_err().to_string();
    assert!(err.contains("head_dim = 16"), "{err}");
    set_attention_impl(Some(AttentionImpl::Auto));
    let (_, cache) = attention(&small.gpu, 2, None).unwrap();
    assert!(cache.fused.is_none());
    set_attention_impl(None);
}

#[test]
fn gpu_tensor_attention_routes_to_flash() {
    if !cuda_support::tensors::gpu_ready("gpu_tensor_attention_routes_to_flash") {
        return;
    }
    // One test sets the process-wide choice, so both dtypes run in it, one after the other.
    tensor_body::<f32>(cuda_support::fresh_seed());
    tensor_body::<half::bf16>(cuda_support::fresh_seed());
}
