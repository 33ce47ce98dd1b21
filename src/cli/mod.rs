//! Command-line parsing and dispatch. Parts:
//! - `run`: the whole pipeline (`rlhf run`);
//! - `stages`: its stages alone (`rlhf pretrain`, `rlhf sft`, `rlhf label`, `rlhf eval`);
//! - `label_app`: the labeling web app (`rlhf label serve|tasks|export|add-rater`);
//! - `raters`: rater statistics (`rlhf raters ...`);
//! - `data`: feedback datasets (`rlhf data ...`);
//! - `lm`: language models (`rlhf train lm`, `rlhf model score`, `rlhf generate`);
//! - `launch`: `--world-size N`, one process per data-parallel rank.

mod data;
mod device;
mod label_app;
mod launch;
mod lm;
mod ppo;
mod raters;
mod reward;
mod run;
mod stages;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Align language models with human feedback, end to end.
#[derive(Debug, Parser)]
#[command(name = "rlhf", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole RLHF pipeline: pretrain, SFT, labels, reward model, PPO, evaluation.
    Run(run::RunArgs),
    /// Pipeline stage 1-2: build the world, train the tokenizer and pretrain the base model.
    Pretrain(stages::PretrainArgs),
    /// Pipeline stage 3: fine-tune the base model on demonstrations.
    Sft(stages::SftArgs),
    /// Pipeline stages 4-5 (`--run DIR`: sample, label, screen raters, build the preference
    /// dataset), or the labeling web app: `serve`, `tasks`, `export`, `add-rater`.
    Label(label_app::LabelCommand),
    /// Pipeline stage 8: evaluate every policy against the ground truth; summary and report.
    Eval(stages::EvalArgs),
    /// Rater-quality statistics: agreement, screening, aggregation, ranking.
    Raters(raters::RatersArgs),
    /// Human-feedback datasets: validate, describe, convert.
    Data(data::DataArgs),
    /// Train models: `rlhf train lm` (pretraining or SFT of a GPT-2 language model).
    Train(lm::TrainArgs),
    /// Inspect models: `rlhf model score` (per-sequence loss and perplexity).
    Model(lm::ModelArgs),
    /// Continue prompts with a GPT-2 model (KV cache; greedy, temperature, top-k, top-p).
    Generate(lm::GenerateArgs),
    /// Reward models: `rlhf reward train` (from an SFT checkpoint), `rlhf reward score`.
    Reward(reward::RewardArgs),
    /// PPO from an SFT model against a reward (checkpoints, exact resume, metrics.jsonl).
    Ppo(ppo::PpoArgs),
}

/// Parses the command line, runs the command, and reports any error with its full context.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Training and decoding free and re-allocate the same buffers every step: keep them mapped.
    rlhf_tensor::host_memory::retain_freed_memory();
    let result = match cli.command {
        Command::Run(args) => run::execute(args),
        Command::Pretrain(args) => stages::execute_pretrain(args),
        Command::Sft(args) => stages::execute_sft(args),
        Command::Label(args) => label_app::execute(args),
        Command::Eval(args) => stages::execute_eval(args),
        Command::Raters(args) => raters::execute(args),
        Command::Data(args) => data::execute(args),
        Command::Train(args) => lm::execute_train(args),
        Command::Model(args) => lm::execute_model(args),
        Command::Generate(args) => lm::execute_generate(args),
        Command::Reward(args) => reward::execute(args),
        Command::Ppo(args) => ppo::execute(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
