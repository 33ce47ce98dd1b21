//! The HTTP API end to end over an in-process server: auth, assignment invariants, hidden
//! gold, screening, idempotency, validation, hostile text, exports read back by rlhf-data.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use common::{Session, label_body, task_line};
use rlhf_data::formats::{FeedbackReader, Format};
use rlhf_data::records::Feedback;
use rlhf_label::ServeConfig;
use serde_json::{Value, json};

fn config() -> ServeConfig {
    ServeConfig {
        target_per_task: 3,
        ..ServeConfig::default()
    }
}

#[test]
fn auth_is_required_and_token_kinds_are_separate() {
    let s = Session::start("auth", &[task_line("t1", "p", 2, None)], config());
    let alice = s.rater("alice");
    let missing = s.get("/api/me", None);
    assert_eq!(missing.status, 401);
    assert!(missing.json()["error"].as_str().unwrap().contains("Bearer"));
    assert_eq!(s.get("/api/me", Some("0".repeat(64).as_str())).status, 401);
    assert_eq!(s.get("/api/me", Some(&alice[..63])).status, 401);
    assert_eq!(s.get("/api/me", Some(&"x".repeat(10_000))).status, 401);
    let me = s.get("/api/me", Some(&alice));
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["name"], "alice");
    assert_eq!(me.json()["status"], "active");
    let forbidden = s.get("/api/admin/progress", Some(&alice));
    assert_eq!(forbidden.status, 403);
    assert!(forbidden.content_type.starts_with("application/json"));
    assert_eq!(s.get("/api/task/next", Some(&s.admin)).status, 403);
    assert_eq!(s.get("/api/admin/progress", Some(&s.admin)).status, 200);
    // Errors of the framework itself are JSON too, and every response carries the headers.
    let unknown = s.get("/api/nope", Some(&alice));
    assert_eq!(unknown.status, 404);
    assert!(unknown.json()["error"].is_string());
    let wrong_method = s.post("/api/me", Some(&alice), "{}");
    assert_eq!(wrong_method.status, 405);
    assert!(wrong_method.json()["error"].is_string());
    for path in ["/", "/rate", "/admin", "/static/app.js", "/api/me"] {
        let r = s.get(path, Some(&alice));
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.header("content-security-policy")
                .unwrap()
                .contains("script-src 'self'")
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    // Admins add raters over HTTP; the token works at once.
    let added = s.post("/api/admin/raters", Some(&s.admin), r#"{"name": "bob"}"#);
    assert_eq!(added.status, 200, "{}", added.body);
    let bob = added.json()["token"].as_str().unwrap().to_string();
    assert_eq!(s.get("/api/me", Some(&bob)).json()["name"], "bob");
    assert_eq!(
        s.post("/api/admin/raters", Some(&s.admin), r#"{"name": "bob"}"#)
            .status,
        409
    );
}

/// Labels every task a rater is given until 204, ranking by `choose`; returns the task ids seen.
fn label_all(s: &Session, token: &str, choose: impl Fn(&Value) -> Vec<usize>) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let next = s.get("/api/task/next", Some(token));
        if next.status == 204 {
            assert!(next.body.is_empty());
            return seen;
        }
        assert_eq!(next.status, 200, "{}", next.body);
        let task = next.json();
        // Asking again before submitting returns the same assignment.
        let again = s.get("/api/task/next", Some(token)).json();
        assert_eq!(again["assignment_id"], task["assignment_id"]);
        seen.push(task["task"]["task_id"].as_str().unwrap().to_string());
        let posted = s.post(
            "/api/label",
            Some(token),
            &label_body(&task, &choose(&task)),
        );
        assert_eq!(posted.status, 200, "{}", posted.body);
        assert_eq!(posted.json()["duplicate"], false);
    }
}

fn identity(task: &Value) -> Vec<usize> {
    (0..task["task"]["responses"].as_array().unwrap().len()).collect()
}

#[test]
fn assignment_reaches_the_target_never_repeats_and_hides_gold() {
    let mut tasks: Vec<String> = (0..8)
        .map(|i| task_line(&format!("t{i}"), &format!("plain {i}"), 3, None))
        .collect();
    // Prompts that do not say "gold": the check below looks for the word.
    tasks.extend(
        (0..4).map(|i| task_line(&format!("g{i}"), &format!("check {i}"), 3, Some(&[0, 1, 2]))),
    );
    let s = Session::start("assign", &tasks, config());
    let mut all_bodies = String::new();
    let mut per_rater = Vec::new();
    for r in 0..5 {
        let token = s.rater(&format!("rater{r}"));
        let first = s.get("/api/task/next", Some(&token));
        all_bodies.push_str(&first.body);
        per_rater.push(label_all(&s, &token, identity));
    }
    for seen in &per_rater {
        let distinct: BTreeSet<_> = seen.iter().collect();
        assert_eq!(distinct.len(), seen.len(), "a task came twice: {seen:?}");
    }
    // Gold items were mixed in (every 5th task while fewer than 5 gold answers).
    let snapshot = s.store.snapshot().unwrap();
    let gold_labels = snapshot
        .labels
        .iter()
        .filter(|l| l.gold_correct.is_some())
        .count();
    assert!(gold_labels >= 3, "{gold_labels} gold labels");
    // Every plain task got exactly its target.
    let mut per_task: HashMap<i64, u32> = HashMap::new();
    for l in &snapshot.labels {
        *per_task.entry(l.task).or_default() += 1;
    }
    for t in snapshot.tasks.iter().filter(|t| !t.spec.is_gold()) {
        assert_eq!(per_task.get(&t.id), Some(&3), "task {}", t.spec.source_id);
    }
    let progress = s.get("/api/admin/progress", Some(&s.admin)).json();
    assert_eq!(progress["complete_tasks"], 8);
    assert_eq!(progress["tasks"], 12);
    assert_eq!(progress["gold_tasks"], 4);
    assert_eq!(progress["labels"], snapshot.labels.len());
    // Nothing in what raters receive tells gold from plain.
    assert!(!all_bodies.to_lowercase().contains("gold"), "{all_bodies}");
    // Identical rankings by everyone: perfect agreement.
    let agreement = s.get("/api/admin/agreement", Some(&s.admin)).json();
    let multi = per_task.values().filter(|&&n| n >= 2).count();
    assert!(multi >= 8);
    assert_eq!(agreement["items"], multi);
    assert_eq!(agreement["percent_agreement_top1"], 1.0);
    assert!((agreement["krippendorff_alpha_ordinal"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    let standings = s.get("/api/admin/standings", Some(&s.admin)).json();
    let first = &standings["tasks"][0]["candidates"];
    assert_eq!(first[0]["wins"], 6); // 3 raters x beats 2 others
    assert_eq!(first[2]["losses"], 6);
    assert!(first[0]["elo"].as_f64().unwrap() > first[2]["elo"].as_f64().unwrap());
    // One response won everything: the Bradley–Terry MLE does not exist.
    assert!(first[0]["bt_score"].is_null());
}

#[test]
fn screening_stops_bad_raters_and_promotes_good_ones() {
    let mut tasks: Vec<String> = (0..10)
        .map(|i| task_line(&format!("t{i}"), &format!("plain {i}"), 2, None))
        .collect();
    tasks.extend(
        (0..6).map(|i| task_line(&format!("g{i}"), &format!("gold {i}"), 2, Some(&[1, 0]))),
    );
    let config = ServeConfig {
        gold_every: 1,
        min_gold_items: 3,
        min_gold_accuracy: 0.6,
        super_accuracy: Some(0.9),
        target_per_task: 5,
        ..ServeConfig::default()
    };
    let s = Session::start("screen", &tasks, config);
    let bad = s.rater("bad");
    let good = s.rater("good");
    // The bad rater always prefers response 0, the gold answer is 1.
    for _ in 0..3 {
        let next = s.get("/api/task/next", Some(&bad)).json();
        assert!(next["task"]["prompt"].as_str().unwrap().starts_with("gold"));
        assert_eq!(
            s.post("/api/label", Some(&bad), &label_body(&next, &[0, 1]))
                .status,
            200
        );
    }
    let refused = s.get("/api/task/next", Some(&bad));
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json()["status"], "screened_out");
    assert_eq!(
        s.get("/api/me", Some(&bad)).json()["status"],
        "screened_out"
    );
    for _ in 0..3 {
        let next = s.get("/api/task/next", Some(&good)).json();
        assert_eq!(
            s.post("/api/label", Some(&good), &label_body(&next, &[1, 0]))
                .status,
            200
        );
    }
    let me = s.get("/api/me", Some(&good)).json();
    assert_eq!(me["status"], "super");
    assert_eq!(me["gold_seen"], 3);
    assert!(me.get("gold_accuracy").is_none());
    let raters = s.get("/api/admin/raters", Some(&s.admin)).json();
    let by_name: BTreeMap<String, Value> = raters
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_string(), r.clone()))
        .collect();
    assert_eq!(by_name["bad"]["gold_accuracy"], 0.0);
    assert_eq!(by_name["good"]["gold_correct"], 3);
    let (lo, hi) = (
        by_name["good"]["gold_ci_low"].as_f64().unwrap(),
        by_name["good"]["gold_ci_high"].as_f64().unwrap(),
    );
    // Wilson 95% for 3/3: [0.4385, 1].
    assert!((lo - 0.43850).abs() < 1e-4 && hi == 1.0, "{lo} {hi}");
    assert_eq!(by_name["bad"]["status"], "screened_out");
    // After the warm-up the good rater gets plain tasks too.
    let mut prompts = Vec::new();
    for _ in 0..4 {
        let next = s.get("/api/task/next", Some(&good)).json();
        prompts.push(next["task"]["prompt"].as_str().unwrap().to_string());
        s.post("/api/label", Some(&good), &label_body(&next, &[1, 0]));
    }
    assert!(
        prompts.iter().any(|p| p.starts_with("plain")),
        "{prompts:?}"
    );
}

#[test]
fn reposting_is_idempotent_and_bad_requests_get_reasons() {
    let tasks = vec![
        task_line("t1", "p1", 3, None),
        task_line("t2", "p2", 3, None),
    ];
    let s = Session::start("validate", &tasks, config());
    let alice = s.rater("alice");
    let bob = s.rater("bob");
    let next = s.get("/api/task/next", Some(&alice)).json();
    let field = |body: &str| {
        let r = s.post("/api/label", Some(&alice), body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        r.json()["field"].as_str().unwrap().to_string()
    };
    let id = next["assignment_id"].clone();
    assert_eq!(field("{not json"), "(body)");
    assert_eq!(field("[1, 2]"), "(body)");
    assert_eq!(field(r#"{"ranking": [0, 1, 2]}"#), "assignment_id");
    let with = |patch: Value| {
        let mut body: Value = serde_json::from_str(&label_body(&next, &[2, 0, 1])).unwrap();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body.to_string()
    };
    assert_eq!(field(&with(json!({"ranking": [0, 0, 1]}))), "ranking[1]");
    assert_eq!(field(&with(json!({"ranking": [0, 1]}))), "ranking");
    assert_eq!(field(&with(json!({"ranking": [0, 1, 7]}))), "ranking[2]");
    assert_eq!(field(&with(json!({"ranking": "0,1,2"}))), "ranking");
    assert_eq!(field(&with(json!({"ranking": [-1, 0, 1]}))), "ranking[0]");
    assert_eq!(
        field(&with(json!({"answers": {"q1": "maybe"}}))),
        "answers.q1"
    );
    assert_eq!(field(&with(json!({"answers": {}}))), "answers.q1");
    assert_eq!(
        field(&with(json!({"answers": {"q1": "yes", "q9": "yes"}}))),
        "answers.q9"
    );
    assert_eq!(
        field(&with(
            json!({"violations": [{"response": 5, "rule": "r-harm"}]})
        )),
        "violations[0].response"
    );
    assert_eq!(
        field(&with(
            json!({"violations": [{"response": 0, "rule": "r-x"}]})
        )),
        "violations[0].rule"
    );
    assert_eq!(field(&with(json!({"note": "é".repeat(2001)}))), "note");
    assert_eq!(field(&with(json!({"note": 5}))), "note");
    assert_eq!(
        field(&with(json!({"assignment_id": "17"}))),
        "assignment_id"
    );
    let huge = with(json!({"note": "x".repeat(70 * 1024)}));
    let r = s.post("/api/label", Some(&alice), &huge);
    assert_eq!(r.status, 413);
    assert!(r.json()["error"].as_str().unwrap().contains("64 KiB"));
    let r = s.post(
        "/api/label",
        Some(&alice),
        &with(json!({"assignment_id": "a-999"})),
    );
    assert_eq!(r.status, 404);
    // Another rater's assignment is as good as unknown.
    let r = s.post("/api/label", Some(&bob), &with(json!({})));
    assert_eq!(r.status, 404, "{}", r.body);
    // A note of exactly 2000 characters (not bytes) is fine; re-posting changes nothing.
    let ok = with(json!({"note": "é".repeat(2000)}));
    let first = s.post("/api/label", Some(&alice), &ok).json();
    assert_eq!(first["duplicate"], false);
    let second = s.post("/api/label", Some(&alice), &ok).json();
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["label_id"], first["label_id"]);
    assert_eq!(s.store.snapshot().unwrap().labels.len(), 1);
    assert_eq!(id, next["assignment_id"]);
    // The server is still healthy.
    assert_eq!(s.get("/api/me", Some(&alice)).json()["labels"], 1);
}

#[test]
fn hostile_task_text_is_only_ever_json_data() {
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&";
    let line = json!({
        "id": "evil",
        "prompt": hostile,
        "responses": [hostile, "</script><script>alert(3)</script>"],
        "questions": [{"id": "q1", "text": hostile, "choices": ["<b>yes</b>", "no"]}],
        "rules": [{"id": "r-harm", "text": hostile}],
    })
    .to_string();
    let s = Session::start("hostile", &[line], config());
    let alice = s.rater("alice");
    let next = s.get("/api/task/next", Some(&alice));
    assert!(
        next.content_type.starts_with("application/json"),
        "{}",
        next.content_type
    );
    assert_eq!(next.header("x-content-type-options"), Some("nosniff"));
    let task = next.json();
    assert_eq!(task["task"]["prompt"], hostile);
    assert_eq!(
        task["task"]["responses"][1]["text"],
        "</script><script>alert(3)</script>"
    );
    assert_eq!(task["task"]["questions"][0]["text"], hostile);
    // The pages are static: task text never reaches them.
    for page in ["/", "/rate", "/admin"] {
        let html = s.get(page, None);
        assert!(html.content_type.starts_with("text/html"));
        assert!(!html.body.contains("alert("), "{page}");
    }
    let body = json!({
        "assignment_id": task["assignment_id"],
        "ranking": [1, 0],
        "answers": {"q1": "<b>yes</b>"},
        "violations": [{"response": 0, "rule": "r-harm"}],
        "note": "<script>alert(4)</script>",
    });
    assert_eq!(
        s.post("/api/label", Some(&alice), &body.to_string()).status,
        200
    );
    let standings = s.get("/api/admin/standings", Some(&s.admin));
    assert!(standings.content_type.starts_with("application/json"));
    assert_eq!(standings.json()["tasks"][0]["prompt"], hostile);
}

#[test]
fn exports_read_back_with_rlhf_data_and_leave_gold_out() {
    let mut tasks: Vec<String> = (0..4)
        .map(|i| task_line(&format!("t{i}"), &format!("plain {i}"), 3, None))
        .collect();
    tasks.push(task_line("g0", "gold 0", 3, Some(&[2, 1, 0])));
    let config = ServeConfig {
        target_per_task: 2,
        gold_every: 2,
        min_gold_items: 1,
        ..ServeConfig::default()
    };
    let s = Session::start("export", &tasks, config);
    for r in 0..2 {
        let token = s.rater(&format!("rater{r}"));
        label_all(&s, &token, |_| vec![2, 0, 1]);
    }
    let snapshot = s.store.snapshot().unwrap();
    let plain_labels = snapshot
        .labels
        .iter()
        .filter(|l| l.gold_correct.is_none())
        .count();
    assert_eq!(plain_labels, 8);
    let gold_labels = snapshot.labels.len() - plain_labels;
    assert!(gold_labels >= 1);
    let read_back = |format: &str, as_format: Format, gold: bool| -> Vec<Feedback> {
        let url = format!("/api/admin/export?format={format}&include_gold={gold}");
        let r = s.get(&url, Some(&s.admin));
        assert_eq!(r.status, 200, "{}", r.body);
        let direct = rlhf_label::export(
            &s.store.snapshot().unwrap(),
            rlhf_label::ExportFormat::from_name(format).unwrap(),
            gold,
        )
        .unwrap();
        assert_eq!(
            r.body.as_bytes(),
            &direct[..],
            "{format}: route and library differ"
        );
        let path = s.dir.join(format!("export-{format}-{gold}"));
        std::fs::write(&path, &r.body).unwrap();
        FeedbackReader::open(&path, Some(as_format))
            .unwrap()
            .map(|l| l.unwrap().record)
            .collect()
    };
    let hh = read_back("hh", Format::Hh, false);
    assert_eq!(hh.len(), plain_labels * 3);
    let trl = read_back("trl", Format::Trl, false);
    assert_eq!(trl.len(), plain_labels * 3);
    for record in &trl {
        let Feedback::Pairwise(p) = record else {
            panic!()
        };
        assert!(!p.prompt.turns[0].content.starts_with("gold"));
        // Every rater put response 2 first: it is never the rejected one.
        assert!(!p.rejected.ends_with("response 2"), "{p:?}");
    }
    assert_eq!(
        read_back("trl", Format::Trl, true).len(),
        (plain_labels + gold_labels) * 3
    );
    let kway = read_back("kway", Format::Native, false);
    let rankings: Vec<_> = kway
        .iter()
        .filter_map(|r| match r {
            Feedback::Ranking(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(rankings.len(), plain_labels);
    assert_eq!(rankings[0].tiers, vec![vec![2], vec![0], vec![1]]);
    assert!(
        rankings[0]
            .meta
            .rater_id
            .as_deref()
            .unwrap()
            .starts_with('r')
    );
    let violations = kway
        .iter()
        .filter(|r| matches!(r, Feedback::RuleViolations(v) if v.breaks(1, "r-harm")))
        .count();
    assert_eq!(violations, plain_labels);
    let csv = read_back("labels-csv", Format::LabelsCsv, false);
    // Per label: top-1 row, one question row, 3 rule rows; gold kept for rater statistics.
    assert_eq!(csv.len(), snapshot.labels.len() * 5);
    let top1 = csv
        .iter()
        .filter(
            |r| matches!(r, Feedback::Label(l) if !l.meta.item_id.contains('/') && l.label == "2"),
        )
        .count();
    assert_eq!(top1, snapshot.labels.len());
    let bad = s.get("/api/admin/export?format=xml", Some(&s.admin));
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["field"], "format");
}
