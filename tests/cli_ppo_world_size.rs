//! `rlhf ppo --world-size 2`: two ranks as two processes split every batch of prompts, rank 0
//! alone writes the run directory, and both ranks end with identical policy weights.

mod common;

use common::{rlhf, s, success_stdout, tiny_sft, workdir};
use rlhf_data::world::{World, WorldConfig};

/// The policy fingerprint a rank printed to its stderr (or log).
fn fingerprint(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("rank policy fingerprint "))
        .unwrap_or_else(|| panic!("no fingerprint line in:\n{text}"))
        .trim()
        .to_string()
}

#[test]
fn two_ranks_split_the_rollouts_and_keep_identical_weights() {
    let dir = workdir("cli-ppo-world-size", "two-ranks");
    let sft = tiny_sft(&dir, &World::new(WorldConfig::default()).unwrap(), 128);
    let out = dir.join("run");
    let config = dir.join("ppo.toml");
    std::fs::write(
        &config,
        "total_episodes = 16\nper_device_train_batch_size = 4\ngradient_accumulation_steps = 2\nnum_ppo_epochs = 1\nresponse_length = 6\nlearning_rate = 1e-3\nseed = 3\n",
    )
    .unwrap();
    let run = rlhf(&[
        "ppo",
        "--policy",
        s(&sft),
        "--reward",
        "world",
        "--prompts",
        "world",
        "--out",
        s(&out),
        "--config",
        s(&config),
        "--world-size",
        "2",
    ]);
    let stdout = success_stdout(&run);
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(summary["steps"], 2);
    assert_eq!(summary["episodes"], 16);
    for file in [
        "policy/model.safetensors",
        "latest",
        "ppo.toml",
        "metrics.jsonl",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let rank1 = std::fs::read_to_string(out.join("rank-1.log")).unwrap();
    assert_eq!(
        fingerprint(&String::from_utf8_lossy(&run.stderr)),
        fingerprint(&rank1),
        "the ranks' policies differ"
    );
}
