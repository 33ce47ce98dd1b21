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
    // - `rated.preferences`: the super raters' preference dataset, per prompt one
    //   `Feedback::Ranking` (K-way, Bradley–Terry order, ties allowed) then one
    //   `Feedback::RuleViolations` (Dawid–Skene flags); `DIR/preferences.jsonl` (native JSONL).
    //   `rated.preferences_all`: the same from every rater, unscreened (`preferences_all.jsonl`),
    //   for the reward model trained without screening (`RewardModelSummary::accuracy_unscreened`).
    // - `labels.sft_references()`: (Prompt, SFT response) pairs to normalise the reward on.
    // - `sft_model.model_dir` (`DIR/models/sft`, HF GPT-2 + tokenizer.json): the reward model's
    //   and PPO's initialisation and PPO's frozen reference.
    // - `base.tokenizer` (BpeTokenizer); `base.train_windows` (pretraining batches for PPO-ptx;
    //   `base.held_out` is what the alignment tax is measured on, keep it out of training).
    // - `world`: `pipeline::world::distinct(&world.rl_prompts)` (render with `.render()`),
    //   `world.rules`, `world.judge(prompt, response)`.
    // - `ctx.config.reward_model`, `ctx.config.ppo` (TRL names), `ctx.dir.model_dir("rm")`,
    //   `ctx.progress.bar(stage, len, unit)`, `ctx.check_halt(stage, step)`,
    //   `ctx.dir.is_done(stage)` / `mark_done(stage, seconds)`, `rundir::Metrics` +
    //   `ctx.dir.write_metrics(stage, lines, &stage_names())`.
    // Stage 6 (e.g. `rlhf_reward::train_reward_model(sft_gpt, &base.tokenizer,
    //   &[("screened", &rated.preferences)], &labels.sft_references(), &cfg, Some(dir), ..)`):
    //   reward_model = RewardModelSummary { accuracy: Some(..), accuracy_unscreened: .., loss: .., ece: .. };
    // Stage 7 (`rlhf_ppo::train_ppo(setup, Some(dir), resume, ..)`), with and without PPO-ptx:
    //   for (name, ptx) in [("ppo", ctx.config.ppo.ptx_coef), ("ppo_no_ptx", 0.0)] {
    //       let dir = ...; // DIR/models/NAME, an HF GPT-2 policy + tokenizer.json
    //       policies.push(Policy::new(name, dir));
    //   }
    // Then set `available: true` for both in `STAGES`. PPO per-step metrics written under stage
    // name `ppo` with keys `objective/scores` and `objective/kl` are plotted automatically, and
    // the summary's "ppo total > sft total" check fills in once a `ppo` policy is evaluated.
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
