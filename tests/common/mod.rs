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

/// Runs the `rlhf` binary: `$RLHF_BIN` when set (the GPU bundle ships the binary beside its
/// test binaries), else the one cargo built for these tests.
pub fn rlhf(args: &[&str]) -> Output {
    let bin = std::env::var_os("RLHF_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_rlhf")));
    Command::new(&bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()))
}

/// The stdout of a run that must have succeeded.
pub fn success_stdout(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `dir/config.json`: a GPT-2 config of `vocab` tokens, `positions` long, `embd` wide, with
/// `layers` blocks of `heads` heads.
pub fn model_config(
    dir: &Path,
    vocab: usize,
    positions: usize,
    embd: usize,
    layers: usize,
    heads: usize,
) -> PathBuf {
    let path = dir.join("config.json");
    let json = serde_json::json!({
        "vocab_size": vocab, "n_positions": positions, "n_embd": embd,
        "n_layer": layers, "n_head": heads,
    });
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

/// `dir/tokens.jsonl`: `lines` lines `{"tokens": [...]}`, line `i` holding `tokens(i)`.
pub fn token_jsonl(dir: &Path, lines: usize, tokens: impl Fn(usize) -> Vec<usize>) -> PathBuf {
    let path = dir.join("tokens.jsonl");
    let text: Vec<String> = (0..lines)
        .map(|i| serde_json::json!({ "tokens": tokens(i) }).to_string())
        .collect();
    std::fs::write(&path, text.join("\n")).unwrap();
    path
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
