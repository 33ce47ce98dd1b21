//! Argument checks shared by the losses and metrics.

use rlhf_tensor::Float;

use crate::{Result, RewardError};

/// A float as f64 for error messages and metrics (NaN if it cannot be represented).
pub(crate) fn as_f64<T: Float>(value: T) -> f64 {
    value.to_f64().unwrap_or(f64::NAN)
}

/// Checks that `field` has `expected` elements.
pub(crate) fn len(
    op: &'static str,
    field: &'static str,
    found: usize,
    expected: usize,
) -> Result<()> {
    if found == expected {
        Ok(())
    } else {
        Err(RewardError::Length {
            op,
            field,
            expected,
            found,
        })
    }
}

/// Checks a scalar hyper-parameter (`ok` says whether it is in its domain; NaN never is).
pub(crate) fn scalar(
    op: &'static str,
    field: &'static str,
    value: f64,
    ok: bool,
    expected: &'static str,
) -> Result<()> {
    if ok && !value.is_nan() {
        Ok(())
    } else {
        Err(RewardError::OutOfRange {
            op,
            field,
            at: String::new(),
            value,
            expected,
        })
    }
}

/// Checks that every element of `values` satisfies `ok`, naming the first that does not.
pub(crate) fn each<T: Float>(
    op: &'static str,
    field: &'static str,
    values: &[T],
    ok: impl Fn(T) -> bool,
    expected: &'static str,
) -> Result<()> {
    match values.iter().position(|&v| !ok(v)) {
        None => Ok(()),
        Some(index) => Err(RewardError::OutOfRange {
            op,
            field,
            at: format!(" element {index}"),
            value: as_f64(values[index]),
            expected,
        }),
    }
}
