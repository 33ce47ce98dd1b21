//! Times every matrix product of one GPT-2 small training step (B 4, T 64: 256 rows) through
//! `gemm_into`, the CPU product the transformer uses, and prints ms and GFLOP/s per product and
//! the step's total: how close the products run to the cores' peak.
//!
//! `cargo run --release -p rlhf-tensor --example step_gemms [ROWS] [ITERS]`

use std::time::Instant;

use rlhf_tensor::ops::matmul::cpu::{MatLayout, gemm_into};

/// One product: name, (M, K, N), operand layouts ("n" row-major, "t" a transposed view), times
/// it occurs per step.
struct Product {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
    lhs_t: bool,
    rhs_t: bool,
    count: usize,
}

fn layout(rows: usize, cols: usize, transposed: bool) -> MatLayout {
    if transposed {
        MatLayout::row_major(cols, rows).t()
    } else {
        MatLayout::row_major(rows, cols)
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a number"))
        .collect();
    let rows = args.first().copied().unwrap_or(256);
    let iters = args.get(1).copied().unwrap_or(5);
    let (c, v, layers) = (768, 50257, 12);
    let linear = |name, k, n| {
        [
            Product {
                name,
                m: rows,
                k,
                n,
                lhs_t: false,
                rhs_t: false,
                count: layers,
            },
            Product {
                name: "  dx",
                m: rows,
                k: n,
                n: k,
                lhs_t: false,
                rhs_t: true,
                count: layers,
            },
            Product {
                name: "  dW",
                m: k,
                k: rows,
                n,
                lhs_t: true,
                rhs_t: false,
                count: layers,
            },
        ]
    };
    let mut products = Vec::new();
    products.extend(linear("c_attn", c, 3 * c));
    products.extend(linear("attn c_proj", c, c));
    products.extend(linear("c_fc", c, 4 * c));
    products.extend(linear("mlp c_proj", 4 * c, c));
    products.push(Product {
        name: "lm head",
        m: rows,
        k: c,
        n: v,
        lhs_t: false,
        rhs_t: true,
        count: 1,
    });
    products.push(Product {
        name: "  dx",
        m: rows,
        k: v,
        n: c,
        lhs_t: false,
        rhs_t: false,
        count: 1,
    });
    products.push(Product {
        name: "  dE",
        m: v,
        k: rows,
        n: c,
        lhs_t: true,
        rhs_t: false,
        count: 1,
    });
    let (mut total_s, mut total_flop) = (0.0, 0.0);
    for p in &products {
        let lhs = vec![0.5f32; p.m * p.k];
        let rhs = vec![0.25f32; p.k * p.n];
        let mut dst = vec![0.0f32; p.m * p.n];
        let (ll, rl) = (layout(p.m, p.k, p.lhs_t), layout(p.k, p.n, p.rhs_t));
        let dl = MatLayout::row_major(p.m, p.n);
        gemm_into(&mut dst, dl, false, &lhs, ll, &rhs, rl);
        let mut times = Vec::new();
        for _ in 0..iters {
            let start = Instant::now();
            gemm_into(&mut dst, dl, true, &lhs, ll, &rhs, rl);
            times.push(start.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let s = times[times.len() / 2];
        let flop = 2.0 * (p.m * p.k * p.n) as f64;
        total_s += s * p.count as f64;
        total_flop += flop * p.count as f64;
        println!(
            "{:<12} ({:>5} x {:>5}) x ({:>5} x {:>5}) {}{} x{:<2} {:8.2} ms {:6.1} GFLOP/s",
            p.name,
            p.m,
            p.k,
            p.k,
            p.n,
            if p.lhs_t { "T" } else { "N" },
            if p.rhs_t { "T" } else { "N" },
            p.count,
            s * 1e3,
            flop / s / 1e9
        );
    }
    println!(
        "step total {:.1} ms, {:.1} GFLOP, {:.1} GFLOP/s",
        total_s * 1e3,
        total_flop / 1e9,
        total_flop / total_s / 1e9
    );
}
