//! `rlhf raters screen`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use rlhf_raters::io;
use rlhf_raters::screening::{ScreenRules, screen};

use super::output::{field, opt, print_json, write_csv};

/// Options of `rlhf raters screen`.
#[derive(Debug, Args)]
pub struct ScreenArgs {
    /// Labels: CSV `item,rater,label` (or `task,worker,label`) or JSONL; gzip ok.
    #[arg(long)]
    input: PathBuf,
    /// Gold labels: CSV `item,label` or JSONL.
    #[arg(long)]
    gold: PathBuf,
    /// Keep only raters whose gold accuracy is at least this.
    #[arg(long)]
    min_accuracy: Option<f64>,
    /// Keep only raters who labelled at least this many gold items.
    #[arg(long, default_value_t = 1)]
    min_gold: u64,
    /// Keep only raters whose Wilson lower bound is at least this.
    #[arg(long)]
    min_lower: Option<f64>,
    /// Keep only raters whose agreement with the leave-one-out consensus is at least this.
    #[arg(long)]
    min_consensus: Option<f64>,
    /// Coverage of the Wilson interval.
    #[arg(long, default_value_t = 0.95)]
    confidence: f64,
    /// Do not drop raters flagged random or adversarial.
    #[arg(long)]
    keep_flagged: bool,
    /// Write the per-rater table to this CSV file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: ScreenArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.confidence > 0.0 && args.confidence < 1.0,
        "--confidence must be in (0, 1), got {}",
        args.confidence
    );
    let (set, gold) =
        io::read_labels(&args.input, Some(&args.gold)).context("reading labels and gold")?;
    anyhow::ensure!(
        !gold.is_empty(),
        "{}: no gold item was labelled by any rater in {}",
        args.gold.display(),
        args.input.display()
    );
    let rules = ScreenRules {
        min_accuracy: args.min_accuracy,
        min_gold_items: args.min_gold,
        min_lower_bound: args.min_lower,
        min_consensus: args.min_consensus,
        confidence: args.confidence,
        exclude_flagged: !args.keep_flagged,
    };
    let report = screen(&set, &gold, &rules);
    if let Some(out) = &args.out {
        let header = [
            "rater",
            "labels",
            "gold_items",
            "gold_correct",
            "accuracy",
            "wilson_lower",
            "wilson_upper",
            "consensus_agreement",
            "flag",
            "kept",
            "reasons",
        ]
        .map(String::from);
        let rows = report.raters.iter().map(|r| {
            vec![
                field(&r.rater),
                r.labels.to_string(),
                r.gold_items.to_string(),
                r.gold_correct.to_string(),
                opt(r.accuracy.value()),
                opt(r.wilson.map(|w| w[0])),
                opt(r.wilson.map(|w| w[1])),
                opt(r.consensus_agreement.value()),
                r.flag
                    .map(|f| format!("{f:?}").to_lowercase())
                    .unwrap_or_default(),
                r.kept.to_string(),
                field(&r.reasons.join("; ")),
            ]
        });
        write_csv(out, &header, rows)?;
    }
    print_json(&report)
}
