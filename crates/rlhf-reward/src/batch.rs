//! Training examples and batches. A [`Comparison`] is one batch element in the InstructGPT
//! sense: the K responses to one prompt that one judgement covers, each tokenised once, with
//! their ranks (ties allowed), the (better, worse) pairs they imply, and rule-violation labels
//! when there are any. A pairwise record is a comparison of K = 2. A [`RewardBatch`] lays
//! several comparisons side by side so one forward scores every response once.

use serde::{Deserialize, Serialize};

use crate::{Result, RewardError};

/// One ordered pair inside a comparison: `better` beats `worse` (indices into its responses).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ComparisonPair {
    /// The preferred response.
    pub better: usize,
    /// The dispreferred response.
    pub worse: usize,
    /// The required reward gap (Llama 2's margin); 0 when the data gives none.
    pub margin: f32,
}

/// The responses to one prompt under one judgement, tokenised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Where the judgement came from (a file name, a rater pool, ...), for per-source metrics.
    pub source: String,
    /// The record's item id.
    pub item_id: String,
    /// A key of the prompt alone (its hash), so splits keep a prompt on one side.
    pub prompt_key: String,
    /// Prompt + response + EOS, one row per response. (K rows)
    pub rows: Vec<Vec<u32>>,
    /// Characters of each response, for the length baseline. (K)
    pub response_chars: Vec<usize>,
    /// Tier of each response, 0 = best; equal tiers tie. (K)
    pub ranks: Vec<usize>,
    /// Every pair of responses in different tiers, better first.
    pub pairs: Vec<ComparisonPair>,
    /// Rule-violation labels in [0, 1] (1 = broken), row-major (K, R); empty when unlabelled.
    pub rule_labels: Vec<f32>,
    /// 1 where a rule was judged, 0 where not, aligned with `rule_labels`.
    pub rule_mask: Vec<f32>,
}

impl Comparison {
    /// The number of responses K.
    pub fn k(&self) -> usize {
        self.rows.len()
    }

    /// Checks the invariants: aligned lengths, pairs inside K and across tiers, labels in
    /// [0, 1] with a 0/1 mask of K * `n_rules` entries (or none).
    pub fn validate(&self, n_rules: usize) -> Result<()> {
        let k = self.k();
        let bad = |what: String| {
            Err(RewardError::Input(format!(
                "comparison `{}` from {}: {what}",
                self.item_id, self.source
            )))
        };
        if k == 0 || self.rows.iter().any(Vec::is_empty) {
            return bad("expected at least one non-empty row".into());
        }
        if self.ranks.len() != k || self.response_chars.len() != k {
            return bad(format!(
                "{} ranks and {} lengths for {k} responses",
                self.ranks.len(),
                self.response_chars.len()
            ));
        }
        for p in &self.pairs {
            if p.better >= k || p.worse >= k || self.ranks[p.better] >= self.ranks[p.worse] {
                return bad(format!(
                    "pair ({}, {}) is not a better/worse pair of its {k} ranked responses",
                    p.better, p.worse
                ));
            }
            if !p.margin.is_finite() {
                return bad(format!("pair margin {} is not finite", p.margin));
            }
        }
        let labelled = !self.rule_labels.is_empty();
        if labelled
            && (n_rules == 0
                || self.rule_labels.len() != k * n_rules
                || self.rule_mask.len() != k * n_rules)
        {
            return bad(format!(
                "{} rule labels and {} mask flags, expected {k} x {n_rules}",
                self.rule_labels.len(),
                self.rule_mask.len()
            ));
        }
        if self.rule_labels.iter().any(|y| !(0.0..=1.0).contains(y))
            || self.rule_mask.iter().any(|&m| m != 0.0 && m != 1.0)
        {
            return bad("rule labels must lie in [0, 1] and mask flags be 0 or 1".into());
        }
        if self.pairs.is_empty() && !labelled {
            return bad("holds neither a ranked pair nor a rule label".into());
        }
        Ok(())
    }
}

/// Comparisons laid side by side: every response of every comparison is one row.
#[derive(Debug, Clone)]
pub struct RewardBatch<'a> {
    /// The comparisons, in order.
    pub comparisons: Vec<&'a Comparison>,
    /// Every row, comparison after comparison. (N = sum of K)
    pub rows: Vec<&'a [u32]>,
    /// Row offset of each comparison. (G)
    pub offsets: Vec<usize>,
    /// Rule heads R.
    pub n_rules: usize,
    /// Labels (N, R), 0 where unlabelled.
    pub rule_labels: Vec<f32>,
    /// Mask (N, R): 1 where labelled.
    pub rule_mask: Vec<f32>,
}

impl<'a> RewardBatch<'a> {
    /// Lays out `comparisons` with `n_rules` rule heads.
    pub fn new(comparisons: &[&'a Comparison], n_rules: usize) -> Result<RewardBatch<'a>> {
        if comparisons.is_empty() {
            return Err(RewardError::Empty {
                op: "RewardBatch::new",
                what: "no comparison to batch".into(),
            });
        }
        let n: usize = comparisons.iter().map(|c| c.k()).sum();
        let mut rows = Vec::with_capacity(n);
        let mut offsets = Vec::with_capacity(comparisons.len());
        let mut rule_labels = vec![0.0; n * n_rules];
        let mut rule_mask = vec![0.0; n * n_rules];
        for c in comparisons {
            c.validate(n_rules)?;
            let start = rows.len();
            offsets.push(start);
            rows.extend(c.rows.iter().map(Vec::as_slice));
            if !c.rule_labels.is_empty() {
                let range = start * n_rules..(start + c.k()) * n_rules;
                rule_labels[range.clone()].copy_from_slice(&c.rule_labels);
                rule_mask[range].copy_from_slice(&c.rule_mask);
            }
        }
        Ok(RewardBatch {
            comparisons: comparisons.to_vec(),
            rows,
            offsets,
            n_rules,
            rule_labels,
            rule_mask,
        })
    }

    /// Every pair in the batch as (global better row, global worse row, margin).
    pub fn pairs(&self) -> Vec<(usize, usize, f32)> {
        self.comparisons
            .iter()
            .zip(&self.offsets)
            .flat_map(|(c, &o)| {
                c.pairs
                    .iter()
                    .map(move |p| (o + p.better, o + p.worse, p.margin))
            })
            .collect()
    }

    /// Whether any rule entry is labelled.
    pub fn has_rule_labels(&self) -> bool {
        self.rule_mask.contains(&1.0)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A comparison of `k` one-token responses ranked in order, all pairs, optional rule labels.
    pub(crate) fn ranked(k: usize, rules: usize, source: &str) -> Comparison {
        let pairs = (0..k)
            .flat_map(|i| {
                (i + 1..k).map(move |j| ComparisonPair {
                    better: i,
                    worse: j,
                    margin: 0.0,
                })
            })
            .collect();
        Comparison {
            source: source.into(),
            item_id: format!("item-{k}"),
            prompt_key: format!("p-{k}"),
            rows: (0..k).map(|i| vec![1, 2 + i as u32, 10]).collect(),
            response_chars: (0..k).map(|i| 10 - i).collect(),
            ranks: (0..k).collect(),
            pairs,
            rule_labels: (0..k * rules).map(|i| (i % 2) as f32).collect(),
            rule_mask: vec![1.0; k * rules],
        }
    }

    #[test]
    fn batch_lays_out_rows_pairs_and_labels() {
        let (a, b) = (ranked(2, 0, "s"), ranked(3, 2, "s"));
        let batch = RewardBatch::new(&[&a, &b], 2).unwrap();
        assert_eq!(batch.rows.len(), 5);
        assert_eq!(batch.offsets, vec![0, 2]);
        assert_eq!(
            batch.pairs(),
            vec![(0, 1, 0.0), (2, 3, 0.0), (2, 4, 0.0), (3, 4, 0.0)]
        );
        assert_eq!(&batch.rule_mask[..4], &[0.0; 4]);
        assert_eq!(&batch.rule_labels[4..], &[0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
        assert!(batch.has_rule_labels());
        let mut broken = ranked(2, 0, "s");
        broken.pairs[0].better = 1;
        let err = RewardBatch::new(&[&broken], 0).unwrap_err().to_string();
        assert!(err.contains("pair (1, 1)"), "{err}");
        assert!(RewardBatch::new(&[], 0).is_err());
    }
}
