//! `rlhf raters ...`: rater statistics. Filled by the raters issue.

use std::process::ExitCode;

use clap::Args;

/// Options of `rlhf raters`.
#[derive(Debug, Args)]
pub struct RatersArgs {}

/// Not built yet.
pub fn execute(_args: RatersArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`rlhf raters` is not built yet")
}
