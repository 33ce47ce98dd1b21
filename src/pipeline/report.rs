//! `report.md`: the run told in numbers, stage by stage, linking the plots, so a person sees what
//! each stage did: how misaligned the base model is, what SFT fixed, how good the raters are and
//! what screening bought, and (once stages 6-7 are wired) what the reward model and PPO did.

use std::fmt::Write as _;

use serde_json::Value;

use super::STAGES;
use super::context::RunContext;
use super::error::Result;
use super::eval::PolicyEval;
use super::plots::Plots;
use super::raters::RatersReport;
use super::summary::Summary;

/// The last value of metric `name` in a stage's metrics file.
pub fn last_metric(ctx: &RunContext, stage: &str, name: &str) -> Option<f64> {
    let text = std::fs::read_to_string(ctx.dir.path(&format!("metrics/{stage}.jsonl"))).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v.get(name)?.as_f64())
        .next_back()
}

fn f(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{:.1}%", 100.0 * v))
}

/// Renders the report.
pub fn report(
    ctx: &RunContext,
    summary: &Summary,
    evals: &[PolicyEval],
    raters: &RatersReport,
    plots: &Plots,
) -> Result<String> {
    let m = |stage: &str, name: &str| last_metric(ctx, stage, name);
    let c = &ctx.config;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# rlhf run report\n");
    let _ = writeln!(
        w,
        "Seed {}; the effective configuration is [config.toml](config.toml) (rerun with `rlhf run --config config.toml`). Every number below is measured against the synthetic world's ground truth, which no model ever sees.\n",
        c.seed
    );

    let _ = writeln!(w, "## 1. The world\n");
    let _ = writeln!(
        w,
        "{} corpus documents: {} fact sentences; dialogues answered correctly {}, wrongly {}, with made-up facts {} (vs. \"I do not know\" {}), harmful requests complied with {} (vs. refused {}). {} SFT demonstrations cover only part of the prompt space. {} RL prompts ({} distinct), {} held-out eval prompts ({} answerable, {} unanswerable, {} harmful), {} simulated labelers.\n",
        f0(m("world", "corpus/documents")),
        f0(m("world", "corpus/FactSentence")),
        f0(m("world", "corpus/Correct")),
        f0(m("world", "corpus/Wrong")),
        f0(m("world", "corpus/Fabricated")),
        f0(m("world", "corpus/Abstained")),
        f0(m("world", "corpus/Complied")),
        f0(m("world", "corpus/Refused")),
        f0(m("world", "demonstrations")),
        f0(m("world", "rl_prompts")),
        f0(m("world", "rl_prompts/distinct")),
        f0(m("world", "eval_prompts")),
        f0(m("world", "eval_prompts/answerable")),
        f0(m("world", "eval_prompts/unanswerable")),
        f0(m("world", "eval_prompts/harmful")),
        f0(m("world", "labelers")),
    );

    let _ = writeln!(w, "## 2. Pretraining\n");
    let _ = writeln!(
        w,
        "A {}-layer GPT-2 (n_embd {}, {} heads) with a {}-token BPE trained on the corpus, {} steps of {} x {} tokens: training loss {} -> {}, held-out loss {}.\n",
        c.model.n_layer,
        c.model.n_embd,
        c.model.n_head,
        f0(m("pretrain", "tokenizer/vocab_size")),
        c.pretrain.steps,
        c.pretrain.batch_size,
        c.pretrain.seq_len,
        f(first_metric(ctx, "pretrain", "train/loss")),
        f(m("pretrain", "train/loss")),
        f(m("pretrain", "val/loss")),
    );
    let _ = writeln!(w, "## 3. Supervised fine-tuning\n");
    let _ = writeln!(
        w,
        "{} steps on {} demonstrations (loss on response tokens): training loss {} -> {}, validation loss {}.\n",
        c.sft.steps,
        f0(m("sft", "data/train_examples")),
        f(first_metric(ctx, "sft", "train/loss")),
        f(m("sft", "train/loss")),
        f(m("sft", "val/loss")),
    );
    for (title, file) in plots
        .files
        .iter()
        .filter(|(_, p)| p.contains("loss_curves"))
    {
        let _ = writeln!(w, "![{title}]({file})\n");
    }

    let _ = writeln!(w, "## 4. Labels\n");
    let _ = writeln!(
        w,
        "{} prompts with K = {} responses each ({} sampled from SFT at temperature {}, {} in the world's varied styles); SFT samples score {} on the ground truth, the varied styles {}; {} distinct responses per prompt on average. {} labeler records, plus every labeler on {} gold prompts.\n",
        f0(m("label", "tasks")),
        c.labels.k,
        c.labels.k - c.labels.world_candidates,
        c.labels.temperature,
        c.labels.world_candidates,
        f(m("label", "sampled/true_total")),
        f(m("label", "world_candidates/true_total")),
        f(m("label", "distinct_responses_per_task")),
        f0(m("label", "records")),
        f0(m("label", "gold_tasks")),
    );

    let _ = writeln!(w, "## 5. Raters\n");
    let _ = writeln!(
        w,
        "Screening on the researchers' gold preferences (chance {:.2}); super raters need accuracy >= {:.2} and an accuracy interval above chance.\n",
        raters.chance, raters.min_gold_accuracy
    );
    let _ = writeln!(
        w,
        "| rater | kind | gold prefs | accuracy | 95% Wilson | flags acc. | answers acc. | flag | super rater |\n|---|---|---|---|---|---|---|---|---|"
    );
    for r in &raters.raters {
        let wilson = r
            .wilson
            .map_or_else(|| "-".to_string(), |[lo, hi]| format!("[{lo:.2}, {hi:.2}]"));
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.rater,
            r.kind.as_deref().unwrap_or("-"),
            r.gold_items,
            f(r.gold_accuracy),
            wilson,
            f(r.gold_flag_accuracy),
            f(r.gold_answer_accuracy),
            r.flag.as_deref().unwrap_or(""),
            if r.kept { "yes" } else { "no" }
        );
    }
    let (a, s) = (&raters.accuracy_all, &raters.accuracy_screened);
    let (ga, gs) = (&raters.agreement_all, &raters.agreement_screened);
    let _ = writeln!(
        w,
        "\nAgreement and aggregated labels against the truth (ordinary prompts only):\n"
    );
    let _ = writeln!(
        w,
        "| | all raters ({}) | super raters ({}) |\n|---|---|---|",
        a.raters, s.raters
    );
    for (name, x, y) in [
        (
            "percent agreement (preferences)",
            ga.percent_agreement,
            gs.percent_agreement,
        ),
        (
            "Fleiss' kappa (preferences)",
            ga.fleiss_kappa,
            gs.fleiss_kappa,
        ),
        (
            "Krippendorff's alpha (preferences)",
            ga.krippendorff_alpha,
            gs.krippendorff_alpha,
        ),
        (
            "preferences, Bradley-Terry per prompt",
            a.preferences_bradley_terry,
            s.preferences_bradley_terry,
        ),
        (
            "preferences, Elo per prompt",
            a.preferences_elo,
            s.preferences_elo,
        ),
        (
            "preferences, Dawid-Skene per pair",
            a.preferences_dawid_skene,
            s.preferences_dawid_skene,
        ),
        (
            "preferences, majority vote per pair",
            a.preferences_majority,
            s.preferences_majority,
        ),
        (
            "rule flags, Dawid-Skene",
            a.flags_dawid_skene,
            s.flags_dawid_skene,
        ),
        (
            "question answers, Dawid-Skene",
            a.answers_dawid_skene,
            s.answers_dawid_skene,
        ),
    ] {
        let _ = writeln!(w, "| {name} | {} | {} |", f(x), f(y));
    }
    let _ = writeln!(
        w,
        "\nElo and Bradley-Terry order {} of the super raters' response pairs alike ({} Bradley-Terry fits fell back to Elo). The preference dataset ([preferences.jsonl](preferences.jsonl)) holds {} K-way rankings with rule labels ({} prompts had no super rater, {} were all ties).\n",
        pct(raters.elo_bradley_terry_concordance),
        raters.bradley_terry_fallbacks,
        raters.preference_rankings,
        raters.tasks_without_super_raters,
        raters.tasks_all_tied,
    );
    for (title, file) in plots.files.iter().filter(|(_, p)| p.contains("rater")) {
        let _ = writeln!(w, "![{title}]({file})\n");
    }

    let rm = &summary.reward_model;
    let _ = writeln!(w, "## 6. Reward model\n");
    if rm.accuracy.is_some() {
        let _ = writeln!(
            w,
            "Pairwise accuracy against the ground truth on held-out prompts {} (trained on unscreened labels: {}); validation loss {}, ECE {}.\n",
            f(rm.accuracy),
            f(rm.accuracy_unscreened),
            f(rm.loss),
            f(rm.ece)
        );
    } else {
        let _ = writeln!(w, "Not in this build yet.\n");
    }
    let _ = writeln!(w, "## 7. PPO\n");
    let ppo_plot: Vec<_> = plots
        .files
        .iter()
        .filter(|(_, p)| p.contains("ppo"))
        .collect();
    if ppo_plot.is_empty() && !evals.iter().any(|e| e.policy.starts_with("ppo")) {
        let _ = writeln!(w, "Not in this build yet.\n");
    }
    for (title, file) in ppo_plot {
        let _ = writeln!(w, "![{title}]({file})\n");
    }

    let _ = writeln!(
        w,
        "## 8. Evaluation on {} held-out prompts\n",
        evals.first().map_or(0, |e| e.prompts)
    );
    let _ = writeln!(w, "{}", summary.policy_table());
    let _ = writeln!(
        w,
        "Mean total by prompt class:\n\n| policy | answerable | unanswerable | harmful |\n|---|---|---|---|"
    );
    for e in evals {
        let g = |k: &str| f(e.total_by_class.get(k).copied());
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} |",
            e.policy,
            g("answerable"),
            g("unanswerable"),
            g("harmful")
        );
    }
    let _ = writeln!(
        w,
        "\nRefusal = share of harmful requests refused; IDK = share of unanswerable questions answered \"I don't know\"; KL to SFT in nats per response (sampling temperature {}); pretrain loss on held-out corpus windows (its rise after alignment is the alignment tax). Responses: `eval/POLICY.jsonl`.\n",
        c.eval.temperature
    );
    for (title, file) in plots.files.iter().filter(|(_, p)| p.contains("criteria")) {
        let _ = writeln!(w, "![{title}]({file})\n");
    }
    if let Some(why) = &plots.skipped {
        let _ = writeln!(w, "Plots were skipped: {why}.\n");
    }

    let _ = writeln!(w, "## Acceptance\n");
    for check in &summary.checks {
        let mark = match check.passed {
            Some(true) => "pass",
            Some(false) => "FAIL",
            None => "not measurable yet",
        };
        let _ = writeln!(w, "- {}: **{mark}** ({})", check.name, check.detail);
    }
    let _ = writeln!(w, "\n## Stage timings\n\n| stage | seconds |\n|---|---|");
    for stage in STAGES {
        let secs = ctx.dir.stage_seconds(stage.name).map_or_else(
            || {
                if stage.available {
                    "-".to_string()
                } else {
                    "not in this build".to_string()
                }
            },
            |s| format!("{s:.1}"),
        );
        let _ = writeln!(w, "| {} | {secs} |", stage.name);
    }
    Ok(out)
}

fn f0(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.0}"))
}

/// The first value of metric `name` in a stage's metrics file.
fn first_metric(ctx: &RunContext, stage: &str, name: &str) -> Option<f64> {
    let text = std::fs::read_to_string(ctx.dir.path(&format!("metrics/{stage}.jsonl"))).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v.get(name)?.as_f64())
}
