//! One language-model training run for a pipeline stage (pretraining or SFT): AdamW with warmup
//! and cosine decay, validation, resumable checkpoints under the stage's model directory, a
//! progress bar, and the stage's metrics. Resuming picks up the newest `checkpoint-N` and
//! replays exactly the steps an uninterrupted run takes (the trainer restores its optimizer
//! moments, data order and RNG).

use std::fs;
use std::path::{Path, PathBuf};

use rlhf_tensor::optim::AdamWConfig;
use rlhf_transformer::{
    Decay, EvalLog, Example, Gpt, OptimizerConfig, StepLog, TrainConfig, Trainer,
};

use super::config::TrainSection;
use super::context::RunContext;
use super::error::{PipelineError, Result};
use super::rundir::Metrics;

/// The validation losses so far, kept beside each checkpoint so a resumed run reports them too.
const VAL_LOG: &str = "val_log.json";

/// What a training run produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The trained model.
    pub model: Gpt,
    /// Every step's log (including those before a resume).
    pub history: Vec<StepLog>,
    /// Every validation pass.
    pub validation: Vec<EvalLog>,
}

/// The trainer settings of a stage's section.
pub fn train_config(section: &TrainSection, seed: u64, pad: u32) -> TrainConfig {
    TrainConfig {
        optimizer: OptimizerConfig::Adamw(AdamWConfig {
            lr: section.lr,
            weight_decay: section.weight_decay,
            ..AdamWConfig::default()
        }),
        lr: section.lr,
        warmup_steps: section.warmup_steps,
        decay: Decay::Cosine,
        total_steps: section.steps,
        batch_size: section.batch_size,
        grad_accum_steps: 1,
        seq_len: section.seq_len,
        max_grad_norm: (section.max_grad_norm > 0.0).then_some(section.max_grad_norm),
        seed,
        eval_every: section.eval_every,
        save_every: section.save_every,
        pad_token_id: pad,
        precision: rlhf_transformer::Precision::F32,
        recompute: rlhf_transformer::Recompute::Off,
    }
}

/// The newest `checkpoint-N` directory under `out` that holds a trainer state.
fn latest_checkpoint(out: &Path) -> Option<(u64, PathBuf)> {
    fs::read_dir(out)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let step = entry
                .file_name()
                .to_str()?
                .strip_prefix("checkpoint-")?
                .parse::<u64>()
                .ok()?;
            let dir = entry.path();
            dir.join(rlhf_transformer::trainer_state::STATE_JSON)
                .is_file()
                .then_some((step, dir))
        })
        .max_by_key(|(step, _)| *step)
}

/// Trains `init` on `train` for `stage` (resuming from a checkpoint under `out` if there is one),
/// validating on `validation`; writes the final model and trainer state to `out`.
#[allow(clippy::too_many_arguments)]
pub fn train_lm(
    ctx: &RunContext,
    stage: &'static str,
    section: &TrainSection,
    init: Gpt,
    train: &[Example],
    validation: &[Example],
    pad: u32,
    out: &Path,
    metrics: &mut Metrics,
) -> Result<TrainOutcome> {
    if train.is_empty() {
        return Err(PipelineError::config(
            &format!("{stage}.val_fraction"),
            "no training examples are left",
        ));
    }
    fs::create_dir_all(out).map_err(|e| PipelineError::io(out, e))?;
    let mut config = train_config(section, ctx.config.seed, pad);
    config.precision = ctx.config.precision()?;
    config.recompute = rlhf_transformer::Recompute::from_flag(ctx.config.recompute);
    let (mut trainer, mut val_log) = match latest_checkpoint(out) {
        Some((step, dir)) => {
            tracing::info!(stage, step, "resuming from {}", dir.display());
            let trainer = Trainer::resume(&dir, config, ctx.config.device()?)?;
            let log_path = dir.join(VAL_LOG);
            let val_log: Vec<EvalLog> = match fs::read_to_string(&log_path) {
                Ok(text) => serde_json::from_str(&text)
                    .map_err(|e| PipelineError::bad_file(&log_path, e))?,
                Err(_) => Vec::new(),
            };
            (trainer, val_log)
        }
        None => (Trainer::new(init, config)?, Vec::new()),
    };
    let bar = ctx.progress.bar(stage, section.steps, "steps");
    bar.set_position(trainer.step());
    while trainer.step() < section.steps {
        let log = trainer.train_step(train)?;
        bar.set_position(log.step);
        bar.set_message(format!("loss {:.4}", log.loss));
        let last = log.step == section.steps;
        let validate =
            last || (section.eval_every > 0 && log.step.is_multiple_of(section.eval_every));
        if validate && !validation.is_empty() {
            let eval = trainer.evaluate(validation)?;
            tracing::info!(stage, step = eval.step, val_loss = eval.loss, "validation");
            val_log.push(eval);
        }
        if !last && section.save_every > 0 && log.step.is_multiple_of(section.save_every) {
            let dir = out.join(format!("checkpoint-{}", log.step));
            // The validation log first: a checkpoint counts once its trainer state (written
            // last by `save`) exists, and then everything it needs is there.
            fs::create_dir_all(&dir).map_err(|e| PipelineError::io(&dir, e))?;
            let text =
                serde_json::to_vec(&val_log).map_err(|e| PipelineError::bad_file(&dir, e))?;
            rlhf_transformer::files::write_atomic(&dir.join(VAL_LOG), &text)?;
            trainer.save(&dir)?;
            ctx.check_halt(stage, Some(log.step))?;
        }
    }
    bar.finish_and_clear();
    trainer.save(out)?;
    // The finished model supersedes the intermediate checkpoints.
    if let Ok(entries) = fs::read_dir(out) {
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with("checkpoint-")
            {
                let path = entry.path();
                fs::remove_dir_all(&path).map_err(|e| PipelineError::io(&path, e))?;
            }
        }
    }
    let history = trainer.history().to_vec();
    for s in &history {
        metrics.push(
            Some(s.step),
            &[
                ("train/loss", f64::from(s.loss)),
                ("train/lr", f64::from(s.lr)),
                ("train/grad_norm", f64::from(s.grad_norm)),
                ("train/tokens", s.tokens as f64),
            ],
        );
    }
    for v in &val_log {
        metrics.push(
            Some(v.step),
            &[
                ("val/loss", f64::from(v.loss)),
                ("val/perplexity", f64::from(v.perplexity)),
            ],
        );
    }
    Ok(TrainOutcome {
        model: trainer.model,
        history,
        validation: val_log,
    })
}
