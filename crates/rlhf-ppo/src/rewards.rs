//! Per-token rewards of a rollout: the KL penalty at every response token plus the sequence
//! score at the last one.
//!
//! r_t = -kl_coef * kl_t at each kept position, and the reward model's score is added at the
//! last kept position of each row: the EOS token when the response was truncated after it
//! (positions after EOS are masked: they carry neither KL nor value loss). This is the
//! placement lm-human-preferences uses (`rewards[:, -1] += scores` on fixed-length responses)
//! and what the issue specifies; TRL's PPOTrainer adds it one position later (the first pad
//! after EOS, where its KL is 0), which differs only by where the critic must learn it.

use rlhf_tensor::Float;

use crate::{PpoError, Result, check};

/// The rewards of a rollout (B, T) and the part of them that is the KL penalty.
#[derive(Debug, Clone, PartialEq)]
pub struct PenalisedRewards<T> {
    /// -kl_coef * kl_t, plus the score at each row's last kept position. (B, T)
    pub rewards: Vec<T>,
    /// -kl_coef * kl_t alone (`objective/non_score_reward` sums it per row). (B, T)
    pub non_score_reward: Vec<T>,
    /// The position in 0..T where each row's score was added (its EOS). (B)
    pub score_positions: Vec<usize>,
}

/// Rewards from per-token KL (B, T), scores (B) and the response mask (B, T) of rows of
/// `response_len` tokens. Every row must keep at least one token (the score needs a place).
///
/// ```
/// use rlhf_ppo::penalised_rewards;
/// // One row of 3 tokens, the last one after EOS: kl_coef 0.1, score 2.
/// let out = penalised_rewards(&[0.5f64, 1.0, 9.0], &[2.0], &[1.0, 1.0, 0.0], 3, 0.1)?;
/// assert_eq!(out.rewards, vec![-0.05, -0.1 + 2.0, 0.0]);
/// # Ok::<(), rlhf_ppo::PpoError>(())
/// ```
pub fn penalised_rewards<T: Float>(
    kl: &[T],
    scores: &[T],
    mask: &[T],
    response_len: usize,
    kl_coef: T,
) -> Result<PenalisedRewards<T>> {
    let op = "penalised_rewards";
    let batch = check::rows(op, "kl", kl.len(), response_len)?;
    check::len(op, "mask", mask.len(), kl.len())?;
    check::len(op, "scores", scores.len(), batch)?;
    check::mask(op, "mask", mask)?;
    let non_score_reward: Vec<T> = kl
        .iter()
        .zip(mask)
        .map(|(&k, &m)| {
            if m == T::zero() {
                T::zero()
            } else {
                -kl_coef * k
            }
        })
        .collect();
    let mut rewards = non_score_reward.clone();
    let mut score_positions = Vec::with_capacity(batch);
    for (row, &score) in scores.iter().enumerate() {
        let row_mask = &mask[row * response_len..(row + 1) * response_len];
        let last = row_mask
            .iter()
            .rposition(|&m| m != T::zero())
            .ok_or_else(|| PpoError::TooFewKept {
                op,
                field: "mask",
                kept: 0,
                needed: 1,
                where_: format!(" in row {row}"),
            })?;
        rewards[row * response_len + last] = rewards[row * response_len + last] + score;
        score_positions.push(last);
    }
    Ok(PenalisedRewards {
        rewards,
        non_score_reward,
        score_positions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewards_by_hand() {
        // Two rows of T = 3, kl_coef 0.2.
        // Row 0: all kept, kl [1, -0.5, 2] -> [-0.2, 0.1, -0.4], score 3 at position 2 -> 2.6.
        // Row 1: EOS at position 0, kl [0.5, 7, 7] -> [-0.1, 0, 0], score -1 at 0 -> -1.1.
        let kl = [1.0, -0.5, 2.0, 0.5, 7.0, 7.0];
        let mask = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0];
        let out = penalised_rewards(&kl, &[3.0, -1.0], &mask, 3, 0.2).unwrap();
        let expected = [-0.2, 0.1, -0.4 + 3.0, -0.1 - 1.0, 0.0, 0.0];
        rlhf_tensor::testing::assert_close("rewards", &out.rewards, &expected, 1e-15, 1e-15);
        rlhf_tensor::testing::assert_close(
            "nsr",
            &out.non_score_reward,
            &[-0.2, 0.1, -0.4, -0.1, 0.0, 0.0],
            1e-15,
            1e-15,
        );
        assert_eq!(out.score_positions, vec![2, 0]);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let message = penalised_rewards(
            &[1.0f64, 1.0, 1.0, 1.0],
            &[1.0, 1.0],
            &[1.0, 1.0, 0.0, 0.0],
            2,
            0.1,
        )
        .unwrap_err()
        .to_string();
        assert!(message.contains("in row 1"), "{message}");
        assert!(penalised_rewards(&[1.0f64; 5], &[1.0, 1.0], &[1.0; 5], 2, 0.1).is_err());
        assert!(penalised_rewards(&[1.0f64; 4], &[1.0], &[1.0; 4], 2, 0.1).is_err());
        assert!(penalised_rewards(&[1.0f64; 4], &[1.0; 2], &[1.0; 4], 0, 0.1).is_err());
    }
}
