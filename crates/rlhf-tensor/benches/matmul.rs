//! Matmul GFLOP/s at GPT shapes on 1 and 2 threads (criterion's "elem/s" is FLOP/s here).
//!
//! Baseline in the same sitting: `benches/matmul_openblas.py` (numpy's OpenBLAS).
//!     cargo bench -p rlhf-tensor --bench matmul

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rlhf_tensor::ops::matmul::{MatmulSpec, matmul};
use rlhf_tensor::{Device, Rng, Tensor};

/// (M, K, N): GPT-2 small (C = 768) at 256 rows, and the tiny default model (C = 128) at 2048 rows.
const SHAPES: &[(usize, usize, usize)] = &[
    (256, 768, 2304),
    (256, 768, 768),
    (256, 768, 3072),
    (256, 3072, 768),
    (256, 768, 50257),
    (2048, 128, 384),
    (2048, 128, 512),
    (2048, 512, 128),
    (1024, 1024, 1024),
];

fn matmul_gflops(c: &mut Criterion) {
    let mut rng = Rng::new(0);
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a rayon pool");
        let mut group = c.benchmark_group(format!("matmul_{threads}t"));
        group.sample_size(10);
        group.warm_up_time(std::time::Duration::from_millis(500));
        group.measurement_time(std::time::Duration::from_secs(2));
        for &(m, k, n) in SHAPES {
            let a = Tensor::uniform([m, k], 0.0, 1.0, &mut rng, Device::Cpu).expect("a");
            let b = Tensor::uniform([k, n], 0.0, 1.0, &mut rng, Device::Cpu).expect("b");
            group.throughput(Throughput::Elements((2 * m * k * n) as u64));
            group.bench_with_input(
                BenchmarkId::from_parameter(format!("{m}x{k}x{n}")),
                &(),
                |bencher, _| {
                    pool.install(|| {
                        bencher.iter(|| matmul(&a, &b, None, MatmulSpec::NN).expect("matmul"))
                    });
                },
            );
        }
        group.finish();
    }
}

/// Decode-shaped products (16 rows, one token of 16 sequences) through the few-row kernel: GPT-2
/// small's c_attn, MLP down and the tied LM head (`NT`), and the tiny model's c_attn. Criterion's
/// "elem/s" is weight bytes streamed per second here. `RLHF_SKINNY_GEMM=0` runs the `gemm` crate.
fn decode_products(c: &mut Criterion) {
    let mut rng = Rng::new(0);
    let shapes = [
        (16, 768, 2304, MatmulSpec::NN),
        (16, 3072, 768, MatmulSpec::NN),
        (16, 768, 50257, MatmulSpec::NT),
        (16, 128, 384, MatmulSpec::NN),
    ];
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a rayon pool");
        let mut group = c.benchmark_group(format!("decode_{threads}t"));
        group.sample_size(10);
        group.warm_up_time(std::time::Duration::from_millis(500));
        group.measurement_time(std::time::Duration::from_secs(2));
        for &(m, k, n, spec) in &shapes {
            let a = Tensor::uniform([m, k], 0.0, 1.0, &mut rng, Device::Cpu).expect("a");
            let b_dims = if spec.transpose_b { [n, k] } else { [k, n] };
            let b = Tensor::uniform(b_dims, 0.0, 1.0, &mut rng, Device::Cpu).expect("b");
            group.throughput(Throughput::Bytes((4 * k * n) as u64));
            let id = format!("{m}x{k}x{n}{}", if spec.transpose_b { "_nt" } else { "" });
            group.bench_with_input(BenchmarkId::from_parameter(id), &(), |bencher, _| {
                pool.install(|| bencher.iter(|| matmul(&a, &b, None, spec).expect("matmul")));
            });
        }
        group.finish();
    }
}

criterion_group!(benches, matmul_gflops, decode_products);
criterion_main!(benches);
