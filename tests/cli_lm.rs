//! End-to-end tests of `rlhf train lm`, `rlhf model score` and `rlhf generate` on tiny models.

mod common;

use std::process::Output;

use common::{model_config, rlhf, s, token_jsonl, workdir};

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn train_resume_score_on_token_jsonl() {
    let dir = workdir("cli-lm", "tokens");
    let config = model_config(&dir, 20, 32, 16, 1, 2);
    let data = token_jsonl(&dir, 24, |i| (0..12).map(|j| (i + j) % 20).collect());
    let out = dir.join("run");
    let common = [
        "--data",
        s(&data),
        "--steps",
        "6",
        "--batch-size",
        "4",
        "--seq-len",
        "12",
        "--lr",
        "0.02",
        "--seed",
        "3",
        "--save-every",
        "3",
    ];
    let mut args = vec!["train", "lm", "--config", s(&config), "--out", s(&out)];
    args.extend(common);
    let straight = json_lines(&rlhf(&args));
    assert_eq!(straight.len(), 6);
    assert!(straight[5]["loss"].as_f64().unwrap() < straight[0]["loss"].as_f64().unwrap());
    for f in [
        "config.json",
        "model.safetensors",
        "trainer_state.json",
        "trainer_state.safetensors",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    // Resuming from step 3 reproduces steps 4..6 exactly.
    let out2 = dir.join("resumed");
    let ckpt = out.join("checkpoint-3");
    let mut args = vec!["train", "lm", "--resume", s(&ckpt), "--out", s(&out2)];
    args.extend(common);
    let resumed = json_lines(&rlhf(&args));
    assert_eq!(resumed.len(), 3);
    for (a, b) in resumed.iter().zip(&straight[3..]) {
        assert_eq!(a["loss"], b["loss"]);
    }
    let score = json_lines(&rlhf(&[
        "model",
        "score",
        "--model",
        s(&out),
        "--data",
        s(&data),
    ]));
    assert_eq!(score.len(), 25);
    assert_eq!(score[0]["tokens"], 11);
    let summary = &score[24];
    assert_eq!(summary["tokens"], 24 * 11);
    let (loss, ppl) = (
        summary["loss"].as_f64().unwrap(),
        summary["perplexity"].as_f64().unwrap(),
    );
    assert!((ppl - loss.exp()).abs() < 1e-6 * ppl && loss < 20f64.ln());
}

#[test]
fn sft_on_trl_jsonl_then_generate_with_gpt2_tokenizer() {
    let dir = workdir("cli-lm", "sft");
    let config = model_config(&dir, 50257, 64, 16, 1, 2);
    let data = dir.join("trl.jsonl");
    std::fs::write(
        &data,
        "{\"prompt\": \"What is 2+2?\", \"chosen\": \" 4\", \"rejected\": \" 5\"}\n{\"prompt\": \"Capital of France?\", \"chosen\": \" Paris\", \"rejected\": \" Rome\"}\n",
    )
    .unwrap();
    let out = dir.join("sft");
    let log = json_lines(&rlhf(&[
        "train",
        "lm",
        "--config",
        s(&config),
        "--data",
        s(&data),
        "--out",
        s(&out),
        "--sft",
        "--steps",
        "3",
        "--batch-size",
        "2",
        "--seq-len",
        "32",
        "--lr",
        "0.01",
    ]));
    // Response-only loss: " 4" + EOS and " Paris" + EOS are the only targets (2 + 2 tokens).
    assert_eq!(log[0]["tokens"], 4);
    let generated = json_lines(&rlhf(&[
        "generate",
        "--model",
        s(&out),
        "--prompt",
        "What is 2+2?",
        "--max-new-tokens",
        "5",
        "--greedy",
    ]));
    assert_eq!(generated.len(), 1);
    let tokens = generated[0]["tokens"].as_array().unwrap();
    assert!(!tokens.is_empty() && tokens.len() <= 5);
    // Plain text is refused for SFT with a message naming the file.
    let text = dir.join("plain.txt");
    std::fs::write(&text, "hello").unwrap();
    let bad = rlhf(&[
        "train",
        "lm",
        "--config",
        s(&config),
        "--data",
        s(&text),
        "--out",
        s(&out),
        "--sft",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("plain.txt"));
}

#[test]
fn out_of_vocabulary_tokens_name_file_line_and_field() {
    let dir = workdir("cli-lm", "bad");
    let config = model_config(&dir, 10, 16, 8, 1, 2);
    let data = dir.join("tokens.jsonl");
    std::fs::write(&data, "{\"tokens\": [1, 2, 3]}\n{\"tokens\": [1, 12]}\n").unwrap();
    let out = rlhf(&[
        "train",
        "lm",
        "--config",
        s(&config),
        "--data",
        s(&data),
        "--out",
        s(&dir.join("o")),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tokens.jsonl:2") && err.contains("`tokens`") && err.contains("12"),
        "{err}"
    );
}

#[test]
fn a_missing_gpu_is_a_clear_error_before_any_work() {
    let dir = workdir("cli-lm", "device");
    let config = model_config(&dir, 300, 16, 8, 1, 2);
    let data = dir.join("data.txt");
    std::fs::write(&data, "hello world\n").unwrap();
    let far = format!("cuda:{}", rlhf_tensor::cuda::gpu_count());
    let out_dir = dir.join("out");
    let commands: [Vec<&str>; 3] = [
        vec![
            "train",
            "lm",
            "--config",
            s(&config),
            "--data",
            s(&data),
            "--out",
            s(&out_dir),
            "--device",
            &far,
        ],
        vec![
            "generate",
            "--model",
            s(&out_dir),
            "--prompt",
            "hi",
            "--device",
            &far,
        ],
        vec![
            "ppo",
            "--policy",
            s(&out_dir),
            "--reward",
            "world",
            "--prompts",
            "world",
            "--out",
            s(&out_dir),
            "--device",
            &far,
        ],
    ];
    for args in commands {
        let out = rlhf(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("no CUDA device found"),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("--device {far}")),
            "{args:?}: {stderr}"
        );
    }
    assert!(!out_dir.exists(), "nothing is written for a missing GPU");
    let out = rlhf(&[
        "train",
        "lm",
        "--config",
        s(&config),
        "--data",
        s(&data),
        "--out",
        s(&out_dir),
        "--precision",
        "bf16",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bf16 needs a CUDA device"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
