//! Attention tests: a hand-computed case, padding (left, right, arbitrary, all), errors, f32
//! against an f64 reference, and the backward against finite differences in f64.

use proptest::prelude::*;

use super::cpu::{attention_backward as kernel_backward, attention_forward as kernel_forward};
use super::*;
use crate::Device;
use crate::testing::{assert_close, numerical_gradient, random_values, to_f64};

/// The definition, one query at a time, in f64.
fn reference(dims: &AttentionDims, qkv: &[f64], mask: Option<&[bool]>) -> Vec<f64> {
    let (t_len, h_count, d, c) = (dims.seq_len, dims.n_head, dims.head_dim, dims.channels());
    let real = |b: usize, j: usize| mask.is_none_or(|m| m[b * t_len + j]);
    let at = |b: usize, t: usize, part: usize, h: usize, e: usize| {
        qkv[(b * t_len + t) * 3 * c + part * c + h * d + e]
    };
    let mut out = vec![0.0; dims.batch * t_len * c];
    for b in 0..dims.batch {
        for h in 0..h_count {
            for i in (0..t_len).filter(|&i| real(b, i)) {
                let keys: Vec<usize> = (0..=i).filter(|&j| real(b, j)).collect();
                let scores: Vec<f64> = keys
                    .iter()
                    .map(|&j| {
                        (0..d)
                            .map(|e| at(b, i, 0, h, e) * at(b, j, 1, h, e))
                            .sum::<f64>()
                    })
                    .map(|s| s / (d as f64).sqrt())
                    .collect();
                let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let weights: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                let total: f64 = weights.iter().sum();
                for e in 0..d {
                    out[(b * t_len + i) * c + h * d + e] = keys
                        .iter()
                        .zip(&weights)
                        .map(|(&j, w)| w / total * at(b, j, 2, h, e))
                        .sum();
                }
            }
        }
    }
    out
}

/// Padding masks of four kinds: none, right padding, left padding, arbitrary (some sequences
/// entirely padding).
fn make_mask(kind: u8, batch: usize, t_len: usize, seed: u64) -> Option<Vec<bool>> {
    let lengths: Vec<usize> = (0..batch)
        .map(|b| (seed as usize + 3 * b) % (t_len + 1))
        .collect();
    match kind {
        0 => None,
        1 => Some(
            (0..batch * t_len)
                .map(|i| i % t_len < lengths[i / t_len])
                .collect(),
        ),
        2 => Some(
            (0..batch * t_len)
                .map(|i| i % t_len >= t_len - lengths[i / t_len])
                .collect(),
        ),
        _ => Some(
            random_values(seed + 11, batch * t_len)
                .iter()
                .map(|&v| v > -0.3)
                .collect(),
        ),
    }
}

#[test]
fn hand_computed_two_tokens_one_head() {
    // C = D = 1. Token 0: q=1, k=1, v=10. Token 1: q=2, k=0, v=20.
    // Query 1 scores: q1 k0 = 2, q1 k1 = 0 -> p = [e^2, 1] / (e^2 + 1).
    let qkv =
        Tensor::from_vec(vec![1.0, 1.0, 10.0, 2.0, 0.0, 20.0], [1, 2, 3], Device::Cpu).unwrap();
    let (out, cache) = attention(&qkv, 1, None).unwrap();
    let p0 = (2.0f64).exp() / ((2.0f64).exp() + 1.0);
    let expected = [10.0, p0 * 10.0 + (1.0 - p0) * 20.0];
    assert_close("out", &to_f64(&out.to_vec_f32()), &expected, 1e-6, 0.0);
    assert_close(
        "att",
        &to_f64(&cache.att.to_vec_f32()),
        &[1.0, 0.0, p0, 1.0 - p0],
        1e-6,
        0.0,
    );
    // d out1 / d v = p; d out0 / d v0 = 1.
    let dout = Tensor::from_vec(vec![1.0, 1.0], [1, 2, 1], Device::Cpu).unwrap();
    let dqkv = to_f64(
        &attention_backward(&dout, &qkv, &cache)
            .unwrap()
            .to_vec_f32(),
    );
    assert_close("dv", &[dqkv[2], dqkv[5]], &[1.0 + p0, 1.0 - p0], 1e-6, 0.0);
    // Query 0 sees one key only: its score has no gradient.
    assert_eq!(dqkv[0], 0.0);
}

#[test]
fn fully_padded_sequences_give_zeros_and_no_nan() {
    let qkv64 = random_values(4, 2 * 3 * 6);
    let qkv = Tensor::from_vec(
        qkv64.iter().map(|&v| v as f32).collect(),
        [2, 3, 6],
        Device::Cpu,
    )
    .unwrap();
    let mask = [false, false, false, true, false, true];
    let (out, cache) = attention(&qkv, 2, Some(&mask)).unwrap();
    let out = out.to_vec_f32();
    assert!(out.iter().all(|v| v.is_finite()));
    assert!(out[..6].iter().all(|&v| v == 0.0), "{out:?}");
    assert!(out[8..10].iter().all(|&v| v == 0.0), "{out:?}");
    let dout = Tensor::full([2, 3, 2], 1.0, Device::Cpu).unwrap();
    let dqkv = attention_backward(&dout, &qkv, &cache)
        .unwrap()
        .to_vec_f32();
    assert!(dqkv.iter().all(|v| v.is_finite()));
    // The first sequence is all padding: nothing flows back into it.
    assert!(dqkv[..18].iter().all(|&v| v == 0.0));
    // The padded key (sequence 1, position 1) receives no gradient for k or v.
    assert!(dqkv[18 + 6..18 + 12].iter().all(|&v| v == 0.0), "{dqkv:?}");
}

#[test]
fn errors_name_the_shapes() {
    let qkv = Tensor::zeros([2, 3, 12], Device::Cpu).unwrap();
    let message = attention(&qkv, 3, None).unwrap_err().to_string();
    assert!(
        message.contains("[2, 3, 12]") && message.contains("n_head = 3"),
        "{message}"
    );
    assert!(attention(&qkv, 0, None).is_err());
    assert!(attention(&Tensor::zeros([2, 3, 7], Device::Cpu).unwrap(), 1, None).is_err());
    assert!(attention(&Tensor::zeros([6, 12], Device::Cpu).unwrap(), 2, None).is_err());
    let message = attention(&qkv, 2, Some(&[true; 5]))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("[5]") && message.contains("[2, 3]"),
        "{message}"
    );
    let (_, cache) = attention(&qkv, 2, None).unwrap();
    let wrong = Tensor::zeros([2, 3, 5], Device::Cpu).unwrap();
    let message = attention_backward(&wrong, &qkv, &cache)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("[2, 3, 5]") && message.contains("[2, 3, 4]"),
        "{message}"
    );
    let other = Tensor::zeros([2, 4, 12], Device::Cpu).unwrap();
    assert!(
        attention_backward(
            &Tensor::zeros([2, 4, 4], Device::Cpu).unwrap(),
            &other,
            &cache
        )
        .is_err()
    );
}

#[test]
fn f32_matches_the_f64_reference_at_a_larger_shape() {
    // T = 67, D = 19: above the GEMM's parallel threshold, not a multiple of any vector width.
    let dims = AttentionDims {
        batch: 2,
        seq_len: 67,
        n_head: 3,
        head_dim: 19,
    };
    let c = dims.channels();
    let qkv64: Vec<f64> = random_values(6, 2 * 67 * 3 * c)
        .iter()
        .map(|v| 2.0 * v)
        .collect();
    for kind in 0..4 {
        let mask = make_mask(kind, dims.batch, dims.seq_len, 40);
        let expected = reference(&dims, &qkv64, mask.as_deref());
        let qkv = Tensor::from_vec(
            qkv64.iter().map(|&v| v as f32).collect(),
            [2, 67, 3 * c],
            Device::Cpu,
        )
        .unwrap();
        let (out, cache) = attention(&qkv, 3, mask.as_deref()).unwrap();
        assert_close("out", &to_f64(&out.to_vec_f32()), &expected, 1e-4, 1e-5);
        // Real query rows are distributions; padded ones are zero.
        for (r, row) in cache.att.to_vec_f32().chunks(67).enumerate() {
            let (b, i) = (r / (3 * 67), r % 67);
            let real = mask.as_ref().is_none_or(|m| m[b * 67 + i]);
            let total: f32 = row.iter().sum();
            assert!(
                (total - if real { 1.0 } else { 0.0 }).abs() < 1e-5,
                "row {r}: {total}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    #[test]
    fn backward_matches_finite_differences(
        batch in 1usize..3, seq_len in 1usize..6, n_head in 1usize..3, head_dim in 1usize..4,
        mask_kind in 0u8..4, seed in 0u64..1000,
    ) {
        let dims = AttentionDims { batch, seq_len, n_head, head_dim };
        let c = dims.channels();
        let mask = make_mask(mask_kind, batch, seq_len, seed);
        let qkv = random_values(seed, batch * seq_len * 3 * c);
        let w = random_values(seed + 1, batch * seq_len * c);
        let forward = |qkv: &[f64]| {
            let mut out = vec![f64::NAN; batch * seq_len * c];
            let mut att = vec![f64::NAN; batch * n_head * seq_len * seq_len];
            kernel_forward(&dims, qkv, mask.as_deref(), &mut out, &mut att);
            (out, att)
        };
        let (out, att) = forward(&qkv);
        assert_close("forward", &out, &reference(&dims, &qkv, mask.as_deref()), 1e-12, 1e-12);
        let mut dqkv = vec![f64::NAN; qkv.len()];
        kernel_backward(&dims, &w, &qkv, &att, &mut dqkv);
        let numeric = numerical_gradient(
            |x| forward(x).0.iter().zip(&w).map(|(o, w)| o * w).sum(),
            &qkv,
            1e-6,
        );
        assert_close("dqkv", &dqkv, &numeric, 1e-6, 1e-8);
    }
}
