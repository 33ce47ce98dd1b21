//! The pipeline's stages as their own commands, reading and writing the same run directory as
//! `rlhf run`, so any stage can be rerun or fed a user's data:
//! `rlhf pretrain` (world, tokenizer, base model), `rlhf sft` (optionally on `--data FILE`),
//! `rlhf label` (sampling, simulated labelers, rater screening, preference dataset), and
//! `rlhf eval` (every policy against the ground truth, the summary and the report).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use rlhf::pipeline::eval::{self, Policy};
use rlhf::pipeline::summary::{RewardModelSummary, Summary};
use rlhf::pipeline::{self, PipelineError, RunContext, RunDir, STAGES};

use super::run::{ConfigArgs, OutputArgs, finish, fresh_dir};

/// Options of `rlhf pretrain`.
#[derive(Debug, Args)]
pub struct PretrainArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Start a new run directory here.
    #[arg(long, required_unless_present = "run", conflicts_with = "run")]
    out: Option<PathBuf>,
    /// Redo the stage in this existing run directory (with its config).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["config", "seed"])]
    run: Option<PathBuf>,
}

/// Options of `rlhf sft`.
#[derive(Debug, Args)]
pub struct SftArgs {
    /// The run directory (after `rlhf pretrain`).
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// Demonstrations: JSONL of {"prompt", "response"} (default: DIR/data/demonstrations.jsonl).
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

/// Options of `rlhf label`.
#[derive(Debug, Args)]
pub struct LabelArgs {
    /// The run directory (after `rlhf sft`).
    #[arg(long, value_name = "DIR")]
    pub(crate) run: PathBuf,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

/// Options of `rlhf eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The run directory (after `rlhf label`).
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// Also evaluate this checkpoint (HF GPT-2 directory with the run's tokenizer): NAME=DIR.
    #[arg(long, value_name = "NAME=DIR")]
    policy: Vec<String>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    output: OutputArgs,
}

/// Opens `dir`'s run and checks that `needs` finished before `stage` runs.
fn open(
    dir: &Path,
    output: &OutputArgs,
    stage: &'static str,
    needs: &[&'static str],
) -> anyhow::Result<RunContext> {
    let progress = output.start()?;
    let mut ctx = RunContext::resume(RunDir::open(dir)?, progress)?;
    output.apply(&mut ctx.config)?;
    for &need in needs {
        if !ctx.dir.is_done(need) {
            return Err(PipelineError::MissingInput {
                stage,
                needs: need,
                path: ctx.dir.path(&format!("stages/{need}.done.json")),
            }
            .into());
        }
    }
    Ok(ctx)
}

/// Runs `rlhf pretrain`.
pub fn execute_pretrain(args: PretrainArgs) -> anyhow::Result<ExitCode> {
    let ctx = match &args.run {
        Some(dir) => {
            let ctx = open(dir, &args.output, "pretrain", &[])?;
            ctx.dir.clear_done(pipeline::pretrain::STAGE)?;
            ctx
        }
        None => {
            let progress = args.output.start()?;
            let out = args.out.clone().unwrap_or_default();
            let mut config = args.config.load()?;
            args.output.apply(&mut config)?;
            RunContext::new(config, fresh_dir(&out)?, progress)?
        }
    };
    finish(
        pipeline::world::world(&ctx).and_then(|w| pipeline::pretrain::pretrain(&ctx, &w)),
        |p| {
            println!("{}", p.model_dir.display());
            Ok(ExitCode::SUCCESS)
        },
    )
}

/// Runs `rlhf sft`.
pub fn execute_sft(args: SftArgs) -> anyhow::Result<ExitCode> {
    let ctx = open(&args.run, &args.output, "sft", &["world", "pretrain"])?;
    ctx.dir.clear_done(pipeline::sft::STAGE)?;
    let result = pipeline::world::world(&ctx)
        .and_then(|w| pipeline::pretrain::pretrain(&ctx, &w))
        .and_then(|base| pipeline::sft::sft(&ctx, &base, args.data.as_deref()));
    finish(result, |s| {
        println!("{}", s.model_dir.display());
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs `rlhf label` (labels, then the raters stage that turns them into preferences).
pub fn execute_label(args: LabelArgs) -> anyhow::Result<ExitCode> {
    let ctx = open(
        &args.run,
        &args.output,
        "label",
        &["world", "pretrain", "sft"],
    )?;
    ctx.dir.clear_done(pipeline::label::STAGE)?;
    ctx.dir.clear_done(pipeline::raters::STAGE)?;
    let result = (|| {
        let world = pipeline::world::world(&ctx)?;
        let base = pipeline::pretrain::pretrain(&ctx, &world)?;
        let sft = pipeline::sft::sft(&ctx, &base, None)?;
        let labels = pipeline::label::label(&ctx, &world, &base, &sft)?;
        pipeline::raters::raters(&ctx, &world, &labels)
    })();
    finish(result, |rated| {
        println!("{}", serde_json::to_string_pretty(&rated.report)?);
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs `rlhf eval`.
pub fn execute_eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let ctx = open(
        &args.run,
        &args.output,
        "eval",
        &["world", "pretrain", "sft", "raters"],
    )?;
    let mut policies = vec![
        Policy::new("base", ctx.dir.model_dir("base")),
        Policy::new("sft", ctx.dir.model_dir("sft")),
    ];
    for name in ["ppo", "ppo_no_ptx"] {
        if ctx.dir.model_dir(name).join("model.safetensors").is_file() {
            policies.push(Policy::new(name, ctx.dir.model_dir(name)));
        }
    }
    for spec in &args.policy {
        let Some((name, dir)) = spec.split_once('=') else {
            anyhow::bail!("--policy {spec}: expected NAME=DIR");
        };
        anyhow::ensure!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "--policy {spec}: NAME must be letters, digits, `_` or `-`"
        );
        policies.push(Policy::new(name, PathBuf::from(dir)));
    }
    let result = (|| {
        let world = pipeline::world::world(&ctx)?;
        let base = pipeline::pretrain::pretrain(&ctx, &world)?;
        let rated = pipeline::raters::load_raters(&ctx, eval::STAGE)?;
        let evals = eval::evaluate(&ctx, &world, &base, &policies, true)?;
        let missing: Vec<&str> = STAGES
            .iter()
            .filter(|s| !s.available)
            .map(|s| s.name)
            .collect();
        let summary = Summary::new(
            ctx.config.seed,
            &evals,
            &rated.report,
            RewardModelSummary::default(),
            &missing,
        );
        pipeline::run::publish(&ctx, &summary, &evals, &rated)?;
        Ok(summary)
    })();
    let json = args.json;
    finish(result, |summary| {
        if json {
            println!("{}", serde_json::to_string(&summary)?);
        } else {
            println!("{}", summary.render());
        }
        Ok(ExitCode::SUCCESS)
    })
}
