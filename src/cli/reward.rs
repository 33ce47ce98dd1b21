//! Reward-model commands: `rlhf reward train` (a reward model from an SFT checkpoint and
//! preference files, with the K-wise / Bradley–Terry / margin loss, the rule auxiliary,
//! validation, checkpoints, resume and normalisation) and `rlhf reward score` (accuracy, loss,
//! ECE, per-source and per-K numbers and the length baseline of a reward model on labelled
//! files). Both read every format `rlhf-data` reads (HH-RLHF, TRL, OASST, native JSONL, gzip)
//! and print JSON.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use rlhf_data::formats::Format;
use rlhf_data::tokenizer::{AnyTokenizer, BpeTokenizer, Gpt2Tokenizer, Tokenizer};
use rlhf_data::validate::Policy;
use rlhf_reward::eval::evaluate;
use rlhf_reward::normalise::normalise;
use rlhf_reward::{
    Comparison, NormaliseConfig, ObjectiveConfig, PreferenceBuilder, PreferenceData,
    PreferenceLoss, RewardEvent, RewardModel, RewardRead, RewardTrainConfig, RewardTrainer,
    RuleColumns, SequenceConfig, TrunkTraining,
};
use rlhf_tensor::optim::AdamWConfig;
use rlhf_tensor::{Device, Rng};

use super::device::{checked, parse_device};
use rlhf_transformer::{Decay, Gpt, OptimizerConfig};
use serde_json::json;

/// Options of `rlhf reward`.
#[derive(Debug, Args)]
pub struct RewardArgs {
    #[command(subcommand)]
    command: RewardCommand,
}

#[derive(Debug, Subcommand)]
enum RewardCommand {
    /// Train a reward model from an SFT checkpoint on preference data.
    Train(Box<TrainArgs>),
    /// Score labelled preference data with a reward model: accuracy, loss, ECE, per source/K.
    Score(ScoreArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LossName {
    /// Bradley–Terry on every pair.
    Bt,
    /// Bradley–Terry with the data's margins.
    Margin,
    /// InstructGPT K-wise: pairs of a ranking averaged per prompt.
    Kwise,
}

#[derive(Debug, Args)]
struct TrainArgs {
    /// The SFT checkpoint (HF GPT-2 directory) the trunk starts from.
    #[arg(long, visible_alias = "sft", required_unless_present = "resume")]
    init: Option<PathBuf>,
    /// Continue a run from one of its checkpoints (OUT/training/checkpoint-N).
    #[arg(long, conflicts_with = "init")]
    resume: Option<PathBuf>,
    /// Preference files (HH-RLHF, TRL, OASST, native JSONL; .gz read transparently).
    #[arg(long, required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Validation files; without them, --val-fraction of the prompts are held out.
    #[arg(long, num_args = 1..)]
    val_data: Vec<PathBuf>,
    /// Share of prompts held out for validation when no --val-data is given.
    #[arg(long, default_value_t = 0.1)]
    val_fraction: f64,
    /// Read every file in this format instead of detecting it.
    #[arg(long)]
    format: Option<String>,
    /// Leave out invalid records (counted in the report) instead of stopping at the first.
    #[arg(long)]
    skip_invalid: bool,
    /// Where the model goes (checkpoints and trainer state under OUT/training).
    #[arg(long)]
    out: PathBuf,
    /// tokenizer.json (default: the checkpoint's, else GPT-2's r50k_base).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "kwise")]
    loss: LossName,
    /// Train rule heads on the rule-violation records (Sparrow's auxiliary loss).
    #[arg(long)]
    rules: bool,
    /// Weight of the rule loss.
    #[arg(long, default_value_t = 0.5)]
    rule_weight: f64,
    /// Centering coefficient c of c * mean((r_c + r_r)^2).
    #[arg(long, default_value_t = 0.0)]
    centering: f64,
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Comparisons per optimizer step.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Peak learning rate (AdamW).
    #[arg(long, default_value_t = 1e-4)]
    lr: f32,
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,
    #[arg(long, default_value_t = 0)]
    warmup_steps: u64,
    /// Clip the global gradient norm (0 = no clipping).
    #[arg(long, default_value_t = 1.0)]
    max_grad_norm: f32,
    /// Longest row in tokens (default: the model's n_positions).
    #[arg(long)]
    max_len: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Save a checkpoint every N steps (and at every epoch's end).
    #[arg(long, default_value_t = 0)]
    save_every: u64,
    /// Normalise on the best responses of these files (default: of the training data).
    #[arg(long, num_args = 1..)]
    reference: Vec<PathBuf>,
    /// Also scale the reference rewards to this standard deviation.
    #[arg(long)]
    target_std: Option<f64>,
    /// Leave the reward head as trained.
    #[arg(long, conflicts_with_all = ["reference", "target_std"])]
    no_normalise: bool,
    /// Where the reward is read: eos (the head at the last token, InstructGPT's), or the EOS plus
    /// a learned gate over the trunk's own token likelihoods: gated-likelihood,
    /// gated-probability, gated-centred-likelihood, gated-top-margin, gated-top-choice,
    /// gated-top-ratio, gated-top-gap, gated-top-margin-ratio (rlhf_reward::read).
    #[arg(long, default_value = "eos", value_parser = parse_read, conflicts_with = "resume")]
    read: RewardRead,
    /// Weight of an auxiliary next-token loss on the best responses (keeps the trunk's
    /// knowledge; 0 = off).
    #[arg(long, default_value_t = 0.0, conflicts_with = "resume")]
    lm_weight: f64,
    /// The trunk's learning rate as a fraction of --lr (the heads take --lr; 0 freezes it). A
    /// resumed run keeps the read and trunk settings it started with.
    #[arg(long, default_value_t = 1.0, conflicts_with = "resume")]
    trunk_lr_scale: f32,
    /// Where the model runs: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: Device,
}

/// `--read`: one of [`RewardRead`]'s names.
fn parse_read(name: &str) -> Result<RewardRead, String> {
    RewardRead::from_name(name).ok_or_else(|| {
        format!(
            "unknown read {name:?}, expected eos, gated-likelihood, gated-probability, \
             gated-centred-likelihood, gated-top-margin, gated-top-choice, gated-top-ratio, \
             gated-top-gap or gated-top-margin-ratio"
        )
    })
}

#[derive(Debug, Args)]
struct ScoreArgs {
    /// A reward model directory written by `rlhf reward train`.
    #[arg(long)]
    model: PathBuf,
    /// Labelled preference files.
    #[arg(long, required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    #[arg(long)]
    format: Option<String>,
    /// Leave out invalid records (counted in the report) instead of stopping at the first.
    #[arg(long)]
    skip_invalid: bool,
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Comparisons per forward.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Where the model runs: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: Device,
}

/// Runs `rlhf reward ...`.
pub fn execute(args: RewardArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        RewardCommand::Train(args) => train(*args),
        RewardCommand::Score(args) => score(args),
    }
}

/// `--tokenizer`, else the first `tokenizer.json` in `dir` or its two parents (a checkpoint
/// `OUT/training/checkpoint-N` finds `OUT/training`'s), else GPT-2's.
fn tokenizer(
    explicit: Option<&Path>,
    dir: &Path,
) -> anyhow::Result<(AnyTokenizer, Option<PathBuf>)> {
    let path = explicit.map(Path::to_path_buf).or_else(|| {
        dir.ancestors()
            .take(3)
            .map(|d| d.join("tokenizer.json"))
            .find(|p| p.exists())
    });
    Ok(match path {
        Some(p) => (
            AnyTokenizer::Bpe(
                BpeTokenizer::load(&p)
                    .with_context(|| format!("loading tokenizer {}", p.display()))?,
            ),
            Some(p),
        ),
        None => (AnyTokenizer::Gpt2(Gpt2Tokenizer::new()?), None),
    })
}

fn format(name: Option<&str>) -> anyhow::Result<Option<Format>> {
    name.map(|n| {
        Format::from_name(n).with_context(|| {
            let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
            format!("--format {n}: expected one of {}", names.join(", "))
        })
    })
    .transpose()
}

/// Reads `files` into comparisons.
fn read(
    files: &[PathBuf],
    (format, policy): (Option<Format>, Policy),
    tok: &AnyTokenizer,
    sequence: &SequenceConfig,
    rules: RuleColumns,
) -> anyhow::Result<PreferenceData> {
    let mut builder = PreferenceBuilder::new(tok, sequence.clone(), rules);
    for file in files {
        builder
            .add_file(file, format, policy)
            .with_context(|| format!("reading {}", file.display()))?;
    }
    let data = builder.build()?;
    if !data.comparisons.iter().any(|c| !c.pairs.is_empty()) {
        let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        bail!(
            "{}: no preference (pairwise or ranking record with a pair) among {} records used; ignored: {:?}",
            files.join(", "),
            data.comparisons.len(),
            data.stats.ignored
        );
    }
    Ok(data)
}

fn check_vocab(tok: &AnyTokenizer, gpt: &Gpt) -> anyhow::Result<()> {
    if tok.vocab_size() > gpt.config.vocab_size {
        bail!(
            "the tokenizer has {} tokens, the model's vocabulary {}; give the matching --tokenizer",
            tok.vocab_size(),
            gpt.config.vocab_size
        );
    }
    Ok(())
}

fn train(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let device = checked(args.device)?;
    let model_dir = args
        .init
        .as_deref()
        .or(args.resume.as_deref())
        .context("give --init DIR or --resume DIR")?;
    let (tok, tok_path) = tokenizer(args.tokenizer.as_deref(), model_dir)?;
    let policy = if args.skip_invalid {
        Policy::Skip
    } else {
        Policy::FailFast
    };
    let format = (format(args.format.as_deref())?, policy);
    let config = RewardTrainConfig {
        objective: ObjectiveConfig {
            loss: match args.loss {
                LossName::Bt => PreferenceLoss::Bt,
                LossName::Margin => PreferenceLoss::Margin,
                LossName::Kwise => PreferenceLoss::Kwise,
            },
            centering: args.centering,
            rule_weight: args.rule_weight,
        },
        optimizer: OptimizerConfig::Adamw(AdamWConfig {
            lr: args.lr,
            weight_decay: args.weight_decay,
            ..AdamWConfig::default()
        }),
        lr: args.lr,
        warmup_steps: args.warmup_steps,
        decay: Decay::Cosine,
        epochs: args.epochs,
        batch_size: args.batch_size,
        eval_batch_size: args.batch_size,
        max_grad_norm: (args.max_grad_norm > 0.0).then_some(args.max_grad_norm),
        seed: args.seed,
        save_every: args.save_every,
    };
    // The model first (its rules and token convention decide how the data is read).
    let (model, rules) = match (&args.init, &args.resume) {
        (_, Some(dir)) => {
            let model = RewardModel::load(dir, device)
                .with_context(|| format!("loading {}", dir.display()))?;
            check_vocab(&tok, &model.gpt)?;
            let rules = RuleColumns::Fixed(model.head.rules.clone());
            (None, rules)
        }
        (Some(dir), None) => {
            let gpt =
                Gpt::load(dir, device).with_context(|| format!("loading {}", dir.display()))?;
            check_vocab(&tok, &gpt)?;
            let rules = if args.rules {
                RuleColumns::Discover
            } else {
                RuleColumns::Off
            };
            (Some(gpt), rules)
        }
        (None, None) => bail!("give --init DIR or --resume DIR"),
    };
    let n_positions = match (&model, &args.resume) {
        (Some(gpt), _) => gpt.config.n_positions,
        (None, Some(dir)) => rlhf_transformer::checkpoint::load_config(dir)?.n_positions,
        (None, None) => unreachable!("checked above"),
    };
    let sequence = SequenceConfig {
        eos_token_id: tok.eos_id(),
        pad_token_id: tok.pad_id(),
        max_len: args.max_len.unwrap_or(n_positions).min(n_positions),
    };
    let data = read(&args.data, format, &tok, &sequence, rules.clone())?;
    let (train, validation): (Vec<Comparison>, Vec<Comparison>) = if args.val_data.is_empty() {
        data.split(args.val_fraction)?
    } else {
        let fixed = RuleColumns::Fixed(data.rules.clone());
        let val = if data.rules.is_empty() {
            RuleColumns::Off
        } else {
            fixed
        };
        (
            data.comparisons.clone(),
            read(&args.val_data, format, &tok, &sequence, val)?.comparisons,
        )
    };
    if train.is_empty() {
        bail!("every comparison fell into validation; lower --val-fraction or give --val-data");
    }
    let mut trainer = match (model, &args.resume) {
        (Some(gpt), _) => {
            let mut rng = Rng::new(args.seed).fork(1);
            let model = RewardModel::from_sft(gpt, data.rules.clone(), sequence.clone(), &mut rng)?
                .with_read(args.read)?;
            let mut trainer = RewardTrainer::new(model, config)?;
            trainer.set_trunk_training(TrunkTraining {
                lm_weight: args.lm_weight,
                trunk_lr_scale: args.trunk_lr_scale,
                ..TrunkTraining::default()
            })?;
            trainer
        }
        (None, Some(dir)) => RewardTrainer::resume(dir, config, device)
            .with_context(|| format!("resuming from {}", dir.display()))?,
        (None, None) => unreachable!("checked above"),
    };
    trainer.progress = true;
    let training_dir = args.out.join("training");
    fs::create_dir_all(&training_dir)
        .with_context(|| format!("creating {}", training_dir.display()))?;
    let started = std::time::Instant::now();
    let mut pairs = 0usize;
    trainer.fit(&train, &validation, Some(&training_dir), &mut |e| {
        if let RewardEvent::Step(s) = e {
            pairs += s.pairs;
        }
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let mut model = trainer.model.clone();
    let normalisation = if args.no_normalise {
        None
    } else {
        let rows: Vec<Vec<u32>> = if args.reference.is_empty() {
            best_rows(&train)
        } else {
            let reference = read(&args.reference, format, &tok, &sequence, RuleColumns::Off)?;
            best_rows(&reference.comparisons)
        };
        let target = NormaliseConfig {
            target_mean: 0.0,
            target_std: args.target_std,
        };
        Some(normalise(&mut model, &rows, &target, args.batch_size)?)
    };
    model.save(&args.out)?;
    if let Some(p) = tok_path {
        let dst = args.out.join("tokenizer.json");
        if p != dst {
            fs::copy(&p, &dst)
                .with_context(|| format!("copying {} to {}", p.display(), dst.display()))?;
        }
    }
    let report = json!({
        "out": args.out,
        "train_comparisons": train.len(),
        "validation_comparisons": validation.len(),
        "rules": data.rules,
        "data": data.stats,
        "steps": trainer.step(),
        "final_train_loss": trainer.history().last().map(|s| s.loss),
        "validation": trainer.validation_history().last(),
        "normalisation": normalisation,
        "train_pairs_per_second": pairs as f64 / seconds.max(1e-9),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

/// The best-ranked response's row of every comparison with a pair (the chosen ones).
fn best_rows(data: &[Comparison]) -> Vec<Vec<u32>> {
    data.iter()
        .filter(|c| !c.pairs.is_empty())
        .flat_map(|c| {
            c.ranks
                .iter()
                .zip(&c.rows)
                .filter(|(r, _)| **r == 0)
                .map(|(_, row)| row.clone())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn score(args: ScoreArgs) -> anyhow::Result<ExitCode> {
    let model = RewardModel::load(&args.model, checked(args.device)?)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let (tok, _) = tokenizer(args.tokenizer.as_deref(), &args.model)?;
    check_vocab(&tok, &model.gpt)?;
    let policy = if args.skip_invalid {
        Policy::Skip
    } else {
        Policy::FailFast
    };
    let format = (format(args.format.as_deref())?, policy);
    let rules = if model.head.rules.is_empty() {
        RuleColumns::Off
    } else {
        RuleColumns::Fixed(model.head.rules.clone())
    };
    let data = read(&args.data, format, &tok, &model.head.sequence, rules)?;
    let objective = ObjectiveConfig::default();
    let report = evaluate(&model, &data.comparisons, &objective, args.batch_size)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "model": args.model,
            "files": args.data,
            "data": data.stats,
            "report": report,
        }))?
    );
    Ok(ExitCode::SUCCESS)
}
