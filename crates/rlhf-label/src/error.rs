//! Errors of the labeling app: task files (file, line, field, what was expected), the database,
//! and requests that break a rule of the API.

use std::path::PathBuf;

/// Anything that can go wrong outside the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// A task file line is malformed or breaks a rule.
    #[error("{file}:{line}: field `{field}`: expected {expected}")]
    TaskFile {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: u64,
        /// Dotted path of the offending field (`(line)` for the whole line).
        field: String,
        /// What a valid value looks like, and what was found.
        expected: String,
    },
    /// A task file could not be read (or an rlhf-data reader failed).
    #[error(transparent)]
    Data(#[from] rlhf_data::DataError),
    /// A file could not be read or written.
    #[error("{file}: {action}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite refused an operation.
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    /// The database holds something this version cannot read.
    #[error("database: {0}")]
    Corrupt(String),
    /// A request or an argument is invalid; `field` names what is wrong.
    #[error("field `{field}`: {reason}")]
    Invalid {
        /// The offending field.
        field: String,
        /// Why, in words.
        reason: String,
    },
    /// No such assignment for this rater.
    #[error("{0}")]
    NotFound(String),
    /// A name is already taken.
    #[error("{0}")]
    Conflict(String),
}

impl LabelError {
    /// An [`LabelError::Invalid`] at `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        LabelError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Results of this crate.
pub type Result<T, E = LabelError> = std::result::Result<T, E>;
