//! Embedding kernels: a row gather for the forward, a deterministic scatter-add for the backward.
//!
//! The backward groups the output rows by the table row they read (a counting sort, stable), then
//! lets each rayon task own a range of table rows and add its groups in position order: no two
//! tasks write the same row, no atomics, and the sums come out the same on any thread count.

use rayon::prelude::*;

use crate::Float;
use crate::ops::softmax::rowwise::rows_per_task;

/// `out[r] = wte[tokens[r]] (+ wpe[positions[r]])` for rows r of out (rows, C).
pub fn embedding_rows<T: Float>(
    wte: &[T],
    wpe: Option<&[T]>,
    tokens: &[usize],
    positions: &[usize],
    cols: usize,
    out: &mut [T],
) {
    if cols == 0 {
        return;
    }
    let rows_task = rows_per_task(cols);
    out.par_chunks_mut(rows_task * cols)
        .zip(tokens.par_chunks(rows_task))
        .enumerate()
        .for_each(|(task, (out, tokens))| {
            let first_row = task * rows_task;
            for (r, (row, &token)) in out.chunks_exact_mut(cols).zip(tokens).enumerate() {
                row.copy_from_slice(&wte[token * cols..(token + 1) * cols]);
                if let Some(wpe) = wpe {
                    let p = positions[first_row + r];
                    let pos_row = &wpe[p * cols..(p + 1) * cols];
                    row.iter_mut().zip(pos_row).for_each(|(o, &w)| *o = *o + w);
                }
            }
        });
}

/// `grad[ids[r]] += dout[r]` for every row r of dout (rows, C) into grad (table_rows, C).
pub fn scatter_add_rows<T: Float>(dout: &[T], ids: &[usize], cols: usize, grad: &mut [T]) {
    if cols == 0 {
        return;
    }
    let table_rows = grad.len() / cols;
    // Counting sort of the output rows by id: rows reading id v are order[start[v]..start[v+1]],
    // in increasing position.
    let mut start = vec![0usize; table_rows + 1];
    for &id in ids {
        start[id + 1] += 1;
    }
    for v in 0..table_rows {
        start[v + 1] += start[v];
    }
    let mut next = start.clone();
    let mut order = vec![0usize; ids.len()];
    for (r, &id) in ids.iter().enumerate() {
        order[next[id]] = r;
        next[id] += 1;
    }
    grad.par_chunks_mut(cols)
        .enumerate()
        .with_min_len(rows_per_task(cols))
        .for_each(|(v, grad_row)| {
            for &r in &order[start[v]..start[v + 1]] {
                let src = &dout[r * cols..(r + 1) * cols];
                grad_row.iter_mut().zip(src).for_each(|(g, &d)| *g = *g + d);
            }
        });
}
