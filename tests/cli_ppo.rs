//! End-to-end tests of `rlhf ppo` on a tiny model with a tokenizer trained on the world's corpus:
//! a run with checkpoints, its resume to more episodes, and the errors users meet first.

mod common;

use std::path::Path;

use common::{rlhf, s, tiny_sft, workdir};
use rlhf_data::world::{World, WorldConfig};
use rlhf_tensor::Device;
use rlhf_transformer::Gpt;

fn metrics_steps(out: &Path) -> Vec<u64> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn ppo_runs_checkpoints_and_resumes_on_the_world() {
    let dir = workdir("cli-ppo", "run");
    let sft = tiny_sft(&dir, &World::new(WorldConfig::default()).unwrap(), 128);
    let out = dir.join("run");
    let config = dir.join("ppo.toml");
    let write_config = |episodes: usize| {
        std::fs::write(
            &config,
            format!(
                "total_episodes = {episodes}\nper_device_train_batch_size = 4\nnum_ppo_epochs = 1\nresponse_length = 6\nlearning_rate = 1e-3\nsave_steps = 1\nseed = 3\n"
            ),
        )
        .unwrap()
    };
    write_config(8);
    let args = [
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
    ];
    let first = rlhf(&args);
    assert!(
        first.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&first.stdout)
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(summary["steps"], 2);
    assert_eq!(metrics_steps(&out), vec![1, 2]);
    for file in [
        "policy/model.safetensors",
        "policy/tokenizer.json",
        "critic/model.safetensors",
        "checkpoint-2/ppo_state.json",
        "latest",
        "ppo.toml",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    assert!(
        !out.join("checkpoint-1").exists(),
        "older checkpoints are removed"
    );

    // Running again into the same directory without --resume is refused.
    let again = rlhf(&args);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));

    // Resume to 16 episodes: steps 3 and 4 are appended.
    write_config(16);
    let mut resumed = args.to_vec();
    resumed.extend(["--resume", "--eval"]);
    let second = rlhf(&resumed);
    assert!(
        second.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(metrics_steps(&out), vec![1, 2, 3, 4]);
    // --eval compares SFT and PPO on the world's held-out prompts.
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&second.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["steps"], 4);
    assert_eq!(
        (&lines[1]["eval"], &lines[2]["eval"]),
        (&"sft".into(), &"ppo".into())
    );
    assert_eq!(lines[1]["kl_to_reference"], 0.0);
    assert_eq!(lines[2]["prompts"], 200);
    let policy = Gpt::load(&out.join("policy"), Device::Cpu).unwrap();
    assert_eq!(policy.params.n_scalar_heads(), 0);
}

#[test]
fn ppo_errors_name_what_is_wrong() {
    let dir = workdir("cli-ppo", "errors");
    let sft = tiny_sft(&dir, &World::new(WorldConfig::default()).unwrap(), 128);
    let out = dir.join("run");
    let run = |reward: &str, extra: &[&str]| {
        let mut args = vec![
            "ppo",
            "--policy",
            s(&sft),
            "--reward",
            reward,
            "--prompts",
            "world",
            "--out",
            s(&out),
        ];
        args.extend_from_slice(extra);
        let output = rlhf(&args);
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let err = run("world", &["--resume"]);
    assert!(err.contains("no PPO checkpoint"), "{err}");
    let err = run(s(&dir), &[]);
    assert!(err.contains("reward-model directory"), "{err}");
    let config = dir.join("bad.toml");
    std::fs::write(&config, "cliprange = 0.2\nvf_coeff = 0.1\n").unwrap();
    let err = run("world", &["--config", s(&config)]);
    assert!(
        err.contains("bad.toml") && err.contains("vf_coeff"),
        "{err}"
    );
    std::fs::write(&config, "response_length = 500\n").unwrap();
    let err = run("world", &["--config", s(&config)]);
    assert!(err.contains("n_positions"), "{err}");
}
