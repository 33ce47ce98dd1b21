//! Per-item and per-rater breakdowns of agreement, including each rater's agreement with the
//! leave-one-out consensus of the other raters on the same items.

use serde::{Deserialize, Serialize};

use crate::agreement::tally::item_counts;
use crate::coefficient::Coefficient;
use crate::labels::LabelSet;

/// Agreement on one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemAgreement {
    /// Item name.
    pub item: String,
    /// Number of ratings.
    pub ratings: u32,
    /// Most frequent label (ties: the first category in domain order).
    pub modal_label: String,
    /// Share of the ratings equal to the modal label.
    pub modal_share: f64,
    /// Share of agreeing rater pairs (undefined with fewer than two ratings).
    pub pairwise_agreement: Coefficient,
}

/// Agreement of one rater with the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RaterAgreement {
    /// Rater name.
    pub rater: String,
    /// Number of labels given.
    pub labels: u64,
    /// Labels on items that at least one other rater also labelled.
    pub shared_labels: u64,
    /// Share of (this rater, other rater) pairs on shared items that agree.
    pub pairwise_agreement: Coefficient,
    /// Agreement with the leave-one-out majority of the other raters (a tie among `t`
    /// majority labels counts `1/t` when this rater's label is one of them).
    pub consensus_agreement: Coefficient,
}

/// Per-item agreement, in item order.
pub fn item_breakdown(set: &LabelSet) -> Vec<ItemAgreement> {
    let mut counts = Vec::new();
    (0..set.n_items())
        .map(|i| {
            let (_, labels) = set.item(i);
            item_counts(labels, &mut counts);
            let m = labels.len() as f64;
            // counts are sorted by category: max_by_key keeps the last max, so scan manually
            let mut best = counts[0];
            for &c in &counts[1..] {
                if c.1 > best.1 {
                    best = c;
                }
            }
            let same: f64 = counts.iter().map(|c| c.1 as f64 * (c.1 as f64 - 1.0)).sum();
            ItemAgreement {
                item: set.items().name(i as u32).to_string(),
                ratings: labels.len() as u32,
                modal_label: set.categories()[best.0 as usize].clone(),
                modal_share: best.1 as f64 / m,
                pairwise_agreement: if labels.len() >= 2 {
                    Coefficient::Value(same / (m * (m - 1.0)))
                } else {
                    Coefficient::undefined("fewer than two ratings")
                },
            }
        })
        .collect()
}

/// Per rater: `(labels, shared labels, agreeing pairs, pairs, consensus credit, consensus count)`.
pub(crate) fn rater_sums(set: &LabelSet) -> Vec<[f64; 6]> {
    let mut sums = vec![[0.0f64; 6]; set.n_raters()];
    let mut counts = Vec::new();
    for i in 0..set.n_items() {
        let (raters, labels) = set.item(i);
        item_counts(labels, &mut counts);
        for (&r, &l) in raters.iter().zip(labels) {
            let s = &mut sums[r as usize];
            s[0] += 1.0;
            if raters.len() < 2 {
                continue;
            }
            s[1] += 1.0;
            let own = counts.iter().find(|c| c.0 == l).map_or(0, |c| c.1);
            s[2] += (own - 1) as f64;
            s[3] += (raters.len() - 1) as f64;
            // leave-one-out majority of the others
            let top = counts
                .iter()
                .map(|c| if c.0 == l { c.1 - 1 } else { c.1 })
                .max()
                .unwrap_or(0);
            let tied = counts
                .iter()
                .filter(|c| (if c.0 == l { c.1 - 1 } else { c.1 }) == top)
                .count();
            if own - 1 == top {
                s[4] += 1.0 / tied as f64;
            }
            s[5] += 1.0;
        }
    }
    sums
}

/// Per-rater agreement, in rater order.
pub fn rater_breakdown(set: &LabelSet) -> Vec<RaterAgreement> {
    rater_sums(set)
        .into_iter()
        .enumerate()
        .map(|(r, s)| RaterAgreement {
            rater: set.raters().name(r as u32).to_string(),
            labels: s[0] as u64,
            shared_labels: s[1] as u64,
            pairwise_agreement: ratio(s[2], s[3]),
            consensus_agreement: ratio(s[4], s[5]),
        })
        .collect()
}

fn ratio(num: f64, den: f64) -> Coefficient {
    if den > 0.0 {
        Coefficient::Value(num / den)
    } else {
        Coefficient::undefined("no item shared with another rater")
    }
}
