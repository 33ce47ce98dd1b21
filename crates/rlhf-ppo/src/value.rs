//! The clipped value loss of PPO per token, masked mean over the batch, with its gradient with
//! respect to the new value predictions.
//!
//! V_clip = clip(V, V_old - eps_v, V_old + eps_v); per token l = max((V - R)², (V_clip - R)²);
//! loss = 0.5 * sum(l * mask) / sum(mask). Where the clipped term is strictly larger, V lies
//! outside the clip range and the token passes no gradient; elsewhere dl/dV = (V - R) / n.

use rlhf_tensor::Float;

use crate::{Result, check};

/// The value loss, its gradient and the clip fraction TRL logs.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueLoss<T> {
    /// 0.5 * masked mean of the clipped squared error (`loss/value_avg`).
    pub loss: T,
    /// d loss / d values. (B, T)
    pub grad_values: Vec<T>,
    /// Share of kept tokens where the clipped term won (`val/clipfrac_avg`).
    pub clipfrac: T,
}

/// The clipped value loss from new `values` (B, T), the rollout's `old_values` (B, T), the
/// `returns` (B, T) and the mask (B, T), with clip range `cliprange_value` (> 0).
///
/// ```
/// use rlhf_ppo::value_loss;
/// // V = 1 moved 0.5 from V_old = 0.5; clipped to 0.7. R = 0: max(1, 0.49) = 1 -> 0.5.
/// let out = value_loss(&[1.0f64], &[0.5], &[0.0], &[1.0], 0.2)?;
/// assert_eq!((out.loss, out.grad_values[0], out.clipfrac), (0.5, 1.0, 0.0));
/// # Ok::<(), rlhf_ppo::PpoError>(())
/// ```
pub fn value_loss<T: Float>(
    values: &[T],
    old_values: &[T],
    returns: &[T],
    mask: &[T],
    cliprange_value: f64,
) -> Result<ValueLoss<T>> {
    let op = "value_loss";
    check::len(op, "old_values", old_values.len(), values.len())?;
    check::len(op, "returns", returns.len(), values.len())?;
    check::len(op, "mask", mask.len(), values.len())?;
    check::range(
        op,
        "cliprange_value",
        cliprange_value,
        cliprange_value > 0.0,
        "positive",
    )?;
    let kept = check::mask_keeping(op, "mask", mask, 1)?;
    let inv_count = T::one() / T::c(kept as f64);
    let eps = T::c(cliprange_value);
    let mut grad_values = vec![T::zero(); values.len()];
    let (mut loss, mut clipped) = (T::zero(), T::zero());
    for i in 0..values.len() {
        if mask[i] == T::zero() {
            continue;
        }
        let error = values[i] - returns[i];
        let clipped_value = values[i].max(old_values[i] - eps).min(old_values[i] + eps);
        let clipped_error = clipped_value - returns[i];
        if clipped_error * clipped_error > error * error {
            loss = loss + clipped_error * clipped_error;
            clipped = clipped + T::one();
        } else {
            loss = loss + error * error;
            grad_values[i] = error * inv_count;
        }
    }
    Ok(ValueLoss {
        loss: T::c(0.5) * loss * inv_count,
        grad_values,
        clipfrac: clipped * inv_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::mask_from;
    use proptest::prelude::*;
    use rlhf_tensor::testing::{assert_close, numerical_gradient};

    #[test]
    fn value_loss_by_hand() {
        // eps_v = 0.2, three kept tokens and one masked.
        // 1) V 1.0, V_old 0.9, R 0.5: inside the range, (0.5)² = 0.25, grad 0.5 / 3.
        // 2) V 2.0, V_old 1.0 -> clip 1.2, R 3.0: (−1)² = 1 vs (−1.8)² = 3.24 -> clipped, grad 0.
        // 3) V 2.0, V_old 1.0 -> clip 1.2, R 0.0: 4 vs 1.44 -> unclipped, grad 2 / 3.
        // loss = 0.5 * (0.25 + 3.24 + 4) / 3 = 0.5 * 7.49 / 3; clipfrac 1/3.
        let values = [1.0, 2.0, 2.0, 50.0];
        let old = [0.9, 1.0, 1.0, 0.0];
        let returns = [0.5, 3.0, 0.0, 0.0];
        let mask = [1.0, 1.0, 1.0, 0.0];
        let out = value_loss(&values, &old, &returns, &mask, 0.2).unwrap();
        assert_close("loss", &[out.loss], &[0.5 * 7.49 / 3.0], 1e-12, 0.0);
        assert_close(
            "grad",
            &out.grad_values,
            &[0.5 / 3.0, 0.0, 2.0 / 3.0, 0.0],
            1e-12,
            1e-15,
        );
        assert_close("clipfrac", &[out.clipfrac], &[1.0 / 3.0], 1e-15, 0.0);
        assert!(value_loss(&values, &old, &returns, &mask, -1.0).is_err());
    }

    proptest! {
        #[test]
        fn value_gradient_matches_finite_differences(
            tokens in prop::collection::vec((-1.0f64..1.0, -2.0f64..2.0, -2.0f64..2.0, prop::bool::weighted(0.8)), 1..40),
            eps in 0.05f64..0.5,
        ) {
            let old: Vec<f64> = tokens.iter().map(|t| t.1).collect();
            let returns: Vec<f64> = tokens.iter().map(|t| t.2).collect();
            let mask = mask_from(tokens.iter().map(|t| t.3));
            prop_assume!(mask.contains(&1.0));
            // Keep V - V_old off ±eps, and V off the point where both squared errors are equal
            // (V_clip - R = R - V), so finite differences are valid.
            let values: Vec<f64> = tokens.iter().map(|t| t.1 + t.0).collect();
            prop_assume!(tokens.iter().zip(&values).all(|(t, v)| {
                let clip = v.clamp(t.1 - eps, t.1 + eps);
                (t.0.abs() - eps).abs() > 1e-4 && (v - (2.0 * t.2 - clip)).abs() > 1e-4
            }));
            let out = value_loss(&values, &old, &returns, &mask, eps).unwrap();
            let numeric = numerical_gradient(
                |x| value_loss(x, &old, &returns, &mask, eps).unwrap().loss,
                &values,
                1e-6,
            );
            assert_close("value grad", &out.grad_values, &numeric, 1e-5, 1e-7);
        }
    }
}
