//! `rlhf run`: the whole pipeline. Until every stage exists, it says which do and fails.

use std::process::ExitCode;

use clap::Args;

/// Options of `rlhf run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Seed from which every random choice flows.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// The pipeline's stages and whether this build has them as a library and command. The reward
/// model's and PPO's losses exist (`rlhf-reward`, `rlhf-ppo`), their trainers do not yet.
const STAGES: &[(&str, bool)] = &[
    ("tensors (rlhf-tensor, CPU)", true),
    (
        "synthetic HHH world and simulated labelers (rlhf-data)",
        true,
    ),
    (
        "pretraining and SFT (rlhf-transformer, `rlhf train lm`)",
        true,
    ),
    (
        "rater screening and aggregation (rlhf-raters, `rlhf raters`)",
        true,
    ),
    ("reward model (rlhf-reward)", false),
    ("PPO with a KL penalty (rlhf-ppo)", false),
    ("evaluation against ground truth", false),
];

/// Reports the stages that exist and fails, since the pipeline is not complete yet.
pub fn execute(args: RunArgs) -> anyhow::Result<ExitCode> {
    eprintln!(
        "rlhf run (seed {}): the pipeline is not complete yet.",
        args.seed
    );
    for (stage, ready) in STAGES {
        let mark = if *ready { "ready  " } else { "missing" };
        eprintln!("  [{mark}] {stage}");
    }
    anyhow::bail!("`rlhf run` needs every stage above; the missing ones are still being built")
}
