//! Masked statistics and whitening over (B, T) response tensors, flattened row-major.
//!
//! Conventions (those of TRL and the "N+ implementation details" recipe):
//! - [`whiten`] uses the population variance (lm-human-preferences' `tf.nn.moments`);
//! - [`masked_var`] applies Bessel's correction `n / (n - 1)` when `unbiased` is true, and
//!   [`masked_whiten`] uses the unbiased variance, as TRL's `masked_whiten` does through
//!   `masked_var(..., unbiased=True)`; it therefore needs at least two kept elements;
//! - whitening is `(x - mean) / sqrt(var + 1e-8)`, and the mean is added back when `shift_mean`
//!   is false (used for `whiten_rewards`, which must keep the rewards' sign);
//! - masked positions of a whitened output are 0 (TRL fills them with 0 right after).

use rlhf_tensor::Float;

use crate::{Result, check};

/// The variance floor inside the square root of every whitening: 1e-8.
pub const WHITEN_EPS: f64 = 1e-8;

/// sum(x * mask) / sum(mask) over all B*T elements; an error when the mask keeps nothing.
pub fn masked_mean<T: Float>(x: &[T], mask: &[T]) -> Result<T> {
    let op = "masked_mean";
    check::len(op, "mask", mask.len(), x.len())?;
    let kept = check::mask_keeping(op, "mask", mask, 1)?;
    Ok(masked_sum(x, mask) / T::c(kept as f64))
}

/// The masked variance around the masked mean; with `unbiased`, times n / (n - 1) (Bessel's
/// correction, TRL's default), which needs two kept elements.
pub fn masked_var<T: Float>(x: &[T], mask: &[T], unbiased: bool) -> Result<T> {
    let op = "masked_var";
    check::len(op, "mask", mask.len(), x.len())?;
    let kept = check::mask_keeping(op, "mask", mask, if unbiased { 2 } else { 1 })?;
    Ok(variance_of_kept(x, mask, kept, unbiased).1)
}

/// (x - mean) / sqrt(var + 1e-8) over all elements with the population variance; the mean is
/// added back when `shift_mean` is false. An error for an empty input.
///
/// ```
/// use rlhf_ppo::whiten;
/// // mean 2, population variance 2/3: (x - 2) / sqrt(2/3 + 1e-8).
/// let w = whiten(&[1.0f64, 2.0, 3.0], true)?;
/// assert!((w[2] - 1.0 / (2.0f64 / 3.0 + 1e-8).sqrt()).abs() < 1e-12);
/// # Ok::<(), rlhf_ppo::PpoError>(())
/// ```
pub fn whiten<T: Float>(x: &[T], shift_mean: bool) -> Result<Vec<T>> {
    let ones = vec![T::one(); x.len()];
    check::mask_keeping("whiten", "x", &ones, 1)?;
    Ok(whiten_kept(x, &ones, x.len(), false, shift_mean))
}

/// [`whiten`] over the kept positions with TRL's unbiased masked variance; masked positions
/// of the result are 0. Needs two kept elements.
pub fn masked_whiten<T: Float>(x: &[T], mask: &[T], shift_mean: bool) -> Result<Vec<T>> {
    let op = "masked_whiten";
    check::len(op, "mask", mask.len(), x.len())?;
    let kept = check::mask_keeping(op, "mask", mask, 2)?;
    Ok(whiten_kept(x, mask, kept, true, shift_mean))
}

/// The explained variance 1 - Var(R - V) / Var(R) over the kept positions (the metric
/// `val/var_explained`), or `None` when the returns do not vary. Population variances; Bessel's
/// correction would cancel in the ratio.
pub fn explained_variance<T: Float>(returns: &[T], values: &[T], mask: &[T]) -> Result<Option<T>> {
    let op = "explained_variance";
    check::len(op, "values", values.len(), returns.len())?;
    check::len(op, "mask", mask.len(), returns.len())?;
    let kept = check::mask_keeping(op, "mask", mask, 1)?;
    let (_, var_returns) = variance_of_kept(returns, mask, kept, false);
    if var_returns <= T::zero() {
        return Ok(None);
    }
    let residual: Vec<T> = returns.iter().zip(values).map(|(&r, &v)| r - v).collect();
    let (_, var_residual) = variance_of_kept(&residual, mask, kept, false);
    Ok(Some(T::one() - var_residual / var_returns))
}

/// sum(x * mask), skipping masked elements entirely (so a masked NaN or inf does not leak).
pub(crate) fn masked_sum<T: Float>(x: &[T], mask: &[T]) -> T {
    x.iter()
        .zip(mask)
        .filter(|(_, m)| **m != T::zero())
        .map(|(&v, _)| v)
        .sum()
}

/// (mean, variance) of the kept elements; `kept` >= 1 (>= 2 when `unbiased`) is the caller's
/// checked count.
fn variance_of_kept<T: Float>(x: &[T], mask: &[T], kept: usize, unbiased: bool) -> (T, T) {
    let n = T::c(kept as f64);
    let mean = masked_sum(x, mask) / n;
    let squares: T = x
        .iter()
        .zip(mask)
        .filter(|(_, m)| **m != T::zero())
        .map(|(&v, _)| (v - mean) * (v - mean))
        .sum();
    let population = squares / n;
    let variance = if unbiased {
        population * n / (n - T::one())
    } else {
        population
    };
    (mean, variance)
}

fn whiten_kept<T: Float>(
    x: &[T],
    mask: &[T],
    kept: usize,
    unbiased: bool,
    shift_mean: bool,
) -> Vec<T> {
    let (mean, variance) = variance_of_kept(x, mask, kept, unbiased);
    let inv_std = T::one() / (variance + T::c(WHITEN_EPS)).sqrt();
    let offset = if shift_mean { T::zero() } else { mean };
    x.iter()
        .zip(mask)
        .map(|(&v, &m)| {
            if m == T::zero() {
                T::zero()
            } else {
                (v - mean) * inv_std + offset
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rlhf_tensor::testing::assert_close;

    #[test]
    fn masked_mean_and_variances_by_hand() {
        // Kept: 1, 3, 8 (the 100 is masked). mean = 12 / 3 = 4.
        // Squared deviations: 9, 1, 16 -> 26. Population 26/3; unbiased 26/2 = 13.
        let x = [1.0, 100.0, 3.0, 8.0];
        let m = [1.0, 0.0, 1.0, 1.0];
        assert_eq!(masked_mean(&x, &m).unwrap(), 4.0);
        assert_close(
            "pop",
            &[masked_var(&x, &m, false).unwrap()],
            &[26.0 / 3.0],
            1e-15,
            0.0,
        );
        assert_eq!(masked_var(&x, &m, true).unwrap(), 13.0);
    }

    #[test]
    fn whiten_by_hand() {
        // x = [1, 2, 3, 6]: mean 3, deviations -2, -1, 0, 3, squares 4+1+0+9 = 14,
        // population variance 14/4 = 3.5, std = sqrt(3.5 + 1e-8).
        let x = [1.0, 2.0, 3.0, 6.0];
        let s = (3.5f64 + 1e-8).sqrt();
        let shifted = whiten(&x, true).unwrap();
        assert_close(
            "shift",
            &shifted,
            &[-2.0 / s, -1.0 / s, 0.0, 3.0 / s],
            1e-14,
            0.0,
        );
        // shift_mean = false adds the mean (3) back.
        let kept_mean = whiten(&x, false).unwrap();
        assert_close(
            "no shift",
            &kept_mean,
            &[3.0 - 2.0 / s, 3.0 - 1.0 / s, 3.0, 3.0 + 3.0 / s],
            1e-14,
            0.0,
        );
    }

    #[test]
    fn masked_whiten_uses_bessel_and_zeroes_masked() {
        // Kept 1, 3, 8: mean 4, unbiased variance 13 (see above), std sqrt(13 + 1e-8).
        let x = [1.0, 100.0, 3.0, 8.0];
        let m = [1.0, 0.0, 1.0, 1.0];
        let s = (13.0f64 + 1e-8).sqrt();
        let w = masked_whiten(&x, &m, true).unwrap();
        assert_close(
            "masked",
            &w,
            &[-3.0 / s, 0.0, -1.0 / s, 4.0 / s],
            1e-14,
            0.0,
        );
        let w = masked_whiten(&x, &m, false).unwrap();
        assert_close(
            "masked, mean kept",
            &w,
            &[4.0 - 3.0 / s, 0.0, 4.0 - 1.0 / s, 4.0 + 4.0 / s],
            1e-14,
            0.0,
        );
    }

    #[test]
    fn explained_variance_by_hand() {
        // R = [1, 2, 3, (9 masked)], V = [1, 1, 4, 0]. Var(R) = 2/3 (mean 2).
        // R - V = [0, 1, -1]: mean 0, population variance 2/3 -> 1 - 1 = 0.
        let r = [1.0, 2.0, 3.0, 9.0];
        let m = [1.0, 1.0, 1.0, 0.0];
        assert_close(
            "ev0",
            &[explained_variance(&r, &[1.0, 1.0, 4.0, 0.0], &m)
                .unwrap()
                .unwrap()],
            &[0.0],
            0.0,
            1e-15,
        );
        // V = R on the kept positions: 1 - 0 = 1.
        assert_eq!(
            explained_variance(&r, &[1.0, 2.0, 3.0, -5.0], &m).unwrap(),
            Some(1.0)
        );
        // V = [0, 0, 0]: residual = R, 1 - 1 = 0; V = [2, 2, 2]: residual -1,0,1 -> 0 too.
        // V = [0, 2, 4]: residual [1, 0, -1], variance 2/3 -> 0; V = [1.5,2,2.5]: residual
        // [-0.5, 0, 0.5], variance 1/6 -> 1 - (1/6)/(2/3) = 0.75.
        assert_close(
            "ev.75",
            &[explained_variance(&r, &[1.5, 2.0, 2.5, 0.0], &m)
                .unwrap()
                .unwrap()],
            &[0.75],
            1e-15,
            0.0,
        );
        // Constant returns: undefined.
        assert_eq!(
            explained_variance(&[2.0, 2.0], &[0.0, 1.0], &[1.0, 1.0]).unwrap(),
            None
        );
    }

    #[test]
    fn undefined_inputs_are_errors() {
        assert!(masked_mean(&[1.0f64], &[0.0]).is_err());
        assert!(masked_mean(&[1.0f64], &[0.5]).is_err());
        assert!(masked_mean(&[1.0f64, 2.0], &[1.0]).is_err());
        assert!(masked_var(&[1.0f64, 2.0], &[1.0, 0.0], true).is_err());
        assert_eq!(masked_var(&[1.0f64, 2.0], &[1.0, 0.0], false).unwrap(), 0.0);
        assert!(masked_whiten(&[1.0f64, 2.0], &[0.0, 1.0], true).is_err());
        assert!(whiten::<f64>(&[], true).is_err());
        let message = masked_whiten(&[1.0f64, 2.0], &[1.0, 2.0], true)
            .unwrap_err()
            .to_string();
        assert!(message.contains("element 1 is 2"), "{message}");
    }

    proptest! {
        #[test]
        fn masked_whiten_has_zero_mean_and_unit_unbiased_variance(
            pairs in prop::collection::vec((-50.0f64..50.0, prop::bool::weighted(0.7)), 3..60)
        ) {
            let x: Vec<f64> = pairs.iter().map(|p| p.0).collect();
            let m: Vec<f64> = pairs.iter().map(|p| if p.1 { 1.0 } else { 0.0 }).collect();
            prop_assume!(m.iter().sum::<f64>() >= 2.0);
            let var = masked_var(&x, &m, true).unwrap();
            prop_assume!(var > 1e-3);
            let w = masked_whiten(&x, &m, true).unwrap();
            prop_assert!(masked_mean(&w, &m).unwrap().abs() < 1e-9);
            prop_assert!((masked_var(&w, &m, true).unwrap() - var / (var + 1e-8)).abs() < 1e-9);
            let kept_mean = masked_whiten(&x, &m, false).unwrap();
            let mean = masked_mean(&x, &m).unwrap();
            prop_assert!((masked_mean(&kept_mean, &m).unwrap() - mean).abs() < 1e-9);
            for (wi, mi) in w.iter().zip(&m) {
                prop_assert!(*mi == 1.0 || *wi == 0.0);
            }
        }
    }
}
