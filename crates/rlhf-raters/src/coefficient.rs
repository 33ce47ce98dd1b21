//! [`Coefficient`]: a statistic that is either a finite value or explicitly undefined.

use serde::{Deserialize, Serialize};

/// A statistic that is either a finite number or undefined with a reason; never NaN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Coefficient {
    /// A finite value.
    Value(f64),
    /// The statistic is undefined on this data; the string says why.
    Undefined(String),
}

impl Coefficient {
    /// Builds a value, turning a non-finite number into `Undefined` with `reason`.
    pub fn checked(value: f64, reason: &str) -> Self {
        if value.is_finite() {
            Coefficient::Value(value)
        } else {
            Coefficient::Undefined(reason.to_string())
        }
    }

    /// Builds an undefined coefficient.
    pub fn undefined(reason: impl Into<String>) -> Self {
        Coefficient::Undefined(reason.into())
    }

    /// The value, if defined.
    pub fn value(&self) -> Option<f64> {
        match self {
            Coefficient::Value(v) => Some(*v),
            Coefficient::Undefined(_) => None,
        }
    }

    /// True when the coefficient has a value.
    pub fn is_defined(&self) -> bool {
        matches!(self, Coefficient::Value(_))
    }

    /// Applies `f` to a defined value; keeps an undefined reason.
    pub fn map(&self, f: impl FnOnce(f64) -> f64, reason: &str) -> Coefficient {
        match self {
            Coefficient::Value(v) => Coefficient::checked(f(*v), reason),
            Coefficient::Undefined(r) => Coefficient::Undefined(r.clone()),
        }
    }
}

/// `(observed - expected) / (1 - expected)`, the chance-corrected form shared by kappa-like
/// coefficients; undefined when the expected agreement is 1 (no room for agreement beyond chance).
pub fn chance_corrected(observed: f64, expected: f64) -> Coefficient {
    if (1.0 - expected).abs() < 1e-12 {
        Coefficient::undefined("expected agreement is 1: every rating falls in one category")
    } else {
        Coefficient::checked(
            (observed - expected) / (1.0 - expected),
            "non-finite chance-corrected agreement",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_becomes_undefined() {
        assert!(!Coefficient::checked(f64::NAN, "x").is_defined());
        assert_eq!(Coefficient::checked(0.5, "x").value(), Some(0.5));
        assert!(!chance_corrected(1.0, 1.0).is_defined());
        assert_eq!(chance_corrected(0.75, 0.5).value(), Some(0.5));
    }
}
