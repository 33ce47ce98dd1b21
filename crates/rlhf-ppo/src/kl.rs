//! Per-token KL estimators between the policy and the frozen reference, from the log-probs of
//! the sampled tokens (Schulman, "Approximating KL divergence"): with d = logp - ref_logp,
//! - k1 = d (unbiased, can be negative; TRL's default `kl_estimator="k1"`),
//! - k2 = d² / 2 (biased, always >= 0),
//! - k3 = (r - 1) - log r with r = exp(ref_logp - logp) = exp(-d) (unbiased, always >= 0).
//!
//! The optional clamp bounds the log-ratio d to [-c, c] before the estimator (OpenRLHF's guard
//! against a few extreme tokens); the gradient is 0 where the clamp binds.

use rlhf_tensor::Float;
use serde::{Deserialize, Serialize};

use crate::{Result, check};

/// Which per-token KL estimator to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KlEstimator {
    /// logp - ref_logp.
    #[default]
    K1,
    /// (logp - ref_logp)² / 2.
    K2,
    /// (r - 1) - log r, r = exp(ref_logp - logp).
    K3,
}

impl KlEstimator {
    /// The estimate at one token from the log-ratio d = logp - ref_logp.
    pub fn value<T: Float>(self, d: T) -> T {
        match self {
            KlEstimator::K1 => d,
            KlEstimator::K2 => T::c(0.5) * d * d,
            // r = exp(-d): (r - 1) - log r = exp(-d) - 1 + d.
            KlEstimator::K3 => (-d).exp_m1() + d,
        }
    }

    /// d(estimate)/d(logp) at one token from the log-ratio d.
    pub fn derivative<T: Float>(self, d: T) -> T {
        match self {
            KlEstimator::K1 => T::one(),
            KlEstimator::K2 => d,
            KlEstimator::K3 => -(-d).exp_m1(),
        }
    }
}

/// How to estimate the per-token KL: the estimator and an optional clamp of the log-ratio.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct KlSpec {
    /// The estimator.
    pub estimator: KlEstimator,
    /// When set, the log-ratio is clamped to [-clamp, clamp] (must be > 0).
    pub clamp: Option<f64>,
}

/// Per-token KL (B, T) between policy log-probs `logp` (B, T) and reference log-probs
/// `ref_logp` (B, T); 0 at masked positions.
///
/// ```
/// use rlhf_ppo::{KlEstimator, KlSpec, per_token_kl};
/// let spec = KlSpec { estimator: KlEstimator::K2, clamp: None };
/// let kl = per_token_kl(&[-1.0f64, -2.0], &[-1.5, -0.0], &[1.0, 0.0], spec)?;
/// assert_eq!(kl, vec![0.125, 0.0]); // 0.5 * 0.5²; the second token is masked
/// # Ok::<(), rlhf_ppo::PpoError>(())
/// ```
pub fn per_token_kl<T: Float>(
    logp: &[T],
    ref_logp: &[T],
    mask: &[T],
    spec: KlSpec,
) -> Result<Vec<T>> {
    let clamp = checked_clamp::<T>("per_token_kl", logp, ref_logp, mask, spec)?;
    Ok(logp
        .iter()
        .zip(ref_logp)
        .zip(mask)
        .map(|((&lp, &rp), &m)| {
            if m == T::zero() {
                T::zero()
            } else {
                spec.estimator.value(clamped(lp - rp, clamp).0)
            }
        })
        .collect())
}

/// Gradient of sum(per_token_kl) with respect to `logp` (B, T), scaled by `dout` per token
/// (B, T): the term a KL-in-the-loss variant back-propagates.
pub fn per_token_kl_backward<T: Float>(
    dout: &[T],
    logp: &[T],
    ref_logp: &[T],
    mask: &[T],
    spec: KlSpec,
) -> Result<Vec<T>> {
    let op = "per_token_kl_backward";
    let clamp = checked_clamp::<T>(op, logp, ref_logp, mask, spec)?;
    check::len(op, "dout", dout.len(), logp.len())?;
    Ok(logp
        .iter()
        .zip(ref_logp)
        .zip(mask.iter().zip(dout))
        .map(|((&lp, &rp), (&m, &g))| {
            let (d, inside) = clamped(lp - rp, clamp);
            if m == T::zero() || !inside {
                T::zero()
            } else {
                g * spec.estimator.derivative(d)
            }
        })
        .collect())
}

fn checked_clamp<T: Float>(
    op: &'static str,
    logp: &[T],
    ref_logp: &[T],
    mask: &[T],
    spec: KlSpec,
) -> Result<Option<T>> {
    check::len(op, "ref_logp", ref_logp.len(), logp.len())?;
    check::len(op, "mask", mask.len(), logp.len())?;
    check::mask(op, "mask", mask)?;
    if let Some(c) = spec.clamp {
        check::range(
            op,
            "clamp",
            c,
            c > 0.0,
            "a positive bound on |logp - ref_logp|",
        )?;
    }
    Ok(spec.clamp.map(T::c))
}

/// The log-ratio clamped to [-c, c], and whether it was inside (the gradient passes).
fn clamped<T: Float>(d: T, clamp: Option<T>) -> (T, bool) {
    match clamp {
        Some(c) if d > c => (c, false),
        Some(c) if d < -c => (-c, false),
        _ => (d, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rlhf_tensor::testing::{assert_close, numerical_gradient};

    fn spec(estimator: KlEstimator, clamp: Option<f64>) -> KlSpec {
        KlSpec { estimator, clamp }
    }

    #[test]
    fn estimators_by_hand() {
        // logp = -1, ref = -1.5: d = 0.5.
        // k1 = 0.5; k2 = 0.5 * 0.25 = 0.125; k3: r = exp(-0.5) = 0.6065306597126334,
        // (r - 1) - ln r = -0.3934693402873666 + 0.5 = 0.1065306597126334.
        // logp = -2, ref = -1: d = -1. k1 = -1; k2 = 0.5; k3 = (e - 1) - 1 = 0.718281828459045.
        let logp = [-1.0, -2.0, -3.0];
        let reference = [-1.5, -1.0, 7.0];
        let mask = [1.0, 1.0, 0.0];
        let k1 = per_token_kl(&logp, &reference, &mask, spec(KlEstimator::K1, None)).unwrap();
        assert_close("k1", &k1, &[0.5, -1.0, 0.0], 1e-15, 0.0);
        let k2 = per_token_kl(&logp, &reference, &mask, spec(KlEstimator::K2, None)).unwrap();
        assert_close("k2", &k2, &[0.125, 0.5, 0.0], 1e-15, 0.0);
        let k3 = per_token_kl(&logp, &reference, &mask, spec(KlEstimator::K3, None)).unwrap();
        assert_close(
            "k3",
            &k3,
            &[0.1065306597126334, 0.718281828459045, 0.0],
            1e-14,
            0.0,
        );
        // Clamp 0.75: d = -1 becomes -0.75; k1 = -0.75, k2 = 0.28125.
        let k2c =
            per_token_kl(&logp, &reference, &mask, spec(KlEstimator::K2, Some(0.75))).unwrap();
        assert_close("k2 clamped", &k2c, &[0.125, 0.28125, 0.0], 1e-15, 0.0);
        // Gradients w.r.t. logp at d = 0.5: k1 1, k2 0.5, k3 1 - exp(-0.5) = 0.3934693402873666;
        // the clamped token passes no gradient.
        let ones = [1.0; 3];
        let g3 = per_token_kl_backward(
            &ones,
            &logp,
            &reference,
            &mask,
            spec(KlEstimator::K3, Some(0.75)),
        )
        .unwrap();
        assert_close("k3 grad", &g3, &[0.3934693402873666, 0.0, 0.0], 1e-14, 0.0);
        assert!(per_token_kl(&logp, &reference, &mask, spec(KlEstimator::K1, Some(0.0))).is_err());
    }

    #[test]
    fn estimator_names_serialise_like_trl() {
        assert_eq!(serde_json::to_string(&KlEstimator::K3).unwrap(), "\"k3\"");
    }

    proptest! {
        #[test]
        fn kl_gradients_match_finite_differences(
            rows in prop::collection::vec((-3.0f64..3.0, -3.0f64..3.0, -1.0f64..1.0, prop::bool::weighted(0.8)), 1..24),
            which in 0usize..3,
            clamp in prop::option::of(0.5f64..2.0),
        ) {
            let estimator = [KlEstimator::K1, KlEstimator::K2, KlEstimator::K3][which];
            let spec = spec(estimator, clamp);
            let logp: Vec<f64> = rows.iter().map(|r| r.0).collect();
            let reference: Vec<f64> = rows.iter().map(|r| r.1).collect();
            let dout: Vec<f64> = rows.iter().map(|r| r.2).collect();
            let mask: Vec<f64> = rows.iter().map(|r| if r.3 { 1.0 } else { 0.0 }).collect();
            if let Some(c) = clamp {
                // Keep finite differences off the clamp's kinks.
                prop_assume!(logp.iter().zip(&reference).all(|(a, b)| ((a - b).abs() - c).abs() > 1e-4));
            }
            let k3_nonneg = per_token_kl(&logp, &reference, &mask, KlSpec { estimator: KlEstimator::K3, clamp: None }).unwrap();
            prop_assert!(k3_nonneg.iter().all(|k| *k >= 0.0));
            let analytic = per_token_kl_backward(&dout, &logp, &reference, &mask, spec).unwrap();
            let numeric = numerical_gradient(
                |x| per_token_kl(x, &reference, &mask, spec).unwrap().iter().zip(&dout).map(|(k, g)| k * g).sum(),
                &logp,
                1e-6,
            );
            assert_close("kl grad", &analytic, &numeric, 1e-6, 1e-6);
        }
    }
}
