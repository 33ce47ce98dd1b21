//! The InstructGPT K-wise ranking loss (Ouyang et al. 2022, section 3.5): the K responses to one
//! prompt are scored once, and every pair of responses in different tiers of the ranking is a
//! Bradley–Terry comparison; the prompt's loss is the sum over its pairs divided by their
//! count, and a batch averages over prompts, so each prompt weighs the same whatever its K.
//!
//! Ranks are per response, smaller is better, and equal ranks tie: tied responses form no pair,
//! so a prompt has C(K,2) minus its tied pairs (the tier index of `rlhf_data`'s `Ranking::ranks`,
//! or OASST's sibling `rank`, can be passed as is).

use rlhf_tensor::Float;

use crate::numerics::softplus_and_sigmoid;
use crate::{Result, RewardError, check};

/// The K-wise loss of a batch of prompts and its gradient with respect to every reward.
#[derive(Debug, Clone, PartialEq)]
pub struct KwiseLoss<T> {
    /// Mean over prompts of (sum of the prompt's pairwise losses / its number of pairs).
    pub loss: T,
    /// d loss / d reward, aligned with the rewards. (sum of K)
    pub grad: Vec<T>,
    /// The number of pairs in the whole batch.
    pub pairs: usize,
}

/// The K-wise loss of one prompt's K rewards and their ranks (K each).
///
/// ```
/// use rlhf_reward::kwise_loss;
/// // Ranks [0, 1, 1]: response 0 beats 1 and 2, which tie: two pairs, not three.
/// let out = kwise_loss(&[0.0f64, 0.0, 0.0], &[0, 1, 1])?;
/// assert_eq!(out.pairs, 2);
/// assert!((out.loss - 2f64.ln()).abs() < 1e-15);
/// assert_eq!(out.grad, vec![-0.5, 0.25, 0.25]);
/// # Ok::<(), rlhf_reward::RewardError>(())
/// ```
pub fn kwise_loss<T: Float>(rewards: &[T], ranks: &[usize]) -> Result<KwiseLoss<T>> {
    kwise_loss_batch(rewards, ranks, &[rewards.len()])
}

/// The K-wise loss of a batch: `rewards` and `ranks` hold the prompts one after another, the
/// g-th prompt having `group_sizes[g]` responses. Every prompt needs at least one pair.
pub fn kwise_loss_batch<T: Float>(
    rewards: &[T],
    ranks: &[usize],
    group_sizes: &[usize],
) -> Result<KwiseLoss<T>> {
    let op = "kwise_loss";
    let total: usize = group_sizes.iter().sum();
    check::len(op, "rewards", rewards.len(), total)?;
    check::len(op, "ranks", ranks.len(), total)?;
    if group_sizes.is_empty() {
        return Err(RewardError::Empty {
            op,
            what: "the batch holds no prompt".into(),
        });
    }
    check::each(op, "rewards", rewards, |r| r.is_finite(), "a finite reward")?;
    let inv_groups = T::one() / T::c(group_sizes.len() as f64);
    let mut grad = vec![T::zero(); total];
    let (mut loss, mut pairs) = (T::zero(), 0);
    let mut start = 0;
    for (group, &k) in group_sizes.iter().enumerate() {
        let range = start..start + k;
        start += k;
        let (r, rank) = (&rewards[range.clone()], &ranks[range.clone()]);
        let count = count_pairs(rank);
        if count == 0 {
            return Err(RewardError::Empty {
                op,
                what: format!(
                    "prompt {group} ({k} responses) has no pair of responses ranked apart"
                ),
            });
        }
        pairs += count;
        let scale = inv_groups / T::c(count as f64);
        let g = &mut grad[range];
        let mut group_loss = T::zero();
        for better in 0..k {
            for worse in 0..k {
                if rank[better] < rank[worse] {
                    let (value, slope) = softplus_and_sigmoid(r[worse] - r[better]);
                    group_loss = group_loss + value;
                    let s = slope * scale;
                    g[better] = g[better] - s;
                    g[worse] = g[worse] + s;
                }
            }
        }
        loss = loss + group_loss * scale;
    }
    Ok(KwiseLoss { loss, grad, pairs })
}

/// The number of ordered pairs (better, worse) with strictly different ranks.
fn count_pairs(ranks: &[usize]) -> usize {
    let k = ranks.len();
    let mut sorted = ranks.to_vec();
    sorted.sort_unstable();
    // All pairs minus the tied pairs within each run of equal ranks.
    let tied: usize = sorted
        .chunk_by(|a, b| a == b)
        .map(|run| run.len() * (run.len() - 1) / 2)
        .sum();
    k * k.saturating_sub(1) / 2 - tied
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bradley_terry_loss;
    use proptest::prelude::*;
    use rlhf_tensor::testing::{assert_close, numerical_gradient};

    #[test]
    fn kwise_by_hand() {
        // K = 3 fully ranked, rewards [2, 1, 0] with ranks [0, 1, 2]: pairs (0,1) d=1, (0,2) d=2,
        // (1,2) d=1. softplus(-1) = 0.31326168751822286, softplus(-2) = 0.12692801104297263.
        // loss = (2*0.31326168751822286 + 0.12692801104297263) / 3 = 0.2511504620264728.
        // s(-1) = 0.2689414213699951, s(-2) = 0.11920292202211755; grads / 3:
        // r0: -(s1 + s2), r1: s1 - s1 = 0, r2: s2 + s1.
        let out = kwise_loss(&[2.0, 1.0, 0.0], &[0, 1, 2]).unwrap();
        assert_eq!(out.pairs, 3);
        assert_close("loss", &[out.loss], &[0.2511504620264728], 1e-14, 0.0);
        let (s1, s2) = (0.2689414213699951, 0.11920292202211755);
        assert_close(
            "grad",
            &out.grad,
            &[-(s1 + s2) / 3.0, 0.0, (s1 + s2) / 3.0],
            1e-14,
            1e-17,
        );
    }

    #[test]
    fn batch_averages_prompts_and_pairs_match_bradley_terry() {
        // Prompt 0 (K = 2) is one BT pair; prompt 1 (K = 3, ranks [1, 0, 1]) has pairs (1,0), (1,2).
        // Its loss is the BT loss of those two pairs; the batch loss is the mean of the two.
        let rewards = [0.5, -0.5, 0.3, 1.2, -2.0];
        let out = kwise_loss_batch(&rewards, &[0, 1, 1, 0, 1], &[2, 3]).unwrap();
        let first = bradley_terry_loss(&[0.5], &[-0.5], None).unwrap();
        let second = bradley_terry_loss(&[1.2, 1.2], &[0.3, -2.0], None).unwrap();
        assert_close(
            "loss",
            &[out.loss],
            &[(first.loss + second.loss) / 2.0],
            1e-15,
            0.0,
        );
        let expected = [
            first.grad_chosen[0] / 2.0,
            first.grad_rejected[0] / 2.0,
            second.grad_rejected[0] / 2.0,
            (second.grad_chosen[0] + second.grad_chosen[1]) / 2.0,
            second.grad_rejected[1] / 2.0,
        ];
        assert_close("grad", &out.grad, &expected, 1e-15, 1e-17);
        assert_eq!(out.pairs, 3);
        let message = kwise_loss_batch(&rewards, &[0, 1, 2, 2, 2], &[2, 3])
            .unwrap_err()
            .to_string();
        assert!(message.contains("prompt 1 (3 responses)"), "{message}");
        assert!(kwise_loss_batch(&rewards, &[0, 1, 2, 2, 2], &[2, 2]).is_err());
    }

    proptest! {
        #[test]
        fn gradients_match_finite_differences_and_pairs_are_counted(
            mut groups in prop::collection::vec(prop::collection::vec((-4.0f64..4.0, 0usize..4), 2..7), 1..5),
        ) {
            // Every prompt needs a pair: where all ranks tie, rank the first response last.
            for g in &mut groups {
                if g.iter().all(|x| x.1 == g[0].1) {
                    g[0].1 += 1;
                }
            }
            let rewards: Vec<f64> = groups.iter().flatten().map(|x| x.0).collect();
            let ranks: Vec<usize> = groups.iter().flatten().map(|x| x.1).collect();
            let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
            let out = kwise_loss_batch(&rewards, &ranks, &sizes).unwrap();
            let numeric = numerical_gradient(|r| kwise_loss_batch(r, &ranks, &sizes).unwrap().loss, &rewards, 1e-6);
            assert_close("kwise grad", &out.grad, &numeric, 1e-6, 1e-7);
            let brute: usize = groups
                .iter()
                .map(|g| (0..g.len()).flat_map(|i| (0..g.len()).map(move |j| (i, j))).filter(|&(i, j)| g[i].1 < g[j].1).count())
                .sum();
            prop_assert_eq!(out.pairs, brute);
        }
    }
}
