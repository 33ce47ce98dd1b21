//! Seeded synthetic data with known ground truth, for tests and benchmarks:
//! - [`synth_labels`]: items with a uniform true class, each labelled by distinct random raters
//!   whose accuracies are spread uniformly from chance `1/K` to a maximum (default 0.95); a
//!   wrong label is uniform over the other classes;
//! - [`synth_comparisons`]: random pairs of items with Bradley–Terry strengths
//!   `theta ~ N(0, 1)`, a tie with a fixed probability, else `P(i wins) = sigma(theta_i - theta_j)`.

use crate::error::Result;
use crate::labels::LabelSet;
use crate::pairs::{Comparisons, Game, Outcome};
use crate::rng::Rng;

/// Settings of [`synth_labels`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelsConfig {
    /// Items.
    pub items: usize,
    /// Raters.
    pub raters: usize,
    /// Labels per item (distinct raters).
    pub labels_per_item: usize,
    /// Classes `K`.
    pub classes: usize,
    /// Best rater accuracy (the worst is chance, `1/K`).
    pub max_accuracy: f64,
    /// Seed.
    pub seed: u64,
}

impl LabelsConfig {
    /// The benchmark size: 1M labels from 10k raters over 200k items, 5 classes.
    pub fn benchmark() -> Self {
        LabelsConfig {
            items: 200_000,
            raters: 10_000,
            labels_per_item: 5,
            classes: 5,
            max_accuracy: 0.95,
            seed: 42,
        }
    }
}

/// Synthetic labels with their truth.
#[derive(Debug, Clone)]
pub struct SynthLabels {
    /// The labels (categories `"0".."K-1"`).
    pub set: LabelSet,
    /// (items) true class of each item.
    pub truth: Vec<u32>,
    /// (raters) accuracy of each rater.
    pub accuracy: Vec<f64>,
}

/// Generates labels as described in the module docs.
pub fn synth_labels(c: &LabelsConfig) -> Result<SynthLabels> {
    let mut rng = Rng::new(c.seed);
    let k = c.classes.max(2);
    let chance = 1.0 / k as f64;
    let accuracy: Vec<f64> = (0..c.raters)
        .map(|_| chance + (c.max_accuracy - chance) * rng.next_f64())
        .collect();
    let per_item = c.labels_per_item.min(c.raters);
    let mut truth = Vec::with_capacity(c.items);
    let mut triples = Vec::with_capacity(c.items * per_item);
    let mut chosen: Vec<u32> = Vec::with_capacity(per_item);
    for i in 0..c.items {
        let t = rng.below(k as u64) as u32;
        truth.push(t);
        chosen.clear();
        while chosen.len() < per_item {
            let r = rng.below(c.raters as u64) as u32;
            if !chosen.contains(&r) {
                chosen.push(r);
            }
        }
        for &r in &chosen {
            let label = if rng.next_f64() < accuracy[r as usize] {
                t
            } else {
                let wrong = rng.below(k as u64 - 1) as u32;
                if wrong >= t { wrong + 1 } else { wrong }
            };
            triples.push((i as u32, r, label));
        }
    }
    let categories = (0..k).map(|c| c.to_string()).collect();
    let values = Some((0..k).map(|c| c as f64).collect());
    let set = LabelSet::from_ids(c.items, c.raters, categories, values, triples)?;
    Ok(SynthLabels {
        set,
        truth,
        accuracy,
    })
}

/// Settings of [`synth_comparisons`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ComparisonsConfig {
    /// Items.
    pub items: usize,
    /// Comparisons.
    pub comparisons: usize,
    /// Probability of a tie.
    pub tie_probability: f64,
    /// Seed.
    pub seed: u64,
}

impl ComparisonsConfig {
    /// The benchmark size: 100k comparisons among 200 items, 10% ties.
    pub fn benchmark() -> Self {
        ComparisonsConfig {
            items: 200,
            comparisons: 100_000,
            tie_probability: 0.1,
            seed: 7,
        }
    }
}

/// Generates comparisons; returns them with the true log-strengths.
pub fn synth_comparisons(c: &ComparisonsConfig) -> (Comparisons, Vec<f64>) {
    let mut rng = Rng::new(c.seed);
    let n = c.items.max(2);
    let theta: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    let mut out = Comparisons::new();
    for i in 0..n {
        out.items.intern(&format!("m{i}"));
    }
    for _ in 0..c.comparisons {
        let left = rng.below(n as u64) as u32;
        let mut right = rng.below(n as u64 - 1) as u32;
        if right >= left {
            right += 1;
        }
        let outcome = if rng.next_f64() < c.tie_probability {
            Outcome::Tie
        } else if rng.next_f64()
            < 1.0 / (1.0 + (theta[right as usize] - theta[left as usize]).exp())
        {
            Outcome::Left
        } else {
            Outcome::Right
        };
        out.games.push(Game {
            left,
            right,
            outcome,
            rater: None,
        });
    }
    (out, theta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_have_requested_shape_and_skill() {
        let c = LabelsConfig {
            items: 2000,
            raters: 50,
            labels_per_item: 3,
            classes: 4,
            max_accuracy: 0.95,
            seed: 1,
        };
        let s = synth_labels(&c).unwrap();
        assert_eq!(s.set.n_labels(), 6000);
        assert_eq!(s.set.n_items(), 2000);
        let mut right = 0;
        for i in 0..s.set.n_items() {
            right += s.set.item(i).1.iter().filter(|&&l| l == s.truth[i]).count();
        }
        let mean_acc = s.accuracy.iter().sum::<f64>() / 50.0;
        let observed = right as f64 / 6000.0;
        assert!(
            (observed - mean_acc).abs() < 0.05,
            "{observed} vs {mean_acc}"
        );
        assert!(s.accuracy.iter().all(|&a| (0.25..=0.95).contains(&a)));
    }

    #[test]
    fn comparisons_have_ties() {
        let (c, theta) = synth_comparisons(&ComparisonsConfig {
            items: 20,
            comparisons: 5000,
            tie_probability: 0.1,
            seed: 3,
        });
        assert_eq!(theta.len(), 20);
        let ties = c.games.iter().filter(|g| g.outcome == Outcome::Tie).count() as f64 / 5000.0;
        assert!((ties - 0.1).abs() < 0.02, "{ties}");
    }
}
