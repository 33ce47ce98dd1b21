//! The one call that trains a policy with PPO from typed inputs, fresh or resumed from a run
//! directory: what `rlhf run` and `rlhf ppo` use.

use std::path::Path;

use rlhf_tensor::dist::Communicator;
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
    train_ppo_rank(setup, run_dir, resume, None, on_event)
}

/// [`train_ppo`] as one rank of a data-parallel run over `comm` (`None`: a single process):
/// every rank resumes from `run_dir`, but only rank 0 writes checkpoints, `metrics.jsonl` and
/// the final models there. The outcome's metrics are reduced over the ranks.
pub fn train_ppo_rank(
    setup: PpoSetup,
    run_dir: Option<&Path>,
    resume: bool,
    comm: Option<Communicator>,
    on_event: &mut dyn FnMut(&PpoEvent),
) -> TrainResult<PpoOutcome> {
    let mut trainer = match run_dir {
        Some(dir) if resume && has_checkpoint(dir) => PpoTrainer::resume(setup, dir)?,
        _ => PpoTrainer::new(setup)?,
    };
    if let Some(comm) = comm {
        trainer.set_data_parallel(comm)?;
    }
    let write_dir = run_dir.filter(|_| trainer.rank() == 0);
    trainer.fit(write_dir, on_event)?;
    Ok(PpoOutcome {
        policy: trainer.policy(),
        critic: trainer.critic().cloned(),
        metrics: trainer.history().to_vec(),
    })
}
