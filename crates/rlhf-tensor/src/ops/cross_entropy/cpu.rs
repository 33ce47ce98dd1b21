//! Fused cross-entropy kernels: per row one max pass, one exp pass (into the gradient row, which
//! doubles as scratch), one scaling pass; rows in rayon tasks of whole rows.
//!
//! Targets are already resolved: `Some(class)` for a scored row, `None` for an ignored one.

use rayon::prelude::*;

use crate::Float;
use crate::ops::softmax::rowwise::{exp_shifted, max, rows_per_task};

/// Loss of one row, leaving `exp(x - max)` in `scratch`: returns (loss, sum of the exponentials).
fn row_loss<T: Float>(x: &[T], target: usize, scratch: &mut [T]) -> (T, T) {
    let m = max(x);
    let total = exp_shifted(x, m, T::one(), scratch);
    // -log p_target = ln(sum exp(x - m)) - (x_target - m)
    (total.ln() - (x[target] - m), total)
}

/// Per-row losses (0 for ignored rows) and `dlogits = grad_scale * (softmax(x) - onehot(target))`
/// (zero rows for ignored rows), for logits (rows, cols).
pub fn loss_and_grad_rows<T: Float>(
    logits: &[T],
    cols: usize,
    targets: &[Option<usize>],
    grad_scale: T,
    losses: &mut [T],
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
            losses
                .par_chunks_mut(rows_task)
                .zip(targets.par_chunks(rows_task)),
        )
        .for_each(|((grad, x), (losses, targets))| {
            let rows = grad.chunks_exact_mut(cols).zip(x.chunks_exact(cols));
            for ((grad, x), (loss, target)) in rows.zip(losses.iter_mut().zip(targets)) {
                let Some(target) = *target else {
                    grad.fill(T::zero());
                    *loss = T::zero();
                    continue;
                };
                let (row_loss, total) = row_loss(x, target, grad);
                *loss = row_loss;
                let factor = grad_scale / total;
                grad.iter_mut().for_each(|g| *g = *g * factor);
                grad[target] = grad[target] - grad_scale;
            }
        });
}

/// Per-row losses only (0 for ignored rows), for evaluation: no gradient buffer is written.
pub fn losses_rows<T: Float>(
    logits: &[T],
    cols: usize,
    targets: &[Option<usize>],
    losses: &mut [T],
) {
    if cols == 0 {
        return;
    }
    let rows_task = rows_per_task(cols);
    losses
        .par_chunks_mut(rows_task)
        .zip(logits.par_chunks(rows_task * cols))
        .zip(targets.par_chunks(rows_task))
        .for_each(|((losses, x), targets)| {
            let mut scratch = vec![T::zero(); cols];
            for ((loss, x), target) in losses.iter_mut().zip(x.chunks_exact(cols)).zip(targets) {
                *loss = match *target {
                    Some(target) => row_loss(x, target, &mut scratch).0,
                    None => T::zero(),
                };
            }
        });
}
