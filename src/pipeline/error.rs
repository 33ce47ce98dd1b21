//! [`PipelineError`]: every way a pipeline stage can fail, naming the field, file or stage.

use std::path::{Path, PathBuf};

/// An error of the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A config field has a bad value or is unknown.
    #[error("config field `{field}`: {message}")]
    Config {
        /// Dotted path of the field (or the file, for a syntax error).
        field: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A stage needs a file an earlier stage writes.
    #[error("stage `{stage}` needs {} (written by stage `{needs}`; run it first)", path.display())]
    MissingInput {
        /// The stage that was asked to run.
        stage: &'static str,
        /// The stage that writes the input.
        needs: &'static str,
        /// The missing file or directory.
        path: PathBuf,
    },
    /// A file of the run directory does not parse.
    #[error("{}: {message}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The model, its training or generation failed.
    #[error(transparent)]
    Model(#[from] rlhf_transformer::ModelError),
    /// The world refused a config or a prompt.
    #[error(transparent)]
    World(#[from] rlhf_data::world::WorldError),
    /// A data file or record failed.
    #[error(transparent)]
    Data(#[from] rlhf_data::DataError),
    /// The tokenizer failed.
    #[error(transparent)]
    Tokenizer(#[from] rlhf_data::tokenizer::TokenizerError),
    /// A rater statistic failed.
    #[error(transparent)]
    Raters(#[from] rlhf_raters::RatersError),
    /// The reward model, its training or scoring failed.
    #[error(transparent)]
    Reward(#[from] rlhf_reward::RewardError),
    /// A tensor op refused its inputs.
    #[error(transparent)]
    Tensor(#[from] rlhf_tensor::TensorError),
    /// PPO failed.
    #[error(transparent)]
    Ppo(#[from] rlhf_ppo::TrainError),
    /// Drawing a plot failed.
    #[error("plot {}: {message}", path.display())]
    Plot {
        /// The PNG file.
        path: PathBuf,
        /// What the plotting library said.
        message: String,
    },
    /// The run was stopped on purpose after a stage (`--halt-after`).
    #[error("halted after {0} as asked (--halt-after)")]
    Halted(String),
}

/// The pipeline's result type.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;

impl PipelineError {
    /// A config error at `field`.
    pub fn config(field: &str, message: impl Into<String>) -> Self {
        PipelineError::Config {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        PipelineError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A file that does not parse.
    pub fn bad_file(path: &Path, message: impl std::fmt::Display) -> Self {
        PipelineError::BadFile {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}
