//! [`Tally`]: the sufficient statistics of every multi-rater coefficient, accumulated in one
//! pass over items (in parallel) or over weighted item patterns (for the bootstrap).
//!
//! Every coefficient of this module is a function of a `Tally`: Krippendorff's coincidence
//! matrix, the per-item pairwise agreement of Fleiss/Gwet/Brennan–Prediger, category shares and
//! the two-rater contingency table.
//!
//! Accumulation is exact: an [`Accumulator`] adds integer counts per number of ratings `m`
//! (pair counts `n_c n_k`, shares `n_c`, ...), and [`Accumulator::finish`] divides by `m - 1`,
//! `m (m - 1)` or `m` once per distinct `m`. Integer adds are fast and order-free, so the result
//! does not depend on the number of threads.

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

/// Integer sums over the units that have exactly `m` ratings.
#[derive(Debug, Clone)]
struct Bucket {
    m: u64,
    units: u64,
    same_pairs: u64,        // sum of sum_c n_c (n_c - 1)
    pairs: Vec<u64>,        // (K, K) sum of n_c n_k (c != k) or n_c (n_c - 1) (c == k)
    share: Vec<u64>,        // (K) sum of n_c
    disagreement: Vec<u64>, // (K) sum of n_c (m - n_c)
}

/// Exact integer accumulator of a [`Tally`].
#[derive(Debug, Clone)]
pub struct Accumulator {
    k: usize,
    buckets: Vec<Bucket>,
    last: usize,
    contingency: Vec<u64>, // (K, K), empty unless two raters
}

impl Accumulator {
    /// An empty accumulator over `k` categories; `two_raters` keeps the contingency table.
    pub fn new(k: usize, two_raters: bool) -> Self {
        Accumulator {
            k,
            buckets: Vec::new(),
            last: 0,
            contingency: if two_raters {
                vec![0; k * k]
            } else {
                Vec::new()
            },
        }
    }

    fn bucket(&mut self, m: u64) -> &mut Bucket {
        if self.buckets.get(self.last).is_none_or(|b| b.m != m) {
            self.last = match self.buckets.iter().position(|b| b.m == m) {
                Some(p) => p,
                None => {
                    let k = self.k;
                    self.buckets.push(Bucket {
                        m,
                        units: 0,
                        same_pairs: 0,
                        pairs: vec![0; k * k],
                        share: vec![0; k],
                        disagreement: vec![0; k],
                    });
                    self.buckets.len() - 1
                }
            };
        }
        &mut self.buckets[self.last]
    }

    /// Adds one unit with category counts `counts` (pairs `(category, count)`), the two-rater
    /// cell if both raters labelled it, and integer weight `w` (1, or a bootstrap multiplicity).
    #[inline]
    pub fn add(&mut self, counts: &[(u32, u32)], cell: Option<(u32, u32)>, w: u64) {
        let m: u64 = counts.iter().map(|c| u64::from(c.1)).sum();
        if m == 0 || w == 0 {
            return;
        }
        if let Some((a, b)) = cell {
            self.contingency[a as usize * self.k + b as usize] += w;
        }
        let k = self.k;
        let bucket = self.bucket(m);
        bucket.units += w;
        for &(c, nc) in counts {
            bucket.share[c as usize] += w * u64::from(nc);
        }
        if m < 2 {
            return;
        }
        for &(c, nc) in counts {
            let nc = u64::from(nc);
            bucket.same_pairs += w * nc * (nc - 1);
            bucket.disagreement[c as usize] += w * nc * (m - nc);
            let row = &mut bucket.pairs[c as usize * k..(c as usize + 1) * k];
            for &(d, nd) in counts {
                row[d as usize] += w * if c == d {
                    nc * (nc - 1)
                } else {
                    nc * u64::from(nd)
                };
            }
        }
    }

    /// Adds another accumulator of the same shape.
    pub fn merge(mut self, other: Accumulator) -> Accumulator {
        for b in other.buckets {
            let mine = self.bucket(b.m);
            mine.units += b.units;
            mine.same_pairs += b.same_pairs;
            let add =
                |x: &mut Vec<u64>, y: &Vec<u64>| x.iter_mut().zip(y).for_each(|(p, q)| *p += q);
            add(&mut mine.pairs, &b.pairs);
            add(&mut mine.share, &b.share);
            add(&mut mine.disagreement, &b.disagreement);
        }
        self.contingency
            .iter_mut()
            .zip(&other.contingency)
            .for_each(|(p, q)| *p += q);
        self
    }

    /// The floating-point statistics (buckets visited in increasing `m`).
    pub fn finish(&self) -> Tally {
        let k = self.k;
        let mut t = Tally::new(k, !self.contingency.is_empty());
        let mut order: Vec<&Bucket> = self.buckets.iter().filter(|b| b.units > 0).collect();
        order.sort_by_key(|b| b.m);
        for b in order {
            let m = b.m as f64;
            t.m_min = t.m_min.min(b.m as u32);
            t.m_max = t.m_max.max(b.m as u32);
            t.units += b.units as f64;
            for c in 0..k {
                t.share_sum[c] += b.share[c] as f64 / m;
            }
            if b.m >= 2 {
                t.multi_units += b.units as f64;
                t.sum_item_agreement += b.same_pairs as f64 / (m * (m - 1.0));
                for c in 0..k {
                    t.multi_share_sum[c] += b.share[c] as f64 / m;
                    t.category_disagreement[c] += b.disagreement[c] as f64;
                }
                for (o, &p) in t.coincidence.iter_mut().zip(&b.pairs) {
                    *o += p as f64 / (m - 1.0);
                }
            }
        }
        for (x, &c) in t.contingency.iter_mut().zip(&self.contingency) {
            *x = c as f64;
        }
        t
    }
}

/// Items per parallel block.
const BLOCK: usize = 16_384;

/// Tallies every item of `set` (parallel over fixed blocks of items).
pub fn tally(set: &LabelSet) -> Tally {
    let k = set.n_categories();
    let two = set.n_raters() == 2;
    let n = set.n_items();
    let blocks: Vec<Accumulator> = (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let mut t = Accumulator::new(k, two);
            // dense per-block counters: `dense[c]` counts category c on the current item, and
            // `touched[..len]` lists the categories to read back and reset; branch-free, since
            // whether a label is new to the item is unpredictable
            let mut dense = vec![0u32; k];
            let mut touched = vec![0u32; k + 1]; // a write lands at `len <= k`
            let mut counts: Vec<(u32, u32)> = Vec::with_capacity(8);
            for i in b * BLOCK..((b + 1) * BLOCK).min(n) {
                let (raters, labels) = set.item(i);
                let mut len = 0;
                for &l in labels {
                    let seen = dense[l as usize];
                    touched[len] = l;
                    len += usize::from(seen == 0);
                    dense[l as usize] = seen + 1;
                }
                counts.clear();
                for &c in &touched[..len] {
                    counts.push((c, dense[c as usize]));
                    dense[c as usize] = 0;
                }
                t.add(&counts, two_rater_cell(set, raters, labels), 1);
            }
            t
        })
        .collect();
    blocks
        .into_iter()
        .fold(Accumulator::new(k, two), Accumulator::merge)
        .finish()
}
