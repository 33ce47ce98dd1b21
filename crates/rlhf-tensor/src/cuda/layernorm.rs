//! LayerNorm on device buffers (kernels/layernorm.cu): forward keeping mean and rstd, the fused
//! residual-add + LayerNorm forward, and a deterministic backward whose weight and bias gradients
//! are added (+=) into fp32 accumulators.

use cudarc::driver::sys::CUfunction_attribute;
use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg};

use super::device::{CudaDevice, driver_error};
use super::dtype::CudaFloat;
use super::launch::{as_i32, check_len, launched};
use super::reduce::sum_leading;
use super::registry::KernelModule;
use crate::{Result, TensorError};

/// Scalars of a LayerNorm launch; the layout of `LayerNormConfig` in layernorm.cu.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerNormConfig {
    /// N, rows normalised independently.
    pub rows: i64,
    /// C, the normalised (last) axis.
    pub cols: i32,
    /// Added to the variance (GPT-2: 1e-5).
    pub eps: f32,
}

// SAFETY: repr(C) plain old data matching the CUDA struct field for field.
unsafe impl DeviceRepr for LayerNormConfig {}

impl LayerNormConfig {
    /// Rows of `cols` features with the given epsilon.
    pub fn new(rows: usize, cols: usize, eps: f32) -> Result<LayerNormConfig> {
        Ok(LayerNormConfig {
            rows: rows as i64,
            cols: as_i32("cuda::LayerNormConfig", "cols", cols)?,
            eps,
        })
    }

    fn shape(&self, op: &'static str) -> Result<(usize, usize)> {
        if self.rows < 0 || self.cols <= 0 {
            return Err(TensorError::invalid(
                op,
                format!("bad shape ({}, {})", self.rows, self.cols),
            ));
        }
        Ok((self.rows as usize, self.cols as usize))
    }
}

/// Warps (rows) per forward block.
const FORWARD_WARPS: u32 = 8;

/// The saved statistics of a forward pass, (N) each.
#[derive(Debug)]
pub struct LayerNormStats<'a> {
    /// Row means.
    pub mean: &'a mut CudaSlice<f32>,
    /// Row reciprocal standard deviations, 1 / sqrt(var + eps).
    pub rstd: &'a mut CudaSlice<f32>,
}

/// `out = (x - mean) * rstd * weight + bias` per row; x, out (N, C), weight, bias (C); writes
/// the row statistics for the backward.
pub fn layernorm_forward<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: LayerNormConfig,
    x: &CudaSlice<T>,
    weight: &CudaSlice<T>,
    bias: &CudaSlice<T>,
    out: &mut CudaSlice<T>,
    stats: LayerNormStats<'_>,
) -> Result<()> {
    let op = "cuda::layernorm_forward";
    let (rows, cols) = cfg.shape(op)?;
    check_forward(
        op,
        rows,
        cols,
        &[("x", x.len()), ("out", out.len())],
        weight,
        bias,
        &stats,
    )?;
    if rows == 0 {
        return Ok(());
    }
    let f = dev.typed::<T>(KernelModule::Layernorm, "layernorm_fwd")?;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&cfg)
        .arg(x)
        .arg(weight)
        .arg(bias)
        .arg(out)
        .arg(stats.mean)
        .arg(stats.rstd);
    // SAFETY: x/out hold rows * cols, weight/bias cols, mean/rstd rows (checked).
    launched(op, unsafe { args.launch(forward_config(rows)) })
}

/// `res_out = x + residual`, then `out = LayerNorm(res_out)`, in one pass; all (N, C) but
/// weight, bias (C).
#[allow(clippy::too_many_arguments)]
pub fn residual_layernorm_forward<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: LayerNormConfig,
    x: &CudaSlice<T>,
    residual: &CudaSlice<T>,
    res_out: &mut CudaSlice<T>,
    weight: &CudaSlice<T>,
    bias: &CudaSlice<T>,
    out: &mut CudaSlice<T>,
    stats: LayerNormStats<'_>,
) -> Result<()> {
    let op = "cuda::residual_layernorm_forward";
    let (rows, cols) = cfg.shape(op)?;
    let lens = [
        ("x", x.len()),
        ("residual", residual.len()),
        ("res_out", res_out.len()),
        ("out", out.len()),
    ];
    check_forward(op, rows, cols, &lens, weight, bias, &stats)?;
    if rows == 0 {
        return Ok(());
    }
    let f = dev.typed::<T>(KernelModule::Layernorm, "residual_layernorm_fwd")?;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&cfg)
        .arg(x)
        .arg(residual)
        .arg(res_out)
        .arg(weight)
        .arg(bias)
        .arg(out);
    args.arg(stats.mean).arg(stats.rstd);
    // SAFETY: the (N, C) buffers hold rows * cols, weight/bias cols, mean/rstd rows (checked).
    launched(op, unsafe { args.launch(forward_config(rows)) })
}

fn forward_config(rows: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (
            rows.div_ceil(FORWARD_WARPS as usize).clamp(1, 1 << 20) as u32,
            1,
            1,
        ),
        block_dim: (32 * FORWARD_WARPS, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn check_forward<T>(
    op: &'static str,
    rows: usize,
    cols: usize,
    row_buffers: &[(&str, usize)],
    weight: &CudaSlice<T>,
    bias: &CudaSlice<T>,
    stats: &LayerNormStats<'_>,
) -> Result<()> {
    for (what, len) in row_buffers {
        check_len(op, what, *len, rows * cols)?;
    }
    check_len(op, "weight", weight.len(), cols)?;
    check_len(op, "bias", bias.len(), cols)?;
    check_len(op, "mean", stats.mean.len(), rows)?;
    check_len(op, "rstd", stats.rstd.len(), rows)
}

/// Backward of [`layernorm_forward`]: writes dx (N, C) and adds the weight and bias gradients
/// (C, f32) into `dweight`, `dbias`. Deterministic: no atomics.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: LayerNormConfig,
    dout: &CudaSlice<T>,
    x: &CudaSlice<T>,
    weight: &CudaSlice<T>,
    mean: &CudaSlice<f32>,
    rstd: &CudaSlice<f32>,
    dx: &mut CudaSlice<T>,
    dweight: &mut CudaSlice<f32>,
    dbias: &mut CudaSlice<f32>,
) -> Result<()> {
    let op = "cuda::layernorm_backward";
    let (rows, cols) = cfg.shape(op)?;
    for (what, len) in [("dout", dout.len()), ("x", x.len()), ("dx", dx.len())] {
        check_len(op, what, len, rows * cols)?;
    }
    for (what, len) in [
        ("weight", weight.len()),
        ("dweight", dweight.len()),
        ("dbias", dbias.len()),
    ] {
        check_len(op, what, len, cols)?;
    }
    check_len(op, "mean", mean.len(), rows)?;
    check_len(op, "rstd", rstd.len(), rows)?;
    if rows == 0 {
        return Ok(());
    }
    let shared = 2 * cols * std::mem::size_of::<f32>();
    // 227 KiB is the opt-in maximum of dynamic shared memory per block on sm_90.
    if shared > 227 * 1024 {
        return Err(TensorError::invalid(
            op,
            format!("cols = {cols} needs {shared} bytes of shared memory; at most 29056 columns"),
        ));
    }
    let f = dev.typed::<T>(KernelModule::Layernorm, "layernorm_bwd")?;
    if shared > 48 * 1024 {
        f.set_attribute(
            CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            shared as i32,
        )
        .map_err(driver_error(op))?;
    }
    let blocks = rows.min(2 * dev.sm_count() as usize).max(1);
    let threads = cols.div_ceil(T::PACK).div_ceil(32).clamp(1, 8) * 32;
    let mut partials = dev.zeros::<f32>(2 * blocks * cols)?;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&cfg)
        .arg(dout)
        .arg(x)
        .arg(weight)
        .arg(mean)
        .arg(rstd)
        .arg(dx)
        .arg(&mut partials);
    let launch = LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (threads as u32, 1, 1),
        shared_mem_bytes: shared as u32,
    };
    // SAFETY: row buffers hold rows * cols, weight cols, stats rows; partials holds
    // 2 * gridDim.x * cols floats; the dynamic shared memory is 2 * cols floats.
    launched(op, unsafe { args.launch(launch) })?;
    let plane = blocks * cols;
    sum_leading(dev, op, &partials.slice(..plane), blocks, dweight, true)?;
    sum_leading(dev, op, &partials.slice(plane..), blocks, dbias, true)
}
