//! All stages in order: what `rlhf run` calls. Each stage skips itself when the run directory
//! marks it done, so the same function resumes an interrupted run.

use std::path::PathBuf;

use super::context::RunContext;
use super::error::Result;
use super::eval::{self, Policy, PolicyEval};
use super::label::{self, Labels};
use super::pretrain::{self, BASE, Pretrained};
use super::raters::{self, RatersOutput};
use super::sft::{self, SFT, Sft};
use super::summary::{RewardModelSummary, Summary};
use super::{STAGES, plots, report, world};

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

    // The policies evaluated against the ground truth, in the summary's order.
    #[allow(unused_mut)] // stage 7 pushes `ppo` and `ppo_no_ptx`
    let mut policies = vec![
        Policy::new(BASE, base.model_dir.clone()),
        Policy::new(SFT, sft_model.model_dir.clone()),
    ];
    #[allow(unused_mut)] // filled by stage 6
    let mut reward_model = RewardModelSummary::default();

    // ==== HOOK: stages 6 (reward model) and 7 (PPO) go here ====================================
    // Available at this point:
    // - `rated.preferences`: the preference dataset, one `Feedback::Ranking` (K-way, super
    //   raters' Bradley–Terry order, ties allowed) then one `Feedback::RuleViolations` (super
    //   raters' Dawid–Skene flags) per prompt; also on disk as `DIR/preferences.jsonl` (native).
    // - `sft_model.model_dir` (`DIR/models/sft`, HF GPT-2 + tokenizer.json): the RM's and PPO's
    //   initialisation and PPO's frozen reference.
    // - `base.tokenizer` (BpeTokenizer), `base.held_out` (pretraining windows for PPO-ptx).
    // - `world`: `world.rl_prompts` (render with `.render()`), `world.rules`, `world.judge(..)`.
    // - `ctx.config.reward_model`, `ctx.config.ppo`, `ctx.dir` (`ctx.dir.model_dir("rm")`, ...),
    //   `ctx.progress.bar(..)`, `ctx.check_halt(stage, step)`, `ctx.dir.is_done/mark_done`.
    // Stage 6:
    //   let rm = reward_model_stage(ctx, &world, &base, &sft_model, &rated)?;  // DIR/models/rm
    //   reward_model = RewardModelSummary { accuracy: Some(..), accuracy_unscreened: .., loss: .., ece: .. };
    // Stage 7 (with and without PPO-ptx):
    //   for (name, ptx) in [("ppo", ctx.config.ppo.ptx_coef), ("ppo_no_ptx", 0.0)] {
    //       let dir = ppo_stage(ctx, &world, &base, &sft_model, &rm, name, ptx)?; // DIR/models/NAME
    //       policies.push(Policy::new(name, dir));
    //   }
    // Then set `available: true` for both in `STAGES`; PPO's per-step metrics written under
    // stage name `ppo` with keys `objective/scores` and `objective/kl` are plotted automatically.
    // ===========================================================================================

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
