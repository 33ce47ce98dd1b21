//! Times one AdamW update over GPT-2 small's parameter count (124 M floats) on the CPU and
//! prints the median ms and the memory traffic it implies (7 floats per parameter: p, g, m, v
//! read; p, m, v written).
//!
//! `cargo run --release -p rlhf-tensor --example adamw_step [PARAMS] [ITERS]`

use std::time::Instant;

use rlhf_tensor::optim::cpu::{AdamWStep, adamw_update};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a number"))
        .collect();
    let n = args.first().copied().unwrap_or(124_439_808);
    let iters = args.get(1).copied().unwrap_or(7);
    let mut p: Vec<f32> = (0..n).map(|i| (i % 97) as f32 * 1e-3).collect();
    let g: Vec<f32> = (0..n).map(|i| (i % 89) as f32 * 1e-4 - 4e-3).collect();
    let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
    let mut times = Vec::new();
    for t in 1..=iters {
        let s = AdamWStep {
            lr: 1e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            bias_correction1: 1.0 - 0.9f32.powi(t as i32),
            bias_correction2: 1.0 - 0.999f32.powi(t as i32),
        };
        let start = Instant::now();
        adamw_update(&mut p, &g, &mut m, &mut v, s);
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let s = times[times.len() / 2];
    let checksum: f64 = p.iter().step_by(4099).map(|&x| x as f64).sum();
    println!(
        "adamw {n} params: {:.1} ms, {:.1} GB/s (checksum {checksum:.6})",
        s * 1e3,
        (7 * 4 * n) as f64 / s / 1e9
    );
}
