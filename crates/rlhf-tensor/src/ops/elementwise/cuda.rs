//! The CUDA path of the elementwise ops: the tensor-level glue over `cuda::elementwise` (and the
//! column sums of `cuda::reduce` for the bias gradient). Operands are checked by the caller
//! (shapes, devices); here every operand must share one storage dtype (f32 or bf16).

use crate::cuda::storage::{DeviceElem, by_cuda_dtype, output};
use crate::cuda::{elementwise, reduce};
use crate::tensor::check_same_dtype;
use crate::{Result, Tensor};

/// Which binary kernel.
#[derive(Clone, Copy)]
pub(super) enum Binary {
    Add,
    Mul,
}

/// `a (+|*) b`, equal shapes.
pub(super) fn binary(op: &'static str, kind: Binary, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let dtype = check_same_dtype(op, &[a, b])?;
    by_cuda_dtype!(op, dtype, binary_t(op, kind, a, b))
}

fn binary_t<T: DeviceElem>(
    op: &'static str,
    kind: Binary,
    a: &Tensor,
    b: &Tensor,
) -> Result<Tensor> {
    let (dev, x) = a.cuda_parts::<T>(op)?;
    let y = b.cuda_slice::<T>(op)?;
    let mut out = output::<T>(&dev, x.len())?;
    match kind {
        Binary::Add => elementwise::add(&dev, x, y, &mut out)?,
        Binary::Mul => elementwise::mul(&dev, x, y, &mut out)?,
    }
    Tensor::from_cuda(dev, out, a.shape().clone())
}

/// `a * factor`.
pub(super) fn scale(a: &Tensor, factor: f32) -> Result<Tensor> {
    by_cuda_dtype!("scale", a.dtype(), scale_t(a, factor))
}

fn scale_t<T: DeviceElem>(a: &Tensor, factor: f32) -> Result<Tensor> {
    let (dev, x) = a.cuda_parts::<T>("scale")?;
    let mut out = output::<T>(&dev, x.len())?;
    elementwise::scale(&dev, x, factor, &mut out)?;
    Tensor::from_cuda(dev, out, a.shape().clone())
}

/// `x + bias` over the rows of x (..., C), bias (C).
pub(super) fn add_bias(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let dtype = check_same_dtype("add_bias", &[x, bias])?;
    by_cuda_dtype!("add_bias", dtype, add_bias_t(x, bias))
}

fn add_bias_t<T: DeviceElem>(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let op = "add_bias";
    let (dev, xs) = x.cuda_parts::<T>(op)?;
    let mut out = output::<T>(&dev, xs.len())?;
    elementwise::add_bias_rows(&dev, xs, bias.cuda_slice::<T>(op)?, &mut out)?;
    Tensor::from_cuda(dev, out, x.shape().clone())
}

/// Column sums of dout (..., C) -> (C), in dout's dtype (summed in fp32, deterministic).
pub(crate) fn sum_rows(dout: &Tensor) -> Result<Tensor> {
    by_cuda_dtype!("add_bias_backward", dout.dtype(), sum_rows_t(dout))
}

fn sum_rows_t<T: DeviceElem>(dout: &Tensor) -> Result<Tensor> {
    let (dev, d) = dout.cuda_parts::<T>("add_bias_backward")?;
    let cols = dout.shape().last_dim();
    let mut sums = output::<f32>(&dev, cols)?;
    reduce::sum_rows(&dev, d, cols, &mut sums, false)?;
    let sums = T::from_f32_buffer(&dev, sums)?;
    Tensor::from_cuda(dev, sums, [cols])
}
