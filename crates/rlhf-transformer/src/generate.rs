//! Batched generation with the KV cache: left-padded prompts of different lengths, seeded
//! sampling, stop per sequence at EOS or after `max_new_tokens`.
//!
//! On any device: the cache, the logits and the sampling (`ops::sampling`) stay on the model's
//! device; per step only B uniforms go up and B sampled tokens and log-probs come back, which
//! the host needs anyway for the finished mask and the next step's ids.

use rlhf_tensor::ops::embedding::{TokenIds, embedding};
use rlhf_tensor::ops::sampling::sample;
use rlhf_tensor::{Rng, Tensor};
use serde::{Deserialize, Serialize};

use crate::sampling::Sampling;
use crate::{Gpt, KvCache, ModelError, ModelInput, Padding, Result};

/// Generation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationConfig {
    /// At most this many tokens are generated per sequence.
    pub max_new_tokens: usize,
    /// How each token is chosen.
    pub sampling: Sampling,
    /// A sequence stops after emitting this token (kept in its output).
    pub eos_token_id: Option<u32>,
    /// Filler for prompts' left padding and for positions after a sequence stopped.
    pub pad_token_id: u32,
    /// Seed of the sampler.
    pub seed: u64,
}

/// What [`Gpt::generate`] returns; (B, N) arrays are row-major with N = the steps taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// Generated tokens (B, N); `pad_token_id` after a sequence finished.
    pub tokens: Vec<u32>,
    /// Each generated token's log-prob under the temperature-scaled logits (B, N); 0 at padding.
    pub logprobs: Vec<f32>,
    /// True at generated (real) tokens (B, N).
    pub mask: Vec<bool>,
    /// Whether each sequence stopped at EOS (false: it ran out of `max_new_tokens`).
    pub finished: Vec<bool>,
    /// Number of sequences B.
    pub batch: usize,
    /// Number of steps N.
    pub steps: usize,
}

impl Generation {
    /// Sequence `b`'s generated tokens, without padding.
    pub fn sequence(&self, b: usize) -> Vec<u32> {
        let row = b * self.steps..(b + 1) * self.steps;
        self.tokens[row.clone()]
            .iter()
            .zip(&self.mask[row])
            .filter(|(_, m)| **m)
            .map(|(t, _)| *t)
            .collect()
    }
}

impl Gpt {
    /// Continues each prompt; the prompts are left-padded into one batch and decoded together
    /// with a KV cache, so each new token costs time linear in the current length.
    ///
    /// ```
    /// use rlhf_tensor::{Device, Rng};
    /// use rlhf_transformer::{Gpt, GptConfig, GenerationConfig, Sampling};
    /// let model = Gpt::new(GptConfig::new(20, 16, 8, 1, 2), 0, &mut Rng::new(0), Device::Cpu)?;
    /// let config = GenerationConfig { max_new_tokens: 4, sampling: Sampling::greedy(),
    ///     eos_token_id: None, pad_token_id: 0, seed: 0 };
    /// let out = model.generate(&[vec![1, 2, 3], vec![4]], &config)?;
    /// assert_eq!(out.sequence(0).len(), 4);
    /// # Ok::<(), rlhf_transformer::ModelError>(())
    /// ```
    pub fn generate<S: AsRef<[u32]>>(
        &self,
        prompts: &[S],
        config: &GenerationConfig,
    ) -> Result<Generation> {
        config.sampling.validate()?;
        if prompts.iter().any(|p| p.as_ref().is_empty()) {
            return Err(ModelError::Input(
                "every prompt needs at least one token".into(),
            ));
        }
        let input = ModelInput::padded(prompts, config.pad_token_id, Padding::Left)?;
        let (b, t) = (input.batch, input.seq_len);
        let longest = prompts.iter().map(|p| p.as_ref().len()).max().unwrap_or(0);
        if longest + config.max_new_tokens > self.config.n_positions {
            return Err(ModelError::Input(format!(
                "a {longest}-token prompt plus {} new tokens exceeds n_positions = {}",
                config.max_new_tokens, self.config.n_positions
            )));
        }
        let mut cache = KvCache::new(self, b, t + config.max_new_tokens)?;
        let mut rng = Rng::new(config.seed);
        let mut hidden = self.forward_cached(
            &mut cache,
            &input.tokens,
            &input.attention_mask,
            &input.position_ids,
        )?;
        // Left padding: every prompt ends at the last position of the first step.
        let mut last_pos = t - 1;
        let mut lengths: Vec<u32> = prompts.iter().map(|p| p.as_ref().len() as u32).collect();
        let mut finished = vec![false; b];
        let mut steps: Vec<(Vec<u32>, Vec<f32>, Vec<bool>)> = Vec::new();
        let spec = config.sampling.spec();
        let greedy = config.sampling.temperature == 0.0;
        for step in 0..config.max_new_tokens {
            // Each sequence's last hidden state, gathered on the device: (B, C) -> logits (B, V).
            let last = last_rows(&hidden, b, last_pos)?;
            let logits = self.logits(&last)?;
            // One uniform per live, sampling row, drawn in row order from the seeded Rng.
            let uniforms: Vec<f64> = finished
                .iter()
                .map(|&f| if f || greedy { 0.0 } else { rng.uniform_f64() })
                .collect();
            let picked = sample(&logits, spec, &uniforms)?; // only B tokens and log-probs return
            let (mut tokens, mut logps, mut real) =
                (vec![config.pad_token_id; b], vec![0.0; b], vec![false; b]);
            for row in 0..b {
                if finished[row] {
                    continue;
                }
                let tok = picked.tokens[row];
                tokens[row] = tok;
                logps[row] = picked.logp[row];
                real[row] = true;
                finished[row] = config.eos_token_id == Some(tok);
            }
            let positions = lengths.clone();
            for (len, &r) in lengths.iter_mut().zip(&real) {
                *len += u32::from(r);
            }
            steps.push((tokens.clone(), logps, real.clone()));
            if finished.iter().all(|&f| f) || step + 1 == config.max_new_tokens {
                break;
            }
            hidden = self.forward_cached(&mut cache, &tokens, &real, &positions)?;
            last_pos = 0;
        }
        let n = steps.len();
        let mut out = Generation {
            tokens: vec![config.pad_token_id; b * n],
            logprobs: vec![0.0; b * n],
            mask: vec![false; b * n],
            finished,
            batch: b,
            steps: n,
        };
        for (s, (tokens, logps, real)) in steps.into_iter().enumerate() {
            for row in 0..b {
                out.tokens[row * n + s] = tokens[row];
                out.logprobs[row * n + s] = logps[row];
                out.mask[row * n + s] = real[row];
            }
        }
        Ok(out)
    }
}

/// Row `pos` of every sequence of `hidden` (B, T, C), gathered on its device: (B, C).
fn last_rows(hidden: &Tensor, b: usize, pos: usize) -> Result<Tensor> {
    let dims = hidden.dims();
    let (t, c) = (dims[1], dims[2]);
    if t == 1 {
        return Ok(hidden.try_clone()?.reshape([b, c])?);
    }
    let table = hidden.try_clone()?.reshape([b * t, c])?;
    let ids: Vec<u32> = (0..b).map(|row| (row * t + pos) as u32).collect();
    Ok(embedding(&table, None, TokenIds::new(&ids, 1, b))?.reshape([b, c])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GptConfig;
    use crate::sampling::argmax;
    use rlhf_tensor::Device;

    fn model() -> Gpt {
        let mut rng = Rng::new(11);
        let mut m = Gpt::new(GptConfig::new(17, 32, 16, 2, 4), 0, &mut rng, Device::Cpu).unwrap();
        // Larger weights than GPT-2's init so that the argmax changes along the sequence.
        for (_, t) in m.params.named_mut() {
            if t.dims().len() == 2 {
                *t = rlhf_tensor::Tensor::randn(t.dims(), 0.5, &mut rng, Device::Cpu).unwrap();
            }
        }
        m
    }

    fn config(sampling: Sampling, eos: Option<u32>) -> GenerationConfig {
        GenerationConfig {
            max_new_tokens: 9,
            sampling,
            eos_token_id: eos,
            pad_token_id: 0,
            seed: 5,
        }
    }

    #[test]
    fn greedy_generation_equals_full_forward_argmax_step_by_step() {
        let m = model();
        let prompts = [vec![3u32, 1, 4, 1, 5], vec![9], vec![2, 6, 5]];
        let out = m
            .generate(&prompts, &config(Sampling::greedy(), None))
            .unwrap();
        assert_eq!(out.steps, 9);
        let mut distinct = std::collections::BTreeSet::new();
        for (b, prompt) in prompts.iter().enumerate() {
            let generated = out.sequence(b);
            assert_eq!(generated.len(), 9);
            let mut seq = prompt.clone();
            for (s, &tok) in generated.iter().enumerate() {
                let fwd = m
                    .forward(&ModelInput::dense(seq.clone(), 1, seq.len()).unwrap())
                    .unwrap();
                let logits = m.logits(&fwd.hidden).unwrap().to_vec_f32();
                let last = &logits[(seq.len() - 1) * 17..];
                assert_eq!(argmax(last) as u32, tok, "sequence {b}, step {s}");
                let max = last.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let lse = max + last.iter().map(|x| (x - max).exp()).sum::<f32>().ln();
                assert!((out.logprobs[b * 9 + s] - (last[tok as usize] - lse)).abs() < 1e-4);
                distinct.insert(tok);
                seq.push(tok);
            }
        }
        assert!(
            distinct.len() > 2,
            "a degenerate model would not test the cache: {distinct:?}"
        );
    }

    #[test]
    fn sampling_is_seeded_and_stops_at_eos_per_sequence() {
        let m = model();
        let prompts = [vec![3u32, 1], vec![7, 7, 7, 2]];
        let s = Sampling {
            temperature: 1.3,
            top_k: 8,
            top_p: 0.95,
        };
        let a = m.generate(&prompts, &config(s, None)).unwrap();
        let b = m.generate(&prompts, &config(s, None)).unwrap();
        assert_eq!(a, b);
        // Use the first sampled token of sequence 0 as EOS: sequence 0 stops right there.
        let eos = a.tokens[0];
        let c = m.generate(&prompts, &config(s, Some(eos))).unwrap();
        assert!(c.finished[0]);
        assert_eq!(c.sequence(0), vec![eos]);
        let row1 = c.sequence(1);
        assert!(row1.len() == c.steps);
        assert_eq!(c.finished[1], row1.last() == Some(&eos));
        assert!(
            c.mask[1..c.steps].iter().all(|m| !m),
            "sequence 0 is padding after EOS"
        );
    }

    #[test]
    fn too_long_requests_are_errors() {
        let m = model();
        let mut cfg = config(Sampling::greedy(), None);
        cfg.max_new_tokens = 40;
        assert!(m.generate(&[vec![1u32]], &cfg).is_err());
    }
}
