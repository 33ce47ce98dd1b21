//! Stage 2: the tokenizer (byte-level BPE trained on the world's corpus) and the base model
//! pretrained on the corpus, which teaches facts and, at the configured rates, the bad habits
//! (wrong answers, fabrication, compliance) that alignment must remove.

use std::path::PathBuf;

use rlhf_data::tokenizer::{BpeTokenizer, BpeTrainerConfig, Tokenizer, train_bpe};
use rlhf_data::world::World;
use rlhf_tensor::Rng;
use rlhf_transformer::{Example, Gpt, GptConfig, pack};

use super::context::RunContext;
use super::error::Result;
use super::lm_train::train_lm;
use super::rundir::Metrics;

/// Stage name.
pub const STAGE: &str = "pretrain";
/// The base model's policy name (and directory under `models/`).
pub const BASE: &str = "base";

/// The tokenizer and the base model.
#[derive(Debug, Clone)]
pub struct Pretrained {
    /// The trained tokenizer (also in `DIR/tokenizer.json` and every model directory).
    pub tokenizer: BpeTokenizer,
    /// `models/base`.
    pub model_dir: PathBuf,
    /// Held-out corpus windows: validation here, the pretraining loss of every policy later.
    pub held_out: Vec<Example>,
    /// The corpus windows the base model trained on (PPO-ptx's pretraining batches).
    pub train_windows: Vec<Example>,
}

/// The corpus as one token stream (each document followed by EOS), cut into `seq_len` windows;
/// the last `val_fraction` of the windows are held out. Returns (train, held out).
pub fn corpus_windows(
    world: &World,
    tok: &dyn Tokenizer,
    seq_len: usize,
    val_fraction: f64,
) -> Result<(Vec<Example>, Vec<Example>)> {
    let mut stream = Vec::new();
    for text in world.corpus_texts() {
        stream.extend(tok.encode(text));
        stream.push(tok.eos_id());
    }
    let mut windows = pack(&stream, seq_len)?;
    let held = ((windows.len() as f64 * val_fraction).round() as usize).clamp(1, windows.len() - 1);
    let held_out = windows.split_off(windows.len() - held);
    Ok((windows, held_out))
}

/// Loads the trained tokenizer of the run.
pub fn load_tokenizer(ctx: &RunContext, stage: &'static str) -> Result<BpeTokenizer> {
    let path = ctx.dir.require("tokenizer.json", stage, STAGE)?;
    Ok(BpeTokenizer::load(&path)?)
}

/// Trains the tokenizer and pretrains the base model (or loads them when the stage is done).
pub fn pretrain(ctx: &RunContext, world: &World) -> Result<Pretrained> {
    let started = std::time::Instant::now();
    let c = &ctx.config;
    let model_dir = ctx.dir.model_dir(BASE);
    if ctx.dir.is_done(STAGE) {
        let tokenizer = load_tokenizer(ctx, STAGE)?;
        let (train_windows, held_out) = corpus_windows(
            world,
            &tokenizer,
            c.pretrain.seq_len,
            c.pretrain.val_fraction,
        )?;
        return Ok(Pretrained {
            tokenizer,
            model_dir,
            held_out,
            train_windows,
        });
    }
    let tokenizer = train_bpe(
        world.corpus_texts(),
        &BpeTrainerConfig {
            vocab_size: c.tokenizer.vocab_size,
            min_frequency: c.tokenizer.min_frequency,
        },
    )?;
    let tok_path = ctx.dir.path("tokenizer.json");
    tokenizer.save(&tok_path)?;
    let (train, held_out) = corpus_windows(
        world,
        &tokenizer,
        c.pretrain.seq_len,
        c.pretrain.val_fraction,
    )?;
    tracing::info!(
        vocab = tokenizer.vocab_size(),
        windows = train.len(),
        held_out = held_out.len(),
        "tokenizer trained, corpus packed"
    );
    let mut config = GptConfig::new(
        tokenizer.vocab_size(),
        c.model.n_positions,
        c.model.n_embd,
        c.model.n_layer,
        c.model.n_head,
    );
    config.eos_token_id = Some(tokenizer.eos_id());
    config.pad_token_id = Some(tokenizer.pad_id());
    let init = Gpt::new(config, 0, &mut Rng::new(c.seed), c.device()?)?;
    let mut metrics = Metrics::new(STAGE);
    metrics.push(
        None,
        &[
            ("tokenizer/vocab_size", tokenizer.vocab_size() as f64),
            ("corpus/train_windows", train.len() as f64),
            ("corpus/held_out_windows", held_out.len() as f64),
        ],
    );
    let outcome = train_lm(
        ctx,
        STAGE,
        &c.pretrain,
        init,
        &train,
        &held_out,
        tokenizer.pad_id(),
        &model_dir,
        &mut metrics,
    )?;
    tokenizer.save(model_dir.join("tokenizer.json"))?;
    if let Some(v) = outcome.validation.last() {
        tracing::info!(val_loss = v.loss, "base model pretrained");
    }
    ctx.dir
        .write_metrics(STAGE, metrics.lines(), &super::stage_names())?;
    ctx.dir.mark_done(STAGE, started.elapsed().as_secs_f64())?;
    ctx.check_halt(STAGE, None)?;
    Ok(Pretrained {
        tokenizer,
        model_dir,
        held_out,
        train_windows: train,
    })
}
