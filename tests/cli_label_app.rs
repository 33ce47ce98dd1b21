//! `rlhf label serve` as a real process: several raters submit from threads, the server is
//! killed with SIGKILL mid-load, restarted on the same database, and every label that got a
//! 200 is there exactly once. Also: `add-rater` and `export` beside a running server, and task
//! file errors that name the line and field.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

fn rlhf() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rlhf"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rlhf-cli-label-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts `rlhf label serve` and returns it with its URL (read from the `listening on` line).
fn serve(dir: &Path, tasks: bool) -> (Child, String) {
    let mut command = rlhf();
    command
        .args(["label", "serve", "--db"])
        .arg(dir.join("labels.sqlite"));
    if tasks {
        command.arg("--tasks").arg(dir.join("tasks.jsonl"));
    }
    let mut child = command
        .args(["--addr", "127.0.0.1:0", "--admin-token-file"])
        .arg(dir.join("admin.token"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("rlhf label serve starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the server prints its address")
            .unwrap();
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.to_string();
        }
    };
    (child, url)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

fn call(request: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Option<(u16, String)> {
    let mut r = request.ok()?;
    let status = r.status().as_u16();
    Some((status, r.body_mut().read_to_string().ok()?))
}

fn get(agent: &ureq::Agent, url: &str, token: &str) -> Option<(u16, String)> {
    call(
        agent
            .get(url)
            .header("Authorization", &format!("Bearer {token}"))
            .call(),
    )
}

fn post(agent: &ureq::Agent, url: &str, token: &str, body: &str) -> Option<(u16, String)> {
    call(
        agent
            .post(url)
            .header("Authorization", &format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .send(body),
    )
}

fn label_body(task: &Value, seed: usize) -> String {
    let mut ranking = vec![0usize, 1, 2];
    ranking.rotate_left(seed % 3);
    json!({
        "assignment_id": task["assignment_id"],
        "ranking": ranking,
        "answers": {"q1": "yes"},
        "violations": [],
        "note": "",
    })
    .to_string()
}

/// A rater that fetches and submits until `stop` or the server goes away; returns the
/// `(assignment, label_id)` of every label acknowledged with 200.
fn rater(url: String, token: String, stop: Arc<AtomicBool>, seed: usize) -> Vec<(String, i64)> {
    let agent = agent();
    let mut acknowledged = Vec::new();
    let mut n = seed;
    while !stop.load(Ordering::Relaxed) {
        let Some((status, body)) = get(&agent, &format!("{url}/api/task/next"), &token) else {
            break;
        };
        if status != 200 {
            break;
        }
        let task: Value = serde_json::from_str(&body).unwrap();
        n += 1;
        let Some((status, body)) = post(
            &agent,
            &format!("{url}/api/label"),
            &token,
            &label_body(&task, n),
        ) else {
            break;
        };
        assert_eq!(status, 200, "{body}");
        let reply: Value = serde_json::from_str(&body).unwrap();
        acknowledged.push((
            task["assignment_id"].as_str().unwrap().to_string(),
            reply["label_id"].as_i64().unwrap(),
        ));
    }
    acknowledged
}

#[test]
fn kill_dash_nine_under_load_loses_no_acknowledged_label() {
    let dir = temp_dir("kill");
    let tasks: String = (0..5000)
        .map(|i| {
            json!({
                "id": format!("t{i}"),
                "prompt": format!("prompt {i}"),
                "responses": ["a", "b", "c"],
                "questions": [{"id": "q1", "text": "ok?", "choices": ["yes", "no"]}],
            })
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(dir.join("tasks.jsonl"), tasks).unwrap();
    let admin = "admin-token-for-the-kill-test-0123456789";
    std::fs::write(dir.join("admin.token"), admin).unwrap();
    let db = dir.join("labels.sqlite");
    let (mut server, url) = serve(&dir, true);
    // Raters added by another process while the server runs.
    let tokens: Vec<String> = (0..6)
        .map(|i| {
            let out = rlhf()
                .args(["label", "add-rater", "--db"])
                .arg(&db)
                .args(["--name", &format!("rater{i}")])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let line = String::from_utf8(out.stdout).unwrap();
            line.split_whitespace().nth(2).unwrap().to_string()
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(i, token)| {
            let (url, token, stop) = (url.clone(), token.clone(), stop.clone());
            std::thread::spawn(move || rater(url, token, stop, i))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1000));
    server.kill().unwrap(); // SIGKILL: no chance to flush anything
    server.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let acknowledged: Vec<(String, i64)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(
        acknowledged.len() >= 10,
        "only {} labels before the kill",
        acknowledged.len()
    );

    // Restart on the same database with the same task file: nothing is added twice.
    let (mut server, url) = serve(&dir, true);
    let snapshot = rlhf_label::Store::open(&db).unwrap().snapshot().unwrap();
    assert_eq!(snapshot.tasks.len(), 5000);
    let rows: HashSet<i64> = snapshot.labels.iter().map(|l| l.id).collect();
    assert_eq!(rows.len(), snapshot.labels.len());
    for (_, id) in &acknowledged {
        assert!(
            rows.contains(id),
            "acknowledged label {id} is missing after kill -9"
        );
    }
    let ids: HashSet<i64> = acknowledged.iter().map(|(_, id)| *id).collect();
    assert_eq!(
        ids.len(),
        acknowledged.len(),
        "a label id was acknowledged twice"
    );
    let pairs: HashSet<(i64, i64)> = snapshot.labels.iter().map(|l| (l.rater, l.task)).collect();
    assert_eq!(
        pairs.len(),
        snapshot.labels.len(),
        "a rater labelled a task twice"
    );
    // At most one label per rater can have been committed without its 200 arriving.
    assert!(snapshot.labels.len() <= acknowledged.len() + tokens.len());

    // Re-posting an acknowledged assignment after the restart is a duplicate of the same row.
    let agent = agent();
    let (assignment, label_id) = &acknowledged[0];
    let owner = tokens.iter().find(|t| {
        let body =
            json!({"assignment_id": assignment, "ranking": [0, 1, 2], "answers": {"q1": "no"}});
        post(&agent, &format!("{url}/api/label"), t, &body.to_string()).is_some_and(
            |(status, body)| {
                status == 200 && {
                    let v: Value = serde_json::from_str(&body).unwrap();
                    v["duplicate"] == true && v["label_id"] == *label_id
                }
            },
        )
    });
    assert!(
        owner.is_some(),
        "no rater got the duplicate answer for {assignment}"
    );
    // Labelling goes on.
    let (status, body) = get(&agent, &format!("{url}/api/task/next"), &tokens[0]).unwrap();
    assert_eq!(status, 200, "{body}");

    // The CLI export and the admin route give the same bytes.
    for format in ["hh", "trl", "kway", "labels-csv"] {
        let out = rlhf()
            .args(["label", "export", "--db"])
            .arg(&db)
            .args(["--format", format])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (status, body) = get(
            &agent,
            &format!("{url}/api/admin/export?format={format}"),
            admin,
        )
        .unwrap();
        assert_eq!(status, 200);
        assert_eq!(out.stdout, body.as_bytes(), "{format}");
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_task_files_and_arguments_are_reported() {
    let dir = temp_dir("bad");
    std::fs::write(
        dir.join("tasks.jsonl"),
        "{\"id\":\"a\",\"prompt\":\"p\",\"responses\":[\"x\",\"y\"]}\n{\"id\":\"b\",\"prompt\":\"p\",\"responses\":[\"x\"]}\n",
    )
    .unwrap();
    let out = rlhf()
        .args(["label", "serve", "--addr", "127.0.0.1:0", "--tasks"])
        .arg(dir.join("tasks.jsonl"))
        .arg("--db")
        .arg(dir.join("labels.sqlite"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tasks.jsonl:2: field `responses`"),
        "{stderr}"
    );
    let out = rlhf()
        .args(["label", "export", "--format", "xml", "--db"])
        .arg(dir.join("labels.sqlite"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("field `format`"));
    // The pipeline stage's arguments still parse beside the subcommands and reach the stage.
    let out = rlhf()
        .args(["label", "--quiet", "--run"])
        .arg(dir.join("no-run"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a run directory"));
    let out = rlhf().args(["label", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--run") && help.contains("serve") && help.contains("add-rater"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tasks_samples_k_responses_per_prompt_from_a_checkpoint() {
    let dir = temp_dir("tasks");
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        r#"{"vocab_size": 50257, "n_positions": 64, "n_embd": 16, "n_layer": 1, "n_head": 2}"#,
    )
    .unwrap();
    let data = dir.join("trl.jsonl");
    std::fs::write(
        &data,
        "{\"prompt\": \"What is 2+2?\", \"chosen\": \" 4\", \"rejected\": \" 5\"}\n",
    )
    .unwrap();
    let model = dir.join("model");
    let out = rlhf()
        .args([
            "train",
            "lm",
            "--sft",
            "--steps",
            "1",
            "--batch-size",
            "1",
            "--seq-len",
            "16",
        ])
        .arg("--config")
        .arg(&config)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prompts = dir.join("prompts.txt");
    std::fs::write(&prompts, "What is 2+2?\n\nName a colour.\n").unwrap();
    let tasks = dir.join("tasks.jsonl");
    // Samples a task file from the model with `args` added; returns the tasks read back.
    let sample = |args: &[&str]| {
        let out = rlhf()
            .args(["label", "tasks"])
            .args(args)
            .arg("--model")
            .arg(&model)
            .arg("--prompts")
            .arg(&prompts)
            .arg("--out")
            .arg(&tasks)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        rlhf_label::load::read_tasks(&tasks, rlhf_label::load::TaskRole::Tasks).unwrap()
    };
    let loaded = sample(&["--k", "3", "--max-new-tokens", "6", "--seed", "1"]);
    assert_eq!(loaded.len(), 2);
    assert_eq!(loaded[1].task.prompt_text(), "Name a colour.");
    assert!(loaded.iter().all(|t| t.task.responses.len() == 3));

    // `--template hh` wraps each line in the dialogue template the pipeline's models know.
    let loaded = sample(&["--k", "2", "--max-new-tokens", "4", "--template", "hh"]);
    assert_eq!(
        loaded[1].task.prompt_text(),
        "\n\nHuman: Name a colour.\n\nAssistant:"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
