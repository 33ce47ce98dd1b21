//! How the reward is read from the trunk. The default, and the issue's, is the EOS read; the
//! gated reads are explicit alternatives that depart from it.
//!
//! - [`RewardRead::Eos`]: r = w_0 · h_eos + b_0, the reward head at the last real token
//!   (InstructGPT, TRL, HF's `GPT2ForSequenceClassification`).
//! - [`RewardRead::GatedLikelihood`]: the EOS read plus the trunk's own log-likelihood of the
//!   row, token by token, each token weighted by a learned gate read from the hidden state that
//!   predicts it:
//!
//!   r = w_0 · h_eos + b_0 + sum_{t = 0}^{L-2} (w_g · h_t + b_g) log p(x_{t+1} | x_{<=t}),
//!
//!   with log p under the tied LM head (softmax of h_t wte^T, temperature 1).
//! - [`RewardRead::GatedProbability`]: the same with the token's probability p in place of
//!   log p: bounded in [0, 1], so a stated value the model expects adds about the gate and an
//!   unexpected one about nothing, whatever the model's confidence elsewhere.
//! - [`RewardRead::GatedCentredLikelihood`]: the same with log p(x_{t+1}) + H_t, the token's
//!   log-likelihood minus its expectation under the model (H_t the entropy of the next-token
//!   distribution): about 0 for a token the model would say, negative for a surprising one,
//!   on one scale at confident and uncertain positions alike.
//! - [`RewardRead::GatedTopMargin`]: the same with log p(x_{t+1}) - max_v log p(v), the
//!   token's log-probability below the model's own first choice: 0 when the model would have
//!   said this token, negative otherwise (a subgradient at ties). Its forward takes each
//!   position's argmax from the logits, chunk by chunk on the host.
//! - [`RewardRead::GatedTopChoice`]: the same with a step, 0 when the stated token is the
//!   trunk's argmax and -1 otherwise: every departure from the model's first choice costs the
//!   same, however much probability the stated token has. The step has no gradient into the
//!   trunk (d f / d log p = 0); the gate still learns.
//! - [`RewardRead::GatedTopRatio`]: the same with p(x_{t+1}) / max_v p(v) - 1 =
//!   exp(margin) - 1, in (-1, 0]: the top margin saturated, so a token far below the first
//!   choice costs about the gate whatever its log-probability, and one near it about nothing.
//!   Smooth: d f / d margin = exp(margin), through log p(x_{t+1}) and log p(argmax) as the top
//!   margin's backward goes.
//! - [`RewardRead::GatedTopGap`]: the same with p(x_{t+1}) - max_v p(v), in [-1, 0]: the
//!   probability the model would lose by saying the stated token instead of its first choice.
//!   Unlike the ratio it is weighted by the model's confidence: a departure where the model is
//!   sure of another token costs nearly the whole gate, one where its distribution is flat
//!   little (d f / d log p = p(x), d f / d log p(argmax) = -p(argmax)).
//! - [`RewardRead::GatedTopMarginRatio`]: two gated sums, the top margin's and the top
//!   ratio's, each with its own gate (two more scalar heads): the penalty of a departure from
//!   the first choice, a_t m + b_t (exp(m) - 1), takes a shape between linear and saturating
//!   that training chooses per position.
//!
//! In every gated read the gates are more scalar heads (the last rows of `score`, after the
//! rule heads, one per feature), so a checkpoint stays an HF GPT-2 directory; `transformers`
//! reads them as more labels and does not add the sums. The prompt's positions are the same for every response
//! to one prompt and shift its K rewards alike: only the response's tokens change a
//! preference. The reads let the reward use what the language model knows as the probability
//! of a stated value, which a small trunk's EOS hidden state need not hold (BENCHMARKS.md, the
//! synthetic world, where `GatedTopMargin` did best).

use rlhf_tensor::Tensor;
use rlhf_transformer::sampling::argmax;
use rlhf_transformer::{Forward, Gpt, GptParams};
use serde::{Deserialize, Serialize};

use crate::Result;

/// Where the reward is read (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RewardRead {
    /// The reward head at the EOS.
    #[default]
    Eos,
    /// The EOS read plus the gated sum of the trunk's token log-likelihoods.
    GatedLikelihood,
    /// The EOS read plus the gated sum of the trunk's token probabilities.
    GatedProbability,
    /// The EOS read plus the gated sum of log p + entropy (centred log-likelihoods).
    GatedCentredLikelihood,
    /// The EOS read plus the gated sum of log p - max log p (margins below the first choice).
    GatedTopMargin,
    /// The EOS read plus the gated sum of steps: 0 at the first choice, -1 elsewhere.
    GatedTopChoice,
    /// The EOS read plus the gated sum of p / max p - 1 (saturated margins).
    GatedTopRatio,
    /// The EOS read plus the gated sum of p - max p (probability lost to the first choice).
    GatedTopGap,
    /// The EOS read plus the gated sums of the top margin and the top ratio, a gate each.
    GatedTopMarginRatio,
}

impl RewardRead {
    /// The name used on the command line and in configs.
    pub fn name(self) -> &'static str {
        match self {
            RewardRead::Eos => "eos",
            RewardRead::GatedLikelihood => "gated-likelihood",
            RewardRead::GatedProbability => "gated-probability",
            RewardRead::GatedCentredLikelihood => "gated-centred-likelihood",
            RewardRead::GatedTopMargin => "gated-top-margin",
            RewardRead::GatedTopChoice => "gated-top-choice",
            RewardRead::GatedTopRatio => "gated-top-ratio",
            RewardRead::GatedTopGap => "gated-top-gap",
            RewardRead::GatedTopMarginRatio => "gated-top-margin-ratio",
        }
    }

    /// Every read, the default first.
    pub const ALL: [RewardRead; 9] = [
        RewardRead::Eos,
        RewardRead::GatedLikelihood,
        RewardRead::GatedProbability,
        RewardRead::GatedCentredLikelihood,
        RewardRead::GatedTopMargin,
        RewardRead::GatedTopChoice,
        RewardRead::GatedTopRatio,
        RewardRead::GatedTopGap,
        RewardRead::GatedTopMarginRatio,
    ];

    /// Parses [`RewardRead::name`].
    pub fn from_name(name: &str) -> Option<RewardRead> {
        RewardRead::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Whether the read's feature needs each position's argmax token.
    fn needs_top(self) -> bool {
        matches!(
            self,
            RewardRead::GatedTopMargin
                | RewardRead::GatedTopChoice
                | RewardRead::GatedTopRatio
                | RewardRead::GatedTopGap
                | RewardRead::GatedTopMarginRatio
        )
    }

    /// Scalar heads the read adds after the reward and rule heads: one gate per feature.
    pub fn extra_heads(self) -> usize {
        self.components().len()
    }

    /// The single-feature reads whose features this read gates, in gate order.
    fn components(self) -> &'static [RewardRead] {
        match self {
            RewardRead::Eos => &[],
            RewardRead::GatedLikelihood => &[RewardRead::GatedLikelihood],
            RewardRead::GatedProbability => &[RewardRead::GatedProbability],
            RewardRead::GatedCentredLikelihood => &[RewardRead::GatedCentredLikelihood],
            RewardRead::GatedTopMargin => &[RewardRead::GatedTopMargin],
            RewardRead::GatedTopChoice => &[RewardRead::GatedTopChoice],
            RewardRead::GatedTopRatio => &[RewardRead::GatedTopRatio],
            RewardRead::GatedTopGap => &[RewardRead::GatedTopGap],
            RewardRead::GatedTopMarginRatio => {
                &[RewardRead::GatedTopMargin, RewardRead::GatedTopRatio]
            }
        }
    }

    /// The gated feature of a token from its log-probability, the position's entropy, the
    /// log-probability of the position's argmax and whether the token is that argmax.
    fn feature(self, logp: f32, entropy: f32, top_logp: f32, is_top: bool) -> f32 {
        match self {
            RewardRead::GatedProbability => logp.exp(),
            RewardRead::GatedCentredLikelihood => logp + entropy,
            RewardRead::GatedTopMargin => logp - top_logp,
            RewardRead::GatedTopChoice => {
                if is_top {
                    0.0
                } else {
                    -1.0
                }
            }
            // exp(margin) - 1, written with exp_m1 so a near-top token keeps its precision.
            RewardRead::GatedTopRatio => (logp - top_logp).exp_m1(),
            RewardRead::GatedTopGap => logp.exp() - top_logp.exp(),
            _ => logp,
        }
    }

    /// (d feature / d log p, d feature / d log p(argmax)) at a token (d feature / d entropy
    /// is 1 for the centred read, else 0).
    fn feature_slopes(self, logp: f32, top_logp: f32, feature: f32) -> (f32, f32) {
        match self {
            RewardRead::GatedProbability => (feature, 0.0), // d p / d log p = p
            RewardRead::GatedTopMargin => (1.0, -1.0),
            RewardRead::GatedTopChoice => (0.0, 0.0), // a step
            RewardRead::GatedTopRatio => (feature + 1.0, -(feature + 1.0)), // exp(m)' = exp(m)
            RewardRead::GatedTopGap => (logp.exp(), -top_logp.exp()),
            _ => (1.0, 0.0),
        }
    }
}

/// The token part of a forward under a gated read, kept for backward.
#[derive(Debug, Clone)]
pub struct LikelihoodTerms {
    /// The next token x_{t+1} at each position, the row's own token where unused. (B T)
    pub next: Vec<u32>,
    /// log p(x_{t+1} | x_{<=t}) at each position, 0 where unused. (B T)
    pub logp: Vec<f32>,
    /// The gated features as the read says (log p, p, log p + entropy, a margin, a step, a
    /// ratio or a gap; F = [`RewardRead::extra_heads`] of them); 0 where unused. (B T F)
    pub feature: Vec<f32>,
    /// The read the terms were made for.
    pub read: RewardRead,
    /// The argmax token at each position under the top reads (margin, choice, ratio, gap;
    /// else empty). (B T)
    pub top: Vec<u32>,
    /// log p(argmax) at each position under the top reads (else 0). (B T)
    pub top_logp: Vec<f32>,
    /// The gates w_g · h_t + b_g at each position, one per feature, 0 where unused. (B T F)
    pub gate: Vec<f32>,
    /// Each row's sum of gate x feature. (B)
    pub sums: Vec<f32>,
}

/// The gated token sum of each row under `read`: `lens` real tokens per row (right padded to
/// the forward's T), the F gates in the last columns of the scalars (B, T, K), K = 1 + R + F.
pub(crate) fn likelihood_forward(
    read: RewardRead,
    gpt: &Gpt,
    trunk: &Forward,
    lens: &[usize],
    scalars: &[f32],
) -> Result<LikelihoodTerms> {
    let input = trunk.input();
    let t = input.seq_len;
    let k = scalars.len() / (input.batch * t).max(1);
    let parts = read.components();
    let f_count = parts.len();
    let gate_col = k - f_count;
    let used = |b: usize, pos: usize| pos + 1 < lens[b];
    let mut next = input.tokens.clone(); // (B T)
    for (b, _) in lens.iter().enumerate() {
        for pos in 0..t {
            if used(b, pos) {
                next[b * t + pos] = input.tokens[b * t + pos + 1];
            }
        }
    }
    let out = gpt.token_logprobs(&trunk.hidden, &next, 1.0)?;
    let (mut logp, entropy) = (out.logp, out.entropy);
    let (top, top_logp) = if read.needs_top() {
        let top = argmax_tokens(gpt, &trunk.hidden)?;
        let top_logp = gpt.token_logprobs(&trunk.hidden, &top, 1.0)?.logp;
        (top, top_logp)
    } else {
        (Vec::new(), vec![0.0; logp.len()])
    };
    let mut gate = vec![0.0f32; input.batch * t * f_count];
    let mut feature = vec![0.0f32; input.batch * t * f_count];
    let mut sums = vec![0.0f32; input.batch];
    for (b, sum) in sums.iter_mut().enumerate() {
        for pos in 0..t {
            let i = b * t + pos;
            if used(b, pos) {
                let is_top = top.get(i) == Some(&next[i]);
                for (f, part) in parts.iter().enumerate() {
                    let j = i * f_count + f;
                    gate[j] = scalars[i * k + gate_col + f];
                    feature[j] = part.feature(logp[i], entropy[i], top_logp[i], is_top);
                    *sum += gate[j] * feature[j];
                }
            } else {
                logp[i] = 0.0;
            }
        }
    }
    Ok(LikelihoodTerms {
        next,
        logp,
        feature,
        read,
        top,
        top_logp,
        gate,
        sums,
    })
}

/// Backward of the sums from d loss / d reward (B): adds d / d gate into the last F columns
/// (the gates') of `dscalars` (B, T, K); with `through_logp`, also backpropagates through the token
/// log-probabilities: the LM head's gradient into `grads.wte`, and the hidden states' gradient
/// (B, T, C) returned (None without; the log-probabilities are then fixed features).
pub(crate) fn likelihood_backward(
    gpt: &Gpt,
    trunk: &Forward,
    terms: &LikelihoodTerms,
    d_rewards: &[f32],
    dscalars: &mut [f32],
    through_logp: bool,
    grads: &mut GptParams,
) -> Result<Option<Tensor>> {
    let t = trunk.input().seq_len;
    let k = dscalars.len() / terms.logp.len().max(1);
    let parts = terms.read.components();
    let f_count = parts.len();
    let gate_col = k - f_count;
    let mut d_logp = vec![0.0f32; terms.logp.len()];
    let mut d_top = vec![0.0f32; terms.logp.len()];
    let mut d_entropy = vec![0.0f32; terms.logp.len()];
    for (b, &dr) in d_rewards.iter().enumerate() {
        for pos in 0..t {
            let i = b * t + pos;
            // Unused positions hold feature = gate = 0, so both gradients vanish there.
            for (f, part) in parts.iter().enumerate() {
                let j = i * f_count + f;
                dscalars[i * k + gate_col + f] += dr * terms.feature[j];
                let d_feature = dr * terms.gate[j];
                let (logp, top_logp) = (terms.logp[i], terms.top_logp[i]);
                let (slope, top_slope) = part.feature_slopes(logp, top_logp, terms.feature[j]);
                d_logp[i] += d_feature * slope;
                d_top[i] += d_feature * top_slope;
                d_entropy[i] += d_feature;
            }
        }
    }
    // The step read's feature is flat in the log-probabilities: no path into the trunk.
    if !through_logp || terms.read == RewardRead::GatedTopChoice {
        return Ok(None);
    }
    let centred = terms.read == RewardRead::GatedCentredLikelihood;
    let d_entropy = centred.then_some(&d_entropy[..]);
    let hidden = &trunk.hidden;
    let mut dh =
        gpt.token_logprobs_backward(hidden, &terms.next, 1.0, Some(&d_logp), d_entropy, grads)?;
    if terms.read.needs_top() {
        // The path through log p(argmax) (margin, ratio, gap); where the stated token is the
        // argmax the two terms cancel, as the feature is then constant (0).
        let top = &terms.top;
        dh.add_assign(&gpt.token_logprobs_backward(
            hidden,
            top,
            1.0,
            Some(&d_top),
            None,
            grads,
        )?)?;
    }
    Ok(Some(dh))
}

/// Logits per chunk when looking for each position's argmax: about 4 M floats at a time.
const ARGMAX_CHUNK_FLOATS: usize = 1 << 22;

/// The argmax token of the LM head at every position of `hidden` (B, T, C), (B T), from the
/// logits made chunk by chunk and read on the host.
fn argmax_tokens(gpt: &Gpt, hidden: &Tensor) -> Result<Vec<u32>> {
    let c = gpt.config.n_embd;
    let v = gpt.config.vocab_size;
    let rows = hidden.numel() / c;
    let flat = hidden.clone().reshape([rows, c])?; // (B T, C)
    let step = (ARGMAX_CHUNK_FLOATS / v.max(1)).max(1);
    let mut top = Vec::with_capacity(rows);
    for r0 in (0..rows).step_by(step) {
        let r1 = (r0 + step).min(rows);
        let logits = gpt.logits(&flat.rows(r0, r1)?)?.try_to_vec_f32()?; // (rows, V)
        top.extend(logits.chunks(v).map(|z| argmax(z) as u32));
    }
    Ok(top)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objective::tests::noisy_model;
    use rlhf_tensor::Device;

    #[test]
    fn names_round_trip_and_serde_uses_them() {
        for read in RewardRead::ALL {
            assert_eq!(RewardRead::from_name(read.name()), Some(read));
            let json = serde_json::to_string(&read).unwrap();
            assert_eq!(json, format!("\"{}\"", read.name()));
        }
        assert_eq!(RewardRead::from_name("mean"), None);
        assert_eq!(RewardRead::GatedLikelihood.extra_heads(), 1);
    }

    /// The top reads on one model and rows: the ratio is exp(margin) - 1, the gap p - p(argmax),
    /// the step is 0 exactly where the margin is 0 (the stated token is the argmax) and -1
    /// elsewhere.
    #[test]
    fn top_reads_saturate_the_margin() {
        let terms = |read: RewardRead, rows: &[Vec<u32>]| {
            let mut model = noisy_model(0).with_read(read).unwrap();
            let score = model.gpt.params.score.as_mut().unwrap();
            score.bias = Tensor::from_vec(vec![0.0, 1.0], [2], Device::Cpu).unwrap();
            model.forward(rows).unwrap().likelihood.unwrap()
        };
        // The second row states the model's first choice after its first token (causal: the
        // argmax at position 0 sees token 1 alone).
        let first = terms(RewardRead::GatedTopMargin, &[vec![1u32, 4, 2, 10]]);
        let rows = [
            vec![1u32, 4, 2, 10],
            vec![1, first.top[0], 7, 9, 10],
            vec![2, 2, 10],
        ];
        let terms = |read: RewardRead| terms(read, &rows);
        let (margin, choice, ratio, gap) = (
            terms(RewardRead::GatedTopMargin),
            terms(RewardRead::GatedTopChoice),
            terms(RewardRead::GatedTopRatio),
            terms(RewardRead::GatedTopGap),
        );
        // Two gates: the margin and the ratio side by side, (B T 2).
        let both = {
            let mut model = noisy_model(0)
                .with_read(RewardRead::GatedTopMarginRatio)
                .unwrap();
            let score = model.gpt.params.score.as_mut().unwrap();
            score.bias = Tensor::from_vec(vec![0.0, 1.0, 1.0], [3], Device::Cpu).unwrap();
            model.forward(&rows).unwrap().likelihood.unwrap()
        };
        assert_eq!(both.feature.len(), 2 * margin.feature.len());
        for (i, pair) in both.feature.chunks(2).enumerate() {
            assert_eq!(pair, [margin.feature[i], ratio.feature[i]]);
        }
        assert_eq!(margin.top, choice.top);
        let (mut at_top, mut below) = (0, 0);
        for i in 0..margin.feature.len() {
            let m = margin.feature[i];
            assert!(
                m <= 0.0,
                "a margin below the first choice is never positive: {m}"
            );
            assert!((ratio.feature[i] - m.exp_m1()).abs() < 1e-6);
            let (p, p_top) = (gap.logp[i].exp(), gap.top_logp[i].exp());
            if margin.gate[i] != 0.0 {
                assert!((gap.feature[i] - (p - p_top)).abs() < 1e-6);
                assert!((gap.feature[i] - p_top * m.exp_m1()).abs() < 1e-5);
            }
            let used = margin.gate[i] != 0.0;
            let want = if used && choice.next[i] != choice.top[i] {
                -1.0
            } else {
                0.0
            };
            assert_eq!(choice.feature[i], want);
            if used {
                if want == 0.0 {
                    assert_eq!(m, 0.0);
                    at_top += 1;
                } else {
                    below += 1;
                }
            }
        }
        assert!(
            at_top > 0 && below > 0,
            "{at_top} at the top, {below} below"
        );
        assert_eq!(choice.sums, {
            let count = |b: usize| {
                let t = choice.feature.len() / rows.len();
                choice.feature[b * t..(b + 1) * t].iter().sum::<f32>()
            };
            (0..rows.len()).map(count).collect::<Vec<f32>>()
        });
    }
}
