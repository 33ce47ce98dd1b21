//! Deterministic reductions on device buffers (kernels/reduce.cu): sum, sum of squares, masked
//! sum, column sums (the bias gradient), and the global gradient norm with its clip scale kept on
//! the device for AdamW.

use cudarc::driver::{CudaSlice, CudaView, LaunchConfig, PushKernelArg};

use super::device::CudaDevice;
use super::dtype::CudaFloat;
use super::launch::{FLAT_BLOCK, arg_opt, as_i32, check_len, flat_config, launched};
use super::registry::KernelModule;
use crate::{Result, TensorError};

const MODE_SUM: i32 = 0;
const MODE_SUM_SQUARES: i32 = 1;
const MODE_MASKED_SUM: i32 = 2;

/// Blocks of the first reduction stage: enough to fill the device, at most 1024 (the final
/// stage is one block).
fn partial_blocks(dev: &CudaDevice, n: usize, pack: usize) -> u32 {
    let cfg = flat_config(dev, n.div_ceil(pack));
    cfg.grid_dim.0.min(1024).min(dev.sm_count() * 4)
}

/// Launches reduce_partial with one block per slot of `blocks`, each writing its pair of
/// partial sums to `partials[2 * slot ..]`.
fn launch_partial<T: CudaFloat>(
    dev: &CudaDevice,
    op: &'static str,
    x: &CudaSlice<T>,
    mask: Option<&CudaSlice<T>>,
    mode: i32,
    partials: &mut CudaSlice<f32>,
    blocks: std::ops::Range<usize>,
) -> Result<()> {
    let f = dev.typed::<T>(KernelModule::Reduce, "reduce_partial")?;
    let n = x.len() as i64;
    let mut view = partials.slice_mut(2 * blocks.start..2 * blocks.end);
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&n).arg(x);
    arg_opt(&mut args, mask);
    args.arg(&mode).arg(&mut view);
    let cfg = LaunchConfig {
        grid_dim: (blocks.len() as u32, 1, 1),
        block_dim: (FLAT_BLOCK, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: x (and mask) hold n elements; the view holds 2 partials per block.
    launched(op, unsafe { args.launch(cfg) })
}

/// Two-stage reduction to (sum, count) on the host.
fn reduce_to_host<T: CudaFloat>(
    dev: &CudaDevice,
    op: &'static str,
    x: &CudaSlice<T>,
    mask: Option<&CudaSlice<T>>,
    mode: i32,
) -> Result<(f32, f32)> {
    let blocks = partial_blocks(dev, x.len(), T::PACK);
    let mut partials = dev.zeros::<f32>(2 * blocks as usize)?;
    launch_partial(dev, op, x, mask, mode, &mut partials, 0..blocks as usize)?;
    let mut out = dev.zeros::<f32>(2)?;
    let f = dev.function(KernelModule::Reduce, "reduce_final")?;
    let count = blocks as i32;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&count).arg(&partials).arg(&mut out);
    let cfg = LaunchConfig {
        grid_dim: (1, 1, 1),
        block_dim: (1024, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: partials holds 2 * count floats, out 2.
    launched(op, unsafe { args.launch(cfg) })?;
    let host = dev.download(&out)?;
    Ok((host[0], host[1]))
}

/// The sum of all elements (fp32 accumulation, deterministic).
pub fn sum<T: CudaFloat>(dev: &CudaDevice, x: &CudaSlice<T>) -> Result<f32> {
    Ok(reduce_to_host(dev, "cuda::sum", x, None, MODE_SUM)?.0)
}

/// The sum of squares of all elements.
pub fn sum_of_squares<T: CudaFloat>(dev: &CudaDevice, x: &CudaSlice<T>) -> Result<f32> {
    Ok(reduce_to_host(dev, "cuda::sum_of_squares", x, None, MODE_SUM_SQUARES)?.0)
}

/// (sum(x * mask), sum(mask)), as `ops::reduce::cpu::masked_sum`.
pub fn masked_sum<T: CudaFloat>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    mask: &CudaSlice<T>,
) -> Result<(f32, f32)> {
    let op = "cuda::masked_sum";
    check_len(op, "mask", mask.len(), x.len())?;
    reduce_to_host(dev, op, x, Some(mask), MODE_MASKED_SUM)
}

/// The global L2 norm of all gradients and the clip scale (`max_norm / (norm + 1e-6)` when
/// below 1, else 1; `max_norm <= 0` disables clipping), as a 2-element device buffer
/// `[norm, scale]` so that [`super::adamw::adamw_step`] can read the scale without a host sync.
pub fn global_norm_clip<T: CudaFloat>(
    dev: &CudaDevice,
    grads: &[&CudaSlice<T>],
    max_norm: f32,
) -> Result<CudaSlice<f32>> {
    let op = "cuda::global_norm_clip";
    let blocks: Vec<u32> = grads
        .iter()
        .map(|g| partial_blocks(dev, g.len(), T::PACK))
        .collect();
    let total: usize = blocks.iter().map(|&b| b as usize).sum();
    let mut partials = dev.zeros::<f32>(2 * total.max(1))?;
    let mut offset = 0;
    for (g, &b) in grads.iter().zip(&blocks) {
        let slots = offset..offset + b as usize;
        launch_partial(dev, op, g, None, MODE_SUM_SQUARES, &mut partials, slots)?;
        offset += b as usize;
    }
    let mut out = dev.zeros::<f32>(2)?;
    let f = dev.function(KernelModule::Reduce, "global_norm_finalize")?;
    let count = as_i32(op, "partial count", total)?;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&count).arg(&partials).arg(&max_norm).arg(&mut out);
    let cfg = LaunchConfig {
        grid_dim: (1, 1, 1),
        block_dim: (1024, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: partials holds at least 2 * count floats, out 2.
    launched(op, unsafe { args.launch(cfg) })?;
    Ok(out)
}

/// Sums `partials` (chunks, cols) over its leading axis into `out` (cols), adding to it when
/// `accumulate`; in a fixed order.
pub(crate) fn sum_leading(
    dev: &CudaDevice,
    op: &'static str,
    partials: &CudaView<'_, f32>,
    chunks: usize,
    out: &mut CudaSlice<f32>,
    accumulate: bool,
) -> Result<()> {
    let cols = out.len();
    check_len(op, "partials", partials.len(), chunks * cols)?;
    let f = dev.function(KernelModule::Reduce, "sum_leading_f32")?;
    let chunks_i = as_i32(op, "chunks", chunks)?;
    let cols_i = as_i32(op, "cols", cols)?;
    let acc = accumulate as i32;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&chunks_i)
        .arg(&cols_i)
        .arg(partials)
        .arg(out)
        .arg(&acc);
    let cfg = LaunchConfig {
        grid_dim: (cols.div_ceil(FLAT_BLOCK as usize).max(1) as u32, 1, 1),
        block_dim: (FLAT_BLOCK, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: partials holds chunks * cols floats and out cols (checked above).
    launched(op, unsafe { args.launch(cfg) })
}

/// Column sums of x viewed as (rows, cols) into `out` (cols) f32, added to it when
/// `accumulate`: the bias gradient, as `ops::elementwise::cpu::sum_rows`.
pub fn sum_rows<T: CudaFloat>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    cols: usize,
    out: &mut CudaSlice<f32>,
    accumulate: bool,
) -> Result<()> {
    let op = "cuda::sum_rows";
    if cols == 0 || !x.len().is_multiple_of(cols) {
        return Err(TensorError::invalid(
            op,
            format!(
                "x holds {} elements, not a multiple of cols = {cols}",
                x.len()
            ),
        ));
    }
    check_len(op, "out", out.len(), cols)?;
    let rows = x.len() / cols;
    // Enough row chunks to fill the device, each at least 64 rows.
    let col_blocks = cols.div_ceil(32);
    let wanted = (dev.sm_count() as usize * 8).div_ceil(col_blocks).max(1);
    let chunks = wanted.min(rows.div_ceil(64)).clamp(1, 65_535);
    let chunk_rows = rows.div_ceil(chunks);
    let mut partials = dev.zeros::<f32>(chunks * cols)?;
    let f = dev.typed::<T>(KernelModule::Reduce, "sum_cols_partial")?;
    let rows_i = rows as i64;
    let cols_i = as_i32(op, "cols", cols)?;
    let chunk_i = chunk_rows as i64;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&rows_i)
        .arg(&cols_i)
        .arg(&chunk_i)
        .arg(x)
        .arg(&mut partials);
    let cfg = LaunchConfig {
        grid_dim: (col_blocks as u32, chunks as u32, 1),
        block_dim: (32, 8, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: x holds rows * cols; partials holds gridDim.y * cols = chunks * cols floats.
    launched(op, unsafe { args.launch(cfg) })?;
    sum_leading(dev, op, &partials.as_view(), chunks, out, accumulate)
}
