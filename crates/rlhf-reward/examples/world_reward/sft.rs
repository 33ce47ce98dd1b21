//! The SFT trunk of the experiment: a BPE tokenizer trained on the world's corpus, a tiny GPT-2
//! pretrained on the corpus and fine-tuned on the demonstrations (response-only loss).

use std::error::Error;
use std::path::Path;
use std::time::Instant;

use rlhf_data::records::Prompt;
use rlhf_data::tokenizer::{BpeTrainerConfig, Tokenizer, train_bpe};
use rlhf_data::world::World;
use rlhf_reward::dataset::{render_prompt, response_text};
use rlhf_tensor::{Device, Rng};
use rlhf_transformer::{Example, Gpt, GptConfig, TrainConfig, TrainEvent, Trainer, pack};

/// The trunk's shape and its two training runs.
#[derive(Debug, Clone)]
pub struct TrunkConfig {
    /// Seed of the weights and the data order.
    pub seed: u64,
    /// Width of the model.
    pub n_embd: usize,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// BPE vocabulary size (with the special tokens).
    pub vocab_size: usize,
    /// Pretraining steps on the corpus (64-token windows, batch 16).
    pub pretrain_steps: u64,
    /// Peak pretraining learning rate (warmup 20 steps, cosine decay).
    pub pretrain_lr: f32,
    /// SFT steps on the demonstrations (batch 16).
    pub sft_steps: u64,
}

/// Tokens of a prompt and a response in the reward model's convention: the rendered prompt,
/// then `" {response}"` and EOS.
pub fn encode(tok: &dyn Tokenizer, question: &str, response: &str) -> (Vec<u32>, Vec<u32>) {
    let prompt = tok.encode(&render_prompt(&Prompt::user(question)));
    let mut reply = tok.encode(&response_text(response));
    reply.push(tok.eos_id());
    (prompt, reply)
}

/// Trains the tokenizer and the trunk, and saves both (HF GPT-2 directory with
/// `tokenizer.json`) in `dir`.
pub fn build_sft(world: &World, trunk: &TrunkConfig, dir: &Path) -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    let tok = train_bpe(
        world.corpus_texts(),
        &BpeTrainerConfig {
            vocab_size: trunk.vocab_size,
            min_frequency: 2,
        },
    )?;
    let mut config = GptConfig::new(
        tok.vocab_size(),
        64,
        trunk.n_embd,
        trunk.n_layer,
        trunk.n_head,
    );
    config.eos_token_id = Some(tok.eos_id());
    config.pad_token_id = Some(tok.pad_id());
    let gpt = Gpt::new(config, 0, &mut Rng::new(trunk.seed), Device::Cpu)?;
    let mut stream = Vec::new();
    for text in world.corpus_texts() {
        stream.extend(tok.encode(text));
        stream.push(tok.eos_id());
    }
    let windows = pack(&stream, 64)?;
    let mut train = TrainConfig::new(trunk.pretrain_lr, trunk.pretrain_steps, 64);
    train.batch_size = 16;
    train.warmup_steps = 20;
    train.pad_token_id = tok.pad_id();
    train.seed = trunk.seed;
    let mut trainer = Trainer::new(gpt, train)?;
    let progress = indicatif::ProgressBar::new(trunk.pretrain_steps);
    trainer.fit(&windows, &[], None, &mut |e| {
        if let TrainEvent::Step(s) = e {
            progress.set_position(s.step);
        }
    })?;
    progress.finish_and_clear();
    let pretrain_loss = trainer.history().last().map_or(0.0, |s| s.loss);
    let demos: Vec<Example> = world
        .demonstrations
        .iter()
        .map(|d| {
            let (p, r) = encode(&tok, &d.prompt.text, &d.response);
            Example::sft(&p, &r, true)
        })
        .collect();
    let mut sft = TrainConfig::new(3e-4, trunk.sft_steps, 64);
    sft.batch_size = 16;
    sft.pad_token_id = tok.pad_id();
    sft.seed = trunk.seed;
    let mut trainer = Trainer::new(trainer.model, sft)?;
    trainer.fit(&demos, &[], None, &mut |_| {})?;
    trainer.model.save(dir)?;
    tok.save(dir.join("tokenizer.json"))?;
    eprintln!(
        "SFT model in {}: {} windows of 64 tokens, pretrain loss {pretrain_loss:.3} after {} steps, SFT loss {:.3}, {:.0} s",
        dir.display(),
        windows.len(),
        trunk.pretrain_steps,
        trainer.history().last().map_or(0.0, |s| s.loss),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
