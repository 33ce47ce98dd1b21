//! `rlhf raters agreement`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use rlhf_raters::agreement::breakdown::{item_breakdown, rater_breakdown};
use rlhf_raters::agreement::pairwise::pairwise_agreement;
use rlhf_raters::{AgreementOptions, BootstrapSpec, Level, agreement, io};
use serde_json::json;

use super::output::{field, opt, print_json, write_csv};

/// Options of `rlhf raters agreement`.
#[derive(Debug, Args)]
pub struct AgreementArgs {
    /// Labels: CSV `item,rater,label` (or `task,worker,label`) or JSONL with those keys; gzip ok.
    #[arg(long)]
    input: PathBuf,
    /// Level of Krippendorff's alpha (nominal, ordinal, interval, ratio); all four when left out.
    #[arg(long)]
    level: Option<Level>,
    /// Bootstrap replicates for intervals of alpha and kappa (items resampled); 0 = none.
    #[arg(long, default_value_t = 0)]
    bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Coverage of the bootstrap intervals.
    #[arg(long, default_value_t = 0.95)]
    confidence: f64,
    /// Also report every co-rating rater pair (agreement and Cohen's kappa).
    #[arg(long)]
    pairwise: bool,
    /// Write the per-item breakdown to this CSV file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: AgreementArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.confidence > 0.0 && args.confidence < 1.0,
        "--confidence must be in (0, 1), got {}",
        args.confidence
    );
    let (set, _) =
        io::read_labels(&args.input, None).with_context(|| "reading labels".to_string())?;
    let options = AgreementOptions {
        levels: args.level.map_or_else(|| Level::ALL.to_vec(), |l| vec![l]),
        bootstrap: (args.bootstrap > 0).then_some(BootstrapSpec {
            replicates: args.bootstrap,
            seed: args.seed,
            confidence: args.confidence,
        }),
    };
    let report = agreement(&set, &options);
    let raters = rater_breakdown(&set);
    let pairwise = args.pairwise.then(|| pairwise_agreement(&set));
    if let Some(out) = &args.out {
        let header = [
            "item",
            "ratings",
            "modal_label",
            "modal_share",
            "pairwise_agreement",
        ]
        .map(String::from);
        let rows = item_breakdown(&set).into_iter().map(|i| {
            vec![
                field(&i.item),
                i.ratings.to_string(),
                field(&i.modal_label),
                i.modal_share.to_string(),
                opt(i.pairwise_agreement.value()),
            ]
        });
        write_csv(out, &header, rows)?;
    }
    print_json(&json!({
        "input": args.input,
        "agreement": report,
        "per_rater": raters,
        "pairwise": pairwise,
        "per_item_csv": args.out,
    }))
}
