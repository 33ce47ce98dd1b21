//! `rlhf raters rank`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use rlhf_raters::ranking::bradley_terry::BtConfig;
use rlhf_raters::ranking::elo::EloConfig;
use rlhf_raters::ranking::{Anchor, rank_bradley_terry, rank_elo};
use rlhf_raters::{BootstrapSpec, io};
use serde_json::json;

use super::output::{field, opt, print_json, write_csv};

/// Ranking methods on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum RankMethod {
    Elo,
    BradleyTerry,
}

/// Options of `rlhf raters rank`.
#[derive(Debug, Args)]
pub struct RankArgs {
    /// Comparisons: CSV `left,right,winner[,rater][,group]` (winner left|right|tie or an item
    /// name; a `group` or `prompt` column ranks each group on its own) or JSONL.
    #[arg(long)]
    input: PathBuf,
    /// Ranking method.
    #[arg(long, value_enum)]
    method: RankMethod,
    /// Elo update step K.
    #[arg(long, default_value_t = 4.0)]
    k: f64,
    /// Bootstrap replicates for rating intervals and overlap ranks; 0 = none.
    #[arg(long, default_value_t = 0)]
    bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Coverage of the bootstrap intervals.
    #[arg(long, default_value_t = 0.95)]
    confidence: f64,
    /// Bradley-Terry: pin this item at `--anchor-rating` (default: the mean is pinned).
    #[arg(long)]
    anchor: Option<String>,
    /// Rating of the anchor (the mean or `--anchor`).
    #[arg(long, default_value_t = 1000.0)]
    anchor_rating: f64,
    /// Bradley-Terry: stop when no log-strength moves by more than this.
    #[arg(long, default_value_t = 1e-10)]
    tolerance: f64,
    /// Write the ranking to this CSV file too.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: RankArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.confidence > 0.0 && args.confidence < 1.0,
        "--confidence must be in (0, 1), got {}",
        args.confidence
    );
    let pairs = io::read_pairs(&args.input).context("reading comparisons")?;
    let bootstrap = (args.bootstrap > 0).then_some(BootstrapSpec {
        replicates: args.bootstrap,
        seed: args.seed,
        confidence: args.confidence,
    });
    // One ranking per group (e.g. per prompt) when the input has a group column; a group whose
    // ranking cannot be computed is reported with its reason, never dropped.
    let mut results = Vec::new();
    for (group, part) in pairs.split_by_group() {
        let ranking = match args.method {
            RankMethod::Elo => {
                anyhow::ensure!(
                    args.anchor.is_none(),
                    "--anchor applies to bradley-terry only"
                );
                let config = EloConfig {
                    k: args.k,
                    initial: args.anchor_rating,
                    ..EloConfig::default()
                };
                Ok(rank_elo(&part, &config, bootstrap))
            }
            RankMethod::BradleyTerry => {
                let anchor = match &args.anchor {
                    Some(item) => Anchor::Item(item.clone(), args.anchor_rating),
                    None => Anchor::Mean(args.anchor_rating),
                };
                let config = BtConfig {
                    tolerance: args.tolerance,
                    ..BtConfig::default()
                };
                rank_bradley_terry(&part, &config, &anchor, bootstrap)
            }
        };
        results.push((group, part.games.len(), ranking));
    }
    if pairs.group_of.is_empty() {
        let (_, _, ranking) = results
            .pop()
            .context("an ungrouped input gives one ranking")?;
        let ranking =
            ranking.with_context(|| format!("{}: Bradley-Terry fit", args.input.display()))?;
        if let Some(out) = &args.out {
            write_csv(
                out,
                &header(false),
                ranking.items.iter().map(|i| row(None, i)),
            )?;
        }
        return print_json(
            &json!({ "input": args.input, "comparisons": pairs.games.len(), "ranking": ranking }),
        );
    }
    if let Some(out) = &args.out {
        let rows = results
            .iter()
            .filter_map(|(g, _, r)| r.as_ref().ok().map(|r| (g, r)))
            .flat_map(|(g, r)| r.items.iter().map(move |i| row(Some(g), i)));
        write_csv(out, &header(true), rows)?;
    }
    let failed = results.iter().filter(|r| r.2.is_err()).count();
    let groups: Vec<_> = results
        .into_iter()
        .map(|(group, n, r)| match r {
            Ok(ranking) => json!({ "group": group, "comparisons": n, "ranking": ranking }),
            Err(e) => json!({ "group": group, "comparisons": n, "error": e.to_string() }),
        })
        .collect();
    print_json(&json!({
        "input": args.input,
        "comparisons": pairs.games.len(),
        "groups_ranked": groups.len() - failed,
        "groups_failed": failed,
        "groups": groups,
    }))
}

/// CSV header of a ranking table.
fn header(grouped: bool) -> Vec<String> {
    let mut h: Vec<String> = if grouped {
        vec!["group".into()]
    } else {
        Vec::new()
    };
    h.extend(
        [
            "rank",
            "item",
            "rating",
            "lower",
            "upper",
            "log_strength",
            "games",
            "wins",
            "ties",
        ]
        .map(String::from),
    );
    h
}

/// One CSV row of a ranking table.
fn row(group: Option<&String>, i: &rlhf_raters::ranking::RatedItem) -> Vec<String> {
    let mut r: Vec<String> = group.map(|g| vec![field(g)]).unwrap_or_default();
    r.extend([
        i.rank.to_string(),
        field(&i.item),
        i.rating.to_string(),
        opt(i.lower),
        opt(i.upper),
        opt(i.log_strength),
        i.games.to_string(),
        i.wins.to_string(),
        i.ties.to_string(),
    ]);
    r
}
