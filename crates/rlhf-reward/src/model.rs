//! The reward model: a GPT-2 trunk with scalar heads read at the last real token of
//! prompt + response (the EOS). Head 0 is the reward; heads 1..=R are one logit per rule of
//! the rule-violation auxiliary (Sparrow), trained beside it and ignored when scoring. Under
//! an explicit gated read ([`crate::read`]) one more head per feature, a gate, adds the trunk's
//! gated token features (log-likelihoods, probabilities, margins) to the EOS reward.
//!
//! The heads are the transformer's `score` layer (K = 1 + R (+ F gates) rows), so a checkpoint is an HF
//! GPT-2 directory (DESIGN.md decision 6) that `transformers` loads as
//! `GPT2ForSequenceClassification` with `num_labels` = K and `pad_token_id` set, which reads the
//! same last non-pad token. Beside it, `reward_config.json` holds the rule ids, the token
//! convention and the normalisation folded into head 0. Every file is written atomically.

use std::fs;
use std::path::Path;

use rlhf_tensor::{Device, Rng, Tensor};
use rlhf_transformer::files::write_atomic;
use rlhf_transformer::{Forward, Gpt, GptParams, ModelInput, Padding, ScalarHeads};
use serde::{Deserialize, Serialize};

use crate::read::{LikelihoodTerms, RewardRead, likelihood_backward, likelihood_forward};
use crate::{Result, RewardError};

/// The reward model's own settings file, beside `config.json` and `model.safetensors`.
pub const REWARD_CONFIG_FILE: &str = "reward_config.json";

/// How a (prompt, response) pair becomes the token row the model reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequenceConfig {
    /// Appended after the response unless it already ends with it; the reward is read here.
    pub eos_token_id: u32,
    /// Filler on the right of shorter rows (distinct from the EOS).
    pub pad_token_id: u32,
    /// Longest row; longer ones lose the prompt's oldest tokens first, then the response's
    /// last tokens, and always keep the EOS.
    pub max_len: usize,
}

/// An affine map r' = gain r + bias folded into the reward head after training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    /// Multiplies the raw reward.
    pub gain: f64,
    /// Added after the gain.
    pub bias: f64,
}

impl Normalisation {
    /// The identity map.
    pub const IDENTITY: Normalisation = Normalisation {
        gain: 1.0,
        bias: 0.0,
    };

    /// `self` applied after `first`: r -> gain (first.gain r + first.bias) + bias.
    pub fn after(self, first: Normalisation) -> Normalisation {
        Normalisation {
            gain: self.gain * first.gain,
            bias: self.gain * first.bias + self.bias,
        }
    }
}

/// `reward_config.json`: what a reward checkpoint adds to the GPT-2 directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardHeadConfig {
    /// Rule ids of heads 1..=R, in order (empty without the rule auxiliary).
    pub rules: Vec<String>,
    /// The token convention.
    pub sequence: SequenceConfig,
    /// The normalisation already folded into head 0 (identity before [`crate::normalise`]).
    pub normalisation: Normalisation,
    /// Where the reward is read (the EOS unless chosen otherwise; absent in older files).
    #[serde(default)]
    pub read: RewardRead,
}

/// A GPT-2 trunk with a reward head and R rule heads.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardModel {
    /// The trunk and its `score` heads (1 + R rows).
    pub gpt: Gpt,
    /// Rules, token convention and normalisation.
    pub head: RewardHeadConfig,
}

/// The result of [`RewardModel::forward`]: rewards and rule logits at each row's last token,
/// and what [`RewardModel::backward`] needs.
#[derive(Debug, Clone)]
pub struct RewardForward {
    /// The trunk's forward (activations kept).
    pub trunk: Forward,
    /// Flat index b * T + t of each row's last real token. (N)
    pub last: Vec<usize>,
    /// Reward per row. (N)
    pub rewards: Vec<f32>,
    /// Rule logits per row, row-major. (N, R)
    pub rule_logits: Vec<f32>,
    /// The gated token terms under a gated read (None under the EOS read).
    pub likelihood: Option<LikelihoodTerms>,
}

impl RewardModel {
    /// A reward model on an SFT model's trunk: any scalar heads it had are replaced by 1 + R
    /// fresh ones with weights from N(0, 1/sqrt(n_embd + 1)) and zero bias (the scale of
    /// "N implementation details of RLHF"), R = `rules.len()`.
    pub fn from_sft(
        mut gpt: Gpt,
        rules: Vec<String>,
        sequence: SequenceConfig,
        rng: &mut Rng,
    ) -> Result<RewardModel> {
        let c = gpt.config.n_embd;
        let k = 1 + rules.len();
        let device = gpt.device();
        let std = 1.0 / ((c + 1) as f32).sqrt();
        gpt.params.score = Some(ScalarHeads {
            weight: Tensor::randn([k, c], std, rng, device)?,
            bias: Tensor::zeros([k], device)?,
        });
        let head = RewardHeadConfig {
            rules,
            sequence,
            normalisation: Normalisation::IDENTITY,
            read: RewardRead::Eos,
        };
        RewardModel::from_parts(gpt, head)
    }

    /// The model with the reward read `read`: switching from the EOS read to a gated one
    /// appends its gate heads with zero weights and bias (so the rewards start as the EOS
    /// read's and training learns how much each token's feature counts); switching back (or
    /// to another read) drops them first.
    pub fn with_read(mut self, read: RewardRead) -> Result<RewardModel> {
        if read == self.head.read {
            return Ok(self);
        }
        let c = self.gpt.config.n_embd;
        let keep = 1 + self.n_rules();
        let score = self
            .gpt
            .params
            .score
            .as_mut()
            .ok_or_else(|| RewardError::Input("the trunk has no scalar heads".into()))?;
        let (device, dtype) = (score.weight.device(), score.weight.dtype());
        let mut weight = score.weight.try_to_vec_f32()?; // (K, C), small: on the host
        let mut bias = score.bias.try_to_vec_f32()?; // (K)
        weight.truncate(keep * c);
        bias.truncate(keep);
        let k = keep + read.extra_heads();
        weight.resize(k * c, 0.0);
        bias.resize(k, 0.0);
        score.weight = Tensor::from_vec(weight, [k, c], device)?.to_dtype(dtype)?;
        score.bias = Tensor::from_vec(bias, [k], device)?.to_dtype(dtype)?;
        self.head.read = read;
        Ok(self)
    }

    /// [`RewardModel::from_sft`] on the checkpoint in `dir` (an HF GPT-2 directory).
    pub fn from_sft_dir(
        dir: &Path,
        rules: Vec<String>,
        sequence: SequenceConfig,
        rng: &mut Rng,
        device: Device,
    ) -> Result<RewardModel> {
        RewardModel::from_sft(Gpt::load(dir, device)?, rules, sequence, rng)
    }

    /// Joins a trunk with heads and a head config, checking that they agree.
    pub fn from_parts(mut gpt: Gpt, head: RewardHeadConfig) -> Result<RewardModel> {
        let k = gpt.params.n_scalar_heads();
        let want = 1 + head.rules.len() + head.read.extra_heads();
        if k != want {
            return Err(RewardError::config(
                "rules",
                format!(
                    "the model has {k} scalar heads; a reward head, {} rule heads and the {} read need {want}",
                    head.rules.len(),
                    head.read.name()
                ),
            ));
        }
        let s = &head.sequence;
        let vocab = gpt.config.vocab_size;
        for (field, id) in [
            ("eos_token_id", s.eos_token_id),
            ("pad_token_id", s.pad_token_id),
        ] {
            if id as usize >= vocab {
                return Err(RewardError::config(
                    field,
                    format!("{id} is outside the model's vocabulary ({vocab})"),
                ));
            }
        }
        if s.eos_token_id == s.pad_token_id {
            return Err(RewardError::config(
                "pad_token_id",
                "must differ from eos_token_id, or the EOS cannot be told from padding",
            ));
        }
        if s.max_len < 2 || s.max_len > gpt.config.n_positions {
            return Err(RewardError::config(
                "max_len",
                format!(
                    "{} is not in [2, n_positions = {}]",
                    s.max_len, gpt.config.n_positions
                ),
            ));
        }
        // HF's GPT2ForSequenceClassification finds the last non-pad token with these.
        gpt.config.eos_token_id = Some(s.eos_token_id);
        gpt.config.pad_token_id = Some(s.pad_token_id);
        Ok(RewardModel { gpt, head })
    }

    /// The number of rule heads R.
    pub fn n_rules(&self) -> usize {
        self.head.rules.len()
    }

    /// Scalar heads K: the reward, R rules and the read's own (the likelihood gate).
    pub fn n_heads(&self) -> usize {
        1 + self.n_rules() + self.head.read.extra_heads()
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.gpt.device()
    }

    /// The row for `prompt` and `response` tokens: prompt + response + EOS (unless the response
    /// already ends with it), cut to `max_len` as [`SequenceConfig::max_len`] says. Returns the
    /// row and whether anything was cut.
    pub fn sequence(&self, prompt: &[u32], response: &[u32]) -> (Vec<u32>, bool) {
        build_sequence(&self.head.sequence, prompt, response)
    }

    /// Runs the model on rows (unpadded, each non-empty), keeping activations for backward.
    pub fn forward<S: AsRef<[u32]>>(&self, rows: &[S]) -> Result<RewardForward> {
        if let Some(i) = rows.iter().position(|r| r.as_ref().is_empty()) {
            return Err(RewardError::Input(format!(
                "row {i} is empty; a reward needs at least one token"
            )));
        }
        let pad = self.head.sequence.pad_token_id;
        let input = ModelInput::padded(rows, pad, Padding::Right)?;
        let trunk = self.gpt.forward(&input)?;
        let t = input.seq_len;
        let (k, r) = (self.n_heads(), self.n_rules());
        let last: Vec<usize> = rows
            .iter()
            .enumerate()
            .map(|(b, r)| b * t + r.as_ref().len() - 1)
            .collect();
        let scalars = trunk
            .scalars
            .as_ref()
            .ok_or_else(|| RewardError::Input("the trunk has no scalar heads".into()))?
            .try_to_vec_f32()?; // (B, T, K): small, read on the host
        let mut rewards: Vec<f32> = last.iter().map(|&i| scalars[i * k]).collect();
        let rule_logits = last
            .iter()
            .flat_map(|&i| scalars[i * k + 1..i * k + 1 + r].iter().copied())
            .collect();
        let likelihood = match self.head.read {
            RewardRead::Eos => None,
            read => {
                let lens: Vec<usize> = rows.iter().map(|r| r.as_ref().len()).collect();
                let terms = likelihood_forward(read, &self.gpt, &trunk, &lens, &scalars)?;
                for (reward, sum) in rewards.iter_mut().zip(&terms.sums) {
                    *reward += sum;
                }
                Some(terms)
            }
        };
        Ok(RewardForward {
            trunk,
            last,
            rewards,
            rule_logits,
            likelihood,
        })
    }

    /// Backpropagates d loss / d rewards (N) and, when given, d loss / d rule logits (N, R)
    /// through the heads and the trunk, adding into `grads`.
    pub fn backward(
        &self,
        forward: &RewardForward,
        d_rewards: &[f32],
        d_rule_logits: Option<&[f32]>,
        grads: &mut GptParams,
    ) -> Result<()> {
        self.backward_with_hidden(forward, d_rewards, d_rule_logits, None, true, grads)
    }

    /// [`RewardModel::backward`] with a further gradient of the final hidden states (B, T, C)
    /// from another loss on the same forward (the auxiliary LM loss), added before the trunk's
    /// backward; under a gated read, `through_likelihood` false treats the token
    /// log-probabilities as fixed features (only the gate learns from the rewards' gradient).
    pub fn backward_with_hidden(
        &self,
        forward: &RewardForward,
        d_rewards: &[f32],
        d_rule_logits: Option<&[f32]>,
        dhidden: Option<Tensor>,
        through_likelihood: bool,
        grads: &mut GptParams,
    ) -> Result<()> {
        let (n, r) = (forward.last.len(), self.n_rules());
        crate::check::len("RewardModel::backward", "d_rewards", d_rewards.len(), n)?;
        if let Some(d) = d_rule_logits {
            crate::check::len("RewardModel::backward", "d_rule_logits", d.len(), n * r)?;
        }
        let input = forward.trunk.input();
        let k = self.n_heads();
        let mut ds = vec![0.0f32; input.batch * input.seq_len * k]; // (B, T, K)
        for (row, &i) in forward.last.iter().enumerate() {
            ds[i * k] = d_rewards[row];
            if let Some(d) = d_rule_logits {
                ds[i * k + 1..i * k + 1 + r].copy_from_slice(&d[row * r..(row + 1) * r]);
            }
        }
        let mut dhidden = dhidden;
        if let Some(terms) = &forward.likelihood {
            let (trunk, through) = (&forward.trunk, through_likelihood);
            let dh =
                likelihood_backward(&self.gpt, trunk, terms, d_rewards, &mut ds, through, grads)?;
            match (&mut dhidden, dh) {
                (Some(d), Some(dh)) => d.add_assign(&dh)?,
                (None, dh) => dhidden = dh,
                (Some(_), None) => {}
            }
        }
        let ds = Tensor::from_vec(ds, [input.batch, input.seq_len, k], self.device())?;
        self.gpt
            .backward(&forward.trunk, dhidden.as_ref(), Some(&ds), grads)?;
        Ok(())
    }

    /// Rewards of `rows` in micro-batches of `batch_size` rows (no gradients kept).
    pub fn rewards<S: AsRef<[u32]>>(&self, rows: &[S], batch_size: usize) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(batch_size.max(1)) {
            out.extend(self.forward(chunk)?.rewards);
        }
        Ok(out)
    }

    /// Folds r' = gain r + bias into the reward head (head 0) and records it.
    pub fn apply_normalisation(&mut self, map: Normalisation) -> Result<()> {
        if !(map.gain.is_finite() && map.gain > 0.0 && map.bias.is_finite()) {
            return Err(RewardError::config(
                "normalisation",
                format!(
                    "gain {} and bias {}: expected a finite gain > 0 and a finite bias",
                    map.gain, map.bias
                ),
            ));
        }
        let c = self.gpt.config.n_embd;
        let score = self
            .gpt
            .params
            .score
            .as_mut()
            .ok_or_else(|| RewardError::Input("the trunk has no scalar heads".into()))?;
        // Rescaled on the host (K x C values) and written back on the weights' device and dtype.
        // The likelihood gates (the last heads, when the read has them) are a part of the
        // reward and take the gain too.
        let mut weight = score.weight.try_to_vec_f32()?;
        let mut bias = score.bias.try_to_vec_f32()?;
        let k = bias.len();
        let gates = k - self.head.read.extra_heads()..k;
        for head in std::iter::once(0).chain(gates) {
            for w in &mut weight[head * c..(head + 1) * c] {
                *w = (f64::from(*w) * map.gain) as f32;
            }
            let shift = if head == 0 { map.bias } else { 0.0 };
            bias[head] = (f64::from(bias[head]) * map.gain + shift) as f32;
        }
        let back = |values: Vec<f32>, like: &Tensor| -> Result<Tensor> {
            Ok(Tensor::from_vec(values, like.dims(), like.device())?.to_dtype(like.dtype())?)
        };
        score.weight = back(weight, &score.weight)?;
        score.bias = back(bias, &score.bias)?;
        self.head.normalisation = map.after(self.head.normalisation);
        Ok(())
    }

    /// Saves the model as an HF GPT-2 directory plus `reward_config.json`, atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.gpt.save(dir)?;
        let path = dir.join(REWARD_CONFIG_FILE);
        let json = serde_json::to_vec_pretty(&self.head).map_err(|error| RewardError::Json {
            path: path.clone(),
            error,
        })?;
        write_atomic(&path, &json)?;
        Ok(())
    }

    /// Loads a directory written by [`RewardModel::save`].
    pub fn load(dir: &Path, device: Device) -> Result<RewardModel> {
        let path = dir.join(REWARD_CONFIG_FILE);
        let text = fs::read_to_string(&path).map_err(|e| RewardError::io(&path, e))?;
        let head: RewardHeadConfig =
            serde_json::from_str(&text).map_err(|error| RewardError::Json {
                path: path.clone(),
                error,
            })?;
        RewardModel::from_parts(Gpt::load(dir, device)?, head).map_err(|e| match e {
            RewardError::Config { field, message } => RewardError::Config {
                field,
                message: format!("{}: {message}", dir.display()),
            },
            other => other,
        })
    }
}

/// See [`RewardModel::sequence`].
pub(crate) fn build_sequence(
    config: &SequenceConfig,
    prompt: &[u32],
    response: &[u32],
) -> (Vec<u32>, bool) {
    let eos = config.eos_token_id;
    let body = match response.last() {
        Some(&last) if last == eos => &response[..response.len() - 1],
        _ => response,
    };
    // Room for prompt + body + EOS.
    let room = config.max_len.saturating_sub(1);
    let keep_body = body.len().min(room);
    let keep_prompt = prompt.len().min(room - keep_body);
    let cut = keep_body < body.len() || keep_prompt < prompt.len();
    let mut row = Vec::with_capacity(keep_prompt + keep_body + 1);
    row.extend_from_slice(&prompt[prompt.len() - keep_prompt..]);
    row.extend_from_slice(&body[..keep_body]);
    row.push(eos);
    (row, cut)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rlhf_transformer::GptConfig;

    pub(crate) fn tiny(rules: usize) -> RewardModel {
        let gpt = Gpt::new(
            GptConfig::new(12, 16, 8, 1, 2),
            0,
            &mut Rng::new(1),
            Device::Cpu,
        )
        .unwrap();
        let rules = (0..rules).map(|i| format!("rule-{i}")).collect();
        let sequence = SequenceConfig {
            eos_token_id: 10,
            pad_token_id: 11,
            max_len: 8,
        };
        RewardModel::from_sft(gpt, rules, sequence, &mut Rng::new(2)).unwrap()
    }

    #[test]
    fn sequences_keep_the_eos_and_cut_the_prompt_first() {
        let m = tiny(0);
        assert_eq!(m.sequence(&[1, 2], &[3]), (vec![1, 2, 3, 10], false));
        assert_eq!(m.sequence(&[1, 2], &[3, 10]), (vec![1, 2, 3, 10], false));
        // max_len 8: room 7 for prompt + body; body 4 keeps, prompt keeps its last 3.
        let (row, cut) = m.sequence(&[1, 2, 3, 4, 5, 6], &[7, 8, 9, 9]);
        assert_eq!((row, cut), (vec![4, 5, 6, 7, 8, 9, 9, 10], true));
        // A body longer than the room loses its end; the prompt is gone.
        let (row, _) = m.sequence(&[1], &[2, 3, 4, 5, 6, 7, 8, 9, 9]);
        assert_eq!(row, vec![2, 3, 4, 5, 6, 7, 8, 10]);
    }

    #[test]
    fn reward_is_read_at_the_last_token_and_padding_does_not_matter() {
        let m = tiny(2);
        let alone = m.forward(&[vec![1u32, 2, 10]]).unwrap();
        let padded = m
            .forward(&[vec![1u32, 2, 10], vec![3, 4, 5, 6, 7, 10]])
            .unwrap();
        assert!((alone.rewards[0] - padded.rewards[0]).abs() < 1e-5);
        assert_eq!(padded.rule_logits.len(), 4);
        assert_eq!(padded.last, vec![2, 6 + 5]);
        // Heads are N(0, 1/sqrt(9)) with zero bias.
        let score = m.gpt.params.score.as_ref().unwrap();
        assert_eq!(score.weight.dims(), &[3, 8]);
        assert!(score.bias.to_vec_f32().iter().all(|&b| b == 0.0));
        assert!(m.forward(&[Vec::<u32>::new()]).is_err());
    }

    #[test]
    fn normalisation_is_folded_into_head_zero_and_round_trips() {
        let mut m = tiny(1);
        let rows = [vec![1u32, 2, 10], vec![4, 10]];
        let before = m.rewards(&rows, 1).unwrap();
        let logits = m.forward(&rows).unwrap().rule_logits;
        let map = Normalisation {
            gain: 2.0,
            bias: -0.5,
        };
        m.apply_normalisation(map).unwrap();
        let after = m.rewards(&rows, 2).unwrap();
        for (a, b) in after.iter().zip(&before) {
            assert!((a - (2.0 * b - 0.5)).abs() < 1e-5);
        }
        assert_eq!(m.forward(&rows).unwrap().rule_logits, logits);
        let dir = std::env::temp_dir().join(format!("rlhf-reward-model-{}", std::process::id()));
        m.save(&dir).unwrap();
        let back = RewardModel::load(&dir, Device::Cpu).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.head.normalisation, map);
        fs::remove_file(dir.join(REWARD_CONFIG_FILE)).unwrap();
        let err = RewardModel::load(&dir, Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains(REWARD_CONFIG_FILE), "{err}");
        assert!(
            m.apply_normalisation(Normalisation {
                gain: 0.0,
                bias: 0.0
            })
            .is_err()
        );
    }

    /// Gate bias 1, gate weights 0: the reward is the EOS read plus the row's total
    /// log-likelihood under the LM head, whatever the padding; the gain applies to both.
    #[test]
    fn likelihood_read_adds_the_log_likelihood_and_round_trips() {
        let m = tiny(1);
        let rows = [vec![1u32, 2, 10], vec![4, 5, 6, 7, 10]];
        let eos = m.rewards(&rows, 2).unwrap();
        let mut g = m.clone().with_read(RewardRead::GatedLikelihood).unwrap();
        assert_eq!((g.n_heads(), g.n_rules()), (3, 1));
        for (a, b) in g.rewards(&rows, 2).unwrap().iter().zip(&eos) {
            assert!((a - b).abs() < 1e-6, "a zero gate reads as the EOS");
        }
        let score = g.gpt.params.score.as_mut().unwrap();
        score.bias = Tensor::from_vec(vec![0.0, 0.0, 1.0], [3], Device::Cpu).unwrap();
        let c = g.gpt.config.n_embd;
        let log_likelihood = |row: &[u32]| -> f32 {
            let input = ModelInput::dense(row.to_vec(), 1, row.len()).unwrap();
            let hidden = g.gpt.forward(&input).unwrap().hidden;
            let logits = g.gpt.logits(&hidden).unwrap().to_vec_f32(); // (1, T, V)
            let v = logits.len() / row.len();
            (0..row.len() - 1)
                .map(|t| {
                    let z = &logits[t * v..(t + 1) * v];
                    let max = z.iter().copied().fold(f32::MIN, f32::max);
                    let norm = z.iter().map(|x| (x - max).exp()).sum::<f32>().ln() + max;
                    z[row[t + 1] as usize] - norm
                })
                .sum()
        };
        let read = g.rewards(&rows, 2).unwrap();
        let alone = g.rewards(&rows[..1], 1).unwrap();
        for (i, row) in rows.iter().enumerate() {
            let want = eos[i] + log_likelihood(row);
            assert!((read[i] - want).abs() < 1e-4, "{} vs {want}", read[i]);
        }
        assert!((alone[0] - read[0]).abs() < 1e-5);
        assert_eq!(c, 8);
        g.apply_normalisation(Normalisation {
            gain: 2.0,
            bias: -0.5,
        })
        .unwrap();
        for (a, b) in g.rewards(&rows, 2).unwrap().iter().zip(&read) {
            assert!((a - (2.0 * b - 0.5)).abs() < 1e-4);
        }
        let dir = std::env::temp_dir().join(format!("rlhf-reward-read-{}", std::process::id()));
        g.save(&dir).unwrap();
        assert_eq!(RewardModel::load(&dir, Device::Cpu).unwrap(), g);
        let back = g.with_read(RewardRead::Eos).unwrap();
        assert_eq!(back.n_heads(), 2);
        let _ = fs::remove_dir_all(&dir);
    }
}
