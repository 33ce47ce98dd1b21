//! Why a collective failed: every error names the rank that saw it and, where one is involved,
//! the peer rank or the rendezvous file.

use std::path::PathBuf;

use crate::TensorError;

/// A failed rendezvous, collective or backend setup.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// The rendezvous file could not be written, read, or did not appear in time.
    #[error("rank {rank}: rendezvous through {path}: {reason}")]
    Rendezvous {
        /// The rank that failed.
        rank: usize,
        /// The rendezvous file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A connection to a peer broke, timed out or carried an unexpected message (the peer died,
    /// hung, or called another collective).
    #[error("rank {rank}: {op} with rank {peer}: {reason}")]
    Peer {
        /// The rank that saw the failure.
        rank: usize,
        /// The peer it was talking to.
        peer: usize,
        /// The collective.
        op: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The NCCL library is missing or one of its calls failed.
    #[error("rank {rank}: NCCL: {reason}")]
    Nccl {
        /// The rank that failed.
        rank: usize,
        /// What went wrong.
        reason: String,
    },
    /// A bad argument: world size, rank, lengths, a tensor on the wrong device or of the wrong
    /// dtype.
    #[error("{op}: {reason}")]
    Invalid {
        /// The call.
        op: &'static str,
        /// What was wrong and what was expected.
        reason: String,
    },
    /// A tensor op failed while packing or unpacking buffers.
    #[error(transparent)]
    Tensor(#[from] TensorError),
}

/// Result of a collective.
pub type Result<T> = std::result::Result<T, DistError>;

impl DistError {
    /// Shorthand for [`DistError::Invalid`].
    pub fn invalid(op: &'static str, reason: impl Into<String>) -> Self {
        DistError::Invalid {
            op,
            reason: reason.into(),
        }
    }
}
