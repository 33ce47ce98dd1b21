//! The reward-model stage of the pipeline in one call: records in memory and an SFT model in,
//! a trained, evaluated and normalised [`RewardModel`] out, ready to hand to PPO as a
//! [`ModelReward`].
//!
//! ```no_run
//! use rlhf_data::records::Feedback;
//! use rlhf_data::tokenizer::{BpeTokenizer, Tokenizer};
//! use rlhf_reward::{RewardFunction, RewardStageConfig, train_reward_model};
//! use rlhf_transformer::Gpt;
//! # fn records() -> Vec<Feedback> { Vec::new() }
//! let sft = Gpt::load("runs/sft".as_ref(), rlhf_tensor::Device::Cpu)?;
//! let tokenizer = BpeTokenizer::load("runs/sft/tokenizer.json").unwrap();
//! let screened: Vec<Feedback> = records();
//! let references = vec![(rlhf_data::records::Prompt::user("What is 2 plus 2?"), "4.".to_string())];
//! let trained = train_reward_model(
//!     sft,
//!     &tokenizer,
//!     &[("screened", &screened[..])],
//!     &references,
//!     &RewardStageConfig::default(),
//!     Some("runs/reward".as_ref()),
//!     &mut |_| {},
//! )?;
//! println!("validation accuracy {:?}", trained.validation.as_ref().map(|v| v.overall.accuracy));
//! let mut reward = trained.model_reward(32);
//! # let _ = reward.name();
//! # Ok::<(), rlhf_reward::RewardError>(())
//! ```

use std::path::Path;

use rlhf_data::records::{Feedback, Prompt};
use rlhf_data::tokenizer::Tokenizer;
use rlhf_tensor::Rng;
use rlhf_transformer::Gpt;
use serde::{Deserialize, Serialize};

use crate::dataset::{BuildStats, PreferenceBuilder, RuleColumns};
use crate::eval::EvalReport;
use crate::model::{RewardModel, SequenceConfig};
use crate::normalise::{NormaliseConfig, NormaliseReport, normalise, reference_rows};
use crate::read::RewardRead;
use crate::rewards::ModelReward;
use crate::train::{RewardEvent, RewardStepLog, RewardTrainConfig, RewardTrainer};
use crate::trunk::TrunkTraining;
use crate::{Result, RewardError};

/// Settings of the whole reward-model stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardStageConfig {
    /// Training (loss, optimizer, schedule, epochs, batch size, seed).
    pub train: RewardTrainConfig,
    /// Train rule heads on the rule-violation records (the Sparrow auxiliary).
    pub rules: bool,
    /// Longest row in tokens (None: the model's n_positions).
    pub max_len: Option<usize>,
    /// Share of prompts held out for validation (split by prompt hash).
    pub validation_fraction: f64,
    /// Normalise on the reference responses afterwards (None: leave the head as trained).
    pub normalise: Option<NormaliseConfig>,
    /// Where the reward is read ([`crate::read`]; the EOS by default).
    pub read: RewardRead,
    /// The auxiliary LM loss and the trunk's learning-rate scale ([`crate::trunk`]; off by
    /// default).
    pub trunk: TrunkTraining,
}

impl Default for RewardStageConfig {
    fn default() -> Self {
        RewardStageConfig {
            train: RewardTrainConfig::default(),
            rules: true,
            max_len: None,
            validation_fraction: 0.1,
            normalise: Some(NormaliseConfig::default()),
            read: RewardRead::Eos,
            trunk: TrunkTraining::default(),
        }
    }
}

/// The result of [`train_reward_model`].
#[derive(Debug, Clone)]
pub struct TrainedReward {
    /// The trained (and normalised) model.
    pub model: RewardModel,
    /// The last epoch's validation report, before normalisation (which leaves every
    /// difference, and so every pairwise number, unchanged without a target std).
    pub validation: Option<EvalReport>,
    /// Every training step's record.
    pub history: Vec<RewardStepLog>,
    /// What normalisation did.
    pub normalisation: Option<NormaliseReport>,
    /// What the data builder used and ignored.
    pub stats: BuildStats,
    /// Training comparisons.
    pub train_comparisons: usize,
    /// Validation comparisons.
    pub validation_comparisons: usize,
}

impl TrainedReward {
    /// The model as PPO's reward function, `batch_size` episodes per forward.
    pub fn model_reward(&self, batch_size: usize) -> ModelReward {
        ModelReward::new(self.model.clone(), batch_size)
    }
}

/// Trains a reward model from the SFT model `sft` on `data` (records per source name),
/// tokenised with `tokenizer`; validates on a prompt-hash split; normalises on `references`
/// (prompt, SFT response) pairs; with `out_dir`, checkpoints go to `out_dir/training` and the
/// final model to `out_dir`. `on_event` sees every step, validation and save.
pub fn train_reward_model(
    sft: Gpt,
    tokenizer: &dyn Tokenizer,
    data: &[(&str, &[Feedback])],
    references: &[(Prompt, String)],
    config: &RewardStageConfig,
    out_dir: Option<&Path>,
    on_event: &mut dyn FnMut(&RewardEvent),
) -> Result<TrainedReward> {
    config.train.validate()?;
    if tokenizer.vocab_size() > sft.config.vocab_size {
        return Err(RewardError::config(
            "tokenizer",
            format!(
                "{} tokens do not fit the model's vocabulary of {}",
                tokenizer.vocab_size(),
                sft.config.vocab_size
            ),
        ));
    }
    let sequence = SequenceConfig {
        eos_token_id: tokenizer.eos_id(),
        pad_token_id: tokenizer.pad_id(),
        max_len: config
            .max_len
            .unwrap_or(sft.config.n_positions)
            .min(sft.config.n_positions),
    };
    let columns = if config.rules {
        RuleColumns::Discover
    } else {
        RuleColumns::Off
    };
    let mut builder = PreferenceBuilder::new(tokenizer, sequence.clone(), columns);
    for (source, records) in data {
        for record in *records {
            builder.add(record, source)?;
        }
    }
    let built = builder.build()?;
    let (train, validation) = built.split(config.validation_fraction)?;
    if train.is_empty() {
        return Err(RewardError::Empty {
            op: "train_reward_model",
            what: format!(
                "no training comparison ({} built, all in validation or none with a pair)",
                built.comparisons.len()
            ),
        });
    }
    let mut rng = Rng::new(config.train.seed).fork(1);
    let model = RewardModel::from_sft(sft, built.rules.clone(), sequence, &mut rng)?
        .with_read(config.read)?;
    let mut trainer = RewardTrainer::new(model, config.train.clone())?;
    trainer.set_trunk_training(config.trunk)?;
    let training_dir = out_dir.map(|d| d.join("training"));
    trainer.fit(&train, &validation, training_dir.as_deref(), on_event)?;
    let validation_report = trainer.validation_history().last().cloned();
    let history = trainer.history().to_vec();
    let mut model = trainer.model;
    let normalisation = match &config.normalise {
        Some(target) => {
            let rows = reference_rows(&model, tokenizer, references);
            Some(normalise(
                &mut model,
                &rows,
                target,
                config.train.eval_batch_size,
            )?)
        }
        None => None,
    };
    if let Some(dir) = out_dir {
        model.save(dir)?;
        on_event(&RewardEvent::Saved(dir.to_path_buf()));
    }
    Ok(TrainedReward {
        model,
        validation: validation_report,
        history,
        normalisation,
        stats: built.stats,
        train_comparisons: train.len(),
        validation_comparisons: validation.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Episode, RewardFunction};
    use rlhf_data::tokenizer::{BpeTrainerConfig, train_bpe};
    use rlhf_data::world::{LabelTask, World, WorldConfig};
    use rlhf_tensor::Device;
    use rlhf_transformer::GptConfig;

    #[test]
    fn configs_read_from_partial_json() {
        let c: RewardStageConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, RewardStageConfig::default());
        let c: RewardStageConfig = serde_json::from_str(
            r#"{"train": {"epochs": 2, "objective": {"loss": "bt"}}, "normalise": null}"#,
        )
        .unwrap();
        assert_eq!(c.train.epochs, 2);
        assert_eq!(c.train.objective.loss, crate::PreferenceLoss::Bt);
        assert!(c.normalise.is_none());
        assert!(serde_json::from_str::<RewardStageConfig>(r#"{"epochs": 2}"#).is_err());
    }

    #[test]
    fn the_stage_trains_normalises_saves_and_scores_world_data() {
        let world = World::new(WorldConfig::small()).unwrap();
        let tasks: Vec<LabelTask> = world
            .rl_prompts
            .iter()
            .enumerate()
            .map(|(i, p)| LabelTask {
                item_id: format!("t{i}"),
                prompt: p.render(),
                responses: world.candidate_responses(p, 3, "stage"),
            })
            .collect();
        let records: Vec<Feedback> = world
            .label_tasks(&tasks, 1)
            .unwrap()
            .into_iter()
            .flat_map(|(_, _, out)| [out.ranking.into(), out.violations.into()])
            .collect();
        let config = BpeTrainerConfig {
            vocab_size: 300,
            min_frequency: 2,
        };
        let tok = train_bpe(world.corpus_texts(), &config).unwrap();
        let gpt = Gpt::new(
            GptConfig::new(tok.vocab_size(), 48, 16, 1, 2),
            0,
            &mut Rng::new(0),
            Device::Cpu,
        )
        .unwrap();
        let references: Vec<(Prompt, String)> = world
            .demonstrations
            .iter()
            .map(|d| (Prompt::user(d.prompt.text.clone()), d.response.clone()))
            .collect();
        let mut config = RewardStageConfig::default();
        config.train.batch_size = 8;
        config.train.lr = 1e-3;
        config.validation_fraction = 0.2;
        let dir = std::env::temp_dir().join(format!("rlhf-reward-stage-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut steps = 0;
        let trained = train_reward_model(
            gpt,
            &tok,
            &[("world", &records[..])],
            &references,
            &config,
            Some(&dir),
            &mut |e| steps += usize::from(matches!(e, RewardEvent::Step(_))),
        )
        .unwrap();
        assert_eq!(steps, trained.history.len());
        assert_eq!(trained.model.n_rules(), world.rules.rules.len());
        assert!(trained.validation.is_some() && trained.validation_comparisons > 0);
        assert!(trained.stats.rule_labels_merged > 0);
        let norm = trained.normalisation.as_ref().unwrap();
        assert!(norm.mean_after.abs() < 1e-4, "{norm:?}");
        assert_eq!(RewardModel::load(&dir, Device::Cpu).unwrap(), trained.model);
        // PPO's view: episodes with tokens.
        let demo = &world.demonstrations[0];
        let prompt_tokens = tok.encode(&crate::dataset::render_prompt(&references[0].0));
        let response_tokens = tok.encode(&crate::dataset::response_text(&demo.response));
        let episode = Episode {
            prompt: &references[0].1,
            response: &demo.response,
            prompt_tokens: &prompt_tokens,
            response_tokens: &response_tokens,
        };
        let scores = trained.model_reward(4).score(&[episode]).unwrap();
        assert!(scores[0].is_finite());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
