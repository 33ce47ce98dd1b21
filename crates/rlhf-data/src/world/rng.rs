//! The world's random helpers over ChaCha8, written out so that the stream of choices depends
//! only on the ChaCha8 specification, not on a `rand` version's sampling algorithms.

use crate::batching::shuffle::uniform_below;
use crate::batching::split::{fnv1a_64, mix64};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The world's generator.
pub type WorldRng = ChaCha8Rng;

/// A generator for one purpose: `seed` mixed with the hash of `stream` (e.g. "corpus", or a
/// labeler id and item id), so streams are independent and do not depend on call order.
pub fn stream_rng(seed: u64, stream: &str) -> WorldRng {
    WorldRng::seed_from_u64(mix64(seed ^ mix64(fnv1a_64(stream.as_bytes()))))
}

/// A uniform integer in `0..n` (`n >= 1`).
pub fn below(rng: &mut WorldRng, n: usize) -> usize {
    uniform_below(rng, n.max(1) as u64) as usize
}

/// A uniform float in `[0, 1)` from 53 random bits.
pub fn unit(rng: &mut WorldRng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// True with probability `p`.
pub fn chance(rng: &mut WorldRng, p: f64) -> bool {
    unit(rng) < p
}

/// A uniformly chosen element of a non-empty slice.
pub fn pick<'a, T>(rng: &mut WorldRng, items: &'a [T]) -> &'a T {
    &items[below(rng, items.len())]
}

/// A standard Gumbel draw: `-ln(-ln(u))`, `u` in (0, 1).
pub fn gumbel(rng: &mut WorldRng) -> f64 {
    let u = unit(rng).max(f64::MIN_POSITIVE);
    -(-u.ln()).ln()
}

/// Fisher–Yates shuffle in place.
pub fn shuffle<T>(rng: &mut WorldRng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i + 1);
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| stream_rng(1, "x").next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(stream_rng(1, "x").next_u64(), stream_rng(1, "y").next_u64());
        assert_ne!(stream_rng(1, "x").next_u64(), stream_rng(2, "x").next_u64());
    }

    #[test]
    fn gumbel_has_the_right_mean() {
        let mut rng = stream_rng(3, "gumbel");
        let n = 20_000;
        let mean = (0..n).map(|_| gumbel(&mut rng)).sum::<f64>() / n as f64;
        // The Euler–Mascheroni constant; the standard error is about 0.009.
        assert!((mean - 0.5772).abs() < 0.04, "{mean}");
    }
}
