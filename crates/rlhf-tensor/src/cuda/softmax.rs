//! Row softmax / log-softmax of `x * scale`, optionally causal, forward and backward
//! (kernels/softmax.cu). Rows are the last axis: x (N, V).

use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

use super::device::CudaDevice;
use super::dtype::CudaFloat;
use super::launch::{as_i32, check_len, launched, row_config};
use super::registry::KernelModule;
use crate::{Result, TensorError};

/// Scalars of a softmax launch; the layout of `SoftmaxConfig` in softmax.cu.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SoftmaxConfig {
    /// N, the number of rows.
    pub rows: i64,
    /// V, the row length.
    pub cols: i32,
    /// Multiplies x before the softmax (1 / sqrt(head_dim) for attention scores; 1 otherwise).
    pub scale: f32,
    /// 1: row r sees only columns 0..=(r % cols) (causal attention); 0: every column.
    pub causal: i32,
}

// SAFETY: repr(C) plain old data matching the CUDA struct field for field.
unsafe impl DeviceRepr for SoftmaxConfig {}

impl SoftmaxConfig {
    /// A plain softmax over rows of `cols`.
    pub fn new(rows: usize, cols: usize) -> Result<SoftmaxConfig> {
        Ok(SoftmaxConfig {
            rows: rows as i64,
            cols: as_i32("cuda::SoftmaxConfig", "cols", cols)?,
            scale: 1.0,
            causal: 0,
        })
    }

    fn elements(&self) -> usize {
        self.rows as usize * self.cols as usize
    }
}

fn launch_rows<T: CudaFloat>(
    dev: &CudaDevice,
    op: &'static str,
    kernel: &str,
    cfg: SoftmaxConfig,
    inputs: &[&CudaSlice<T>],
    out: &mut CudaSlice<T>,
) -> Result<()> {
    if cfg.rows < 0 || cfg.cols <= 0 {
        return Err(TensorError::invalid(
            op,
            format!("bad shape ({}, {})", cfg.rows, cfg.cols),
        ));
    }
    for (i, x) in inputs.iter().enumerate() {
        check_len(op, &format!("input {i}"), x.len(), cfg.elements())?;
    }
    check_len(op, "output", out.len(), cfg.elements())?;
    if cfg.rows == 0 {
        return Ok(());
    }
    let f = dev.typed::<T>(KernelModule::Softmax, kernel)?;
    let launch = row_config(cfg.rows as usize, cfg.cols as usize);
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&cfg);
    for x in inputs {
        args.arg(*x);
    }
    args.arg(out);
    // SAFETY: every buffer holds rows * cols elements (checked above), as the kernel reads.
    launched(op, unsafe { args.launch(launch) })
}

/// `out = softmax(x * scale)` per row (causal rows masked), x and out (N, V).
pub fn softmax_forward<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: SoftmaxConfig,
    x: &CudaSlice<T>,
    out: &mut CudaSlice<T>,
) -> Result<()> {
    launch_rows(dev, "cuda::softmax_forward", "softmax_fwd", cfg, &[x], out)
}

/// `out = log_softmax(x * scale)` per row, x and out (N, V).
pub fn log_softmax_forward<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: SoftmaxConfig,
    x: &CudaSlice<T>,
    out: &mut CudaSlice<T>,
) -> Result<()> {
    launch_rows(
        dev,
        "cuda::log_softmax_forward",
        "log_softmax_fwd",
        cfg,
        &[x],
        out,
    )
}

/// `dx = scale * p * (dout - sum(dout * p))` from the forward's probabilities, all (N, V).
pub fn softmax_backward<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: SoftmaxConfig,
    dout: &CudaSlice<T>,
    probs: &CudaSlice<T>,
    dx: &mut CudaSlice<T>,
) -> Result<()> {
    launch_rows(
        dev,
        "cuda::softmax_backward",
        "softmax_bwd",
        cfg,
        &[dout, probs],
        dx,
    )
}

/// `dx = scale * (dout - exp(logp) * sum(dout))` from the forward's log-probabilities.
pub fn log_softmax_backward<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: SoftmaxConfig,
    dout: &CudaSlice<T>,
    logp: &CudaSlice<T>,
    dx: &mut CudaSlice<T>,
) -> Result<()> {
    launch_rows(
        dev,
        "cuda::log_softmax_backward",
        "log_softmax_bwd",
        cfg,
        &[dout, logp],
        dx,
    )
}
