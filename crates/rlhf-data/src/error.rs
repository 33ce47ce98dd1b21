//! Errors of reading, checking and writing feedback files: each names the file, the line, the
//! field and what was expected there.

use std::io;
use std::path::PathBuf;

/// Anything that can go wrong with a feedback file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened, read or written.
    #[error("{file}: {action}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// What was being done (`cannot open`, `cannot read`, `cannot write`...).
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A record is malformed or breaks an invariant.
    #[error("{file}:{line}: field `{field}`: expected {expected}")]
    Record {
        /// The file.
        file: PathBuf,
        /// 1-based line where the record starts.
        line: u64,
        /// Dotted path of the offending field (`(line)` when the whole line is unreadable).
        field: String,
        /// What a valid value looks like, and what was found.
        expected: String,
    },
    /// The format could not be told from the content.
    #[error("{file}:{line}: cannot tell the format: expected {expected}")]
    UnknownFormat {
        /// The file.
        file: PathBuf,
        /// The line looked at.
        line: u64,
        /// The formats that were tried.
        expected: String,
    },
    /// A record cannot be written in the requested output format.
    #[error("{file}: record {index} ({kind}): cannot be written as {format}: {reason}")]
    Unrepresentable {
        /// The output file.
        file: PathBuf,
        /// 0-based index of the record among those written.
        index: u64,
        /// The record's kind.
        kind: &'static str,
        /// The output format.
        format: &'static str,
        /// Why not.
        reason: String,
    },
}

impl DataError {
    /// The 1-based line of a record error, if this is one.
    pub fn line(&self) -> Option<u64> {
        match self {
            DataError::Record { line, .. } | DataError::UnknownFormat { line, .. } => Some(*line),
            _ => None,
        }
    }
}
