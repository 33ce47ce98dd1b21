//! Selected-token log-probability and entropy kernels under a temperature, one row per token
//! position: a max pass, one exp pass (which also sums p z), then (backward) one pass writing
//! the gradient. Nothing of
//! size (N, V) is kept between forward and backward: the backward recomputes the exponentials
//! into the gradient row, which costs one exp pass and saves N x V floats of memory traffic.
//!
//! With z = x / temperature and p = softmax(z):
//! `logp = z[token] - logsumexp(z)`, `entropy = logsumexp(z) - sum(p z)`, and
//! d/dx_j = (1 / temperature) (g_logp (δ_j,token - p_j) - g_entropy p_j (z_j - sum(p z))).

use rayon::prelude::*;

use crate::Float;
use crate::ops::softmax::rowwise::{exp_shifted_moment, max, rows_per_task};

/// Row statistics shared by forward and backward, relative to the row maximum `m`:
/// exponentials e_j = exp((x_j - m) / temperature) are left in `scratch`.
struct RowStats<T> {
    max: T,
    /// sum_j e_j
    total: T,
    /// sum_j p_j (x_j - m) / temperature
    mean_shifted_z: T,
}

fn row_stats<T: Float>(x: &[T], inv_temperature: T, scratch: &mut [T]) -> RowStats<T> {
    let m = max(x);
    let (total, moment) = exp_shifted_moment(x, m, inv_temperature, scratch);
    let mean_shifted_z = moment / total;
    RowStats {
        max: m,
        total,
        mean_shifted_z,
    }
}

/// `logp[r] = log_softmax(x_r / temperature)[tokens[r]]` and `entropy[r]` of softmax(x_r /
/// temperature), for logits (rows, cols).
pub fn token_logprobs_rows<T: Float>(
    logits: &[T],
    cols: usize,
    tokens: &[usize],
    inv_temperature: T,
    logp: &mut [T],
    entropy: &mut [T],
) {
    if cols == 0 {
        return;
    }
    let rows_task = rows_per_task(cols);
    logp.par_chunks_mut(rows_task)
        .zip(entropy.par_chunks_mut(rows_task))
        .zip(
            logits
                .par_chunks(rows_task * cols)
                .zip(tokens.par_chunks(rows_task)),
        )
        .for_each(|((logp, entropy), (x, tokens))| {
            let mut scratch = vec![T::zero(); cols];
            let rows = logp.iter_mut().zip(entropy.iter_mut());
            for ((logp, entropy), (x, &token)) in rows.zip(x.chunks_exact(cols).zip(tokens)) {
                let stats = row_stats(x, inv_temperature, &mut scratch);
                let log_total = stats.total.ln();
                *logp = (x[token] - stats.max) * inv_temperature - log_total;
                *entropy = log_total - stats.mean_shifted_z;
            }
        });
}

/// Gradient with respect to the logits (rows, cols) from `d_logp` (rows) and `d_entropy` (rows);
/// `dlogits` is overwritten.
pub fn token_logprobs_rows_backward<T: Float>(
    logits: &[T],
    cols: usize,
    tokens: &[usize],
    inv_temperature: T,
    d_logp: &[T],
    d_entropy: &[T],
    dlogits: &mut [T],
) {
    if cols == 0 {
        return;
    }
    let rows_task = rows_per_task(cols);
    dlogits
        .par_chunks_mut(rows_task * cols)
        .zip(logits.par_chunks(rows_task * cols))
        .zip(
            tokens.par_chunks(rows_task).zip(
                d_logp
                    .par_chunks(rows_task)
                    .zip(d_entropy.par_chunks(rows_task)),
            ),
        )
        .for_each(|((dx, x), (tokens, (d_logp, d_entropy)))| {
            let rows = dx.chunks_exact_mut(cols).zip(x.chunks_exact(cols));
            let grads = tokens.iter().zip(d_logp.iter().zip(d_entropy));
            for ((dx, x), (&token, (&g_logp, &g_entropy))) in rows.zip(grads) {
                let stats = row_stats(x, inv_temperature, dx);
                // dx_j = p_j (a + b (x_j - m)) with p_j = e_j / total.
                let inv_total = T::one() / stats.total;
                let a = -inv_temperature * (g_logp - g_entropy * stats.mean_shifted_z) * inv_total;
                let b = -inv_temperature * inv_temperature * g_entropy * inv_total;
                for (d, &x) in dx.iter_mut().zip(x) {
                    *d = *d * (a + b * (x - stats.max));
                }
                dx[token] = dx[token] + inv_temperature * g_logp;
            }
        });
}
