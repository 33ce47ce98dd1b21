//! Helpers for checking gradients and kernels, public so that downstream crates (the transformer,
//! the losses) check their backward passes the same way.

/// Central finite differences of a scalar function at `x`: (f(x + h e_i) - f(x - h e_i)) / 2h.
pub fn numerical_gradient(mut f: impl FnMut(&[f64]) -> f64, x: &[f64], h: f64) -> Vec<f64> {
    let mut probe = x.to_vec();
    (0..x.len())
        .map(|i| {
            let original = probe[i];
            probe[i] = original + h;
            let up = f(&probe);
            probe[i] = original - h;
            let down = f(&probe);
            probe[i] = original;
            (up - down) / (2.0 * h)
        })
        .collect()
}

/// The largest violation of |a - e| <= atol + rtol |e| over the elements, as (index, a, e), or
/// `None` when every element is within tolerance (and the lengths agree).
pub fn first_mismatch(
    actual: &[f64],
    expected: &[f64],
    rtol: f64,
    atol: f64,
) -> Option<(usize, f64, f64)> {
    if actual.len() != expected.len() {
        return Some((actual.len().min(expected.len()), f64::NAN, f64::NAN));
    }
    actual
        .iter()
        .zip(expected)
        .enumerate()
        .find(|(_, (a, e))| {
            // NaN on either side compares as None: a mismatch.
            let tolerance = atol + rtol * e.abs();
            matches!(
                (*a - *e).abs().partial_cmp(&tolerance),
                None | Some(std::cmp::Ordering::Greater)
            )
        })
        .map(|(i, (a, e))| (i, *a, *e))
}

/// Panics with a readable message when `actual` and `expected` differ beyond tolerance.
#[track_caller]
pub fn assert_close(what: &str, actual: &[f64], expected: &[f64], rtol: f64, atol: f64) {
    if let Some((i, a, e)) = first_mismatch(actual, expected, rtol, atol) {
        panic!(
            "{what}: element {i} is {a}, expected {e} (rtol {rtol}, atol {atol}; lengths {} and {})",
            actual.len(),
            expected.len()
        );
    }
}

/// Widens f32 values to f64.
pub fn to_f64(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&v| v as f64).collect()
}

/// Deterministic pseudo-random values in [-1, 1) from a seed, in f64 (for test inputs).
pub fn random_values(seed: u64, n: usize) -> Vec<f64> {
    let mut rng = crate::Rng::new(seed);
    (0..n).map(|_| 2.0 * rng.uniform_f64() - 1.0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerical_gradient_of_a_cubic() {
        let x = [0.5, -2.0];
        let grad = numerical_gradient(|v| v[0].powi(3) + 3.0 * v[0] * v[1], &x, 1e-5);
        assert_close("cubic", &grad, &[3.0 * 0.25 + 3.0 * -2.0, 1.5], 1e-8, 1e-8);
        assert!(first_mismatch(&[1.0], &[1.1], 1e-3, 0.0).is_some());
        assert!(first_mismatch(&[f64::NAN], &[1.0], 1.0, 1.0).is_some());
    }
}
