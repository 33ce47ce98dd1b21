//! Typed errors of the crate. Every input error names the file, the line and the field.

use std::path::PathBuf;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum RatersError {
    /// A file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A record of an input file is malformed.
    #[error("{path}:{line}: field `{field}`: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number (the CSV header is line 1).
        line: u64,
        /// The field (column or JSON key) at fault.
        field: String,
        /// What was found and what was expected.
        message: String,
    },
    /// The input is well-formed but cannot be used for the requested computation.
    #[error("invalid input: {0}")]
    Invalid(String),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, RatersError>;
