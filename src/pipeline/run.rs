//! All stages in order: what `rlhf run` calls. Each stage skips itself when the run directory
//! marks it done, so the same function resumes an interrupted run.

use std::path::PathBuf;

use super::context::RunContext;
use super::error::Result;
use super::eval::{self, Policy, PolicyEval};
use super::label::{self, Labels};
use super::pretrain::{self, BASE, Pretrained};
use super::raters::{self, RatersOutput};
use super::reward_model::{self, RewardStage};
use super::sft::{self, SFT, Sft};
use super::summary::Summary;
use super::{STAGES, plots, ppo, report, world};

/// What a whole run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The summary (also `summary.json`).
    pub summary: Summary,
    /// The evaluations behind it.
    pub evals: Vec<PolicyEval>,
    /// Stages this build does not have yet (the run stops short of them).
    pub missing_stages: Vec<&'static str>,
    /// `report.md`.
    pub report: PathBuf,
}

/// Runs (or resumes) every stage, then writes `summary.json`, `report.md` and the plots.
pub fn run(ctx: &RunContext) -> Result<RunOutcome> {
    let world = world::world(ctx)?;
    let base: Pretrained = pretrain::pretrain(ctx, &world)?;
    let sft_model: Sft = sft::sft(ctx, &base, None)?;
    let labels: Labels = label::label(ctx, &world, &base, &sft_model)?;
    let rated: RatersOutput = raters::raters(ctx, &world, &labels)?;

    let rm: RewardStage =
        reward_model::reward_model(ctx, &world, &base, &sft_model, &labels, &rated)?;

    // The policies evaluated against the ground truth, in the summary's order.
    let mut policies = vec![
        Policy::new(BASE, base.model_dir.clone()),
        Policy::new(SFT, sft_model.model_dir.clone()),
    ];
    for (name, ptx_coef) in [(ppo::STAGE, ctx.config.ppo.ptx_coef), (ppo::NO_PTX, 0.0)] {
        let dir = ppo::ppo(ctx, &world, &base, &sft_model, &rm, name, ptx_coef)?;
        policies.push(Policy::new(name, dir));
    }
    let reward_model = rm.summary.clone();

    let evals = eval::evaluate(ctx, &world, &base, &policies, false)?;
    let missing_stages: Vec<&'static str> = STAGES
        .iter()
        .filter(|s| !s.available)
        .map(|s| s.name)
        .collect();
    let summary = Summary::new(
        ctx.config.seed,
        &evals,
        &rated.report,
        reward_model,
        &missing_stages,
    );
    let report = publish(ctx, &summary, &evals, &rated)?;
    Ok(RunOutcome {
        summary,
        evals,
        missing_stages,
        report,
    })
}

/// Writes `summary.json`, the plots and `report.md`; returns the report's path.
pub fn publish(
    ctx: &RunContext,
    summary: &Summary,
    evals: &[PolicyEval],
    rated: &RatersOutput,
) -> Result<PathBuf> {
    ctx.dir.write_json("summary.json", summary)?;
    let plots = plots::draw_all(ctx, evals, &rated.report)?;
    let text = report::report(ctx, summary, evals, &rated.report, &plots)?;
    ctx.dir.write_bytes("report.md", text.as_bytes())
}
