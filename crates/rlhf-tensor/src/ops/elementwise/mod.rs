//! Elementwise ops: add (residual add), mul, scale, and the bias-row broadcast.
//!
//! Backward of `add` is the incoming gradient for both operands, so it has no function of its own;
//! use [`Tensor::add_assign`] to accumulate gradients and residual branches in place.

pub mod cpu;
mod cuda;

use crate::tensor::check_same_device;
use crate::{Result, Tensor, TensorError};

/// `a + b` (equal shapes): the residual add.
pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary("add", a, b, cuda::Binary::Add, |x, y| x + y)
}

/// `a * b` (equal shapes).
pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary("mul", a, b, cuda::Binary::Mul, |x, y| x * y)
}

/// Gradients of `mul`: (dout * b, dout * a).
pub fn mul_backward(dout: &Tensor, a: &Tensor, b: &Tensor) -> Result<(Tensor, Tensor)> {
    dout.shape().expect_same("mul_backward", a.shape())?;
    Ok((mul(dout, b)?, mul(dout, a)?))
}

/// `a * factor`.
pub fn scale(a: &Tensor, factor: f32) -> Result<Tensor> {
    if a.is_cuda() {
        return cuda::scale(a, factor);
    }
    let mut out = a.zeros_like()?;
    cpu::map(out.as_f32_slice_mut()?, a.as_f32_slice()?, |x| x * factor);
    Ok(out)
}

/// Gradient of `scale`: dout * factor.
pub fn scale_backward(dout: &Tensor, factor: f32) -> Result<Tensor> {
    scale(dout, factor)
}

/// `x + bias` with `bias` (C) broadcast over the rows of x (..., C).
pub fn add_bias(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    check_bias("add_bias", x, bias)?;
    if x.is_cuda() {
        return cuda::add_bias(x, bias);
    }
    let mut out = x.zeros_like()?;
    cpu::add_bias_rows(
        out.as_f32_slice_mut()?,
        x.as_f32_slice()?,
        bias.as_f32_slice()?,
    );
    Ok(out)
}

/// Gradient of `add_bias` with respect to the bias: the column sums of dout (..., C) -> (C).
/// (The gradient with respect to x is dout itself.)
pub fn add_bias_backward(dout: &Tensor) -> Result<Tensor> {
    if dout.is_cuda() {
        return cuda::sum_rows(dout);
    }
    let cols = dout.shape().last_dim();
    let sums = cpu::sum_rows(dout.as_f32_slice()?, cols);
    Tensor::from_vec(sums, [cols], dout.device())
}

pub(crate) fn check_bias(op: &'static str, x: &Tensor, bias: &Tensor) -> Result<()> {
    check_same_device(op, x, bias)?;
    if bias.shape().rank() == 1 && bias.dims()[0] == x.shape().last_dim() && x.shape().rank() >= 1 {
        Ok(())
    } else {
        Err(TensorError::ShapeMismatch {
            op,
            detail: "bias must be 1-D with the input's last dimension".into(),
            left: x.shape().clone(),
            right: bias.shape().clone(),
        })
    }
}

fn binary(
    op: &'static str,
    a: &Tensor,
    b: &Tensor,
    kind: cuda::Binary,
    f: fn(f32, f32) -> f32,
) -> Result<Tensor> {
    a.shape().expect_same(op, b.shape())?;
    check_same_device(op, a, b)?;
    if a.is_cuda() {
        return cuda::binary(op, kind, a, b);
    }
    let mut out = a.zeros_like()?;
    cpu::zip_map(
        out.as_f32_slice_mut()?,
        a.as_f32_slice()?,
        b.as_f32_slice()?,
        f,
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Device;

    fn t(data: &[f32], shape: &[usize]) -> Tensor {
        Tensor::from_slice(data, shape, Device::Cpu).unwrap()
    }

    #[test]
    fn add_mul_scale_values() {
        let a = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
        let b = t(&[0.5, -1.0, 2.0, 0.0], &[2, 2]);
        assert_eq!(add(&a, &b).unwrap().to_vec_f32(), vec![1.5, 1.0, 5.0, 4.0]);
        assert_eq!(mul(&a, &b).unwrap().to_vec_f32(), vec![0.5, -2.0, 6.0, 0.0]);
        assert_eq!(
            scale(&a, -2.0).unwrap().to_vec_f32(),
            vec![-2.0, -4.0, -6.0, -8.0]
        );
        let (da, db) = mul_backward(&t(&[1.0; 4], &[2, 2]), &a, &b).unwrap();
        assert_eq!(da.to_vec_f32(), b.to_vec_f32());
        assert_eq!(db.to_vec_f32(), a.to_vec_f32());
    }

    #[test]
    fn bias_broadcast_and_its_gradient() {
        let x = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        let bias = t(&[10.0, 20.0, 30.0], &[3]);
        assert_eq!(
            add_bias(&x, &bias).unwrap().to_vec_f32(),
            vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0]
        );
        assert_eq!(
            add_bias_backward(&x).unwrap().to_vec_f32(),
            vec![5.0, 7.0, 9.0]
        );
    }

    #[test]
    fn mismatched_shapes_are_errors_naming_both() {
        let message = add(&t(&[1.0; 6], &[2, 3]), &t(&[1.0; 6], &[3, 2]))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("[2, 3]") && message.contains("[3, 2]"),
            "{message}"
        );
        assert!(add_bias(&t(&[1.0; 6], &[2, 3]), &t(&[1.0; 2], &[2])).is_err());
    }
}
