//! GELU with the tanh approximation GPT-2 uses:
//! `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`. Shapes: any -> same.

pub mod cpu;
mod cuda;

use crate::tensor::check_same_device;
use crate::{Result, Tensor};

/// `gelu(x)`, elementwise (tanh approximation).
///
/// ```
/// use rlhf_tensor::{Device, Tensor, ops::gelu::gelu};
/// let x = Tensor::from_vec(vec![0.0, 1.0], [2], Device::Cpu)?;
/// let y = gelu(&x)?.to_vec_f32();
/// assert_eq!(y[0], 0.0);
/// assert!((y[1] - 0.841192).abs() < 1e-6);
/// # Ok::<(), rlhf_tensor::TensorError>(())
/// ```
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    if x.is_cuda() {
        return cuda::gelu(x);
    }
    let mut out = x.zeros_like()?;
    cpu::gelu(x.as_f32_slice()?, out.as_f32_slice_mut()?);
    Ok(out)
}

/// Gradient of [`gelu`] with respect to its input `x`, from `dout` (x's shape).
pub fn gelu_backward(dout: &Tensor, x: &Tensor) -> Result<Tensor> {
    let op = "gelu_backward";
    dout.shape().expect_same(op, x.shape())?;
    check_same_device(op, dout, x)?;
    if x.is_cuda() {
        return cuda::gelu_backward(dout, x);
    }
    let mut dx = x.zeros_like()?;
    cpu::gelu_backward(
        dout.as_f32_slice()?,
        x.as_f32_slice()?,
        dx.as_f32_slice_mut()?,
    );
    Ok(dx)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::Device;
    use crate::testing::{assert_close, numerical_gradient, random_values, to_f64};

    /// The formula as written, in f64.
    fn reference(x: f64) -> f64 {
        let u = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3));
        0.5 * x * (1.0 + u.tanh())
    }

    #[test]
    fn hand_computed_values_and_saturation() {
        // gelu(1) = 0.5 (1 + tanh(0.7978845608 * 1.044715)) = 0.8411919906;
        // gelu(-1) = -0.1588080094 = gelu(1) - 1 (the tanh form is odd around x / 2).
        let x = Tensor::from_vec(
            vec![1.0, -1.0, 0.5, 3.0, -200.0, 200.0],
            [2, 3],
            Device::Cpu,
        )
        .unwrap();
        let y = to_f64(&gelu(&x).unwrap().to_vec_f32());
        let expected = [
            0.841_191_990_607_8,
            -0.158_808_009_392_2,
            reference(0.5),
            reference(3.0),
            0.0,
            200.0,
        ];
        assert_close("gelu", &y, &expected, 1e-6, 1e-7);
        let ones = Tensor::full([2, 3], 1.0, Device::Cpu).unwrap();
        let d = gelu_backward(&ones, &x).unwrap().to_vec_f32();
        assert!(d.iter().all(|v| v.is_finite()), "{d:?}");
        assert_eq!((d[4], d[5]), (0.0, 1.0));
        let wrong = Tensor::zeros([6], Device::Cpu).unwrap();
        assert!(gelu_backward(&wrong, &x).is_err());
    }

    #[test]
    fn f32_matches_the_formula_on_a_long_slice() {
        // 40_003 elements: several rayon tasks and a partial block.
        let x64: Vec<f64> = random_values(8, 40_003).iter().map(|v| 6.0 * v).collect();
        let x = Tensor::from_vec(
            x64.iter().map(|&v| v as f32).collect(),
            [40_003],
            Device::Cpu,
        )
        .unwrap();
        let expected: Vec<f64> = x64.iter().map(|&v| reference(v as f32 as f64)).collect();
        assert_close(
            "gelu f32",
            &to_f64(&gelu(&x).unwrap().to_vec_f32()),
            &expected,
            1e-5,
            1e-6,
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn forward_and_backward_match_the_formula_and_finite_differences(
            n in 1usize..1100, seed in 0u64..1000,
        ) {
            let x: Vec<f64> = random_values(seed, n).iter().map(|v| 5.0 * v).collect();
            let w = random_values(seed + 1, n);
            let mut y = vec![0.0; n];
            cpu::gelu(&x, &mut y);
            let expected: Vec<f64> = x.iter().map(|&v| reference(v)).collect();
            assert_close("gelu", &y, &expected, 1e-12, 1e-14);
            let mut dx = vec![f64::NAN; n];
            cpu::gelu_backward(&w, &x, &mut dx);
            // Elementwise: the gradient of sum(w * gelu(x)) is w_i gelu'(x_i), checked per element.
            let numeric: Vec<f64> = x
                .iter()
                .zip(&w)
                .map(|(&v, &wi)| wi * numerical_gradient(|p| reference(p[0]), &[v], 1e-6)[0])
                .collect();
            assert_close("dx", &dx, &numeric, 1e-6, 1e-8);
        }
    }
}
