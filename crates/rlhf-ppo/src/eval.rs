//! Evaluation of a policy on held-out prompts: the mean score of its sampled responses under a
//! (ground-truth) reward function, the KL to the reference per response (the Monte-Carlo mean of
//! the summed log-ratio, k1, at the sampling temperature), how often it stopped, and optionally
//! its pretraining loss (for the alignment tax).

use rlhf_reward::RewardFunction;
use rlhf_tensor::Rng;
use rlhf_transformer::train::evaluate as lm_evaluate;
use rlhf_transformer::{Example, Gpt};
use serde::{Deserialize, Serialize};

use crate::rollout::{Decode, PpoPrompt, SampleSpec, sample, score_sequences, score_tokens};
use crate::train_error::{TrainError, TrainResult};

/// What [`evaluate`] measures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Prompts evaluated.
    pub prompts: usize,
    /// Mean score of the responses.
    pub mean_score: f64,
    /// Mean over responses of sum_t (log pi - log ref) at the sampling temperature (nats).
    pub kl_to_reference: f64,
    /// Share of responses that ended with the stop token.
    pub stop_rate: f64,
    /// Mean response length in tokens.
    pub mean_response_length: f64,
    /// Mean next-token loss on the pretraining data, when given.
    pub pretrain_loss: Option<f64>,
}

/// Samples one response per prompt from `policy` (seeded by `seed`: equal seeds give equal
/// draws, so two policies are compared on the same random numbers) and measures it.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    policy: &Gpt,
    reference: &Gpt,
    prompts: &[PpoPrompt],
    reward: &mut dyn RewardFunction,
    decode: &Decode,
    spec: &SampleSpec,
    seed: u64,
    pretrain: &[Example],
) -> TrainResult<EvalReport> {
    if prompts.is_empty() {
        return Err(TrainError::Input("no evaluation prompts".into()));
    }
    let mut rng = Rng::new(seed);
    let (mut score_sum, mut kl_sum, mut stops, mut tokens) = (0.0f64, 0.0f64, 0usize, 0usize);
    for chunk in prompts.chunks(spec.chunk_rows.max(1)) {
        let ids: Vec<&[u32]> = chunk.iter().map(|p| p.tokens.as_slice()).collect();
        let seqs = sample(policy, &ids, spec, &mut rng)?;
        let logp = score_tokens(policy, &seqs, spec.temperature, spec.chunk_rows)?.logp;
        let ref_logp = score_tokens(reference, &seqs, spec.temperature, spec.chunk_rows)?.logp;
        let all: Vec<usize> = (0..seqs.batch).collect();
        let mask = seqs.response_mask(&all);
        for ((lp, rp), m) in logp.iter().zip(&ref_logp).zip(&mask) {
            kl_sum += f64::from(m * (lp - rp));
        }
        tokens += mask.iter().filter(|&&m| m > 0.0).count();
        stops += seqs.finished.iter().filter(|&&f| f).count();
        let texts: Vec<&str> = chunk.iter().map(|p| p.text.as_str()).collect();
        let scores = score_sequences(&seqs, &texts, reward, decode, spec.stop_token_id)?;
        score_sum += scores.iter().map(|&s| f64::from(s)).sum::<f64>();
    }
    let n = prompts.len() as f64;
    let pretrain_loss = if pretrain.is_empty() {
        None
    } else {
        let seq_len = pretrain.iter().map(|e| e.tokens.len()).max().unwrap_or(1);
        let (loss, _) = lm_evaluate(
            policy,
            pretrain,
            spec.chunk_rows.max(1),
            seq_len,
            spec.pad_token_id,
        )?;
        Some(f64::from(loss))
    };
    Ok(EvalReport {
        prompts: prompts.len(),
        mean_score: score_sum / n,
        kl_to_reference: kl_sum / n,
        stop_rate: stops as f64 / n,
        mean_response_length: tokens as f64 / n,
        pretrain_loss,
    })
}
