//! `cuda_bench attention`: the fused (flash) causal attention (bf16: tensor-core forward, SIMT
//! backward) against the unfused path (cuBLAS
//! strided-batched GEMMs + the causal softmax kernel), bf16 storage, forward and
//! forward+backward, T = 512 .. 8192, head dim 64 (B = 8, H = 12: GPT-2 small) and 128 (B = 4,
//! H = 16).
//!
//! FLOPs counted (the useful, causal work, the same count for both paths): forward
//! 4 B H T^2 D / 2 (two (T, T, D) products, half of them under the causal mask); backward 2.5x
//! the forward (five products); forward+backward 3.5x. The unfused path computes the full
//! products, so its useful TFLOP/s is half its raw rate.
//!
//! Memory: the device memory a forward adds while its outputs (what the backward needs) are
//! held, measured as the drop in free memory (`cuMemGetInfo`) across one forward after the
//! stream-ordered pool is trimmed: freed temporaries stay in the pool, so this is the forward's
//! peak. The unfused path holds the (B, H, T, T) probabilities (T^2); the fused one the output
//! and the logsumexp (linear in T). The unfused path is skipped where its estimated footprint
//! exceeds 60% of the free memory.

use half::bf16;
use rlhf_tensor::cuda::CudaDevice;
use rlhf_tensor::cuda::attention::{
    HeadsConfig, attention_backward, attention_forward, attention_forward_masked,
};
use rlhf_tensor::cuda::flash_attention::{FlashConfig, flash_backward, flash_forward};
use rlhf_tensor::{Result, TensorError};

use super::Timer;

const SEQ_LENS: [usize; 5] = [512, 1024, 2048, 4096, 8192];
/// (D, B, H).
const SHAPES: [(usize, usize, usize); 2] = [(64, 8, 12), (128, 4, 16)];

fn driver(e: cudarc::driver::DriverError) -> TensorError {
    TensorError::invalid("cuda_bench attention", e.to_string())
}

/// Free device memory after the stream is idle and device 0's default pool is trimmed.
fn free_bytes(dev: &CudaDevice) -> Result<usize> {
    use cudarc::driver::sys;
    dev.synchronize()?;
    let ctx = dev.stream().context();
    ctx.bind_to_thread().map_err(driver)?;
    // SAFETY: plain driver calls on device 0, whose context was just made current; a failure
    // only leaves the pool untrimmed.
    unsafe {
        let mut device: sys::CUdevice = 0;
        let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
        if sys::cuDeviceGet(&mut device, 0) == sys::CUresult::CUDA_SUCCESS
            && sys::cuDeviceGetDefaultMemPool(&mut pool, device) == sys::CUresult::CUDA_SUCCESS
        {
            sys::cuMemPoolTrimTo(pool, 0);
        }
    }
    Ok(ctx.mem_get_info().map_err(driver)?.0)
}

/// MiB that `forward` adds while its result is held.
fn held_mib<R>(dev: &CudaDevice, forward: impl FnOnce() -> Result<R>) -> Result<f64> {
    let before = free_bytes(dev)?;
    let kept = forward()?;
    dev.synchronize()?;
    let after = dev.stream().context().mem_get_info().map_err(driver)?.0;
    drop(kept);
    Ok(before.saturating_sub(after) as f64 / (1 << 20) as f64)
}

fn print_row(
    path: &str,
    d: usize,
    t: usize,
    fwd: Option<f64>,
    both: Option<f64>,
    mib: Option<f64>,
    flops: f64,
) {
    let ms = |v: Option<f64>| v.map_or("-".into(), |ms| format!("{ms:.2}"));
    let tf = |v: Option<f64>, f: f64| {
        v.map_or("-".into(), |ms| format!("{:.1}", f / (ms * 1e-3) / 1e12))
    };
    println!(
        "{path:<8} {d:>4} {t:>6} {:>10} {:>8} {:>12} {:>8} {:>10}",
        ms(fwd),
        tf(fwd, flops),
        ms(both),
        tf(both, 3.5 * flops),
        mib.map_or("skipped".into(), |m| format!("{m:.0}")),
    );
}

/// Runs the comparison and prints one table.
pub fn run(dev: &CudaDevice, timer: &mut Timer) -> Result<()> {
    println!(
        "fused (flash) vs unfused causal attention, bf16, median of {} runs",
        super::REPS
    );
    println!(
        "FLOPs: fwd 4*B*H*T^2*D/2 (causal), fwd+bwd 3.5x fwd; MiB: device memory a forward adds with its outputs held"
    );
    println!(
        "{:<8} {:>4} {:>6} {:>10} {:>8} {:>12} {:>8} {:>10}",
        "path", "D", "T", "fwd ms", "TFLOP/s", "fwd+bwd ms", "TFLOP/s", "fwd MiB"
    );
    for (d, b, h) in SHAPES {
        for t in SEQ_LENS {
            let c = h * d;
            let n = b * t * c;
            let flops = 4.0 * (b * h) as f64 * (t * t) as f64 * d as f64 / 2.0;
            let qkv = dev.full::<bf16>(3 * n, 0.01)?;
            let dout = dev.full::<bf16>(n, 0.01)?;
            let mut out = dev.zeros::<bf16>(n)?;
            let mut dqkv = dev.zeros::<bf16>(3 * n)?;

            let fcfg = FlashConfig::new(b, t, h, d)?;
            let mut lse = dev.zeros::<f32>(b * h * t)?;
            let mib = held_mib(dev, || {
                let mut o = dev.zeros::<bf16>(n)?;
                let mut l = dev.zeros::<f32>(b * h * t)?;
                flash_forward(dev, fcfg, &qkv, None, &mut o, &mut l)?;
                Ok((o, l))
            })?;
            let fwd =
                timer.median_ms(|| flash_forward(dev, fcfg, &qkv, None, &mut out, &mut lse))?;
            let both = timer.median_ms(|| {
                flash_forward(dev, fcfg, &qkv, None, &mut out, &mut lse)?;
                flash_backward(dev, fcfg, &qkv, None, &out, &lse, &dout, &mut dqkv)
            })?;
            print_row("flash", d, t, Some(fwd), Some(both), Some(mib), flops);

            // Unfused: scores and probs (B, H, T, T) in the forward; dprobs and dscores too in the
            // backward, with probs still held: about 3 (B H T^2) elements at the peak.
            let need = 3 * b * h * t * t * 2 + 10 * n * 2;
            let free = free_bytes(dev)?;
            if need as f64 > 0.6 * free as f64 {
                print_row("unfused", d, t, None, None, None, flops);
                println!(
                    "         (needs ~{:.1} GiB of {:.1} GiB free)",
                    need as f64 / (1u64 << 30) as f64,
                    free as f64 / (1u64 << 30) as f64
                );
                continue;
            }
            let ucfg = HeadsConfig::new(b, t, h, d)?;
            let mib = held_mib(dev, || {
                let mut o = dev.zeros::<bf16>(n)?;
                let saved = attention_forward_masked(dev, ucfg, &qkv, None, &mut o)?;
                Ok((o, saved))
            })?;
            let fwd =
                timer.median_ms(|| attention_forward(dev, ucfg, &qkv, &mut out).map(|_| ()))?;
            let both = timer.median_ms(|| {
                let saved = attention_forward(dev, ucfg, &qkv, &mut out)?;
                attention_backward(dev, ucfg, &saved, &dout, &mut dqkv)
            })?;
            print_row("unfused", d, t, Some(fwd), Some(both), Some(mib), flops);
        }
    }
    Ok(())
}
