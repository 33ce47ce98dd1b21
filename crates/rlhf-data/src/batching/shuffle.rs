//! Seeded shuffling: permutations and epoch minibatches from a ChaCha8 stream.
//!
//! The permutation is our own Fisher–Yates over `ChaCha8Rng::next_u64` with rejection sampling,
//! so it depends only on the ChaCha8 stream (fixed by its specification), not on the sampling
//! algorithms of a `rand` version: the same seed gives the same order on every machine.

use super::BatchError;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A uniform integer in `0..bound` (`bound >= 1`) by rejection, unbiased.
pub(crate) fn uniform_below(rng: &mut ChaCha8Rng, bound: u64) -> u64 {
    // Reject the top partial block of size 2^64 mod bound.
    let zone = u64::MAX - (u64::MAX % bound + 1) % bound;
    loop {
        let x = rng.next_u64();
        if x <= zone {
            return x % bound;
        }
    }
}

/// A seeded permutation of `0..n`.
pub fn shuffled_indices(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = uniform_below(&mut rng, i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

/// The minibatches of epoch `epoch`: a fresh permutation of `0..n` per epoch (derived from `seed`
/// and `epoch`), cut into batches of `batch_size`; the last, shorter one is kept unless `drop_last`.
pub fn minibatches(
    n: usize,
    batch_size: usize,
    seed: u64,
    epoch: u64,
    drop_last: bool,
) -> Result<Vec<Vec<usize>>, BatchError> {
    if batch_size == 0 {
        return Err(BatchError::ZeroBatchSize);
    }
    // Mix the epoch into the seed (SplitMix64 step) so epochs get unrelated orders.
    let epoch_seed = super::split::mix64(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let order = shuffled_indices(n, epoch_seed);
    Ok(order
        .chunks(batch_size)
        .filter(|chunk| !drop_last || chunk.len() == batch_size)
        .map(<[usize]>::to_vec)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_is_seeded_and_complete() {
        let a = shuffled_indices(100, 7);
        assert_eq!(a, shuffled_indices(100, 7));
        assert_ne!(a, shuffled_indices(100, 8));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_ne!(a, sorted, "a 100-element shuffle left everything in place");
    }

    #[test]
    fn shuffle_is_roughly_uniform() {
        // Position of element 0 over many seeds: each of 4 positions about 1/4 of the time.
        let mut counts = [0usize; 4];
        for seed in 0..4000 {
            let order = shuffled_indices(4, seed);
            counts[order.iter().position(|&x| x == 0).unwrap()] += 1;
        }
        for c in counts {
            assert!((850..1150).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn minibatches_cover_each_epoch_once() {
        let batches = minibatches(10, 3, 1, 0, false).unwrap();
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![3, 3, 3, 1]
        );
        let mut all: Vec<usize> = batches.concat();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(minibatches(10, 3, 1, 0, true).unwrap().len(), 3);
        assert_ne!(minibatches(10, 3, 1, 1, false).unwrap(), batches);
        assert_eq!(
            minibatches(10, 0, 1, 0, false),
            Err(BatchError::ZeroBatchSize)
        );
    }
}
