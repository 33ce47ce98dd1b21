//! [`RunContext`]: what every stage function receives: the config, the run directory, the
//! progress bars, and where to halt on purpose (for resume tests).

use std::str::FromStr;

use super::config::RunConfig;
use super::error::{PipelineError, Result};
use super::progress::Progress;
use super::rundir::RunDir;

/// Where a run stops on purpose: after a stage, or after a training stage's checkpoint at a step
/// (`STAGE` or `STAGE@STEP`), as if it had been killed there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Halt {
    /// The stage name.
    pub stage: String,
    /// The checkpoint step inside a training stage.
    pub step: Option<u64>,
}

impl FromStr for Halt {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Halt, String> {
        let (stage, step) = match s.split_once('@') {
            Some((stage, step)) => (
                stage,
                Some(
                    step.parse::<u64>()
                        .map_err(|_| format!("`{step}` is not a step number"))?,
                ),
            ),
            None => (s, None),
        };
        if !super::STAGES.iter().any(|st| st.name == stage) {
            return Err(format!("unknown stage `{stage}`"));
        }
        Ok(Halt {
            stage: stage.to_string(),
            step,
        })
    }
}

/// The shared state of a run.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The effective config.
    pub config: RunConfig,
    /// The run directory.
    pub dir: RunDir,
    /// Progress bars.
    pub progress: Progress,
    /// Stop on purpose here (None: run to the end).
    pub halt: Option<Halt>,
}

impl RunContext {
    /// A context over `dir` with `config`, writing the effective config to `DIR/config.toml`.
    pub fn new(config: RunConfig, dir: RunDir, progress: Progress) -> Result<RunContext> {
        dir.write_bytes("config.toml", config.to_toml()?.as_bytes())?;
        Ok(RunContext {
            config,
            dir,
            progress,
            halt: None,
        })
    }

    /// Opens an existing run directory with the config it was started with.
    pub fn resume(dir: RunDir, progress: Progress) -> Result<RunContext> {
        let config = RunConfig::load(&dir.config_path())?;
        Ok(RunContext {
            config,
            dir,
            progress,
            halt: None,
        })
    }

    /// Fails with [`PipelineError::Halted`] when the run should stop after `stage` (at `step`).
    pub fn check_halt(&self, stage: &str, step: Option<u64>) -> Result<()> {
        match &self.halt {
            Some(h) if h.stage == stage && h.step == step => {
                Err(PipelineError::Halted(match step {
                    Some(s) => format!("{stage}@{s}"),
                    None => stage.to_string(),
                }))
            }
            _ => Ok(()),
        }
    }
}
