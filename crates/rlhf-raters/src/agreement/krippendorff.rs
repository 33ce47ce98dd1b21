//! Krippendorff's alpha at the nominal, ordinal, interval and ratio levels, with missing data,
//! from the coincidence matrix (Krippendorff 2011, "Computing Krippendorff's alpha-reliability"):
//!
//! `o_ck = sum_u sum_{i != j in u} [v_ui = c][v_uj = k] / (m_u - 1)` over units with `m_u >= 2`,
//! `n_c = sum_k o_ck`, `n = sum_c n_c`, and
//! `alpha = 1 - (n - 1) * sum_ck o_ck d2_ck / sum_ck n_c n_k d2_ck`.
//!
//! Difference functions `d2_ck`: nominal `[c != k]`; ordinal (the marginal-sum form of the 2011
//! paper) `(sum_{g=c..k} n_g - (n_c + n_k)/2)^2` over categories ranked by value; interval
//! `(v_c - v_k)^2`; ratio `((v_c - v_k)/(v_c + v_k))^2` (non-negative values only).

use serde::{Deserialize, Serialize};

use crate::agreement::tally::Tally;
use crate::coefficient::Coefficient;

/// Level of measurement of the labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Unordered categories.
    Nominal,
    /// Ordered categories (ranks).
    Ordinal,
    /// Equal-interval numbers.
    Interval,
    /// Numbers with a true zero.
    Ratio,
}

impl Level {
    /// All four levels, in the order above.
    pub const ALL: [Level; 4] = [
        Level::Nominal,
        Level::Ordinal,
        Level::Interval,
        Level::Ratio,
    ];

    /// Lower-case name (`nominal`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Level::Nominal => "nominal",
            Level::Ordinal => "ordinal",
            Level::Interval => "interval",
            Level::Ratio => "ratio",
        }
    }
}

impl std::str::FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Level::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| {
                format!("unknown level `{s}`; expected nominal, ordinal, interval or ratio")
            })
    }
}

/// Alpha with its observed and expected disagreement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alpha {
    /// The level of measurement.
    pub level: Level,
    /// The coefficient.
    pub alpha: Coefficient,
    /// Observed disagreement `D_o = sum o_ck d2_ck / n`.
    pub observed_disagreement: Option<f64>,
    /// Expected disagreement `D_e = sum n_c n_k d2_ck / (n (n - 1))`.
    pub expected_disagreement: Option<f64>,
    /// Number of pairable values `n`.
    pub pairable_values: f64,
}

/// The squared difference matrix `d2` (K, K) of a level, or why it is undefined.
fn difference_matrix(
    level: Level,
    values: Option<&[f64]>,
    marginals: &[f64],
) -> Result<Vec<f64>, String> {
    let k = marginals.len();
    let mut d2 = vec![0.0; k * k];
    if level == Level::Nominal {
        for c in 0..k {
            for e in 0..k {
                d2[c * k + e] = if c == e { 0.0 } else { 1.0 };
            }
        }
        return Ok(d2);
    }
    let Some(v) = values else {
        return Err(format!("{} level needs numeric labels", level.name()));
    };
    if level == Level::Ratio && v.iter().any(|&x| x < 0.0) {
        return Err("ratio level needs non-negative labels".into());
    }
    // Prefix sums of marginals for the ordinal metric (categories are in ascending value order).
    let mut prefix = vec![0.0; k + 1];
    for c in 0..k {
        prefix[c + 1] = prefix[c] + marginals[c];
    }
    for c in 0..k {
        for e in 0..k {
            let (lo, hi) = (c.min(e), c.max(e));
            d2[c * k + e] = match level {
                Level::Nominal => unreachable!("handled above"),
                Level::Ordinal => {
                    let s = prefix[hi + 1] - prefix[lo] - (marginals[lo] + marginals[hi]) / 2.0;
                    if c == e { 0.0 } else { s * s }
                }
                Level::Interval => (v[c] - v[e]).powi(2),
                Level::Ratio => {
                    let sum = v[c] + v[e];
                    if sum == 0.0 {
                        0.0
                    } else {
                        ((v[c] - v[e]) / sum).powi(2)
                    }
                }
            };
        }
    }
    Ok(d2)
}

/// Krippendorff's alpha at `level` from a tally; `values` are the category values (ascending).
pub fn alpha_from_tally(t: &Tally, values: Option<&[f64]>, level: Level) -> Alpha {
    let marginals = t.coincidence_marginals();
    let n: f64 = marginals.iter().sum();
    let undefined = |reason: String| Alpha {
        level,
        alpha: Coefficient::Undefined(reason),
        observed_disagreement: None,
        expected_disagreement: None,
        pairable_values: n,
    };
    if n <= 1.0 {
        return undefined("no unit has two or more values: nothing is pairable".into());
    }
    let d2 = match difference_matrix(level, values, &marginals) {
        Ok(d) => d,
        Err(reason) => return undefined(reason),
    };
    let k = t.k;
    let (mut observed, mut expected) = (0.0, 0.0);
    for c in 0..k {
        for e in 0..k {
            let d = d2[c * k + e];
            observed += t.coincidence[c * k + e] * d;
            expected += marginals[c] * marginals[e] * d;
        }
    }
    let d_o = observed / n;
    let d_e = expected / (n * (n - 1.0));
    if d_e <= 0.0 {
        return undefined("all pairable values are identical: expected disagreement is 0".into());
    }
    Alpha {
        level,
        alpha: Coefficient::checked(1.0 - d_o / d_e, "non-finite alpha"),
        observed_disagreement: Some(d_o),
        expected_disagreement: Some(d_e),
        pairable_values: n,
    }
}
