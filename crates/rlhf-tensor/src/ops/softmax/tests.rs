//! Softmax tests: hand-computed values, masked rows, f32 against f64, and both backwards against
//! finite differences in f64.

use proptest::prelude::*;

use super::cpu::*;
use super::*;
use crate::Device;
use crate::testing::{assert_close, numerical_gradient, random_values, to_f64};

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(data, shape, Device::Cpu).unwrap()
}

#[test]
fn hand_computed_values() {
    // softmax([1, 2, 3]) = e^(x - 3) / (e^-2 + e^-1 + 1)
    let denominator = (-2.0f64).exp() + (-1.0f64).exp() + 1.0;
    let expected: Vec<f64> = [-2.0f64, -1.0, 0.0]
        .iter()
        .map(|v| v.exp() / denominator)
        .collect();
    let x = t(&[1.0, 2.0, 3.0, 1000.0, 1000.0, 1000.0], &[2, 3]);
    let probs = to_f64(&softmax(&x).unwrap().to_vec_f32());
    assert_close("softmax row 0", &probs[..3], &expected, 1e-6, 0.0);
    // Large equal logits must not overflow.
    assert_close("softmax row 1", &probs[3..], &[1.0 / 3.0; 3], 1e-6, 0.0);
    let logp = to_f64(&log_softmax(&x).unwrap().to_vec_f32());
    let expected_log: Vec<f64> = expected.iter().map(|p| p.ln()).collect();
    assert_close("log_softmax row 0", &logp[..3], &expected_log, 1e-6, 0.0);
    assert_close(
        "log_softmax row 1",
        &logp[3..],
        &[-(3.0f64.ln()); 3],
        1e-6,
        0.0,
    );
}

#[test]
fn fully_masked_rows_give_zeros_not_nan() {
    let ninf = f32::NEG_INFINITY;
    let x = t(&[ninf, ninf, 0.0, ninf], &[2, 2]);
    assert_eq!(softmax(&x).unwrap().to_vec_f32(), vec![0.0, 0.0, 1.0, 0.0]);
    let logp = log_softmax(&x).unwrap().to_vec_f32();
    assert_eq!(logp, vec![ninf, ninf, 0.0, ninf]);
    // NaN is never hidden.
    let with_nan = t(&[0.0, f32::NAN], &[1, 2]);
    assert!(softmax(&with_nan).unwrap().to_vec_f32()[0].is_nan());
}

#[test]
fn shape_errors_name_both_shapes() {
    let x = t(&[0.0; 6], &[2, 3]);
    let message = softmax_backward(&t(&[0.0; 6], &[3, 2]), &x)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("[3, 2]") && message.contains("[2, 3]"),
        "{message}"
    );
    assert!(softmax(&t(&[1.0], &[])).is_err());
    assert!(log_softmax_backward(&t(&[0.0; 5], &[5]), &x).is_err());
}

#[test]
fn f32_kernels_agree_with_f64_on_wide_rows() {
    // 3 rows of 1031 columns: several rayon tasks, not a multiple of the lane count.
    let (rows, cols) = (3, 1031);
    let x64: Vec<f64> = random_values(5, rows * cols)
        .iter()
        .map(|v| 8.0 * v)
        .collect();
    let x32: Vec<f32> = x64.iter().map(|&v| v as f32).collect();
    let mut p64 = vec![0.0; x64.len()];
    let mut p32 = vec![0.0f32; x64.len()];
    softmax_rows(&x64, cols, &mut p64);
    softmax_rows(&x32, cols, &mut p32);
    assert_close("softmax f32", &to_f64(&p32), &p64, 1e-5, 1e-9);
    log_softmax_rows(&x64, cols, &mut p64);
    log_softmax_rows(&x32, cols, &mut p32);
    assert_close("log_softmax f32", &to_f64(&p32), &p64, 1e-5, 1e-5);
}

/// L = sum(w * f(x)) for a random w; checks the kernel's backward against finite differences.
fn check_backward(
    rows: usize,
    cols: usize,
    seed: u64,
    forward: fn(&[f64], usize, &mut [f64]),
    backward: fn(&[f64], &[f64], usize, &mut [f64]),
) {
    let x: Vec<f64> = random_values(seed, rows * cols)
        .iter()
        .map(|v| 3.0 * v)
        .collect();
    let w = random_values(seed + 1, rows * cols);
    let run = |x: &[f64]| {
        let mut out = vec![f64::NAN; x.len()];
        forward(x, cols, &mut out);
        out
    };
    let out = run(&x);
    let mut dx = vec![f64::NAN; x.len()];
    backward(&w, &out, cols, &mut dx);
    let numeric = numerical_gradient(
        |x| run(x).iter().zip(&w).map(|(o, w)| o * w).sum(),
        &x,
        1e-6,
    );
    assert_close("dx", &dx, &numeric, 1e-6, 1e-8);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn softmax_backward_matches_finite_differences(
        rows in 1usize..5, cols in 1usize..20, seed in 0u64..1000,
    ) {
        check_backward(rows, cols, seed, softmax_rows, softmax_rows_backward);
    }

    #[test]
    fn log_softmax_backward_matches_finite_differences(
        rows in 1usize..5, cols in 1usize..20, seed in 0u64..1000,
    ) {
        check_backward(rows, cols, seed, log_softmax_rows, log_softmax_rows_backward);
    }
}

#[test]
fn tensor_backward_matches_kernel() {
    let x = t(&[0.1, -0.4, 2.0, 0.3, 0.3, -1.0], &[2, 3]);
    let dout = t(&[1.0, 0.0, -1.0, 0.5, 0.5, 0.5], &[2, 3]);
    let probs = softmax(&x).unwrap();
    let dx = softmax_backward(&dout, &probs).unwrap().to_vec_f32();
    // Row 2 has a constant upstream gradient: softmax is shift-invariant, so dx = 0.
    assert!(dx[3..].iter().all(|v| v.abs() < 1e-7), "{dx:?}");
    let logp = log_softmax(&x).unwrap();
    let dx_log = log_softmax_backward(&dout, &logp).unwrap().to_vec_f32();
    // Row sums of a log-softmax gradient are sum(dout) (1 - sum p) = 0.
    assert!(dx_log[..3].iter().sum::<f32>().abs() < 1e-6);
}
