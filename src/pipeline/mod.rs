//! The RLHF pipeline as typed stage functions over a run directory. Parts:
//! - [`config`]: the run config (TOML; `default.toml`, `micro.toml`), validated before training;
//! - [`rundir`]: the run directory layout, atomic writes, stage markers, metrics;
//! - [`context`], [`progress`], [`error`]: what every stage receives, bars, errors;
//! - stages, each a module with its function: [`world()`] (1, [`mod@world`]), [`pretrain()`]
//!   (2: tokenizer + base model), [`sft()`] (3), [`label()`] (4: sampling + simulated labelers),
//!   [`raters()`] (5: screening, aggregation, preference dataset; helpers in [`raters_labels`]),
//!   [`reward_model()`] (6: trained on the preference dataset, normalised, checked against the
//!   ground truth), [`ppo()`] (7: with and without PPO-ptx, critic from the reward model),
//!   [`evaluate()`] (8, [`mod@eval`]: every policy against the ground truth);
//! - [`lm_train`], [`generation`]: the training loop and sampling the stages share;
//! - [`mod@run`]: all stages in order (`rlhf run`); [`summary`], [`report`], [`plots`]: what a
//!   person reads.

pub mod config;
pub mod context;
pub mod error;
pub mod eval;
pub mod generation;
pub mod label;
pub mod lm_train;
pub mod plots;
pub mod ppo;
pub mod pretrain;
pub mod progress;
pub mod raters;
pub mod raters_labels;
pub mod report;
pub mod reward_model;
pub mod run;
pub mod rundir;
pub mod sft;
pub mod summary;
pub mod world;

pub use config::{Preset, RunConfig};
pub use context::{Halt, RunContext};
pub use error::{PipelineError, Result};
pub use eval::{Policy, PolicyEval, evaluate};
pub use label::{Labels, label};
pub use ppo::ppo;
pub use pretrain::{Pretrained, pretrain};
pub use progress::Progress;
pub use raters::{RatersOutput, raters};
pub use reward_model::{RewardStage, reward_model};
pub use run::{RunOutcome, run};
pub use rundir::RunDir;
pub use sft::{Sft, sft};
pub use summary::Summary;
pub use world::world;

/// One stage of the pipeline and whether this build has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageInfo {
    /// Its name (run directory marker, `--halt-after`, metrics).
    pub name: &'static str,
    /// What it does.
    pub what: &'static str,
    /// Whether it is implemented and run by `rlhf run`.
    pub available: bool,
}

/// The stages in order.
pub const STAGES: &[StageInfo] = &[
    StageInfo {
        name: world::STAGE,
        what: "synthetic HHH world",
        available: true,
    },
    StageInfo {
        name: pretrain::STAGE,
        what: "tokenizer + pretraining",
        available: true,
    },
    StageInfo {
        name: sft::STAGE,
        what: "supervised fine-tuning",
        available: true,
    },
    StageInfo {
        name: label::STAGE,
        what: "sampling + simulated labelers",
        available: true,
    },
    StageInfo {
        name: raters::STAGE,
        what: "rater screening + aggregation",
        available: true,
    },
    StageInfo {
        name: reward_model::STAGE,
        what: "reward model (rlhf-reward)",
        available: true,
    },
    StageInfo {
        name: ppo::STAGE,
        what: "PPO with PPO-ptx (rlhf-ppo)",
        available: true,
    },
    StageInfo {
        name: ppo::NO_PTX,
        what: "PPO without ptx, for the alignment tax (rlhf-ppo)",
        available: true,
    },
    StageInfo {
        name: "eval",
        what: "evaluation against ground truth",
        available: true,
    },
];

/// The stage names in order.
pub fn stage_names() -> Vec<&'static str> {
    STAGES.iter().map(|s| s.name).collect()
}
