//! The one call that trains a policy with PPO from typed inputs, fresh or resumed from a run
//! directory: what `rlhf run` and `rlhf ppo` use.

use std::path::Path;

use rlhf_transformer::Gpt;

use crate::checkpoint::has_checkpoint;
use crate::train_error::TrainResult;
use crate::trainer::{PpoEvent, PpoSetup, PpoTrainer, StepRecord};

/// What [`train_ppo`] returns.
#[derive(Debug, Clone)]
pub struct PpoOutcome {
    /// The trained policy as a language model (no value head).
    pub policy: Gpt,
    /// The trained separate critic, if there was one.
    pub critic: Option<Gpt>,
    /// Every step's record, those before a resume included.
    pub metrics: Vec<StepRecord>,
}

/// Trains with PPO until the configured number of episodes. With `run_dir`, checkpoints,
/// `metrics.jsonl` and the final `policy/` (and `critic/`) are written there, and when `resume`
/// is set and the directory holds a checkpoint, training continues from it exactly (`setup`
/// must be the same as the first time, `total_episodes` aside). `on_event` hears every step,
/// skipped update and save.
pub fn train_ppo(
    setup: PpoSetup,
    run_dir: Option<&Path>,
    resume: bool,
    on_event: &mut dyn FnMut(&PpoEvent),
) -> TrainResult<PpoOutcome> {
    let mut trainer = match run_dir {
        Some(dir) if resume && has_checkpoint(dir) => PpoTrainer::resume(setup, dir)?,
        _ => PpoTrainer::new(setup)?,
    };
    trainer.fit(run_dir, on_event)?;
    Ok(PpoOutcome {
        policy: trainer.policy(),
        critic: trainer.critic().cloned(),
        metrics: trainer.history().to_vec(),
    })
}
