//! cuBLAS GEMM and the attention built on it, against the CPU GEMM and attention kernels, for
//! f32 and bf16 storage (fresh random inputs, NaN-poisoned outputs, odd sizes), with and without
//! the key-padding mask. Without a GPU each test prints one skip line; `RLHF_REQUIRE_GPU=1` makes
//! that a failure. Our GEMM's tests (and the CPU emulation of its kernel) are in `gemm_ours`.

mod cuda_support;
mod gemm_ours;

use cuda_support::{check, download, gpu, poisoned, random, upload};
use rlhf_tensor::cuda::attention::{self, HeadsConfig};
use rlhf_tensor::cuda::matmul::{CudaBlas, Gemm, GemmShape, gemm};
use rlhf_tensor::cuda::{CudaDevice, CudaFloat};
use rlhf_tensor::ops::attention::cpu::{AttentionDims, attention_backward, attention_forward};
use rlhf_tensor::ops::matmul::cpu::{MatLayout, gemm_into};

fn gemm_body<T: CudaFloat>(dev: &CudaDevice, seed: u64)
where
    CudaBlas: Gemm<T>,
{
    for (m, n, k) in [(37usize, 29usize, 53usize), (64, 96, 128), (1, 7, 3)] {
        for (trans_a, trans_b) in [(false, false), (false, true), (true, false), (true, true)] {
            let batch = 3;
            let a = random::<T>(seed, batch * m * k, 1.0);
            let b = random::<T>(seed + 1, batch * k * n, 1.0);
            let shape = GemmShape::new(m, n, k, trans_a, trans_b).batched(batch);
            let mut c = poisoned::<T>(dev, batch * m * n);
            gemm(
                dev,
                shape,
                &upload::<T>(dev, &a),
                &upload::<T>(dev, &b),
                &mut c,
            )
            .unwrap();
            let mut expected = vec![0.0f32; batch * m * n];
            let a_layout = if trans_a {
                MatLayout::row_major(k, m).t()
            } else {
                MatLayout::row_major(m, k)
            };
            let b_layout = if trans_b {
                MatLayout::row_major(n, k).t()
            } else {
                MatLayout::row_major(k, n)
            };
            for p in 0..batch {
                gemm_into(
                    &mut expected[p * m * n..(p + 1) * m * n],
                    MatLayout::row_major(m, n),
                    false,
                    &a[p * m * k..(p + 1) * m * k],
                    a_layout,
                    &b[p * k * n..(p + 1) * k * n],
                    b_layout,
                );
            }
            // Dot products of length k: tolerance grows with sqrt(k).
            let scale = (k as f64).sqrt();
            check::<T>(
                &format!("gemm {m}x{n}x{k} ta={trans_a} tb={trans_b}"),
                seed,
                &download(dev, &c),
                &expected,
                scale,
            );
        }
    }
}

#[test]
fn cublas_gemm_matches_cpu_gemm() {
    let Some(dev) = gpu("cublas_gemm_matches_cpu_gemm") else {
        return;
    };
    gemm_body::<f32>(&dev, cuda_support::fresh_seed());
    gemm_body::<half::bf16>(&dev, cuda_support::fresh_seed());
}

fn attention_body<T: CudaFloat>(dev: &CudaDevice, seed: u64)
where
    CudaBlas: Gemm<T>,
{
    let (batch, seq_len, heads, head_dim) = (2usize, 19usize, 3usize, 16usize);
    let c = heads * head_dim;
    let cfg = HeadsConfig::new(batch, seq_len, heads, head_dim).unwrap();
    let dims = AttentionDims {
        batch,
        seq_len,
        n_head: heads,
        head_dim,
    };
    let qkv = random::<T>(seed, batch * seq_len * 3 * c, 1.0);
    let mut out = poisoned::<T>(dev, batch * seq_len * c);
    let saved = attention::attention_forward(dev, cfg, &upload::<T>(dev, &qkv), &mut out).unwrap();
    let mut eout = vec![0.0f32; batch * seq_len * c];
    let mut eatt = vec![0.0f32; batch * heads * seq_len * seq_len];
    attention_forward(&dims, &qkv, None, &mut eout, &mut eatt);
    check::<T>(
        "attention probs",
        seed,
        &download(dev, &saved.probs),
        &eatt,
        2.0,
    );
    check::<T>("attention out", seed, &download(dev, &out), &eout, 2.0);

    let dout = random::<T>(seed + 1, batch * seq_len * c, 1.0);
    let mut dqkv = poisoned::<T>(dev, batch * seq_len * 3 * c);
    attention::attention_backward(dev, cfg, &saved, &upload::<T>(dev, &dout), &mut dqkv).unwrap();
    let mut edqkv = vec![0.0f32; batch * seq_len * 3 * c];
    attention_backward(&dims, &dout, &qkv, &eatt, &mut edqkv);
    check::<T>("attention dqkv", seed, &download(dev, &dqkv), &edqkv, 3.0);
}

#[test]
fn attention_matches_cpu() {
    let Some(dev) = gpu("attention_matches_cpu") else {
        return;
    };
    attention_body::<f32>(&dev, cuda_support::fresh_seed());
    attention_body::<half::bf16>(&dev, cuda_support::fresh_seed());
}

fn masked_attention_body<T: CudaFloat>(dev: &CudaDevice, seed: u64) {
    let (batch, seq_len, heads, head_dim) = (3usize, 17usize, 2usize, 24usize);
    let c = heads * head_dim;
    let cfg = HeadsConfig::new(batch, seq_len, heads, head_dim).unwrap();
    let dims = AttentionDims {
        batch,
        seq_len,
        n_head: heads,
        head_dim,
    };
    // Sequence 0 dense, 1 left-padded by 4, 2 right-padded after 9 real tokens.
    let mask: Vec<bool> = (0..batch * seq_len)
        .map(|i| match i / seq_len {
            1 => i % seq_len >= 4,
            2 => i % seq_len < 9,
            _ => true,
        })
        .collect();
    let mask_i32: Vec<i32> = mask.iter().map(|&m| m as i32).collect();
    let qkv = random::<T>(seed, batch * seq_len * 3 * c, 1.0);
    let mut out = poisoned::<T>(dev, batch * seq_len * c);
    let key_mask = dev.upload_i32(&mask_i32).unwrap();
    let saved = attention::attention_forward_masked(
        dev,
        cfg,
        &upload::<T>(dev, &qkv),
        Some(&key_mask),
        &mut out,
    )
    .unwrap();
    let mut eout = vec![0.0f32; batch * seq_len * c];
    let mut eatt = vec![0.0f32; batch * heads * seq_len * seq_len];
    attention_forward(&dims, &qkv, Some(&mask), &mut eout, &mut eatt);
    check::<T>(
        "masked attention probs",
        seed,
        &download(dev, &saved.probs),
        &eatt,
        2.0,
    );
    check::<T>(
        "masked attention out",
        seed,
        &download(dev, &out),
        &eout,
        2.0,
    );

    let dout = random::<T>(seed + 1, batch * seq_len * c, 1.0);
    let mut dqkv = poisoned::<T>(dev, batch * seq_len * 3 * c);
    let qkv_dev = upload::<T>(dev, &qkv);
    attention::attention_backward_qkv(
        dev,
        cfg,
        &qkv_dev,
        &saved.probs,
        &upload::<T>(dev, &dout),
        &mut dqkv,
    )
    .unwrap();
    let mut edqkv = vec![0.0f32; batch * seq_len * 3 * c];
    attention_backward(&dims, &dout, &qkv, &eatt, &mut edqkv);
    check::<T>(
        "masked attention dqkv",
        seed,
        &download(dev, &dqkv),
        &edqkv,
        3.0,
    );
}

#[test]
fn masked_attention_matches_cpu() {
    let Some(dev) = gpu("masked_attention_matches_cpu") else {
        return;
    };
    masked_attention_body::<f32>(&dev, cuda_support::fresh_seed());
    masked_attention_body::<half::bf16>(&dev, cuda_support::fresh_seed());
}
