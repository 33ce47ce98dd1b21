//! The crate's error type: every failure names the op and what it expected.

use crate::{DType, Device, Shape};

/// Why a tensor operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TensorError {
    /// Two shapes that must agree do not; both are named.
    #[error("{op}: shape mismatch: {detail} (got {left} and {right})")]
    ShapeMismatch {
        /// The operation that checked the shapes.
        op: &'static str,
        /// What had to agree.
        detail: String,
        /// The first shape involved.
        left: Shape,
        /// The second shape involved.
        right: Shape,
    },
    /// A tensor has a shape the op cannot take, whatever the other operands are.
    #[error("{op}: invalid shape {shape}: expected {expected}")]
    InvalidShape {
        /// The operation that checked the shape.
        op: &'static str,
        /// The shape that was given.
        shape: Shape,
        /// What was expected instead.
        expected: String,
    },
    /// The op computes in one dtype and was given another.
    #[error("{op}: expected dtype {expected}, found {found}; convert with `to_dtype` first")]
    DTypeMismatch {
        /// The operation.
        op: &'static str,
        /// The dtype the op computes in.
        expected: DType,
        /// The dtype it was given.
        found: DType,
    },
    /// Operands live on different devices.
    #[error("{op}: operands on different devices ({left} and {right})")]
    DeviceMismatch {
        /// The operation.
        op: &'static str,
        /// The first device involved.
        left: Device,
        /// The second device involved.
        right: Device,
    },
    /// The op is not available on this device (yet).
    #[error("{op} is not available on {device}")]
    Unsupported {
        /// The operation.
        op: &'static str,
        /// The device it was asked to run on.
        device: Device,
    },
    /// Any other bad argument: a length, an index, a hyper-parameter.
    #[error("{op}: {reason}")]
    InvalidArgument {
        /// The operation.
        op: &'static str,
        /// What was wrong.
        reason: String,
    },
}

/// Result of a tensor operation.
pub type Result<T> = std::result::Result<T, TensorError>;

impl TensorError {
    /// Shorthand for [`TensorError::InvalidArgument`].
    pub fn invalid(op: &'static str, reason: impl Into<String>) -> Self {
        TensorError::InvalidArgument {
            op,
            reason: reason.into(),
        }
    }
}
