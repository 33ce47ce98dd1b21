//! Reductions to a scalar: sum, mean, max, masked mean; each with backward. A scalar is a tensor of
//! shape `[]`; its gradient `dout` is a one-element tensor.

pub mod cpu;
mod cuda;

use crate::tensor::check_same_device;
use crate::{DType, Result, Shape, Tensor, TensorError};

/// A scalar result (f32) on `like`'s device.
fn scalar(value: f32, like: &Tensor) -> Result<Tensor> {
    Tensor::from_vec(vec![value], Shape::scalar(), like.device())
}

/// `value` in x's shape, on x's device (f32 on the CPU; x's storage dtype on CUDA).
fn full_like(x: &Tensor, value: f32) -> Result<Tensor> {
    let full = Tensor::full(x.shape().clone(), value, x.device())?;
    if x.is_cuda() && x.dtype() != DType::F32 {
        full.to_dtype(x.dtype())
    } else {
        Ok(full)
    }
}

/// The sum of all elements of x's storage, in f32.
fn total(x: &Tensor) -> Result<f32> {
    if x.is_cuda() {
        cuda::sum(x)
    } else {
        Ok(cpu::sum(x.as_f32_slice()?))
    }
}

/// The sum of all elements (an f32 scalar on x's device).
pub fn sum(x: &Tensor) -> Result<Tensor> {
    scalar(total(x)?, x)
}

/// Gradient of [`sum`]: `dout` broadcast to x's shape.
pub fn sum_backward(dout: &Tensor, x: &Tensor) -> Result<Tensor> {
    full_like(x, dout.to_scalar()?)
}

/// The mean of all elements (an error for an empty tensor).
pub fn mean(x: &Tensor) -> Result<Tensor> {
    if x.numel() == 0 {
        return Err(TensorError::invalid(
            "mean",
            "the mean of an empty tensor is undefined",
        ));
    }
    scalar(total(x)? / x.numel() as f32, x)
}

/// Gradient of [`mean`]: `dout / n` everywhere.
pub fn mean_backward(dout: &Tensor, x: &Tensor) -> Result<Tensor> {
    full_like(x, dout.to_scalar()? / x.numel().max(1) as f32)
}

/// The largest element (an error for an empty tensor or one holding NaN).
pub fn max(x: &Tensor) -> Result<Tensor> {
    let (_, value) = argmax_checked("max", x)?;
    scalar(value, x)
}

/// Gradient of [`max`]: `dout` at the (first) largest element, zero elsewhere.
pub fn max_backward(dout: &Tensor, x: &Tensor) -> Result<Tensor> {
    let (index, _) = argmax_checked("max_backward", x)?;
    if x.is_cuda() {
        return cuda::one_hot_like(x, index, dout.to_scalar()?);
    }
    let mut dx = x.zeros_like()?;
    dx.as_f32_slice_mut()?[index] = dout.to_scalar()?;
    Ok(dx)
}

/// The first largest element and its index; on CUDA found on a host copy (no device kernel yet).
fn argmax_checked(op: &'static str, x: &Tensor) -> Result<(usize, f32)> {
    let found = if x.is_cuda() {
        cpu::argmax(&x.try_to_vec_f32()?)
    } else {
        cpu::argmax(x.as_f32_slice()?)
    };
    found.ok_or_else(|| TensorError::invalid(op, "the tensor is empty or holds NaN"))
}

/// sum(x * mask) / sum(mask): the mean over the positions the mask keeps (0/1 mask of x's shape,
/// e.g. response tokens). An error when the mask keeps nothing.
pub fn masked_mean(x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (total, count) = masked_parts("masked_mean", x, mask)?;
    scalar(total / count, x)
}

/// Gradient of [`masked_mean`]: `dout * mask / sum(mask)`.
pub fn masked_mean_backward(dout: &Tensor, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (_, count) = masked_parts("masked_mean_backward", x, mask)?;
    let factor = dout.to_scalar()? / count;
    super::elementwise::scale(mask, factor)
}

fn masked_parts(op: &'static str, x: &Tensor, mask: &Tensor) -> Result<(f32, f32)> {
    x.shape().expect_same(op, mask.shape())?;
    check_same_device(op, x, mask)?;
    let (total, count) = if x.is_cuda() {
        cuda::masked_sum(op, x, mask)?
    } else {
        cpu::masked_sum(x.as_f32_slice()?, mask.as_f32_slice()?)
    };
    if count <= 0.0 {
        return Err(TensorError::invalid(op, "the mask keeps no element"));
    }
    Ok((total, count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Device;
    use crate::testing::{assert_close, numerical_gradient, random_values, to_f64};

    fn t(data: &[f32], shape: &[usize]) -> Tensor {
        Tensor::from_slice(data, shape, Device::Cpu).unwrap()
    }

    #[test]
    fn values() {
        let x = t(&[1.0, -2.0, 5.0, 5.0, 0.5, 3.0], &[2, 3]);
        assert_eq!(sum(&x).unwrap().to_scalar().unwrap(), 12.5);
        assert_eq!(mean(&x).unwrap().to_scalar().unwrap(), 12.5 / 6.0);
        assert_eq!(max(&x).unwrap().to_scalar().unwrap(), 5.0);
        let one = t(&[2.0], &[]);
        assert_eq!(
            max_backward(&one, &x).unwrap().to_vec_f32(),
            vec![0.0, 0.0, 2.0, 0.0, 0.0, 0.0]
        );
        let mask = t(&[1.0, 0.0, 1.0, 0.0, 0.0, 1.0], &[2, 3]);
        assert_eq!(masked_mean(&x, &mask).unwrap().to_scalar().unwrap(), 3.0);
        let dx = masked_mean_backward(&one, &x, &mask).unwrap().to_vec_f32();
        assert_eq!(dx, vec![2.0 / 3.0, 0.0, 2.0 / 3.0, 0.0, 0.0, 2.0 / 3.0]);
    }

    #[test]
    fn undefined_cases_are_errors() {
        let empty = Tensor::zeros([0], Device::Cpu).unwrap();
        assert!(mean(&empty).is_err());
        assert!(max(&empty).is_err());
        assert!(max(&t(&[1.0, f32::NAN], &[2])).is_err());
        let x = t(&[1.0, 2.0], &[2]);
        assert!(masked_mean(&x, &t(&[0.0, 0.0], &[2])).is_err());
        assert!(masked_mean(&x, &t(&[1.0], &[1])).is_err());
    }

    #[test]
    fn mean_and_masked_mean_gradients_match_finite_differences() {
        let x64 = random_values(3, 37);
        let mask64: Vec<f64> = (0..37)
            .map(|i| if i % 3 == 0 { 1.0 } else { 0.0 })
            .collect();
        let x = t(&x64.iter().map(|&v| v as f32).collect::<Vec<_>>(), &[37]);
        let mask = t(&mask64.iter().map(|&v| v as f32).collect::<Vec<_>>(), &[37]);
        let one = t(&[1.0], &[]);
        let count: f64 = mask64.iter().sum();
        let num = numerical_gradient(
            |v| v.iter().zip(&mask64).map(|(a, m)| a * m).sum::<f64>() / count,
            &x64,
            1e-6,
        );
        let got = to_f64(&masked_mean_backward(&one, &x, &mask).unwrap().to_vec_f32());
        assert_close("masked_mean", &got, &num, 1e-5, 1e-7);
        let num = numerical_gradient(|v| v.iter().sum::<f64>() / 37.0, &x64, 1e-6);
        let got = to_f64(&mean_backward(&one, &x).unwrap().to_vec_f32());
        assert_close("mean", &got, &num, 1e-5, 1e-7);
    }

    #[test]
    fn sums_are_bit_identical_on_any_thread_count() {
        let values: Vec<f32> = random_values(11, 300_001)
            .iter()
            .map(|&v| v as f32 * 1e3)
            .collect();
        let mask: Vec<f32> = (0..values.len())
            .map(|i| (i % 7 != 0) as u8 as f32)
            .collect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                (
                    cpu::sum(&values).to_bits(),
                    cpu::masked_sum(&values, &mask).0.to_bits(),
                    crate::ops::elementwise::cpu::sum_rows(&values[..300_000], 300)
                        .iter()
                        .map(|v| v.to_bits())
                        .collect::<Vec<_>>(),
                    crate::optim::cpu::sum_of_squares(&values).to_bits(),
                )
            })
        };
        let one = run(1);
        for threads in [2, 3, 5] {
            assert_eq!(run(threads), one, "{threads} threads");
        }
    }
}
