//! End-to-end: `rlhf run` on the micro preset (every stage), resume after an interruption giving identical results, bad configs failing
//! before training with the field named, the per-stage commands, and `--help` everywhere.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::rlhf;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rlhf-cli-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn micro_run_writes_everything() {
    let dir = temp_dir("micro");
    let out = rlhf(&[
        "run",
        "--preset",
        "micro",
        "--quiet",
        "--json",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("--json prints one JSON object");
    for policy in ["base", "sft", "ppo", "ppo_no_ptx"] {
        let p = &summary["policies"][policy];
        for key in [
            "helpful",
            "honest",
            "harmless",
            "total",
            "kl_to_sft",
            "pretrain_loss",
            "refusal_rate",
            "idk_rate",
        ] {
            assert!(p.get(key).is_some(), "{policy} lacks {key}: {p}");
        }
    }
    assert_eq!(summary["policies"]["sft"]["kl_to_sft"], 0.0);
    for key in ["accuracy", "accuracy_unscreened", "loss", "ece"] {
        let v = &summary["reward_model"][key];
        assert!(
            v.as_f64().is_some_and(f64::is_finite),
            "reward_model.{key}: {v}"
        );
    }
    assert_eq!(summary["missing_stages"], serde_json::json!([]));
    let on_disk: serde_json::Value =
        serde_json::from_slice(&read(&dir.join("summary.json"))).unwrap();
    assert_eq!(on_disk, summary);
    for file in [
        "config.toml",
        "tokenizer.json",
        "models/base/model.safetensors",
        "models/sft/config.json",
        "models/sft/tokenizer.json",
        "labels/feedback.jsonl",
        "raters/report.json",
        "preferences.jsonl",
        "preferences_all.jsonl",
        "eval/sft.jsonl",
        "models/rm/model.safetensors",
        "models/ppo/model.safetensors",
        "models/ppo_no_ptx/model.safetensors",
        "eval/ppo.jsonl",
        "metrics.jsonl",
        "report.md",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    let report = text(&read(&dir.join("report.md")));
    assert!(
        report.contains("## 5. Raters") && report.contains("## Acceptance"),
        "{report}"
    );
    let metrics = text(&read(&dir.join("metrics.jsonl")));
    for stage in [
        "world",
        "pretrain",
        "sft",
        "label",
        "raters",
        "reward_model",
        "ppo",
        "ppo_no_ptx",
        "eval",
    ] {
        assert!(
            metrics.contains(&format!("\"stage\":\"{stage}\"")),
            "no {stage} metrics"
        );
    }
    // The preference dataset is rlhf-data native JSONL: rankings and rule labels per prompt.
    let prefs = text(&read(&dir.join("preferences.jsonl")));
    assert!(prefs.lines().any(|l| l.contains("\"kind\":\"ranking\"")));
    assert!(
        prefs
            .lines()
            .any(|l| l.contains("\"kind\":\"rule_violations\""))
    );
    // The effective config reruns as --config.
    let again = temp_dir("micro-again");
    let cfg = dir.join("config.toml");
    let out = rlhf(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--quiet",
        "--json",
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        read(&again.join("summary.json")),
        read(&dir.join("summary.json"))
    );
    // A second run into the same directory is refused.
    let out = rlhf(&[
        "run",
        "--preset",
        "micro",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--resume"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&again);
}

#[test]
fn resume_after_an_interruption_gives_identical_results() {
    let whole = temp_dir("whole");
    let out = rlhf(&[
        "run",
        "--preset",
        "micro",
        "--seed",
        "7",
        "--quiet",
        "--out",
        whole.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for halt in ["pretrain@6", "sft@4", "label", "reward_model", "ppo"] {
        let cut = temp_dir(&format!("cut-{}", halt.replace('@', "-")));
        let out = rlhf(&[
            "run",
            "--preset",
            "micro",
            "--seed",
            "7",
            "--quiet",
            "--out",
            cut.to_str().unwrap(),
            "--halt-after",
            halt,
        ]);
        assert_eq!(out.status.code(), Some(4), "{halt}: {}", text(&out.stderr));
        assert!(
            !cut.join("summary.json").exists(),
            "{halt}: the run went on"
        );
        let out = rlhf(&["run", "--resume", cut.to_str().unwrap(), "--quiet"]);
        assert_eq!(out.status.code(), Some(0), "{halt}: {}", text(&out.stderr));
        for file in [
            "summary.json",
            "models/sft/model.safetensors",
            "preferences.jsonl",
            "eval/base.jsonl",
            "metrics/pretrain.jsonl",
            "models/rm/model.safetensors",
            "models/ppo/model.safetensors",
            "models/ppo_no_ptx/model.safetensors",
        ] {
            assert_eq!(
                read(&cut.join(file)),
                read(&whole.join(file)),
                "{halt}: {file} differs after resume"
            );
        }
        let _ = std::fs::remove_dir_all(&cut);
    }
    let _ = std::fs::remove_dir_all(&whole);
}

#[test]
fn bad_configs_fail_before_training_naming_the_field() {
    let dir = temp_dir("bad");
    std::fs::create_dir_all(&dir).unwrap();
    for (body, field) in [
        ("[pretrain]\nstepz = 3\n", "pretrain.stepz"),
        ("[sft]\nlr = -1.0\n", "sft.lr"),
        ("[model]\nn_embd = 30\nn_head = 4\n", "model.n_head"),
        ("[world]\ncomply_rate = 3.0\n", "comply_rate"),
        ("[labels]\nk = \"four\"\n", "k"),
    ] {
        let cfg = dir.join("bad.toml");
        std::fs::write(&cfg, body).unwrap();
        let run_dir = dir.join("run");
        let out = rlhf(&[
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            run_dir.to_str().unwrap(),
        ]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{body}: {stderr}");
        assert!(stderr.contains(field), "{body}: {stderr}");
        assert!(
            !run_dir.exists(),
            "{body}: a run directory was made before the config was checked"
        );
    }
    let out = rlhf(&["run", "--config", "/nonexistent/run.toml"]);
    assert!(text(&out.stderr).contains("/nonexistent/run.toml"));
    // A GPU asked for where there is none: a clear error before any work.
    let far = format!("cuda:{}", rlhf_tensor::cuda::gpu_count());
    let out = rlhf(&[
        "run",
        "--preset",
        "micro",
        "--device",
        &far,
        "--out",
        dir.join("gpu").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("--device {far}")), "{stderr}");
    assert!(stderr.contains("no CUDA device found"), "{stderr}");
    assert!(
        !dir.join("gpu").exists(),
        "a run directory was made for a missing GPU"
    );
    let out = rlhf(&["run", "--preset", "micro", "--device", "tpu"]);
    assert!(
        text(&out.stderr).contains("expected cpu, cuda or cuda:N"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn print_config_is_the_effective_toml() {
    let out = rlhf(&["run", "--preset", "micro", "--seed", "9", "--print-config"]);
    assert!(out.status.success());
    let config = text(&out.stdout);
    assert!(
        config.contains("seed = 9") && config.contains("[world]") && config.contains("[ppo]"),
        "{config}"
    );
}

#[test]
fn stage_commands_share_the_run_directory() {
    let dir = temp_dir("stages");
    let d = dir.to_str().unwrap();
    let out = rlhf(&["sft", "--run", d, "--quiet"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("config.toml"),
        "{}",
        text(&out.stderr)
    );
    let out = rlhf(&["pretrain", "--preset", "micro", "--quiet", "--out", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = rlhf(&["label", "--run", d, "--quiet"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("sft"), "{}", text(&out.stderr));
    // A user's demonstrations replace the world's.
    let demos = dir.join("my_demos.jsonl");
    let line =
        r#"{"prompt": "\n\nHuman: What is 1 plus 1?\n\nAssistant:", "response": "1 plus 1 is 2."}"#;
    std::fs::write(&demos, format!("{line}\n{line}\n{line}\n")).unwrap();
    let out = rlhf(&[
        "sft",
        "--run",
        d,
        "--quiet",
        "--data",
        demos.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = rlhf(&["label", "--run", d, "--quiet"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sft_dir = format!("mine={}", dir.join("models/sft").display());
    let out = rlhf(&[
        "eval", "--run", d, "--quiet", "--json", "--policy", &sft_dir,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary["policy_order"],
        serde_json::json!(["base", "sft", "mine"])
    );
    assert_eq!(
        summary["policies"]["mine"]["total"],
        summary["policies"]["sft"]["total"]
    );
    // `rlhf run --resume` finishes the run; a retrained policy is evaluated again, not read back.
    let out = rlhf(&["run", "--resume", d, "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let before = read(&dir.join("eval/sft.jsonl"));
    let base_before = read(&dir.join("eval/base.jsonl"));
    let out = rlhf(&["sft", "--run", d, "--quiet"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = rlhf(&["run", "--resume", d, "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_ne!(
        read(&dir.join("eval/sft.jsonl")),
        before,
        "the retrained SFT model was not re-evaluated"
    );
    assert_eq!(read(&dir.join("eval/base.jsonl")), base_before);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        "run", "pretrain", "sft", "label", "eval", "raters", "data", "train", "model", "generate",
    ] {
        let out = rlhf(&[sub, "--help"]);
        assert!(out.status.success(), "{sub} --help failed");
        assert!(
            text(&out.stdout).contains("Usage"),
            "{sub}: {}",
            text(&out.stdout)
        );
    }
    let out = rlhf(&["--help"]);
    for sub in ["run", "pretrain", "sft", "label", "eval"] {
        assert!(text(&out.stdout).contains(sub), "{sub} missing from --help");
    }
}

#[test]
fn unknown_subcommands_are_usage_errors() {
    let out = rlhf(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("frobnicate"));
}

#[test]
fn killed_mid_pretraining_and_resumed_ends_as_an_uninterrupted_run() {
    // A micro run with a long pretraining stage and frequent checkpoints.
    let dir = temp_dir("kill");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("long.toml");
    std::fs::write(
        &cfg,
        "[pretrain]\nsteps = 1500\nsave_every = 10\neval_every = 50\n",
    )
    .unwrap();
    let whole = dir.join("whole");
    let out = rlhf(&[
        "run",
        "--preset",
        "micro",
        "--config",
        cfg.to_str().unwrap(),
        "--quiet",
        "--out",
        whole.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let cut = dir.join("cut");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rlhf"))
        .args([
            "run",
            "--preset",
            "micro",
            "--config",
            cfg.to_str().unwrap(),
            "--quiet",
            "--out",
            cut.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the rlhf binary starts");
    // Wait for a finished checkpoint, then kill -9 the run in the middle of pretraining.
    let base = cut.join("models/base");
    let started = std::time::Instant::now();
    let has_checkpoint = || {
        std::fs::read_dir(&base).ok().is_some_and(|entries| {
            entries.flatten().any(|e| {
                e.file_name().to_string_lossy().starts_with("checkpoint-")
                    && e.path().join("trainer_state.json").is_file()
            })
        })
    };
    while !has_checkpoint() && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert!(has_checkpoint(), "no checkpoint appeared");
    assert!(
        !cut.join("stages/pretrain.done.json").exists(),
        "pretraining finished before the kill"
    );

    let out = rlhf(&["run", "--resume", cut.to_str().unwrap(), "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for file in [
        "summary.json",
        "models/base/model.safetensors",
        "models/sft/model.safetensors",
        "metrics/pretrain.jsonl",
    ] {
        assert_eq!(
            read(&cut.join(file)),
            read(&whole.join(file)),
            "{file} differs after kill + resume"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn micro_run_with_a_gated_reward_read() {
    // The reward stage's read and trunk options reach the reward model, and PPO and the
    // evaluation run against the gated reward it saves.
    let dir = temp_dir("micro-gated");
    let cfg = dir.with_extension("toml");
    std::fs::write(
        &cfg,
        "[reward_model]\nread = \"gated-top-margin\"\nlm_weight = 1.0\ntrunk_lr_scale = 0.1\n",
    )
    .unwrap();
    let out = rlhf(&[
        "run",
        "--preset",
        "micro",
        "--config",
        cfg.to_str().unwrap(),
        "--quiet",
        "--json",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let saved = text(&read(
        &dir.join("models").join("rm").join("reward_config.json"),
    ));
    assert!(saved.contains("gated-top-margin"), "{saved}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary["policies"]["ppo"]["total"].is_number(), "{summary}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&cfg);
}
