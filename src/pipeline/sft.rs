//! Stage 3: supervised fine-tuning of the base model on demonstrations (`data/demonstrations.jsonl`
//! or a user's file in the same format), with the loss on response tokens only.

use std::path::{Path, PathBuf};

use rlhf_data::tokenizer::Tokenizer;
use rlhf_transformer::{Example, Gpt};

use super::context::RunContext;
use super::error::{PipelineError, Result};
use super::lm_train::train_lm;
use super::pretrain::{self, Pretrained};
use super::rundir::Metrics;
use super::world::DemonstrationLine;

/// Stage name.
pub const STAGE: &str = "sft";
/// The SFT policy's name (and directory under `models/`).
pub const SFT: &str = "sft";

/// The fine-tuned model.
#[derive(Debug, Clone)]
pub struct Sft {
    /// `models/sft` (with `tokenizer.json`).
    pub model_dir: PathBuf,
}

/// A demonstration as a training example: prompt tokens, then `" " + response` and EOS, scored
/// on the response only.
pub fn sft_example(tok: &dyn Tokenizer, demo: &DemonstrationLine) -> Example {
    let prompt = tok.encode_with_special(&demo.prompt);
    let mut response = tok.encode(&format!(" {}", demo.response));
    response.push(tok.eos_id());
    Example::sft(&prompt, &response, true)
}

/// Reads demonstrations from a JSONL file of `{"prompt", "response"}` lines.
pub fn read_demonstrations(path: &Path) -> Result<Vec<DemonstrationLine>> {
    let text = std::fs::read_to_string(path).map_err(|e| PipelineError::io(path, e))?;
    let demos = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                PipelineError::bad_file(
                    path,
                    format!(
                        "line {}: {e} (expected {{\"prompt\": ..., \"response\": ...}})",
                        i + 1
                    ),
                )
            })
        })
        .collect::<Result<Vec<DemonstrationLine>>>()?;
    if demos.len() < 2 {
        return Err(PipelineError::bad_file(
            path,
            "expected at least 2 demonstrations",
        ));
    }
    Ok(demos)
}

/// Fine-tunes the base model on `DIR/data/demonstrations.jsonl` (or `data` when given).
pub fn sft(ctx: &RunContext, base: &Pretrained, data: Option<&Path>) -> Result<Sft> {
    let model_dir = ctx.dir.model_dir(SFT);
    if ctx.dir.is_done(STAGE) {
        return Ok(Sft { model_dir });
    }
    let started = std::time::Instant::now();
    let section = &ctx.config.sft;
    let data_path = match data {
        Some(p) => p.to_path_buf(),
        None => ctx
            .dir
            .require("data/demonstrations.jsonl", STAGE, super::world::STAGE)?,
    };
    let demos = read_demonstrations(&data_path)?;
    let tok = &base.tokenizer;
    let mut examples: Vec<Example> = demos.iter().map(|d| sft_example(tok, d)).collect();
    let held = ((examples.len() as f64 * section.val_fraction).round() as usize)
        .clamp(1, examples.len() - 1);
    let validation = examples.split_off(examples.len() - held);
    ctx.dir
        .require("models/base/model.safetensors", STAGE, pretrain::STAGE)?;
    let init = Gpt::load(&base.model_dir, ctx.config.device()?)?;
    let mut metrics = Metrics::new(STAGE);
    metrics.push(
        None,
        &[
            ("data/train_examples", examples.len() as f64),
            ("data/val_examples", validation.len() as f64),
        ],
    );
    let outcome = train_lm(
        ctx,
        STAGE,
        section,
        init,
        &examples,
        &validation,
        tok.pad_id(),
        &model_dir,
        &mut metrics,
    )?;
    tok.save(model_dir.join("tokenizer.json"))?;
    if let Some(v) = outcome.validation.last() {
        tracing::info!(val_loss = v.loss, "SFT done");
    }
    ctx.dir
        .write_metrics(STAGE, metrics.lines(), &super::stage_names())?;
    ctx.dir.mark_done(STAGE, started.elapsed().as_secs_f64())?;
    ctx.check_halt(STAGE, None)?;
    Ok(Sft { model_dir })
}
