//! The Rust side of `benches/reward_vs_trl.py`: reward-model training throughput (pairs/s) on
//! HH-RLHF-format pairs, the tiny shape (4 layers, 4 heads, n_embd 128, GPT-2 BPE
//! vocabulary + PAD), Bradley–Terry loss, AdamW, clipping at 1, as `rlhf reward train` runs it.
//!
//! `bench_reward DATA.jsonl TOKENS_OUT.jsonl STEPS [BATCH] [MAX_LEN]`
//!
//! Reads DATA (HH-RLHF JSONL, through the same `PreferenceBuilder` and GPT-2 tokenizer as the
//! CLI), writes the token rows the model reads (prompt + response + EOS, cut to MAX_LEN) as
//! `{"chosen_ids": [...], "rejected_ids": [...]}` lines so the TRL side trains on exactly the
//! same tokens, then times STEPS + 1 optimizer steps of BATCH pairs (the first is a warm-up) and
//! prints one JSON line: pairs/s over the timed steps, and every step's seconds.

use std::error::Error;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use rlhf_data::tokenizer::Gpt2Tokenizer;
use rlhf_data::tokenizer::gpt2::{GPT2_EOS_ID, GPT2_PAD_ID};
use rlhf_data::validate::Policy;
use rlhf_reward::dataset::RuleColumns;
use rlhf_reward::objective::{ObjectiveConfig, PreferenceLoss};
use rlhf_reward::{
    PreferenceBuilder, RewardModel, RewardTrainConfig, RewardTrainer, SequenceConfig,
};
use rlhf_tensor::{Device, Rng};
use rlhf_transformer::{Gpt, GptConfig};

fn main() -> Result<(), Box<dyn Error>> {
    // As the `rlhf` binary does: freed buffers stay mapped between steps.
    rlhf_tensor::host_memory::retain_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err(
            "usage: bench_reward DATA.jsonl TOKENS_OUT.jsonl STEPS [BATCH] [MAX_LEN]".into(),
        );
    }
    let steps: usize = args[3].parse()?;
    let batch: usize = args.get(4).map_or(Ok(16), |a| a.parse())?;
    let max_len: usize = args.get(5).map_or(Ok(256), |a| a.parse())?;

    let tokenizer = Gpt2Tokenizer::new()?;
    let sequence = SequenceConfig {
        eos_token_id: GPT2_EOS_ID,
        pad_token_id: GPT2_PAD_ID,
        max_len,
    };
    let mut builder = PreferenceBuilder::new(&tokenizer, sequence.clone(), RuleColumns::Off);
    builder.add_file(Path::new(&args[1]), None, Policy::Skip)?;
    let data = builder.build()?;
    let pairs: Vec<_> = data
        .comparisons
        .into_iter()
        .filter(|c| c.k() == 2 && c.pairs.len() == 1)
        .collect();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&args[2])?);
    for c in &pairs {
        let p = c.pairs[0];
        let line =
            serde_json::json!({"chosen_ids": c.rows[p.better], "rejected_ids": c.rows[p.worse]});
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    let tokens: usize = pairs.iter().flat_map(|c| &c.rows).map(Vec::len).sum();

    let config = GptConfig::new(GPT2_PAD_ID as usize + 1, max_len, 128, 4, 4);
    let mut rng = Rng::new(0);
    let gpt = Gpt::new(config, 0, &mut rng, Device::Cpu)?;
    let model = RewardModel::from_sft(gpt, Vec::new(), sequence, &mut rng)?;
    let train = RewardTrainConfig {
        objective: ObjectiveConfig {
            loss: PreferenceLoss::Bt,
            centering: 0.0,
            rule_weight: 0.0,
        },
        batch_size: batch,
        epochs: 1000,
        ..RewardTrainConfig::default()
    };
    let mut trainer = RewardTrainer::new(model, train)?;
    let mut seconds = Vec::with_capacity(steps);
    let mut timed_pairs = 0usize;
    for i in 0..=steps {
        let start = Instant::now();
        let log = trainer.train_step(&pairs)?;
        if i > 0 {
            seconds.push(start.elapsed().as_secs_f64());
            timed_pairs += log.pairs;
        }
    }
    let total: f64 = seconds.iter().sum();
    let line = serde_json::json!({
        "what": "reward_train",
        "pairs": pairs.len(),
        "mean_row_tokens": tokens as f64 / (2 * pairs.len()).max(1) as f64,
        "truncated_rows": data.stats.truncated_rows,
        "skipped_invalid": data.stats.skipped_invalid,
        "pairs_per_s": timed_pairs as f64 / total,
        "step_seconds": seconds,
    });
    println!("{line}");
    Ok(())
}
