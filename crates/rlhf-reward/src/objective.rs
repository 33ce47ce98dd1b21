//! The training objective: a preference loss (Bradley–Terry, with margins, or InstructGPT
//! K-wise), the optional centering term, and the rule-violation auxiliary with its weight,
//! evaluated on a [`RewardBatch`]'s rewards and rule logits; and the step that runs it through
//! the model: forward, loss, backward through the heads and the trunk (data-parallel shards
//! on the CPU for small models, [`objective_step_sharded`]).
//!
//! - `bt`: mean over every pair of the batch of softplus(-(r_b - r_w)).
//! - `margin`: the same with the pair's margin, softplus(-(r_b - r_w - m)).
//! - `kwise`: the mean over comparisons of (sum of its pairs' losses / its pair count), so a
//!   prompt weighs the same whatever its K (InstructGPT); pairwise records are K = 2.
//! - centering: c mean over pairs of (r_b + r_w)², added when c > 0.
//! - rules: w mean over labelled (response, rule) entries of the logits' cross-entropy.
//! - LM (only in [`objective_step_with_trunk`], with gradients): lambda times the mean next-token
//!   cross-entropy of the best-ranked rows ([`crate::trunk`]).

use rlhf_tensor::ops::cross_entropy::IGNORE_INDEX;
use rlhf_transformer::{GptParams, ShardGrads, run_shards, shard_count, shard_rows};
use serde::{Deserialize, Serialize};

use crate::batch::RewardBatch;
use crate::model::RewardModel;
use crate::trunk::{TrunkTraining, best_rows, lm_targets};
use crate::{
    Result, RewardError, bradley_terry_loss, centering_loss, kwise_loss_batch, rule_violation_loss,
};

/// Which preference loss trains the reward head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PreferenceLoss {
    /// Bradley–Terry on every pair.
    Bt,
    /// Bradley–Terry with the data's per-pair margins (Llama 2).
    Margin,
    /// InstructGPT's K-wise loss: each comparison's pairs averaged, then comparisons averaged.
    #[default]
    Kwise,
}

impl PreferenceLoss {
    /// The name used on the command line and in configs.
    pub fn name(self) -> &'static str {
        match self {
            PreferenceLoss::Bt => "bt",
            PreferenceLoss::Margin => "margin",
            PreferenceLoss::Kwise => "kwise",
        }
    }
}

/// The objective's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectiveConfig {
    /// The preference loss.
    pub loss: PreferenceLoss,
    /// Coefficient c of the centering term (0: none; TRL suggests 0.01).
    pub centering: f64,
    /// Weight w of the rule-violation auxiliary (used when the model has rule heads).
    pub rule_weight: f64,
}

impl Default for ObjectiveConfig {
    fn default() -> Self {
        ObjectiveConfig {
            loss: PreferenceLoss::Kwise,
            centering: 0.0,
            rule_weight: 0.5,
        }
    }
}

/// The objective's value, its parts and its gradients.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectiveValue {
    /// preference + centering + rule loss.
    pub loss: f32,
    /// The preference loss (0 when the batch has no pair).
    pub preference: f32,
    /// The centering term.
    pub centering: f32,
    /// The weighted rule loss (0 without labels).
    pub rules: f32,
    /// The weighted auxiliary LM loss (0 when off, or when no gradients were asked for).
    pub lm: f32,
    /// Pairs in the batch.
    pub pairs: usize,
    /// d loss / d reward. (N)
    pub d_rewards: Vec<f32>,
    /// d loss / d rule logit, row-major (N, R); empty when the rule term is off.
    pub d_rule_logits: Vec<f32>,
}

impl ObjectiveConfig {
    /// Checks the coefficients.
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("centering", self.centering),
            ("rule_weight", self.rule_weight),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(RewardError::config(
                    field,
                    format!("{v}: expected a finite number >= 0"),
                ));
            }
        }
        Ok(())
    }

    /// The objective on rewards (N) and rule logits (N, R) of `batch`'s rows.
    pub fn evaluate(
        &self,
        batch: &RewardBatch<'_>,
        rewards: &[f32],
        rule_logits: &[f32],
    ) -> Result<ObjectiveValue> {
        let n = batch.rows.len();
        crate::check::len("objective", "rewards", rewards.len(), n)?;
        crate::check::len(
            "objective",
            "rule_logits",
            rule_logits.len(),
            n * batch.n_rules,
        )?;
        let pairs = batch.pairs();
        let mut d_rewards = vec![0.0f32; n];
        let (mut preference, mut centering) = (0.0f32, 0.0f32);
        if !pairs.is_empty() {
            let chosen: Vec<f32> = pairs.iter().map(|p| rewards[p.0]).collect();
            let rejected: Vec<f32> = pairs.iter().map(|p| rewards[p.1]).collect();
            match self.loss {
                PreferenceLoss::Bt | PreferenceLoss::Margin => {
                    let margins: Vec<f32> = pairs.iter().map(|p| p.2).collect();
                    let margins = (self.loss == PreferenceLoss::Margin).then_some(&margins[..]);
                    let out = bradley_terry_loss(&chosen, &rejected, margins)?;
                    preference = out.loss;
                    scatter(&mut d_rewards, &pairs, &out.grad_chosen, &out.grad_rejected);
                }
                PreferenceLoss::Kwise => {
                    preference = self.kwise(batch, rewards, &mut d_rewards)?;
                }
            }
            if self.centering > 0.0 {
                let out = centering_loss(&chosen, &rejected, self.centering)?;
                centering = out.loss;
                scatter(&mut d_rewards, &pairs, &out.grad_chosen, &out.grad_rejected);
            }
        }
        let (mut rules, mut d_rule_logits) = (0.0f32, Vec::new());
        if self.rule_weight > 0.0 && batch.has_rule_labels() {
            let out = rule_violation_loss(
                rule_logits,
                &batch.rule_labels,
                Some(&batch.rule_mask),
                self.rule_weight,
            )?;
            rules = out.loss;
            d_rule_logits = out.grad_logits;
        }
        Ok(ObjectiveValue {
            loss: preference + centering + rules,
            preference,
            centering,
            rules,
            lm: 0.0,
            pairs: pairs.len(),
            d_rewards,
            d_rule_logits,
        })
    }

    /// The K-wise loss over the comparisons that hold pairs, gradients added into `d_rewards`.
    fn kwise(
        &self,
        batch: &RewardBatch<'_>,
        rewards: &[f32],
        d_rewards: &mut [f32],
    ) -> Result<f32> {
        let (mut flat, mut ranks, mut sizes, mut rows) = (vec![], vec![], vec![], vec![]);
        for (c, &o) in batch.comparisons.iter().zip(&batch.offsets) {
            if c.pairs.is_empty() {
                continue;
            }
            sizes.push(c.k());
            for i in 0..c.k() {
                flat.push(rewards[o + i]);
                ranks.push(c.ranks[i]);
                rows.push(o + i);
            }
        }
        let out = kwise_loss_batch(&flat, &ranks, &sizes)?;
        for (&row, &g) in rows.iter().zip(&out.grad) {
            d_rewards[row] += g;
        }
        Ok(out.loss)
    }
}

fn scatter(d: &mut [f32], pairs: &[(usize, usize, f32)], d_chosen: &[f32], d_rejected: &[f32]) {
    for ((p, &gc), &gr) in pairs.iter().zip(d_chosen).zip(d_rejected) {
        d[p.0] += gc;
        d[p.1] += gr;
    }
}

/// Runs the objective through the model: forward on `batch`'s rows, the objective, and, with
/// `grads`, the backward through heads and trunk with every gradient times `grad_scale` (a
/// micro-batch's share of an accumulated step). Returns the objective and the rewards.
pub fn objective_step(
    model: &RewardModel,
    config: &ObjectiveConfig,
    batch: &RewardBatch<'_>,
    grads: Option<&mut GptParams>,
    grad_scale: f32,
) -> Result<(ObjectiveValue, Vec<f32>)> {
    match grads {
        Some(grads) => objective_step_sharded(
            model,
            config,
            batch,
            grads,
            &mut ShardGrads::default(),
            grad_scale,
        ),
        None => {
            check_rules(model, batch)?;
            let forward = model.forward(&batch.rows)?;
            let value = config.evaluate(batch, &forward.rewards, &forward.rule_logits)?;
            Ok((value, forward.rewards))
        }
    }
}

/// [`objective_step`] with gradients, data-parallel on the CPU (`rlhf_transformer::shard`):
/// the rows cut into [`shard_count`] shards, each forwarded (padded to its own longest row) and
/// backpropagated on its own thread, the objective evaluated on all rewards in between, and the
/// shards' gradients summed into `grads`; `scratch` keeps the extra shards' buffers between
/// steps.
pub fn objective_step_sharded(
    model: &RewardModel,
    config: &ObjectiveConfig,
    batch: &RewardBatch<'_>,
    grads: &mut GptParams,
    scratch: &mut ShardGrads,
    grad_scale: f32,
) -> Result<(ObjectiveValue, Vec<f32>)> {
    let trunk = TrunkTraining::default();
    objective_step_with_trunk(model, config, &trunk, batch, grads, scratch, grad_scale)
}

/// [`objective_step_sharded`] with the trunk options ([`crate::trunk`]): the auxiliary LM loss
/// with weight `trunk.lm_weight` (0: none), the next-token cross-entropy of the best-ranked
/// rows, its mean over all their tokens in the batch, backpropagated through the LM head on
/// the same forward; and, with `trunk.detach_likelihood`, a gated read's log-probabilities
/// kept as fixed features.
pub fn objective_step_with_trunk(
    model: &RewardModel,
    config: &ObjectiveConfig,
    trunk: &TrunkTraining,
    batch: &RewardBatch<'_>,
    grads: &mut GptParams,
    scratch: &mut ShardGrads,
    grad_scale: f32,
) -> Result<(ObjectiveValue, Vec<f32>)> {
    check_rules(model, batch)?;
    trunk.validate()?;
    let lm_weight = trunk.lm_weight;
    let through_likelihood = !trunk.detach_likelihood;
    let n = batch.rows.len();
    let ranges = shard_rows(n, shard_count(model.gpt.config.n_embd, model.device(), n));
    let forwards = run_shards(vec![(); ranges.len()], |s, ()| {
        model.forward(&batch.rows[ranges[s].clone()])
    })
    .into_iter()
    .collect::<Result<Vec<_>>>()?;
    let rewards: Vec<f32> = forwards.iter().flat_map(|f| f.rewards.clone()).collect();
    let rule_logits: Vec<f32> = forwards
        .iter()
        .flat_map(|f| f.rule_logits.clone())
        .collect();
    let mut value = config.evaluate(batch, &rewards, &rule_logits)?;
    // The LM targets of each shard (B T), and the token count of the whole batch.
    let lm_rows = best_rows(batch);
    let targets: Vec<Vec<i32>> = if lm_weight > 0.0 {
        forwards
            .iter()
            .zip(&ranges)
            .map(|(f, rows)| lm_targets(f.trunk.input(), &lm_rows[rows.clone()]))
            .collect::<Result<_>>()?
    } else {
        vec![Vec::new(); ranges.len()]
    };
    let count = |t: &[i32]| t.iter().filter(|&&x| x != IGNORE_INDEX).count();
    let lm_tokens: usize = targets.iter().map(|t| count(t)).sum();
    let scale = |v: &[f32]| v.iter().map(|&g| g * grad_scale).collect::<Vec<f32>>();
    let d_rewards = scale(&value.d_rewards);
    let d_rules = (!value.d_rule_logits.is_empty()).then(|| scale(&value.d_rule_logits));
    let r = model.n_rules();
    let states: Vec<_> = scratch
        .split(grads, ranges.len())?
        .into_iter()
        .zip(&forwards)
        .collect();
    let lm_sums = run_shards(states, |s, (g, forward)| {
        let rows = ranges[s].clone();
        let d_rules = d_rules.as_ref().map(|d| &d[rows.start * r..rows.end * r]);
        let tokens = count(&targets[s]);
        let (dhidden, lm_sum) = if tokens > 0 {
            // The shard's mean times its share of the batch's tokens: the batch's mean.
            let share = (lm_weight * tokens as f64 / lm_tokens as f64) as f32;
            let out = model.gpt.lm_loss_scaled(
                &forward.trunk.hidden,
                &targets[s],
                Some(&mut *g),
                share * grad_scale,
            )?;
            (out.dhidden, f64::from(out.loss) * tokens as f64)
        } else {
            (None, 0.0)
        };
        let d_rewards = &d_rewards[rows];
        model.backward_with_hidden(forward, d_rewards, d_rules, dhidden, through_likelihood, g)?;
        Ok(lm_sum)
    })
    .into_iter()
    .collect::<Result<Vec<f64>>>()?;
    scratch.reduce(grads, ranges.len())?;
    if lm_tokens > 0 {
        value.lm = (lm_weight * lm_sums.iter().sum::<f64>() / lm_tokens as f64) as f32;
        value.loss += value.lm;
    }
    Ok((value, rewards))
}

/// The batch's rule columns must match the model's rule heads.
fn check_rules(model: &RewardModel, batch: &RewardBatch<'_>) -> Result<()> {
    if batch.n_rules != model.n_rules() {
        return Err(RewardError::Input(format!(
            "the batch has {} rule columns, the model {} rule heads",
            batch.n_rules,
            model.n_rules()
        )));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::batch::Comparison;
    use crate::batch::tests::ranked;
    use crate::model::{RewardModel, SequenceConfig};
    use crate::read::RewardRead;
    use rlhf_tensor::testing::{assert_close, numerical_gradient};
    use rlhf_tensor::{Device, Rng, Tensor};
    use rlhf_transformer::{Gpt, GptConfig};

    #[test]
    fn losses_agree_with_the_kernels_and_gradients_with_finite_differences() {
        let (mut a, b) = (ranked(2, 0, "s"), ranked(3, 0, "s"));
        a.pairs[0].margin = 0.5;
        let batch = RewardBatch::new(&[&a, &b], 0).unwrap();
        let rewards = [0.3f32, -0.2, 1.0, 0.1, 0.4];
        for loss in [
            PreferenceLoss::Bt,
            PreferenceLoss::Margin,
            PreferenceLoss::Kwise,
        ] {
            let config = ObjectiveConfig {
                loss,
                centering: 0.05,
                rule_weight: 0.0,
            };
            let out = config.evaluate(&batch, &rewards, &[]).unwrap();
            let f = |r: &[f64]| {
                let r: Vec<f32> = r.iter().map(|&x| x as f32).collect();
                f64::from(config.evaluate(&batch, &r, &[]).unwrap().loss)
            };
            let x: Vec<f64> = rewards.iter().map(|&r| f64::from(r)).collect();
            let numeric = numerical_gradient(f, &x, 1e-3);
            let analytic: Vec<f64> = out.d_rewards.iter().map(|&g| f64::from(g)).collect();
            assert_close(loss.name(), &analytic, &numeric, 2e-3, 1e-4);
            assert_eq!(out.pairs, 4);
        }
        // K-wise = mean over the two prompts; BT = mean over the four pairs.
        let kw = ObjectiveConfig {
            centering: 0.0,
            ..ObjectiveConfig::default()
        };
        let bt = ObjectiveConfig {
            loss: PreferenceLoss::Bt,
            ..kw.clone()
        };
        let sp = |d: f32| (1.0 + (-d).exp()).ln();
        let p = [sp(0.5), sp(0.9), sp(0.6), sp(-0.3)];
        let kwise = kw.evaluate(&batch, &rewards, &[]).unwrap().loss;
        assert!((kwise - (p[0] + (p[1] + p[2] + p[3]) / 3.0) / 2.0).abs() < 1e-6);
        let pairwise = bt.evaluate(&batch, &rewards, &[]).unwrap().loss;
        assert!((pairwise - p.iter().sum::<f32>() / 4.0).abs() < 1e-6);
    }

    /// A tiny reward model with large random weights so no gradient is near zero.
    pub(crate) fn noisy_model(rules: usize) -> RewardModel {
        let mut rng = Rng::new(5);
        let mut gpt = Gpt::new(GptConfig::new(12, 8, 8, 2, 2), 0, &mut rng, Device::Cpu).unwrap();
        for (name, t) in gpt.params.named_mut() {
            let noise = Tensor::randn(t.dims(), 0.3, &mut rng, Device::Cpu).unwrap();
            if name.contains("ln_") {
                t.add_assign(&noise).unwrap();
            } else {
                *t = noise;
            }
        }
        let sequence = SequenceConfig {
            eos_token_id: 10,
            pad_token_id: 11,
            max_len: 8,
        };
        let rules = (0..rules).map(|i| format!("r{i}")).collect();
        let mut model = RewardModel::from_sft(gpt, rules, sequence, &mut rng).unwrap();
        let score = model.gpt.params.score.as_mut().unwrap();
        score.bias = Tensor::randn(score.bias.dims(), 0.3, &mut rng, Device::Cpu).unwrap();
        model
    }

    /// The sharded step (two shards of rows, a comparison cut between them) gives the same
    /// bits on one thread and on two.
    #[test]
    fn sharded_step_is_identical_on_one_and_two_threads() {
        let model = noisy_model(1);
        let mut a = ranked(3, 1, "s");
        a.rows = vec![vec![1, 4, 2, 10], vec![1, 4, 10], vec![3, 5, 7, 9, 10]];
        let mut b = ranked(2, 1, "s");
        b.rows = vec![vec![2, 2, 10], vec![6, 1, 8, 10]];
        let batch = RewardBatch::new(&[&a, &b], 1).unwrap();
        let config = ObjectiveConfig::default();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut grads = model.gpt.params.zeros_like().unwrap();
                let mut scratch = ShardGrads::default();
                let (value, rewards) =
                    objective_step_sharded(&model, &config, &batch, &mut grads, &mut scratch, 0.5)
                        .unwrap();
                let flat: Vec<f32> = grads
                    .tensors()
                    .iter()
                    .flat_map(|t| t.to_vec_f32())
                    .collect();
                (value.loss, rewards, flat)
            })
        };
        assert_eq!(run(1), run(2));
    }

    /// Checks every parameter's gradient of the whole objective (with the LM term at
    /// `lm_weight`) against central finite differences, on a few entries of each tensor.
    fn assert_objective_gradient(model: &RewardModel, lm_weight: f64) {
        let trunk = TrunkTraining {
            lm_weight,
            ..TrunkTraining::default()
        };
        let mut a = ranked(3, 2, "s");
        a.rows = vec![vec![1, 4, 2, 10], vec![1, 4, 10], vec![3, 5, 7, 9, 10]];
        a.rule_mask[1] = 0.0;
        let mut b = ranked(2, 0, "s");
        b.rows = vec![vec![2, 2, 10], vec![6, 1, 8, 10]];
        let batch = RewardBatch::new(&[&a, &b], 2).unwrap();
        let config = ObjectiveConfig {
            loss: PreferenceLoss::Kwise,
            centering: 0.1,
            rule_weight: 0.7,
        };
        let step = |m: &RewardModel, grads: &mut GptParams| {
            let mut scratch = ShardGrads::default();
            objective_step_with_trunk(m, &config, &trunk, &batch, grads, &mut scratch, 1.0)
                .unwrap()
                .0
        };
        let mut grads = model.gpt.params.zeros_like().unwrap();
        let value = step(model, &mut grads);
        assert!(value.rules > 0.0 && value.centering > 0.0 && value.pairs == 4);
        assert_eq!(value.lm > 0.0, lm_weight > 0.0);
        let loss = |m: &RewardModel| {
            let mut scratch_grads = m.gpt.params.zeros_like().unwrap();
            f64::from(step(m, &mut scratch_grads).loss)
        };
        let h = 5e-3f32;
        let names: Vec<String> = model
            .gpt
            .params
            .named()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        for (k, name) in names.iter().enumerate() {
            let numel = model.gpt.params.named()[k].1.numel();
            let probes: Vec<usize> = (0..numel).step_by((numel / 4).max(1)).take(5).collect();
            let analytic: Vec<f64> = probes
                .iter()
                .map(|&i| f64::from(grads.named()[k].1.to_vec_f32()[i]))
                .collect();
            let numeric: Vec<f64> = probes
                .iter()
                .map(|&i| {
                    let mut probe = model.clone();
                    let mut at = |delta: f32| {
                        probe.gpt.params.named_mut()[k]
                            .1
                            .as_f32_slice_mut()
                            .unwrap()[i] += delta;
                        loss(&probe)
                    };
                    let up = at(h);
                    let down = at(-2.0 * h);
                    (up - down) / (2.0 * f64::from(h))
                })
                .collect();
            assert_close(name, &analytic, &numeric, 3e-2, 2e-3);
        }
    }

    #[test]
    fn whole_objective_gradient_through_the_model_matches_finite_differences() {
        assert_objective_gradient(&noisy_model(2), 0.0);
    }

    #[test]
    fn lm_term_gradient_matches_finite_differences() {
        assert_objective_gradient(&noisy_model(2), 0.7);
    }

    /// The gated reads (gate weights made non-zero so every path carries gradient), alone and
    /// with the LM term.
    #[test]
    fn gated_read_gradients_match_finite_differences() {
        // Every read but the EOS read, so a read added to `RewardRead::ALL` is checked too.
        for read in RewardRead::ALL
            .into_iter()
            .filter(|&r| r != RewardRead::Eos)
        {
            let mut model = noisy_model(2).with_read(read).unwrap();
            let score = model.gpt.params.score.as_mut().unwrap();
            let mut rng = Rng::new(9);
            score.weight = Tensor::randn(score.weight.dims(), 0.3, &mut rng, Device::Cpu).unwrap();
            score.bias = Tensor::randn(score.bias.dims(), 0.3, &mut rng, Device::Cpu).unwrap();
            assert_objective_gradient(&model, 0.0);
            assert_objective_gradient(&model, 0.4);
        }
    }

    /// Detached likelihoods: the heads' gradients are those of the full backward, the trunk's
    /// differ by the path through the log-probabilities (and under the EOS read nothing does).
    #[test]
    fn detached_likelihood_keeps_the_head_gradient_and_cuts_the_trunk_path() {
        let batch_of = |a: &mut Comparison| {
            a.rows = vec![vec![1, 4, 2, 10], vec![1, 4, 10], vec![3, 5, 7, 9, 10]];
        };
        let mut a = ranked(3, 0, "s");
        batch_of(&mut a);
        let batch = RewardBatch::new(&[&a], 0).unwrap();
        let config = ObjectiveConfig::default();
        for read in [RewardRead::Eos, RewardRead::GatedLikelihood] {
            let mut model = noisy_model(0).with_read(read).unwrap();
            let score = model.gpt.params.score.as_mut().unwrap();
            let mut rng = Rng::new(4);
            score.weight = Tensor::randn(score.weight.dims(), 0.3, &mut rng, Device::Cpu).unwrap();
            let grads_with = |detach_likelihood: bool| {
                let trunk = TrunkTraining {
                    detach_likelihood,
                    ..TrunkTraining::default()
                };
                let mut grads = model.gpt.params.zeros_like().unwrap();
                let mut scratch = ShardGrads::default();
                objective_step_with_trunk(
                    &model,
                    &config,
                    &trunk,
                    &batch,
                    &mut grads,
                    &mut scratch,
                    1.0,
                )
                .unwrap();
                grads
            };
            let (full, detached) = (grads_with(false), grads_with(true));
            assert_eq!(full.score, detached.score);
            assert_eq!(full.wte == detached.wte, read == RewardRead::Eos);
        }
    }
}
