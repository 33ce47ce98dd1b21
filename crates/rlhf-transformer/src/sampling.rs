//! Choosing the next token from a row of logits: greedy, or sampling under temperature with
//! optional top-k and then top-p (nucleus, over the top-k renormalised mass) filtering, drawn
//! from the seeded [`Rng`]. The algorithm is rlhf-tensor's `ops::sampling` (stated there), so
//! the host and a GPU pick the same tokens for the same logits and seed.

use rlhf_tensor::Rng;
use rlhf_tensor::ops::sampling::{SampleSpec, cpu};
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

    /// The tensor-level spec of these settings (`rlhf_tensor::ops::sampling`).
    pub fn spec(&self) -> SampleSpec {
        SampleSpec {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
        }
    }

    /// Picks a token from `logits` (V) and returns it with its log-probability under
    /// softmax(logits / [`Sampling::logprob_temperature`]) (before any top-k/top-p filtering,
    /// as TRL reports it). Draws one uniform from `rng` unless greedy; the algorithm is
    /// `rlhf_tensor::ops::sampling`'s, the one the GPU runs.
    pub fn pick(&self, logits: &[f32], rng: &mut Rng) -> Result<(u32, f32)> {
        self.validate()?;
        let u = if self.temperature == 0.0 {
            0.0
        } else {
            rng.uniform_f64()
        };
        let (token, logp) = cpu::sample_row(logits, self.spec(), u)
            .ok_or_else(|| ModelError::Input("logits are empty or hold NaN".into()))?;
        Ok((token as u32, logp))
    }
}

/// Index of the largest value (the first on ties).
pub fn argmax(values: &[f32]) -> usize {
    cpu::argmax(values)
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
