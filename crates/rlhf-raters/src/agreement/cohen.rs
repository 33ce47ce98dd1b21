//! Two-rater coefficients from a K x K contingency table: Cohen's kappa (unweighted, linear,
//! quadratic) with the large-sample standard errors of Fleiss, Cohen & Everitt (1969), both the
//! general one (for confidence intervals) and the one under H0 (for z), exactly as SAS PROC FREQ
//! and statsmodels report them; Scott's pi; Gwet's AC1; Brennan–Prediger; percent agreement.
//!
//! Weights are agreement weights on category ranks `i, j` in `0..K`:
//! linear `1 - |i - j| / (K - 1)`, quadratic `1 - (i - j)^2 / (K - 1)^2` (Cicchetti–Allison and
//! Fleiss–Cohen), as in SAS, statsmodels and scikit-learn.

use serde::{Deserialize, Serialize};

use crate::coefficient::{Coefficient, chance_corrected};

/// The weighting of Cohen's kappa.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weighting {
    /// Exact agreement only.
    Unweighted,
    /// Linear (absolute-difference) weights.
    Linear,
    /// Quadratic (squared-difference) weights.
    Quadratic,
}

/// Cohen's kappa with its standard errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohenKappa {
    /// The weighting.
    pub weighting: Weighting,
    /// The coefficient.
    pub kappa: Coefficient,
    /// Asymptotic standard error (Fleiss, Cohen & Everitt 1969).
    pub se: Coefficient,
    /// Standard error under H0: kappa = 0.
    pub se_h0: Coefficient,
    /// `kappa / se_h0`.
    pub z: Coefficient,
    /// 95% Wald interval `kappa +- 1.959964 se`.
    pub ci95: Option<[f64; 2]>,
}

/// Agreement weights (K, K) for `weighting`.
pub fn agreement_weights(k: usize, weighting: Weighting) -> Vec<f64> {
    let span = (k.max(2) - 1) as f64;
    let mut w = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..k {
            let d = (i as f64 - j as f64).abs() / span;
            w[i * k + j] = match weighting {
                Weighting::Unweighted => f64::from(u8::from(i == j)),
                Weighting::Linear => 1.0 - d,
                Weighting::Quadratic => 1.0 - d * d,
            };
        }
    }
    w
}

/// Row and column marginal proportions and the total of a (K, K) table.
fn marginals(table: &[f64], k: usize) -> (Vec<f64>, Vec<f64>, f64) {
    let n: f64 = table.iter().sum();
    let mut row = vec![0.0; k];
    let mut col = vec![0.0; k];
    for i in 0..k {
        for j in 0..k {
            row[i] += table[i * k + j] / n;
            col[j] += table[i * k + j] / n;
        }
    }
    (row, col, n)
}

/// Cohen's kappa of a (K, K) contingency table (rows: rater A, columns: rater B).
pub fn cohen_kappa(table: &[f64], k: usize, weighting: Weighting) -> CohenKappa {
    let undefined = |reason: &str| CohenKappa {
        weighting,
        kappa: Coefficient::undefined(reason),
        se: Coefficient::undefined(reason),
        se_h0: Coefficient::undefined(reason),
        z: Coefficient::undefined(reason),
        ci95: None,
    };
    let (row, col, n) = marginals(table, k);
    if n <= 0.0 {
        return undefined("the two raters share no item");
    }
    let w = agreement_weights(k, weighting);
    let (mut agreeing, mut pe) = (0.0, 0.0);
    for i in 0..k {
        for j in 0..k {
            agreeing += w[i * k + j] * table[i * k + j];
            pe += w[i * k + j] * row[i] * col[j];
        }
    }
    let po = agreeing / n; // one division: exactly 1 under perfect agreement
    let kappa = chance_corrected(po, pe);
    let Some(kv) = kappa.value() else {
        return CohenKappa {
            kappa,
            ..undefined("expected agreement is 1: every rating falls in one category")
        };
    };
    // Weighted means of the weights: wbar_i. = sum_j p_.j w_ij ; wbar_.j = sum_i p_i. w_ij
    let wrow: Vec<f64> = (0..k)
        .map(|i| (0..k).map(|j| col[j] * w[i * k + j]).sum())
        .collect();
    let wcol: Vec<f64> = (0..k)
        .map(|j| (0..k).map(|i| row[i] * w[i * k + j]).sum())
        .collect();
    let (mut a, mut a0) = (0.0, 0.0);
    for i in 0..k {
        for j in 0..k {
            let p = table[i * k + j] / n;
            a += p * (w[i * k + j] - (wrow[i] + wcol[j]) * (1.0 - kv)).powi(2);
            a0 += row[i] * col[j] * (w[i * k + j] - (wrow[i] + wcol[j])).powi(2);
        }
    }
    let denom = n * (1.0 - pe).powi(2);
    let var = (a - (kv - pe * (1.0 - kv)).powi(2)) / denom;
    let var0 = (a0 - pe * pe) / denom;
    let se = Coefficient::checked(var.max(0.0).sqrt(), "non-finite standard error");
    let se_h0 = if var0 > 0.0 {
        Coefficient::checked(var0.sqrt(), "non-finite standard error")
    } else {
        Coefficient::undefined("null variance is 0")
    };
    let z = match se_h0.value() {
        Some(s) => Coefficient::checked(kv / s, "non-finite z"),
        None => Coefficient::undefined("null variance is 0"),
    };
    let ci95 = se.value().map(|s| {
        [
            kv - 1.959_963_984_540_054 * s,
            kv + 1.959_963_984_540_054 * s,
        ]
    });
    CohenKappa {
        weighting,
        kappa,
        se,
        se_h0,
        z,
        ci95,
    }
}

/// Scott's pi (pooled marginals) of a (K, K) table.
pub fn scott_pi(table: &[f64], k: usize) -> Coefficient {
    let (row, col, n) = marginals(table, k);
    if n <= 0.0 {
        return Coefficient::undefined("the two raters share no item");
    }
    let po = (0..k).map(|i| table[i * k + i]).sum::<f64>() / n;
    let pe: f64 = (0..k).map(|i| ((row[i] + col[i]) / 2.0).powi(2)).sum();
    chance_corrected(po, pe)
}

/// Gwet's AC1 for two raters: `P_e = sum_k pi_k (1 - pi_k) / (K - 1)`, pooled `pi_k`.
pub fn two_rater_ac1(table: &[f64], k: usize) -> Coefficient {
    let (row, col, n) = marginals(table, k);
    if n <= 0.0 || k < 2 {
        return Coefficient::undefined("no shared item or fewer than two categories");
    }
    let po = (0..k).map(|i| table[i * k + i]).sum::<f64>() / n;
    let pe: f64 = (0..k)
        .map(|i| {
            let p = (row[i] + col[i]) / 2.0;
            p * (1.0 - p)
        })
        .sum::<f64>()
        / (k as f64 - 1.0);
    chance_corrected(po, pe)
}

/// Observed proportion of exact agreement of a (K, K) table.
pub fn table_agreement(table: &[f64], k: usize) -> Coefficient {
    let n: f64 = table.iter().sum();
    if n <= 0.0 {
        return Coefficient::undefined("the two raters share no item");
    }
    Coefficient::Value((0..k).map(|i| table[i * k + i]).sum::<f64>() / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_table_is_one_and_constant_table_undefined() {
        let t = [3.0, 0.0, 0.0, 4.0];
        assert_eq!(
            cohen_kappa(&t, 2, Weighting::Unweighted).kappa.value(),
            Some(1.0)
        );
        let c = [5.0, 0.0, 0.0, 0.0];
        assert!(!cohen_kappa(&c, 2, Weighting::Unweighted).kappa.is_defined());
        assert!(!scott_pi(&c, 2).is_defined());
    }
}
