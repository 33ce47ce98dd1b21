//! # rlhf-reward
//!
//! Reward models learned from human preferences, and the reward functions PPO optimises.
//! Losses return their value and the gradient with respect to their inputs (DESIGN.md
//! decision 1); the model backpropagates them through its heads and the transformer trunk.
//!
//! Parts. The losses and metrics (kernels generic over [`rlhf_tensor::Float`] on slices, so the
//! tests run in f64; [`tensors`] wraps them for f32 [`rlhf_tensor::Tensor`]s):
//! - [`pairwise`]: Bradley–Terry with optional per-pair margins (Llama 2) and the centering
//!   term ([`bradley_terry_loss`], [`centering_loss`]).
//! - [`kwise`]: the InstructGPT K-wise ranking loss with ties ([`kwise_loss`],
//!   [`kwise_loss_batch`]).
//! - [`rules`]: Sparrow's rule-violation auxiliary loss, binary cross-entropy with logits
//!   ([`rule_violation_loss`]).
//! - [`metrics`]: pairwise accuracy, mean margin and the expected calibration error
//!   ([`pairwise_metrics`], [`expected_calibration_error`]).
//! - [`numerics`]: the stable softplus and sigmoid every loss is written with.
//!
//! The model and its training:
//! - [`model`]: [`RewardModel`], a GPT-2 trunk with a reward head and R rule heads read at the
//!   EOS, initialised from an SFT checkpoint, saved as an HF GPT-2 directory.
//! - [`read`]: where the reward is read ([`RewardRead`]): the EOS (default), or, as an explicit
//!   choice, the EOS plus a gated sum over tokens of what the trunk's LM head says of them
//!   (log-likelihood, probability, centred log-likelihood, margin below its first choice, the
//!   first choice or not, probability as a share of the first choice's, probability lost to
//!   the first choice, margin and ratio under two gates).
//! - [`batch`]: [`Comparison`] (one prompt's K responses, ranks, pairs, rule labels) and
//!   [`RewardBatch`] (each response forwarded once).
//! - [`dataset`]: [`PreferenceBuilder`], from any `rlhf-data` record or file to comparisons.
//! - [`objective`]: the combined loss ([`ObjectiveConfig`]) and [`objective_step`] through the
//!   model.
//! - [`train`] and [`train_state`]: [`RewardTrainer`] with validation each epoch, atomic
//!   checkpoints and exact resume.
//! - [`trunk`]: [`TrunkTraining`], the auxiliary LM loss and the trunk's learning-rate scale
//!   that keep the SFT model's knowledge through reward training.
//! - [`eval`]: accuracy, loss, margin, ECE (both orientations), per source and per K, the
//!   length baseline ([`EvalReport`]).
//! - [`normalise`]: the bias (and optional gain) that centres reference rewards, folded into
//!   the head.
//! - [`pipeline`]: [`train_reward_model`], the whole stage in one call, for `rlhf run`.
//!
//! Reward functions:
//! - [`function`]: the [`RewardFunction`] trait PPO optimises, over [`Episode`]s (text and
//!   tokens), and [`FnReward`] for closures.
//! - [`rewards`]: [`ModelReward`] (a learned model), [`RuleBasedReward`] (penalties for broken
//!   rules, the world's included), [`CriteriaReward`] (weighted ground-truth criteria) and
//!   [`WeightedReward`].
//! - [`ensemble`]: [`EnsembleReward`], the mean of M reward models trained from different
//!   seeds (Coste et al. 2023), and [`mean_rewards`].
//! - [`RewardError`]: every refusal names the function, the argument or the record and what was
//!   expected.
//!
//! ```
//! use rlhf_reward::{bradley_terry_loss, centering_loss, pairwise_metrics, DEFAULT_ECE_BINS};
//! let (chosen, rejected) = ([1.5f64, 0.2], [0.5, 0.4]);
//! let mut loss = bradley_terry_loss(&chosen, &rejected, None)?;
//! loss.add(&centering_loss(&chosen, &rejected, 0.01)?)?;
//! // Gradient descent on the rewards widens the first pair's gap.
//! assert!(loss.grad_chosen[0] < 0.0 && loss.grad_rejected[0] > 0.0);
//! let metrics = pairwise_metrics(&chosen, &rejected, None, DEFAULT_ECE_BINS)?;
//! assert_eq!(metrics.accuracy, 0.5);
//! # Ok::<(), rlhf_reward::RewardError>(())
//! ```

pub mod batch;
mod check;
pub mod dataset;
pub mod ensemble;
mod error;
pub mod eval;
pub mod function;
pub mod kwise;
pub mod metrics;
pub mod model;
pub mod normalise;
pub mod numerics;
pub mod objective;
pub mod pairwise;
pub mod pipeline;
pub mod read;
pub mod rewards;
pub mod rules;
pub mod tensors;
pub mod train;
pub mod train_state;
#[cfg(test)]
mod train_tests;
pub mod trunk;

pub use batch::{Comparison, ComparisonPair, RewardBatch};
pub use dataset::{BuildStats, PreferenceBuilder, PreferenceData, RuleColumns};
pub use ensemble::{EnsembleReward, mean_rewards};
pub use error::{Result, RewardError};
pub use eval::{EvalReport, PairStats};
pub use function::{Episode, FnReward, RewardFunction};
pub use kwise::{KwiseLoss, kwise_loss, kwise_loss_batch};
pub use metrics::{
    CalibrationBin, DEFAULT_ECE_BINS, PairwiseMetrics, calibration_bins,
    expected_calibration_error, pairwise_metrics,
};
pub use model::{Normalisation, RewardModel, SequenceConfig};
pub use normalise::{NormaliseConfig, NormaliseReport};
pub use objective::{
    ObjectiveConfig, PreferenceLoss, objective_step, objective_step_sharded,
    objective_step_with_trunk,
};
pub use pairwise::{PairwiseLoss, bradley_terry_loss, centering_loss};
pub use pipeline::{RewardStageConfig, TrainedReward, train_reward_model};
pub use read::RewardRead;
pub use rewards::{
    CriteriaReward, FnRule, ModelReward, RuleBasedReward, RuleCheck, WeightedReward, WorldRules,
};
pub use rules::{RuleLoss, rule_violation_loss};
pub use train::{RewardEvent, RewardStepLog, RewardTrainConfig, RewardTrainer};
pub use trunk::TrunkTraining;
