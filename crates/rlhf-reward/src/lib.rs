//! # rlhf-reward
//!
//! Reward models learned from human preferences. This part holds the losses and batch metrics,
//! as public functions that return their value and the gradient with respect to their inputs
//! (the scalar-head rewards, the rule-head logits; DESIGN.md decision 1). The reward model
//! itself, its training, normalisation, the `RewardFunction` trait and the CLI come with the
//! rest of the reward-model issue, on top of the transformer's scalar heads.
//!
//! Parts (kernels are generic over [`rlhf_tensor::Float`] on slices, so the tests run in f64;
//! [`tensors`] wraps them for f32 [`rlhf_tensor::Tensor`]s):
//! - [`pairwise`]: Bradley–Terry with optional per-pair margins (Llama 2) and the centering
//!   term ([`bradley_terry_loss`], [`centering_loss`]).
//! - [`kwise`]: the InstructGPT K-wise ranking loss with ties ([`kwise_loss`],
//!   [`kwise_loss_batch`]).
//! - [`rules`]: Sparrow's rule-violation auxiliary loss, binary cross-entropy with logits
//!   ([`rule_violation_loss`]).
//! - [`metrics`]: pairwise accuracy, mean margin and the expected calibration error
//!   ([`pairwise_metrics`], [`expected_calibration_error`]).
//! - [`numerics`]: the stable softplus and sigmoid every loss is written with.
//! - [`function`]: the [`RewardFunction`] trait PPO optimises, over [`Episode`]s (text and
//!   tokens), and [`FnReward`] for closures.
//! - [`RewardError`]: every refusal names the function, the argument and what was expected.
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

mod check;
mod error;
pub mod function;
pub mod kwise;
pub mod metrics;
pub mod numerics;
pub mod pairwise;
pub mod rules;
pub mod tensors;

pub use error::{Result, RewardError};
pub use function::{Episode, FnReward, RewardFunction};
pub use kwise::{KwiseLoss, kwise_loss, kwise_loss_batch};
pub use metrics::{
    CalibrationBin, DEFAULT_ECE_BINS, PairwiseMetrics, calibration_bins,
    expected_calibration_error, pairwise_metrics,
};
pub use pairwise::{PairwiseLoss, bradley_terry_loss, centering_loss};
pub use rules::{RuleLoss, rule_violation_loss};
