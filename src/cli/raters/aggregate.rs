//! `rlhf raters aggregate`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use rlhf_raters::aggregate::{EmConfig, Method, aggregate};
use rlhf_raters::io;
use serde_json::json;

use super::output::{field, print_json, write_csv};

/// Aggregation methods on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum MethodArg {
    Majority,
    DawidSkene,
    OneCoin,
    Glad,
    Mace,
}

/// Options of `rlhf raters aggregate`.
#[derive(Debug, Args)]
pub struct AggregateArgs {
    /// Labels: CSV `item,rater,label` (or `task,worker,label`) or JSONL; gzip ok.
    #[arg(long)]
    input: PathBuf,
    /// Aggregation method.
    #[arg(long, value_enum)]
    method: MethodArg,
    /// Gold labels (`item,label`): gold items are clamped to their gold class.
    #[arg(long)]
    gold: Option<PathBuf>,
    /// EM iterations at most.
    #[arg(long, default_value_t = 100)]
    max_iterations: usize,
    /// Stop when the log-likelihood per label changes by less than this.
    #[arg(long, default_value_t = 1e-5)]
    tolerance: f64,
    /// Additive smoothing of estimated counts.
    #[arg(long, default_value_t = 0.01)]
    smoothing: f64,
    /// Write per-item labels and posteriors to this CSV file (else they go into the JSON).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: AggregateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.smoothing >= 0.0,
        "--smoothing must be >= 0, got {}",
        args.smoothing
    );
    let (set, gold) =
        io::read_labels(&args.input, args.gold.as_deref()).context("reading labels")?;
    let method = match args.method {
        MethodArg::Majority => Method::Majority,
        MethodArg::DawidSkene => Method::DawidSkene,
        MethodArg::OneCoin => Method::OneCoin,
        MethodArg::Glad => Method::Glad,
        MethodArg::Mace => Method::Mace,
    };
    let config = EmConfig {
        max_iterations: args.max_iterations,
        tolerance: args.tolerance,
        smoothing: args.smoothing,
        clamp_gold: true,
    };
    let result = aggregate(&set, args.gold.as_ref().map(|_| &gold), method, &config)?;
    let cats = set.categories();
    let k = cats.len();
    let raters: Vec<_> = (0..set.n_raters())
        .map(|r| {
            let confusion = result.confusion.as_ref().map(|c| {
                c[r * k * k..(r + 1) * k * k].chunks(k).map(<[f64]>::to_vec).collect::<Vec<_>>()
            });
            json!({ "rater": set.raters().name(r as u32), "skill": result.rater_skill[r], "confusion": confusion })
        })
        .collect();
    let items = match &args.out {
        Some(out) => {
            let mut header = vec!["item".to_string(), "label".to_string()];
            header.extend(cats.iter().map(|c| format!("p_{c}")));
            if result.item_difficulty.is_some() {
                header.push("difficulty_beta".into());
            }
            let rows = (0..set.n_items()).map(|i| {
                let mut row = vec![
                    field(set.items().name(i as u32)),
                    field(&cats[result.labels[i] as usize]),
                ];
                row.extend(result.posterior(i).iter().map(|p| p.to_string()));
                if let Some(beta) = &result.item_difficulty {
                    row.push(beta[i].to_string());
                }
                row
            });
            write_csv(out, &header, rows)?;
            None
        }
        None => Some(
            (0..set.n_items())
                .map(|i| {
                    json!({
                        "item": set.items().name(i as u32),
                        "label": cats[result.labels[i] as usize],
                        "posterior": result.posterior(i),
                    })
                })
                .collect::<Vec<_>>(),
        ),
    };
    print_json(&json!({
        "input": args.input,
        "method": result.method,
        "categories": cats,
        "class_priors": result.class_priors,
        "log_likelihood": result.log_likelihood,
        "iterations": result.iterations,
        "converged": result.converged,
        "tie_rule": "argmax of the posterior; ties go to the first category in domain order",
        "skill_meaning": result.skill_meaning,
        "items_labelled": set.n_items(),
        "gold_items": gold.len(),
        "raters": raters,
        "items": items,
        "per_item_csv": args.out,
    }))
}
