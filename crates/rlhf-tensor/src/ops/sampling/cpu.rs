//! The CPU reference of [`super::sample`]: one row at a time, the kept set from a sort by key.
//! The pieces the GPU kernel shares ([`weights`], [`mass`], [`key`]) are public so that tests
//! can replay the kernel's bisection on the host.

use super::SampleSpec;

/// Masses are weights in fixed point with 40 fractional bits.
pub const MASS_SCALE: f64 = 1_099_511_627_776.0; // 2^40

/// A weight in (0, 1] as an integer mass (exact: a weight has 24 significant bits).
pub fn mass(weight: f32) -> u64 {
    (f64::from(weight) * MASS_SCALE) as u64
}

/// The total-order key of token `index` with `weight`: descending keys are descending weights,
/// ascending indices on ties.
pub fn key(weight: f32, index: usize) -> u64 {
    (u64::from(weight.to_bits()) << 32) | u64::from(u32::MAX - index as u32)
}

/// First index of the largest value (NaN-free input).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// The row's scaled maximum `m`, its weights `exp(z / T - m)` (V) and `ln(sum w)` (f64 sum),
/// with 1 / T (T = 1 when greedy) and the argmax of z.
pub fn weights(z: &[f32], spec: SampleSpec) -> (f32, Vec<f32>, f64, f32, usize) {
    let inv_t = if spec.temperature == 0.0 {
        1.0
    } else {
        1.0 / spec.temperature
    };
    let arg = argmax(z);
    let m = z[arg] * inv_t;
    let w: Vec<f32> = z.iter().map(|&x| (x * inv_t - m).exp()).collect();
    let log_sum = w.iter().map(|&x| f64::from(x)).sum::<f64>().ln();
    (m, w, log_sum, inv_t, arg)
}

/// The kept-set flags (V) of top-k then top-p over `w`, found by sorting the keys.
pub fn kept_by_sort(w: &[f32], spec: SampleSpec) -> Vec<bool> {
    let v = w.len();
    let mut order: Vec<usize> = (0..v).collect();
    order.sort_unstable_by_key(|&i| std::cmp::Reverse(key(w[i], i)));
    let k = if spec.top_k == 0 {
        v
    } else {
        spec.top_k.min(v)
    };
    let mut len = k;
    if spec.top_p < 1.0 {
        let total: u64 = order[..k].iter().map(|&i| mass(w[i])).sum();
        let goal = f64::from(spec.top_p) * total as f64;
        let mut running = 0u64;
        for (rank, &i) in order[..k].iter().enumerate() {
            running += mass(w[i]);
            if running as f64 >= goal {
                len = rank + 1;
                break;
            }
        }
    }
    let mut kept = vec![false; v];
    for &i in &order[..len] {
        kept[i] = true;
    }
    kept
}

/// The first index, in index order, whose running kept mass exceeds `floor(u * kept mass)`.
pub fn inverse_cdf(w: &[f32], kept: &[bool], u: f64) -> usize {
    let total: u64 = w
        .iter()
        .zip(kept)
        .filter(|(_, k)| **k)
        .map(|(&x, _)| mass(x))
        .sum();
    let target = (u * total as f64).floor() as u64;
    let mut running = 0u64;
    let mut last = 0;
    for (i, (&x, &k)) in w.iter().zip(kept).enumerate() {
        if k {
            running += mass(x);
            last = i;
            if running > target {
                return i;
            }
        }
    }
    last // unreachable for u < 1: target < total
}

/// One row: the token and its log-prob, or `None` when the row holds NaN.
pub fn sample_row(z: &[f32], spec: SampleSpec, u: f64) -> Option<(usize, f32)> {
    if z.is_empty() || z.iter().any(|x| x.is_nan()) {
        return None;
    }
    let (m, w, log_sum, inv_t, arg) = weights(z, spec);
    let token = if spec.temperature == 0.0 {
        arg
    } else {
        inverse_cdf(&w, &kept_by_sort(&w, spec), u)
    };
    let logp = (f64::from(z[token] * inv_t - m) - log_sum) as f32;
    Some((token, logp))
}
