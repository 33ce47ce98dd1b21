//! The load generator behind `examples/label_load` and the short load test: a server on
//! loopback over a fresh database, N raters, N client threads that fetch and submit labels
//! for a while; then every acknowledged label is looked up in the database.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rlhf_label::load::TaskRole;
use rlhf_label::{ServeConfig, Store, server};
use serde_json::{Value, json};

/// What to run.
pub struct LoadOptions {
    /// Concurrent raters (one client thread each).
    pub clients: usize,
    /// How long they submit.
    pub seconds: f64,
    /// Plain tasks (a twentieth as many gold items are added).
    pub tasks: usize,
    /// Responses per task.
    pub k: usize,
    /// Async worker threads of the server.
    pub workers: usize,
    /// Where the database goes (removed afterwards unless `keep`).
    pub dir: PathBuf,
}

/// What happened.
#[derive(Debug)]
pub struct LoadReport {
    /// HTTP requests sent.
    pub requests: u64,
    /// Requests that failed (transport errors and statuses other than 200 and 204).
    pub errors: u64,
    /// Labels acknowledged with 200 and `"duplicate": false`.
    pub acknowledged: u64,
    /// Label rows in the database afterwards.
    pub rows: u64,
    /// Acknowledged labels missing from the database.
    pub lost: u64,
    /// Label ids acknowledged twice, plus (rater, task) pairs labelled twice.
    pub duplicated: u64,
    /// Median request latency, milliseconds.
    pub p50_ms: f64,
    /// 99th-percentile request latency, milliseconds.
    pub p99_ms: f64,
    /// Slowest request, milliseconds.
    pub max_ms: f64,
    /// Wall time of the submitting phase, seconds.
    pub seconds: f64,
}

impl LoadReport {
    /// Acknowledged labels per second.
    pub fn labels_per_second(&self) -> f64 {
        self.acknowledged as f64 / self.seconds
    }
}

fn task_file(options: &LoadOptions) -> std::io::Result<PathBuf> {
    let path = options.dir.join("tasks.jsonl");
    let mut text = String::new();
    let gold = (options.tasks / 20).max(1);
    for i in 0..options.tasks + gold {
        let responses: Vec<String> = (0..options.k)
            .map(|r| format!("Response {r} to prompt {i}: {}", "lorem ipsum ".repeat(8)))
            .collect();
        let mut task = json!({
            "id": format!("t{i}"),
            "prompt": format!("Prompt {i}: explain something in two sentences."),
            "responses": responses,
            "questions": [{"id": "q1", "text": "Is the best response correct?", "choices": ["yes", "no", "unsure"]}],
            "rules": [{"id": "r-harm", "text": "Gives harmful instructions"}],
        });
        if i >= options.tasks {
            task["gold"] = json!({ "ranking": (0..options.k).collect::<Vec<_>>() });
        }
        text.push_str(&task.to_string());
        text.push('\n');
    }
    std::fs::write(&path, text)?;
    Ok(path)
}

struct ClientResult {
    requests: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    acknowledged: Vec<i64>,
}

fn client(url: String, token: String, until: Instant, seed: u64, k: usize) -> ClientResult {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let auth = format!("Bearer {token}");
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut out = ClientResult {
        requests: 0,
        errors: 0,
        latencies_us: Vec::new(),
        acknowledged: Vec::new(),
    };
    let timed = |out: &mut ClientResult, f: &mut dyn FnMut() -> Option<(u16, String)>| {
        let start = Instant::now();
        let result = f();
        out.latencies_us
            .push(start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        out.requests += 1;
        result
    };
    while Instant::now() < until {
        let next = timed(&mut out, &mut || {
            let mut r = agent
                .get(format!("{url}/api/task/next"))
                .header("Authorization", &auth)
                .call()
                .ok()?;
            Some((r.status().as_u16(), r.body_mut().read_to_string().ok()?))
        });
        let task: Value = match next {
            Some((200, body)) => match serde_json::from_str(&body) {
                Ok(v) => v,
                Err(_) => {
                    out.errors += 1;
                    continue;
                }
            },
            Some((204, _)) => break,
            _ => {
                out.errors += 1;
                continue;
            }
        };
        let mut ranking: Vec<usize> = (0..k).collect();
        ranking.shuffle(&mut rng);
        let answer = ["yes", "no", "unsure"][rng.random_range(0..3)];
        let body = json!({
            "assignment_id": task["assignment_id"],
            "ranking": ranking,
            "answers": {"q1": answer},
            "violations": if rng.random_bool(0.2) { json!([{"response": ranking[k - 1], "rule": "r-harm"}]) } else { json!([]) },
            "note": "",
        })
        .to_string();
        let posted = timed(&mut out, &mut || {
            let mut r = agent
                .post(format!("{url}/api/label"))
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(&body)
                .ok()?;
            Some((r.status().as_u16(), r.body_mut().read_to_string().ok()?))
        });
        match posted.and_then(|(status, body)| {
            let v: Value = serde_json::from_str(&body).ok()?;
            (status == 200 && v["duplicate"] == false).then(|| v["label_id"].as_i64())?
        }) {
            Some(id) => out.acknowledged.push(id),
            None => out.errors += 1,
        }
    }
    out
}

fn percentile(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    f64::from(sorted_us[rank - 1]) / 1000.0
}

/// Runs the load and checks the database.
pub fn run(options: &LoadOptions) -> Result<LoadReport, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&options.dir)?;
    let tasks = task_file(options)?;
    let db = options.dir.join("labels.sqlite");
    let store = Arc::new(Store::open(&db)?);
    store.load_tasks(&tasks, TaskRole::Tasks)?;
    let tokens: Vec<String> = (0..options.clients)
        .map(|i| store.add_rater(&format!("load-{i}")).map(|r| r.token))
        .collect::<Result<_, _>>()?;
    let config = ServeConfig {
        // Random rankings would fail the gold check; this measures the server, not raters.
        min_gold_accuracy: 0.0,
        ..ServeConfig::default()
    };
    let handle = server::spawn(store.clone(), config, "127.0.0.1:0", options.workers)?;
    let url = handle.url();
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(options.seconds);
    let threads: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| {
            let url = url.clone();
            let k = options.k;
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || client(url, token, until, i as u64, k))
        })
        .collect::<Result<_, _>>()?;
    let results: Vec<ClientResult> = threads
        .into_iter()
        .map(|t| t.join().map_err(|_| "a client thread panicked"))
        .collect::<Result<_, _>>()?;
    let seconds = started.elapsed().as_secs_f64();
    handle.shutdown()?;
    // A fresh connection, as after a restart.
    drop(store);
    let snapshot = Store::open(&db)?.snapshot()?;
    let rows: HashSet<i64> = snapshot.labels.iter().map(|l| l.id).collect();
    let mut pairs: HashMap<(i64, i64), u64> = HashMap::new();
    for l in &snapshot.labels {
        *pairs.entry((l.rater, l.task)).or_default() += 1;
    }
    let mut acknowledged: Vec<i64> = results
        .iter()
        .flat_map(|r| r.acknowledged.clone())
        .collect();
    let lost = acknowledged.iter().filter(|id| !rows.contains(id)).count() as u64;
    acknowledged.sort_unstable();
    let repeated_ids = acknowledged.windows(2).filter(|w| w[0] == w[1]).count() as u64;
    let repeated_pairs = pairs.values().map(|&n| n.saturating_sub(1)).sum::<u64>();
    let mut latencies: Vec<u32> = results
        .iter()
        .flat_map(|r| r.latencies_us.clone())
        .collect();
    latencies.sort_unstable();
    Ok(LoadReport {
        requests: results.iter().map(|r| r.requests).sum(),
        errors: results.iter().map(|r| r.errors).sum(),
        acknowledged: acknowledged.len() as u64,
        rows: snapshot.labels.len() as u64,
        lost,
        duplicated: repeated_ids + repeated_pairs,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies.last().map_or(0.0, |&m| f64::from(m) / 1000.0),
        seconds,
    })
}
