//! Multi-rater coefficients from per-item category counts, any number of raters per item:
//!
//! - percent agreement `P_a = mean_i sum_k n_ik (n_ik - 1) / (m_i (m_i - 1))` over items with
//!   `m_i >= 2` (the share of agreeing rater pairs);
//! - Fleiss' kappa `(P_a - P_e) / (1 - P_e)`, `P_e = sum_k p_k^2`, with `p_k = mean_i n_ik / m_i`
//!   over the multi-rated items (those that enter `P_a`): with the same number of raters on every
//!   item this is Fleiss (1971) exactly; under missing data it stays >= -1 (because
//!   `P_i >= 2 sum_k p_ik^2 - 1` and Jensen), unlike shares taken over single-rated items too.
//! - Gwet's AC1 with `P_e = sum_k pi_k (1 - pi_k) / (K - 1)` and Brennan–Prediger (Randolph's
//!   free-marginal kappa) with `P_e = 1 / K`; `pi_k = mean_i n_ik / m_i` over all items, as in
//!   Gwet (2014, Handbook of Inter-Rater Reliability, ch. 2; R irrCAC `gwet.ac1.raw`).
//! - Fleiss' standard error under the null of no agreement, its z, and the per-category kappas:
//!   Fleiss, Nee & Landis (1979), as R's `irr::kappam.fleiss` reports them; defined only when
//!   every item has the same number `m >= 2` of ratings.

use serde::{Deserialize, Serialize};

use crate::agreement::tally::Tally;
use crate::coefficient::{Coefficient, chance_corrected};

/// Fleiss' kappa with its null standard error, z, and per-category kappas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fleiss {
    /// The coefficient.
    pub kappa: Coefficient,
    /// Observed agreement `P_bar`.
    pub observed_agreement: Option<f64>,
    /// Chance agreement `P_e`.
    pub expected_agreement: Option<f64>,
    /// Standard error under H0 (Fleiss, Nee & Landis 1979).
    pub se_h0: Coefficient,
    /// `kappa / se_h0`.
    pub z: Coefficient,
    /// Kappa of each category (constant raters per item only), in category order.
    pub per_category: Vec<Coefficient>,
}

/// Percent agreement over items with two or more ratings.
pub fn percent_agreement(t: &Tally) -> Coefficient {
    if t.multi_units <= 0.0 {
        return Coefficient::undefined("no item has two or more ratings");
    }
    Coefficient::checked(t.sum_item_agreement / t.multi_units, "non-finite agreement")
}

/// Category shares `pi_k` (mean over items of `n_ik / m_i`).
fn shares(t: &Tally) -> Vec<f64> {
    t.share_sum.iter().map(|s| s / t.units).collect()
}

/// Fleiss' kappa (Gwet's shares under missing data), SE and z under H0, per-category kappas.
pub fn fleiss(t: &Tally) -> Fleiss {
    let pa = percent_agreement(t);
    let Some(pa) = pa.value() else {
        let reason = "no item has two or more ratings";
        return Fleiss {
            kappa: Coefficient::undefined(reason),
            observed_agreement: None,
            expected_agreement: None,
            se_h0: Coefficient::undefined(reason),
            z: Coefficient::undefined(reason),
            per_category: Vec::new(),
        };
    };
    let p: Vec<f64> = t
        .multi_share_sum
        .iter()
        .map(|s| s / t.multi_units)
        .collect();
    let pe: f64 = p.iter().map(|x| x * x).sum();
    let kappa = chance_corrected(pa, pe);
    let (se_h0, z, per_category) = if t.m_min == t.m_max && t.m_min >= 2 {
        let m = t.m_min as f64;
        let n = t.units;
        let pq: f64 = p.iter().map(|x| x * (1.0 - x)).sum();
        let pq_qp: f64 = p.iter().map(|x| x * (1.0 - x) * ((1.0 - x) - x)).sum();
        let se = if pq > 0.0 {
            Coefficient::checked(
                std::f64::consts::SQRT_2 / (pq * (n * m * (m - 1.0)).sqrt())
                    * (pq * pq - pq_qp).sqrt(),
                "non-finite standard error",
            )
        } else {
            Coefficient::undefined("every rating falls in one category")
        };
        let z = match (&kappa, &se) {
            (Coefficient::Value(k), Coefficient::Value(s)) if *s > 0.0 => Coefficient::Value(k / s),
            _ => Coefficient::undefined("kappa or its standard error is undefined"),
        };
        let per_category = p
            .iter()
            .zip(&t.category_disagreement)
            .map(|(&pj, &dis)| {
                let denom = n * m * (m - 1.0) * pj * (1.0 - pj);
                if denom > 0.0 {
                    Coefficient::checked(1.0 - dis / denom, "non-finite category kappa")
                } else {
                    Coefficient::undefined("category used by no rater or by every rating")
                }
            })
            .collect();
        (se, z, per_category)
    } else {
        let reason = "standard error needs the same number (>= 2) of ratings on every item";
        (
            Coefficient::undefined(reason),
            Coefficient::undefined(reason),
            Vec::new(),
        )
    };
    Fleiss {
        kappa,
        observed_agreement: Some(pa),
        expected_agreement: Some(pe),
        se_h0,
        z,
        per_category,
    }
}

/// Gwet's AC1 (multi-rater, missing data allowed).
pub fn gwet_ac1(t: &Tally) -> Coefficient {
    let Some(pa) = percent_agreement(t).value() else {
        return Coefficient::undefined("no item has two or more ratings");
    };
    if t.k < 2 {
        return Coefficient::undefined("AC1 needs at least two categories");
    }
    let pe: f64 = shares(t).iter().map(|x| x * (1.0 - x)).sum::<f64>() / (t.k as f64 - 1.0);
    chance_corrected(pa, pe)
}

/// Brennan–Prediger coefficient (chance agreement `1/K`).
pub fn brennan_prediger(t: &Tally) -> Coefficient {
    let Some(pa) = percent_agreement(t).value() else {
        return Coefficient::undefined("no item has two or more ratings");
    };
    if t.k < 2 {
        return Coefficient::undefined("Brennan-Prediger needs at least two categories");
    }
    chance_corrected(pa, 1.0 / t.k as f64)
}
