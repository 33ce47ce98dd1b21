//! Argument checks shared by the kernels: lengths and 0/1 masks.

use rlhf_tensor::Float;

use crate::{PpoError, Result};

/// A float as f64 for error messages (NaN if it cannot be represented).
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
        Err(PpoError::Length {
            op,
            field,
            expected,
            found,
        })
    }
}

/// Checks that every element of `mask` is 0 or 1 and returns how many are 1.
pub(crate) fn mask<T: Float>(op: &'static str, field: &'static str, mask: &[T]) -> Result<usize> {
    let mut kept = 0;
    for (index, &m) in mask.iter().enumerate() {
        if m == T::one() {
            kept += 1;
        } else if m != T::zero() {
            return Err(PpoError::InvalidMask {
                op,
                field,
                index,
                value: as_f64(m),
            });
        }
    }
    Ok(kept)
}

/// Checks the mask like [`mask`] and that it keeps at least `needed` elements.
pub(crate) fn mask_keeping<T: Float>(
    op: &'static str,
    field: &'static str,
    values: &[T],
    needed: usize,
) -> Result<usize> {
    let kept = mask(op, field, values)?;
    if kept < needed {
        return Err(PpoError::TooFewKept {
            op,
            field,
            kept,
            needed,
            where_: String::new(),
        });
    }
    Ok(kept)
}

/// Checks that a hyper-parameter lies in its domain (`ok` says whether it does).
pub(crate) fn range(
    op: &'static str,
    field: &'static str,
    value: f64,
    ok: bool,
    expected: &'static str,
) -> Result<()> {
    if ok && !value.is_nan() {
        Ok(())
    } else {
        Err(PpoError::OutOfRange {
            op,
            field,
            value,
            expected,
        })
    }
}

/// Checks that `numel` elements form whole rows of `response_len` (B, T) and returns B.
pub(crate) fn rows(
    op: &'static str,
    field: &'static str,
    numel: usize,
    response_len: usize,
) -> Result<usize> {
    range(
        op,
        "response_len",
        response_len as f64,
        response_len > 0,
        "at least 1",
    )?;
    if !numel.is_multiple_of(response_len) {
        return Err(PpoError::Length {
            op,
            field,
            expected: numel.next_multiple_of(response_len),
            found: numel,
        });
    }
    Ok(numel / response_len)
}
