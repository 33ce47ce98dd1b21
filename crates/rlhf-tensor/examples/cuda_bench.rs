//! Times every CUDA kernel family at GPT-2-small sizes and prints one table, with the ceilings
//! measured in the same run: device-to-device copy bandwidth (memory-bound kernels are reported
//! as a fraction of it) and cuBLAS GEMM throughput.
//!
//! Method: each kernel runs twice to warm up, then `REPS` times; before every timed run a 256 MiB
//! buffer is cleared to flush the L2 (50 MiB on an H100), and the run alone is timed with CUDA
//! events; the table shows the median. "GB/s" counts the bytes a kernel must move at minimum
//! (each input read once, each output written once).
//!
//! Then our GEMM (`kernels/gemm.cu`) beside cuBLAS on the GPT-2-small training shapes and 8192^3,
//! same buffers, same timer, printing both TFLOP/s and the ratio, and the fused bias + GELU
//! epilogue beside cuBLAS + the bias and GELU kernels.
//!
//! Run: `cargo run -p rlhf-tensor --release --example cuda_bench` (part of `cargo xtask
//! gpu-bundle`). Exits with status 1 and one line when no GPU is present. With the argument
//! `attention` it runs only the fused-vs-unfused attention table (`cuda_bench/attention.rs`).

use std::sync::Arc;

use cudarc::driver::sys::CUevent_flags;
use half::bf16;
use rlhf_tensor::Result;
use rlhf_tensor::cuda::attention::{HeadsConfig, attention_forward};
use rlhf_tensor::cuda::gemm::{Epilogue, gemm_ours};
use rlhf_tensor::cuda::matmul::{CudaBlas, Gemm, GemmShape, gemm, gemm_cublas};
use rlhf_tensor::cuda::{
    CudaDevice, CudaFloat, CudaSlice, adamw, cross_entropy, elementwise, embedding, gelu,
    layernorm, logprob, reduce, softmax,
};

#[path = "cuda_bench/attention.rs"]
mod attention;

const REPS: usize = 10;
/// GPT-2 small: B * T rows, C channels, V vocabulary, H heads.
const ROWS: usize = 8 * 1024;
const C: usize = 768;
const V: usize = 50_257;
const PARAMS: usize = 124_439_808;

/// One timed run, returned in milliseconds (median of REPS, L2 flushed before each).
struct Timer {
    dev: Arc<CudaDevice>,
    flush: CudaSlice<u8>,
}

impl Timer {
    fn median_ms(&mut self, mut run: impl FnMut() -> Result<()>) -> Result<f64> {
        let op = "cuda_bench";
        let to_err =
            |e: cudarc::driver::DriverError| rlhf_tensor::TensorError::invalid(op, e.to_string());
        let ctx = self.dev.stream().context().clone();
        for _ in 0..2 {
            run()?;
        }
        let mut times = Vec::with_capacity(REPS);
        for _ in 0..REPS {
            self.dev
                .stream()
                .memset_zeros(&mut self.flush)
                .map_err(to_err)?;
            let start = ctx
                .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                .map_err(to_err)?;
            let end = ctx
                .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                .map_err(to_err)?;
            start.record(self.dev.stream()).map_err(to_err)?;
            run()?;
            end.record(self.dev.stream()).map_err(to_err)?;
            end.synchronize().map_err(to_err)?;
            times.push(start.elapsed_ms(&end).map_err(to_err)? as f64);
        }
        times.sort_by(f64::total_cmp);
        Ok(times[REPS / 2])
    }
}

/// One row of the table.
struct Row {
    name: String,
    dtype: &'static str,
    ms: f64,
    bytes: f64,
    flops: f64,
}

fn print_rows(rows: &[Row], copy_gbs: f64) {
    println!(
        "{:<34} {:>5} {:>10} {:>9} {:>8} {:>9}",
        "kernel", "dtype", "median us", "GB/s", "% copy", "TFLOP/s"
    );
    for r in rows {
        let gbs = r.bytes / (r.ms * 1e-3) / 1e9;
        let (gbs_s, pct) = if r.bytes > 0.0 {
            (
                format!("{gbs:.0}"),
                format!("{:.0}%", 100.0 * gbs / copy_gbs),
            )
        } else {
            ("-".into(), "-".into())
        };
        let tflops = if r.flops > 0.0 {
            format!("{:.1}", r.flops / (r.ms * 1e-3) / 1e12)
        } else {
            "-".into()
        };
        println!(
            "{:<34} {:>5} {:>10.1} {:>9} {:>8} {:>9}",
            r.name,
            r.dtype,
            r.ms * 1e3,
            gbs_s,
            pct,
            tflops
        );
    }
}

fn filled<T: CudaFloat>(dev: &CudaDevice, n: usize, value: f32) -> Result<CudaSlice<T>> {
    dev.full::<T>(n, value)
}

/// The memory-bound kernels for storage dtype T.
fn memory_bound<T: CudaFloat>(
    dev: &Arc<CudaDevice>,
    timer: &mut Timer,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let s = std::mem::size_of::<T>() as f64;
    let dt = T::SUFFIX;
    let mut push = |name: &str, ms: f64, bytes: f64| {
        rows.push(Row {
            name: name.into(),
            dtype: dt,
            ms,
            bytes,
            flops: 0.0,
        });
    };
    let n = ROWS * C;
    let (a, b) = (filled::<T>(dev, n, 0.5)?, filled::<T>(dev, n, -0.25)?);
    let mut out = dev.zeros::<T>(n)?;
    let ms = timer.median_ms(|| elementwise::add(dev, &a, &b, &mut out))?;
    push("add (B*T, C)", ms, 3.0 * n as f64 * s);

    let n4 = 4 * n;
    let (x4, g4) = (filled::<T>(dev, n4, 0.3)?, filled::<T>(dev, n4, 0.1)?);
    let mut out4 = dev.zeros::<T>(n4)?;
    let ms = timer.median_ms(|| gelu::gelu_forward(dev, &x4, &mut out4))?;
    push("gelu_forward (B*T, 4C)", ms, 2.0 * n4 as f64 * s);
    let ms = timer.median_ms(|| gelu::gelu_backward(dev, &g4, &x4, &mut out4))?;
    push("gelu_backward (B*T, 4C)", ms, 3.0 * n4 as f64 * s);

    let cfg = layernorm::LayerNormConfig::new(ROWS, C, 1e-5)?;
    let (w, bias) = (filled::<T>(dev, C, 1.0)?, filled::<T>(dev, C, 0.0)?);
    let (mut mean, mut rstd) = (dev.zeros::<f32>(ROWS)?, dev.zeros::<f32>(ROWS)?);
    let ms = timer.median_ms(|| {
        let stats = layernorm::LayerNormStats {
            mean: &mut mean,
            rstd: &mut rstd,
        };
        layernorm::layernorm_forward(dev, cfg, &a, &w, &bias, &mut out, stats)
    })?;
    push("layernorm_forward (B*T, C)", ms, 2.0 * n as f64 * s);
    let mut res_out = dev.zeros::<T>(n)?;
    let ms = timer.median_ms(|| {
        let stats = layernorm::LayerNormStats {
            mean: &mut mean,
            rstd: &mut rstd,
        };
        layernorm::residual_layernorm_forward(
            dev,
            cfg,
            &a,
            &b,
            &mut res_out,
            &w,
            &bias,
            &mut out,
            stats,
        )
    })?;
    push("residual_layernorm_forward", ms, 4.0 * n as f64 * s);
    let (mut dw, mut db) = (dev.zeros::<f32>(C)?, dev.zeros::<f32>(C)?);
    let ms = timer.median_ms(|| {
        layernorm::layernorm_backward(
            dev,
            cfg,
            &b,
            &a,
            &w,
            &mean,
            &rstd,
            &mut res_out,
            &mut dw,
            &mut db,
        )
    })?;
    push("layernorm_backward (B*T, C)", ms, 3.0 * n as f64 * s);

    // Attention-score rows: (B * H * T, T) with T = 1024.
    let (srows, scols) = (8 * 12 * 1024, 1024);
    let sc = softmax::SoftmaxConfig::new(srows, scols)?;
    let scores = filled::<T>(dev, srows * scols, 0.01)?;
    let mut probs = dev.zeros::<T>(srows * scols)?;
    let ms = timer.median_ms(|| softmax::softmax_forward(dev, sc, &scores, &mut probs))?;
    push(
        "softmax_forward (B*H*T, T)",
        ms,
        2.0 * (srows * scols) as f64 * s,
    );
    let mut dscores = dev.zeros::<T>(srows * scols)?;
    let ms =
        timer.median_ms(|| softmax::softmax_backward(dev, sc, &scores, &probs, &mut dscores))?;
    push(
        "softmax_backward (B*H*T, T)",
        ms,
        3.0 * (srows * scols) as f64 * s,
    );
    drop((scores, probs, dscores));

    // Vocabulary rows: (4096, V).
    let lrows = 4096;
    let logits = filled::<T>(dev, lrows * V, 0.02)?;
    let targets = dev.upload_i32(
        &(0..lrows as i32)
            .map(|i| (i * 7919) % V as i32)
            .collect::<Vec<_>>(),
    )?;
    let mut dlogits = dev.zeros::<T>(lrows * V)?;
    let mut losses = dev.zeros::<f32>(lrows)?;
    let ce = cross_entropy::CrossEntropyConfig::new(lrows, V, -100, 1.0 / lrows as f32)?;
    let ms = timer.median_ms(|| {
        cross_entropy::cross_entropy_forward_backward(
            dev,
            ce,
            &logits,
            &targets,
            &mut losses,
            Some(&mut dlogits),
        )
    })?;
    push(
        "cross_entropy fwd+dlogits (4096, V)",
        ms,
        2.0 * (lrows * V) as f64 * s,
    );
    let lp = logprob::LogprobConfig::new(lrows, V, -100, 0.7)?;
    let (mut logp, mut ent, mut lse) = (
        dev.zeros::<f32>(lrows)?,
        dev.zeros::<f32>(lrows)?,
        dev.zeros::<f32>(lrows)?,
    );
    let ms = timer.median_ms(|| {
        logprob::logprob_entropy_forward(dev, lp, &logits, &targets, &mut logp, &mut ent, &mut lse)
    })?;
    push(
        "logprob_entropy_forward (4096, V)",
        ms,
        (lrows * V) as f64 * s,
    );
    let ms = timer.median_ms(|| {
        logprob::logprob_entropy_backward(
            dev,
            lp,
            &logits,
            &targets,
            &lse,
            &ent,
            Some(&logp),
            Some(&ent),
            &mut dlogits,
        )
    })?;
    push(
        "logprob_entropy_backward (4096, V)",
        ms,
        2.0 * (lrows * V) as f64 * s,
    );
    drop((logits, dlogits));

    let table = filled::<T>(dev, V * C, 0.1)?;
    let ids = dev.upload_i32(
        &(0..ROWS as i32)
            .map(|i| (i * 31) % V as i32)
            .collect::<Vec<_>>(),
    )?;
    let shape = embedding::EmbeddingShape {
        rows: ROWS,
        cols: C,
        vocab: V,
        seq_len: 1024,
    };
    let pos = filled::<T>(dev, 1024 * C, 0.1)?;
    let ms = timer.median_ms(|| {
        embedding::embedding_forward(dev, shape, &ids, &table, Some(&pos), &mut out)
    })?;
    push("embedding_forward (B*T, C)", ms, 2.0 * n as f64 * s);
    drop(table);

    let grads = filled::<T>(dev, PARAMS, 1e-3)?;
    let ms = timer.median_ms(|| reduce::global_norm_clip(dev, &[&grads], 1.0).map(|_| ()))?;
    push("global_norm_clip (124M)", ms, PARAMS as f64 * s);
    let norm = reduce::global_norm_clip(dev, &[&grads], 1.0)?;
    let mut p = filled::<f32>(dev, PARAMS, 0.1)?;
    let (mut m, mut v) = (dev.zeros::<f32>(PARAMS)?, dev.zeros::<f32>(PARAMS)?);
    let step = adamw::AdamWConfig::for_step(&Default::default(), 1e-4, 1, PARAMS);
    let ms = timer.median_ms(|| {
        adamw::adamw_step(
            dev,
            step,
            &mut p,
            &grads,
            &mut m,
            &mut v,
            Some(&norm.slice(1..2)),
            None,
        )
    })?;
    push(
        "adamw_step (124M, f32 master)",
        ms,
        PARAMS as f64 * (6.0 * 4.0 + s),
    );
    Ok(())
}

/// cuBLAS GEMMs at the shapes of a GPT-2-small layer, and the attention built on them.
fn compute_bound<T: CudaFloat>(
    dev: &Arc<CudaDevice>,
    timer: &mut Timer,
    rows: &mut Vec<Row>,
) -> Result<()>
where
    CudaBlas: Gemm<T>,
{
    for (name, m, n, k) in [
        ("gemm 4096^3", 4096, 4096, 4096),
        ("gemm qkv (B*T, C) x (C, 3C)", ROWS, 3 * C, C),
        ("gemm fc (B*T, C) x (C, 4C)", ROWS, 4 * C, C),
    ] {
        let a = filled::<T>(dev, m * k, 0.01)?;
        let b = filled::<T>(dev, k * n, 0.01)?;
        let mut c = dev.zeros::<T>(m * n)?;
        let ms =
            timer.median_ms(|| gemm(dev, GemmShape::new(m, n, k, false, false), &a, &b, &mut c))?;
        rows.push(Row {
            name: name.into(),
            dtype: T::SUFFIX,
            ms,
            bytes: 0.0,
            flops: 2.0 * (m * n * k) as f64,
        });
    }
    let cfg = HeadsConfig::new(8, 1024, 12, 64)?;
    let qkv = filled::<T>(dev, 3 * ROWS * C, 0.01)?;
    let mut out = dev.zeros::<T>(ROWS * C)?;
    let ms = timer.median_ms(|| attention_forward(dev, cfg, &qkv, &mut out).map(|_| ()))?;
    // Two (T, T, D) products per head, full (not causal-halved) as cuBLAS computes them.
    let flops = 2.0 * 2.0 * (8 * 12) as f64 * 1024.0 * 1024.0 * 64.0;
    rows.push(Row {
        name: "attention_forward (cuBLAS+softmax)".into(),
        dtype: T::SUFFIX,
        ms,
        bytes: 0.0,
        flops,
    });
    Ok(())
}

/// One product of the side-by-side table: name, M, K, N, A transposed, B transposed.
type GemmCase = (&'static str, usize, usize, usize, bool, bool);

/// GPT-2 small (B*T = 4096 rows, C = 768) forward and backward products and 8192^3, written
/// M x K x N: qkv, attention proj, MLP fc, MLP proj, LM head (NT: wte is (V, C)), the fc's
/// input gradient (NT) and weight gradient (TN).
const GEMM_CASES: [GemmCase; 8] = [
    ("qkv 4096x768x2304", 4096, 768, 2304, false, false),
    ("fc 4096x768x3072", 4096, 768, 3072, false, false),
    ("proj 4096x3072x768", 4096, 3072, 768, false, false),
    ("attn proj 4096x768x768", 4096, 768, 768, false, false),
    ("lm head 4096x768x50304 NT", 4096, 768, 50304, false, true),
    ("fc dx 4096x3072x768 NT", 4096, 3072, 768, false, true),
    ("fc dW 768x4096x3072 TN", 768, 4096, 3072, true, false),
    ("8192^3", 8192, 8192, 8192, false, false),
];

/// Our GEMM against cuBLAS, same inputs, same timer; prints TFLOP/s of both and ours / cuBLAS.
fn gemm_side_by_side<T: CudaFloat>(
    dev: &Arc<CudaDevice>,
    timer: &mut Timer,
    cases: &[GemmCase],
) -> Result<()>
where
    CudaBlas: Gemm<T>,
{
    println!(
        "{:<28} {:>5} {:>11} {:>9} {:>11} {:>9} {:>7}",
        "gemm (M x K x N)", "dtype", "cuBLAS us", "TFLOP/s", "ours us", "TFLOP/s", "ours/cuBLAS"
    );
    for &(name, m, k, n, ta, tb) in cases {
        let a = filled::<T>(dev, m * k, 0.01)?;
        let b = filled::<T>(dev, k * n, 0.01)?;
        let mut c = dev.zeros::<T>(m * n)?;
        let shape = GemmShape::new(m, n, k, ta, tb);
        let cublas = timer.median_ms(|| gemm_cublas(dev, shape, &a, &b, &mut c))?;
        let ours = timer.median_ms(|| {
            gemm_ours::<T, T, _, _, _>(dev, shape, &a, &b, &mut c, Epilogue::none())
        })?;
        let tflops = |ms: f64| 2.0 * (m * n * k) as f64 / (ms * 1e-3) / 1e12;
        println!(
            "{:<28} {:>5} {:>11.1} {:>9.1} {:>11.1} {:>9.1} {:>10.0}%",
            name,
            T::SUFFIX,
            cublas * 1e3,
            tflops(cublas),
            ours * 1e3,
            tflops(ours),
            100.0 * cublas / ours
        );
    }
    Ok(())
}

/// The MLP's fc with its bias and GELU: cuBLAS + bias kernel + GELU kernel (the unfused path
/// the ops take) against our GEMM with the epilogue fused (bias, GELU, pre-activation kept).
fn fused_mlp<T: CudaFloat>(dev: &Arc<CudaDevice>, timer: &mut Timer) -> Result<()>
where
    CudaBlas: Gemm<T>,
{
    let (m, k, n) = (4096, 768, 3072);
    let a = filled::<T>(dev, m * k, 0.01)?;
    let b = filled::<T>(dev, k * n, 0.01)?;
    let bias = filled::<T>(dev, n, 0.1)?;
    let (mut pre, mut out) = (dev.zeros::<T>(m * n)?, dev.zeros::<T>(m * n)?);
    let shape = GemmShape::new(m, n, k, false, false);
    let unfused = timer.median_ms(|| {
        gemm_cublas(dev, shape, &a, &b, &mut pre)?;
        elementwise::add_bias_rows_in_place(dev, &mut pre, &bias)?;
        gelu::gelu_forward(dev, &pre, &mut out)
    })?;
    let fused = timer.median_ms(|| {
        let epilogue = Epilogue {
            bias: Some(&bias),
            gelu: true,
            pre_gelu: Some(&mut pre),
        };
        gemm_ours::<T, T, _, _, _>(dev, shape, &a, &b, &mut out, epilogue)
    })?;
    println!(
        "fc+bias+gelu 4096x768x3072 {:>5}: cuBLAS+bias+gelu {:.1} us, ours fused {:.1} us ({:.0}%)",
        T::SUFFIX,
        unfused * 1e3,
        fused * 1e3,
        100.0 * unfused / fused
    );
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("cuda_bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    if rlhf_tensor::cuda::gpu_count() == 0 {
        return Err(rlhf_tensor::TensorError::invalid(
            "cuda_bench",
            "no CUDA GPU is usable on this machine",
        ));
    }
    let dev = CudaDevice::get(0)?;
    println!(
        "device: {} ({} SMs); median of {REPS} runs, L2 flushed before each",
        dev.name()?,
        dev.sm_count()
    );
    let mut timer = Timer {
        flush: dev.zeros::<u8>(256 << 20)?,
        dev: dev.clone(),
    };
    if std::env::args().nth(1).as_deref() == Some("attention") {
        return attention::run(&dev, &mut timer);
    }

    // Ceiling: device-to-device copy of 1 GiB (read + write counted).
    let bytes = 1usize << 30;
    let src = dev.zeros::<u8>(bytes)?;
    let mut dst = dev.zeros::<u8>(bytes)?;
    let ms = timer.median_ms(|| {
        dev.stream()
            .memcpy_dtod(&src, &mut dst)
            .map_err(|e| rlhf_tensor::TensorError::invalid("memcpy_dtod", e.to_string()))
    })?;
    let copy_gbs = 2.0 * bytes as f64 / (ms * 1e-3) / 1e9;
    println!("ceiling: device-to-device copy {copy_gbs:.0} GB/s (1 GiB, read + write)");
    drop((src, dst));

    let mut rows = Vec::new();
    compute_bound::<f32>(&dev, &mut timer, &mut rows)?;
    compute_bound::<bf16>(&dev, &mut timer, &mut rows)?;
    memory_bound::<f32>(&dev, &mut timer, &mut rows)?;
    memory_bound::<bf16>(&dev, &mut timer, &mut rows)?;
    print_rows(&rows, copy_gbs);

    println!("== our GEMM beside cuBLAS (same run, median of {REPS}, L2 flushed)");
    gemm_side_by_side::<bf16>(&dev, &mut timer, &GEMM_CASES)?;
    gemm_side_by_side::<f32>(&dev, &mut timer, &GEMM_CASES[..2])?;
    fused_mlp::<bf16>(&dev, &mut timer)?;
    Ok(())
}
