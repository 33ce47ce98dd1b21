//! Evaluation of a reward model on comparisons whose pairs say which response is better (held
//! out labels, or the ground truth): the objective's loss, pairwise accuracy, mean margin,
//! calibration of sigmoid(r_better - r_worse) in both orientations, the same per data source
//! and per K, the accuracy of the rule heads, and the "longer answer wins" baseline.
//!
//! ECE orientations: `ece` bins each pair as labelled (every outcome is "better wins", so it
//! measures under-confidence only); `ece_symmetric` adds each pair reversed (1 - p against
//! "loses"), the reliability diagram of a symmetric classifier, which also sees over-confidence.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::batch::{Comparison, RewardBatch};
use crate::model::RewardModel;
use crate::numerics::sigmoid;
use crate::objective::ObjectiveConfig;
use crate::{DEFAULT_ECE_BINS, Result, RewardError, expected_calibration_error, pairwise_metrics};

/// Pairwise numbers of one slice of the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairStats {
    /// Pairs counted.
    pub pairs: usize,
    /// Share ordered right (ties 1/2).
    pub accuracy: f64,
    /// Mean r_better - r_worse.
    pub mean_margin: f64,
    /// ECE of sigmoid(r_better - r_worse) against "better wins".
    pub ece: f64,
    /// ECE over both orientations of every pair.
    pub ece_symmetric: f64,
    /// Accuracy of "the longer response (in characters) wins" on the same pairs (ties 1/2).
    pub length_baseline_accuracy: f64,
}

/// The evaluation of a model on a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Comparisons scored.
    pub comparisons: usize,
    /// The objective's preference loss over the whole set (0 without pairs).
    pub loss: f64,
    /// The weighted rule loss (0 without labels).
    pub rule_loss: f64,
    /// All pairs.
    pub overall: PairStats,
    /// By data source.
    pub per_source: BTreeMap<String, PairStats>,
    /// By the number of responses K of the comparison.
    pub per_k: BTreeMap<usize, PairStats>,
    /// Share of labelled (response, rule) entries the rule heads get right (logit > 0 means
    /// broken); `None` without labels or rule heads.
    pub rule_accuracy: Option<f64>,
    /// Share of the labelled entries that are violations (predicting "never broken" scores
    /// 1 minus this); `None` as above.
    pub rule_violation_rate: Option<f64>,
    /// Share of the labelled violations the rule heads flag (recall); `None` without any.
    pub rule_recall: Option<f64>,
}

/// One pair's reward gap with its grouping keys.
struct Scored<'a> {
    margin: f64,
    length_vote: f64,
    source: &'a str,
    k: usize,
}

fn pair_stats(pairs: &[&Scored<'_>]) -> Result<PairStats> {
    let margins: Vec<f64> = pairs.iter().map(|p| p.margin).collect();
    let zeros = vec![0.0; margins.len()];
    let m = pairwise_metrics(&margins, &zeros, None, DEFAULT_ECE_BINS)?;
    let mut probabilities: Vec<f64> = margins.iter().map(|&d| sigmoid(d)).collect();
    probabilities.extend(margins.iter().map(|&d| sigmoid(-d)));
    let mut outcomes = vec![true; margins.len()];
    outcomes.extend(vec![false; margins.len()]);
    Ok(PairStats {
        pairs: m.pairs,
        accuracy: m.accuracy,
        mean_margin: m.mean_margin,
        ece: m.ece,
        ece_symmetric: expected_calibration_error(&probabilities, &outcomes, DEFAULT_ECE_BINS)?,
        length_baseline_accuracy: pairs.iter().map(|p| p.length_vote).sum::<f64>()
            / pairs.len() as f64,
    })
}

/// The report from every row's reward (N, comparisons in order) and rule logits (N, R).
pub fn report(
    data: &[Comparison],
    rewards: &[f32],
    rule_logits: &[f32],
    n_rules: usize,
    objective: &ObjectiveConfig,
) -> Result<EvalReport> {
    let refs: Vec<&Comparison> = data.iter().collect();
    let batch = RewardBatch::new(&refs, n_rules)?;
    let value = objective.evaluate(&batch, rewards, rule_logits)?;
    let mut scored = Vec::new();
    for (c, &o) in data.iter().zip(&batch.offsets) {
        for p in &c.pairs {
            let (lb, lw) = (c.response_chars[p.better], c.response_chars[p.worse]);
            scored.push(Scored {
                margin: f64::from(rewards[o + p.better]) - f64::from(rewards[o + p.worse]),
                length_vote: match lb.cmp(&lw) {
                    std::cmp::Ordering::Greater => 1.0,
                    std::cmp::Ordering::Equal => 0.5,
                    std::cmp::Ordering::Less => 0.0,
                },
                source: &c.source,
                k: c.k(),
            });
        }
    }
    if scored.is_empty() {
        return Err(RewardError::Empty {
            op: "eval::report",
            what: "the data holds no ranked pair to evaluate".into(),
        });
    }
    let all: Vec<&Scored<'_>> = scored.iter().collect();
    let mut by_source: BTreeMap<String, Vec<&Scored<'_>>> = BTreeMap::new();
    let mut by_k: BTreeMap<usize, Vec<&Scored<'_>>> = BTreeMap::new();
    for s in &scored {
        by_source.entry(s.source.to_string()).or_default().push(s);
        by_k.entry(s.k).or_default().push(s);
    }
    let labelled: Vec<usize> = (0..batch.rule_mask.len())
        .filter(|&i| batch.rule_mask[i] == 1.0)
        .collect();
    let rule_accuracy = (!labelled.is_empty()).then(|| {
        let right = labelled
            .iter()
            .filter(|&&i| (rule_logits[i] > 0.0) == (batch.rule_labels[i] >= 0.5))
            .count();
        right as f64 / labelled.len() as f64
    });
    let broken: Vec<usize> = labelled
        .iter()
        .copied()
        .filter(|&i| batch.rule_labels[i] >= 0.5)
        .collect();
    let rule_violation_rate =
        (!labelled.is_empty()).then(|| broken.len() as f64 / labelled.len() as f64);
    let rule_recall = (!broken.is_empty()).then(|| {
        broken.iter().filter(|&&i| rule_logits[i] > 0.0).count() as f64 / broken.len() as f64
    });
    Ok(EvalReport {
        comparisons: data.len(),
        loss: f64::from(value.preference),
        rule_loss: f64::from(value.rules),
        overall: pair_stats(&all)?,
        per_source: by_source
            .into_iter()
            .map(|(k, v)| Ok((k, pair_stats(&v)?)))
            .collect::<Result<_>>()?,
        per_k: by_k
            .into_iter()
            .map(|(k, v)| Ok((k, pair_stats(&v)?)))
            .collect::<Result<_>>()?,
        rule_accuracy,
        rule_violation_rate,
        rule_recall,
    })
}

/// Scores every response of `data` with `model` (`batch_size` comparisons per forward) and
/// reports; comparisons without pairs count only towards the rule numbers.
pub fn evaluate(
    model: &RewardModel,
    data: &[Comparison],
    objective: &ObjectiveConfig,
    batch_size: usize,
) -> Result<EvalReport> {
    let (rewards, rule_logits) = score_rows(model, data, batch_size)?;
    report(data, &rewards, &rule_logits, model.n_rules(), objective)
}

/// Every row's reward (N) and rule logits (N, R), `batch_size` comparisons per forward.
pub fn score_rows(
    model: &RewardModel,
    data: &[Comparison],
    batch_size: usize,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let (mut rewards, mut rule_logits) = (Vec::new(), Vec::new());
    for chunk in data.chunks(batch_size.max(1)) {
        let rows: Vec<&[u32]> = chunk
            .iter()
            .flat_map(|c| c.rows.iter().map(Vec::as_slice))
            .collect();
        let out = model.forward(&rows)?;
        rewards.extend(out.rewards);
        rule_logits.extend(out.rule_logits);
    }
    Ok((rewards, rule_logits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::ranked;

    #[test]
    fn report_by_hand() {
        // Source a: K = 2, rewards [1, 0]: right (margin 1). Source b: K = 3 ranked 0 < 1 < 2,
        // rewards [0, 1, -1]: pairs (0,1) wrong (-1), (0,2) right (1), (1,2) right (2).
        let data = vec![ranked(2, 0, "a"), ranked(3, 0, "b")];
        let rewards = [1.0, 0.0, 0.0, 1.0, -1.0];
        let r = report(&data, &rewards, &[], 0, &ObjectiveConfig::default()).unwrap();
        assert_eq!(r.overall.pairs, 4);
        assert_eq!(r.overall.accuracy, 0.75);
        assert_eq!(r.overall.mean_margin, (1.0 - 1.0 + 1.0 + 2.0) / 4.0);
        assert_eq!(r.per_source["a"].accuracy, 1.0);
        assert!((r.per_k[&3].accuracy - 2.0 / 3.0).abs() < 1e-12);
        // `ranked` makes better responses longer: the length baseline is always right.
        assert_eq!(r.overall.length_baseline_accuracy, 1.0);
        // Symmetric ECE: p = s(1) = 0.731 (twice), s(-1), s(2) and their complements.
        assert!(r.overall.ece_symmetric > 0.0 && r.overall.ece_symmetric < r.overall.ece + 0.5);
        assert!(r.rule_accuracy.is_none() && r.rule_recall.is_none());
        let sp = |d: f64| (1.0 + (-d).exp()).ln();
        let expected = (sp(1.0) + (sp(-1.0) + sp(1.0) + sp(2.0)) / 3.0) / 2.0;
        assert!((r.loss - expected).abs() < 1e-6);
        // Rule heads: labels [0, 1] / [0, 1] on rows of `ranked(2, 1, ..)`, logits [-1, 2].
        let c = ranked(2, 1, "r");
        let r = report(
            &[c],
            &[1.0, 0.0],
            &[-1.0, 2.0],
            1,
            &ObjectiveConfig::default(),
        )
        .unwrap();
        assert_eq!(r.rule_accuracy, Some(1.0));
        assert_eq!(
            (r.rule_violation_rate, r.rule_recall),
            (Some(0.5), Some(1.0))
        );
    }
}
