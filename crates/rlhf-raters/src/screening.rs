//! Screening raters against gold and selecting super raters (as InstructGPT screened labelers by
//! agreement with researchers' labels).
//!
//! Per rater: accuracy on gold items with a Wilson score interval (Wilson 1927), the number of
//! gold items seen, agreement with the leave-one-out consensus of the other raters, and a flag:
//! *adversarial* when the interval lies entirely below chance (`upper < 1/K`), *random* when it
//! does not lie above chance (`lower <= 1/K`). Chance is `1/K` for `K` categories (a uniform
//! guesser). A rater is kept as a super rater when every configured rule passes and (unless
//! disabled) it is not flagged; the report lists each rule's outcome as a reason.

use serde::{Deserialize, Serialize};

use crate::agreement::breakdown::rater_sums;
use crate::coefficient::Coefficient;
use crate::labels::{Gold, LabelSet};

/// Super-rater selection rules; `None` disables a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScreenRules {
    /// Minimum accuracy on gold.
    pub min_accuracy: Option<f64>,
    /// Minimum number of gold items labelled.
    pub min_gold_items: u64,
    /// Minimum lower Wilson bound of the accuracy.
    pub min_lower_bound: Option<f64>,
    /// Minimum agreement with the leave-one-out consensus.
    pub min_consensus: Option<f64>,
    /// Coverage of the Wilson interval (e.g. 0.95).
    pub confidence: f64,
    /// Drop raters flagged random or adversarial.
    pub exclude_flagged: bool,
}

impl Default for ScreenRules {
    fn default() -> Self {
        ScreenRules {
            min_accuracy: None,
            min_gold_items: 1,
            min_lower_bound: None,
            min_consensus: None,
            confidence: 0.95,
            exclude_flagged: true,
        }
    }
}

/// A rater's behaviour flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// Accuracy not distinguishable from (or at) chance.
    Random,
    /// Accuracy significantly below chance.
    Adversarial,
}

/// The screening result of one rater.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RaterScreen {
    /// Rater name.
    pub rater: String,
    /// Labels given.
    pub labels: u64,
    /// Gold items labelled.
    pub gold_items: u64,
    /// Gold items labelled correctly.
    pub gold_correct: u64,
    /// Accuracy on gold.
    pub accuracy: Coefficient,
    /// Wilson interval of the accuracy.
    pub wilson: Option<[f64; 2]>,
    /// Agreement with the leave-one-out consensus of the others.
    pub consensus_agreement: Coefficient,
    /// Random / adversarial flag.
    pub flag: Option<Flag>,
    /// Selected as super rater.
    pub kept: bool,
    /// Outcome of every rule, in words.
    pub reasons: Vec<String>,
}

/// Screening of every rater.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScreenReport {
    /// The rules applied.
    pub rules: ScreenRules,
    /// Chance accuracy `1/K`.
    pub chance: f64,
    /// Rated items with gold.
    pub gold_items: usize,
    /// Gold rows whose item no rater labelled.
    pub gold_unrated_items: usize,
    /// Kept raters' names.
    pub kept: Vec<String>,
    /// Every rater, in input order.
    pub raters: Vec<RaterScreen>,
}

/// The standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Wilson score interval for `successes` out of `n` at coverage `confidence` in (0, 1);
/// `None` without trials or with a coverage outside (0, 1).
pub fn wilson_interval(successes: u64, n: u64, confidence: f64) -> Option<[f64; 2]> {
    if n == 0 || !(confidence > 0.0 && confidence < 1.0) {
        return None;
    }
    let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    let (n, p) = (n as f64, successes as f64 / n as f64);
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some([(centre - half).max(0.0), (centre + half).min(1.0)])
}

/// Screens every rater of `set` against `gold` under `rules`.
///
/// ```
/// use rlhf_raters::{LabelSetBuilder, screening::{screen, ScreenRules}};
/// let mut b = LabelSetBuilder::new("<memory>");
/// for (i, truth) in ["a", "b", "a", "b", "a", "b", "a", "b"].iter().enumerate() {
///     b.push(&i.to_string(), "good", truth, 1);
///     b.push(&i.to_string(), "bad", if *truth == "a" { "b" } else { "a" }, 1);
///     b.push_gold(&i.to_string(), truth, 1);
/// }
/// let (set, gold) = b.build().unwrap();
/// let report = screen(&set, &gold, &ScreenRules::default());
/// assert_eq!(report.kept, vec!["good".to_string()]);
/// ```
pub fn screen(set: &LabelSet, gold: &Gold, rules: &ScreenRules) -> ScreenReport {
    let k = set.n_categories().max(1);
    let chance = 1.0 / k as f64;
    let mut seen = vec![0u64; set.n_raters()];
    let mut correct = vec![0u64; set.n_raters()];
    for i in 0..set.n_items() {
        if let Some(truth) = gold.get(i as u32) {
            let (raters, labels) = set.item(i);
            for (&r, &l) in raters.iter().zip(labels) {
                seen[r as usize] += 1;
                correct[r as usize] += u64::from(l == truth);
            }
        }
    }
    let sums = rater_sums(set);
    let mut raters = Vec::with_capacity(set.n_raters());
    for r in 0..set.n_raters() {
        let (n, x) = (seen[r], correct[r]);
        let accuracy = if n > 0 {
            Coefficient::Value(x as f64 / n as f64)
        } else {
            Coefficient::undefined("no gold items labelled")
        };
        let wilson = wilson_interval(x, n, rules.confidence);
        let consensus = if sums[r][5] > 0.0 {
            Coefficient::Value(sums[r][4] / sums[r][5])
        } else {
            Coefficient::undefined("no item shared with another rater")
        };
        let flag = wilson.and_then(|[lo, hi]| {
            if hi < chance {
                Some(Flag::Adversarial)
            } else if lo <= chance {
                Some(Flag::Random)
            } else {
                None
            }
        });
        let mut reasons = Vec::new();
        let mut kept = true;
        let mut rule = |pass: bool, text: String| {
            kept &= pass;
            reasons.push(format!("{}: {text}", if pass { "pass" } else { "fail" }));
        };
        rule(
            n >= rules.min_gold_items,
            format!("gold items {n} (min {})", rules.min_gold_items),
        );
        if let Some(min) = rules.min_accuracy {
            match accuracy.value() {
                Some(a) => rule(a >= min, format!("accuracy {a:.4} (min {min})")),
                None => rule(
                    false,
                    format!("accuracy undefined, no gold items (min {min})"),
                ),
            }
        }
        if let Some(min) = rules.min_lower_bound {
            match wilson {
                Some([lo, _]) => rule(lo >= min, format!("Wilson lower bound {lo:.4} (min {min})")),
                None => rule(
                    false,
                    format!("Wilson lower bound undefined, no gold items (min {min})"),
                ),
            }
        }
        if let Some(min) = rules.min_consensus {
            match consensus.value() {
                Some(c) => rule(c >= min, format!("consensus agreement {c:.4} (min {min})")),
                None => rule(false, format!("consensus agreement undefined (min {min})")),
            }
        }
        if rules.exclude_flagged {
            match flag {
                Some(Flag::Adversarial) => rule(
                    false,
                    format!("flagged adversarial: accuracy interval below chance {chance:.4}"),
                ),
                Some(Flag::Random) => rule(
                    false,
                    format!("flagged random: accuracy interval reaches chance {chance:.4}"),
                ),
                None => rule(true, format!("accuracy interval above chance {chance:.4}")),
            }
        }
        raters.push(RaterScreen {
            rater: set.raters().name(r as u32).to_string(),
            labels: sums[r][0] as u64,
            gold_items: n,
            gold_correct: x,
            accuracy,
            wilson,
            consensus_agreement: consensus,
            flag,
            kept,
            reasons,
        });
    }
    ScreenReport {
        rules: rules.clone(),
        chance,
        gold_items: gold.len(),
        gold_unrated_items: gold.unrated_items,
        kept: raters
            .iter()
            .filter(|r| r.kept)
            .map(|r| r.rater.clone())
            .collect(),
        raters,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_published_example() {
        // 8 of 10 at 95%: Wilson interval [0.4902, 0.9433] (Newcombe 1998, Table I style values)
        let [lo, hi] = wilson_interval(8, 10, 0.95).unwrap();
        assert!(
            (lo - 0.4902).abs() < 1e-4 && (hi - 0.9433).abs() < 1e-4,
            "{lo} {hi}"
        );
        assert!((normal_quantile(0.975) - 1.959964).abs() < 1e-6);
        assert!((normal_quantile(0.005) + 2.575829).abs() < 1e-6);
        assert!(wilson_interval(0, 0, 0.95).is_none());
    }
}
