//! Language-model commands: `rlhf train lm` (pretraining / SFT), `rlhf model score` (per-sequence
//! loss and perplexity) and `rlhf generate` (KV-cache sampling), on HF GPT-2 directories.
//!
//! Data: plain text (`.txt`: one token stream, packed into `--seq-len` windows), token JSONL
//! (`{"tokens": [...]}` per line, optional `"loss_mask"`), or, with `--sft`, HH-RLHF / TRL JSONL
//! (prompt + chosen response, the loss on the response only unless `--full-loss`).

pub(crate) mod input;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rlhf_data::tokenizer::Tokenizer;
use rlhf_tensor::Device;
use rlhf_tensor::optim::{AdamWConfig, SgdConfig};
use rlhf_transformer::train::evaluate;
use rlhf_transformer::{
    Decay, GenerationConfig, Gpt, GptConfig, OptimizerConfig, Sampling, TrainConfig, TrainEvent,
    Trainer,
};
use serde_json::json;

use super::device::{DeviceArgs, checked, parse_device};
use super::launch::{LaunchArgs, Role, is_writer};
use input::{load_tokenizer, read_examples};

/// Options of `rlhf train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(subcommand)]
    command: TrainCommand,
}

#[derive(Debug, Subcommand)]
enum TrainCommand {
    /// Train a GPT-2 language model: next-token pretraining, or SFT with `--sft`.
    Lm(TrainLmArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OptimizerName {
    Adamw,
    Sgd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DecayName {
    Cosine,
    Linear,
    Constant,
}

/// Options of `rlhf train lm`.
#[derive(Debug, Args)]
struct TrainLmArgs {
    /// Start from this HF GPT-2 directory.
    #[arg(long, conflicts_with = "config")]
    init: Option<PathBuf>,
    /// Start from random weights with this `config.json` (GPT2Config keys).
    #[arg(long, required_unless_present_any = ["init", "resume"])]
    config: Option<PathBuf>,
    /// Continue a run from one of its checkpoints (model + trainer state).
    #[arg(long, conflicts_with_all = ["init", "config"])]
    resume: Option<PathBuf>,
    /// Training data: .txt, token JSONL, or (with --sft) HH/TRL JSONL.
    #[arg(long)]
    data: PathBuf,
    /// Validation data in the same format (default: none).
    #[arg(long)]
    val_data: Option<PathBuf>,
    /// Where the model, tokenizer and trainer state are written.
    #[arg(long)]
    out: PathBuf,
    /// Supervised fine-tuning on prompt/response pairs.
    #[arg(long)]
    sft: bool,
    /// With --sft, score prompt tokens too (default: response tokens only).
    #[arg(long)]
    full_loss: bool,
    /// Recompute the LayerNorm and GELU outputs in the backward instead of keeping them
    /// (less activation memory, the same gradients).
    #[arg(long)]
    recompute: bool,
    /// tokenizer.json to use (default: the model directory's, else GPT-2's r50k_base).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "adamw")]
    optimizer: OptimizerName,
    /// Peak learning rate.
    #[arg(long, default_value_t = 3e-4)]
    lr: f32,
    /// AdamW weight decay, or SGD's.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    momentum: f32,
    /// Optimizer steps.
    #[arg(long, default_value_t = 100)]
    steps: u64,
    #[arg(long, default_value_t = 0)]
    warmup_steps: u64,
    #[arg(long, value_enum, default_value = "cosine")]
    decay: DecayName,
    /// Sequences per micro-batch.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Micro-batches per optimizer step.
    #[arg(long, default_value_t = 1)]
    grad_accum: usize,
    /// Tokens per sequence (packing window for text; truncation otherwise).
    #[arg(long, default_value_t = 128)]
    seq_len: usize,
    /// Clip the global gradient norm (0 = no clipping).
    #[arg(long, default_value_t = 1.0)]
    max_grad_norm: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Validate every N steps (and at the end).
    #[arg(long, default_value_t = 0)]
    eval_every: u64,
    /// Save a checkpoint every N steps (and at the end).
    #[arg(long, default_value_t = 0)]
    save_every: u64,
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    launch: LaunchArgs,
}

/// Options of `rlhf model`.
#[derive(Debug, Args)]
pub struct ModelArgs {
    #[command(subcommand)]
    command: ModelCommand,
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// One JSON line per sequence (mean next-token loss, token count), then a perplexity summary.
    Score(ScoreArgs),
}

#[derive(Debug, Args)]
struct ScoreArgs {
    /// An HF GPT-2 directory.
    #[arg(long)]
    model: PathBuf,
    /// Sequences: text (one per line) or token JSONL.
    #[arg(long)]
    data: PathBuf,
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Where the model runs: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: Device,
}

/// Options of `rlhf generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// An HF GPT-2 directory.
    #[arg(long)]
    model: PathBuf,
    /// One prompt.
    #[arg(long, required_unless_present = "prompts", conflicts_with = "prompts")]
    prompt: Option<String>,
    /// A file of prompts, one per line.
    #[arg(long)]
    prompts: Option<PathBuf>,
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Keep the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Nucleus sampling mass (1 = all).
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Argmax decoding (same as --temperature 0).
    #[arg(long)]
    greedy: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Prompts decoded together.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Where the model runs: cpu, cuda or cuda:N (KV cache and sampling on the device).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: Device,
}

/// Runs `rlhf train ...`.
pub fn execute_train(args: TrainArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        TrainCommand::Lm(args) => train_lm(args),
    }
}

/// Runs `rlhf model ...`.
pub fn execute_model(args: ModelArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ModelCommand::Score(args) => score(args),
    }
}

fn bar(len: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

fn train_lm(args: TrainLmArgs) -> anyhow::Result<ExitCode> {
    let role = args
        .launch
        .role(&args.out, args.device.device, args.batch_size)?;
    if let Role::Launched(code) = role {
        return Ok(code);
    }
    let device = args.device.device()?;
    let model_dir = args.init.as_deref().or(args.resume.as_deref());
    let model = match (&args.init, &args.config, &args.resume) {
        (Some(dir), _, _) | (_, _, Some(dir)) => Gpt::load(dir, device)?,
        (None, Some(config), None) => {
            let text = fs::read_to_string(config)
                .with_context(|| format!("reading {}", config.display()))?;
            let config: GptConfig = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", config.display()))?;
            Gpt::new(config, 0, &mut rlhf_tensor::Rng::new(args.seed), device)?
        }
        _ => bail!("give --init DIR, --config FILE or --resume DIR"),
    };
    let (tok, tok_path) = load_tokenizer(args.tokenizer.as_deref(), model_dir)?;
    let vocab = model.config.vocab_size;
    let read = |p: &Path| {
        read_examples(
            p,
            &tok,
            vocab,
            args.sft,
            !args.full_loss,
            args.seq_len,
            false,
        )
    };
    let train = read(&args.data)?;
    let val = args
        .val_data
        .as_deref()
        .map(read)
        .transpose()?
        .unwrap_or_default();
    let optimizer = match args.optimizer {
        OptimizerName::Adamw => OptimizerConfig::Adamw(AdamWConfig {
            lr: args.lr,
            weight_decay: args.weight_decay,
            ..AdamWConfig::default()
        }),
        OptimizerName::Sgd => OptimizerConfig::Sgd(SgdConfig {
            lr: args.lr,
            momentum: args.momentum,
            weight_decay: args.weight_decay,
            ..SgdConfig::default()
        }),
    };
    let config = TrainConfig {
        optimizer,
        lr: args.lr,
        warmup_steps: args.warmup_steps,
        decay: match args.decay {
            DecayName::Cosine => Decay::Cosine,
            DecayName::Linear => Decay::Linear,
            DecayName::Constant => Decay::Constant,
        },
        total_steps: args.steps,
        batch_size: args.batch_size,
        grad_accum_steps: args.grad_accum,
        seq_len: args.seq_len,
        max_grad_norm: (args.max_grad_norm > 0.0).then_some(args.max_grad_norm),
        seed: args.seed,
        eval_every: args.eval_every,
        save_every: args.save_every,
        pad_token_id: tok.pad_id().min(vocab as u32 - 1),
        precision: args.device.precision,
        recompute: rlhf_transformer::Recompute::from_flag(args.recompute),
    };
    let mut trainer = match &args.resume {
        Some(dir) => Trainer::resume(dir, config, device)?,
        None => Trainer::new(model, config)?,
    };
    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    args.launch.attach(&role, &mut trainer, &args.out, device)?;
    let writer = is_writer(&role);
    let progress = if writer {
        bar(args.steps, "{bar:30} {pos}/{len} steps {msg}")
    } else {
        ProgressBar::hidden()
    };
    progress.set_position(trainer.step());
    let started = Instant::now();
    let mut tokens = 0usize;
    let mut log = Vec::new();
    trainer.fit(&train, &val, Some(&args.out), &mut |event| match event {
        TrainEvent::Step(s) => {
            tokens += s.tokens;
            let rate = tokens as f64 / started.elapsed().as_secs_f64().max(1e-9);
            progress.set_message(format!("loss {:.4} lr {:.2e} {:.0} tok/s", s.loss, s.lr, rate));
            progress.set_position(s.step);
            log.push(json!({"step": s.step, "loss": s.loss, "lr": s.lr, "grad_norm": s.grad_norm, "tokens": s.tokens}));
        }
        TrainEvent::Eval(e) => {
            progress.println(format!("step {}: validation loss {:.4}, perplexity {:.2}", e.step, e.loss, e.perplexity));
            log.push(json!({"step": e.step, "val_loss": e.loss, "val_perplexity": e.perplexity, "val_tokens": e.tokens}));
        }
        TrainEvent::Saved(dir) => progress.println(format!("saved {}", dir.display())),
    })?;
    progress.finish();
    if !writer {
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(p) = tok_path {
        let dst = args.out.join("tokenizer.json");
        if p != dst {
            fs::copy(&p, &dst)
                .with_context(|| format!("copying {} to {}", p.display(), dst.display()))?;
        }
    }
    let mut stdout = std::io::stdout().lock();
    for line in log {
        writeln!(stdout, "{line}")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn score(args: ScoreArgs) -> anyhow::Result<ExitCode> {
    let model = Gpt::load(&args.model, checked(args.device)?)?;
    let (tok, _) = load_tokenizer(args.tokenizer.as_deref(), Some(&args.model))?;
    let n_pos = model.config.n_positions;
    let examples = read_examples(
        &args.data,
        &tok,
        model.config.vocab_size,
        false,
        false,
        n_pos,
        true,
    )?;
    let pad = tok.pad_id().min(model.config.vocab_size as u32 - 1);
    let mut stdout = std::io::stdout().lock();
    let (mut sum, mut count) = (0.0f64, 0usize);
    for (index, example) in examples.iter().enumerate() {
        let (loss, tokens) = evaluate(&model, std::slice::from_ref(example), 1, n_pos, pad)?;
        writeln!(
            stdout,
            "{}",
            json!({"index": index, "loss": loss, "tokens": tokens})
        )?;
        sum += f64::from(loss) * tokens as f64;
        count += tokens;
    }
    let mean = if count == 0 { 0.0 } else { sum / count as f64 };
    writeln!(
        stdout,
        "{}",
        json!({"sequences": examples.len(), "tokens": count, "loss": mean, "perplexity": mean.exp()})
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `rlhf generate`.
pub fn execute_generate(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let model = Gpt::load(&args.model, checked(args.device)?)?;
    let (tok, _) = load_tokenizer(args.tokenizer.as_deref(), Some(&args.model))?;
    let prompts: Vec<String> = match (&args.prompt, &args.prompts) {
        (Some(p), _) => vec![p.clone()],
        (None, Some(file)) => fs::read_to_string(file)
            .with_context(|| format!("reading {}", file.display()))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect(),
        _ => bail!("give --prompt TEXT or --prompts FILE"),
    };
    let vocab = model.config.vocab_size;
    let encoded: Vec<Vec<u32>> = prompts.iter().map(|p| tok.encode_with_special(p)).collect();
    if let Some((i, _)) = encoded
        .iter()
        .enumerate()
        .find(|(_, e)| e.is_empty() || e.iter().any(|&t| t as usize >= vocab))
    {
        bail!(
            "prompt {} is empty or has ids outside the model's vocabulary ({vocab})",
            i + 1
        );
    }
    let sampling = Sampling {
        temperature: if args.greedy { 0.0 } else { args.temperature },
        top_k: args.top_k,
        top_p: args.top_p,
    };
    let eos = model
        .config
        .eos_token_id
        .or(Some(tok.eos_id()))
        .filter(|&e| (e as usize) < vocab);
    let progress = bar(prompts.len() as u64, "{bar:30} {pos}/{len} prompts {msg}");
    let started = Instant::now();
    let mut generated = 0usize;
    let mut stdout = std::io::stdout().lock();
    for (chunk_index, chunk) in encoded.chunks(args.batch_size.max(1)).enumerate() {
        let config = GenerationConfig {
            max_new_tokens: args.max_new_tokens,
            sampling,
            eos_token_id: eos,
            pad_token_id: tok.pad_id().min(vocab as u32 - 1),
            seed: args.seed.wrapping_add(chunk_index as u64),
        };
        let out = model.generate(chunk, &config)?;
        for b in 0..out.batch {
            let seq = out.sequence(b);
            generated += seq.len();
            let row = &out.logprobs[b * out.steps..(b + 1) * out.steps];
            let index = chunk_index * args.batch_size.max(1) + b;
            writeln!(
                stdout,
                "{}",
                json!({
                    "prompt": prompts[index],
                    "completion": tok.decode_skip_special(&seq)?,
                    "tokens": seq,
                    "logprob_sum": row.iter().map(|&x| f64::from(x)).sum::<f64>(),
                    "finished": out.finished[b],
                })
            )?;
        }
        progress.inc(out.batch as u64);
        let rate = generated as f64 / started.elapsed().as_secs_f64().max(1e-9);
        progress.set_message(format!("{rate:.0} tok/s"));
    }
    progress.finish();
    Ok(ExitCode::SUCCESS)
}
