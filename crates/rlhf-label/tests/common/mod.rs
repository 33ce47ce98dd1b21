//! An in-process server on 127.0.0.1:0 over a fresh database, and a small blocking client.

#![allow(dead_code)] // each test binary uses part of this

use std::path::PathBuf;
use std::sync::Arc;

use rlhf_label::load::TaskRole;
use rlhf_label::server::{self, ServerHandle};
use rlhf_label::{ServeConfig, Store};
use serde_json::Value;

pub struct Session {
    pub store: Arc<Store>,
    pub server: Option<ServerHandle>,
    pub admin: String,
    pub dir: PathBuf,
    pub url: String,
    agent: ureq::Agent,
}

pub struct Reply {
    pub status: u16,
    pub body: String,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rlhf-label-test-{}-{name}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A client that opens a fresh connection per request. The server may close a keep-alive
/// connection after answering a request whose body it did not read (a 405 or 401 to a POST);
/// a pooled client could pick that connection up again before it sees the close and fail with
/// "peer disconnected" (browsers retry such idempotent requests on their own; this test client
/// does not, so it never reuses a connection).
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .build()
        .into()
}

fn reply(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut response = result.expect("the server answers");
    let status = response.status().as_u16();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let content_type = headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .unwrap_or_default();
    Reply {
        status,
        body,
        content_type,
        headers,
    }
}

pub fn get(agent: &ureq::Agent, url: &str, token: Option<&str>) -> Reply {
    let mut request = agent.get(url);
    if let Some(t) = token {
        request = request.header("Authorization", &format!("Bearer {t}"));
    }
    reply(request.call())
}

pub fn post(agent: &ureq::Agent, url: &str, token: Option<&str>, body: &str) -> Reply {
    let mut request = agent.post(url).header("Content-Type", "application/json");
    if let Some(t) = token {
        request = request.header("Authorization", &format!("Bearer {t}"));
    }
    reply(request.send(body))
}

impl Session {
    /// A server over `tasks` (task JSONL lines) with `config`.
    pub fn start(name: &str, tasks: &[String], config: ServeConfig) -> Session {
        let dir = temp_dir(name);
        let file = dir.join("tasks.jsonl");
        std::fs::write(&file, tasks.join("\n") + "\n").unwrap();
        let store = Arc::new(Store::open(&dir.join("labels.sqlite")).unwrap());
        store.load_tasks(&file, TaskRole::Tasks).unwrap();
        let admin = store.ensure_admin_token().unwrap().unwrap();
        let server = server::spawn(store.clone(), config, "127.0.0.1:0", 2).unwrap();
        let url = server.url();
        Session {
            store,
            server: Some(server),
            admin,
            dir,
            url,
            agent: agent(),
        }
    }

    pub fn rater(&self, name: &str) -> String {
        self.store.add_rater(name).unwrap().token
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Reply {
        get(&self.agent, &format!("{}{path}", self.url), token)
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &str) -> Reply {
        post(&self.agent, &format!("{}{path}", self.url), token, body)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            let _ = s.shutdown();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A task JSONL line with `k` responses; `gold` is the gold ranking.
pub fn task_line(id: &str, prompt: &str, k: usize, gold: Option<&[usize]>) -> String {
    let responses: Vec<String> = (0..k).map(|i| format!("{prompt} / response {i}")).collect();
    let mut task = serde_json::json!({
        "id": id,
        "prompt": prompt,
        "responses": responses,
        "questions": [{"id": "q1", "text": "Is the best response correct?", "choices": ["yes", "no", "unsure"]}],
        "rules": [{"id": "r-harm", "text": "Gives harmful instructions"}],
    });
    if let Some(g) = gold {
        task["gold"] = serde_json::json!({ "ranking": g });
    }
    task.to_string()
}

/// A valid label for a task JSON from /api/task/next with `ranking`.
pub fn label_body(next: &Value, ranking: &[usize]) -> String {
    serde_json::json!({
        "assignment_id": next["assignment_id"],
        "ranking": ranking,
        "answers": {"q1": "yes"},
        "violations": [{"response": ranking[ranking.len() - 1], "rule": "r-harm"}],
        "note": "",
    })
    .to_string()
}
