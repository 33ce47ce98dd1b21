//! Generalised advantage estimation (Schulman et al. 2016) over right-padded responses.
//!
//! Per row, backwards in t: delta_t = r_t + gamma V_{t+1} - V_t with V = 0 after the last kept
//! token, A_t = delta_t + gamma lambda A_{t+1}, and returns R_t = A_t + V_t. A masked position
//! ends the episode: its advantage and return are 0 and nothing flows back across it. The
//! advantages are then whitened over the kept positions ([`Gae::whitened_advantages`]).

use rlhf_tensor::Float;

use crate::{Result, check, stats};

/// Advantages and returns of a rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct Gae<T> {
    /// A_t before whitening; 0 at masked positions. (B, T)
    pub advantages: Vec<T>,
    /// R_t = A_t + V_t, the value targets; 0 at masked positions. (B, T)
    pub returns: Vec<T>,
}

impl<T: Float> Gae<T> {
    /// The advantages whitened over the kept positions (TRL's `masked_whiten`, mean shifted).
    pub fn whitened_advantages(&self, mask: &[T]) -> Result<Vec<T>> {
        stats::masked_whiten(&self.advantages, mask, true)
    }
}

/// GAE from rewards (B, T), values (B, T) and the response mask (B, T) of rows of
/// `response_len` tokens, with discount `gamma` and trace decay `lambda` (both in [0, 1]).
///
/// ```
/// use rlhf_ppo::gae;
/// // gamma = lambda = 1: A_t = sum of later rewards - V_t.
/// let out = gae(&[0.0f64, 1.0], &[0.5, 0.25], &[1.0, 1.0], 2, 1.0, 1.0)?;
/// assert_eq!(out.advantages, vec![0.5, 0.75]);
/// assert_eq!(out.returns, vec![1.0, 1.0]);
/// # Ok::<(), rlhf_ppo::PpoError>(())
/// ```
pub fn gae<T: Float>(
    rewards: &[T],
    values: &[T],
    mask: &[T],
    response_len: usize,
    gamma: f64,
    lambda: f64,
) -> Result<Gae<T>> {
    let op = "gae";
    check::rows(op, "rewards", rewards.len(), response_len)?;
    check::len(op, "values", values.len(), rewards.len())?;
    check::len(op, "mask", mask.len(), rewards.len())?;
    check::mask(op, "mask", mask)?;
    check::range(
        op,
        "gamma",
        gamma,
        (0.0..=1.0).contains(&gamma),
        "in [0, 1]",
    )?;
    check::range(
        op,
        "lambda",
        lambda,
        (0.0..=1.0).contains(&lambda),
        "in [0, 1]",
    )?;
    let (gamma, gamma_lambda) = (T::c(gamma), T::c(gamma * lambda));
    let mut advantages = vec![T::zero(); rewards.len()];
    let mut returns = vec![T::zero(); rewards.len()];
    for start in (0..rewards.len()).step_by(response_len) {
        let mut next_value = T::zero();
        let mut next_advantage = T::zero();
        for i in (start..start + response_len).rev() {
            if mask[i] == T::zero() {
                next_value = T::zero();
                next_advantage = T::zero();
                continue;
            }
            let delta = rewards[i] + gamma * next_value - values[i];
            let advantage = delta + gamma_lambda * next_advantage;
            advantages[i] = advantage;
            returns[i] = advantage + values[i];
            next_value = values[i];
            next_advantage = advantage;
        }
    }
    Ok(Gae {
        advantages,
        returns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rlhf_tensor::testing::assert_close;

    #[test]
    fn gae_by_hand() {
        // One row, T = 3, last token masked (after EOS); gamma 0.9, lambda 0.5 (gamma*lambda 0.45).
        // r = [0.1, 1.0, (5)], V = [0.5, 0.2, (9)].
        // t=1: V_2 = 0 (after the last kept token): delta = 1.0 - 0.2 = 0.8; A_1 = 0.8.
        // t=0: delta = 0.1 + 0.9*0.2 - 0.5 = -0.22; A_0 = -0.22 + 0.45*0.8 = 0.14.
        // Returns: 0.14 + 0.5 = 0.64, 0.8 + 0.2 = 1.0, 0.
        // Row 2, T = 3, all kept, gamma 0.9: r = [0, 0, 1], V = [0, 0, 0]:
        // A_2 = 1, A_1 = 0 + 0.45*1 = 0.45, A_0 = 0.45*0.45 = 0.2025; returns equal A.
        let rewards = [0.1, 1.0, 5.0, 0.0, 0.0, 1.0];
        let values = [0.5, 0.2, 9.0, 0.0, 0.0, 0.0];
        let mask = [1.0, 1.0, 0.0, 1.0, 1.0, 1.0];
        let out = gae(&rewards, &values, &mask, 3, 0.9, 0.5).unwrap();
        assert_close(
            "A",
            &out.advantages,
            &[0.14, 0.8, 0.0, 0.2025, 0.45, 1.0],
            1e-14,
            1e-15,
        );
        assert_close(
            "R",
            &out.returns,
            &[0.64, 1.0, 0.0, 0.2025, 0.45, 1.0],
            1e-14,
            1e-15,
        );
        // Whitened over the 5 kept: mean (0.14+0.8+0.2025+0.45+1)/5 = 2.5925/5 = 0.5185;
        // deviations -0.3785, 0.2815, -0.316, -0.0685, 0.4815; squares sum
        // 0.14326225+0.07924225+0.099856+0.00469225+0.23184225 = 0.558895; unbiased /4 = 0.13972375.
        let s = (0.13972375f64 + 1e-8).sqrt();
        let w = out.whitened_advantages(&mask).unwrap();
        let expected = [
            -0.3785 / s,
            0.2815 / s,
            0.0,
            -0.316 / s,
            -0.0685 / s,
            0.4815 / s,
        ];
        assert_close("whitened", &w, &expected, 1e-12, 1e-15);
    }

    #[test]
    fn lambda_one_gives_discounted_returns_and_lambda_zero_td() {
        // lambda = 1: R_t = sum_k gamma^k r_{t+k} (Monte Carlo), whatever V is.
        // r = [1, 2, 3], gamma 0.5: R_2 = 3, R_1 = 2 + 1.5 = 3.5, R_0 = 1 + 1.75 = 2.75.
        let out = gae(&[1.0, 2.0, 3.0], &[0.3, -0.7, 4.0], &[1.0; 3], 3, 0.5, 1.0).unwrap();
        assert_close("mc", &out.returns, &[2.75, 3.5, 3.0], 1e-14, 0.0);
        // lambda = 0: A_t = delta_t: [1 + 0.5*-0.7 - 0.3, 2 + 0.5*4 + 0.7, 3 - 4].
        let out = gae(&[1.0, 2.0, 3.0], &[0.3, -0.7, 4.0], &[1.0; 3], 3, 0.5, 0.0).unwrap();
        assert_close("td", &out.advantages, &[0.35, 4.7, -1.0], 1e-14, 0.0);
    }

    #[test]
    fn bad_hyper_parameters_are_errors() {
        assert!(gae(&[1.0f64], &[0.0], &[1.0], 1, 1.5, 0.9).is_err());
        assert!(gae(&[1.0f64], &[0.0], &[1.0], 1, 1.0, f64::NAN).is_err());
        assert!(gae(&[1.0f64, 2.0], &[0.0], &[1.0, 1.0], 2, 1.0, 0.9).is_err());
    }

    proptest! {
        #[test]
        fn gae_matches_the_sum_of_discounted_deltas(
            tokens in prop::collection::vec((-2.0f64..2.0, -2.0f64..2.0), 1..12),
            eos in 0usize..12,
            gamma in 0.0f64..=1.0,
            lambda in 0.0f64..=1.0,
        ) {
            // Independent form: A_t = sum_{k>=0} (gamma lambda)^k delta_{t+k} over kept tokens.
            let t_len = tokens.len();
            let kept = (eos % t_len) + 1;
            let r: Vec<f64> = tokens.iter().map(|p| p.0).collect();
            let v: Vec<f64> = tokens.iter().map(|p| p.1).collect();
            let mask: Vec<f64> = (0..t_len).map(|t| if t < kept { 1.0 } else { 0.0 }).collect();
            let value_at = |t: usize| if t < kept { v[t] } else { 0.0 };
            let delta: Vec<f64> = (0..kept).map(|t| r[t] + gamma * value_at(t + 1) - v[t]).collect();
            let out = gae(&r, &v, &mask, t_len, gamma, lambda).unwrap();
            for t in 0..t_len {
                let expected = if t < kept {
                    (t..kept).map(|k| (gamma * lambda).powi((k - t) as i32) * delta[k]).sum()
                } else {
                    0.0
                };
                prop_assert!((out.advantages[t] - expected).abs() < 1e-9);
            }
        }
    }
}
