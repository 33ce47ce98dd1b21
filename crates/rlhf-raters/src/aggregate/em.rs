//! One EM engine for the class-conditional models, where rater `r` labels an item of true class
//! `k` as `l` with probability `e_r(l | k)`:
//!
//! - **Dawid–Skene** (Dawid & Skene 1979): `e_r` is a full K x K confusion matrix;
//!   `e_r(l|k) = (c_rkl + s) / (sum_l c_rkl + K s)` from soft counts `c_rkl`.
//! - **One-coin Dawid–Skene**: one accuracy `p_r` per rater, errors uniform over the other
//!   `K - 1` classes; `p_r = (sum_k c_rkk + s) / (n_r + 2 s)`.
//! - **MACE** (Hovy et al. 2013): with probability `theta_r` the rater copies the truth, else
//!   "spams" from its own distribution `xi_r`: `e_r(l|k) = theta_r [l = k] + (1 - theta_r) xi_r(l)`;
//!   EM over the spam indicators, uniform class prior, smoothed counts.
//!
//! E-step: `T_ik ∝ prior_k prod_{(r, l) on i} e_r(l | k)` (in probability space, rescaled
//! against underflow); the log-likelihood is the sum of the normalisers. Items with gold are clamped
//! to their gold class when gold is given. Initialisation: majority-vote shares. Stops when the
//! log-likelihood per label changes by less than `tolerance`.
//!
//! Parallel and deterministic: the E-step runs over fixed blocks of items and, while each
//! posterior is hot, adds it to its block's soft counts; blocks are summed in order, so results
//! do not depend on the thread count.

use rayon::prelude::*;

use crate::aggregate::{Aggregation, EmConfig, argmax_rows, majority::majority_vote};
use crate::labels::{Gold, LabelSet};

/// Which emission model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Full confusion matrices.
    DawidSkene,
    /// One accuracy per rater.
    OneCoin,
    /// Competence and spamming distribution per rater.
    Mace,
}

/// Rater-major view of the labels: for rater `r`, positions `offsets[r]..offsets[r+1]` of
/// `items` / `labels`.
pub(crate) struct ByRater {
    pub offsets: Vec<usize>, // (n_raters + 1)
    pub items: Vec<u32>,     // (n_labels)
    pub labels: Vec<u32>,    // (n_labels)
}

impl ByRater {
    pub fn new(set: &LabelSet) -> Self {
        let nr = set.n_raters();
        let mut offsets = vec![0usize; nr + 1];
        for &r in set.rater_ids() {
            offsets[r as usize + 1] += 1;
        }
        for r in 0..nr {
            offsets[r + 1] += offsets[r];
        }
        let mut fill = offsets.clone();
        let mut items = vec![0u32; set.n_labels()];
        let mut labels = vec![0u32; set.n_labels()];
        for i in 0..set.n_items() {
            let (raters, ls) = set.item(i);
            for (&r, &l) in raters.iter().zip(ls) {
                let p = &mut fill[r as usize];
                items[*p] = i as u32;
                labels[*p] = l;
                *p += 1;
            }
        }
        ByRater {
            offsets,
            items,
            labels,
        }
    }
}

/// Per-block soft counts for the M-step. Items are split into a fixed number of contiguous
/// blocks (from the data size and a memory cap, never from the thread count); each block adds
/// its posteriors into its own (n_raters, K, K) array, and the arrays are summed in block order,
/// so results are identical on any number of threads.
pub(crate) struct BlockCounts {
    items_per_block: usize,
    blocks: Vec<Vec<f64>>, // (blocks) x (n_raters, K classes, K labels)
}

impl BlockCounts {
    pub fn new(n_items: usize, n_raters: usize, k: usize) -> Self {
        let bytes = (n_raters * k * k * 8).max(1);
        let cap = (256usize << 20) / bytes;
        let wanted = n_items.div_ceil(8192).clamp(1, 8).min(cap.max(1));
        let per = n_items.div_ceil(wanted).max(1);
        // exactly one block per chunk of `per` items, so every block is visited by each pass
        let n_blocks = n_items.div_ceil(per).max(1);
        BlockCounts {
            items_per_block: per,
            blocks: vec![vec![0.0; n_raters * k * k]; n_blocks],
        }
    }

    /// The summed soft counts `c_rkl` (n_raters, K, K).
    pub fn total(&self) -> Vec<f64> {
        let mut out = self.blocks[0].clone();
        out.par_chunks_mut(4096).enumerate().for_each(|(c, chunk)| {
            for b in &self.blocks[1..] {
                for (x, y) in chunk.iter_mut().zip(&b[c * 4096..]) {
                    *x += y;
                }
            }
        });
        out
    }
}

/// Adds item `i`'s posterior `row` (K) to the counts of each of its labels.
#[inline]
fn add_row(counts: &mut [f64], raters: &[u32], labels: &[u32], row: &[f64]) {
    let k = row.len();
    for (&r, &l) in raters.iter().zip(labels) {
        let c = &mut counts[r as usize * k * k..(r as usize + 1) * k * k];
        for (truth, &t) in row.iter().enumerate() {
            c[truth * k + l as usize] += t;
        }
    }
}

/// Fills `acc` from given posteriors (the majority-vote start).
pub(crate) fn counts_from(set: &LabelSet, posteriors: &[f64], k: usize, acc: &mut BlockCounts) {
    let per = acc.items_per_block;
    acc.blocks
        .par_iter_mut()
        .enumerate()
        .for_each(|(b, counts)| {
            counts.iter_mut().for_each(|x| *x = 0.0);
            for i in b * per..((b + 1) * per).min(set.n_items()) {
                let (raters, labels) = set.item(i);
                add_row(counts, raters, labels, &posteriors[i * k..(i + 1) * k]);
            }
        });
}

/// E-step fused with the M-step's counting: fills `posteriors` (n_items, K) from `prior` (K)
/// and the emission probabilities `emit` (n_raters, K labels, K classes), adds each row into
/// `acc`, and returns the log-likelihood. Works in probability space with rescaling (no
/// logarithm per label): every 16 labels, a row whose largest entry fell below 2^-600 is
/// multiplied by 2^600 and the scale is tracked in `log_scale`.
pub(crate) fn e_step(
    set: &LabelSet,
    gold: Option<&Gold>,
    prior: &[f64],
    emit: &[f64],
    posteriors: &mut [f64],
    acc: &mut BlockCounts,
) -> f64 {
    let k = prior.len();
    let per = acc.items_per_block;
    let (tiny, big, log_big) = (
        2f64.powi(-600),
        2f64.powi(600),
        600.0 * std::f64::consts::LN_2,
    );
    let partial: Vec<f64> = posteriors
        .par_chunks_mut(per * k)
        .zip(acc.blocks.par_iter_mut())
        .enumerate()
        .map(|(block, (rows, counts))| {
            counts.iter_mut().for_each(|x| *x = 0.0);
            let mut ll = 0.0;
            for (local, row) in rows.chunks_mut(k).enumerate() {
                let i = block * per + local;
                row.copy_from_slice(prior);
                let mut log_scale = 0.0;
                let (raters, labels) = set.item(i);
                for (n, (&r, &l)) in raters.iter().zip(labels).enumerate() {
                    let e = &emit[(r as usize * k + l as usize) * k..][..k];
                    for c in 0..k {
                        row[c] *= e[c];
                    }
                    // every factor is >= smoothing / (n + K smoothing), so checking every 16
                    // labels is enough to stay far from underflow
                    if n % 16 == 15 && row.iter().copied().fold(0.0, f64::max) < tiny {
                        row.iter_mut().for_each(|x| *x *= big);
                        log_scale -= log_big;
                    }
                }
                match gold.and_then(|g| g.get(i as u32)) {
                    Some(truth) => {
                        ll += row[truth as usize].ln() + log_scale;
                        row.iter_mut().for_each(|x| *x = 0.0);
                        row[truth as usize] = 1.0;
                    }
                    None => {
                        let z: f64 = row.iter().sum();
                        row.iter_mut().for_each(|x| *x /= z);
                        ll += z.ln() + log_scale;
                    }
                }
                add_row(counts, raters, labels, row);
            }
            ll
        })
        .collect();
    partial.iter().sum()
}

/// Runs EM for `model`.
pub(crate) fn run(
    set: &LabelSet,
    gold: Option<&Gold>,
    model: Model,
    config: &EmConfig,
) -> Aggregation {
    let k = set.n_categories();
    let n = set.n_items();
    let nr = set.n_raters();
    let s = config.smoothing;
    let mut posteriors = majority_vote(set, gold).posteriors; // (n_items, K)
    let mut acc = BlockCounts::new(n, nr, k);
    counts_from(set, &posteriors, k, &mut acc);
    let mut emit = vec![0.0; nr * k * k]; // (rater, label, class)
    let mut skill = vec![0.0; nr];
    let mut confusion = vec![0.0; nr * k * k]; // (rater, class, label)
    // MACE state: competence theta (n_raters) and spam distribution xi (n_raters, K)
    let mut theta = vec![0.5; nr];
    let mut xi = vec![1.0 / k as f64; nr * k];
    let mut prior = vec![1.0 / k as f64; k];
    let mut loglik = f64::NEG_INFINITY;
    let mut iterations = 0;
    let mut converged = false;
    let n_labels = set.n_labels().max(1) as f64;
    loop {
        // M-step
        let counts = acc.total();
        if model != Model::Mace {
            let mut mass = vec![0.0; k];
            for row in posteriors.chunks(k) {
                for c in 0..k {
                    mass[c] += row[c];
                }
            }
            for c in 0..k {
                prior[c] = (mass[c] + s) / (n as f64 + k as f64 * s);
            }
        }
        for r in 0..nr {
            let cr = &counts[r * k * k..(r + 1) * k * k];
            let conf = &mut confusion[r * k * k..(r + 1) * k * k];
            match model {
                Model::DawidSkene => {
                    for truth in 0..k {
                        let row = &cr[truth * k..(truth + 1) * k];
                        let total: f64 = row.iter().sum::<f64>() + k as f64 * s;
                        for l in 0..k {
                            conf[truth * k + l] = (row[l] + s) / total;
                        }
                    }
                    skill[r] = (0..k).map(|c| prior[c] * conf[c * k + c]).sum();
                }
                Model::OneCoin => {
                    let n_r: f64 = cr.iter().sum();
                    let right: f64 = (0..k).map(|c| cr[c * k + c]).sum();
                    let acc = (right + s) / (n_r + 2.0 * s);
                    for truth in 0..k {
                        for l in 0..k {
                            conf[truth * k + l] = if l == truth {
                                acc
                            } else {
                                (1.0 - acc) / (k as f64 - 1.0)
                            };
                        }
                    }
                    skill[r] = acc;
                }
                Model::Mace => {
                    let xr = &mut xi[r * k..(r + 1) * k];
                    let th = theta[r];
                    let mut answered = vec![0.0; k]; // labels given with answer a
                    for truth in 0..k {
                        for l in 0..k {
                            answered[l] += cr[truth * k + l];
                        }
                    }
                    let n_r: f64 = answered.iter().sum();
                    let honest: Vec<f64> = (0..k)
                        .map(|a| {
                            let denom = th + (1.0 - th) * xr[a];
                            if denom > 0.0 {
                                cr[a * k + a] * th / denom
                            } else {
                                0.0
                            }
                        })
                        .collect();
                    let honest_total: f64 = honest.iter().sum();
                    theta[r] = (honest_total + s) / (n_r + 2.0 * s);
                    let spam_total = n_r - honest_total + k as f64 * s;
                    for a in 0..k {
                        xr[a] = ((answered[a] - honest[a]).max(0.0) + s) / spam_total;
                    }
                    for truth in 0..k {
                        for l in 0..k {
                            conf[truth * k + l] =
                                (1.0 - theta[r]) * xr[l] + if l == truth { theta[r] } else { 0.0 };
                        }
                    }
                    skill[r] = theta[r];
                }
            }
            for truth in 0..k {
                for l in 0..k {
                    emit[(r * k + l) * k + truth] = conf[truth * k + l];
                }
            }
        }
        if iterations >= config.max_iterations {
            break;
        }
        // E-step
        let next = e_step(set, gold, &prior, &emit, &mut posteriors, &mut acc);
        iterations += 1;
        let change = (next - loglik).abs() / n_labels;
        loglik = next;
        if change < config.tolerance {
            converged = true;
            break;
        }
    }
    let (name, meaning) = match model {
        Model::DawidSkene => (
            "dawid_skene",
            "expected accuracy sum_k prior_k P(label = k | truth = k)",
        ),
        Model::OneCoin => ("one_coin", "probability of giving the true label"),
        Model::Mace => ("mace", "competence theta: probability of not spamming"),
    };
    Aggregation {
        method: name.into(),
        k,
        labels: argmax_rows(&posteriors, k),
        posteriors,
        rater_skill: skill,
        skill_meaning: meaning.into(),
        confusion: (model == Model::DawidSkene).then_some(confusion),
        item_difficulty: None,
        class_priors: prior,
        log_likelihood: loglik.is_finite().then_some(loglik),
        iterations,
        converged,
    }
}
