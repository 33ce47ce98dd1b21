//! GELU (tanh approximation) forward and backward on device buffers (kernels/gelu.cu).

use cudarc::driver::{CudaSlice, PushKernelArg};

use super::device::CudaDevice;
use super::dtype::CudaFloat;
use super::launch::{check_len, flat_config, launched};
use super::registry::KernelModule;
use crate::Result;

/// `out = gelu(x)`, both (n).
pub fn gelu_forward<T: CudaFloat>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    out: &mut CudaSlice<T>,
) -> Result<()> {
    let op = "cuda::gelu_forward";
    check_len(op, "out", out.len(), x.len())?;
    let f = dev.typed::<T>(KernelModule::Gelu, "gelu_fwd")?;
    let n = x.len() as i64;
    let cfg = flat_config(dev, x.len().div_ceil(T::PACK));
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&n).arg(x).arg(out);
    // SAFETY: gelu_fwd_T(n, x, out): both hold n elements.
    launched(op, unsafe { args.launch(cfg) })
}

/// `dx = dout * gelu'(x)`, all (n).
pub fn gelu_backward<T: CudaFloat>(
    dev: &CudaDevice,
    dout: &CudaSlice<T>,
    x: &CudaSlice<T>,
    dx: &mut CudaSlice<T>,
) -> Result<()> {
    let op = "cuda::gelu_backward";
    check_len(op, "dout", dout.len(), x.len())?;
    check_len(op, "dx", dx.len(), x.len())?;
    let f = dev.typed::<T>(KernelModule::Gelu, "gelu_bwd")?;
    let n = x.len() as i64;
    let cfg = flat_config(dev, x.len().div_ceil(T::PACK));
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&n).arg(dout).arg(x).arg(dx);
    // SAFETY: gelu_bwd_T(n, dout, x, dx): all hold n elements.
    launched(op, unsafe { args.launch(cfg) })
}
