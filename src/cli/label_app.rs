//! The labeling app's commands beside the pipeline stage `rlhf label --run DIR`:
//! `rlhf label serve` (the web app), `rlhf label add-rater`, `rlhf label export` and
//! `rlhf label tasks` (sample K responses per prompt from a checkpoint into a task file).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use rlhf_data::formats::AtomicFile;
use rlhf_data::tokenizer::Tokenizer;
use rlhf_label::load::TaskRole;
use rlhf_label::{ExportFormat, ServeConfig, Store};
use rlhf_tensor::Device;
use rlhf_transformer::{GenerationConfig, Gpt, Sampling};
use serde_json::json;

use super::lm::input::load_tokenizer;
use super::run::OutputArgs;
use super::stages;

/// `rlhf label`: the pipeline stage (`--run DIR`) or one of the labeling app's commands.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LabelCommand {
    #[command(subcommand)]
    app: Option<LabelApp>,
    /// The run directory (after `rlhf sft`): runs pipeline stages 4-5 on it.
    #[arg(long, value_name = "DIR")]
    run: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Subcommand)]
enum LabelApp {
    /// Serve the labeling web app: raters rank responses, gold items screen them.
    Serve(ServeArgs),
    /// Sample K responses per prompt from a checkpoint and write a task file.
    Tasks(TasksArgs),
    /// Export the labels of a database (the same bytes as the admin page's export).
    Export(ExportArgs),
    /// Add a rater to a database and print their token (shown once).
    AddRater(AddRaterArgs),
}

/// Options of `rlhf label serve`.
#[derive(Debug, Args)]
struct ServeArgs {
    /// Tasks to add (task JSONL, or pairs / rankings in any rlhf-data format); optional when
    /// the database already holds tasks. Loading a file twice adds nothing.
    #[arg(long, value_name = "FILE")]
    tasks: Option<PathBuf>,
    /// Gold items (task JSONL with `gold`, or pairs / rankings whose preference is the answer).
    #[arg(long, value_name = "FILE")]
    gold: Option<PathBuf>,
    /// The SQLite database (created if missing).
    #[arg(long, value_name = "FILE")]
    db: PathBuf,
    /// Address to listen on (port 0 picks a free port; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Non-gold labels wanted per task.
    #[arg(long, default_value_t = 3)]
    target_per_task: u32,
    /// Screen out raters whose gold accuracy falls below this ...
    #[arg(long, default_value_t = 0.6)]
    min_gold_accuracy: f64,
    /// ... once they have answered this many gold items.
    #[arg(long, default_value_t = 5)]
    min_gold_items: u32,
    /// Raters at or above this gold accuracy become super raters (high-priority tasks first);
    /// above 1 disables.
    #[arg(long, default_value_t = 0.9)]
    super_accuracy: f64,
    /// Every N-th task is gold while a rater has fewer than --min-gold-items gold answers.
    #[arg(long, default_value_t = 5)]
    gold_every: u32,
    /// Afterwards, the share of gold tasks.
    #[arg(long, default_value_t = 0.1)]
    gold_rate: f64,
    /// An unsubmitted assignment stops holding its task's slot after this many minutes.
    #[arg(long, default_value_t = 30)]
    lease_minutes: u64,
    /// Read the admin token from this file (otherwise one is made and printed at first start).
    #[arg(long, value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// Plain-text instructions shown beside every task.
    #[arg(long, value_name = "FILE")]
    instructions: Option<PathBuf>,
    /// Async worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

/// Options of `rlhf label tasks`.
#[derive(Debug, Args)]
struct TasksArgs {
    /// An HF GPT-2 directory (with tokenizer.json, or give --tokenizer).
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Prompts, one per line.
    #[arg(long, value_name = "FILE")]
    prompts: PathBuf,
    /// How a line becomes the model's prompt: `raw` (as written) or `hh` (the HH-RLHF dialogue
    /// template `\n\nHuman: {line}\n\nAssistant:`, which `rlhf run`'s models are trained on).
    #[arg(long, value_enum, default_value_t = PromptTemplate::Raw)]
    template: PromptTemplate,
    /// Responses per prompt.
    #[arg(long, default_value_t = 4)]
    k: usize,
    /// The task JSONL to write.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Keep the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Nucleus sampling mass (1 = all).
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// How `rlhf label tasks` turns a line of the prompts file into a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PromptTemplate {
    /// The line as written.
    Raw,
    /// The HH-RLHF dialogue template.
    Hh,
}

/// Options of `rlhf label export`.
#[derive(Debug, Args)]
struct ExportArgs {
    /// The SQLite database.
    #[arg(long, value_name = "FILE")]
    db: PathBuf,
    /// hh | trl | labels-csv | kway.
    #[arg(long)]
    format: String,
    /// Write here (atomically) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Keep gold items in the preference exports.
    #[arg(long)]
    include_gold: bool,
}

/// Options of `rlhf label add-rater`.
#[derive(Debug, Args)]
struct AddRaterArgs {
    /// The SQLite database.
    #[arg(long, value_name = "FILE")]
    db: PathBuf,
    /// The rater's name (unique).
    #[arg(long)]
    name: String,
}

/// Runs `rlhf label ...`.
pub fn execute(command: LabelCommand) -> anyhow::Result<ExitCode> {
    match (command.app, command.run) {
        (Some(LabelApp::Serve(args)), _) => serve(args),
        (Some(LabelApp::Tasks(args)), _) => tasks(args),
        (Some(LabelApp::Export(args)), _) => export(args),
        (Some(LabelApp::AddRater(args)), _) => add_rater(args),
        (None, Some(run)) => stages::execute_label(stages::LabelArgs {
            run,
            output: command.output,
        }),
        (None, None) => bail!(
            "give --run DIR (the pipeline stage) or a command: serve, tasks, export, add-rater"
        ),
    }
}

fn open(db: &Path) -> anyhow::Result<Store> {
    Store::open(db).with_context(|| format!("opening {}", db.display()))
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let instructions = match &args.instructions {
        Some(path) => fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .trim()
            .to_string(),
        None => rlhf_label::config::DEFAULT_INSTRUCTIONS.to_string(),
    };
    let config = ServeConfig {
        target_per_task: args.target_per_task,
        gold_every: args.gold_every,
        gold_rate: args.gold_rate,
        min_gold_items: args.min_gold_items,
        min_gold_accuracy: args.min_gold_accuracy,
        super_accuracy: (args.super_accuracy <= 1.0).then_some(args.super_accuracy),
        lease_seconds: args.lease_minutes * 60,
        instructions,
        ..ServeConfig::default()
    };
    config.validate()?;
    let store = Arc::new(open(&args.db)?);
    for (file, role) in [(&args.tasks, TaskRole::Tasks), (&args.gold, TaskRole::Gold)] {
        if let Some(file) = file {
            let summary = store.load_tasks(file, role)?;
            eprintln!(
                "{}: {} tasks read, {} added ({} gold), {} already present",
                file.display(),
                summary.read,
                summary.added,
                summary.added_gold,
                summary.already_present
            );
        }
    }
    let snapshot_tasks = store.snapshot()?.tasks.len();
    if snapshot_tasks == 0 {
        bail!("{} holds no tasks: give --tasks FILE", args.db.display());
    }
    match &args.admin_token_file {
        Some(path) => {
            let token =
                fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            store
                .set_admin_token(token.trim())
                .with_context(|| format!("admin token in {}", path.display()))?;
        }
        None => match store.ensure_admin_token()? {
            Some(token) => println!("admin token (shown once): {token}"),
            None => eprintln!(
                "the admin token was printed at the first start; --admin-token-file sets a new one"
            ),
        },
    }
    rlhf_label::server::run_until_signal(store, config, &args.addr, args.workers, |addr| {
        println!("listening on http://{addr}");
        // The line is how scripts and tests learn the port; a failed flush loses only that.
        let _ = std::io::stdout().flush();
    })?;
    eprintln!(
        "stopped; every acknowledged label is in {}",
        args.db.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn add_rater(args: AddRaterArgs) -> anyhow::Result<ExitCode> {
    let rater = open(&args.db)?.add_rater(&args.name)?;
    println!("{} {} {}", rater.rater_id, args.name, rater.token);
    Ok(ExitCode::SUCCESS)
}

fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let format = ExportFormat::from_name(&args.format)?;
    let bytes = rlhf_label::export(&open(&args.db)?.snapshot()?, format, args.include_gold)?;
    match &args.out {
        Some(path) => {
            let mut file = AtomicFile::create(path)?;
            file.write_all(&bytes)
                .with_context(|| format!("writing {}", path.display()))?;
            file.commit()?;
        }
        None => std::io::stdout().lock().write_all(&bytes)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn tasks(args: TasksArgs) -> anyhow::Result<ExitCode> {
    if !(2..=rlhf_label::task::MAX_RESPONSES).contains(&args.k) {
        bail!(
            "--k: expected 2 to {} responses per prompt, got {}",
            rlhf_label::task::MAX_RESPONSES,
            args.k
        );
    }
    let model = Gpt::load(&args.model, Device::Cpu)?;
    let (tok, _) = load_tokenizer(args.tokenizer.as_deref(), Some(&args.model))?;
    let prompts: Vec<String> = fs::read_to_string(&args.prompts)
        .with_context(|| format!("reading {}", args.prompts.display()))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match args.template {
            PromptTemplate::Raw => l.to_string(),
            PromptTemplate::Hh => rlhf_data::world::prompts::render_prompt(l.trim()),
        })
        .collect();
    if prompts.is_empty() {
        bail!("{}: no prompts (one per line)", args.prompts.display());
    }
    let vocab = model.config.vocab_size;
    let eos = model
        .config
        .eos_token_id
        .or(Some(tok.eos_id()))
        .filter(|&e| (e as usize) < vocab);
    let mut out = AtomicFile::create(&args.out)?;
    let progress = indicatif::ProgressBar::new(prompts.len() as u64);
    for (p, prompt) in prompts.iter().enumerate() {
        let ids = tok.encode_with_special(prompt);
        if ids.is_empty() || ids.iter().any(|&t| t as usize >= vocab) {
            bail!(
                "{}:{}: the prompt is empty or has ids outside the model's vocabulary ({vocab})",
                args.prompts.display(),
                p + 1
            );
        }
        // One batch of K copies of the prompt: K independent samples.
        let batch = vec![ids; args.k];
        let config = GenerationConfig {
            max_new_tokens: args.max_new_tokens,
            sampling: Sampling {
                temperature: args.temperature,
                top_k: args.top_k,
                top_p: args.top_p,
            },
            eos_token_id: eos,
            pad_token_id: tok.pad_id().min(vocab as u32 - 1),
            seed: args.seed.wrapping_add(p as u64),
        };
        let generated = model.generate(&batch, &config)?;
        let responses = (0..generated.batch)
            .map(|b| tok.decode_skip_special(&generated.sequence(b)))
            .collect::<Result<Vec<_>, _>>()?;
        let line = json!({
            "id": format!("p{}", p + 1),
            "prompt": prompt,
            "responses": responses,
        });
        writeln!(out, "{line}").with_context(|| format!("writing {}", args.out.display()))?;
        progress.inc(1);
    }
    out.commit()?;
    progress.finish();
    eprintln!(
        "{}: {} tasks of {} responses",
        args.out.display(),
        prompts.len(),
        args.k
    );
    Ok(ExitCode::SUCCESS)
}
