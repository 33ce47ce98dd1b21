//! Reduction kernels over contiguous slices. Each rayon task reduces a fixed chunk and the partials
//! are added in chunk order, so results are bit-identical whatever the thread count.

use rayon::prelude::*;

use crate::Float;

const CHUNK: usize = 1 << 14;

/// The sum of all elements.
pub fn sum<T: Float>(x: &[T]) -> T {
    let partials: Vec<T> = x
        .par_chunks(CHUNK)
        .map(|c| c.iter().copied().sum::<T>())
        .collect();
    partials.into_iter().sum()
}

/// The index and value of the largest element (the first one on ties); `None` when empty or
/// when a NaN is present.
pub fn argmax<T: Float>(x: &[T]) -> Option<(usize, T)> {
    let mut best: Option<(usize, T)> = None;
    for (i, &v) in x.iter().enumerate() {
        if v.is_nan() {
            return None;
        }
        match best {
            Some((_, b)) if v <= b => {}
            _ => best = Some((i, v)),
        }
    }
    best
}

/// sum(x * mask) and sum(mask) for a 0/1 (or weighting) mask.
pub fn masked_sum<T: Float>(x: &[T], mask: &[T]) -> (T, T) {
    let partials: Vec<(T, T)> = x
        .par_chunks(CHUNK)
        .zip(mask.par_chunks(CHUNK))
        .map(|(x, m)| {
            x.iter()
                .zip(m)
                .fold((T::zero(), T::zero()), |(s, c), (&x, &m)| {
                    (s + x * m, c + m)
                })
        })
        .collect();
    partials
        .into_iter()
        .fold((T::zero(), T::zero()), |a, b| (a.0 + b.0, a.1 + b.1))
}
