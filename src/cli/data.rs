//! `rlhf data ...`: feedback datasets. Filled by the data issue.

use std::process::ExitCode;

use clap::Args;

/// Options of `rlhf data`.
#[derive(Debug, Args)]
pub struct DataArgs {}

/// Not built yet.
pub fn execute(_args: DataArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`rlhf data` is not built yet")
}
