//! Checkpoints of a PPO run and its `metrics.jsonl`.
//!
//! Layout under the run directory:
//! - `checkpoint-{step}/policy/` and `checkpoint-{step}/critic/`: HF GPT-2 directories (the
//!   policy keeps its value head when the critic is shared);
//! - `checkpoint-{step}/ppo_state.safetensors`: AdamW moments, `policy.exp_avg.{name}`,
//!   `policy.exp_avg_sq.{name}`, `critic.exp_avg.{name}`, ...;
//! - `checkpoint-{step}/ppo_state.json`: [`PpoState`] (step, controller, RNG, data cursors,
//!   history) and the optimisers' step counts;
//! - `latest`: the name of the newest complete checkpoint, written last (atomically), so a crash
//!   mid-save leaves the previous checkpoint in charge; older checkpoints are removed after it.
//!
//! The frozen reference is not saved: it is the SFT model the run starts from, given again on
//! resume and checked against a fingerprint.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rlhf_tensor::Tensor;
use rlhf_tensor::optim::{AdamW, StateMismatch, unused_state};
use rlhf_transformer::Gpt;
use rlhf_transformer::files::{load_safetensors, save_safetensors, write_atomic};
use serde::{Deserialize, Serialize};

use crate::train_error::{TrainError, TrainResult};
use crate::trainer::{PpoState, PpoTrainer, StepRecord, fingerprint};

/// The pointer file naming the newest checkpoint.
pub const LATEST: &str = "latest";
/// The metrics file, one [`StepRecord`] per line.
pub const METRICS: &str = "metrics.jsonl";
const STATE_JSON: &str = "ppo_state.json";
const STATE_TENSORS: &str = "ppo_state.safetensors";

#[derive(Serialize, Deserialize)]
struct SavedState {
    state: PpoState,
    policy_optimizer_step: u64,
    critic_optimizer_step: Option<u64>,
}

/// The names and dims of `model`'s parameters, in the optimizer's update order.
fn layout(model: &Gpt) -> Vec<(String, Vec<usize>)> {
    model
        .params
        .named()
        .into_iter()
        .map(|(n, t)| (n, t.dims().to_vec()))
        .collect()
}

fn moments<'a>(prefix: &str, model: &Gpt, opt: &'a AdamW, out: &mut Vec<(String, &'a Tensor)>) {
    let names: Vec<String> = layout(model).into_iter().map(|(n, _)| n).collect();
    out.extend(opt.named_state(&format!("{prefix}."), &names));
}

/// Writes a checkpoint of `trainer` under `dir` and points `latest` at it.
pub fn save(trainer: &PpoTrainer, dir: &Path) -> TrainResult<PathBuf> {
    let name = format!("checkpoint-{}", trainer.state.step);
    let ckpt = dir.join(&name);
    fs::create_dir_all(&ckpt).map_err(|e| TrainError::io(&ckpt, e))?;
    trainer.policy.save(&ckpt.join("policy"))?;
    if let Some(critic) = &trainer.critic {
        critic.save(&ckpt.join("critic"))?;
    }
    let mut tensors = Vec::new();
    moments("policy", &trainer.policy, &trainer.policy_opt, &mut tensors);
    if let (Some(c), Some(o)) = (&trainer.critic, &trainer.critic_opt) {
        moments("critic", c, o, &mut tensors);
    }
    save_safetensors(&ckpt.join(STATE_TENSORS), &tensors)?;
    let saved = SavedState {
        state: trainer.state.clone(),
        policy_optimizer_step: trainer.policy_opt.step,
        critic_optimizer_step: trainer.critic_opt.as_ref().map(|o| o.step),
    };
    let path = ckpt.join(STATE_JSON);
    let json = serde_json::to_vec_pretty(&saved).map_err(|e| TrainError::Checkpoint {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    write_atomic(&path, &json)?;
    write_atomic(&dir.join(LATEST), name.as_bytes())?;
    // The new checkpoint is in charge: older ones can go.
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let other = entry.file_name().to_string_lossy().into_owned();
            if other.starts_with("checkpoint-") && other != name {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    Ok(ckpt)
}

/// Whether `dir` holds a checkpoint to resume from.
pub fn has_checkpoint(dir: &Path) -> bool {
    dir.join(LATEST).is_file()
}

fn restore_moments(
    prefix: &str,
    model: &Gpt,
    opt: &mut AdamW,
    step: u64,
    found: &mut BTreeMap<String, Tensor>,
    path: &Path,
) -> TrainResult<()> {
    opt.restore_state(step, &format!("{prefix}."), &layout(model), found)
        .map_err(|m| mismatch(path, m))
}

fn mismatch(path: &Path, m: StateMismatch) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        reason: m.to_string(),
    }
}

/// Restores the newest checkpoint under `dir` into `trainer` (built from the same setup).
pub fn load(trainer: &mut PpoTrainer, dir: &Path) -> TrainResult<()> {
    let pointer = dir.join(LATEST);
    let name = fs::read_to_string(&pointer).map_err(|e| TrainError::io(&pointer, e))?;
    let ckpt = dir.join(name.trim());
    let path = ckpt.join(STATE_JSON);
    let text = fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
    let saved: SavedState = serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let mut comparable = trainer.config.clone();
    comparable.total_episodes = saved.state.config.total_episodes;
    comparable.num_train_epochs = saved.state.config.num_train_epochs;
    comparable.save_steps = saved.state.config.save_steps;
    comparable.max_skipped_updates = saved.state.config.max_skipped_updates;
    if comparable != saved.state.config {
        return Err(TrainError::Checkpoint {
            path,
            reason: format!(
                "the run was started with other settings (only total_episodes, num_train_epochs, save_steps and max_skipped_updates may change):\n{}",
                saved.state.config.to_toml()
            ),
        });
    }
    if fingerprint(&trainer.reference) != saved.state.reference_fingerprint {
        return Err(TrainError::Checkpoint {
            path,
            reason: "the reference (SFT) model differs from the one this run started from".into(),
        });
    }
    let device = trainer.policy.device();
    let policy = Gpt::load(&ckpt.join("policy"), device)?;
    if policy.params.n_scalar_heads() != trainer.policy.params.n_scalar_heads() {
        return Err(TrainError::Checkpoint {
            path: ckpt.join("policy"),
            reason: "the policy's value head does not match the config's `critic`".into(),
        });
    }
    trainer.policy = policy;
    match (&mut trainer.critic, saved.critic_optimizer_step) {
        (Some(critic), Some(_)) => *critic = Gpt::load(&ckpt.join("critic"), device)?,
        (None, None) => {}
        _ => {
            return Err(TrainError::Checkpoint {
                path,
                reason: "the checkpoint's critic layout differs from the config's `critic`".into(),
            });
        }
    }
    let tensors_path = ckpt.join(STATE_TENSORS);
    let mut found: BTreeMap<String, Tensor> = load_safetensors(&tensors_path, device)?
        .into_iter()
        .collect();
    restore_moments(
        "policy",
        &trainer.policy,
        &mut trainer.policy_opt,
        saved.policy_optimizer_step,
        &mut found,
        &tensors_path,
    )?;
    if let (Some(c), Some(o), Some(step)) = (
        &trainer.critic,
        trainer.critic_opt.as_mut(),
        saved.critic_optimizer_step,
    ) {
        restore_moments("critic", c, o, step, &mut found, &tensors_path)?;
    }
    if let Some(m) = unused_state(&found) {
        return Err(mismatch(&tensors_path, m));
    }
    let mut state = saved.state;
    state.config = trainer.config.clone();
    trainer.state = state;
    Ok(())
}

/// Appends one record to `dir/metrics.jsonl`.
pub fn append_metrics(dir: &Path, record: &StepRecord) -> TrainResult<()> {
    fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let path = dir.join(METRICS);
    let line = serde_json::to_string(record).map_err(|e| TrainError::Checkpoint {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| TrainError::io(&path, e))?;
    writeln!(file, "{line}").map_err(|e| TrainError::io(&path, e))
}

/// Rewrites `dir/metrics.jsonl` with `history` (on resume, dropping lines past the checkpoint).
pub fn rewrite_metrics(dir: &Path, history: &[StepRecord]) -> TrainResult<()> {
    fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let path = dir.join(METRICS);
    let mut text = String::new();
    for record in history {
        let line = serde_json::to_string(record).map_err(|e| TrainError::Checkpoint {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        text.push_str(&line);
        text.push('\n');
    }
    Ok(write_atomic(&path, text.as_bytes())?)
}
