//! # rlhf-ppo
//!
//! PPO for language models, after OpenAI's lm-human-preferences and the "N+ implementation
//! details of RLHF with PPO" recipe that TRL follows: the math, as public functions that return
//! their value and the gradient with respect to their inputs (DESIGN.md decision 1), and the
//! trainer built on them and on `rlhf-transformer` (KV-cache generation, the fused log-prob
//! path, scalar heads) with any [`rlhf_reward::RewardFunction`].
//!
//! The trainer's parts:
//! - [`config`]: [`PpoConfig`] under TRL's names and defaults, TOML-loadable, validated.
//! - [`sequences`]: the query-response layout and the row plumbing between (B, T, C)
//!   activations and (B, R) response tensors.
//! - [`rollout`]: sampling, truncation after the stop token, policy/reference log-probs and
//!   values, scoring, and the reward layout with GAE ([`compute_advantages`]).
//! - [`loss`]: one micro-batch's PPO loss (policy, value, entropy) and the PPO-ptx term through
//!   the models, with their backward; on a GPU the per-token values, losses and gradients stay
//!   on the device ([`loss_device`], over `rlhf_tensor::ops::ppo`).
//! - [`trainer`]: [`PpoTrainer`] (epochs x minibatches, accumulation, clipping, the non-finite
//!   guard, the KL controller, [`StepRecord`] metrics).
//! - `dist`: rollouts split across ranks ([`PpoTrainer::set_data_parallel`]): the global
//!   whitening, metrics, skip decisions and gradient sums.
//! - [`checkpoint`]: atomic checkpoints and exact resume; `metrics.jsonl`.
//! - [`eval`]: mean score, KL to the reference and pretraining loss on held-out prompts.
//! - [`run`]: [`train_ppo`], the one call from typed inputs ([`train_ppo_rank`] as one rank); [`progress`]: an indicatif bar.
//! - [`TrainError`]: the trainer's errors.
//!
//! The math's parts (kernels are generic over [`rlhf_tensor::Float`] on flat (B, T) row-major slices, so
//! the tests run in f64; [`tensors`] wraps them for f32 [`rlhf_tensor::Tensor`]s):
//! - [`stats`]: [`masked_mean`], [`masked_var`] (Bessel's correction as TRL's default),
//!   [`whiten`] (population variance), [`masked_whiten`], [`explained_variance`].
//! - [`kl`]: per-token KL estimators k1, k2, k3 with an optional clamp ([`per_token_kl`]).
//! - [`rewards`]: -kl_coef * KL per token plus the score at the EOS ([`penalised_rewards`]).
//! - [`gae`](mod@gae): advantages and returns ([`gae()`]), whitened after.
//! - [`policy`]: the clipped surrogate loss with clipfrac and approxkl ([`policy_loss`]).
//! - [`value`]: the clipped value loss with its clipfrac ([`value_loss`]).
//! - [`bonus`]: the entropy bonus and the PPO-ptx pretraining term ([`entropy_bonus`],
//!   [`ptx_term`]).
//! - [`controller`]: fixed and adaptive KL controllers, serde-serialisable ([`KlController`]).
//! - [`metrics`]: [`PpoMetrics`] under TRL's metric names, and their reductions.
//! - [`PpoError`]: every refusal names the function, the argument and what was expected.
//!
//! One loss step, by hand:
//! ```
//! use rlhf_ppo::{gae, masked_whiten, penalised_rewards, per_token_kl, policy_loss, value_loss, KlSpec};
//! // One response of T = 3 whose last position comes after EOS.
//! let mask = [1.0f64, 1.0, 0.0];
//! let (logp, ref_logp) = ([-1.0, -0.5, -3.0], [-1.2, -0.4, -3.0]);
//! let kl = per_token_kl(&logp, &ref_logp, &mask, KlSpec::default())?;
//! let rewards = penalised_rewards(&kl, &[1.0], &mask, 3, 0.05)?.rewards;
//! let values = [0.2, 0.4, 0.0];
//! let out = gae(&rewards, &values, &mask, 3, 1.0, 0.95)?;
//! let advantages = masked_whiten(&out.advantages, &mask, true)?;
//! let policy = policy_loss(&logp, &logp, &advantages, &mask, 0.2)?; // first epoch: rho = 1
//! let value = value_loss(&values, &values, &out.returns, &mask, 0.2)?;
//! assert_eq!(policy.clipfrac, 0.0);
//! assert!(policy.loss.abs() < 1e-12); // whitened advantages average to 0
//! assert!(value.loss > 0.0);
//! # Ok::<(), rlhf_ppo::PpoError>(())
//! ```

pub mod bonus;
mod check;
pub mod checkpoint;
pub mod config;
pub mod controller;
mod dist;
mod error;
pub mod eval;
pub mod gae;
pub mod kl;
pub mod loss;
pub mod loss_device;
pub mod metrics;
pub mod policy;
pub mod progress;
pub mod rewards;
pub mod rollout;
pub mod run;
pub mod sequences;
pub mod stats;
pub mod tensors;
mod train_error;
pub mod trainer;
pub mod value;

pub use bonus::{MeanTerm, entropy_bonus, ptx_term};
pub use config::{CriticKind, PpoConfig};
pub use controller::KlController;
pub use error::{PpoError, Result};
pub use eval::{EvalReport, evaluate};
pub use gae::{Gae, gae};
pub use kl::{KlEstimator, KlSpec, per_token_kl, per_token_kl_backward};
pub use metrics::{MinibatchStats, PpoMetrics, rollout_metrics};
pub use policy::{PolicyLoss, policy_loss};
pub use rewards::{PenalisedRewards, penalised_rewards};
pub use rollout::{Advantages, Decode, PpoPrompt, SampleSpec, Timing, compute_advantages};
pub use run::{PpoOutcome, train_ppo, train_ppo_rank};
pub use stats::{explained_variance, masked_mean, masked_var, masked_whiten, whiten};
pub use train_error::{TrainError, TrainResult};
pub use trainer::{PpoEvent, PpoSetup, PpoTrainer, StepRecord};
pub use value::{ValueLoss, value_loss};

#[cfg(test)]
mod testing {
    /// A 0/1 mask from booleans.
    pub(crate) fn mask_from(keep: impl Iterator<Item = bool>) -> Vec<f64> {
        keep.map(|k| if k { 1.0 } else { 0.0 }).collect()
    }
}
