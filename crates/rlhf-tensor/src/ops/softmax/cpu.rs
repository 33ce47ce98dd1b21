//! Softmax and log-softmax kernels over the rows of a (rows, cols) slice, each row in one task of
//! whole rows (rayon), max-subtracted so that no exponent overflows.
//!
//! A row whose every element is -inf (nothing allowed) gives zeros under softmax and -inf under
//! log-softmax, never NaN; a NaN anywhere in a row makes the whole row NaN.

use rayon::prelude::*;

use super::rowwise::{dot, exp_shifted, max, rows_per_task, sum};
use crate::Float;

/// `out = softmax(x)` row by row; `x` and `out` are (rows, cols).
pub fn softmax_rows<T: Float>(x: &[T], cols: usize, out: &mut [T]) {
    if cols == 0 {
        return;
    }
    let task = rows_per_task(cols) * cols;
    out.par_chunks_mut(task)
        .zip(x.par_chunks(task))
        .for_each(|(out, x)| {
            for (o, x) in out.chunks_exact_mut(cols).zip(x.chunks_exact(cols)) {
                softmax_row(x, T::one(), o);
            }
        });
}

/// One row of softmax(x * scale) (scale > 0) into `out`; returns (max(x), sum of exp((x - max) *
/// scale)), from which log-sum-exp follows as `max * scale + ln(sum)`.
pub fn softmax_row<T: Float>(x: &[T], scale: T, out: &mut [T]) -> (T, T) {
    let m = max(x);
    if m == T::neg_infinity() {
        out.fill(T::zero());
        return (m, T::zero());
    }
    let total = exp_shifted(x, m, scale, out);
    let inv = T::one() / total;
    out.iter_mut().for_each(|o| *o = *o * inv);
    (m, total)
}

/// `dx = p * (dout - sum(dout * p))` row by row, the gradient of softmax given its output `p`.
pub fn softmax_rows_backward<T: Float>(dout: &[T], probs: &[T], cols: usize, dx: &mut [T]) {
    if cols == 0 {
        return;
    }
    let task = rows_per_task(cols) * cols;
    dx.par_chunks_mut(task)
        .zip(dout.par_chunks(task).zip(probs.par_chunks(task)))
        .for_each(|(dx, (dout, probs))| {
            let rows = dx
                .chunks_exact_mut(cols)
                .zip(dout.chunks_exact(cols).zip(probs.chunks_exact(cols)));
            for (dx, (dout, p)) in rows {
                let weighted = dot(dout, p);
                for ((d, &g), &p) in dx.iter_mut().zip(dout).zip(p) {
                    *d = p * (g - weighted);
                }
            }
        });
}

/// `out = log_softmax(x) = x - max - ln(sum(exp(x - max)))` row by row.
pub fn log_softmax_rows<T: Float>(x: &[T], cols: usize, out: &mut [T]) {
    if cols == 0 {
        return;
    }
    let task = rows_per_task(cols) * cols;
    out.par_chunks_mut(task)
        .zip(x.par_chunks(task))
        .for_each(|(out, x)| {
            for (o, x) in out.chunks_exact_mut(cols).zip(x.chunks_exact(cols)) {
                let m = max(x);
                if m == T::neg_infinity() {
                    o.fill(T::neg_infinity());
                    continue;
                }
                // The exponentials go through `o` as scratch, then `o` is overwritten; (x - m)
                // first keeps precision when |m| is large.
                let log_sum = exp_shifted(x, m, T::one(), o).ln();
                for (o, &x) in o.iter_mut().zip(x) {
                    *o = (x - m) - log_sum;
                }
            }
        });
}

/// `dx = dout - exp(logp) * sum(dout)` row by row, the gradient of log-softmax given its output.
pub fn log_softmax_rows_backward<T: Float>(dout: &[T], logp: &[T], cols: usize, dx: &mut [T]) {
    if cols == 0 {
        return;
    }
    let task = rows_per_task(cols) * cols;
    dx.par_chunks_mut(task)
        .zip(dout.par_chunks(task).zip(logp.par_chunks(task)))
        .for_each(|(dx, (dout, logp))| {
            let rows = dx
                .chunks_exact_mut(cols)
                .zip(dout.chunks_exact(cols).zip(logp.chunks_exact(cols)));
            for (dx, (dout, logp)) in rows {
                let total = sum(dout);
                // exp(logp) into dx, then dx = dout - p * total.
                dx.copy_from_slice(logp);
                super::rowwise::exp_in_place(dx);
                for (d, &g) in dx.iter_mut().zip(dout) {
                    *d = g - *d * total;
                }
            }
        });
}
