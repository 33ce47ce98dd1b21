//! Sampling responses from a policy for the world's prompts, and scoring responses' log-probs
//! under a model (for KL to the SFT model).
//!
//! Prompts are rendered in the world's dialogue format (`"\n\nHuman: ...\n\nAssistant:"`); the
//! model continues with `" reply"` and EOS. Batches are decoded together with the KV cache; each
//! batch has its own seed (`seed + batch index`), so the same prompts, batch size and seed give
//! the same samples from the same model, and different policies see the same random numbers.

use indicatif::ProgressBar;
use rlhf_data::tokenizer::Tokenizer;
use rlhf_transformer::{GenerationConfig, Gpt, ModelInput, Padding, Sampling};

use super::error::Result;

/// Sequences decoded together.
pub const GENERATION_BATCH: usize = 32;

/// One sampled response.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The rendered prompt's tokens.
    pub prompt_tokens: Vec<u32>,
    /// The generated tokens (with the EOS when the response finished).
    pub response_tokens: Vec<u32>,
    /// The response text, special tokens left out, trimmed.
    pub text: String,
    /// Whether it ended with EOS (false: it ran out of tokens).
    pub finished: bool,
}

/// How to sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleSpec {
    /// Responses per prompt.
    pub per_prompt: usize,
    /// Longest response in tokens.
    pub max_new_tokens: usize,
    /// Temperature, top-k, top-p.
    pub sampling: Sampling,
    /// Seed of the first batch (batch b uses `seed + b`).
    pub seed: u64,
}

/// `spec.per_prompt` responses to each prompt (rendered dialogue text), in prompt order.
pub fn sample(
    model: &Gpt,
    tok: &dyn Tokenizer,
    prompts: &[String],
    spec: SampleSpec,
    bar: &ProgressBar,
) -> Result<Vec<Vec<Sample>>> {
    let SampleSpec {
        per_prompt,
        max_new_tokens,
        sampling,
        seed,
    } = spec;
    let encoded: Vec<Vec<u32>> = prompts.iter().map(|p| tok.encode_with_special(p)).collect();
    // (prompt index) per sequence to decode.
    let jobs: Vec<usize> = (0..prompts.len())
        .flat_map(|p| std::iter::repeat_n(p, per_prompt))
        .collect();
    let mut out: Vec<Vec<Sample>> = vec![Vec::with_capacity(per_prompt); prompts.len()];
    let vocab = model.config.vocab_size as u32;
    for (batch_index, chunk) in jobs.chunks(GENERATION_BATCH).enumerate() {
        let batch: Vec<&[u32]> = chunk.iter().map(|&p| encoded[p].as_slice()).collect();
        let config = GenerationConfig {
            max_new_tokens,
            sampling,
            eos_token_id: Some(tok.eos_id()).filter(|&e| e < vocab),
            pad_token_id: tok.pad_id().min(vocab - 1),
            seed: seed.wrapping_add(batch_index as u64),
        };
        let generation = model.generate(&batch, &config)?;
        for (row, &p) in chunk.iter().enumerate() {
            let response_tokens = generation.sequence(row);
            let text = tok
                .decode_skip_special(&response_tokens)?
                .trim()
                .to_string();
            out[p].push(Sample {
                prompt_tokens: encoded[p].clone(),
                response_tokens,
                text,
                finished: generation.finished[row],
            });
        }
        bar.inc(chunk.len() as u64);
    }
    Ok(out)
}

/// Each sample's summed log-prob of its response tokens under `model`, with the logits divided
/// by `temperature` (the distribution the samples were drawn from).
pub fn response_logprobs(
    model: &Gpt,
    samples: &[&Sample],
    temperature: f32,
    pad: u32,
) -> Result<Vec<f64>> {
    let mut sums = Vec::with_capacity(samples.len());
    for chunk in samples.chunks(GENERATION_BATCH) {
        let sequences: Vec<Vec<u32>> = chunk
            .iter()
            .map(|s| [s.prompt_tokens.as_slice(), &s.response_tokens].concat())
            .collect();
        let input = ModelInput::padded(&sequences, pad, Padding::Right)?;
        let t = input.seq_len;
        // Position p predicts token p + 1: the targets are the tokens shifted left (B T).
        let mut targets = vec![pad; input.batch * t];
        for (row, seq) in sequences.iter().enumerate() {
            for p in 0..seq.len().saturating_sub(1) {
                targets[row * t + p] = seq[p + 1];
            }
        }
        let forward = model.forward(&input)?;
        let logprobs = model.token_logprobs(&forward.hidden, &targets, temperature)?;
        for (row, sample) in chunk.iter().enumerate() {
            let start = sample.prompt_tokens.len() - 1;
            let end = start + sample.response_tokens.len();
            let sum: f64 = logprobs.logp[row * t + start..row * t + end]
                .iter()
                .map(|&l| f64::from(l))
                .sum();
            sums.push(sum);
        }
    }
    Ok(sums)
}
