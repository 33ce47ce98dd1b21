//! Neural-network op throughput at GPT-2-small and tiny-model shapes, on 1 and 2 threads.
//!
//! Row-wise ops report GB/s (bytes each kernel must read and write, f32, divided by the median
//! time; criterion's "B/s" with decimal units); attention reports GFLOP/s as criterion's
//! "elem/s", counting the dense products (forward 4 B H T^2 D, backward 8 B H T^2 D, including
//! the masked half). The slice kernels run on preallocated buffers, as a training loop with an
//! activation slab calls them. Baseline in the same sitting: `benches/nn_ops_numpy.py`.
//!
//!     cargo bench -p rlhf-tensor --bench nn_ops

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use rlhf_tensor::Rng;
use rlhf_tensor::ops::attention::cpu::{AttentionDims, attention_backward, attention_forward};
use rlhf_tensor::ops::cross_entropy::cpu::loss_and_grad_rows;
use rlhf_tensor::ops::gelu::cpu::{gelu, gelu_backward};
use rlhf_tensor::ops::layernorm::cpu::{layernorm_rows, layernorm_rows_backward};
use rlhf_tensor::ops::logprob::cpu::{token_logprobs_rows, token_logprobs_rows_backward};
use rlhf_tensor::ops::softmax::cpu::{softmax_rows, softmax_rows_backward};

/// A model's shapes: B, T, C, H, V.
struct Model {
    name: &'static str,
    batch: usize,
    seq_len: usize,
    channels: usize,
    n_head: usize,
    vocab: usize,
}

const MODELS: &[Model] = &[
    Model {
        name: "gpt2",
        batch: 4,
        seq_len: 64,
        channels: 768,
        n_head: 12,
        vocab: 50257,
    },
    Model {
        name: "tiny",
        batch: 16,
        seq_len: 128,
        channels: 128,
        n_head: 4,
        vocab: 512,
    },
];

fn values(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| scale * rng.normal()).collect()
}

/// Bytes of `n` f32 values.
fn bytes(n: usize) -> Throughput {
    Throughput::BytesDecimal(4 * n as u64)
}

fn bench(
    group: &mut BenchmarkGroup<'_, WallTime>,
    pool: &rayon::ThreadPool,
    id: String,
    throughput: Throughput,
    mut f: impl FnMut() + Send,
) {
    group.throughput(throughput);
    group.bench_function(id, |b| pool.install(|| b.iter(&mut f)));
}

fn row_ops(group: &mut BenchmarkGroup<'_, WallTime>, pool: &rayon::ThreadPool, m: &Model) {
    let mut rng = Rng::new(1);
    let (rows, c, v) = (m.batch * m.seq_len, m.channels, m.vocab);

    // layernorm (rows, C)
    let x = values(&mut rng, rows * c, 1.0);
    let gamma = values(&mut rng, c, 1.0);
    let beta = values(&mut rng, c, 1.0);
    let dout = values(&mut rng, rows * c, 1.0);
    let (mut out, mut mean, mut rstd) = (vec![0.0; rows * c], vec![0.0; rows], vec![0.0; rows]);
    let moved = 2 * rows * c + 2 * rows + 2 * c;
    bench(
        group,
        pool,
        format!("layernorm_fwd/{}", m.name),
        bytes(moved),
        || layernorm_rows(&x, &gamma, &beta, 1e-5, &mut out, &mut mean, &mut rstd),
    );
    let moved = 3 * rows * c + 2 * rows + 3 * c;
    bench(
        group,
        pool,
        format!("layernorm_bwd/{}", m.name),
        bytes(moved),
        || {
            black_box(layernorm_rows_backward(
                &dout, &x, &gamma, &mean, &rstd, &mut out,
            ));
        },
    );

    // GELU on the MLP's hidden activations (rows, 4C)
    let h = values(&mut rng, rows * 4 * c, 2.0);
    let dh = values(&mut rng, rows * 4 * c, 1.0);
    let mut h_out = vec![0.0; rows * 4 * c];
    bench(
        group,
        pool,
        format!("gelu_fwd/{}", m.name),
        bytes(2 * h.len()),
        || gelu(&h, &mut h_out),
    );
    bench(
        group,
        pool,
        format!("gelu_bwd/{}", m.name),
        bytes(3 * h.len()),
        || gelu_backward(&dh, &h, &mut h_out),
    );

    // softmax over the vocabulary (rows, V)
    let logits = values(&mut rng, rows * v, 3.0);
    let dlogits_in = values(&mut rng, rows * v, 1.0);
    let mut probs = vec![0.0; rows * v];
    let mut grad = vec![0.0; rows * v];
    bench(
        group,
        pool,
        format!("softmax_fwd/{}", m.name),
        bytes(2 * rows * v),
        || softmax_rows(&logits, v, &mut probs),
    );
    bench(
        group,
        pool,
        format!("softmax_bwd/{}", m.name),
        bytes(3 * rows * v),
        || softmax_rows_backward(&dlogits_in, &probs, v, &mut grad),
    );

    // fused cross-entropy: read logits, write dlogits and the losses
    let targets: Vec<Option<usize>> = (0..rows).map(|r| Some(r * 7919 % v)).collect();
    let mut losses = vec![0.0; rows];
    let scale = 1.0 / rows as f32;
    bench(
        group,
        pool,
        format!("cross_entropy_fused/{}", m.name),
        bytes(2 * rows * v + rows),
        || loss_and_grad_rows(&logits, v, &targets, scale, &mut losses, &mut grad),
    );

    // selected-token log-probs and entropy at temperature 0.7
    let tokens: Vec<usize> = (0..rows).map(|r| r * 7919 % v).collect();
    let (mut logp, mut entropy) = (vec![0.0; rows], vec![0.0; rows]);
    let (g_logp, g_entropy) = (values(&mut rng, rows, 1.0), values(&mut rng, rows, 1.0));
    let inv_t = 1.0 / 0.7;
    bench(
        group,
        pool,
        format!("logprob_fwd/{}", m.name),
        bytes(rows * v + 2 * rows),
        || token_logprobs_rows(&logits, v, &tokens, inv_t, &mut logp, &mut entropy),
    );
    bench(
        group,
        pool,
        format!("logprob_bwd/{}", m.name),
        bytes(2 * rows * v + 2 * rows),
        || token_logprobs_rows_backward(&logits, v, &tokens, inv_t, &g_logp, &g_entropy, &mut grad),
    );
}

fn attention_ops(group: &mut BenchmarkGroup<'_, WallTime>, pool: &rayon::ThreadPool, m: &Model) {
    let mut rng = Rng::new(2);
    let dims = AttentionDims {
        batch: m.batch,
        seq_len: m.seq_len,
        n_head: m.n_head,
        head_dim: m.channels / m.n_head,
    };
    let (b, t, c) = (m.batch, m.seq_len, m.channels);
    let qkv = values(&mut rng, b * t * 3 * c, 1.0);
    let dout = values(&mut rng, b * t * c, 1.0);
    // Right padding: sequence i keeps T - 8 i tokens.
    let mask: Vec<bool> = (0..b * t).map(|i| i % t < t - 8 * (i / t) % t).collect();
    let mut out = vec![0.0; b * t * c];
    let mut att = vec![0.0; b * m.n_head * t * t];
    let mut dqkv = vec![0.0; b * t * 3 * c];
    let products = (b * m.n_head * t * t * dims.head_dim) as u64;
    group.throughput(Throughput::Elements(4 * products));
    group.bench_function(format!("attention_fwd/{}", m.name), |bench| {
        pool.install(|| {
            bench.iter(|| attention_forward(&dims, &qkv, Some(&mask), &mut out, &mut att))
        })
    });
    group.throughput(Throughput::Elements(8 * products));
    group.bench_function(format!("attention_bwd/{}", m.name), |bench| {
        pool.install(|| bench.iter(|| attention_backward(&dims, &dout, &qkv, &att, &mut dqkv)))
    });
}

fn nn_ops(c: &mut Criterion) {
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a rayon pool");
        let mut group = c.benchmark_group(format!("nn_{threads}t"));
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(300));
        group.measurement_time(Duration::from_secs(2));
        for model in MODELS {
            row_ops(&mut group, &pool, model);
            attention_ops(&mut group, &pool, model);
        }
        group.finish();
    }
}

criterion_group!(benches, nn_ops);
criterion_main!(benches);
