//! The shared algorithm on the CPU: the kernel's bisection replayed on the host equals the sort,
//! and the sampler's distribution, filters and log-probs.

use super::cpu::{inverse_cdf, kept_by_sort, key, mass, sample_row, weights};
use super::*;
use crate::{Device, Rng};

/// What sampling.cu does per row, written out on the host: thresholds by bisection over the
/// 64-bit keys with integer totals (count for top-k, mass for top-p), no sort.
fn kept_by_bisection(w: &[f32], spec: SampleSpec) -> Vec<bool> {
    let v = w.len();
    let total = |floor: u64, threshold: u64, by_mass: bool| -> u64 {
        w.iter()
            .enumerate()
            .filter(|&(i, &x)| key(x, i) >= floor && key(x, i) >= threshold)
            .map(|(_, &x)| if by_mass { mass(x) } else { 1 })
            .sum()
    };
    let bisect = |floor: u64, by_mass: bool, goal: f64, mut lo: u64, mut hi: u64| -> u64 {
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if total(floor, mid, by_mass) as f64 >= goal {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    };
    let key_hi = key(1.0, 0);
    let mut floor = 0;
    if spec.top_k > 0 && spec.top_k < v {
        floor = bisect(0, false, spec.top_k as f64, 0, key_hi);
    }
    if spec.top_p < 1.0 {
        let kept = total(floor, 0, true);
        let goal = f64::from(spec.top_p) * kept as f64;
        floor = bisect(floor, true, goal, floor, key_hi);
    }
    w.iter()
        .enumerate()
        .map(|(i, &x)| key(x, i) >= floor)
        .collect()
}

fn random_row(rng: &mut Rng, v: usize, ties: bool) -> Vec<f32> {
    (0..v)
        .map(|_| {
            let x = rng.normal() * 3.0;
            if ties { (x * 2.0).round() / 2.0 } else { x }
        })
        .collect()
}

#[test]
fn bisection_over_keys_keeps_the_same_tokens_as_the_sort() {
    let mut rng = Rng::new(7);
    for case in 0..300 {
        let v = 1 + rng.below(90);
        let z = random_row(&mut rng, v, case % 2 == 0);
        let spec = SampleSpec {
            temperature: [0.5, 1.0, 1.7][case % 3],
            top_k: [0, 1, 3, v, v + 4, 1 + rng.below(v)][case % 6],
            top_p: [1.0, 0.9, 0.5, 0.01, rng.uniform().max(0.05)][case % 5],
        };
        let (_, w, _, _, _) = weights(&z, spec);
        let sorted = kept_by_sort(&w, spec);
        assert_eq!(
            kept_by_bisection(&w, spec),
            sorted,
            "case {case}: {z:?} {spec:?}"
        );
        let n_kept = sorted.iter().filter(|k| **k).count();
        assert!(n_kept >= 1);
        if spec.top_k > 0 {
            assert!(n_kept <= spec.top_k);
        }
    }
}

#[test]
fn ties_are_broken_by_the_lower_index() {
    let w = [0.5f32, 1.0, 0.5, 0.5, 1.0];
    let spec = SampleSpec {
        temperature: 1.0,
        top_k: 3,
        top_p: 1.0,
    };
    assert_eq!(kept_by_sort(&w, spec), [true, true, false, false, true]);
    assert_eq!(
        kept_by_bisection(&w, spec),
        [true, true, false, false, true]
    );
}

#[test]
fn inverse_cdf_walks_the_kept_mass_in_index_order() {
    let w = [0.25f32, 1.0, 0.5];
    let kept = [true, true, true];
    // Masses 0.25, 1, 0.5 of 1.75: [0, 1/7) -> 0, [1/7, 5/7) -> 1, [5/7, 1) -> 2.
    assert_eq!(inverse_cdf(&w, &kept, 0.0), 0);
    assert_eq!(inverse_cdf(&w, &kept, 0.142), 0);
    assert_eq!(inverse_cdf(&w, &kept, 0.143), 1);
    assert_eq!(inverse_cdf(&w, &kept, 0.714), 1);
    assert_eq!(inverse_cdf(&w, &kept, 0.715), 2);
    assert_eq!(inverse_cdf(&w, &kept, 0.999_999), 2);
    assert_eq!(inverse_cdf(&w, &[false, true, false], 0.999_999), 1);
}

#[test]
fn top_p_keeps_the_nucleus_and_frequencies_follow_the_probabilities() {
    // Probabilities ~ [0.087, 0.644, 0.237, 0.032]: p = 0.7 keeps tokens 1 and 2 only, with
    // renormalised shares 0.731 and 0.269.
    let logits = Tensor::from_vec(vec![0.0, 2.0, 1.0, -1.0], [1, 4], Device::Cpu).unwrap();
    let spec = SampleSpec {
        temperature: 1.0,
        top_k: 0,
        top_p: 0.7,
    };
    let mut rng = Rng::new(3);
    let mut seen = [0usize; 4];
    let n = 20_000;
    for _ in 0..n {
        let out = sample(&logits, spec, &[rng.uniform_f64()]).unwrap();
        seen[out.tokens[0] as usize] += 1;
    }
    assert_eq!((seen[0], seen[3]), (0, 0));
    let share = seen[1] as f64 / n as f64;
    assert!((share - 0.731).abs() < 0.015, "{seen:?}");
}

#[test]
fn log_probs_are_under_the_unfiltered_tempered_softmax() {
    let z = [1.0f32, 3.0, -2.0];
    let spec = SampleSpec {
        temperature: 2.0,
        top_k: 1,
        top_p: 1.0,
    };
    let (tok, logp) = sample_row(&z, spec, 0.3).unwrap();
    assert_eq!(tok, 1);
    let lse = (0.5f64.exp() + 1.5f64.exp() + (-1.0f64).exp()).ln();
    assert!((f64::from(logp) - (1.5 - lse)).abs() < 1e-6);
    let (tok, logp) = sample_row(&z, SampleSpec::greedy(), 0.3).unwrap();
    let lse = (1.0f64.exp() + 3.0f64.exp() + (-2.0f64).exp()).ln();
    assert_eq!(tok, 1);
    assert!((f64::from(logp) - (3.0 - lse)).abs() < 1e-6);
}

#[test]
fn bad_inputs_are_errors_naming_what_is_wrong() {
    let logits = Tensor::from_vec(vec![0.0, f32::NAN, 1.0, 2.0], [2, 2], Device::Cpu).unwrap();
    let err = sample(&logits, SampleSpec::greedy(), &[0.1, 0.2]).unwrap_err();
    assert!(err.to_string().contains("row 0"), "{err}");
    let ok = Tensor::from_vec(vec![0.0, 1.0], [1, 2], Device::Cpu).unwrap();
    assert!(
        sample(&ok, SampleSpec::greedy(), &[1.0])
            .unwrap_err()
            .to_string()
            .contains("[0, 1)")
    );
    assert!(sample(&ok, SampleSpec::greedy(), &[0.1, 0.2]).is_err());
    let bad = SampleSpec {
        top_p: 0.0,
        ..SampleSpec::greedy()
    };
    assert!(
        sample(&ok, bad, &[0.1])
            .unwrap_err()
            .to_string()
            .contains("top_p")
    );
}
