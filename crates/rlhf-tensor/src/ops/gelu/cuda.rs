//! The CUDA path of GELU: the tensor-level glue over `cuda::gelu` (f32 or bf16 storage).

use crate::cuda::gelu as kernels;
use crate::cuda::storage::{DeviceElem, by_cuda_dtype, output};
use crate::tensor::check_same_dtype;
use crate::{Result, Tensor};

/// `gelu(x)`.
pub(super) fn gelu(x: &Tensor) -> Result<Tensor> {
    by_cuda_dtype!("gelu", x.dtype(), gelu_t(x))
}

fn gelu_t<T: DeviceElem>(x: &Tensor) -> Result<Tensor> {
    let (dev, xs) = x.cuda_parts::<T>("gelu")?;
    let mut out = output::<T>(&dev, xs.len())?;
    kernels::gelu_forward(&dev, xs, &mut out)?;
    Tensor::from_cuda(dev, out, x.shape().clone())
}

/// `dout * gelu'(x)`.
pub(super) fn gelu_backward(dout: &Tensor, x: &Tensor) -> Result<Tensor> {
    let dtype = check_same_dtype("gelu_backward", &[dout, x])?;
    by_cuda_dtype!("gelu_backward", dtype, gelu_backward_t(dout, x))
}

fn gelu_backward_t<T: DeviceElem>(dout: &Tensor, x: &Tensor) -> Result<Tensor> {
    let op = "gelu_backward";
    let (dev, xs) = x.cuda_parts::<T>(op)?;
    let mut dx = output::<T>(&dev, xs.len())?;
    kernels::gelu_backward(&dev, dout.cuda_slice::<T>(op)?, xs, &mut dx)?;
    Tensor::from_cuda(dev, dx, x.shape().clone())
}
