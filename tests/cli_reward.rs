//! End-to-end tests of `rlhf reward train` and `rlhf reward score` on data from the synthetic
//! world (native JSONL rankings with rule flags, HH-RLHF pairs), a tokenizer trained on its
//! corpus and a tiny GPT-2 as the "SFT" checkpoint.

mod common;

use std::path::{Path, PathBuf};

use common::{failure_stderr, rlhf, s, success_json, tiny_sft, workdir};

use rlhf::data::formats::{OutputFormat, write_file};
use rlhf::data::records::Feedback;
use rlhf::data::world::{LabelTask, World, WorldConfig};

/// World labels as native JSONL (rankings + rule flags) and HH pairs, a tokenizer and a tiny
/// GPT-2 saved as an HF directory.
fn setup(tag: &str) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let dir = workdir("cli-reward", tag);
    let world = World::new(WorldConfig::small()).unwrap();
    let tasks: Vec<LabelTask> = world
        .rl_prompts
        .iter()
        .enumerate()
        .map(|(i, p)| LabelTask {
            item_id: format!("t{i}"),
            prompt: p.render(),
            responses: world.candidate_responses(p, 3, "cli"),
        })
        .collect();
    let labels = world.label_tasks(&tasks, 2).unwrap();
    let mut native: Vec<Feedback> = Vec::new();
    let mut pairs: Vec<Feedback> = Vec::new();
    for (_, _, out) in labels {
        pairs.extend(out.pairwise.iter().cloned().map(Feedback::from));
        native.push(out.ranking.into());
        native.push(out.violations.into());
    }
    let kway = dir.join("world.jsonl");
    write_file(&kway, OutputFormat::Native, native.into_iter().map(Ok)).unwrap();
    let hh = dir.join("pairs.hh.jsonl");
    write_file(&hh, OutputFormat::Hh, pairs.into_iter().map(Ok)).unwrap();
    let sft = tiny_sft(&dir, &world, 64);
    (dir, sft, kway, hh)
}

#[test]
fn train_score_and_resume_exactly() {
    let (dir, sft, kway, hh) = setup("train");
    let out = dir.join("rm");
    let common = [
        "--data",
        s(&kway),
        "--rules",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--lr",
        "1e-3",
        "--save-every",
        "3",
    ];
    let mut args = vec!["reward", "train", "--init", s(&sft), "--out", s(&out)];
    args.extend(common);
    let report = success_json(&rlhf(&args));
    assert_eq!(report["rules"].as_array().unwrap().len(), 6, "{report}");
    assert!(
        report["validation"]["overall"]["accuracy"]
            .as_f64()
            .is_some(),
        "{report}"
    );
    assert!(
        report["normalisation"]["mean_after"]
            .as_f64()
            .unwrap()
            .abs()
            < 1e-3
    );
    assert!(report["data"]["rule_labels_merged"].as_u64().unwrap() > 0);
    for file in [
        "config.json",
        "model.safetensors",
        "reward_config.json",
        "tokenizer.json",
    ] {
        assert!(out.join(file).exists(), "{file}");
    }
    // The trained directory is a reward PPO can optimise: `rlhf ppo --reward DIR`.
    let ppo_config = dir.join("ppo.toml");
    std::fs::write(
        &ppo_config,
        "total_episodes = 4\nper_device_train_batch_size = 4\nnum_ppo_epochs = 1\nresponse_length = 4\nseed = 1\n",
    )
    .unwrap();
    let ppo = rlhf(&[
        "ppo",
        "--policy",
        s(&sft),
        "--reward",
        s(&out),
        "--prompts",
        "world",
        "--out",
        s(&dir.join("ppo")),
        "--config",
        s(&ppo_config),
    ]);
    assert!(
        ppo.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&ppo.stderr)
    );
    let first: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&ppo.stdout)
            .lines()
            .next()
            .expect("rlhf ppo prints a JSON line"),
    )
    .unwrap();
    assert!(
        first["objective/scores"]
            .as_f64()
            .is_some_and(f64::is_finite),
        "{first}"
    );
    // Score the HH pairs (another format, K = 2) with the model.
    let scored = success_json(&rlhf(&[
        "reward",
        "score",
        "--model",
        s(&out),
        "--data",
        s(&hh),
    ]));
    let r = &scored["report"];
    assert!(r["overall"]["pairs"].as_u64().unwrap() > 50, "{scored}");
    for key in [
        "accuracy",
        "ece",
        "ece_symmetric",
        "length_baseline_accuracy",
        "mean_margin",
    ] {
        assert!(r["overall"][key].as_f64().is_some(), "{key}: {scored}");
    }
    assert!(r["per_source"]["pairs.hh.jsonl"].is_object());
    assert!(r["per_k"]["2"].is_object());
    // Resuming from a mid-run checkpoint ends on the same weights, byte for byte.
    let steps = report["steps"].as_u64().unwrap();
    let checkpoint = out.join("training").join("checkpoint-3");
    assert!(checkpoint.exists() && steps > 3);
    let out2 = dir.join("rm2");
    let mut args = vec![
        "reward",
        "train",
        "--resume",
        s(&checkpoint),
        "--out",
        s(&out2),
    ];
    args.extend(common);
    let resumed = success_json(&rlhf(&args));
    assert_eq!(resumed["steps"], report["steps"]);
    let weights = |d: &Path| std::fs::read(d.join("training").join("model.safetensors")).unwrap();
    assert!(weights(&out) == weights(&out2), "resumed weights differ");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let (dir, sft, kway, _) = setup("errors");
    let out = dir.join("rm");
    let missing = dir.join("nope.jsonl");
    let err = failure_stderr(&rlhf(&[
        "reward",
        "train",
        "--init",
        s(&sft),
        "--data",
        s(&missing),
        "--out",
        s(&out),
    ]));
    assert!(err.contains("nope.jsonl"), "{err}");
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, "{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: b\", \"rejected\": \"\\n\\nHuman: a\\n\\nAssistant: c\"}\n{\"chosen\": 3}\n").unwrap();
    let err = failure_stderr(&rlhf(&[
        "reward",
        "train",
        "--init",
        s(&sft),
        "--data",
        s(&bad),
        "--out",
        s(&out),
    ]));
    assert!(err.contains("bad.jsonl:2"), "{err}");
    let err = failure_stderr(&rlhf(&[
        "reward",
        "train",
        "--init",
        s(&sft),
        "--data",
        s(&kway),
        "--out",
        s(&out),
        "--format",
        "csv",
    ]));
    assert!(err.contains("--format csv") && err.contains("hh"), "{err}");
    let err = failure_stderr(&rlhf(&[
        "reward",
        "score",
        "--model",
        s(&sft),
        "--data",
        s(&kway),
    ]));
    assert!(err.contains("reward_config.json"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gated_read_with_lm_loss_and_slow_trunk_trains_and_scores() {
    let (dir, sft, kway, hh) = setup("gated");
    let out = dir.join("rm");
    let report = success_json(&rlhf(&[
        "reward",
        "train",
        "--init",
        s(&sft),
        "--out",
        s(&out),
        "--data",
        s(&kway),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--lr",
        "1e-3",
        "--read",
        "gated-top-margin",
        "--lm-weight",
        "1",
        "--trunk-lr-scale",
        "0.1",
    ]));
    assert!(
        report["final_train_loss"]
            .as_f64()
            .is_some_and(f64::is_finite),
        "{report}"
    );
    // The read is saved with the model, so scoring (and PPO) read the reward the same way.
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("reward_config.json")).unwrap()).unwrap();
    assert_eq!(config["read"], "gated-top-margin", "{config}");
    let scored = success_json(&rlhf(&[
        "reward",
        "score",
        "--model",
        s(&out),
        "--data",
        s(&hh),
    ]));
    assert!(
        scored["report"]["overall"]["accuracy"].as_f64().is_some(),
        "{scored}"
    );
    // An unknown read names the accepted ones; a resumed run cannot change its read.
    let err = failure_stderr(&rlhf(&[
        "reward",
        "train",
        "--init",
        s(&sft),
        "--out",
        s(&out),
        "--data",
        s(&kway),
        "--read",
        "mean",
    ]));
    assert!(err.contains("gated-top-margin"), "{err}");
    let err = failure_stderr(&rlhf(&[
        "reward",
        "train",
        "--resume",
        s(&out),
        "--out",
        s(&out),
        "--data",
        s(&kway),
        "--read",
        "gated-likelihood",
    ]));
    assert!(err.contains("--read") && err.contains("--resume"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
