//! `rlhf raters agreement|screen|aggregate|rank`: rater-quality statistics from `rlhf-raters`.
//! Each command prints JSON to stdout; per-item (or per-rater) tables go to CSV with `--out`.
//! Parts: `agreement`, `screen`, `aggregate`, `rank` (one file per command) and `output`
//! (JSON and CSV writing).

mod aggregate;
mod agreement;
mod output;
mod rank;
mod screen;

use std::process::ExitCode;

use clap::{Args, Subcommand};

/// Options of `rlhf raters`.
#[derive(Debug, Args)]
pub struct RatersArgs {
    #[command(subcommand)]
    command: RatersCommand,
}

#[derive(Debug, Subcommand)]
enum RatersCommand {
    /// Agreement coefficients (percent, Fleiss, Gwet AC1, Brennan-Prediger, Krippendorff's alpha,
    /// and Cohen/Scott for two raters) of a long-format label file.
    Agreement(agreement::AgreementArgs),
    /// Screen raters against gold labels and select super raters.
    Screen(screen::ScreenArgs),
    /// Aggregate labels into one label per item, with rater skills.
    Aggregate(aggregate::AggregateArgs),
    /// Rank items from pairwise comparisons (Elo or Bradley-Terry).
    Rank(rank::RankArgs),
}

/// Runs an `rlhf raters` subcommand.
pub fn execute(args: RatersArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        RatersCommand::Agreement(a) => agreement::run(a),
        RatersCommand::Screen(a) => screen::run(a),
        RatersCommand::Aggregate(a) => aggregate::run(a),
        RatersCommand::Rank(a) => rank::run(a),
    }?;
    Ok(ExitCode::SUCCESS)
}
