//! The trainer's checkpoint beside the model: `trainer_state.safetensors` (optimizer moments,
//! named `exp_avg.{param}`, `exp_avg_sq.{param}` or `momentum.{param}`) and
//! `trainer_state.json` (step, epoch, data order and cursor, RNG state, optimizer step count,
//! config, loss history). Both are written atomically.

use std::fs;
use std::path::Path;

use rlhf_tensor::optim::{Optimizer, StateMismatch, unused_state};
use rlhf_tensor::{Rng, RngState, Tensor};
use serde::{Deserialize, Serialize};

use crate::files::{load_safetensors, save_safetensors, write_atomic};
use crate::train::{StepLog, TrainConfig, Trainer};
use crate::{ModelError, Result};

/// The trainer-state JSON file.
pub const STATE_JSON: &str = "trainer_state.json";
/// The trainer-state tensors file.
pub const STATE_TENSORS: &str = "trainer_state.safetensors";

/// Where training stands: everything but the tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimizer steps completed.
    pub step: u64,
    /// Epochs started.
    pub epoch: u64,
    /// The current epoch's example order.
    pub order: Vec<usize>,
    /// Position in `order`.
    pub cursor: usize,
    /// The data-order generator's state.
    pub rng: RngState,
    /// The optimizer's own step count (bias correction).
    pub optimizer_step: u64,
    /// The settings the run was started with.
    pub config: Option<TrainConfig>,
    /// Every step's record.
    pub history: Vec<StepLog>,
}

impl TrainerState {
    /// The state before the first step.
    pub fn fresh(config: &TrainConfig) -> TrainerState {
        TrainerState {
            step: 0,
            epoch: 0,
            order: Vec::new(),
            cursor: 0,
            rng: Rng::new(config.seed).state(),
            optimizer_step: 0,
            config: Some(config.clone()),
            history: Vec::new(),
        }
    }
}

/// Writes the trainer state beside the model in `dir`, with `optimizer`'s state (the trainer's,
/// or under ZeRO-1 the one gathered from every rank's shard).
pub(crate) fn save(trainer: &Trainer, optimizer: &Optimizer, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let names: Vec<String> = trainer
        .model
        .params
        .named()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let tensors = optimizer.named_state("", &names);
    let mut state = trainer.state.clone();
    state.optimizer_step = optimizer.step_count();
    save_safetensors(&dir.join(STATE_TENSORS), &tensors)?;
    let path = dir.join(STATE_JSON);
    let json = serde_json::to_vec_pretty(&state).map_err(|source| ModelError::Json {
        path: path.clone(),
        source,
    })?;
    write_atomic(&path, &json)
}

/// Restores the trainer state saved in `dir` into `trainer` (whose model is already loaded).
pub(crate) fn load(trainer: &mut Trainer, dir: &Path) -> Result<()> {
    let path = dir.join(STATE_JSON);
    let text = fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
    let state: TrainerState = serde_json::from_str(&text).map_err(|source| ModelError::Json {
        path: path.clone(),
        source,
    })?;
    if let Some(saved) = &state.config {
        let mut comparable = trainer.config.clone();
        comparable.total_steps = saved.total_steps;
        comparable.eval_every = saved.eval_every;
        comparable.save_every = saved.save_every;
        comparable.recompute = saved.recompute; // changes memory, not numbers
        if &comparable != saved {
            return Err(ModelError::config(
                "train config",
                format!(
                    "{}: the run was started with different settings: {saved:?}",
                    path.display()
                ),
            ));
        }
    }
    let tensors_path = dir.join(STATE_TENSORS);
    let mut found: std::collections::BTreeMap<String, Tensor> =
        load_safetensors(&tensors_path, trainer.model.device())?
            .into_iter()
            .collect();
    let params: Vec<(String, Vec<usize>)> = trainer
        .model
        .params
        .named()
        .into_iter()
        .map(|(n, t)| (n, t.dims().to_vec()))
        .collect();
    let mismatch = |m: StateMismatch| ModelError::Checkpoint {
        path: tensors_path.clone(),
        tensor: m.tensor,
        reason: m.reason,
    };
    trainer
        .optimizer
        .restore_state(state.optimizer_step, "", &params, &mut found)
        .map_err(mismatch)?;
    if let Some(m) = unused_state(&found) {
        return Err(mismatch(m));
    }
    trainer.state = state;
    Ok(())
}
