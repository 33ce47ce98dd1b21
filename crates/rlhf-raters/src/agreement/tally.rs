//! [`Tally`]: the sufficient statistics of every multi-rater coefficient, accumulated in one
//! pass over items (in parallel) or over weighted item patterns (for the bootstrap).
//!
//! Every coefficient of this module is a function of a `Tally`: Krippendorff's coincidence
//! matrix, the per-item pairwise agreement of Fleiss/Gwet/Brennan–Prediger, category shares and
//! the two-rater contingency table.

use rayon::prelude::*;

use crate::labels::LabelSet;

/// Sufficient statistics of the agreement coefficients (weights are item counts, so a
/// bootstrap replicate is the same tally with multinomial weights).
#[derive(Debug, Clone)]
pub struct Tally {
    /// Number of categories `K`.
    pub k: usize,
    /// Krippendorff coincidence matrix `o_ck` (K, K), row-major.
    pub coincidence: Vec<f64>,
    /// Weight of units with at least two ratings (`n'` in Gwet's notation).
    pub multi_units: f64,
    /// Sum over multi-rated units of the pairwise agreement `P_i`.
    pub sum_item_agreement: f64,
    /// Weight of all units.
    pub units: f64,
    /// (K) sum over all units of the share `n_ik / m_i` of each category.
    pub share_sum: Vec<f64>,
    /// (K) sum over multi-rated units of the share `n_ik / m_i` (Fleiss' kappa).
    pub multi_share_sum: Vec<f64>,
    /// (K) sum over multi-rated units of `n_ik (m_i - n_ik)` (Fleiss' per-category kappa).
    pub category_disagreement: Vec<f64>,
    /// Smallest number of ratings on a unit.
    pub m_min: u32,
    /// Largest number of ratings on a unit.
    pub m_max: u32,
    /// Two-rater contingency table (K, K), rows = first rater; empty unless the set has two raters.
    pub contingency: Vec<f64>,
}

impl Tally {
    /// An empty tally over `k` categories; `two_raters` allocates the contingency table.
    pub fn new(k: usize, two_raters: bool) -> Self {
        Tally {
            k,
            coincidence: vec![0.0; k * k],
            multi_units: 0.0,
            sum_item_agreement: 0.0,
            units: 0.0,
            share_sum: vec![0.0; k],
            multi_share_sum: vec![0.0; k],
            category_disagreement: vec![0.0; k],
            m_min: u32::MAX,
            m_max: 0,
            contingency: if two_raters {
                vec![0.0; k * k]
            } else {
                Vec::new()
            },
        }
    }

    /// Adds one unit with category counts `counts` (pairs `(category, count)`, total `m`),
    /// the two-rater cell if both raters labelled it, and weight `w`.
    pub fn add(&mut self, counts: &[(u32, u32)], cell: Option<(u32, u32)>, w: f64) {
        let m: u32 = counts.iter().map(|c| c.1).sum();
        if m == 0 || w == 0.0 {
            return;
        }
        self.m_min = self.m_min.min(m);
        self.m_max = self.m_max.max(m);
        let mf = m as f64;
        self.units += w;
        for &(c, n) in counts {
            self.share_sum[c as usize] += w * n as f64 / mf;
        }
        if m >= 2 {
            let scale = w / (mf - 1.0);
            let mut same_pairs = 0.0;
            for &(c, nc) in counts {
                let nc = nc as f64;
                same_pairs += nc * (nc - 1.0);
                self.multi_share_sum[c as usize] += w * nc / mf;
                self.category_disagreement[c as usize] += w * nc * (mf - nc);
                let row = c as usize * self.k;
                for &(d, nd) in counts {
                    let pairs = if c == d {
                        nc * (nc - 1.0)
                    } else {
                        nc * nd as f64
                    };
                    self.coincidence[row + d as usize] += scale * pairs;
                }
            }
            self.multi_units += w;
            self.sum_item_agreement += w * same_pairs / (mf * (mf - 1.0));
        }
        if let Some((a, b)) = cell {
            self.contingency[a as usize * self.k + b as usize] += w;
        }
    }

    /// Adds another tally of the same shape.
    pub fn merge(mut self, other: Tally) -> Tally {
        let add = |a: &mut Vec<f64>, b: &Vec<f64>| a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        add(&mut self.coincidence, &other.coincidence);
        add(&mut self.share_sum, &other.share_sum);
        add(&mut self.multi_share_sum, &other.multi_share_sum);
        add(
            &mut self.category_disagreement,
            &other.category_disagreement,
        );
        add(&mut self.contingency, &other.contingency);
        self.multi_units += other.multi_units;
        self.sum_item_agreement += other.sum_item_agreement;
        self.units += other.units;
        self.m_min = self.m_min.min(other.m_min);
        self.m_max = self.m_max.max(other.m_max);
        self
    }

    /// Marginals `n_c` of the coincidence matrix (K).
    pub fn coincidence_marginals(&self) -> Vec<f64> {
        self.coincidence
            .chunks(self.k.max(1))
            .map(|row| row.iter().sum())
            .collect()
    }
}

/// Writes the `(category, count)` pairs of one item's labels into `out`, sorted by category.
#[inline]
pub fn item_counts(labels: &[u32], out: &mut Vec<(u32, u32)>) {
    out.clear();
    for &l in labels {
        match out.iter_mut().find(|e| e.0 == l) {
            Some(e) => e.1 += 1,
            None => out.push((l, 1)),
        }
    }
    out.sort_unstable_by_key(|e| e.0);
}

/// The two-rater cell of an item when the set has exactly two raters and both labelled it.
#[inline]
pub fn two_rater_cell(set: &LabelSet, raters: &[u32], labels: &[u32]) -> Option<(u32, u32)> {
    if set.n_raters() == 2 && raters.len() == 2 {
        // raters are sorted by id: raters[0] == 0, raters[1] == 1
        Some((labels[0], labels[1]))
    } else {
        None
    }
}

/// Tallies every item of `set` (parallel over items).
pub fn tally(set: &LabelSet) -> Tally {
    let k = set.n_categories();
    let two = set.n_raters() == 2;
    (0..set.n_items())
        .into_par_iter()
        .with_min_len(4096)
        .fold(
            || (Tally::new(k, two), Vec::with_capacity(8)),
            |(mut t, mut scratch), i| {
                let (raters, labels) = set.item(i);
                item_counts(labels, &mut scratch);
                t.add(&scratch, two_rater_cell(set, raters, labels), 1.0);
                (t, scratch)
            },
        )
        .map(|(t, _)| t)
        .reduce(|| Tally::new(k, two), Tally::merge)
}
