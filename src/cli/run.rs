//! `rlhf run`: the whole pipeline on the synthetic world, and the options every pipeline command
//! shares (config, preset, seed, quiet, device, precision). Every stage (world through eval) is
//! wired; a pipeline that reports a stage it does not have still writes everything and exits
//! with code 3 naming it.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use rlhf_tensor::Device;
use rlhf_transformer::Precision;

use super::device::{checked, parse_device, parse_precision};
use rlhf::pipeline::{self, Halt, PipelineError, Preset, Progress, RunConfig, RunContext, RunDir};

/// Exit code of a run that stopped short of stages this build does not have.
pub const EXIT_MISSING_STAGES: u8 = 3;
/// Exit code of a run halted on purpose (`--halt-after`).
pub const EXIT_HALTED: u8 = 4;

/// A config preset's name.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PresetName {
    /// The full run (two CPU cores, minutes).
    Default,
    /// A tiny run (seconds), for tests.
    Micro,
}

/// The config options shared by `rlhf run` and `rlhf pretrain`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Run config (TOML; fields not given take the preset's values).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The preset the config starts from.
    #[arg(long, value_enum, default_value = "default")]
    pub preset: PresetName,
    /// Seed of every random choice (overrides the config's `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// The output options shared by the pipeline commands.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// No progress bars, warnings only in the log.
    #[arg(long)]
    pub quiet: bool,
    /// Where the models run: cpu, cuda or cuda:N (default: the config's `device`).
    #[arg(long, value_parser = parse_device)]
    pub device: Option<Device>,
    /// Precision of the LM training stages: f32 or bf16 (default: the config's `precision`).
    #[arg(long, value_parser = parse_precision)]
    pub precision: Option<Precision>,
    /// Activation recomputation in the LM training stages (default: the config's `recompute`).
    #[arg(long)]
    pub recompute: bool,
}

/// Options of `rlhf run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Run directory (default: runs/seed-N, or the first free runs/seed-N-M).
    #[arg(long, conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Continue an interrupted run in DIR with the config it started with.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["config", "seed"])]
    resume: Option<PathBuf>,
    /// Print the summary as one JSON object (also written to DIR/summary.json).
    #[arg(long)]
    json: bool,
    /// Print the effective config (TOML) and exit.
    #[arg(long)]
    print_config: bool,
    /// Stop after STAGE, or after a training stage's checkpoint at STEP (STAGE@STEP), as if
    /// killed there (tests of --resume).
    #[arg(long, hide = true, value_name = "STAGE[@STEP]")]
    halt_after: Option<Halt>,
}

impl ConfigArgs {
    /// The effective config: the preset or file, then `--seed`.
    pub fn load(&self) -> anyhow::Result<RunConfig> {
        let mut config = match &self.config {
            Some(path) => {
                let preset = match self.preset {
                    PresetName::Default => Preset::Default,
                    PresetName::Micro => Preset::Micro,
                };
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                pipeline::config::parse_over(preset, &text, &path.display().to_string())?
            }
            None => RunConfig::preset(match self.preset {
                PresetName::Default => Preset::Default,
                PresetName::Micro => Preset::Micro,
            })?,
        };
        if let Some(seed) = self.seed {
            config.seed = seed;
            config.world.seed = seed;
        }
        config.validate()?;
        Ok(config)
    }
}

impl OutputArgs {
    /// Installs the log subscriber and checks the device; returns the progress settings.
    pub fn start(&self) -> anyhow::Result<Progress> {
        let level = if self.quiet {
            tracing::Level::WARN
        } else {
            tracing::Level::INFO
        };
        // A second initialisation (tests calling twice) keeps the first subscriber.
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(level)
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init();
        Ok(Progress::new(self.quiet))
    }

    /// Puts `--device` / `--precision` into `config` and checks that its device is present
    /// ("no CUDA device found: ..." before any work otherwise).
    pub fn apply(&self, config: &mut RunConfig) -> anyhow::Result<()> {
        if let Some(device) = self.device {
            config.device = device.to_string();
        }
        if let Some(precision) = self.precision {
            config.precision = match precision {
                Precision::F32 => "f32".into(),
                Precision::Bf16 => "bf16".into(),
            };
        }
        if self.recompute {
            config.recompute = true;
        }
        config.validate()?;
        checked(config.device()?)?;
        Ok(())
    }
}

/// The first free `runs/seed-N[-M]`.
fn default_out(seed: u64) -> PathBuf {
    let base = PathBuf::from("runs").join(format!("seed-{seed}"));
    (1..)
        .map(|n| {
            if n == 1 {
                base.clone()
            } else {
                PathBuf::from(format!("{}-{n}", base.display()))
            }
        })
        .find(|p| !p.join("config.toml").exists())
        .unwrap_or(base)
}

/// Refuses to start a new run over an existing one.
pub fn fresh_dir(out: &Path) -> anyhow::Result<RunDir> {
    if out.join("config.toml").exists() {
        bail!(
            "{} already holds a run; continue it with --resume {} or choose another --out",
            out.display(),
            out.display()
        );
    }
    Ok(RunDir::create(out)?)
}

/// Maps a pipeline result to the exit code and message.
pub fn finish<T>(
    result: Result<T, PipelineError>,
    on_ok: impl FnOnce(T) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    match result {
        Ok(value) => on_ok(value),
        Err(PipelineError::Halted(at)) => {
            eprintln!("halted after {at} as asked; continue with --resume");
            Ok(ExitCode::from(EXIT_HALTED))
        }
        Err(e) => Err(e.into()),
    }
}

/// Runs `rlhf run`.
pub fn execute(args: RunArgs) -> anyhow::Result<ExitCode> {
    if args.print_config {
        let config = match &args.resume {
            Some(dir) => RunConfig::load(&dir.join("config.toml"))?,
            None => args.config.load()?,
        };
        print!("{}", config.to_toml()?);
        return Ok(ExitCode::SUCCESS);
    }
    let progress = args.output.start()?;
    let mut ctx = match &args.resume {
        Some(dir) => {
            let mut ctx = RunContext::resume(RunDir::open(dir)?, progress)?;
            args.output.apply(&mut ctx.config)?;
            ctx
        }
        None => {
            let mut config = args.config.load()?;
            args.output.apply(&mut config)?;
            let out = args.out.clone().unwrap_or_else(|| default_out(config.seed));
            RunContext::new(config, fresh_dir(&out)?, progress)?
        }
    };
    ctx.halt = args.halt_after.clone();
    tracing::info!("run directory {}", ctx.dir.root().display());
    let json = args.json;
    finish(pipeline::run::run(&ctx), |outcome| {
        if json {
            println!("{}", serde_json::to_string(&outcome.summary)?);
        } else {
            println!("{}", outcome.summary.render());
            println!("report: {}", outcome.report.display());
        }
        if outcome.missing_stages.is_empty() {
            Ok(ExitCode::SUCCESS)
        } else {
            eprintln!(
                "rlhf run: every available stage finished and {} is written, but this build has no {} stage yet (reward model, PPO); exiting with code {EXIT_MISSING_STAGES}",
                ctx.dir.root().display(),
                outcome.missing_stages.join(" and ")
            );
            Ok(ExitCode::from(EXIT_MISSING_STAGES))
        }
    })
}
