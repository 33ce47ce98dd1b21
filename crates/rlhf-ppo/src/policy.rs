//! The clipped surrogate policy loss of PPO (Schulman et al. 2017) per token, masked mean over
//! the batch, with its gradient with respect to the new log-probs.
//!
//! rho = exp(logp - old_logp); per token l = max(-A rho, -A clip(rho, 1 - eps, 1 + eps));
//! loss = sum(l * mask) / sum(mask). Where the clipped term is strictly larger, rho lies outside
//! the clip range and the token passes no gradient; elsewhere dl/dlogp = -A rho.

use rlhf_tensor::Float;

use crate::{Result, check};

/// The policy loss, its gradient and the statistics TRL logs for it.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyLoss<T> {
    /// The masked mean of the clipped surrogate (`loss/policy_avg`).
    pub loss: T,
    /// d loss / d logp. (B, T)
    pub grad_logp: Vec<T>,
    /// Share of kept tokens where the clipped term won (`policy/clipfrac_avg`).
    pub clipfrac: T,
    /// 0.5 * masked mean of (logp - old_logp)² (`policy/approxkl_avg`).
    pub approxkl: T,
    /// Masked mean of rho (`val/ratio`).
    pub ratio_mean: T,
}

/// The clipped policy loss from new log-probs `logp` (B, T), the rollout's `old_logp` (B, T),
/// `advantages` (B, T, whitened) and the mask (B, T), with clip range `cliprange` (> 0).
///
/// ```
/// use rlhf_ppo::policy_loss;
/// // rho = e^0.5 = 1.65 > 1.2 with A = 1: the clipped term -1.2 wins and no gradient flows.
/// let out = policy_loss(&[0.5f64], &[0.0], &[1.0], &[1.0], 0.2)?;
/// assert!((out.loss + 1.2).abs() < 1e-12);
/// assert_eq!((out.grad_logp[0], out.clipfrac), (0.0, 1.0));
/// # Ok::<(), rlhf_ppo::PpoError>(())
/// ```
pub fn policy_loss<T: Float>(
    logp: &[T],
    old_logp: &[T],
    advantages: &[T],
    mask: &[T],
    cliprange: f64,
) -> Result<PolicyLoss<T>> {
    let op = "policy_loss";
    check::len(op, "old_logp", old_logp.len(), logp.len())?;
    check::len(op, "advantages", advantages.len(), logp.len())?;
    check::len(op, "mask", mask.len(), logp.len())?;
    check::range(
        op,
        "cliprange",
        cliprange,
        cliprange > 0.0 && cliprange < 1.0,
        "in (0, 1)",
    )?;
    let kept = check::mask_keeping(op, "mask", mask, 1)?;
    let inv_count = T::one() / T::c(kept as f64);
    let (low, high) = (T::c(1.0 - cliprange), T::c(1.0 + cliprange));
    let mut grad_logp = vec![T::zero(); logp.len()];
    let (mut loss, mut clipped, mut squares, mut ratios) =
        (T::zero(), T::zero(), T::zero(), T::zero());
    for i in 0..logp.len() {
        if mask[i] == T::zero() {
            continue;
        }
        let log_ratio = logp[i] - old_logp[i];
        let ratio = log_ratio.exp();
        let unclipped_term = -advantages[i] * ratio;
        let clipped_term = -advantages[i] * ratio.max(low).min(high);
        if clipped_term > unclipped_term {
            loss = loss + clipped_term;
            clipped = clipped + T::one();
        } else {
            loss = loss + unclipped_term;
            grad_logp[i] = unclipped_term * inv_count;
        }
        squares = squares + log_ratio * log_ratio;
        ratios = ratios + ratio;
    }
    Ok(PolicyLoss {
        loss: loss * inv_count,
        grad_logp,
        clipfrac: clipped * inv_count,
        approxkl: T::c(0.5) * squares * inv_count,
        ratio_mean: ratios * inv_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::mask_from;
    use proptest::prelude::*;
    use rlhf_tensor::testing::{assert_close, numerical_gradient};

    #[test]
    fn policy_loss_by_hand() {
        // eps = 0.2. Four kept tokens and one masked; d = logp - old.
        // 1) d = ln 1.1, A = 2: rho 1.1 inside: l = -2.2, grad = -2.2 / 4 = -0.55.
        // 2) d = ln 1.5, A = 1: -1.5 vs -1.2 -> -1.2 wins (clipped), grad 0.
        // 3) d = ln 1.5, A = -1: 1.5 vs 1.2 -> 1.5 (unclipped), grad = 1.5 / 4 = 0.375.
        // 4) d = ln 0.5, A = -1: 0.5 vs 0.8 -> 0.8 (clipped), grad 0.
        // loss = (-2.2 - 1.2 + 1.5 + 0.8) / 4 = -1.1 / 4 = -0.275; clipfrac 2/4 = 0.5.
        // approxkl = 0.5 * (ln²1.1 + 2 ln²1.5 + ln²0.5) / 4
        //          = 0.5 * (0.009084 + 2*0.164402 + 0.480453) / 4 (see the exact sum below).
        // ratio mean = (1.1 + 1.5 + 1.5 + 0.5) / 4 = 1.15.
        let d = [1.1f64.ln(), 1.5f64.ln(), 1.5f64.ln(), 0.5f64.ln(), 3.0];
        let old = [-1.0, -2.0, -0.5, -3.0, -1.0];
        let logp: Vec<f64> = d.iter().zip(&old).map(|(d, o)| o + d).collect();
        let advantages = [2.0, 1.0, -1.0, -1.0, 5.0];
        let mask = [1.0, 1.0, 1.0, 1.0, 0.0];
        let out = policy_loss(&logp, &old, &advantages, &mask, 0.2).unwrap();
        assert_close("loss", &[out.loss], &[-0.275], 1e-12, 0.0);
        assert_close(
            "grad",
            &out.grad_logp,
            &[-0.55, 0.0, 0.375, 0.0, 0.0],
            1e-12,
            1e-15,
        );
        assert_eq!(out.clipfrac, 0.5);
        let squares: f64 = d[..4].iter().map(|x| x * x).sum();
        assert_close(
            "approxkl",
            &[out.approxkl],
            &[0.5 * squares / 4.0],
            1e-12,
            0.0,
        );
        assert_close("ratio", &[out.ratio_mean], &[1.15], 1e-12, 0.0);
        assert!(policy_loss(&logp, &old, &advantages, &mask, 0.0).is_err());
        assert!(policy_loss(&logp, &old, &advantages, &[0.0; 5], 0.2).is_err());
    }

    proptest! {
        #[test]
        fn policy_gradient_matches_finite_differences(
            tokens in prop::collection::vec((-0.6f64..0.6, -2.0f64..2.0, -2.0f64..2.0, prop::bool::weighted(0.8)), 1..40),
            eps in 0.05f64..0.4,
        ) {
            let old: Vec<f64> = tokens.iter().map(|t| t.1).collect();
            let advantages: Vec<f64> = tokens.iter().map(|t| t.2).collect();
            let mask = mask_from(tokens.iter().map(|t| t.3));
            prop_assume!(mask.contains(&1.0));
            // Keep log-ratios off the kinks at ln(1 ± eps) so finite differences are valid.
            let kinks = [(1.0 - eps).ln(), (1.0 + eps).ln()];
            prop_assume!(tokens.iter().all(|t| kinks.iter().all(|k| (t.0 - k).abs() > 1e-4)));
            let logp: Vec<f64> = tokens.iter().map(|t| t.1 + t.0).collect();
            let out = policy_loss(&logp, &old, &advantages, &mask, eps).unwrap();
            let numeric = numerical_gradient(
                |x| policy_loss(x, &old, &advantages, &mask, eps).unwrap().loss,
                &logp,
                1e-6,
            );
            assert_close("policy grad", &out.grad_logp, &numeric, 1e-5, 1e-7);
            prop_assert!((0.0..=1.0).contains(&out.clipfrac));
        }
    }
}
