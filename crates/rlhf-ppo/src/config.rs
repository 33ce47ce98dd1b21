//! [`PpoConfig`]: the trainer's settings under TRL's `PPOConfig` / `OnPolicyConfig` names and
//! defaults (plus Hugging Face `TrainingArguments` names for the optimiser), loadable from TOML.
//!
//! Batch sizes follow TRL: a PPO step collects `batch_size = per_device_train_batch_size *
//! gradient_accumulation_steps * num_mini_batches` episodes, then takes `num_ppo_epochs` passes
//! over them in `num_mini_batches` shuffled minibatches, each one optimiser step accumulated over
//! `gradient_accumulation_steps` micro-batches of `per_device_train_batch_size` episodes.
//! Settings TRL does not have (adaptive KL from its older trainer, the entropy bonus, PPO-ptx,
//! the critic layout, the non-finite guard) use the names of the recipes that introduced them.

use std::path::Path;

use rlhf_transformer::Decay;
use serde::{Deserialize, Serialize};

use crate::KlEstimator;
use crate::train_error::{TrainError, TrainResult};

/// Where the critic's value head lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CriticKind {
    /// A separate model (trunk + value head), initialised from the reward model when one is
    /// given, else from the SFT trunk with a zero value head (TRL's layout).
    #[default]
    Separate,
    /// A zero-initialised value head on the policy's own trunk: one forward and backward serve
    /// both losses (`vf_coef` weighs them).
    Shared,
}

/// PPO settings; every field has TRL's default where TRL has the field.
///
/// ```
/// use rlhf_ppo::PpoConfig;
/// let config = PpoConfig::from_toml_str("kl_coef = 0.1\nnum_ppo_epochs = 2", None)?;
/// assert_eq!((config.kl_coef, config.num_ppo_epochs, config.cliprange), (0.1, 2, 0.2));
/// let err = PpoConfig::from_toml_str("cliprange = 1.5", None).unwrap_err().to_string();
/// assert!(err.contains("cliprange"), "{err}");
/// # Ok::<(), rlhf_ppo::TrainError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PpoConfig {
    /// Seed of every random choice (prompt order, sampling, minibatch order).
    pub seed: u64,
    /// Peak learning rate of the policy's AdamW.
    pub learning_rate: f64,
    /// The critic's learning rate (default: `learning_rate`).
    pub critic_learning_rate: Option<f64>,
    /// AdamW epsilon.
    pub adam_epsilon: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Learning-rate decay over the PPO steps: `linear` (TRL's), `cosine` or `constant`.
    pub lr_scheduler_type: Decay,
    /// Clip each model's global gradient norm to this (0: no clipping).
    pub max_grad_norm: f64,
    /// Episodes per micro-batch.
    pub per_device_train_batch_size: usize,
    /// Micro-batches accumulated into one optimiser step.
    pub gradient_accumulation_steps: usize,
    /// Minibatches (optimiser steps) per PPO epoch.
    pub num_mini_batches: usize,
    /// Passes over each rollout batch.
    pub num_ppo_epochs: usize,
    /// Episodes to train on in total (default: `num_train_epochs` passes over the prompts).
    pub total_episodes: Option<usize>,
    /// Passes over the prompts when `total_episodes` is not set.
    pub num_train_epochs: f64,
    /// Rows per forward or generation chunk during the rollout.
    pub local_rollout_forward_batch_size: usize,
    /// Most tokens generated per response.
    pub response_length: usize,
    /// Sampling temperature; log-probs are taken under the same temperature (TRL).
    pub temperature: f64,
    /// The token that ends a response (default: the model's EOS).
    pub stop_token_id: Option<u32>,
    /// Subtracted from the score of a response that did not end with the stop token.
    pub missing_eos_penalty: Option<f64>,
    /// The KL coefficient beta (the adaptive controller's starting value).
    pub kl_coef: f64,
    /// Per-token KL estimator in the reward: `k1` (TRL's default), `k2` or `k3`.
    pub kl_estimator: KlEstimator,
    /// Clamp of the per-token log-ratio in the KL penalty (none by default).
    pub kl_clamp: Option<f64>,
    /// Adapt `kl_coef` towards `target` (Ziegler et al.; TRL's older `adap_kl_ctrl`).
    pub adap_kl_ctrl: bool,
    /// Target KL per sequence of the adaptive controller (nats).
    pub target: f64,
    /// Horizon of the adaptive controller, in episodes.
    pub horizon: f64,
    /// Policy clip range epsilon.
    pub cliprange: f64,
    /// Value clip range.
    pub cliprange_value: f64,
    /// Weight of the value loss.
    pub vf_coef: f64,
    /// Discount.
    pub gamma: f64,
    /// GAE lambda.
    pub lam: f64,
    /// Whiten the rewards (without shifting their mean) before GAE.
    pub whiten_rewards: bool,
    /// Entropy bonus coefficient.
    pub entropy_coef: f64,
    /// PPO-ptx coefficient gamma of the pretraining log-likelihood (0: plain PPO).
    pub ptx_coef: f64,
    /// Pretraining sequences per micro-batch of PPO-ptx.
    pub ptx_batch_size: usize,
    /// Pretraining sequences are cut to this many tokens.
    pub ptx_seq_len: usize,
    /// The critic's layout.
    pub critic: CriticKind,
    /// Save a checkpoint every this many PPO steps (0: only at the end).
    pub save_steps: u64,
    /// Stop with an error once this many updates were skipped for a non-finite loss or gradient.
    pub max_skipped_updates: u64,
}

impl Default for PpoConfig {
    fn default() -> Self {
        PpoConfig {
            seed: 42,
            learning_rate: 3e-6,
            critic_learning_rate: None,
            adam_epsilon: 1e-8,
            weight_decay: 0.0,
            lr_scheduler_type: Decay::Linear,
            max_grad_norm: 1.0,
            per_device_train_batch_size: 8,
            gradient_accumulation_steps: 1,
            num_mini_batches: 1,
            num_ppo_epochs: 4,
            total_episodes: None,
            num_train_epochs: 1.0,
            local_rollout_forward_batch_size: 64,
            response_length: 53,
            temperature: 0.7,
            stop_token_id: None,
            missing_eos_penalty: None,
            kl_coef: 0.05,
            kl_estimator: KlEstimator::K1,
            kl_clamp: None,
            adap_kl_ctrl: false,
            target: 6.0,
            horizon: 10_000.0,
            cliprange: 0.2,
            cliprange_value: 0.2,
            vf_coef: 0.1,
            gamma: 1.0,
            lam: 0.95,
            whiten_rewards: false,
            entropy_coef: 0.0,
            ptx_coef: 0.0,
            ptx_batch_size: 8,
            ptx_seq_len: 128,
            critic: CriticKind::Separate,
            save_steps: 0,
            max_skipped_updates: 5,
        }
    }
}

impl PpoConfig {
    /// Parses TOML text (unknown keys are errors) and validates it; `path` names the file in
    /// messages.
    pub fn from_toml_str(text: &str, path: Option<&Path>) -> TrainResult<PpoConfig> {
        let name = path.map_or_else(|| "<ppo config>".into(), Path::to_path_buf);
        let config: PpoConfig = toml::from_str(text).map_err(|e| TrainError::ConfigFile {
            path: name.clone(),
            message: e.to_string().trim_end().to_string(),
        })?;
        config.validate().map_err(|e| TrainError::ConfigFile {
            path: name,
            message: e.to_string(),
        })?;
        Ok(config)
    }

    /// Reads and validates a TOML file.
    pub fn from_toml_file(path: &Path) -> TrainResult<PpoConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        PpoConfig::from_toml_str(&text, Some(path))
    }

    /// The config as TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Episodes per PPO step.
    pub fn batch_size(&self) -> usize {
        self.mini_batch_size() * self.num_mini_batches
    }

    /// Episodes per minibatch (one optimiser step).
    pub fn mini_batch_size(&self) -> usize {
        self.per_device_train_batch_size * self.gradient_accumulation_steps
    }

    /// Episodes in the whole run, given the number of prompts.
    pub fn episodes(&self, num_prompts: usize) -> usize {
        self.total_episodes
            .unwrap_or_else(|| (self.num_train_epochs * num_prompts as f64).round() as usize)
    }

    /// PPO steps in the whole run (at least one), given the number of prompts.
    pub fn total_steps(&self, num_prompts: usize) -> u64 {
        (self.episodes(num_prompts) / self.batch_size()).max(1) as u64
    }

    /// The critic's learning rate.
    pub fn critic_lr(&self) -> f64 {
        self.critic_learning_rate.unwrap_or(self.learning_rate)
    }

    /// Checks every field; the error names the field and what was expected.
    pub fn validate(&self) -> TrainResult<()> {
        let positive = [
            (
                "per_device_train_batch_size",
                self.per_device_train_batch_size,
            ),
            (
                "gradient_accumulation_steps",
                self.gradient_accumulation_steps,
            ),
            ("num_mini_batches", self.num_mini_batches),
            ("num_ppo_epochs", self.num_ppo_epochs),
            (
                "local_rollout_forward_batch_size",
                self.local_rollout_forward_batch_size,
            ),
            ("response_length", self.response_length),
            ("ptx_batch_size", self.ptx_batch_size),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(TrainError::config(field, "expected at least 1, got 0"));
            }
        }
        if self.ptx_seq_len < 2 {
            return Err(TrainError::config(
                "ptx_seq_len",
                format!("expected at least 2, got {}", self.ptx_seq_len),
            ));
        }
        let check = |field: &'static str, value: f64, ok: bool, expected: &str| {
            if ok && value.is_finite() {
                Ok(())
            } else {
                Err(TrainError::config(
                    field,
                    format!("expected {expected}, got {value}"),
                ))
            }
        };
        check(
            "learning_rate",
            self.learning_rate,
            self.learning_rate >= 0.0,
            "a finite rate >= 0",
        )?;
        check(
            "critic_learning_rate",
            self.critic_lr(),
            self.critic_lr() >= 0.0,
            "a finite rate >= 0",
        )?;
        check(
            "adam_epsilon",
            self.adam_epsilon,
            self.adam_epsilon > 0.0,
            "> 0",
        )?;
        check(
            "weight_decay",
            self.weight_decay,
            self.weight_decay >= 0.0,
            ">= 0",
        )?;
        check(
            "max_grad_norm",
            self.max_grad_norm,
            self.max_grad_norm >= 0.0,
            ">= 0 (0 = no clipping)",
        )?;
        check(
            "num_train_epochs",
            self.num_train_epochs,
            self.num_train_epochs > 0.0,
            "> 0",
        )?;
        check(
            "temperature",
            self.temperature,
            self.temperature > 0.0,
            "> 0 (PPO needs sampled responses and their log-probs)",
        )?;
        if let Some(p) = self.missing_eos_penalty {
            check("missing_eos_penalty", p, true, "a finite number")?;
        }
        check("kl_coef", self.kl_coef, self.kl_coef >= 0.0, ">= 0")?;
        if let Some(c) = self.kl_clamp {
            check("kl_clamp", c, c > 0.0, "> 0")?;
        }
        check("target", self.target, self.target > 0.0, "> 0")?;
        check("horizon", self.horizon, self.horizon > 0.0, "> 0")?;
        check(
            "cliprange",
            self.cliprange,
            self.cliprange > 0.0 && self.cliprange < 1.0,
            "a number in (0, 1)",
        )?;
        check(
            "cliprange_value",
            self.cliprange_value,
            self.cliprange_value > 0.0,
            "> 0",
        )?;
        check("vf_coef", self.vf_coef, self.vf_coef >= 0.0, ">= 0")?;
        check(
            "gamma",
            self.gamma,
            (0.0..=1.0).contains(&self.gamma),
            "a number in [0, 1]",
        )?;
        check(
            "lam",
            self.lam,
            (0.0..=1.0).contains(&self.lam),
            "a number in [0, 1]",
        )?;
        check(
            "entropy_coef",
            self.entropy_coef,
            self.entropy_coef >= 0.0,
            ">= 0",
        )?;
        check("ptx_coef", self.ptx_coef, self.ptx_coef >= 0.0, ">= 0")?;
        if self.total_episodes == Some(0) {
            return Err(TrainError::config("total_episodes", "expected at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_trls_and_round_trip_through_toml() {
        let config = PpoConfig::default();
        assert_eq!(
            (
                config.kl_coef,
                config.cliprange,
                config.cliprange_value,
                config.vf_coef
            ),
            (0.05, 0.2, 0.2, 0.1)
        );
        assert_eq!(
            (config.gamma, config.lam, config.num_ppo_epochs),
            (1.0, 0.95, 4)
        );
        assert_eq!((config.temperature, config.response_length), (0.7, 53));
        assert!(!config.whiten_rewards && config.missing_eos_penalty.is_none());
        let text = config.to_toml();
        assert_eq!(PpoConfig::from_toml_str(&text, None).unwrap(), config);
        assert_eq!(config.batch_size(), 8);
        assert_eq!(config.total_steps(100), 12);
    }

    #[test]
    fn errors_name_the_field() {
        let err = PpoConfig::from_toml_str("kl_coeff = 0.1", Some(Path::new("ppo.toml")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ppo.toml") && err.contains("kl_coeff"),
            "{err}"
        );
        let err = PpoConfig::from_toml_str("\n\nnum_ppo_epochs = \"four\"", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("num_ppo_epochs") && err.contains("line 3"),
            "{err}"
        );
        let err = PpoConfig::from_toml_str("lam = 2.0", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`lam`") && err.contains("[0, 1]"), "{err}");
        let err = PpoConfig::from_toml_str("kl_estimator = \"k9\"", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("k9"), "{err}");
        let config = PpoConfig::from_toml_str(
            "critic = \"shared\"\nlr_scheduler_type = \"constant\"\nkl_estimator = \"k3\"",
            None,
        )
        .unwrap();
        assert_eq!(config.critic, CriticKind::Shared);
        assert_eq!(config.kl_estimator, KlEstimator::K3);
    }
}
