//! GLAD (Whitehill et al. 2009): rater `r` with expertise `alpha_r` labels item `i` with
//! inverse difficulty `beta_i = exp(b_i) > 0` correctly with probability
//! `sigma(alpha_r beta_i)`, and otherwise picks one of the other `K - 1` classes uniformly.
//!
//! EM: the E-step computes class posteriors; the M-step maximises the expected complete
//! log-likelihood plus Gaussian priors `alpha ~ N(1, 1)`, `b ~ N(0, 1)` by a few rounds of
//! diagonal Newton steps, alternating the rater block (`alpha`) and the item block (`b`) — each
//! parameter's Newton step is exact given the other block. Skill = `alpha_r`.

use rayon::prelude::*;

use crate::aggregate::em::ByRater;
use crate::aggregate::{Aggregation, EmConfig, argmax_rows, majority::majority_vote};
use crate::labels::{Gold, LabelSet};

#[inline]
fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

const BLOCK: usize = 2048;
const NEWTON_ROUNDS: usize = 3;

/// E-step for GLAD; returns the log-likelihood.
fn e_step(
    set: &LabelSet,
    gold: Option<&Gold>,
    log_prior: &[f64],
    alpha: &[f64],
    beta: &[f64],
    post: &mut [f64],
) -> f64 {
    let k = log_prior.len();
    let other = ((k - 1) as f64).ln();
    let partial: Vec<f64> = post
        .par_chunks_mut(BLOCK * k)
        .enumerate()
        .map(|(block, rows)| {
            let mut ll = 0.0;
            for (local, row) in rows.chunks_mut(k).enumerate() {
                let i = block * BLOCK + local;
                row.copy_from_slice(log_prior);
                let (raters, labels) = set.item(i);
                for (&r, &l) in raters.iter().zip(labels) {
                    let x = alpha[r as usize] * beta[i];
                    // log sigma(x) and log(1 - sigma(x)) computed stably
                    let log_right = -(1.0 + (-x).exp()).ln();
                    let log_wrong = -(1.0 + x.exp()).ln() - other;
                    for (c, v) in row.iter_mut().enumerate() {
                        *v += if c == l as usize {
                            log_right
                        } else {
                            log_wrong
                        };
                    }
                }
                match gold.and_then(|g| g.get(i as u32)) {
                    Some(truth) => {
                        ll += row[truth as usize];
                        row.iter_mut().for_each(|x| *x = 0.0);
                        row[truth as usize] = 1.0;
                    }
                    None => {
                        let top = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        let mut z = 0.0;
                        for x in row.iter_mut() {
                            *x = (*x - top).exp();
                            z += *x;
                        }
                        row.iter_mut().for_each(|x| *x /= z);
                        ll += top + z.ln();
                    }
                }
            }
            ll
        })
        .collect();
    partial.iter().sum()
}

/// Runs GLAD.
pub(crate) fn glad(set: &LabelSet, gold: Option<&Gold>, config: &EmConfig) -> Aggregation {
    let k = set.n_categories();
    let n = set.n_items();
    let nr = set.n_raters();
    let by = ByRater::new(set);
    let mut post = majority_vote(set, gold).posteriors; // (n_items, K)
    let mut alpha = vec![1.0; nr];
    let mut b = vec![0.0; n];
    let mut beta = vec![1.0; n];
    let mut prior = vec![1.0 / k as f64; k];
    let mut loglik = f64::NEG_INFINITY;
    let mut iterations = 0;
    let mut converged = false;
    let n_labels = set.n_labels().max(1) as f64;
    loop {
        // M-step: priors, then alternating diagonal Newton on alpha and b.
        let mut mass = vec![0.0; k];
        for row in post.chunks(k) {
            for c in 0..k {
                mass[c] += row[c];
            }
        }
        for c in 0..k {
            prior[c] = (mass[c] + config.smoothing) / (n as f64 + k as f64 * config.smoothing);
        }
        for _ in 0..NEWTON_ROUNDS {
            alpha.par_iter_mut().enumerate().for_each(|(r, a)| {
                let (mut g, mut h) = (-(*a - 1.0), 1.0);
                for p in by.offsets[r]..by.offsets[r + 1] {
                    let (i, l) = (by.items[p] as usize, by.labels[p] as usize);
                    let t = post[i * k + l];
                    let s = sigmoid(*a * beta[i]);
                    g += (t - s) * beta[i];
                    h += s * (1.0 - s) * beta[i] * beta[i];
                }
                *a += (g / h).clamp(-5.0, 5.0);
            });
            b.par_iter_mut()
                .zip(beta.par_iter_mut())
                .enumerate()
                .for_each(|(i, (bi, be))| {
                    let (raters, labels) = set.item(i);
                    let (mut g, mut h) = (-*bi, 1.0);
                    for (&r, &l) in raters.iter().zip(labels) {
                        let t = post[i * k + l as usize];
                        let x = alpha[r as usize] * *be;
                        let s = sigmoid(x);
                        g += (t - s) * x;
                        h += s * (1.0 - s) * x * x;
                    }
                    *bi += (g / h).clamp(-2.0, 2.0);
                    *be = bi.exp();
                });
        }
        if iterations >= config.max_iterations {
            break;
        }
        let log_prior: Vec<f64> = prior.iter().map(|p| p.ln()).collect();
        let next = e_step(set, gold, &log_prior, &alpha, &beta, &mut post);
        iterations += 1;
        let change = (next - loglik).abs() / n_labels;
        loglik = next;
        if change < config.tolerance {
            converged = true;
            break;
        }
    }
    Aggregation {
        method: "glad".into(),
        k,
        labels: argmax_rows(&post, k),
        posteriors: post,
        rater_skill: alpha,
        skill_meaning: "expertise alpha: P(correct) = sigmoid(alpha * beta_item)".into(),
        confusion: None,
        item_difficulty: Some(beta),
        class_priors: prior,
        log_likelihood: loglik.is_finite().then_some(loglik),
        iterations,
        converged,
    }
}
