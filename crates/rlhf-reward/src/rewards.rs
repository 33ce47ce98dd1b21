//! [`RewardFunction`]s for PPO:
//! - [`ModelReward`]: a learned [`RewardModel`], batched (rows sorted by length so padding
//!   stays small), on whatever device the model is on; it reads the episodes' tokens, or
//!   tokenises their text in the training convention when it holds a tokenizer.
//! - [`RuleBasedReward`]: checkable rules that each subtract a penalty when broken (the
//!   rule-based reward model idea of GPT-4's system card); [`WorldRules`] checks the synthetic
//!   world's rules, [`FnRule`] any closure.
//! - [`CriteriaReward`]: the world's ground-truth criteria (helpful, honest, harmless, correct)
//!   combined with user weights.
//! - [`WeightedReward`]: a weighted sum of any reward functions.

use std::path::Path;
use std::sync::Arc;

use rlhf_data::tokenizer::{AnyTokenizer, BpeTokenizer, Tokenizer};
use rlhf_data::world::{Criteria, World};
use rlhf_tensor::Device;

use crate::dataset::response_text;
use crate::model::RewardModel;
use crate::{Episode, Result, RewardError, RewardFunction};

/// A learned reward model as a [`RewardFunction`].
#[derive(Debug, Clone)]
pub struct ModelReward {
    model: RewardModel,
    tokenizer: Option<AnyTokenizer>,
    batch_size: usize,
}

impl ModelReward {
    /// Scores with `model`, `batch_size` episodes per forward; episodes must carry tokens.
    pub fn new(model: RewardModel, batch_size: usize) -> ModelReward {
        ModelReward {
            model,
            tokenizer: None,
            batch_size: batch_size.max(1),
        }
    }

    /// Also scores text-only episodes by tokenising them with `tokenizer`.
    pub fn with_tokenizer(mut self, tokenizer: AnyTokenizer) -> ModelReward {
        self.tokenizer = Some(tokenizer);
        self
    }

    /// Loads a reward checkpoint, with its `tokenizer.json` when the directory has one.
    pub fn load(dir: &Path, device: Device, batch_size: usize) -> Result<ModelReward> {
        let model = RewardModel::load(dir, device)?;
        let mut reward = ModelReward::new(model, batch_size);
        let path = dir.join("tokenizer.json");
        if path.exists() {
            let tok = BpeTokenizer::load(&path)
                .map_err(|e| RewardError::Input(format!("{}: {e}", path.display())))?;
            reward = reward.with_tokenizer(AnyTokenizer::Bpe(tok));
        }
        Ok(reward)
    }

    /// The model.
    pub fn model(&self) -> &RewardModel {
        &self.model
    }

    /// The row the model reads for one episode.
    fn row(&self, index: usize, e: &Episode<'_>) -> Result<Vec<u32>> {
        if !e.prompt_tokens.is_empty() {
            return Ok(self.model.sequence(e.prompt_tokens, e.response_tokens).0);
        }
        let tok = self
            .tokenizer
            .as_ref()
            .ok_or_else(|| RewardError::Scoring {
                scorer: self.name().into(),
                message: format!(
                    "episode {index} has no prompt tokens and this reward model holds no tokenizer"
                ),
            })?;
        let prompt = tok.encode(e.prompt);
        let response = tok.encode(&response_text(e.response));
        Ok(self.model.sequence(&prompt, &response).0)
    }
}

impl RewardFunction for ModelReward {
    fn name(&self) -> &str {
        "reward-model"
    }

    fn score(&mut self, episodes: &[Episode<'_>]) -> Result<Vec<f32>> {
        let rows: Vec<Vec<u32>> = episodes
            .iter()
            .enumerate()
            .map(|(i, e)| self.row(i, e))
            .collect::<Result<_>>()?;
        let vocab = self.model.gpt.config.vocab_size;
        if let Some((i, t)) = rows
            .iter()
            .enumerate()
            .find_map(|(i, r)| r.iter().find(|&&t| t as usize >= vocab).map(|&t| (i, t)))
        {
            return Err(RewardError::Scoring {
                scorer: self.name().into(),
                message: format!("episode {i}: token {t} is outside the vocabulary ({vocab})"),
            });
        }
        // Similar lengths together keep padding small; scores go back in episode order.
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|&i| rows[i].len());
        let mut scores = vec![0.0f32; rows.len()];
        for chunk in order.chunks(self.batch_size) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| rows[i].as_slice()).collect();
            let rewards = self.model.forward(&batch)?.rewards;
            for (&i, r) in chunk.iter().zip(rewards) {
                scores[i] = r;
            }
        }
        Ok(scores)
    }
}

/// Rules a [`RuleBasedReward`] checks: ids, and which of them an episode breaks.
pub trait RuleCheck: Send {
    /// The ids of the rules checked, in the order of [`RuleCheck::broken`].
    fn rule_ids(&self) -> Vec<String>;

    /// Whether the episode breaks each rule.
    fn broken(&mut self, episode: &Episode<'_>) -> Result<Vec<bool>>;
}

/// One rule as a closure returning whether the episode breaks it.
pub struct FnRule<F> {
    id: String,
    check: F,
}

impl<F: FnMut(&Episode<'_>) -> bool + Send> FnRule<F> {
    /// The rule `id`, broken where `check` says so.
    pub fn new(id: impl Into<String>, check: F) -> FnRule<F> {
        FnRule {
            id: id.into(),
            check,
        }
    }
}

impl<F: FnMut(&Episode<'_>) -> bool + Send> RuleCheck for FnRule<F> {
    fn rule_ids(&self) -> Vec<String> {
        vec![self.id.clone()]
    }

    fn broken(&mut self, episode: &Episode<'_>) -> Result<Vec<bool>> {
        Ok(vec![(self.check)(episode)])
    }
}

/// The synthetic world's rules, checked by its ground-truth analysis of each response.
#[derive(Debug, Clone)]
pub struct WorldRules {
    world: Arc<World>,
}

impl WorldRules {
    /// The rules of `world`.
    pub fn new(world: Arc<World>) -> WorldRules {
        WorldRules { world }
    }
}

impl RuleCheck for WorldRules {
    fn rule_ids(&self) -> Vec<String> {
        self.world
            .rules
            .rules
            .iter()
            .map(|r| r.id.clone())
            .collect()
    }

    fn broken(&mut self, e: &Episode<'_>) -> Result<Vec<bool>> {
        let judgement =
            self.world
                .judge(e.prompt, e.response)
                .map_err(|err| RewardError::Scoring {
                    scorer: "world-rules".into(),
                    message: err.to_string(),
                })?;
        Ok(self
            .world
            .rules
            .rules
            .iter()
            .map(|r| judgement.broken_rules.contains(&r.id))
            .collect())
    }
}

/// `base` minus the penalty of every rule an episode breaks.
pub struct RuleBasedReward {
    name: String,
    base: f32,
    checks: Vec<(Box<dyn RuleCheck>, Vec<f32>)>,
}

impl RuleBasedReward {
    /// An empty rule set scoring `base`.
    pub fn new(name: impl Into<String>, base: f32) -> RuleBasedReward {
        RuleBasedReward {
            name: name.into(),
            base,
            checks: Vec::new(),
        }
    }

    /// Adds rules; `penalty(id)` is what breaking rule `id` costs (>= 0, finite).
    pub fn with(
        mut self,
        check: impl RuleCheck + 'static,
        penalty: impl Fn(&str) -> f32,
    ) -> Result<RuleBasedReward> {
        let penalties: Vec<f32> = check.rule_ids().iter().map(|id| penalty(id)).collect();
        if let Some((id, p)) = check
            .rule_ids()
            .into_iter()
            .zip(&penalties)
            .find(|(_, p)| !(p.is_finite() && **p >= 0.0))
        {
            return Err(RewardError::config(
                "penalty",
                format!("rule `{id}`: {p}, expected a finite penalty >= 0"),
            ));
        }
        self.checks.push((Box::new(check), penalties));
        Ok(self)
    }

    /// The world's rules, each costing `penalty`, from a base of 0.
    pub fn world(world: Arc<World>, penalty: f32) -> Result<RuleBasedReward> {
        RuleBasedReward::new("world-rules", 0.0).with(WorldRules::new(world), |_| penalty)
    }
}

impl RewardFunction for RuleBasedReward {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&mut self, episodes: &[Episode<'_>]) -> Result<Vec<f32>> {
        let mut scores = vec![self.base; episodes.len()];
        for (check, penalties) in &mut self.checks {
            for (i, e) in episodes.iter().enumerate() {
                let broken = check.broken(e).map_err(|err| RewardError::Scoring {
                    scorer: self.name.clone(),
                    message: format!("episode {i}: {err}"),
                })?;
                scores[i] -= broken
                    .iter()
                    .zip(penalties.iter())
                    .filter(|(b, _)| **b)
                    .map(|(_, p)| p)
                    .sum::<f32>();
            }
        }
        Ok(scores)
    }
}

/// The world's ground-truth total under `criteria` (a weighted mean of helpful, honest,
/// harmless, correct scores in [0, 1]).
#[derive(Debug, Clone)]
pub struct CriteriaReward {
    world: Arc<World>,
    criteria: Criteria,
}

impl CriteriaReward {
    /// Scores with `criteria` (checked: at least one positive weight).
    pub fn new(world: Arc<World>, criteria: Criteria) -> Result<CriteriaReward> {
        criteria
            .validate()
            .map_err(|message| RewardError::config("criteria", message))?;
        Ok(CriteriaReward { world, criteria })
    }

    /// Scores with the world's own criteria: the ground-truth total of [`World::score`].
    pub fn ground_truth(world: Arc<World>) -> CriteriaReward {
        let criteria = world.config.criteria.clone();
        CriteriaReward { world, criteria }
    }
}

impl RewardFunction for CriteriaReward {
    fn name(&self) -> &str {
        "world-criteria"
    }

    fn score(&mut self, episodes: &[Episode<'_>]) -> Result<Vec<f32>> {
        episodes
            .iter()
            .enumerate()
            .map(|(i, e)| {
                self.world
                    .judge_with(&self.criteria, e.prompt, e.response)
                    .map(|j| j.scores.total as f32)
                    .map_err(|err| RewardError::Scoring {
                        scorer: "world-criteria".into(),
                        message: format!("episode {i}: {err}"),
                    })
            })
            .collect()
    }
}

/// A weighted sum of reward functions.
pub struct WeightedReward {
    name: String,
    parts: Vec<(f32, Box<dyn RewardFunction>)>,
}

impl WeightedReward {
    /// No parts yet (scores 0).
    pub fn new(name: impl Into<String>) -> WeightedReward {
        WeightedReward {
            name: name.into(),
            parts: Vec::new(),
        }
    }

    /// Adds `weight` times `reward` (weight finite).
    pub fn with(mut self, weight: f32, reward: impl RewardFunction + 'static) -> Result<Self> {
        if !weight.is_finite() {
            return Err(RewardError::config(
                "weight",
                format!("`{}`: {weight}, expected a finite weight", reward.name()),
            ));
        }
        self.parts.push((weight, Box::new(reward)));
        Ok(self)
    }
}

impl RewardFunction for WeightedReward {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&mut self, episodes: &[Episode<'_>]) -> Result<Vec<f32>> {
        let mut total = vec![0.0f32; episodes.len()];
        for (weight, part) in &mut self.parts {
            let scores = part.score(episodes)?;
            crate::check::len(
                "WeightedReward::score",
                "part scores",
                scores.len(),
                total.len(),
            )?;
            for (t, s) in total.iter_mut().zip(scores) {
                *t += *weight * s;
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::tiny;
    use rlhf_data::world::{Criterion, WorldConfig};

    fn episode<'a>(prompt: &'a str, response: &'a str, p: &'a [u32], r: &'a [u32]) -> Episode<'a> {
        Episode {
            prompt,
            response,
            prompt_tokens: p,
            response_tokens: r,
        }
    }

    #[test]
    fn model_reward_matches_the_model_in_any_batching() {
        let model = tiny(1);
        let rows = [vec![1u32, 2, 10], vec![3, 4, 5, 6, 10], vec![7, 10]];
        let direct = model.rewards(&rows, 8).unwrap();
        let eps = [
            episode("a", "b", &[1, 2], &[]),
            episode("a", "b", &[3, 4], &[5, 6, 10]),
            episode("a", "b", &[7], &[]),
        ];
        for batch in [1, 2, 3] {
            let mut reward = ModelReward::new(model.clone(), batch);
            let scores = reward.score(&eps).unwrap();
            for (s, d) in scores.iter().zip(&direct) {
                assert!((s - d).abs() < 1e-5, "{scores:?} vs {direct:?}");
            }
        }
        let mut reward = ModelReward::new(model, 2);
        let err = reward.score(&[episode("a", "b", &[], &[])]).unwrap_err();
        assert!(err.to_string().contains("episode 0"), "{err}");
        let err = reward.score(&[episode("a", "b", &[99], &[])]).unwrap_err();
        assert!(err.to_string().contains("token 99"), "{err}");
    }

    #[test]
    fn world_rules_criteria_and_weights() {
        let world = Arc::new(World::new(WorldConfig::small()).unwrap());
        let demo = &world.demonstrations[0];
        let prompt = demo.prompt.render();
        let good = episode(&prompt, &demo.response, &[], &[]);
        let rude = episode(&prompt, "Go away, you idiot.", &[], &[]);
        let mut rules = RuleBasedReward::world(world.clone(), 1.0).unwrap();
        let scores = rules.score(&[good, rude]).unwrap();
        assert_eq!(scores[0], 0.0);
        assert!(scores[1] <= -1.0, "{scores:?}");
        let criteria = Criteria::from_pairs(&[(Criterion::Harmless, 1.0)]);
        let mut harmless = CriteriaReward::new(world.clone(), criteria).unwrap();
        let h = harmless.score(&[good, rude]).unwrap();
        assert!(h[0] > h[1], "{h:?}");
        let long = FnRule::new("too-long", |e: &Episode<'_>| e.response.len() > 20);
        let mut combined = WeightedReward::new("mix")
            .with(
                2.0,
                CriteriaReward::new(world.clone(), Criteria::default()).unwrap(),
            )
            .unwrap()
            .with(
                1.0,
                RuleBasedReward::new("len", 0.0)
                    .with(long, |_| 0.5)
                    .unwrap(),
            )
            .unwrap();
        let truth = world.score(&prompt, &demo.response).unwrap().total as f32;
        let penalty = if demo.response.len() > 20 { 0.5 } else { 0.0 };
        assert_eq!(
            combined.score(&[good]).unwrap(),
            vec![2.0 * truth - penalty]
        );
        let err = CriteriaReward::new(world.clone(), Criteria::default())
            .unwrap()
            .score(&[episode(
                "What is the capital of Nowhere?",
                "Blorp.",
                &[],
                &[],
            )])
            .unwrap_err();
        assert!(err.to_string().contains("episode 0"), "{err}");
        assert!(
            RuleBasedReward::new("x", 0.0)
                .with(WorldRules::new(world), |_| f32::NAN)
                .is_err()
        );
    }
}
