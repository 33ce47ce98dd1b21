//! Dataset statistics gathered in one streaming pass: record counts by kind, distinct items,
//! prompts and raters, the distribution of K over rankings, implied pairs, and length summaries.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::formats::item_id::{StableHash, hash_prompt};
use crate::records::Feedback;

/// Accumulates statistics over records; call [`DatasetStats::summary`] at the end.
///
/// ```
/// use rlhf_data::records::{FeedbackMeta, Prompt, Ranking};
/// use rlhf_data::stats::DatasetStats;
/// let mut stats = DatasetStats::new();
/// let responses = vec!["a".to_string(), "b".into(), "c".into()];
/// stats.add(&Ranking::from_ranks(FeedbackMeta::new("q"), Prompt::user("?"), responses, &[0, 1, 1]).into());
/// let summary = stats.summary();
/// assert_eq!((summary.implied_pairs, summary.tied_pairs), (2, 1));
/// assert_eq!(summary.k_distribution[&3], 1);
/// ```
#[derive(Debug, Default)]
pub struct DatasetStats {
    by_kind: BTreeMap<&'static str, u64>,
    items: HashSet<u64>,
    prompts: HashSet<u64>,
    raters: HashSet<u64>,
    without_rater: u64,
    multi_turn_prompts: u64,
    k_distribution: BTreeMap<usize, u64>,
    implied_pairs: u64,
    tied_pairs: u64,
    empty_responses: u64,
    prompt_chars: Vec<u32>,
    prompt_turns: Vec<u32>,
    response_chars: Vec<u32>,
}

/// min / median / mean / 90th percentile / max of a length, in characters or turns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LengthSummary {
    /// How many values.
    pub count: u64,
    /// Smallest.
    pub min: u32,
    /// Median (lower middle for an even count).
    pub p50: u32,
    /// Mean.
    pub mean: f64,
    /// 90th percentile (nearest rank).
    pub p90: u32,
    /// Largest.
    pub max: u32,
}

impl LengthSummary {
    /// Summarises `values` (sorted in place).
    pub fn of(values: &mut [u32]) -> Self {
        if values.is_empty() {
            return LengthSummary::default();
        }
        values.sort_unstable();
        let n = values.len();
        let rank = |q: f64| values[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        let sum: u64 = values.iter().map(|&v| u64::from(v)).sum();
        LengthSummary {
            count: n as u64,
            min: values[0],
            p50: rank(0.5),
            mean: sum as f64 / n as f64,
            p90: rank(0.9),
            max: values[n - 1],
        }
    }
}

/// The statistics of a dataset, as `rlhf data stats` prints them (JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatsSummary {
    /// All records.
    pub records: u64,
    /// Records per kind (`pairwise`, `ranking`, ...).
    pub by_kind: BTreeMap<String, u64>,
    /// Distinct item ids.
    pub items: u64,
    /// Distinct prompts (by their turns).
    pub prompts: u64,
    /// Prompts of more than one turn (counted per record).
    pub multi_turn_prompts: u64,
    /// Distinct rater ids.
    pub raters: u64,
    /// Records without a rater id.
    pub records_without_rater: u64,
    /// Rankings per number of responses K.
    pub k_distribution: BTreeMap<usize, u64>,
    /// Comparisons implied: one per pair, C(K,2) minus ties per ranking.
    pub implied_pairs: u64,
    /// Pairs left out of rankings because the two responses tie.
    pub tied_pairs: u64,
    /// Responses that are empty strings.
    pub empty_responses: u64,
    /// Prompt length in characters, over all turns.
    pub prompt_chars: LengthSummary,
    /// Prompt length in turns.
    pub prompt_turns: LengthSummary,
    /// Response length in characters.
    pub response_chars: LengthSummary,
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl DatasetStats {
    /// Empty statistics.
    pub fn new() -> Self {
        DatasetStats::default()
    }

    /// Counts one record.
    pub fn add(&mut self, record: &Feedback) {
        *self.by_kind.entry(record.kind().as_str()).or_insert(0) += 1;
        let meta = record.meta();
        self.items
            .insert(StableHash::new().part(meta.item_id.as_bytes()).finish());
        match &meta.rater_id {
            Some(rater) => {
                self.raters
                    .insert(StableHash::new().part(rater.as_bytes()).finish());
            }
            None => self.without_rater += 1,
        }
        if let Some(prompt) = record.prompt() {
            let mut hash = StableHash::new();
            hash_prompt(&mut hash, prompt);
            self.prompts.insert(hash.finish());
            if prompt.turns.len() > 1 {
                self.multi_turn_prompts += 1;
            }
            self.prompt_chars.push(saturating_u32(prompt.char_len()));
            self.prompt_turns.push(saturating_u32(prompt.turns.len()));
        }
        let mut responses = |texts: &mut dyn Iterator<Item = &String>| {
            for text in texts {
                self.response_chars
                    .push(saturating_u32(text.chars().count()));
                if text.is_empty() {
                    self.empty_responses += 1;
                }
            }
        };
        match record {
            Feedback::Pairwise(r) => {
                responses(&mut [&r.chosen, &r.rejected].into_iter());
                self.implied_pairs += 1;
            }
            Feedback::Ranking(r) => {
                responses(&mut r.responses.iter());
                let k = r.k();
                let pairs = r.pairs().len() as u64;
                *self.k_distribution.entry(k).or_insert(0) += 1;
                self.implied_pairs += pairs;
                let all_pairs = (k * k.saturating_sub(1) / 2) as u64; // C(K,2)
                self.tied_pairs += all_pairs.saturating_sub(pairs);
            }
            Feedback::RuleViolations(r) => responses(&mut r.responses.iter()),
            Feedback::Questions(r) => responses(&mut std::iter::once(&r.response)),
            Feedback::Rating(r) => responses(&mut std::iter::once(&r.response)),
            Feedback::Label(_) => {}
        }
    }

    /// The summary so far.
    pub fn summary(&mut self) -> StatsSummary {
        StatsSummary {
            records: self.by_kind.values().sum(),
            by_kind: self
                .by_kind
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            items: self.items.len() as u64,
            prompts: self.prompts.len() as u64,
            multi_turn_prompts: self.multi_turn_prompts,
            raters: self.raters.len() as u64,
            records_without_rater: self.without_rater,
            k_distribution: self.k_distribution.clone(),
            implied_pairs: self.implied_pairs,
            tied_pairs: self.tied_pairs,
            empty_responses: self.empty_responses,
            prompt_chars: LengthSummary::of(&mut self.prompt_chars),
            prompt_turns: LengthSummary::of(&mut self.prompt_turns),
            response_chars: LengthSummary::of(&mut self.response_chars),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{FeedbackMeta, Label, Pairwise, Prompt, Ranking, Turn};

    #[test]
    fn length_summary_uses_nearest_rank() {
        let s = LengthSummary::of(&mut [5, 1, 3, 2, 4, 6, 7, 8, 9, 10]);
        assert_eq!((s.min, s.p50, s.p90, s.max, s.mean), (1, 5, 9, 10, 5.5));
        assert_eq!(LengthSummary::of(&mut []), LengthSummary::default());
    }

    #[test]
    fn counts_kinds_prompts_k_and_ties() {
        let mut stats = DatasetStats::new();
        let p = Prompt::new(vec![
            Turn::user("hi"),
            Turn::assistant("yo"),
            Turn::user("2+2?"),
        ]);
        stats.add(&Pairwise::new(FeedbackMeta::new("a"), p.clone(), "4", "").into());
        let r = Ranking::new(
            FeedbackMeta::new("b").with_rater("r1"),
            Prompt::user("q"),
            vec!["x".into(), "y".into(), "z".into()],
            vec![vec![0, 1], vec![2]],
        );
        stats.add(&r.into());
        stats.add(&Label::new("c", "r1", "yes").into());
        let s = stats.summary();
        assert_eq!(s.records, 3);
        assert_eq!(s.by_kind["ranking"], 1);
        assert_eq!(
            (s.items, s.prompts, s.raters, s.records_without_rater),
            (3, 2, 1, 1)
        );
        assert_eq!(s.k_distribution, BTreeMap::from([(3, 1)]));
        assert_eq!(
            (s.implied_pairs, s.tied_pairs, s.empty_responses),
            (3, 1, 1)
        );
        assert_eq!(s.multi_turn_prompts, 1);
        assert_eq!(s.prompt_chars.max, 8);
        assert_eq!(s.response_chars.count, 5);
    }
}
