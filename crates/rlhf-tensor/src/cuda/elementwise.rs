//! Elementwise ops on device buffers: add, mul, scale, bias broadcast over rows, fill, and the
//! bf16 <-> f32 conversions (kernels/elementwise.cu).

use cudarc::driver::{CudaSlice, DevicePtrMut, PushKernelArg};
use half::bf16;

use super::device::CudaDevice;
use super::dtype::CudaFloat;
use super::launch::{as_i32, check_len, flat_config, launched};
use super::registry::KernelModule;
use crate::Result;

fn binary<T: CudaFloat>(
    dev: &CudaDevice,
    op: &'static str,
    kernel: &str,
    a: &CudaSlice<T>,
    b: &CudaSlice<T>,
    out: &mut CudaSlice<T>,
) -> Result<()> {
    check_len(op, "b", b.len(), a.len())?;
    check_len(op, "out", out.len(), a.len())?;
    let f = dev.typed::<T>(KernelModule::Elementwise, kernel)?;
    let n = a.len() as i64;
    let cfg = flat_config(dev, a.len().div_ceil(T::PACK));
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&n).arg(a).arg(b).arg(out);
    // SAFETY: add_T/mul_T(long long n, const T*, const T*, T*) read and write n elements; all
    // three buffers hold n elements (checked above).
    launched(op, unsafe { args.launch(cfg) })
}

/// `out = a + b`, all (n).
pub fn add<T: CudaFloat>(
    dev: &CudaDevice,
    a: &CudaSlice<T>,
    b: &CudaSlice<T>,
    out: &mut CudaSlice<T>,
) -> Result<()> {
    binary(dev, "cuda::add", "add", a, b, out)
}

/// `out = a * b`, all (n).
pub fn mul<T: CudaFloat>(
    dev: &CudaDevice,
    a: &CudaSlice<T>,
    b: &CudaSlice<T>,
    out: &mut CudaSlice<T>,
) -> Result<()> {
    binary(dev, "cuda::mul", "mul", a, b, out)
}

/// `out = alpha * x`, both (n).
pub fn scale<T: CudaFloat>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    alpha: f32,
    out: &mut CudaSlice<T>,
) -> Result<()> {
    let op = "cuda::scale";
    check_len(op, "out", out.len(), x.len())?;
    let f = dev.typed::<T>(KernelModule::Elementwise, "scale")?;
    let n = x.len() as i64;
    let cfg = flat_config(dev, x.len().div_ceil(T::PACK));
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&n).arg(x).arg(&alpha).arg(out);
    // SAFETY: scale_T(n, const T* x, float, T* out); both hold n elements.
    launched(op, unsafe { args.launch(cfg) })
}

/// `x *= alpha` in place, (n).
pub fn scale_in_place<T: CudaFloat>(
    dev: &CudaDevice,
    x: &mut CudaSlice<T>,
    alpha: f32,
) -> Result<()> {
    let op = "cuda::scale_in_place";
    let f = dev.typed::<T>(KernelModule::Elementwise, "scale")?;
    let n = x.len() as i64;
    let cfg = flat_config(dev, x.len().div_ceil(T::PACK));
    let stream = dev.stream().clone();
    let (ptr, _record) = x.device_ptr_mut(&stream);
    let mut args = stream.launch_builder(&f);
    args.arg(&n).arg(&ptr).arg(&alpha).arg(&ptr);
    // SAFETY: scale_T reads and writes element i by the same thread, so in = out is allowed; the
    // buffer holds n elements.
    launched(op, unsafe { args.launch(cfg) })
}

/// `out[r, c] = x[r, c] + bias[c]`: x and out (rows, cols), bias (cols).
pub fn add_bias_rows<T: CudaFloat>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    bias: &CudaSlice<T>,
    out: &mut CudaSlice<T>,
) -> Result<()> {
    let op = "cuda::add_bias_rows";
    let cols = bias.len();
    if cols == 0 || !x.len().is_multiple_of(cols) {
        return Err(crate::TensorError::invalid(
            op,
            format!(
                "x holds {} elements, not a multiple of the bias length {cols}",
                x.len()
            ),
        ));
    }
    check_len(op, "out", out.len(), x.len())?;
    let rows = (x.len() / cols) as i64;
    let cols_i = as_i32(op, "cols", cols)?;
    let f = dev.typed::<T>(KernelModule::Elementwise, "add_bias_rows")?;
    let cfg = flat_config(dev, x.len().div_ceil(T::PACK));
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&rows).arg(&cols_i).arg(x).arg(bias).arg(out);
    // SAFETY: add_bias_rows_T(rows, cols, x, bias, out): x/out hold rows * cols, bias cols.
    launched(op, unsafe { args.launch(cfg) })
}

/// `x[r, c] += bias[c]` in place: x (rows, cols), bias (cols).
pub fn add_bias_rows_in_place<T: CudaFloat>(
    dev: &CudaDevice,
    x: &mut CudaSlice<T>,
    bias: &CudaSlice<T>,
) -> Result<()> {
    let op = "cuda::add_bias_rows_in_place";
    let cols = bias.len();
    if cols == 0 || !x.len().is_multiple_of(cols) {
        return Err(crate::TensorError::invalid(
            op,
            format!(
                "x holds {} elements, not a multiple of the bias length {cols}",
                x.len()
            ),
        ));
    }
    let rows = (x.len() / cols) as i64;
    let cols_i = as_i32(op, "cols", cols)?;
    let f = dev.typed::<T>(KernelModule::Elementwise, "add_bias_rows")?;
    let cfg = flat_config(dev, x.len().div_ceil(T::PACK));
    let stream = dev.stream().clone();
    let (x_ptr, _record) = x.device_ptr_mut(&stream);
    let mut args = stream.launch_builder(&f);
    args.arg(&rows)
        .arg(&cols_i)
        .arg(&x_ptr)
        .arg(bias)
        .arg(&x_ptr);
    // SAFETY: add_bias_rows_T reads x[i] and writes out[i] from the same thread (the same packs
    // at the same offsets), so out = x is allowed; x holds rows * cols, bias cols.
    launched(op, unsafe { args.launch(cfg) })
}

/// Sets every element to `value` (rounded to T).
pub fn fill<T: CudaFloat>(dev: &CudaDevice, out: &mut CudaSlice<T>, value: f32) -> Result<()> {
    let op = "cuda::fill";
    let f = dev.typed::<T>(KernelModule::Elementwise, "fill")?;
    let n = out.len() as i64;
    let cfg = flat_config(dev, out.len());
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&n).arg(&value).arg(out);
    // SAFETY: fill_T(n, float, T* out) writes n elements; out holds n.
    launched(op, unsafe { args.launch(cfg) })
}

/// bf16 -> f32 on the device (exact), both (n).
pub fn bf16_to_f32(dev: &CudaDevice, x: &CudaSlice<bf16>, out: &mut CudaSlice<f32>) -> Result<()> {
    convert(dev, "cuda::bf16_to_f32", "bf16_to_f32", x, out)
}

/// f32 -> bf16 on the device (round to nearest even), both (n).
pub fn f32_to_bf16(dev: &CudaDevice, x: &CudaSlice<f32>, out: &mut CudaSlice<bf16>) -> Result<()> {
    convert(dev, "cuda::f32_to_bf16", "f32_to_bf16", x, out)
}

fn convert<A, B>(
    dev: &CudaDevice,
    op: &'static str,
    kernel: &str,
    x: &CudaSlice<A>,
    out: &mut CudaSlice<B>,
) -> Result<()> {
    check_len(op, "out", out.len(), x.len())?;
    let f = dev.function(KernelModule::Elementwise, kernel)?;
    let n = x.len() as i64;
    let cfg = flat_config(dev, x.len());
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&n).arg(x).arg(out);
    // SAFETY: the conversion kernels read n of A and write n of B; both hold n.
    launched(op, unsafe { args.launch(cfg) })
}
