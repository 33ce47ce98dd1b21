//! The per-step metrics of PPO under TRL's names (`objective/kl`, `policy/clipfrac_avg`, ...),
//! and the reductions that produce them from a rollout and from the minibatch losses.
//!
//! Rollout objectives are per-sequence sums averaged over the batch, as TRL logs them:
//! objective/kl = mean_b sum_t kl, objective/entropy = mean_b sum_t -logp (the sampled tokens'
//! surprise), objective/non_score_reward = mean_b sum_t -kl_coef kl,
//! objective/rlhf_reward = objective/non_score_reward + objective/scores. Minibatch statistics
//! are averages over the PPO minibatches of an update.

use rlhf_tensor::Float;
use serde::{Deserialize, Serialize};

use crate::{PolicyLoss, Result, ValueLoss, check, stats};

/// One PPO step's metrics, serialised with TRL's names (one line of `metrics.jsonl`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PpoMetrics {
    /// Batch mean of each sequence's summed per-token KL.
    #[serde(rename = "objective/kl")]
    pub kl: f64,
    /// The KL coefficient used for this step's rewards.
    #[serde(rename = "objective/kl_coef")]
    pub kl_coef: f64,
    /// Batch mean of each sequence's summed -logp of the sampled tokens.
    #[serde(rename = "objective/entropy")]
    pub entropy: f64,
    /// Batch mean of the reward model's scores.
    #[serde(rename = "objective/scores")]
    pub scores: f64,
    /// non_score_reward + scores.
    #[serde(rename = "objective/rlhf_reward")]
    pub rlhf_reward: f64,
    /// Batch mean of each sequence's summed -kl_coef * kl.
    #[serde(rename = "objective/non_score_reward")]
    pub non_score_reward: f64,
    /// Mean over minibatches of 0.5 mean (logp - old_logp)².
    #[serde(rename = "policy/approxkl_avg")]
    pub approxkl_avg: f64,
    /// Mean over minibatches of the share of clipped policy tokens.
    #[serde(rename = "policy/clipfrac_avg")]
    pub policy_clipfrac_avg: f64,
    /// Mean over minibatches of the policy's mean per-token entropy.
    #[serde(rename = "policy/entropy_avg")]
    pub entropy_avg: f64,
    /// Mean over minibatches of the clipped policy loss.
    #[serde(rename = "loss/policy_avg")]
    pub policy_loss_avg: f64,
    /// Mean over minibatches of the clipped value loss.
    #[serde(rename = "loss/value_avg")]
    pub value_loss_avg: f64,
    /// Mean over minibatches of the share of clipped value tokens.
    #[serde(rename = "val/clipfrac_avg")]
    pub value_clipfrac_avg: f64,
    /// Mean over minibatches of the mean ratio exp(logp - old_logp).
    #[serde(rename = "val/ratio")]
    pub ratio: f64,
    /// 1 - Var(R - V) / Var(R) over the rollout's kept tokens (absent when Var(R) = 0).
    #[serde(rename = "val/var_explained")]
    pub var_explained: Option<f64>,
    /// How many responses of the batch ended with EOS.
    #[serde(rename = "val/num_eos_tokens")]
    pub num_eos_tokens: usize,
    /// Mean response length in tokens (kept positions per row).
    #[serde(rename = "response_length")]
    pub response_length: f64,
    /// Mean over minibatches of the pretraining LM loss (-mean logp), when PPO-ptx is on.
    #[serde(rename = "ptx_loss", skip_serializing_if = "Option::is_none", default)]
    pub ptx_loss: Option<f64>,
}

/// The rollout half of [`PpoMetrics`]: the objective/ entries, response length and the
/// explained variance, from per-token kl (B, T), the sampled tokens' logp (B, T), the
/// non-score reward (B, T), scores (B), values and returns (B, T) and the mask (B, T).
/// `num_eos_tokens` is left 0 for the caller, who knows the tokens, to fill in; the minibatch
/// entries come from [`MinibatchStats::write_into`].
#[allow(clippy::too_many_arguments)]
pub fn rollout_metrics<T: Float>(
    kl: &[T],
    logp: &[T],
    non_score_reward: &[T],
    scores: &[T],
    values: &[T],
    returns: &[T],
    mask: &[T],
    response_len: usize,
    kl_coef: f64,
) -> Result<PpoMetrics> {
    let op = "rollout_metrics";
    let batch = check::rows(op, "kl", kl.len(), response_len)?;
    for (field, x) in [
        ("logp", logp),
        ("non_score_reward", non_score_reward),
        ("mask", mask),
    ] {
        check::len(op, field, x.len(), kl.len())?;
    }
    check::len(op, "scores", scores.len(), batch)?;
    check::mask_keeping(op, "mask", mask, 1)?;
    let per_row_mean = |x: &[T], sign: f64| -> f64 {
        check::as_f64(stats::masked_sum(x, mask)) * sign / batch as f64
    };
    let scores_mean = scores.iter().map(|&s| check::as_f64(s)).sum::<f64>() / batch as f64;
    let non_score = per_row_mean(non_score_reward, 1.0);
    let kept: usize = mask.iter().filter(|&&m| m != T::zero()).count();
    Ok(PpoMetrics {
        kl: per_row_mean(kl, 1.0),
        kl_coef,
        entropy: per_row_mean(logp, -1.0),
        scores: scores_mean,
        rlhf_reward: non_score + scores_mean,
        non_score_reward: non_score,
        var_explained: stats::explained_variance(returns, values, mask)?.map(check::as_f64),
        response_length: kept as f64 / batch as f64,
        ..PpoMetrics::default()
    })
}

/// Running sums of the minibatch statistics of one PPO update.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MinibatchStats {
    count: usize,
    approxkl: f64,
    policy_clipfrac: f64,
    entropy: f64,
    policy_loss: f64,
    value_loss: f64,
    value_clipfrac: f64,
    ratio: f64,
    ptx: Option<(f64, usize)>,
}

impl MinibatchStats {
    /// Adds one minibatch: its policy and value losses and its mean per-token entropy.
    pub fn push<T: Float>(
        &mut self,
        policy: &PolicyLoss<T>,
        value: &ValueLoss<T>,
        entropy_mean: T,
    ) {
        let f = check::as_f64::<T>;
        self.count += 1;
        self.approxkl += f(policy.approxkl);
        self.policy_clipfrac += f(policy.clipfrac);
        self.policy_loss += f(policy.loss);
        self.ratio += f(policy.ratio_mean);
        self.value_loss += f(value.loss);
        self.value_clipfrac += f(value.clipfrac);
        self.entropy += f(entropy_mean);
    }

    /// Adds one minibatch's pretraining LM loss (-mean logp of the pretraining tokens).
    pub fn push_ptx(&mut self, ptx_loss: f64) {
        let (sum, n) = self.ptx.unwrap_or((0.0, 0));
        self.ptx = Some((sum + ptx_loss, n + 1));
    }

    /// Adds every minibatch pushed into `other` (the trainer keeps an update's statistics
    /// apart until the update is known to be finite).
    pub fn merge(&mut self, other: &MinibatchStats) {
        self.count += other.count;
        self.approxkl += other.approxkl;
        self.policy_clipfrac += other.policy_clipfrac;
        self.entropy += other.entropy;
        self.policy_loss += other.policy_loss;
        self.value_loss += other.value_loss;
        self.value_clipfrac += other.value_clipfrac;
        self.ratio += other.ratio;
        if let Some((sum, n)) = other.ptx {
            let (s0, n0) = self.ptx.unwrap_or((0.0, 0));
            self.ptx = Some((s0 + sum, n0 + n));
        }
    }

    /// Writes the averages into the minibatch entries of `metrics` (nothing if none was pushed).
    pub fn write_into(&self, metrics: &mut PpoMetrics) {
        if self.count > 0 {
            let n = self.count as f64;
            metrics.approxkl_avg = self.approxkl / n;
            metrics.policy_clipfrac_avg = self.policy_clipfrac / n;
            metrics.entropy_avg = self.entropy / n;
            metrics.policy_loss_avg = self.policy_loss / n;
            metrics.value_loss_avg = self.value_loss / n;
            metrics.value_clipfrac_avg = self.value_clipfrac / n;
            metrics.ratio = self.ratio / n;
        }
        metrics.ptx_loss = self.ptx.map(|(sum, n)| sum / n as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_metrics_by_hand() {
        // B = 2, T = 2; row 1 keeps one token.
        // kl: [0.5, 1.5 | 2.0, (9)] -> sums 2.0 and 2.0 -> objective/kl = 2.0.
        // logp: [-1, -2 | -0.5, (7)] -> -logp sums 3.0 and 0.5 -> objective/entropy 1.75.
        // kl_coef 0.1: non_score_reward [-0.05, -0.15 | -0.2, 0] -> sums -0.2, -0.2 -> -0.2.
        // scores [1, 2] -> 1.5; rlhf_reward = 1.3. response_length 3 / 2 = 1.5.
        // returns [1, 2 | 3, _], values [1, 1 | 4, _] -> explained variance 0 (see stats).
        let kl = [0.5, 1.5, 2.0, 9.0];
        let logp = [-1.0, -2.0, -0.5, 7.0];
        let nsr = [-0.05, -0.15, -0.2, 0.0];
        let mask = [1.0, 1.0, 1.0, 0.0];
        let m = rollout_metrics(
            &kl,
            &logp,
            &nsr,
            &[1.0, 2.0],
            &[1.0, 1.0, 4.0, 0.0],
            &[1.0, 2.0, 3.0, 0.0],
            &mask,
            2,
            0.1,
        )
        .unwrap();
        assert_eq!(
            (m.kl, m.entropy, m.scores, m.response_length),
            (2.0, 1.75, 1.5, 1.5)
        );
        assert!((m.non_score_reward + 0.2).abs() < 1e-15 && (m.rlhf_reward - 1.3).abs() < 1e-15);
        assert!(m.var_explained.unwrap().abs() < 1e-15);
        let json = serde_json::to_string(&m).unwrap();
        for name in [
            "objective/kl",
            "policy/clipfrac_avg",
            "val/var_explained",
            "val/clipfrac_avg",
            "policy/approxkl_avg",
        ] {
            assert!(
                json.contains(&format!("\"{name}\"")),
                "{name} missing from {json}"
            );
        }
        assert!(!json.contains("ptx_loss"));
    }

    #[test]
    fn minibatch_averages() {
        let policy = |loss: f64, clipfrac: f64| PolicyLoss {
            loss,
            grad_logp: vec![],
            clipfrac,
            approxkl: 0.01,
            ratio_mean: 1.0,
        };
        let value = ValueLoss {
            loss: 0.5,
            grad_values: vec![],
            clipfrac: 0.0,
        };
        let mut stats = MinibatchStats::default();
        stats.push(&policy(-0.2, 0.1), &value, 2.0);
        stats.push(&policy(0.4, 0.3), &value, 3.0);
        stats.push_ptx(2.5);
        let mut m = PpoMetrics::default();
        stats.write_into(&mut m);
        // (-0.2 + 0.4) / 2 = 0.1; (0.1 + 0.3) / 2 = 0.2; entropy (2 + 3) / 2 = 2.5.
        assert!(
            (m.policy_loss_avg - 0.1).abs() < 1e-15 && (m.policy_clipfrac_avg - 0.2).abs() < 1e-15
        );
        assert_eq!(
            (m.entropy_avg, m.value_loss_avg, m.ptx_loss),
            (2.5, 0.5, Some(2.5))
        );
    }
}
