//! The crate's error type: every failure names the function, the argument and what was expected.

/// Why a PPO computation refused its inputs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PpoError {
    /// An argument's length does not match the others (e.g. values (B, T) against a mask (B, T)).
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
    /// A mask holds something other than 0 or 1.
    #[error("{op}: `{field}` element {index} is {value}, expected 0 or 1")]
    InvalidMask {
        /// The function that checked the mask.
        op: &'static str,
        /// The mask argument.
        field: &'static str,
        /// Row-major index of the bad element.
        index: usize,
        /// The value found.
        value: f64,
    },
    /// A mask keeps no element (or, where noted, a row keeps none), so a mean is undefined.
    #[error("{op}: `{field}` keeps {kept} element(s){where_}, expected at least {needed}")]
    TooFewKept {
        /// The function.
        op: &'static str,
        /// The mask argument.
        field: &'static str,
        /// How many elements it keeps.
        kept: usize,
        /// How many are needed (1 for a mean, 2 for an unbiased variance).
        needed: usize,
        /// The row concerned, as text (empty when the whole mask is meant).
        where_: String,
    },
    /// A hyper-parameter or value is out of its domain.
    #[error("{op}: `{field}` is {value}, expected {expected}")]
    OutOfRange {
        /// The function or constructor.
        op: &'static str,
        /// The parameter.
        field: &'static str,
        /// The value given.
        value: f64,
        /// The domain, in words.
        expected: &'static str,
    },
    /// A tensor operation failed (shape, dtype or device).
    #[error(transparent)]
    Tensor(#[from] rlhf_tensor::TensorError),
}

/// Result of a PPO computation.
pub type Result<T> = std::result::Result<T, PpoError>;
