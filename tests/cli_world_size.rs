//! `rlhf train lm --world-size N [--zero1]`: one process per rank on the CPU (TCP ring).
//! World size 1 is the single-process run bit for bit; 2 ranks follow its loss curve; ZeRO-1
//! gives the same weights; a rank that dies makes the launcher fail naming it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{failure_stderr, model_config, rlhf, s, token_jsonl, workdir};

/// A two-block model config and token JSONL of varied lengths in `dir`.
fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let config = model_config(dir, 20, 32, 16, 2, 2);
    let data = token_jsonl(dir, 24, |i| {
        (0..6 + i % 7)
            .map(|j| (i * 3 + j * (1 + i % 4)) % 20)
            .collect()
    });
    (config, data)
}

fn train(config: &Path, data: &Path, out: &Path, steps: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "lm",
        "--config",
        s(config),
        "--data",
        s(data),
        "--out",
        s(out),
        "--steps",
        steps,
        "--batch-size",
        "5",
        "--seq-len",
        "12",
        "--lr",
        "0.02",
        "--seed",
        "3",
    ];
    args.extend_from_slice(extra);
    rlhf(&args)
}

/// The (loss, grad_norm, tokens) of every step line.
fn curve(out: &Output) -> Vec<(f64, f64, u64)> {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("loss").is_some())
        .map(|v| {
            (
                v["loss"].as_f64().unwrap(),
                v["grad_norm"].as_f64().unwrap(),
                v["tokens"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn weights(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("model.safetensors")).unwrap()
}

#[test]
fn world_size_one_two_and_zero1_against_one_process() {
    let dir = workdir("cli-world-size", "curves");
    let (config, data) = setup(&dir);
    let single = train(&config, &data, &dir.join("single"), "4", &[]);
    let one = train(
        &config,
        &data,
        &dir.join("one"),
        "4",
        &["--world-size", "1"],
    );
    assert_eq!(single.stdout, one.stdout);
    assert_eq!(weights(&dir.join("single")), weights(&dir.join("one")));

    let reference = curve(&single);
    for (tag, extra) in [
        ("two", &["--world-size", "2"][..]),
        ("zero1", &["--world-size", "2", "--zero1"][..]),
    ] {
        let out = dir.join(tag);
        let run = train(&config, &data, &out, "4", extra);
        let got = curve(&run);
        assert_eq!(got.len(), reference.len(), "{tag}");
        for ((loss, norm, tokens), (ref_loss, ref_norm, ref_tokens)) in got.iter().zip(&reference) {
            assert_eq!(tokens, ref_tokens, "{tag}: global token count");
            assert!(
                ((loss - ref_loss) / ref_loss).abs() < 1e-5,
                "{tag}: {loss} vs {ref_loss}"
            );
            assert!(
                ((norm - ref_norm) / ref_norm).abs() < 1e-5,
                "{tag}: {norm} vs {ref_norm}"
            );
        }
        // Rank 0 wrote the checkpoint in the single-process format; rank 1 only its log.
        assert!(out.join("trainer_state.safetensors").exists());
        let log = std::fs::read_to_string(out.join("rank-1.log")).unwrap();
        assert!(log.contains("rank 1 of 2"), "{log}");
        // The checkpoint resumes in one process (it prints the one new step).
        let resumed = rlhf(&[
            "train",
            "lm",
            "--resume",
            s(&out),
            "--data",
            s(&data),
            "--out",
            s(&out),
            "--steps",
            "5",
            "--batch-size",
            "5",
            "--seq-len",
            "12",
            "--lr",
            "0.02",
            "--seed",
            "3",
        ]);
        assert_eq!(curve(&resumed).len(), 1, "{tag}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_rank_that_dies_fails_the_launch_naming_it() {
    let dir = workdir("cli-world-size", "dies");
    let (config, data) = setup(&dir);
    let out = dir.join("run");
    let launcher = Command::new(env!("CARGO_BIN_EXE_rlhf"))
        .args([
            "train",
            "lm",
            "--config",
            s(&config),
            "--data",
            s(&data),
            "--out",
            s(&out),
            "--steps",
            "1000000",
            "--batch-size",
            "4",
            "--seq-len",
            "12",
            "--world-size",
            "2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Rank 1 logs its pid first; kill it once it is training.
    let log = out.join("rank-1.log");
    let start = Instant::now();
    let pid = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(pid) = text.split("pid ").nth(1).and_then(|r| r.split(',').next()) {
            break pid.trim().to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "rank 1 never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap()
            .success()
    );
    let output = launcher.wait_with_output().unwrap();
    let stderr = failure_stderr(&output);
    assert!(
        stderr.contains("rank 1 failed (killed by signal 9"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cuda_without_nccl_names_libnccl_and_bad_sizes_are_refused() {
    let dir = workdir("cli-world-size", "nccl");
    let (config, data) = setup(&dir);
    if !rlhf::tensor::dist::nccl_available() {
        let run = train(
            &config,
            &data,
            &dir.join("gpu"),
            "1",
            &["--world-size", "2", "--device", "cuda"],
        );
        let stderr = failure_stderr(&run);
        assert!(stderr.contains("libnccl"), "{stderr}");
    }
    let run = train(
        &config,
        &data,
        &dir.join("zero"),
        "1",
        &["--world-size", "0"],
    );
    assert!(failure_stderr(&run).contains("--world-size"));
    let run = train(
        &config,
        &data,
        &dir.join("big"),
        "1",
        &["--world-size", "6"],
    );
    let stderr = failure_stderr(&run);
    assert!(
        stderr.contains("--batch-size 5 is smaller than --world-size 6"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
