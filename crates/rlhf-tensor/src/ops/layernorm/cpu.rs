//! Layernorm kernels over the rows of a (rows, C) slice. The forward keeps the mean and the
//! reciprocal standard deviation of each row for the backward, as llm.c does.
//!
//! The backward writes dx row by row and sums dgamma and dbeta over fixed blocks of rows (one
//! rayon task each), then adds the block sums in block order: the result does not depend on the
//! number of threads.

use rayon::prelude::*;

use crate::Float;
use crate::ops::softmax::rowwise::{dot_shifted, rows_per_task, squared_deviations, sum};

/// `out = (x - mean) * rstd * gamma + beta` per row of x (rows, C); writes `mean` and `rstd`
/// (rows) for the backward.
pub fn layernorm_rows<T: Float>(
    x: &[T],
    gamma: &[T],
    beta: &[T],
    eps: T,
    out: &mut [T],
    mean: &mut [T],
    rstd: &mut [T],
) {
    let cols = gamma.len();
    if cols == 0 {
        return;
    }
    let inv_cols = T::one() / T::c(cols as f64);
    let rows_task = rows_per_task(cols);
    out.par_chunks_mut(rows_task * cols)
        .zip(x.par_chunks(rows_task * cols))
        .zip(
            mean.par_chunks_mut(rows_task)
                .zip(rstd.par_chunks_mut(rows_task)),
        )
        .for_each(|((out, x), (mean, rstd))| {
            let rows = out.chunks_exact_mut(cols).zip(x.chunks_exact(cols));
            for ((out, x), (mean, rstd)) in rows.zip(mean.iter_mut().zip(rstd.iter_mut())) {
                let m = sum(x) * inv_cols;
                // Two-pass variance: free of the cancellation of E[x^2] - E[x]^2.
                let variance = squared_deviations(x, m) * inv_cols;
                let s = T::one() / (variance + eps).sqrt();
                for (((o, &v), &g), &b) in out.iter_mut().zip(x).zip(gamma).zip(beta) {
                    *o = (v - m) * s * g + b;
                }
                *mean = m;
                *rstd = s;
            }
        });
}

/// Gradients of [`layernorm_rows`]: `dx` (rows, C) is overwritten; returns (dgamma, dbeta), each
/// (C).
pub fn layernorm_rows_backward<T: Float>(
    dout: &[T],
    x: &[T],
    gamma: &[T],
    mean: &[T],
    rstd: &[T],
    dx: &mut [T],
) -> (Vec<T>, Vec<T>) {
    let cols = gamma.len();
    let mut dgamma = vec![T::zero(); cols];
    let mut dbeta = vec![T::zero(); cols];
    if cols == 0 {
        return (dgamma, dbeta);
    }
    let inv_cols = T::one() / T::c(cols as f64);
    let rows_task = rows_per_task(cols);
    let partials: Vec<(Vec<T>, Vec<T>)> = dx
        .par_chunks_mut(rows_task * cols)
        .zip(
            dout.par_chunks(rows_task * cols)
                .zip(x.par_chunks(rows_task * cols)),
        )
        .zip(mean.par_chunks(rows_task).zip(rstd.par_chunks(rows_task)))
        .map(|((dx, (dout, x)), (mean, rstd))| {
            let mut dgamma = vec![T::zero(); cols];
            let mut dbeta = vec![T::zero(); cols];
            let rows = dx.chunks_exact_mut(cols).zip(dout.chunks_exact(cols));
            let stats = x.chunks_exact(cols).zip(mean.iter().zip(rstd));
            for ((dx, dout), (x, (&m, &s))) in rows.zip(stats) {
                // dnorm = gamma * dout, kept in dx for now.
                for ((d, &g), &o) in dx.iter_mut().zip(gamma).zip(dout) {
                    *d = g * o;
                }
                let dnorm_mean = sum(dx) * inv_cols;
                let dnorm_norm_mean = dot_shifted(dx, x, m) * s * inv_cols;
                let per_col = dx.iter_mut().zip(x).zip(dout);
                for (((d, &v), &o), (dg, db)) in per_col.zip(dgamma.iter_mut().zip(&mut dbeta)) {
                    let norm = (v - m) * s;
                    *d = (*d - dnorm_mean - norm * dnorm_norm_mean) * s;
                    *dg = *dg + norm * o;
                    *db = *db + o;
                }
            }
            (dgamma, dbeta)
        })
        .collect();
    for (block_gamma, block_beta) in partials {
        dgamma
            .iter_mut()
            .zip(&block_gamma)
            .for_each(|(a, &b)| *a = *a + b);
        dbeta
            .iter_mut()
            .zip(&block_beta)
            .for_each(|(a, &b)| *a = *a + b);
    }
    (dgamma, dbeta)
}
