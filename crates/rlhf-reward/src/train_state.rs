//! The reward trainer's checkpoint beside the model (DESIGN.md decision 6):
//! `trainer_state.safetensors` (optimizer moments named `exp_avg.{param}`, `exp_avg_sq.{param}`
//! or `momentum.{param}`) and `trainer_state.json` (step, data order, cursor, RNG, optimizer
//! step count, config, history). Both are written atomically.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use rlhf_tensor::optim::{StateMismatch, unused_state};
use rlhf_tensor::{Rng, RngState, Tensor};
use rlhf_transformer::files::{load_safetensors, save_safetensors, write_atomic};
use serde::{Deserialize, Serialize};

use crate::eval::EvalReport;
use crate::train::{RewardStepLog, RewardTrainConfig, RewardTrainer};
use crate::trunk::TrunkTraining;
use crate::{Result, RewardError};

/// The trainer-state JSON file.
pub const STATE_JSON: &str = "trainer_state.json";
/// The trainer-state tensors file.
pub const STATE_TENSORS: &str = "trainer_state.safetensors";

/// Where training stands, but for the tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimizer steps completed.
    pub step: u64,
    /// The current epoch's comparison order.
    pub order: Vec<usize>,
    /// Position in `order`.
    pub cursor: usize,
    /// The data-order generator.
    pub rng: RngState,
    /// The optimizer's own step count (bias correction).
    pub optimizer_step: u64,
    /// Training comparisons the run was started on (0 before the first step).
    pub examples: usize,
    /// The settings the run was started with.
    pub config: RewardTrainConfig,
    /// Every step's record.
    pub history: Vec<RewardStepLog>,
    /// The validation report of every finished epoch.
    pub validation: Vec<EvalReport>,
    /// The trunk options the run was started with (absent in older files: the defaults).
    #[serde(default)]
    pub trunk: TrunkTraining,
}

impl TrainerState {
    /// The state before the first step.
    pub fn fresh(config: &RewardTrainConfig) -> TrainerState {
        TrainerState {
            step: 0,
            order: Vec::new(),
            cursor: 0,
            rng: Rng::new(config.seed).state(),
            optimizer_step: 0,
            examples: 0,
            config: config.clone(),
            history: Vec::new(),
            validation: Vec::new(),
            trunk: TrunkTraining::default(),
        }
    }
}

/// Writes the trainer state of `trainer` into `dir` (the model is saved by the caller).
pub(crate) fn save(trainer: &RewardTrainer, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| RewardError::io(dir, e))?;
    let names: Vec<String> = trainer
        .model
        .gpt
        .params
        .named()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let tensors = trainer.optimizer.named_state("", &names);
    let mut state = trainer.state.clone();
    state.optimizer_step = trainer.optimizer.step_count();
    save_safetensors(&dir.join(STATE_TENSORS), &tensors)?;
    let path = dir.join(STATE_JSON);
    let json = serde_json::to_vec_pretty(&state).map_err(|error| RewardError::Json {
        path: path.clone(),
        error,
    })?;
    write_atomic(&path, &json)?;
    Ok(())
}

/// Restores the state saved in `dir` into `trainer`, whose model is already loaded from `dir`.
pub(crate) fn load(trainer: &mut RewardTrainer, dir: &Path) -> Result<()> {
    let path = dir.join(STATE_JSON);
    let text = fs::read_to_string(&path).map_err(|e| RewardError::io(&path, e))?;
    let state: TrainerState = serde_json::from_str(&text).map_err(|error| RewardError::Json {
        path: path.clone(),
        error,
    })?;
    let mut comparable = trainer.config.clone();
    comparable.epochs = state.config.epochs;
    comparable.save_every = state.config.save_every;
    if comparable != state.config {
        return Err(RewardError::config(
            "train config",
            format!(
                "{}: the run was started with other settings ({:?}); only epochs and save_every may change",
                path.display(),
                state.config
            ),
        ));
    }
    let tensors_path = dir.join(STATE_TENSORS);
    let mut found: BTreeMap<String, Tensor> =
        load_safetensors(&tensors_path, trainer.model.device())?
            .into_iter()
            .collect();
    let params: Vec<(String, Vec<usize>)> = trainer
        .model
        .gpt
        .params
        .named()
        .into_iter()
        .map(|(n, t)| (n, t.dims().to_vec()))
        .collect();
    let mismatch =
        |m: StateMismatch| RewardError::Input(format!("{}: {m}", tensors_path.display()));
    trainer
        .optimizer
        .restore_state(state.optimizer_step, "", &params, &mut found)
        .map_err(mismatch)?;
    if let Some(m) = unused_state(&found) {
        return Err(mismatch(m));
    }
    trainer.state = state;
    trainer.state.config = trainer.config.clone();
    Ok(())
}
