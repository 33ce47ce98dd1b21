//! Elementwise CPU kernels over contiguous slices; rayon splits long slices across cores.

use rayon::prelude::*;

use crate::Float;

/// Elements per rayon task: below this, threading costs more than it saves.
const CHUNK: usize = 1 << 14;

/// `dst[i] += src[i]`.
pub fn add_assign<T: Float>(dst: &mut [T], src: &[T]) {
    dst.par_chunks_mut(CHUNK)
        .zip(src.par_chunks(CHUNK))
        .for_each(|(d, s)| d.iter_mut().zip(s).for_each(|(d, &s)| *d = *d + s));
}

/// `out[i] = f(a[i], b[i])`.
pub fn zip_map<T: Float>(out: &mut [T], a: &[T], b: &[T], f: impl Fn(T, T) -> T + Sync) {
    out.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(o, (a, b))| {
            for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
                *o = f(a, b);
            }
        });
}

/// `out[i] = f(a[i])`.
pub fn map<T: Float>(out: &mut [T], a: &[T], f: impl Fn(T) -> T + Sync) {
    out.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK))
        .for_each(|(o, a)| o.iter_mut().zip(a).for_each(|(o, &a)| *o = f(a)));
}

/// `out[r, c] = x[r, c] + bias[c]` for x viewed as (rows, bias.len()).
pub fn add_bias_rows<T: Float>(out: &mut [T], x: &[T], bias: &[T]) {
    let cols = bias.len();
    out.par_chunks_mut(cols)
        .zip(x.par_chunks(cols))
        .for_each(|(o, x)| {
            for ((o, &x), &b) in o.iter_mut().zip(x).zip(bias) {
                *o = x + b;
            }
        });
}

/// Column sums of x viewed as (rows, cols): the bias gradient. Each task sums a fixed block of
/// rows; the partial sums are added in block order, so the result is bit-identical on any number
/// of threads (rayon's own `reduce` groups by how work was stolen).
pub fn sum_rows<T: Float>(x: &[T], cols: usize) -> Vec<T> {
    if cols == 0 {
        return Vec::new();
    }
    let rows_per_task = (CHUNK / cols).max(1);
    let partials: Vec<Vec<T>> = x
        .par_chunks(rows_per_task * cols)
        .map(|block| {
            let mut acc = vec![T::zero(); cols];
            for row in block.chunks_exact(cols) {
                acc.iter_mut().zip(row).for_each(|(a, &v)| *a = *a + v);
            }
            acc
        })
        .collect();
    let mut total = vec![T::zero(); cols];
    for partial in &partials {
        total
            .iter_mut()
            .zip(partial)
            .for_each(|(t, &p)| *t = *t + p);
    }
    total
}
