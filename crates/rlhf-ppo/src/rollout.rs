//! One PPO rollout: sample responses from the policy with the KV cache (left-padded prompts,
//! temperature-scaled log-probs), truncate after the stop token, recompute the policy's and the
//! frozen reference's log-probs and the critic's values through the fused log-prob path (no
//! (B, T, V) logits are kept), score with the [`RewardFunction`] (penalising responses without a
//! stop token), then rewards with the KL penalty, GAE and whitening ([`compute_advantages`]).

use std::time::Instant;

use rlhf_reward::{Episode, RewardFunction};
use rlhf_tensor::Rng;
use rlhf_transformer::{GenerationConfig, Gpt, Sampling};
use serde::{Deserialize, Serialize};

use crate::sequences::{Sequences, response_rows, response_values};
use crate::train_error::{TrainError, TrainResult};
use crate::{KlSpec, PpoConfig, masked_whiten};

/// One prompt: its text as the policy sees it (rendered turns) and its token ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PpoPrompt {
    /// The prompt text (what the reward function reads).
    pub text: String,
    /// The prompt's token ids (what the policy reads), unpadded.
    pub tokens: Vec<u32>,
}

/// Turns response tokens (without the stop token) into text for the reward function; an
/// error (e.g. an id the tokenizer does not know) stops the step with the episode named.
pub type Decode = dyn Fn(&[u32]) -> Result<String, String> + Send + Sync;

/// How responses are sampled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleSpec {
    /// Most tokens per response.
    pub response_length: usize,
    /// Sampling temperature (log-probs are under the same temperature).
    pub temperature: f32,
    /// The token that ends a response.
    pub stop_token_id: u32,
    /// Filler for padding.
    pub pad_token_id: u32,
    /// Rows per generation and forward chunk.
    pub chunk_rows: usize,
}

/// Seconds spent in each part of a PPO step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Sampling responses with the KV cache.
    #[serde(rename = "timing/generation")]
    pub generation: f64,
    /// Policy, reference and critic forwards over the rollout.
    #[serde(rename = "timing/rollout_forward")]
    pub rollout_forward: f64,
    /// Decoding and the reward function.
    #[serde(rename = "timing/scoring")]
    pub scoring: f64,
    /// The PPO epochs (forward, backward, optimiser).
    #[serde(rename = "timing/training")]
    pub training: f64,
}

impl Timing {
    /// All parts together.
    pub fn total(&self) -> f64 {
        self.generation + self.rollout_forward + self.scoring + self.training
    }

    /// Generation's share of the step (0 when nothing was timed): the goal keeps it
    /// under one half at GPT-2 scale.
    pub fn generation_share(&self) -> f64 {
        let total = self.total();
        if total > 0.0 {
            self.generation / total
        } else {
            0.0
        }
    }

    /// "gen 41% fwd 12% score 3% train 44%": the split for a progress line.
    pub fn split(&self) -> String {
        let total = self.total().max(1e-12);
        let pct = |x: f64| 100.0 * x / total;
        format!(
            "gen {:.0}% fwd {:.0}% score {:.0}% train {:.0}%",
            pct(self.generation),
            pct(self.rollout_forward),
            pct(self.scoring),
            pct(self.training)
        )
    }
}

/// What a rollout holds; (B, R) arrays are row-major over the batch's response width R.
#[derive(Debug, Clone)]
pub struct Rollout {
    /// The query-response rows.
    pub sequences: Sequences,
    /// 1 at response tokens (stop token included), 0 after. (B, R)
    pub mask: Vec<f32>,
    /// The sampling policy's log-probs (temperature-scaled), recomputed by a forward. (B, R)
    pub logp: Vec<f32>,
    /// The reference's log-probs at the same temperature. (B, R)
    pub ref_logp: Vec<f32>,
    /// The critic's values. (B, R)
    pub values: Vec<f32>,
    /// The reward function's scores after the missing-stop-token penalty. (B)
    pub scores: Vec<f32>,
    /// Seconds of generation, forwards and scoring.
    pub timing: Timing,
}

/// Samples one response per prompt (in chunks of `spec.chunk_rows`, each with a seed drawn
/// from `rng`), truncated after the stop token.
pub fn sample(
    policy: &Gpt,
    prompts: &[&[u32]],
    spec: &SampleSpec,
    rng: &mut Rng,
) -> TrainResult<Sequences> {
    let mut responses = Vec::with_capacity(prompts.len());
    let mut finished = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(spec.chunk_rows.max(1)) {
        let config = GenerationConfig {
            max_new_tokens: spec.response_length,
            sampling: Sampling {
                temperature: spec.temperature,
                top_k: 0,
                top_p: 1.0,
            },
            eos_token_id: Some(spec.stop_token_id),
            pad_token_id: spec.pad_token_id,
            seed: rng.next_u64(),
        };
        let out = policy.generate(chunk, &config)?;
        for b in 0..out.batch {
            responses.push(out.sequence(b));
            finished.push(out.finished[b]);
        }
    }
    Sequences::new(prompts, &responses, finished, spec.pad_token_id)
}

/// What a forward over the responses gives: (B, R) arrays.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenScores {
    /// Log-probs of the response tokens at the temperature.
    pub logp: Vec<f32>,
    /// Entropies of the temperature-scaled distributions.
    pub entropy: Vec<f32>,
    /// The first scalar head's values, when the model has one.
    pub values: Option<Vec<f32>>,
}

/// Log-probs and entropies (B, R) of the responses under `model` at `temperature`, and the
/// first scalar head's values (B, R) when the model has one; forwards in chunks of `chunk_rows`.
pub fn score_tokens(
    model: &Gpt,
    seqs: &Sequences,
    temperature: f32,
    chunk_rows: usize,
) -> TrainResult<TokenScores> {
    let (p, r) = (seqs.context_len, seqs.response_len);
    let (mut logp, mut entropy) = (Vec::new(), Vec::new());
    let mut values = model.params.score.is_some().then(Vec::new);
    let all: Vec<usize> = (0..seqs.batch).collect();
    for rows in all.chunks(chunk_rows.max(1)) {
        let fwd = model.forward(&seqs.input(rows)?)?;
        let hidden = response_rows(&fwd.hidden, p, r)?; // (b R, C)
        let out = model.token_logprobs(&hidden, &seqs.response_tokens(rows), temperature)?;
        logp.extend(out.logp);
        entropy.extend(out.entropy);
        if let (Some(v), Some(s)) = (values.as_mut(), fwd.scalars.as_ref()) {
            v.extend(response_values(s, p, r)?);
        }
    }
    Ok(TokenScores {
        logp,
        entropy,
        values,
    })
}

/// The critic's values (B, R) at the response positions (first scalar head).
pub fn critic_values(critic: &Gpt, seqs: &Sequences, chunk_rows: usize) -> TrainResult<Vec<f32>> {
    let (p, r) = (seqs.context_len, seqs.response_len);
    let all: Vec<usize> = (0..seqs.batch).collect();
    let mut values = Vec::with_capacity(seqs.batch * r);
    for rows in all.chunks(chunk_rows.max(1)) {
        let fwd = critic.forward(&seqs.input(rows)?)?;
        let scalars = fwd
            .scalars
            .as_ref()
            .ok_or_else(|| TrainError::Input("the critic has no scalar (value) head".into()))?;
        values.extend(response_values(scalars, p, r)?);
    }
    Ok(values)
}

/// Scores each row with `reward`: text from `decode` (stop token left out), tokens with it.
pub fn score_sequences(
    seqs: &Sequences,
    prompt_texts: &[&str],
    reward: &mut dyn RewardFunction,
    decode: &Decode,
    stop_token_id: u32,
) -> TrainResult<Vec<f32>> {
    let prompts: Vec<Vec<u32>> = (0..seqs.batch).map(|b| seqs.prompt(b)).collect();
    let responses: Vec<Vec<u32>> = (0..seqs.batch).map(|b| seqs.response(b)).collect();
    let texts: Vec<String> = responses
        .iter()
        .enumerate()
        .map(|(b, r)| {
            match r.split_last() {
                Some((&last, head)) if last == stop_token_id => decode(head),
                _ => decode(r),
            }
            .map_err(|e| TrainError::Input(format!("decoding the response of episode {b}: {e}")))
        })
        .collect::<TrainResult<_>>()?;
    let episodes: Vec<Episode<'_>> = (0..seqs.batch)
        .map(|b| Episode {
            prompt: prompt_texts[b],
            response: &texts[b],
            prompt_tokens: &prompts[b],
            response_tokens: &responses[b],
        })
        .collect();
    let scores = reward.score(&episodes)?;
    if scores.len() != seqs.batch {
        return Err(TrainError::Input(format!(
            "reward function `{}` returned {} scores for {} episodes",
            reward.name(),
            scores.len(),
            seqs.batch
        )));
    }
    Ok(scores)
}

/// The models a rollout reads.
pub struct RolloutModels<'a> {
    /// The policy being trained (with a value head when the critic is shared).
    pub policy: &'a Gpt,
    /// The frozen reference (SFT) policy.
    pub reference: &'a Gpt,
    /// A separate critic, or `None` when the value head sits on the policy.
    pub critic: Option<&'a Gpt>,
}

/// Collects one rollout for `prompts` (text, tokens).
pub fn collect(
    models: &RolloutModels<'_>,
    prompts: &[&crate::PpoPrompt],
    reward: &mut dyn RewardFunction,
    decode: &Decode,
    spec: &SampleSpec,
    missing_eos_penalty: Option<f64>,
    rng: &mut Rng,
) -> TrainResult<Rollout> {
    let mut timing = Timing::default();
    let clock = Instant::now();
    let tokens: Vec<&[u32]> = prompts.iter().map(|p| p.tokens.as_slice()).collect();
    let sequences = sample(models.policy, &tokens, spec, rng)?;
    timing.generation = clock.elapsed().as_secs_f64();

    let clock = Instant::now();
    let policy = score_tokens(models.policy, &sequences, spec.temperature, spec.chunk_rows)?;
    let (logp, shared_values) = (policy.logp, policy.values);
    let ref_logp = score_tokens(
        models.reference,
        &sequences,
        spec.temperature,
        spec.chunk_rows,
    )?
    .logp;
    let values = match (models.critic, shared_values) {
        (Some(critic), _) => critic_values(critic, &sequences, spec.chunk_rows)?,
        (None, Some(values)) => values,
        (None, None) => {
            return Err(TrainError::Input(
                "a shared critic needs a value head on the policy".into(),
            ));
        }
    };
    timing.rollout_forward = clock.elapsed().as_secs_f64();

    let clock = Instant::now();
    let texts: Vec<&str> = prompts.iter().map(|p| p.text.as_str()).collect();
    let mut scores = score_sequences(&sequences, &texts, reward, decode, spec.stop_token_id)?;
    if let Some(penalty) = missing_eos_penalty {
        for (score, &done) in scores.iter_mut().zip(&sequences.finished) {
            if !done {
                *score -= penalty as f32;
            }
        }
    }
    timing.scoring = clock.elapsed().as_secs_f64();
    let all: Vec<usize> = (0..sequences.batch).collect();
    Ok(Rollout {
        mask: sequences.response_mask(&all),
        sequences,
        logp,
        ref_logp,
        values,
        scores,
        timing,
    })
}

/// Rewards, advantages and returns of a rollout, with the per-token KL they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Advantages {
    /// Per-token KL estimate between policy and reference. (B, R)
    pub kl: Vec<f32>,
    /// -kl_coef kl_t, plus the score at each response's last token (whitened if asked). (B, R)
    pub rewards: Vec<f32>,
    /// -kl_coef kl_t alone. (B, R)
    pub non_score_reward: Vec<f32>,
    /// GAE advantages, whitened over the kept tokens. (B, R)
    pub advantages: Vec<f32>,
    /// Value targets A + V (before whitening the advantages). (B, R)
    pub returns: Vec<f32>,
    /// GAE advantages before whitening (what data parallel whitens over every rank). (B, R)
    pub raw_advantages: Vec<f32>,
}

/// The N+ recipe's reward layout and advantages: per-token KL (`config.kl_estimator`, optional
/// clamp), r_t = -kl_coef kl_t plus the score at the last kept token, optional reward
/// whitening (mean kept), GAE(gamma, lam) with V = 0 after the last token, whitened advantages.
/// Every (B, R) input is row-major over `response_len`.
#[allow(clippy::too_many_arguments)]
pub fn compute_advantages(
    logp: &[f32],
    ref_logp: &[f32],
    values: &[f32],
    scores: &[f32],
    mask: &[f32],
    response_len: usize,
    kl_coef: f64,
    config: &PpoConfig,
) -> TrainResult<Advantages> {
    let spec = KlSpec {
        estimator: config.kl_estimator,
        clamp: config.kl_clamp,
    };
    let kl = crate::per_token_kl(logp, ref_logp, mask, spec)?;
    let penalised = crate::penalised_rewards(&kl, scores, mask, response_len, kl_coef as f32)?;
    let rewards = if config.whiten_rewards {
        masked_whiten(&penalised.rewards, mask, false)?
    } else {
        penalised.rewards
    };
    let gae = crate::gae(
        &rewards,
        values,
        mask,
        response_len,
        config.gamma,
        config.lam,
    )?;
    let advantages = gae.whitened_advantages(mask)?;
    Ok(Advantages {
        kl,
        rewards,
        non_score_reward: penalised.non_score_reward,
        advantages,
        returns: gae.returns,
        raw_advantages: gae.advantages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlhf_reward::FnReward;
    use rlhf_tensor::testing::{assert_close, to_f64};
    use rlhf_tensor::{Device, Tensor};
    use rlhf_transformer::GptConfig;

    /// A tiny model with large random weights, so that sampling varies along the sequence.
    fn tiny() -> Gpt {
        let mut rng = Rng::new(21);
        let mut model = Gpt::new(GptConfig::new(9, 24, 8, 2, 2), 0, &mut rng, Device::Cpu).unwrap();
        for (name, t) in model.params.named_mut() {
            if !name.contains("ln_") {
                *t = Tensor::randn(t.dims(), 0.4, &mut rng, Device::Cpu).unwrap();
            }
        }
        model
    }

    #[test]
    fn recomputed_logprobs_match_generation_and_missing_eos_is_penalised() {
        // Left-padded prompts of different lengths: the forward over the query-response layout
        // must give the log-probs the KV-cache generation sampled with.
        let model = tiny();
        let prompts: Vec<Vec<u32>> = vec![vec![3, 4, 5, 6], vec![7], vec![2, 8]];
        let refs: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
        let spec = SampleSpec {
            response_length: 7,
            temperature: 0.8,
            stop_token_id: 0,
            pad_token_id: 1,
            chunk_rows: 2,
        };
        let seqs = sample(&model, &refs, &spec, &mut Rng::new(4)).unwrap();
        let mut rng = Rng::new(4);
        let mut generated = Vec::new();
        for chunk in refs.chunks(2) {
            let config = GenerationConfig {
                max_new_tokens: 7,
                sampling: Sampling {
                    temperature: 0.8,
                    top_k: 0,
                    top_p: 1.0,
                },
                eos_token_id: Some(0),
                pad_token_id: 1,
                seed: rng.next_u64(),
            };
            let out = model.generate(chunk, &config).unwrap();
            for b in 0..out.batch {
                let row = &out.logprobs[b * out.steps..(b + 1) * out.steps];
                generated.push((out.sequence(b), row[..out.sequence(b).len()].to_vec()));
            }
        }
        let scores = score_tokens(&model, &seqs, 0.8, 2).unwrap();
        let r = seqs.response_len;
        for (b, (tokens, logp)) in generated.iter().enumerate() {
            assert_eq!(&seqs.response(b), tokens);
            let recomputed: Vec<f64> = to_f64(&scores.logp[b * r..b * r + tokens.len()]);
            assert_close("logp", &recomputed, &to_f64(logp), 1e-4, 1e-5);
        }
        // Scores of 1 minus 0.25 for every response that did not stop.
        let models = RolloutModels {
            policy: &model,
            reference: &model,
            critic: None,
        };
        let mut policy_with_head = model.clone();
        policy_with_head.params.score = Some(rlhf_transformer::ScalarHeads {
            weight: Tensor::zeros([1, 8], Device::Cpu).unwrap(),
            bias: Tensor::zeros([1], Device::Cpu).unwrap(),
        });
        let models = RolloutModels {
            policy: &policy_with_head,
            ..models
        };
        let texts: Vec<crate::PpoPrompt> = prompts
            .iter()
            .map(|t| crate::PpoPrompt {
                text: format!("{t:?}"),
                tokens: t.clone(),
            })
            .collect();
        let picked: Vec<&crate::PpoPrompt> = texts.iter().collect();
        let mut reward = FnReward::new("one", |_: &Episode<'_>| Ok(1.0));
        let decode = |t: &[u32]| Ok(format!("{t:?}"));
        // Stop at the first token sampled for prompt 0: that response stops at once; the
        // others get two tokens to find it.
        let spec = SampleSpec {
            stop_token_id: seqs.response(0)[0],
            response_length: 2,
            ..spec
        };
        let out = collect(
            &models,
            &picked,
            &mut reward,
            &decode,
            &spec,
            Some(0.25),
            &mut Rng::new(4),
        )
        .unwrap();
        for (score, done) in out.scores.iter().zip(&out.sequences.finished) {
            assert_eq!(*score, if *done { 1.0 } else { 0.75 });
        }
        let stopped = out.sequences.finished.iter().filter(|&&f| f).count();
        assert!(
            stopped > 0 && stopped < 3,
            "both kinds of response: {stopped} stopped"
        );
        assert_eq!(out.ref_logp, out.logp, "reference = policy gives KL 0");
    }

    #[test]
    fn reward_layout_by_hand() {
        // B = 2, R = 3, kl_coef 0.1, gamma 1, lam 0.95, k1.
        // Row 0 ends at its last token (no EOS, score already penalised by the caller);
        // row 1 stops at token 1 (EOS), token 2 is padding and carries nothing.
        // logp - ref: row 0 [0.2, -0.1, 0.3], row 1 [0.5, 0.1, (9)].
        // rewards: row 0 [-0.02, 0.01, -0.03 + 1.0] = [-0.02, 0.01, 0.97];
        //          row 1 [-0.05, -0.01 + 2.0, 0] = [-0.05, 1.99, 0].
        let logp = [-1.0, -1.1, -0.7, -0.5, -0.9, 4.0];
        let ref_logp = [-1.2, -1.0, -1.0, -1.0, -1.0, -5.0];
        let values = [0.5, 0.4, 0.3, 1.0, 1.5, 7.0];
        let mask = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0];
        let config = PpoConfig {
            lam: 0.95,
            ..PpoConfig::default()
        };
        let out = compute_advantages(
            &logp,
            &ref_logp,
            &values,
            &[1.0, 2.0],
            &mask,
            3,
            0.1,
            &config,
        )
        .unwrap();
        assert_close(
            "rewards",
            &to_f64(&out.rewards),
            &[-0.02, 0.01, 0.97, -0.05, 1.99, 0.0],
            1e-6,
            1e-7,
        );
        // GAE, gamma 1, gamma lam 0.95, V after the last token = 0:
        // row 0: t2 delta = 0.97 - 0.3 = 0.67, A2 = 0.67;
        //        t1 delta = 0.01 + 0.3 - 0.4 = -0.09, A1 = -0.09 + 0.95 * 0.67 = 0.5465;
        //        t0 delta = -0.02 + 0.4 - 0.5 = -0.12, A0 = -0.12 + 0.95 * 0.5465 = 0.399175.
        // row 1: t1 delta = 1.99 - 1.5 = 0.49, A1 = 0.49;
        //        t0 delta = -0.05 + 1.5 - 1.0 = 0.45, A0 = 0.45 + 0.95 * 0.49 = 0.9155.
        // returns = A + V.
        assert_close(
            "returns",
            &to_f64(&out.returns),
            &[0.899175, 0.9465, 0.97, 1.9155, 1.99, 0.0],
            1e-6,
            1e-7,
        );
        // Whitened over the five kept advantages (mean, unbiased variance as TRL's masked_var).
        let a = [0.399175f64, 0.5465, 0.67, 0.9155, 0.49];
        let mean = a.iter().sum::<f64>() / 5.0;
        let var = a.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 4.0;
        let w: Vec<f64> = a.iter().map(|x| (x - mean) / (var + 1e-8).sqrt()).collect();
        assert_close(
            "advantages",
            &to_f64(&out.advantages),
            &[w[0], w[1], w[2], w[3], w[4], 0.0],
            1e-5,
            1e-6,
        );
        assert_close(
            "kl",
            &to_f64(&out.kl),
            &[0.2, -0.1, 0.3, 0.5, 0.1, 0.0],
            1e-6,
            1e-7,
        );
        // Whitened rewards keep their mean: same kept mean, unit (unbiased) variance.
        let whitened = compute_advantages(
            &logp,
            &ref_logp,
            &values,
            &[1.0, 2.0],
            &mask,
            3,
            0.1,
            &PpoConfig {
                whiten_rewards: true,
                ..config
            },
        )
        .unwrap();
        let kept: Vec<f64> = to_f64(&whitened.rewards[..5]);
        let raw = [-0.02f64, 0.01, 0.97, -0.05, 1.99];
        let raw_mean = raw.iter().sum::<f64>() / 5.0;
        let kept_mean = kept.iter().sum::<f64>() / 5.0;
        assert!(
            (kept_mean - raw_mean).abs() < 1e-5,
            "{kept_mean} vs {raw_mean}"
        );
        assert_eq!(whitened.rewards[5], 0.0);
    }

    #[test]
    fn timing_split_names_each_share() {
        let t = Timing {
            generation: 2.0,
            rollout_forward: 1.0,
            scoring: 0.5,
            training: 4.5,
        };
        assert_eq!(t.generation_share(), 0.25);
        assert_eq!(t.split(), "gen 25% fwd 12% score 6% train 56%");
        assert_eq!(Timing::default().generation_share(), 0.0);
    }
}
