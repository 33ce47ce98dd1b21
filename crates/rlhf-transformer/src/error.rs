//! The crate's error type: every failure names the file, tensor or field and what was expected.

use std::path::PathBuf;

use rlhf_tensor::TensorError;

/// Why a model, checkpoint, generation or training call failed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A tensor op refused its inputs.
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// A collective between data-parallel ranks failed.
    #[error(transparent)]
    Dist(#[from] rlhf_tensor::dist::DistError),
    /// The configuration is inconsistent.
    #[error("invalid config: {field}: {reason}")]
    Config {
        /// The offending field.
        field: &'static str,
        /// What was wrong and what was expected.
        reason: String,
    },
    /// An input batch is malformed (lengths, ids, masks).
    #[error("invalid input: {0}")]
    Input(String),
    /// A checkpoint tensor is missing, misnamed, of the wrong shape or dtype.
    #[error("{path}: tensor `{tensor}`: {reason}")]
    Checkpoint {
        /// The file read or written.
        path: PathBuf,
        /// The tensor's name in the file.
        tensor: String,
        /// What was wrong and what was expected.
        reason: String,
    },
    /// A JSON file (config, trainer state) could not be parsed.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error (carries line and column).
        source: serde_json::Error,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Result of this crate's calls.
pub type Result<T> = std::result::Result<T, ModelError>;

impl ModelError {
    /// Shorthand for [`ModelError::Io`].
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.into(),
            source,
        }
    }

    /// Shorthand for [`ModelError::Config`].
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        ModelError::Config {
            field,
            reason: reason.into(),
        }
    }
}
