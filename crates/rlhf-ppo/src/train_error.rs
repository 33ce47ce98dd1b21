//! The error type of the trainer, rollouts, checkpoints and configs: each failure names the file,
//! field or step and what was expected. The math's own refusals come through as [`PpoError`].

use std::path::PathBuf;

use rlhf_reward::RewardError;
use rlhf_transformer::ModelError;

use crate::PpoError;

/// Why PPO training (config, rollout, update, checkpoint) failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A PPO math function refused its inputs.
    #[error(transparent)]
    Math(#[from] PpoError),
    /// A tensor operation failed (shape, dtype or device).
    #[error(transparent)]
    Tensor(#[from] rlhf_tensor::TensorError),
    /// The model (forward, generation, checkpoint) failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The reward function could not score the rollout.
    #[error("reward function: {0}")]
    Reward(#[from] RewardError),
    /// A config field is out of range or inconsistent with another.
    #[error("invalid PPO config: `{field}`: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What was wrong and what was expected.
        reason: String,
    },
    /// A config file could not be parsed (the message carries line, column and field).
    #[error("{path}: {message}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// Inputs to the trainer are unusable (no prompts, ids outside the vocabulary, ...).
    #[error("invalid input: {0}")]
    Input(String),
    /// A checkpoint is missing a part or does not match this run.
    #[error("{path}: {reason}")]
    Checkpoint {
        /// The file or directory.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Too many updates had a NaN or infinite loss or gradient.
    #[error(
        "stopped at step {step}: {skipped} updates skipped for a non-finite loss or gradient (limit {limit}); last: {last}"
    )]
    NonFinite {
        /// The PPO step where the limit was reached.
        step: u64,
        /// Updates skipped so far.
        skipped: u64,
        /// The configured limit (`max_skipped_updates`).
        limit: u64,
        /// What was non-finite the last time.
        last: String,
    },
}

impl TrainError {
    /// Shorthand for [`TrainError::Config`].
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        TrainError::Config {
            field,
            reason: reason.into(),
        }
    }

    /// Shorthand for [`TrainError::Io`].
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result of the trainer's calls.
pub type TrainResult<T> = std::result::Result<T, TrainError>;
