//! The seeded random-number generator: one seed gives the same stream on every machine.
//!
//! ChaCha8 (from `rand_chacha`) because its output is specified, portable and seekable: the state
//! is (seed, stream, word position), so a checkpoint can save it and a resumed run continues the
//! exact same sequence. Normal samples use Box–Muller without caching, so the state stays just the
//! stream position.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A seeded, reproducible random-number generator.
#[derive(Debug, Clone)]
pub struct Rng {
    inner: ChaCha8Rng,
}

/// Everything needed to restore an [`Rng`] exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngState {
    /// The 32-byte ChaCha key derived from the seed.
    pub key: [u8; 32],
    /// The ChaCha stream number.
    pub stream: u64,
    /// How many 32-bit words have been consumed.
    pub word_pos: u128,
}

impl Rng {
    /// A generator from a 64-bit seed.
    pub fn new(seed: u64) -> Rng {
        Rng {
            inner: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// An independent generator for a named sub-task (e.g. one per data loader), derived from this
    /// one's key and `stream`, without consuming from this one.
    pub fn fork(&self, stream: u64) -> Rng {
        let mut inner = ChaCha8Rng::from_seed(self.inner.get_seed());
        inner.set_stream(stream);
        Rng { inner }
    }

    /// The state, for checkpoints.
    pub fn state(&self) -> RngState {
        RngState {
            key: self.inner.get_seed(),
            stream: self.inner.get_stream(),
            word_pos: self.inner.get_word_pos(),
        }
    }

    /// A generator restored from a saved state.
    pub fn from_state(state: &RngState) -> Rng {
        let mut inner = ChaCha8Rng::from_seed(state.key);
        inner.set_stream(state.stream);
        inner.set_word_pos(state.word_pos);
        Rng { inner }
    }

    /// A uniform 64-bit integer.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// A uniform f32 in [0, 1) with 24 random bits.
    pub fn uniform(&mut self) -> f32 {
        (self.inner.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// A uniform f64 in [0, 1) with 53 random bits.
    pub fn uniform_f64(&mut self) -> f64 {
        (self.inner.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A standard normal sample (Box–Muller, computed in f64).
    pub fn normal(&mut self) -> f32 {
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.uniform_f64();
        let u2 = self.uniform_f64();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    /// A uniform index in 0..n (n > 0), without modulo bias.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below needs a non-empty range");
        let n = n as u64;
        // Rejection sampling over the largest multiple of n.
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let x = self.inner.next_u64();
            if x < zone {
                return (x % n) as usize;
            }
        }
    }

    /// Shuffles a slice in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// Samples an index from unnormalised non-negative weights; `None` if they sum to zero or
    /// any is negative or not finite.
    pub fn categorical(&mut self, weights: &[f32]) -> Option<usize> {
        let mut total = 0.0f64;
        for &w in weights {
            if !(w >= 0.0 && w.is_finite()) {
                return None;
            }
            total += w as f64;
        }
        if total <= 0.0 {
            return None;
        }
        let target = self.uniform_f64() * total;
        let mut cumulative = 0.0f64;
        let mut last_positive = 0;
        for (i, &w) in weights.iter().enumerate() {
            if w > 0.0 {
                last_positive = i;
                cumulative += w as f64;
                if target < cumulative {
                    return Some(i);
                }
            }
        }
        // Rounding can leave target == total: the last positive weight takes it.
        Some(last_positive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_state_restores_exactly() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let xs: Vec<f32> = (0..10).map(|_| a.normal()).collect();
        let ys: Vec<f32> = (0..10).map(|_| b.normal()).collect();
        assert_eq!(xs, ys);
        let saved = a.state();
        let next: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let mut restored = Rng::from_state(&saved);
        let again: Vec<u64> = (0..5).map(|_| restored.next_u64()).collect();
        assert_eq!(next, again);
        assert_ne!(Rng::new(43).next_u64(), Rng::new(42).next_u64());
    }

    #[test]
    fn normal_has_unit_moments() {
        let mut rng = Rng::new(7);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| rng.normal() as f64).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
    }

    #[test]
    fn categorical_follows_weights_and_rejects_bad_ones() {
        let mut rng = Rng::new(1);
        let mut counts = [0usize; 3];
        for _ in 0..30_000 {
            counts[rng.categorical(&[1.0, 0.0, 3.0]).unwrap()] += 1;
        }
        assert_eq!(counts[1], 0);
        let share = counts[2] as f64 / 30_000.0;
        assert!((share - 0.75).abs() < 0.02, "share {share}");
        assert_eq!(rng.categorical(&[0.0, 0.0]), None);
        assert_eq!(rng.categorical(&[1.0, f32::NAN]), None);
    }

    #[test]
    fn forks_are_independent_and_reproducible() {
        let root = Rng::new(9);
        let a: Vec<u64> = (0..3)
            .map({
                let mut r = root.fork(1);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..3)
            .map({
                let mut r = root.fork(1);
                move |_| r.next_u64()
            })
            .collect();
        let c = root.fork(2).next_u64();
        assert_eq!(a, b);
        assert_ne!(a[0], c);
    }
}
