//! Helpers shared by the facade's end-to-end tests: running the `rlhf` binary, fresh work
//! directories, reading its output, and a tiny "SFT" checkpoint with a tokenizer trained on the
//! synthetic world's corpus.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rlhf::data::tokenizer::{BpeTrainerConfig, Tokenizer, train_bpe};
use rlhf::data::world::World;
use rlhf::tensor::{Device, Rng};
use rlhf::transformer::{Gpt, GptConfig};

/// Runs the `rlhf` binary built for these tests.
pub fn rlhf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rlhf"))
        .args(args)
        .output()
        .expect("the rlhf binary runs")
}

/// A fresh, empty directory `rlhf-{suite}-{tag}-{pid}` under the system's temp dir.
pub fn workdir(suite: &str, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rlhf-{suite}-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The stdout of a run that must have succeeded, parsed as one JSON value.
pub fn success_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The stderr of a run that must have failed.
pub fn failure_stderr(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A random one-layer GPT-2 (16 wide, 2 heads, `n_positions` long) with a 320-token BPE trained
/// on `world`'s corpus, saved as an HF directory `dir/sft` with its `tokenizer.json`.
pub fn tiny_sft(dir: &Path, world: &World, n_positions: usize) -> PathBuf {
    let tok = train_bpe(
        world.corpus_texts(),
        &BpeTrainerConfig {
            vocab_size: 320,
            min_frequency: 2,
        },
    )
    .unwrap();
    let sft = dir.join("sft");
    let mut config = GptConfig::new(tok.vocab_size(), n_positions, 16, 1, 2);
    config.eos_token_id = Some(tok.eos_id());
    let model = Gpt::new(config, 0, &mut Rng::new(0), Device::Cpu).unwrap();
    model.save(&sft).unwrap();
    tok.save(sft.join("tokenizer.json")).unwrap();
    sft
}
