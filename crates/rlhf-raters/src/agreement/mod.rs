//! Agreement coefficients. Parts:
//! - [`tally`]: one parallel pass over items into the sufficient statistics;
//! - [`krippendorff`]: alpha at four levels from the coincidence matrix;
//! - [`multi`]: percent agreement, Fleiss' kappa (+ SE, z), Gwet's AC1, Brennan–Prediger;
//! - [`cohen`]: two-rater Cohen's kappa (3 weightings, SEs), Scott's pi, AC1;
//! - [`pairwise`]: the sparse rater x rater agreement and Cohen matrix;
//! - [`breakdown`]: per-item and per-rater agreement;
//! - [`bootstrap`]: seeded percentile intervals for alpha and kappa.

pub mod bootstrap;
pub mod breakdown;
pub mod cohen;
pub mod krippendorff;
pub mod multi;
pub mod pairwise;
pub mod tally;

use serde::{Deserialize, Serialize};

use crate::coefficient::Coefficient;
use crate::labels::LabelSet;
use bootstrap::{AgreementBootstrap, BootstrapSpec, bootstrap_agreement};
use cohen::{CohenKappa, Weighting, cohen_kappa, scott_pi, table_agreement, two_rater_ac1};
use krippendorff::{Alpha, Level, alpha_from_tally};
use multi::{Fleiss, brennan_prediger, fleiss, gwet_ac1, percent_agreement};

/// What to compute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementOptions {
    /// Levels of Krippendorff's alpha to report.
    pub levels: Vec<Level>,
    /// Bootstrap settings, if intervals are wanted.
    pub bootstrap: Option<BootstrapSpec>,
}

impl Default for AgreementOptions {
    fn default() -> Self {
        AgreementOptions {
            levels: Level::ALL.to_vec(),
            bootstrap: None,
        }
    }
}

/// Coefficients that exist only for exactly two raters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwoRaterAgreement {
    /// Row rater of the contingency table.
    pub rater_a: String,
    /// Column rater.
    pub rater_b: String,
    /// Items both rated.
    pub shared_items: f64,
    /// Share of identical labels on shared items.
    pub percent_agreement: Coefficient,
    /// Cohen's kappa: unweighted, linear, quadratic.
    pub cohen_kappa: Vec<CohenKappa>,
    /// Scott's pi.
    pub scott_pi: Coefficient,
    /// Gwet's AC1 on the shared items.
    pub gwet_ac1: Coefficient,
    /// Brennan–Prediger on the shared items.
    pub brennan_prediger: Coefficient,
    /// The (K, K) contingency table, rows = `rater_a`.
    pub contingency: Vec<Vec<f64>>,
}

/// Every agreement coefficient that applies to a label set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementReport {
    /// Items with at least one label.
    pub items: usize,
    /// Distinct raters.
    pub raters: usize,
    /// Labels.
    pub labels: usize,
    /// Categories in domain order.
    pub categories: Vec<String>,
    /// Items with two or more labels (the only ones that carry agreement information).
    pub multi_rated_items: f64,
    /// Share of agreeing rater pairs, averaged over multi-rated items.
    pub percent_agreement: Coefficient,
    /// Fleiss' kappa with SE and z under H0.
    pub fleiss: Fleiss,
    /// Gwet's AC1.
    pub gwet_ac1: Coefficient,
    /// Brennan–Prediger (Randolph's free-marginal kappa).
    pub brennan_prediger: Coefficient,
    /// Krippendorff's alpha per requested level.
    pub krippendorff_alpha: Vec<Alpha>,
    /// Two-rater coefficients (Cohen, Scott), present when the set has exactly two raters.
    pub two_raters: Option<TwoRaterAgreement>,
    /// Bootstrap intervals, when requested.
    pub bootstrap: Option<AgreementBootstrap>,
}

/// Computes every coefficient that applies to `set`.
///
/// ```
/// use rlhf_raters::{agreement, AgreementOptions, LabelSet};
/// let set = LabelSet::from_matrix(&[
///     vec![Some(1), Some(1)], vec![Some(2), Some(2)], vec![Some(3), Some(2)], vec![Some(1), None],
/// ]).unwrap();
/// let report = agreement(&set, &AgreementOptions::default());
/// assert!(report.krippendorff_alpha[0].alpha.value().unwrap() > 0.5);
/// assert!(report.two_raters.is_some());
/// ```
pub fn agreement(set: &LabelSet, options: &AgreementOptions) -> AgreementReport {
    let t = tally::tally(set);
    let k = set.n_categories();
    let two_raters = (set.n_raters() == 2).then(|| {
        let ordered = set.values().is_some();
        let cohen = [
            Weighting::Unweighted,
            Weighting::Linear,
            Weighting::Quadratic,
        ]
        .into_iter()
        .map(|w| {
            let mut c = cohen_kappa(&t.contingency, k, w);
            if w != Weighting::Unweighted && !ordered {
                let reason = "weighted kappa needs numeric (ordered) labels";
                c = CohenKappa {
                    weighting: w,
                    kappa: Coefficient::undefined(reason),
                    se: Coefficient::undefined(reason),
                    se_h0: Coefficient::undefined(reason),
                    z: Coefficient::undefined(reason),
                    ci95: None,
                };
            }
            c
        })
        .collect();
        TwoRaterAgreement {
            rater_a: set.raters().name(0).to_string(),
            rater_b: set.raters().name(1).to_string(),
            shared_items: t.contingency.iter().sum(),
            percent_agreement: table_agreement(&t.contingency, k),
            cohen_kappa: cohen,
            scott_pi: scott_pi(&t.contingency, k),
            gwet_ac1: two_rater_ac1(&t.contingency, k),
            brennan_prediger: match table_agreement(&t.contingency, k).value() {
                Some(po) if k >= 2 => crate::coefficient::chance_corrected(po, 1.0 / k as f64),
                _ => Coefficient::undefined("no shared item or fewer than two categories"),
            },
            contingency: t
                .contingency
                .chunks(k.max(1))
                .map(<[f64]>::to_vec)
                .collect(),
        }
    });
    AgreementReport {
        items: set.n_items(),
        raters: set.n_raters(),
        labels: set.n_labels(),
        categories: set.categories().to_vec(),
        multi_rated_items: t.multi_units,
        percent_agreement: percent_agreement(&t),
        fleiss: fleiss(&t),
        gwet_ac1: gwet_ac1(&t),
        brennan_prediger: brennan_prediger(&t),
        krippendorff_alpha: options
            .levels
            .iter()
            .map(|&l| alpha_from_tally(&t, set.values(), l))
            .collect(),
        two_raters,
        bootstrap: options
            .bootstrap
            .map(|spec| bootstrap_agreement(set, &options.levels, spec)),
    }
}

/// Krippendorff's alpha at each of `levels` (one pass over the items).
///
/// ```
/// use rlhf_raters::{krippendorff_alpha, Level, LabelSet};
/// let set = LabelSet::from_matrix(&[vec![Some(1), Some(1)], vec![Some(2), Some(2)]]).unwrap();
/// let a = krippendorff_alpha(&set, &[Level::Interval]);
/// assert_eq!(a[0].alpha.value(), Some(1.0));
/// ```
pub fn krippendorff_alpha(set: &LabelSet, levels: &[Level]) -> Vec<Alpha> {
    let t = tally::tally(set);
    levels
        .iter()
        .map(|&l| alpha_from_tally(&t, set.values(), l))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn undefined_reason(c: &Coefficient) -> &str {
        match c {
            Coefficient::Undefined(r) => r,
            Coefficient::Value(v) => panic!("expected undefined, got {v}"),
        }
    }

    #[test]
    fn one_category_is_undefined_with_reasons() {
        let set = LabelSet::from_matrix(&[vec![Some("x"), Some("x")], vec![Some("x"), Some("x")]])
            .unwrap();
        let r = agreement(&set, &AgreementOptions::default());
        assert_eq!(r.percent_agreement.value(), Some(1.0));
        assert!(undefined_reason(&r.fleiss.kappa).contains("expected agreement is 1"));
        assert!(undefined_reason(&r.krippendorff_alpha[0].alpha).contains("identical"));
        assert!(undefined_reason(&r.gwet_ac1).contains("two categories"));
        let two = r.two_raters.unwrap();
        assert!(!two.cohen_kappa[0].kappa.is_defined() && !two.scott_pi.is_defined());
        // and it serialises without NaN
        let json = serde_json::to_string(&agreement(&set, &AgreementOptions::default())).unwrap();
        assert!(!json.contains("NaN"));
    }

    #[test]
    fn nothing_pairable_is_undefined() {
        let set =
            LabelSet::from_triples([("a", "r1", "1"), ("b", "r2", "2"), ("c", "r3", "1")]).unwrap();
        let r = agreement(&set, &AgreementOptions::default());
        assert!(undefined_reason(&r.percent_agreement).contains("two or more"));
        assert!(undefined_reason(&r.krippendorff_alpha[3].alpha).contains("pairable"));
        assert!(!r.fleiss.kappa.is_defined() && !r.fleiss.se_h0.is_defined());
    }

    #[test]
    fn numeric_levels_need_numeric_labels() {
        let set =
            LabelSet::from_matrix(&[vec![Some("lo"), Some("hi")], vec![Some("hi"), Some("hi")]])
                .unwrap();
        let r = agreement(&set, &AgreementOptions::default());
        assert!(r.krippendorff_alpha[0].alpha.is_defined());
        for a in &r.krippendorff_alpha[1..] {
            assert!(undefined_reason(&a.alpha).contains("numeric"));
        }
        let two = r.two_raters.unwrap();
        assert!(two.cohen_kappa[0].kappa.is_defined());
        assert!(undefined_reason(&two.cohen_kappa[1].kappa).contains("numeric"));
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_estimate() {
        let rows: Vec<Vec<Option<u32>>> = (0..60)
            .map(|i| {
                vec![
                    Some(i % 3),
                    Some(i % 3),
                    Some(if i % 7 == 0 { 1 } else { i % 3 }),
                ]
            })
            .collect();
        let set = LabelSet::from_matrix(&rows).unwrap();
        let spec = BootstrapSpec {
            replicates: 200,
            seed: 4,
            confidence: 0.9,
        };
        let options = AgreementOptions {
            levels: vec![Level::Nominal],
            bootstrap: Some(spec),
        };
        let a = agreement(&set, &options);
        let b = agreement(&set, &options);
        assert_eq!(a.bootstrap, b.bootstrap);
        let iv = &a.bootstrap.as_ref().unwrap().alpha[0].interval;
        let est = a.krippendorff_alpha[0].alpha.value().unwrap();
        assert!(iv.lower.unwrap() <= est && est <= iv.upper.unwrap());
        let other = agreement(
            &set,
            &AgreementOptions {
                bootstrap: Some(BootstrapSpec { seed: 5, ..spec }),
                ..options.clone()
            },
        );
        assert_ne!(a.bootstrap, other.bootstrap);
    }
}
