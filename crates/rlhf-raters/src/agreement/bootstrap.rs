//! Seeded item bootstrap for Krippendorff's alpha, Fleiss' kappa and (two raters) Cohen's
//! kappa: items are resampled with replacement and the coefficients recomputed; the interval is
//! the percentile interval (linear interpolation between order statistics).
//!
//! Speed: items with the same category counts (and two-rater cell) share a *pattern*; a
//! replicate draws `n_items` item indices, adds their pattern weights, and tallies patterns, so a
//! replicate costs `O(n_items + patterns)`. Replicates run in parallel, each from its own
//! stream `Rng::stream(seed, replicate)`, so results do not depend on the thread count.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::agreement::cohen::{Weighting, cohen_kappa};
use crate::agreement::krippendorff::{Level, alpha_from_tally};
use crate::agreement::multi::fleiss;
use crate::agreement::tally::{Accumulator, item_counts, two_rater_cell};
use crate::labels::LabelSet;
use crate::rng::Rng;

/// Bootstrap settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapSpec {
    /// Number of replicates.
    pub replicates: usize,
    /// Seed of every random draw.
    pub seed: u64,
    /// Coverage of the interval, e.g. 0.95.
    pub confidence: f64,
}

/// A percentile bootstrap interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower bound, when enough replicates were defined.
    pub lower: Option<f64>,
    /// Upper bound.
    pub upper: Option<f64>,
    /// Replicates in which the statistic was defined.
    pub defined_replicates: usize,
    /// Replicates in which it was undefined (reported, never silently dropped).
    pub undefined_replicates: usize,
}

/// Percentile interval of `samples` (undefined entries are `None`).
pub fn percentile_interval(samples: &[Option<f64>], confidence: f64) -> Interval {
    let mut v: Vec<f64> = samples.iter().flatten().copied().collect();
    v.sort_by(f64::total_cmp);
    let q = |p: f64| -> Option<f64> {
        if v.is_empty() || !(0.0..=1.0).contains(&p) {
            return None;
        }
        let h = p * (v.len() - 1) as f64;
        let lo = h.floor() as usize;
        let hi = h.ceil() as usize;
        Some(v[lo] + (h - lo as f64) * (v[hi] - v[lo]))
    };
    let tail = (1.0 - confidence) / 2.0;
    Interval {
        lower: q(tail),
        upper: q(1.0 - tail),
        defined_replicates: v.len(),
        undefined_replicates: samples.len() - v.len(),
    }
}

/// Bootstrap intervals of the agreement coefficients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementBootstrap {
    /// The settings used.
    pub spec: BootstrapSpec,
    /// Krippendorff's alpha per requested level.
    pub alpha: Vec<LevelInterval>,
    /// Fleiss' kappa.
    pub fleiss_kappa: Interval,
    /// Cohen's unweighted kappa (two-rater data only).
    pub cohen_kappa: Option<Interval>,
}

/// The interval of alpha at one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelInterval {
    /// The level.
    pub level: Level,
    /// Its interval.
    #[serde(flatten)]
    pub interval: Interval,
}

/// A pattern's key: sorted `(category, count)` pairs and the two-rater cell.
type PatternKey = (Vec<(u32, u32)>, Option<(u32, u32)>);

/// Item patterns: distinct (category counts, two-rater cell) and each item's pattern id.
struct Patterns {
    counts: Vec<Vec<(u32, u32)>>,
    cells: Vec<Option<(u32, u32)>>,
    of_item: Vec<u32>, // (n_items)
}

fn patterns(set: &LabelSet) -> Patterns {
    let mut index: HashMap<PatternKey, u32> = HashMap::new();
    let mut p = Patterns {
        counts: Vec::new(),
        cells: Vec::new(),
        of_item: Vec::with_capacity(set.n_items()),
    };
    let mut scratch = Vec::new();
    for i in 0..set.n_items() {
        let (raters, labels) = set.item(i);
        item_counts(labels, &mut scratch);
        let cell = two_rater_cell(set, raters, labels);
        let next = p.counts.len() as u32;
        let id = *index.entry((scratch.clone(), cell)).or_insert_with(|| {
            p.counts.push(scratch.clone());
            p.cells.push(cell);
            next
        });
        p.of_item.push(id);
    }
    p
}

/// Runs the item bootstrap for alpha at `levels`, Fleiss' kappa and two-rater Cohen's kappa.
pub fn bootstrap_agreement(
    set: &LabelSet,
    levels: &[Level],
    spec: BootstrapSpec,
) -> AgreementBootstrap {
    let pats = patterns(set);
    let n = set.n_items();
    let k = set.n_categories();
    let two = set.n_raters() == 2;
    // per replicate: alpha per level, fleiss, cohen
    let samples: Vec<Vec<Option<f64>>> = (0..spec.replicates)
        .into_par_iter()
        .map(|r| {
            let mut rng = Rng::stream(spec.seed, r as u64);
            let mut weight = vec![0u32; pats.counts.len()];
            for _ in 0..n {
                weight[pats.of_item[rng.below(n as u64) as usize] as usize] += 1;
            }
            let mut acc = Accumulator::new(k, two);
            for (p, &w) in weight.iter().enumerate() {
                if w > 0 {
                    acc.add(&pats.counts[p], pats.cells[p], u64::from(w));
                }
            }
            let t = acc.finish();
            let mut out: Vec<Option<f64>> = levels
                .iter()
                .map(|&l| alpha_from_tally(&t, set.values(), l).alpha.value())
                .collect();
            out.push(fleiss(&t).kappa.value());
            if two {
                out.push(
                    cohen_kappa(&t.contingency, k, Weighting::Unweighted)
                        .kappa
                        .value(),
                );
            }
            out
        })
        .collect();
    let column = |c: usize| -> Vec<Option<f64>> { samples.iter().map(|s| s[c]).collect() };
    let alpha = levels
        .iter()
        .enumerate()
        .map(|(c, &level)| LevelInterval {
            level,
            interval: percentile_interval(&column(c), spec.confidence),
        })
        .collect();
    AgreementBootstrap {
        spec,
        alpha,
        fleiss_kappa: percentile_interval(&column(levels.len()), spec.confidence),
        cohen_kappa: two.then(|| percentile_interval(&column(levels.len() + 1), spec.confidence)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_and_counts_undefined() {
        let s: Vec<Option<f64>> = (0..=10).map(|x| Some(x as f64)).chain([None]).collect();
        let i = percentile_interval(&s, 0.8);
        assert!((i.lower.unwrap() - 1.0).abs() < 1e-12);
        assert!((i.upper.unwrap() - 9.0).abs() < 1e-12);
        assert_eq!((i.defined_replicates, i.undefined_replicates), (11, 1));
    }
}
