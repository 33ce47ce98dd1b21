//! The crate's error type: every failure names the function, the argument and what was expected.

/// Why a reward-model loss or metric refused its inputs.
#[derive(Debug, thiserror::Error)]
pub enum RewardError {
    /// An argument's length does not match the others (e.g. rejected rewards against chosen).
    #[error("{op}: `{field}` has {found} elements, expected {expected}")]
    Length {
        /// The function that checked the lengths.
        op: &'static str,
        /// The argument whose length is wrong.
        field: &'static str,
        /// The length it should have.
        expected: usize,
        /// The length it has.
        found: usize,
    },
    /// An element or a hyper-parameter is out of its domain.
    #[error("{op}: `{field}`{at} is {value}, expected {expected}")]
    OutOfRange {
        /// The function.
        op: &'static str,
        /// The argument.
        field: &'static str,
        /// Where in the argument, as text (e.g. " element 3"; empty for a scalar).
        at: String,
        /// The value given.
        value: f64,
        /// The domain, in words.
        expected: &'static str,
    },
    /// Nothing to average over: no pairs, no labelled entries, or an empty batch.
    #[error("{op}: {what}")]
    Empty {
        /// The function.
        op: &'static str,
        /// What is missing, naming the group or argument.
        what: String,
    },
    /// A reward function could not score an episode.
    #[error("reward `{scorer}`: {message}")]
    Scoring {
        /// The reward function's name.
        scorer: String,
        /// What went wrong, naming the episode.
        message: String,
    },
    /// A tensor operation failed (shape, dtype or device).
    #[error(transparent)]
    Tensor(#[from] rlhf_tensor::TensorError),
    /// The transformer refused an input, a checkpoint or a config.
    #[error(transparent)]
    Model(#[from] rlhf_transformer::ModelError),
    /// A data file could not be read (file, line and field named).
    #[error(transparent)]
    Data(#[from] rlhf_data::DataError),
    /// A setting is out of its domain.
    #[error("reward config: `{field}`: {message}")]
    Config {
        /// The setting.
        field: &'static str,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A record or an example cannot be used, naming where it came from.
    #[error("{0}")]
    Input(String),
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error (in the message, not repeated as a source).
        error: std::io::Error,
    },
    /// A JSON file is malformed.
    #[error("{path}: {error}")]
    Json {
        /// The file.
        path: std::path::PathBuf,
        /// The parser's message, with line and column.
        error: serde_json::Error,
    },
}

impl RewardError {
    /// A config error on `field`.
    pub fn config(field: &'static str, message: impl Into<String>) -> RewardError {
        RewardError::Config {
            field,
            message: message.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: &std::path::Path, error: std::io::Error) -> RewardError {
        RewardError::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}

/// Result of a reward-model computation.
pub type Result<T> = std::result::Result<T, RewardError>;
