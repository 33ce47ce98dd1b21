//! Cross-entropy tests: hand-computed losses, the ignore index, target errors, and the fused
//! gradient against finite differences of the mean loss in f64.

use proptest::prelude::*;

use super::cpu::{loss_and_grad_rows, losses_rows};
use super::*;
use crate::Device;
use crate::testing::{assert_close, numerical_gradient, random_values, to_f64};

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(data, shape, Device::Cpu).unwrap()
}

#[test]
fn hand_computed_losses_and_gradient() {
    // Row 0: ln(e + e^2 + e^3) - 1 = 2.40760596444438. Row 1: ln(2 e^0.5 + e^-1) - 0.5.
    let logits = t(&[1.0, 2.0, 3.0, 0.5, 0.5, -1.0, 9.0, 9.0, 9.0], &[3, 3]);
    let ce = cross_entropy(&logits, &[0, 1, IGNORE_INDEX], IGNORE_INDEX).unwrap();
    let expected = [2.407_605_964_444_38, 0.798_916_184_841_725_7, 0.0];
    assert_close(
        "losses",
        &to_f64(&ce.losses.to_vec_f32()),
        &expected,
        1e-6,
        0.0,
    );
    assert_eq!(ce.count, 2);
    assert!((ce.loss as f64 - (expected[0] + expected[1]) / 2.0).abs() < 1e-6);
    let d = to_f64(&ce.dlogits.to_vec_f32());
    // (softmax - onehot) / count; each scored row's gradient sums to zero.
    let z = (1.0f64).exp() + (2.0f64).exp() + (3.0f64).exp();
    assert!((d[0] - ((1.0f64).exp() / z - 1.0) / 2.0).abs() < 1e-7);
    assert!((d[2] - (3.0f64).exp() / z / 2.0).abs() < 1e-7);
    assert!(d[3..6].iter().sum::<f64>().abs() < 1e-7);
    assert_eq!(&d[6..], &[0.0, 0.0, 0.0]);
    let eval = cross_entropy_losses(&logits, &[0, 1, IGNORE_INDEX], IGNORE_INDEX).unwrap();
    assert_eq!(eval, ce.losses);
}

#[test]
fn all_ignored_gives_zero_loss_zero_grads_and_zero_count() {
    let logits = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let ce = cross_entropy(&logits, &[-1, -1], -1).unwrap();
    assert_eq!(ce.loss, 0.0);
    assert_eq!(ce.count, 0);
    assert_eq!(ce.dlogits.to_vec_f32(), vec![0.0; 4]);
}

#[test]
fn bad_targets_and_shapes_are_errors() {
    let logits = t(&[0.0; 6], &[2, 3]);
    let message = cross_entropy(&logits, &[0, 3], IGNORE_INDEX)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("target 3 at position 1") && message.contains("3 classes"),
        "{message}"
    );
    // A negative id that is not the ignore index is refused too.
    assert!(cross_entropy(&logits, &[0, -100], -1).is_err());
    let message = cross_entropy(&logits, &[0], IGNORE_INDEX)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("[2, 3]") && message.contains("[1]"),
        "{message}"
    );
    assert!(cross_entropy(&t(&[], &[2, 0]), &[0, 0], IGNORE_INDEX).is_err());
    assert!(cross_entropy_losses(&logits, &[0, 1, 2], IGNORE_INDEX).is_err());
}

#[test]
fn batched_logits_and_f32_match_f64() {
    // (B, T, V) = (2, 3, 517): several rayon tasks, V not a multiple of the lane count.
    let (rows, cols) = (6, 517);
    let x64: Vec<f64> = random_values(9, rows * cols)
        .iter()
        .map(|v| 6.0 * v)
        .collect();
    let targets: Vec<Option<usize>> = (0..rows)
        .map(|r| (r != 4).then_some(r * 83 % cols))
        .collect();
    let mut loss64 = vec![0.0; rows];
    let mut grad64 = vec![0.0; rows * cols];
    loss_and_grad_rows(&x64, cols, &targets, 0.2, &mut loss64, &mut grad64);
    let logits = t(
        &x64.iter().map(|&v| v as f32).collect::<Vec<_>>(),
        &[2, 3, cols],
    );
    let ids: Vec<i32> = targets
        .iter()
        .map(|t| t.map_or(IGNORE_INDEX, |c| c as i32))
        .collect();
    let ce = cross_entropy(&logits, &ids, IGNORE_INDEX).unwrap();
    assert_eq!(ce.dlogits.dims(), &[2, 3, cols]);
    assert_close(
        "losses",
        &to_f64(&ce.losses.to_vec_f32()),
        &loss64,
        1e-5,
        1e-6,
    );
    assert_close(
        "dlogits",
        &to_f64(&ce.dlogits.to_vec_f32()),
        &grad64,
        1e-5,
        1e-8,
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn gradient_matches_finite_differences_of_the_mean_loss(
        rows in 1usize..6, cols in 1usize..20, seed in 0u64..1000, ignore_mask in 0u32..64,
    ) {
        let x: Vec<f64> = random_values(seed, rows * cols).iter().map(|v| 4.0 * v).collect();
        let targets: Vec<Option<usize>> = (0..rows)
            .map(|r| (ignore_mask >> r & 1 == 0).then_some((seed as usize + 7 * r) % cols))
            .collect();
        let count = targets.iter().flatten().count();
        let scale = if count == 0 { 0.0 } else { 1.0 / count as f64 };
        let mean_loss = |x: &[f64]| {
            let mut losses = vec![0.0; rows];
            losses_rows(x, cols, &targets, &mut losses);
            losses.iter().sum::<f64>() * scale
        };
        let mut losses = vec![0.0; rows];
        let mut grad = vec![f64::NAN; x.len()];
        loss_and_grad_rows(&x, cols, &targets, scale, &mut losses, &mut grad);
        let numeric = numerical_gradient(mean_loss, &x, 1e-6);
        assert_close("dlogits", &grad, &numeric, 1e-6, 1e-8);
    }
}
