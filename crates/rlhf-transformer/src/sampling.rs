//! Choosing the next token from a row of logits: greedy, or sampling under temperature with
//! optional top-k and top-p (nucleus) filtering, drawn from the seeded [`Rng`].

use rlhf_tensor::Rng;
use serde::{Deserialize, Serialize};

use crate::{ModelError, Result};

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// Softmax temperature; 0 means greedy (argmax).
    pub temperature: f32,
    /// Keep only the k most likely tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches p (1 = all).
    pub top_p: f32,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
        }
    }
}

impl Sampling {
    /// Argmax decoding.
    pub fn greedy() -> Sampling {
        Sampling {
            temperature: 0.0,
            ..Sampling::default()
        }
    }

    /// Checks the ranges: temperature >= 0 and finite, top_p in (0, 1].
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(ModelError::config(
                "temperature",
                format!("must be finite and >= 0, got {}", self.temperature),
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(ModelError::config(
                "top_p",
                format!("must be in (0, 1], got {}", self.top_p),
            ));
        }
        Ok(())
    }

    /// The temperature the reported log-probs use: the sampling temperature, or 1 when greedy.
    pub fn logprob_temperature(&self) -> f32 {
        if self.temperature == 0.0 {
            1.0
        } else {
            self.temperature
        }
    }

    /// Picks a token from `logits` (V) and returns it with its log-probability under
    /// softmax(logits / [`Sampling::logprob_temperature`]) (before any top-k/top-p filtering,
    /// as TRL reports it).
    pub fn pick(&self, logits: &[f32], rng: &mut Rng) -> Result<(u32, f32)> {
        if logits.is_empty() || logits.iter().any(|x| x.is_nan()) {
            return Err(ModelError::Input("logits are empty or hold NaN".into()));
        }
        let temperature = self.logprob_temperature();
        let scaled: Vec<f32> = logits.iter().map(|&x| x / temperature).collect();
        let max = scaled.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let weights: Vec<f32> = scaled.iter().map(|&z| (z - max).exp()).collect();
        let total: f32 = weights.iter().sum();
        let token = if self.temperature == 0.0 {
            argmax(logits)
        } else {
            let kept = self.filter(&weights, total);
            rng.categorical(&kept)
                .ok_or_else(|| ModelError::Input("no token left to sample from".into()))?
        };
        let logp = scaled[token] - max - total.ln();
        Ok((token as u32, logp))
    }

    /// Zeroes the weights that top-k and top-p drop.
    fn filter(&self, weights: &[f32], total: f32) -> Vec<f32> {
        let mut kept = weights.to_vec();
        let k = if self.top_k == 0 {
            weights.len()
        } else {
            self.top_k.min(weights.len())
        };
        if k == weights.len() && self.top_p >= 1.0 {
            return kept;
        }
        let mut order: Vec<usize> = (0..weights.len()).collect();
        // Descending weight, ties by index so the choice is deterministic.
        order.sort_unstable_by(|&a, &b| weights[b].total_cmp(&weights[a]).then(a.cmp(&b)));
        let mut cumulative = 0.0f32;
        for (rank, &i) in order.iter().enumerate() {
            let reached = cumulative >= self.top_p * total;
            if rank >= k || (rank > 0 && reached) {
                kept[i] = 0.0;
            }
            cumulative += weights[i];
        }
        kept
    }
}

/// Index of the largest value (the first on ties).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_one_is_greedy_and_top_p_keeps_the_nucleus() {
        let logits = [0.0, 2.0, 1.0, -1.0];
        let mut rng = Rng::new(1);
        let s = Sampling {
            temperature: 1.0,
            top_k: 1,
            top_p: 1.0,
        };
        for _ in 0..20 {
            assert_eq!(s.pick(&logits, &mut rng).unwrap().0, 1);
        }
        // Probabilities ~ [0.087, 0.644, 0.237, 0.032]: p = 0.7 keeps tokens 1 and 2 only.
        let s = Sampling {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.7,
        };
        let mut seen = [0; 4];
        for _ in 0..400 {
            seen[s.pick(&logits, &mut rng).unwrap().0 as usize] += 1;
        }
        assert_eq!((seen[0], seen[3]), (0, 0));
        assert!(seen[1] > 200 && seen[2] > 50, "{seen:?}");
    }

    #[test]
    fn logprob_is_under_the_temperature_scaled_distribution() {
        let logits = [1.0, 3.0];
        let s = Sampling {
            temperature: 2.0,
            top_k: 1,
            top_p: 1.0,
        };
        let (tok, logp) = s.pick(&logits, &mut Rng::new(0)).unwrap();
        assert_eq!(tok, 1);
        let expected = 1.5 - (0.5f32.exp() + 1.5f32.exp()).ln();
        assert!((logp - expected).abs() < 1e-6);
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(
            Sampling {
                temperature: -1.0,
                ..Sampling::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            Sampling {
                top_p: 0.0,
                ..Sampling::default()
            }
            .validate()
            .is_err()
        );
    }
}
