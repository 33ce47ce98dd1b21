//! The CUDA path of the reductions: sums and masked sums on the device (`cuda::reduce`, fp32
//! accumulation, deterministic), the one-hot gradient of `max` written in place. `max` itself
//! has no device kernel yet: its argmax is found on a host copy of x.

use crate::cuda::reduce;
use crate::cuda::storage::{DeviceElem, by_cuda_dtype};
use crate::tensor::check_same_dtype;
use crate::{Result, Tensor};

/// The sum of all elements, on the host.
pub(super) fn sum(x: &Tensor) -> Result<f32> {
    by_cuda_dtype!("sum", x.dtype(), sum_t(x))
}

fn sum_t<T: DeviceElem>(x: &Tensor) -> Result<f32> {
    let (dev, xs) = x.cuda_parts::<T>("sum")?;
    reduce::sum(&dev, xs)
}

/// (sum(x * mask), sum(mask)), on the host.
pub(super) fn masked_sum(op: &'static str, x: &Tensor, mask: &Tensor) -> Result<(f32, f32)> {
    let dtype = check_same_dtype(op, &[x, mask])?;
    by_cuda_dtype!(op, dtype, masked_sum_t(op, x, mask))
}

fn masked_sum_t<T: DeviceElem>(op: &'static str, x: &Tensor, mask: &Tensor) -> Result<(f32, f32)> {
    let (dev, xs) = x.cuda_parts::<T>(op)?;
    reduce::masked_sum(&dev, xs, mask.cuda_slice::<T>(op)?)
}

/// `dx` zero but for `value` at `index` (x's dtype and device).
pub(super) fn one_hot_like(x: &Tensor, index: usize, value: f32) -> Result<Tensor> {
    by_cuda_dtype!("max_backward", x.dtype(), one_hot_t(x, index, value))
}

fn one_hot_t<T: DeviceElem>(x: &Tensor, index: usize, value: f32) -> Result<Tensor> {
    let op = "max_backward";
    let mut dx = x.zeros_like()?;
    let (dev, _) = x.cuda_parts::<T>(op)?;
    let buffer = dx.cuda_slice_mut::<T>(op)?;
    let mut element = buffer.slice_mut(index..index + 1);
    dev.stream()
        .memcpy_htod(&[T::from_f32(value)], &mut element)
        .map_err(crate::cuda::device::driver_error(op))?;
    Ok(dx)
}
