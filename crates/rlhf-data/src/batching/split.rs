//! Deterministic train / validation / test splits by hashing item ids.
//!
//! The hash is FNV-1a (64-bit) over the id's UTF-8 bytes followed by the SplitMix64 finalizer
//! (FNV alone mixes its high bits poorly for ids that differ in the last character). Both are
//! fixed functions with no per-process key, unlike `std`'s `RandomState`, so the same item lands
//! in the same split on every machine and in every run; adding items never moves old ones.

use super::BatchError;
use serde::{Deserialize, Serialize};

/// FNV-1a, 64-bit.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(PRIME)
    })
}

/// The SplitMix64 finalizer: a bijective mix of all 64 bits.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Which part of the data an item belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Training data.
    Train,
    /// Validation data (model selection, early stopping).
    Validation,
    /// Held-out test data.
    Test,
}

/// Fractions of items in validation and test; the rest is training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitFractions {
    /// Fraction in validation, in [0, 1].
    pub validation: f64,
    /// Fraction in test, in [0, 1].
    pub test: f64,
}

impl Default for SplitFractions {
    fn default() -> Self {
        Self {
            validation: 0.1,
            test: 0.1,
        }
    }
}

impl SplitFractions {
    /// Checks the fractions are finite, non-negative and add up to at most 1.
    pub fn validate(&self) -> Result<(), BatchError> {
        let ok = |f: f64| f.is_finite() && f >= 0.0;
        if ok(self.validation) && ok(self.test) && self.validation + self.test <= 1.0 {
            Ok(())
        } else {
            Err(BatchError::BadFractions {
                validation: self.validation,
                test: self.test,
            })
        }
    }
}

/// The split of the item with id `item_id`.
///
/// ```
/// use rlhf_data::batching::{Split, SplitFractions, split_of};
/// let fractions = SplitFractions { validation: 0.1, test: 0.1 };
/// let split = split_of("hh-000042", &fractions)?;
/// assert_eq!(split, split_of("hh-000042", &fractions)?); // the same on every machine
/// # Ok::<(), rlhf_data::batching::BatchError>(())
/// ```
pub fn split_of(item_id: &str, fractions: &SplitFractions) -> Result<Split, BatchError> {
    fractions.validate()?;
    // A uniform number in [0, 1) from the top 53 bits of the mixed hash.
    let u = (mix64(fnv1a_64(item_id.as_bytes())) >> 11) as f64 / (1u64 << 53) as f64;
    Ok(if u < fractions.test {
        Split::Test
    } else if u < fractions.test + fractions.validation {
        Split::Validation
    } else {
        Split::Train
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_published_test_vectors() {
        assert_eq!(fnv1a_64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn split_sizes_follow_the_fractions() {
        let fractions = SplitFractions {
            validation: 0.2,
            test: 0.1,
        };
        let mut counts = [0usize; 3];
        for i in 0..20_000 {
            match split_of(&format!("item-{i}"), &fractions).unwrap() {
                Split::Train => counts[0] += 1,
                Split::Validation => counts[1] += 1,
                Split::Test => counts[2] += 1,
            }
        }
        // Binomial standard deviations are about 57 and 42; allow 5 of them.
        assert!((13_700..14_300).contains(&counts[0]), "{counts:?}");
        assert!((3_700..4_300).contains(&counts[1]), "{counts:?}");
        assert!((1_790..2_210).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn bad_fractions_are_rejected() {
        let bad = SplitFractions {
            validation: 0.7,
            test: 0.4,
        };
        assert!(split_of("x", &bad).is_err());
        let nan = SplitFractions {
            validation: f64::NAN,
            test: 0.0,
        };
        assert!(split_of("x", &nan).is_err());
        let all_test = SplitFractions {
            validation: 0.0,
            test: 1.0,
        };
        assert_eq!(split_of("x", &all_test).unwrap(), Split::Test);
    }
}
