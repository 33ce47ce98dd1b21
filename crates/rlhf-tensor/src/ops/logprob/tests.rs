//! Log-prob and entropy tests: hand-computed values, temperature scaling, errors, and the fused
//! backward against finite differences in f64.

use proptest::prelude::*;

use super::cpu::{token_logprobs_rows, token_logprobs_rows_backward};
use super::*;
use crate::Device;
use crate::testing::{assert_close, numerical_gradient, random_values, to_f64};

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(data, shape, Device::Cpu).unwrap()
}

#[test]
fn hand_computed_values_and_temperature() {
    // softmax(ln [1, 2, 3]) = [1/6, 1/3, 1/2]; at temperature 2 the logits 2 ln [1, 2, 3] give the
    // same distribution.
    let probs = [1.0f64 / 6.0, 1.0 / 3.0, 0.5];
    let entropy: f64 = -probs.iter().map(|p| p * p.ln()).sum::<f64>();
    let ln = |v: f64| v.ln() as f32;
    for (scale, temperature) in [(1.0f32, 1.0f32), (2.0, 2.0), (0.5, 0.5)] {
        let logits = t(
            &[
                scale * ln(1.0),
                scale * ln(2.0),
                scale * ln(3.0),
                5.0 + scale * ln(3.0),
                5.0 + scale * ln(2.0),
                5.0 + scale * ln(1.0),
            ],
            &[2, 3],
        );
        let out = token_logprobs(&logits, &[2, 0], temperature).unwrap();
        assert_close(
            "logp",
            &to_f64(&out.logp.to_vec_f32()),
            &[0.5f64.ln(), 0.5f64.ln()],
            1e-6,
            1e-6,
        );
        assert_close(
            "entropy",
            &to_f64(&out.entropy.to_vec_f32()),
            &[entropy, entropy],
            1e-6,
            1e-6,
        );
    }
}

#[test]
fn errors_name_token_temperature_and_shapes() {
    let logits = t(&[0.0; 6], &[2, 3]);
    let message = token_logprobs(&logits, &[0, 3], 1.0)
        .unwrap_err()
        .to_string();
    assert!(message.contains("token 3 at position 1"), "{message}");
    for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        assert!(token_logprobs(&logits, &[0, 1], bad).is_err());
    }
    let message = token_logprobs(&logits, &[0], 1.0).unwrap_err().to_string();
    assert!(
        message.contains("[2, 3]") && message.contains("[1]"),
        "{message}"
    );
    let wrong = t(&[0.0; 3], &[3]);
    let message = token_logprobs_backward(&logits, &[0, 1], 1.0, Some(&wrong), None)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("[3]") && message.contains("[2]"),
        "{message}"
    );
}

#[test]
fn f32_tensor_path_matches_f64_kernels_on_wide_rows() {
    let (rows, cols, temperature) = (5, 1029, 0.8);
    let x64: Vec<f64> = random_values(2, rows * cols)
        .iter()
        .map(|v| 5.0 * v)
        .collect();
    let tokens: Vec<usize> = (0..rows).map(|r| r * 211 % cols).collect();
    let g_logp = random_values(3, rows);
    let g_entropy = random_values(4, rows);
    let (mut logp, mut entropy) = (vec![0.0; rows], vec![0.0; rows]);
    token_logprobs_rows(
        &x64,
        cols,
        &tokens,
        1.0 / temperature,
        &mut logp,
        &mut entropy,
    );
    let mut dx64 = vec![0.0; rows * cols];
    token_logprobs_rows_backward(
        &x64,
        cols,
        &tokens,
        1.0 / temperature,
        &g_logp,
        &g_entropy,
        &mut dx64,
    );

    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
    let logits = t(&f32s(&x64), &[rows, cols]);
    let ids: Vec<u32> = tokens.iter().map(|&t| t as u32).collect();
    let out = token_logprobs(&logits, &ids, temperature as f32).unwrap();
    assert_close("logp", &to_f64(&out.logp.to_vec_f32()), &logp, 1e-5, 1e-5);
    assert_close(
        "entropy",
        &to_f64(&out.entropy.to_vec_f32()),
        &entropy,
        1e-5,
        1e-5,
    );
    let d_logp = t(&f32s(&g_logp), &[rows]);
    let d_entropy = t(&f32s(&g_entropy), &[rows]);
    let dx = token_logprobs_backward(
        &logits,
        &ids,
        temperature as f32,
        Some(&d_logp),
        Some(&d_entropy),
    )
    .unwrap();
    assert_close("dlogits", &to_f64(&dx.to_vec_f32()), &dx64, 1e-4, 1e-7);
    // Without upstream gradients the result is zero.
    let none = token_logprobs_backward(&logits, &ids, 1.0, None, None).unwrap();
    assert!(none.to_vec_f32().iter().all(|&v| v == 0.0));
}

#[test]
fn logp_at_temperature_one_is_minus_the_cross_entropy() {
    let (rows, cols) = (7, 300);
    let values: Vec<f32> = random_values(12, rows * cols)
        .iter()
        .map(|&v| 10.0 * v as f32)
        .collect();
    let logits = t(&values, &[rows, cols]);
    let tokens: Vec<u32> = (0..rows as u32).map(|r| r * 41 % cols as u32).collect();
    let targets: Vec<i32> = tokens.iter().map(|&t| t as i32).collect();
    let out = token_logprobs(&logits, &tokens, 1.0).unwrap();
    let losses = crate::ops::cross_entropy::cross_entropy_losses(&logits, &targets, -100).unwrap();
    let minus_losses: Vec<f64> = losses.to_vec_f32().iter().map(|&l| -l as f64).collect();
    assert_close(
        "logp",
        &to_f64(&out.logp.to_vec_f32()),
        &minus_losses,
        1e-6,
        1e-6,
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn backward_matches_finite_differences(
        rows in 1usize..5, cols in 1usize..20, seed in 0u64..1000, temperature in 0.3f64..3.0,
    ) {
        let x: Vec<f64> = random_values(seed, rows * cols).iter().map(|v| 3.0 * v).collect();
        let tokens: Vec<usize> = (0..rows).map(|r| (seed as usize + 5 * r) % cols).collect();
        let g_logp = random_values(seed + 1, rows);
        let g_entropy = random_values(seed + 2, rows);
        let inv_t = 1.0 / temperature;
        let objective = |x: &[f64]| {
            let (mut logp, mut entropy) = (vec![0.0; rows], vec![0.0; rows]);
            token_logprobs_rows(x, cols, &tokens, inv_t, &mut logp, &mut entropy);
            logp.iter().zip(&g_logp).map(|(a, b)| a * b).sum::<f64>()
                + entropy.iter().zip(&g_entropy).map(|(a, b)| a * b).sum::<f64>()
        };
        let mut dx = vec![f64::NAN; x.len()];
        token_logprobs_rows_backward(&x, cols, &tokens, inv_t, &g_logp, &g_entropy, &mut dx);
        let numeric = numerical_gradient(objective, &x, 1e-6);
        assert_close("dlogits", &dx, &numeric, 1e-6, 1e-8);
    }
}
