//! `rlhf ppo`: PPO from an SFT model against a reward, with checkpoints, exact resume,
//! `metrics.jsonl` and a progress bar (reward, KL, tokens/s).
//!
//! `--reward world` is the synthetic world's ground-truth scorer (`--world-seed` picks the
//! world); a reward-model directory is refused until `rlhf-reward` can load one.
//! `--prompts world` takes the world's RL prompts; a file holds one question per line (rendered
//! as `\n\nHuman: {question}\n\nAssistant:`) or JSONL with a `prompt` field used verbatim.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use rlhf_data::tokenizer::{AnyTokenizer, Tokenizer};
use rlhf_data::world::prompts::render_prompt;
use rlhf_data::world::{World, WorldConfig};
use rlhf_ppo::checkpoint::has_checkpoint;
use rlhf_ppo::trainer::fingerprint;
use rlhf_ppo::{PpoConfig, PpoPrompt, PpoSetup, SampleSpec, evaluate, progress, train_ppo_rank};
use rlhf_reward::{CriteriaReward, RewardFunction};
use rlhf_tensor::Device;

use super::device::{checked, parse_device};
use super::launch::{LaunchArgs, Role, communicator, is_writer};
use rlhf_transformer::files::write_atomic;
use rlhf_transformer::{Example, Gpt};
use serde_json::json;

use super::lm::input::{load_tokenizer, read_examples};

/// Options of `rlhf ppo`.
#[derive(Debug, Args)]
pub struct PpoArgs {
    /// The SFT model (HF GPT-2 directory): the policy's start and the frozen reference.
    #[arg(long)]
    policy: PathBuf,
    /// Where the policy, reference, critic and reward model run: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: Device,
    /// `world` (the world's ground-truth scorer) or a reward-model directory.
    #[arg(long)]
    reward: String,
    /// `world` (the world's RL prompts), a text file (one question per line) or JSONL
    /// (`{"prompt": ...}` per line, used verbatim).
    #[arg(long)]
    prompts: String,
    /// Run directory: checkpoints, metrics.jsonl, the final policy/ and critic/.
    #[arg(long)]
    out: PathBuf,
    /// PPO settings (TOML, TRL's PPOConfig names); defaults are TRL's.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue the run in --out from its latest checkpoint.
    #[arg(long)]
    resume: bool,
    /// tokenizer.json (default: the policy directory's).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Seed of the synthetic world (with `world` rewards or prompts).
    #[arg(long, default_value_t = 0)]
    world_seed: u64,
    /// Pretraining data for PPO-ptx: `world` (the world's corpus), a text file or token JSONL.
    #[arg(long)]
    ptx_data: Option<String>,
    /// After training, compare SFT and PPO on the world's held-out prompts (needs a world).
    #[arg(long)]
    eval: bool,
    #[command(flatten)]
    launch: LaunchArgs,
}

fn world_reward(world: World) -> Box<dyn RewardFunction> {
    Box::new(CriteriaReward::ground_truth(std::sync::Arc::new(world)))
}

fn read_prompts(path: &Path, tok: &AnyTokenizer) -> anyhow::Result<Vec<PpoPrompt>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let jsonl = path.extension().is_some_and(|e| e == "jsonl");
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        let prompt = if jsonl {
            let value: serde_json::Value = serde_json::from_str(line).with_context(at)?;
            match value.get("prompt").and_then(|p| p.as_str()) {
                Some(p) => p.to_string(),
                None => bail!("{}: field `prompt`: expected a string", at()),
            }
        } else {
            render_prompt(line.trim())
        };
        out.push(PpoPrompt {
            tokens: tok.encode(&prompt),
            text: prompt,
        });
    }
    if out.is_empty() {
        bail!("{}: no prompts", path.display());
    }
    Ok(out)
}

fn world_prompts(prompts: &[rlhf_data::world::WorldPrompt], tok: &AnyTokenizer) -> Vec<PpoPrompt> {
    prompts
        .iter()
        .map(|p| {
            let text = p.render();
            PpoPrompt {
                tokens: tok.encode(&text),
                text,
            }
        })
        .collect()
}

/// Runs `rlhf ppo`.
pub fn execute(args: PpoArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => PpoConfig::from_toml_file(path)?,
        None => PpoConfig::default(),
    };
    let role = args
        .launch
        .role(&args.out, args.device, config.batch_size())?;
    if let Role::Launched(code) = role {
        return Ok(code);
    }
    if args.launch.zero1 {
        bail!("--zero1 is not supported by `rlhf ppo` (its optimizer state is not sharded)");
    }
    let writer = is_writer(&role);
    let device = checked(args.device)?;
    let policy = Gpt::load(&args.policy, device)
        .with_context(|| format!("loading the policy from {}", args.policy.display()))?;
    let (tok, tok_path) = load_tokenizer(args.tokenizer.as_deref(), Some(&args.policy))?;
    let vocab = policy.config.vocab_size;
    let needs_world = args.reward == "world"
        || args.prompts == "world"
        || args.ptx_data.as_deref() == Some("world")
        || args.eval;
    let world = needs_world
        .then(|| {
            World::new(WorldConfig {
                seed: args.world_seed,
                ..WorldConfig::default()
            })
        })
        .transpose()?;
    let reward = match (args.reward.as_str(), &world) {
        ("world", Some(world)) => world_reward(world.clone()),
        (dir, _) => {
            let model = rlhf_reward::ModelReward::load(Path::new(dir), device, 32)
                .with_context(|| {
                    format!("--reward {dir}: expected `world` or a reward-model directory (from `rlhf reward train` or `rlhf run`'s models/rm)")
                })?;
            Box::new(model) as Box<dyn RewardFunction>
        }
    };
    let prompts = match (args.prompts.as_str(), &world) {
        ("world", Some(world)) => world_prompts(&world.rl_prompts, &tok),
        (file, _) => read_prompts(Path::new(file), &tok)?,
    };
    let ptx_data: Vec<Example> = match (args.ptx_data.as_deref(), &world) {
        (None, _) => Vec::new(),
        (Some("world"), Some(world)) => {
            let mut stream = Vec::new();
            for text in world.corpus_texts() {
                stream.extend(tok.encode(text));
                stream.push(tok.eos_id());
            }
            rlhf_transformer::pack(&stream, config.ptx_seq_len)?
        }
        (Some(file), _) => read_examples(
            Path::new(file),
            &tok,
            vocab,
            false,
            false,
            config.ptx_seq_len,
            false,
        )?,
    };
    let eos = policy.config.eos_token_id.unwrap_or(tok.eos_id());
    let pad = tok.pad_id().min(vocab as u32 - 1);
    match (args.resume, has_checkpoint(&args.out)) {
        (true, false) => bail!(
            "--resume: {} holds no PPO checkpoint (no `latest` file)",
            args.out.display()
        ),
        (false, true) => bail!(
            "{} already holds a PPO run; pass --resume to continue it or choose another --out",
            args.out.display()
        ),
        _ => {}
    }
    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    if writer {
        write_atomic(&args.out.join("ppo.toml"), config.to_toml().as_bytes())?;
    }
    let comm = communicator(&role, &args.out, device)?;
    let decode_tok = tok.clone();
    let decode = move |ids: &[u32]| {
        decode_tok
            .decode_skip_special(ids)
            .map_err(|e| e.to_string())
    };
    let spec = SampleSpec {
        response_length: config.response_length,
        temperature: config.temperature as f32,
        stop_token_id: config.stop_token_id.unwrap_or(eos),
        pad_token_id: pad,
        chunk_rows: config.local_rollout_forward_batch_size,
    };
    let sft = args.eval.then(|| policy.clone());
    let setup = PpoSetup {
        config: config.clone(),
        policy,
        reference: None,
        critic_init: None,
        reward,
        decode: Box::new(decode.clone()),
        prompts: prompts.clone(),
        ptx_data,
        eos_token_id: eos,
        pad_token_id: pad,
    };
    let bar = if writer {
        progress::bar(config.total_steps(prompts.len()), 0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let ranked = comm.is_some();
    let outcome = train_ppo_rank(setup, Some(&args.out), args.resume, comm, &mut |event| {
        progress::update(&bar, event)
    })?;
    bar.finish();
    if ranked {
        // The ranks' weights must agree; the launch test compares these lines.
        eprintln!(
            "rank policy fingerprint {:016x}",
            fingerprint(&outcome.policy)
        );
    }
    if !writer {
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(p) = tok_path {
        let dst = args.out.join("policy").join("tokenizer.json");
        fs::copy(&p, &dst)
            .with_context(|| format!("copying {} to {}", p.display(), dst.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    if let Some(last) = outcome.metrics.last() {
        writeln!(
            stdout,
            "{}",
            json!({"steps": last.step, "episodes": last.episodes, "objective/scores": last.metrics.scores, "objective/kl": last.metrics.kl, "policy": args.out.join("policy")})
        )?;
    }
    if let (Some(sft), Some(world)) = (sft, &world) {
        let eval_prompts = world_prompts(&world.eval_prompts, &tok);
        for (name, model) in [("sft", &sft), ("ppo", &outcome.policy)] {
            let mut reward = world_reward(world.clone());
            let report = evaluate(
                model,
                &sft,
                &eval_prompts,
                reward.as_mut(),
                &decode,
                &spec,
                config.seed,
                &[],
            )?;
            writeln!(
                stdout,
                "{}",
                json!({"eval": name, "prompts": report.prompts, "mean_score": report.mean_score, "kl_to_reference": report.kl_to_reference, "stop_rate": report.stop_rate})
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
