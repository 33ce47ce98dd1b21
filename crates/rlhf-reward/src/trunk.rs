//! How reward training treats the trunk, beside the preference objective: both options keep
//! the SFT language model's knowledge from being washed out by a few hundred rankings.
//!
//! - The auxiliary LM loss (`lm_weight` > 0): the next-token cross-entropy of the best-ranked
//!   response (tier 0) of every comparison, prompt and response, through the tied LM head,
//!   added to the objective with weight `lm_weight` (the mean over those rows' tokens;
//!   PPO-ptx's idea applied to the reward model).
//! - A learning-rate scale for the trunk (`trunk_lr_scale` < 1): every tensor but the scalar
//!   heads moves by `trunk_lr_scale` times the optimizer's step. AdamW's and SGD's updates are
//!   linear in the learning rate, so this is the step at `lr x trunk_lr_scale`, exactly; 0
//!   freezes the trunk (its backward still runs).
//! - Detached likelihoods (`detach_likelihood`): under a gated read the preference gradient
//!   reaches the gate but not the token log-probabilities, so the trunk is not trained to
//!   move its own likelihoods towards the labels of the training prompts.

use rlhf_tensor::Tensor;
use rlhf_tensor::ops::elementwise::{add, scale};
use rlhf_transformer::{GptParams, ModelInput, next_token_targets};
use serde::{Deserialize, Serialize};

use crate::batch::RewardBatch;
use crate::{Result, RewardError};

/// The trunk options of reward training (defaults: neither, the plain objective).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrunkTraining {
    /// Weight of the auxiliary next-token loss on the best-ranked responses (0: off).
    pub lm_weight: f64,
    /// The trunk's learning rate as a share of the heads' (1: the same; 0: frozen trunk).
    pub trunk_lr_scale: f32,
    /// Under a gated read ([`crate::read`]), the preference loss trains the gate but not the
    /// trunk's token log-probabilities, which stay features (the LM loss and the EOS head
    /// still train the trunk).
    pub detach_likelihood: bool,
}

impl Default for TrunkTraining {
    fn default() -> Self {
        TrunkTraining {
            lm_weight: 0.0,
            trunk_lr_scale: 1.0,
            detach_likelihood: false,
        }
    }
}

impl TrunkTraining {
    /// Checks the weight and the scale.
    pub fn validate(&self) -> Result<()> {
        if !(self.lm_weight.is_finite() && self.lm_weight >= 0.0) {
            return Err(RewardError::config(
                "lm_weight",
                format!("{}: expected a finite number >= 0", self.lm_weight),
            ));
        }
        if !(self.trunk_lr_scale.is_finite() && (0.0..=1.0).contains(&self.trunk_lr_scale)) {
            return Err(RewardError::config(
                "trunk_lr_scale",
                format!("{}: expected a number in [0, 1]", self.trunk_lr_scale),
            ));
        }
        Ok(())
    }
}

/// Whether each row of `batch` is a best-ranked response (tier 0) of a comparison that holds
/// a pair: the rows the auxiliary LM loss trains on. (N)
pub(crate) fn best_rows(batch: &RewardBatch<'_>) -> Vec<bool> {
    let mut best = vec![false; batch.rows.len()];
    for (c, &o) in batch.comparisons.iter().zip(&batch.offsets) {
        if c.pairs.is_empty() {
            continue;
        }
        let top = c.ranks.iter().copied().min().unwrap_or(0);
        for (i, &rank) in c.ranks.iter().enumerate() {
            best[o + i] = rank == top;
        }
    }
    best
}

/// Next-token targets (B T) of the rows of `input` flagged in `rows` (B), every position of
/// prompt and response; ignored elsewhere.
pub(crate) fn lm_targets(input: &ModelInput, rows: &[bool]) -> Result<Vec<i32>> {
    let t = input.seq_len;
    let mask: Vec<bool> = (0..input.batch * t).map(|i| rows[i / t]).collect();
    Ok(next_token_targets(input, Some(&mask))?)
}

/// The trunk's tensors (all but the scalar heads), copied before an optimizer step.
pub(crate) fn trunk_snapshot(params: &GptParams) -> Vec<Tensor> {
    params
        .named()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("score."))
        .map(|(_, t)| t.clone())
        .collect()
}

/// After an optimizer step: every trunk tensor p becomes before + s (p - before), the step
/// at `s` times the learning rate.
pub(crate) fn scale_trunk_step(params: &mut GptParams, before: &[Tensor], s: f32) -> Result<()> {
    let trunk = params
        .named_mut()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("score."));
    for ((_, p), b) in trunk.zip(before) {
        *p = if s == 0.0 {
            b.clone()
        } else {
            add(&scale(p, s)?, &scale(b, 1.0 - s)?)?
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::ranked;

    #[test]
    fn best_rows_and_their_targets() {
        let (a, mut b) = (ranked(2, 0, "s"), ranked(3, 0, "s"));
        b.ranks = vec![1, 0, 0];
        b.pairs = [1, 2]
            .map(|better| crate::batch::ComparisonPair {
                better,
                worse: 0,
                margin: 0.0,
            })
            .to_vec();
        let batch = RewardBatch::new(&[&a, &b], 0).unwrap();
        assert_eq!(best_rows(&batch), vec![true, false, false, true, true]);
        let input = ModelInput::padded(
            &[vec![1u32, 2, 10], vec![3, 10]],
            11,
            rlhf_transformer::Padding::Right,
        )
        .unwrap();
        let targets = lm_targets(&input, &[false, true]).unwrap();
        let ignore = rlhf_tensor::ops::cross_entropy::IGNORE_INDEX;
        assert_eq!(targets, vec![ignore, ignore, ignore, 10, ignore, ignore]);
        let bad = TrunkTraining {
            trunk_lr_scale: 1.5,
            ..TrunkTraining::default()
        };
        assert!(bad.validate().is_err());
    }
}
