//! The two loss terms that are a weighted masked mean of a per-token input: the entropy bonus
//! and PPO-ptx's pretraining log-likelihood (InstructGPT's objective, eq. 2).
//!
//! Both add -coef * sum(x * mask) / sum(mask) to the loss being minimised (they are maximised),
//! with gradient -coef * mask / sum(mask) with respect to x. The caller passes that gradient on
//! to the entropy or log-prob backward of `rlhf_tensor::ops::logprob`.

use rlhf_tensor::Float;

use crate::{Result, check, stats};

/// A loss term -coef * mean(x) and its gradient.
#[derive(Debug, Clone, PartialEq)]
pub struct MeanTerm<T> {
    /// -coef * masked mean of x: the amount added to the loss.
    pub loss: T,
    /// The masked mean of x itself (`policy/entropy_avg`, or -`ptx_loss` for log-probs).
    pub mean: T,
    /// d loss / d x. (same shape as x)
    pub grad: Vec<T>,
}

/// The entropy bonus: -entropy_coef * masked mean of the per-token `entropy` (B, T). A
/// coefficient of 0 (the default of the recipe) gives a zero term and zero gradient.
pub fn entropy_bonus<T: Float>(
    entropy: &[T],
    mask: &[T],
    entropy_coef: f64,
) -> Result<MeanTerm<T>> {
    weighted_mean_term("entropy_bonus", "entropy_coef", entropy, mask, entropy_coef)
}

/// The PPO-ptx term: -gamma_ptx * mean log-likelihood of the pretraining tokens, from their
/// log-probs `ptx_logp` (N, L) under the policy and their mask (N, L).
///
/// ```
/// use rlhf_ppo::ptx_term;
/// // Log-probs -1 and -3 (the third token is padding): mean -2, gamma 0.5 -> loss term +1.
/// let out = ptx_term(&[-1.0f64, -3.0, 0.0], &[1.0, 1.0, 0.0], 0.5)?;
/// assert_eq!((out.loss, out.mean), (1.0, -2.0));
/// assert_eq!(out.grad, vec![-0.25, -0.25, 0.0]);
/// # Ok::<(), rlhf_ppo::PpoError>(())
/// ```
pub fn ptx_term<T: Float>(ptx_logp: &[T], mask: &[T], gamma_ptx: f64) -> Result<MeanTerm<T>> {
    weighted_mean_term("ptx_term", "gamma_ptx", ptx_logp, mask, gamma_ptx)
}

fn weighted_mean_term<T: Float>(
    op: &'static str,
    coef_name: &'static str,
    x: &[T],
    mask: &[T],
    coef: f64,
) -> Result<MeanTerm<T>> {
    check::range(
        op,
        coef_name,
        coef,
        coef >= 0.0 && coef.is_finite(),
        "finite and >= 0",
    )?;
    let mean = stats::masked_mean(x, mask)?;
    // masked_mean checked the mask: it is 0/1 and keeps at least one element.
    let kept: T = mask.iter().copied().sum();
    let coef = T::c(coef);
    let scale = -coef / kept;
    Ok(MeanTerm {
        loss: -coef * mean,
        mean,
        grad: mask.iter().map(|&m| m * scale).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::mask_from;
    use proptest::prelude::*;
    use rlhf_tensor::testing::{assert_close, numerical_gradient};

    #[test]
    fn entropy_bonus_by_hand() {
        // Entropies 2, 4 kept (6 masked): mean 3, coef 0.01 -> -0.03; grad -0.01/2 each.
        let out = entropy_bonus(&[2.0, 6.0, 4.0], &[1.0, 0.0, 1.0], 0.01).unwrap();
        assert_close("loss", &[out.loss], &[-0.03], 1e-15, 0.0);
        assert_eq!(out.mean, 3.0);
        assert_close("grad", &out.grad, &[-0.005, 0.0, -0.005], 1e-15, 0.0);
        // The default coefficient 0: no term, no gradient.
        let off = entropy_bonus(&[2.0, 6.0], &[1.0, 1.0], 0.0).unwrap();
        assert_eq!((off.loss, off.grad), (0.0, vec![0.0, 0.0]));
        assert!(entropy_bonus(&[2.0], &[1.0], -1.0).is_err());
        assert!(ptx_term(&[2.0], &[0.0], 1.0).is_err());
    }

    proptest! {
        #[test]
        fn mean_term_gradients_match_finite_differences(
            tokens in prop::collection::vec((-3.0f64..0.0, prop::bool::weighted(0.7)), 1..30),
            coef in 0.0f64..2.0,
        ) {
            let x: Vec<f64> = tokens.iter().map(|t| t.0).collect();
            let mask = mask_from(tokens.iter().map(|t| t.1));
            prop_assume!(mask.contains(&1.0));
            let out = ptx_term(&x, &mask, coef).unwrap();
            let numeric = numerical_gradient(|v| ptx_term(v, &mask, coef).unwrap().loss, &x, 1e-6);
            assert_close("ptx grad", &out.grad, &numeric, 1e-6, 1e-7);
        }
    }
}
