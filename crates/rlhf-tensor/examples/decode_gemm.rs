//! Weight-streaming rate of the few-row decode GEMM at GPT-2 small's shapes, with the weights of
//! all 12 blocks cycled so they come from DRAM (as in a real decode step), not from the L3 cache.
//!
//! `cargo run --release -p rlhf-tensor --example decode_gemm [-- ROWS]`; prints GB/s of weights
//! per shape (median of 5 passes over the 12 copies), on the current rayon pool
//! (`RAYON_NUM_THREADS`).

use rlhf_tensor::ops::matmul::{MatmulSpec, matmul};
use rlhf_tensor::{Device, Rng, Tensor};
use std::time::Instant;

fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("ROWS: a number"))
        .unwrap_or(16);
    let mut rng = Rng::new(0);
    // (K, N, copies, weight stored transposed): GPT-2 small's qkv, proj, fc, fc-proj, LM head.
    let shapes = [
        (768, 2304, 12, false),
        (768, 768, 12, false),
        (768, 3072, 12, false),
        (3072, 768, 12, false),
        (768, 50257, 1, true),
        (256, 768, 1, false),
        (128, 384, 1, false),
    ];
    for (k, n, copies, transposed) in shapes {
        let x = Tensor::uniform([rows, k], -1.0, 1.0, &mut rng, Device::Cpu).expect("x");
        let dims = if transposed { [n, k] } else { [k, n] };
        let weights: Vec<Tensor> = (0..copies)
            .map(|_| Tensor::uniform(dims, -1.0, 1.0, &mut rng, Device::Cpu).expect("w"))
            .collect();
        let spec = MatmulSpec {
            transpose_a: false,
            transpose_b: transposed,
        };
        let mut rates = Vec::new();
        for pass in 0..6 {
            let start = Instant::now();
            for w in &weights {
                std::hint::black_box(matmul(&x, w, None, spec).expect("matmul"));
            }
            let seconds = start.elapsed().as_secs_f64();
            if pass > 0 {
                rates.push((4 * k * n * copies) as f64 / seconds / 1e9);
            }
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "{rows}x{k}x{n}{}: {:.2} GB/s",
            if transposed { "_nt" } else { "" },
            rates[rates.len() / 2]
        );
    }
}
