//! Stage 6: the reward model. Trained from the SFT model on the screened raters' preference
//! dataset (K-wise rankings + the rule auxiliary, `[reward_model]`), normalised so the SFT
//! demonstrations score 0 on average, then measured against the ground truth: the researchers'
//! ranking of K candidates for each held-out eval prompt.

use std::path::PathBuf;

use rlhf_data::world::{LabelTask, LabelerKind, World};
use rlhf_reward::eval::{EvalReport, evaluate};
use rlhf_reward::{
    ObjectiveConfig, PreferenceBuilder, PreferenceLoss, RewardEvent, RewardModel, RewardRead,
    RewardStageConfig, RewardTrainConfig, RuleColumns, SequenceConfig, TrunkTraining,
    train_reward_model,
};
use rlhf_transformer::Gpt;

use super::context::RunContext;
use super::error::{PipelineError, Result};
use super::label::Labels;
use super::pretrain::Pretrained;
use super::raters::RatersOutput;
use super::rundir::Metrics;
use super::sft::Sft;
use super::summary::RewardModelSummary;

/// The stage's name (marker, `--halt-after`, metrics).
pub const STAGE: &str = "reward_model";
/// The reward model's directory under `models/`.
pub const RM: &str = "rm";
/// Rows per forward when scoring.
const EVAL_BATCH: usize = 32;

/// What stage 6 produced.
#[derive(Debug, Clone)]
pub struct RewardStage {
    /// The trained, normalised model (also in `models/rm`).
    pub model: RewardModel,
    /// Its directory.
    pub model_dir: PathBuf,
    /// The figures for the summary (also `reward_model.json`).
    pub summary: RewardModelSummary,
}

/// The reward crate's settings from the run config's `[reward_model]` section.
pub fn stage_config(ctx: &RunContext) -> Result<RewardStageConfig> {
    let section = &ctx.config.reward_model;
    let loss = match section.loss.as_str() {
        "kwise" => PreferenceLoss::Kwise,
        "bt" => PreferenceLoss::Bt,
        "margin" => PreferenceLoss::Margin,
        other => {
            return Err(PipelineError::config(
                "reward_model.loss",
                format!("`{other}`: expected kwise, bt or margin"),
            ));
        }
    };
    Ok(RewardStageConfig {
        train: RewardTrainConfig {
            objective: ObjectiveConfig {
                loss,
                centering: 0.0,
                rule_weight: f64::from(section.rule_loss_weight),
            },
            lr: section.lr,
            epochs: section.epochs,
            batch_size: section.batch_size,
            eval_batch_size: EVAL_BATCH,
            seed: ctx.config.seed,
            ..RewardTrainConfig::default()
        },
        rules: section.rule_loss_weight > 0.0,
        validation_fraction: section.val_fraction,
        read: RewardRead::from_name(&section.read).ok_or_else(|| {
            PipelineError::config(
                "reward_model.read",
                format!(
                    "`{}`: expected eos, gated-likelihood, gated-probability, \
                     gated-centred-likelihood, gated-top-margin, gated-top-choice, \
                     gated-top-ratio, gated-top-gap or gated-top-margin-ratio",
                    section.read
                ),
            )
        })?,
        trunk: TrunkTraining {
            lm_weight: section.lm_weight,
            trunk_lr_scale: section.trunk_lr_scale,
            ..TrunkTraining::default()
        },
        ..RewardStageConfig::default()
    })
}

/// The ground-truth test set: for each held-out eval prompt, K candidates from the world ranked
/// by the researchers (prompts whose candidates are all equally good are left out), sourced by
/// prompt class.
fn ground_truth_test(
    ctx: &RunContext,
    world: &World,
    base: &Pretrained,
    sequence: SequenceConfig,
) -> Result<Vec<rlhf_reward::Comparison>> {
    let researchers = LabelerKind::Researcher.profile("truth");
    let k = ctx.config.labels.k.max(2);
    let mut builder = PreferenceBuilder::new(&base.tokenizer, sequence, RuleColumns::Off);
    for (i, prompt) in world.eval_prompts.iter().enumerate() {
        let task = LabelTask {
            item_id: format!("rm-test-{i}-{}", prompt.id),
            prompt: prompt.render(),
            responses: world.candidate_responses(prompt, k, "rm-test"),
        };
        let truth = world.label(&researchers, &task)?;
        if truth.ranking.tiers.len() < 2 {
            continue;
        }
        let class = format!("{:?}", prompt.kind.class()).to_lowercase();
        builder.add(&truth.ranking.into(), &class)?;
    }
    Ok(builder.build()?.comparisons)
}

fn summarise(validation: Option<&EvalReport>, truth: &EvalReport) -> RewardModelSummary {
    RewardModelSummary {
        accuracy: Some(truth.overall.accuracy),
        accuracy_unscreened: None,
        loss: validation.map(|v| v.loss),
        ece: validation.map(|v| v.overall.ece_symmetric),
    }
}

/// The same training on every rater's aggregated labels (no screening), measured on the same
/// ground-truth test: what screening the raters bought. The model itself is not kept.
fn unscreened_accuracy(
    ctx: &RunContext,
    sft_dir: &std::path::Path,
    base: &Pretrained,
    labels: &Labels,
    rated: &RatersOutput,
    config: &RewardStageConfig,
    test: &[rlhf_reward::Comparison],
) -> Result<Option<f64>> {
    if rated.preferences_all.is_empty() {
        return Ok(None);
    }
    let bar = ctx.progress.bar("rm (all)", 1, "models");
    bar.set_message("reward model on unscreened labels");
    let trained = train_reward_model(
        Gpt::load(sft_dir, ctx.config.device()?)?,
        &base.tokenizer,
        &[("all", &rated.preferences_all[..])],
        &labels.sft_references(),
        config,
        None,
        &mut |_| {},
    )?;
    bar.finish_and_clear();
    let truth = evaluate(&trained.model, test, &config.train.objective, EVAL_BATCH)?;
    tracing::info!(
        truth_accuracy = truth.overall.accuracy,
        "reward model on unscreened labels"
    );
    Ok(Some(truth.overall.accuracy))
}

/// Trains (or, when the stage is done, loads) the reward model.
pub fn reward_model(
    ctx: &RunContext,
    world: &World,
    base: &Pretrained,
    sft_model: &Sft,
    labels: &Labels,
    rated: &RatersOutput,
) -> Result<RewardStage> {
    let model_dir = ctx.dir.model_dir(RM);
    if ctx.dir.is_done(STAGE) {
        let model = RewardModel::load(&model_dir, ctx.config.device()?)?;
        let summary = ctx.dir.read_json("reward_model.json", STAGE, STAGE)?;
        return Ok(RewardStage {
            model,
            model_dir,
            summary,
        });
    }
    let started = std::time::Instant::now();
    let config = stage_config(ctx)?;
    ctx.dir
        .require("models/sft/model.safetensors", STAGE, super::sft::STAGE)?;
    let sft = Gpt::load(&sft_model.model_dir, ctx.config.device()?)?;
    let references = labels.sft_references();
    let rankings = rated
        .preferences
        .iter()
        .filter(|f| matches!(f, rlhf_data::records::Feedback::Ranking(_)))
        .count();
    let train_prompts = (rankings as f64 * (1.0 - config.validation_fraction)).ceil() as u64;
    let steps_per_epoch = train_prompts
        .div_ceil(config.train.batch_size as u64)
        .max(1);
    let bar = ctx
        .progress
        .bar(STAGE, steps_per_epoch * config.train.epochs as u64, "steps");
    let mut metrics = Metrics::new(STAGE);
    let trained = train_reward_model(
        sft,
        &base.tokenizer,
        &[("screened", &rated.preferences[..])],
        &references,
        &config,
        Some(&model_dir),
        &mut |event| match event {
            RewardEvent::Step(s) => {
                bar.set_position(s.step);
                bar.set_message(format!("loss {:.3} acc {:.2}", s.loss, s.accuracy));
                metrics.push(
                    Some(s.step),
                    &[
                        ("loss", f64::from(s.loss)),
                        ("loss/preference", f64::from(s.preference)),
                        ("loss/rules", f64::from(s.rules)),
                        ("accuracy", f64::from(s.accuracy)),
                        ("lr", f64::from(s.lr)),
                        ("grad_norm", f64::from(s.grad_norm)),
                    ],
                );
            }
            RewardEvent::Eval { epoch, report } => {
                tracing::info!(
                    epoch,
                    accuracy = report.overall.accuracy,
                    loss = report.loss,
                    "reward model validation"
                );
                metrics.push(
                    None,
                    &[
                        ("epoch", *epoch as f64),
                        ("val/loss", report.loss),
                        ("val/accuracy", report.overall.accuracy),
                        ("val/ece_symmetric", report.overall.ece_symmetric),
                    ],
                );
            }
            RewardEvent::Saved(_) => {}
        },
    )?;
    bar.finish_and_clear();
    let test = ground_truth_test(ctx, world, base, trained.model.head.sequence.clone())?;
    let truth = evaluate(&trained.model, &test, &config.train.objective, EVAL_BATCH)?;
    let unscreened = unscreened_accuracy(
        ctx,
        &sft_model.model_dir,
        base,
        labels,
        rated,
        &config,
        &test,
    )?;
    let mut summary = summarise(trained.validation.as_ref(), &truth);
    summary.accuracy_unscreened = unscreened;
    metrics.push(
        None,
        &[
            ("truth/accuracy", truth.overall.accuracy),
            (
                "truth/length_baseline_accuracy",
                truth.overall.length_baseline_accuracy,
            ),
            ("truth/comparisons", truth.comparisons as f64),
            ("train/comparisons", trained.train_comparisons as f64),
            ("val/comparisons", trained.validation_comparisons as f64),
        ],
    );
    tracing::info!(
        truth_accuracy = truth.overall.accuracy,
        length_baseline = truth.overall.length_baseline_accuracy,
        "reward model done"
    );
    base.tokenizer.save(model_dir.join("tokenizer.json"))?;
    ctx.dir.write_json("reward_model.json", &summary)?;
    ctx.dir.write_json("reward_model_truth.json", &truth)?;
    ctx.dir
        .write_metrics(STAGE, metrics.lines(), &super::stage_names())?;
    ctx.dir.mark_done(STAGE, started.elapsed().as_secs_f64())?;
    ctx.check_halt(STAGE, None)?;
    Ok(RewardStage {
        model: trained.model,
        model_dir,
        summary,
    })
}
