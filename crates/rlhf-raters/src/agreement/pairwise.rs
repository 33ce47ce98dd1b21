//! Rater x rater agreement: for every pair of raters that share items, the number of shared
//! items, their percent agreement and Cohen's (unweighted) kappa. Stored sparsely: only pairs
//! that co-rated something appear, so 10k raters never allocate a 10k x 10k matrix.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::coefficient::{Coefficient, chance_corrected};
use crate::labels::LabelSet;

/// Agreement between two raters on the items both labelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairAgreement {
    /// First rater (lower id).
    pub rater_a: String,
    /// Second rater.
    pub rater_b: String,
    /// Items both labelled.
    pub shared_items: u64,
    /// Share of shared items with identical labels.
    pub agreement: f64,
    /// Cohen's unweighted kappa on the shared items.
    pub cohen_kappa: Coefficient,
}

/// Every co-rating rater pair, sorted by `(rater_a, rater_b)` ids.
pub fn pairwise_agreement(set: &LabelSet) -> Vec<PairAgreement> {
    let k = set.n_categories();
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut keys: Vec<(u32, u32)> = Vec::new();
    // per pair: [n, agree, marg_a (K), marg_b (K)]
    let stride = 2 + 2 * k;
    let mut acc: Vec<f64> = Vec::new();
    for i in 0..set.n_items() {
        let (raters, labels) = set.item(i);
        for x in 0..raters.len() {
            for y in x + 1..raters.len() {
                let key = ((raters[x] as u64) << 32) | raters[y] as u64;
                let slot = *index.entry(key).or_insert_with(|| {
                    keys.push((raters[x], raters[y]));
                    acc.resize(acc.len() + stride, 0.0);
                    keys.len() - 1
                });
                let s = &mut acc[slot * stride..(slot + 1) * stride];
                s[0] += 1.0;
                s[1] += f64::from(u8::from(labels[x] == labels[y]));
                s[2 + labels[x] as usize] += 1.0;
                s[2 + k + labels[y] as usize] += 1.0;
            }
        }
    }
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_unstable_by_key(|&s| keys[s]);
    order
        .into_iter()
        .map(|slot| {
            let s = &acc[slot * stride..(slot + 1) * stride];
            let n = s[0];
            let po = s[1] / n;
            let pe: f64 = (0..k).map(|c| (s[2 + c] / n) * (s[2 + k + c] / n)).sum();
            PairAgreement {
                rater_a: set.raters().name(keys[slot].0).to_string(),
                rater_b: set.raters().name(keys[slot].1).to_string(),
                shared_items: n as u64,
                agreement: po,
                cohen_kappa: chance_corrected(po, pe),
            }
        })
        .collect()
}
