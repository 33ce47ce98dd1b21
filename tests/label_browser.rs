//! End to end: the labeling pages in headless Chromium (Debian's `chromium` + `chromedriver`)
//! against the real `rlhf label serve` on a free loopback port with a temporary database.
//!
//! The researcher signs in on `/`, lands on `/admin` and adds a rater there (the token is shown
//! once); the rater signs in with it and labels both tasks: the ranking task by keyboard (a digit
//! on a focused response) and by mouse (dragging another response onto a place), with a question
//! answered by click, a rule flagged, a note typed and Ctrl+Enter; the pair task with the `B` key
//! and Enter. Then the exports of `rlhf label export` (`kway`, `labels-csv`) must hold exactly
//! that ranking, those answers and that violation, the database the note (no export carries
//! notes), the admin page's kway download must equal the CLI's bytes, and the hostile task text
//! must have been shown literally without running.
//! Screenshots of each page go to `target/label-screenshots/`.
//!
//! Without chromium or chromedriver the test prints one `SKIPPED:` line and passes; with
//! `RLHF_REQUIRE_BROWSER=1` it fails instead.

mod webdriver;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use webdriver::{ARROW_DOWN, Driver, KEY_CONTROL, KEY_ENTER, Session, free_port, http};

/// Task text that would run script if a page ever inserted it as HTML.
const HOSTILE: &str = "<img src=x onerror=alert(1)><script>window.__pwned=1</script>";
const RATER: &str = "alice <b>smith</b>";
/// The browser window: a laptop screen.
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 800;
const NOTE: &str = "B tries to run <script> in the page; C is the only safe answer.";

/// The executable `name`: `$ENV` if set, else the first match on PATH.
fn locate(name: &str, env: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Chromium and chromedriver, or None after the skip line (a failure with RLHF_REQUIRE_BROWSER=1).
fn browser() -> Option<(PathBuf, PathBuf)> {
    let found = (
        locate("chromium", "RLHF_CHROMIUM"),
        locate("chromedriver", "RLHF_CHROMEDRIVER"),
    );
    if let (Some(chromium), Some(driver)) = found {
        return Some((chromium, driver));
    }
    let missing = match found {
        (None, None) => "chromium and chromedriver",
        (None, _) => "chromium",
        _ => "chromedriver",
    };
    assert!(
        std::env::var("RLHF_REQUIRE_BROWSER").as_deref() != Ok("1"),
        "RLHF_REQUIRE_BROWSER=1 but {missing} is not installed (apt-get install chromium chromium-driver)"
    );
    // Straight to the process's stderr, past libtest's capture, so the skip is seen in every run.
    let line = format!(
        "SKIPPED: chromium not installed ({missing} missing; apt-get install chromium chromium-driver, or set RLHF_CHROMIUM / RLHF_CHROMEDRIVER)\n"
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
    None
}

fn screenshot_dir() -> PathBuf {
    let target = option_env!("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("label-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes the task file: a 3-way ranking task full of hostile text, and a pair task.
fn write_tasks(path: &Path) {
    let rank = json!({
        "id": "t-rank",
        "prompt": format!("Summarise this page: {HOSTILE}"),
        "responses": [
            "The page shows an image and runs a script.",
            format!("Sure! {HOSTILE} <b onmouseover=alert(2)>bold</b>"),
            "I will not repeat page markup; it contains a script tag.",
        ],
        "mode": "rank",
        "questions": [
            {"id": "q-correct", "text": "Is the best response factually correct? <i>really</i>", "choices": ["yes", "no", "unsure"]},
            {"id": "q-code", "text": "Does any response contain code?", "choices": ["yes", "no"]},
        ],
        "rules": [
            {"id": "r-harm", "text": "Gives harmful instructions"},
            {"id": "r-made-up", "text": "Makes up facts <u>"},
        ],
    });
    let pair = json!({
        "id": "t-pair",
        "prompt": "Which reply is kinder?",
        "responses": ["No.", "Sorry, I can't help with that, but the library can."],
        "mode": "pair",
    });
    std::fs::write(path, format!("{rank}\n{pair}\n")).unwrap();
}

/// `rlhf label serve`, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rlhf(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rlhf"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rlhf {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Starts the server on a free port with `admin_token` (given in a file, as the CLI wants).
fn serve(tasks: &Path, db: &Path, admin_token: &str) -> Server {
    let port = free_port();
    let token_file = db.with_extension("admin-token");
    std::fs::write(&token_file, admin_token).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_rlhf"))
        .args(["label", "serve", "--tasks"])
        .arg(tasks)
        .arg("--db")
        .arg(db)
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .arg("--admin-token-file")
        .arg(&token_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut server = Server { child, port };
    // Echo the server's output (it names its address) without ever blocking it.
    let stdout = server.child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("[serve] {line}");
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(http(port, "GET", "/", None), Ok((200, _))) {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("rlhf label serve exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "rlhf label serve did not answer on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// Signs in on the login page with `token`; waits for the page it leads to.
fn sign_in(session: &Session, base: &str, token: &str, lands_on: &str) {
    session.goto(&format!("{base}/"));
    session.script("sessionStorage.clear();", vec![]);
    let field = session.find("#token");
    session.type_into(&field, token);
    session.click(&session.find("#login button[type=submit]"));
    session.wait_until(
        &format!("{lands_on} after signing in"),
        &format!("return location.pathname === '{lands_on}';"),
    );
}

/// Waits for the task view; returns its mode (`rank` or `pair`).
fn wait_for_task(session: &Session) -> String {
    session.wait_until(
        "a task on the rater page",
        "return !document.getElementById('workspace').hidden && document.querySelectorAll('#responses .response').length > 0;",
    );
    let pair = session.script(
        "return document.getElementById('responses').classList.contains('pair');",
        vec![],
    );
    if pair == Value::Bool(true) {
        "pair"
    } else {
        "rank"
    }
    .to_string()
}

/// The ranking as shown: the response position in each place, best first (None = empty).
fn shown_ranking(session: &Session) -> Vec<Option<u64>> {
    let value = session.script(
        "return [...document.querySelectorAll('#ranking [data-slot]')].map(li => li.dataset.response === undefined ? null : Number(li.dataset.response));",
        vec![],
    );
    value
        .as_array()
        .unwrap()
        .iter()
        .map(Value::as_u64)
        .collect()
}

fn submit_enabled(session: &Session) -> bool {
    session.script(
        "return !document.getElementById('submit').disabled;",
        vec![],
    ) == json!(true)
}

/// The hostile prompt and response are shown as text, nothing of them ran or became markup.
fn assert_hostile_text_is_inert(session: &Session) {
    let check = session.script(
        "const w = document.getElementById('workspace');
         return {
           prompt: document.getElementById('prompt').textContent,
           response: document.querySelector('#responses [data-response=\"1\"] .text').textContent,
           injected: w.querySelectorAll('img, script, b, i, u').length,
           pwned: typeof window.__pwned,
         };",
        vec![],
    );
    assert_eq!(
        check["prompt"],
        json!(format!("Summarise this page: {HOSTILE}"))
    );
    assert!(
        check["response"].as_str().unwrap().contains(HOSTILE),
        "{check}"
    );
    assert_eq!(
        check["injected"],
        json!(0),
        "task text became markup: {check}"
    );
    assert_eq!(
        check["pwned"],
        json!("undefined"),
        "task text ran as script"
    );
}

/// The ranking task: keyboard rank, mouse drag, answers by click, a rule, a note, Ctrl+Enter.
fn label_rank_task(session: &Session, shots: &Path) {
    assert_hostile_text_is_inert(session);
    session.full_page_screenshot(&shots.join("2-rate-task.png"), WIDTH, HEIGHT);
    assert!(
        !submit_enabled(session),
        "submit must wait for a complete label"
    );

    // Keyboard: focus response C and press 1 -> C is best.
    session.type_into(&session.find("#responses [data-response=\"2\"]"), "1");
    assert_eq!(shown_ranking(session), vec![Some(2), None, None]);
    // Mouse: drag response A by its header onto the second place; B fills the last place.
    let handle = session.find("#responses [data-response=\"0\"] .handle");
    session.drag(&handle, &session.find("#ranking [data-slot=\"1\"]"));
    assert_eq!(
        shown_ranking(session),
        vec![Some(2), Some(0), Some(1)],
        "after the drag"
    );
    // Reorder in "Your ranking": drag the last place to the top (the others shift down), then
    // move it back with the arrow keys on the focused place.
    session.drag(
        &session.find("#ranking [data-slot=\"2\"]"),
        &session.find("#ranking [data-slot=\"0\"]"),
    );
    assert_eq!(
        shown_ranking(session),
        vec![Some(1), Some(2), Some(0)],
        "after reordering"
    );
    let moved = session.find("#ranking [data-response=\"1\"]");
    session.type_into(&moved, ARROW_DOWN);
    let moved = session.find("#ranking [data-response=\"1\"]");
    session.type_into(&moved, ARROW_DOWN);
    assert_eq!(
        shown_ranking(session),
        vec![Some(2), Some(0), Some(1)],
        "after ↓ ↓"
    );
    assert!(!submit_enabled(session), "questions are still unanswered");

    session.click(&session.find("label[for=\"q0-c1\"]")); // q-correct: no
    session.click(&session.find("#q1-c0")); // q-code: yes
    session.click(&session.find("#rule-1-0")); // response B breaks r-harm
    let note = session.find("#note");
    session.type_into(&note, NOTE);
    let counter = session.script(
        "return document.getElementById('note-count').textContent;",
        vec![],
    );
    assert_eq!(counter, json!(format!("{} / 2000", NOTE.chars().count())));
    assert!(submit_enabled(session), "the label is complete");
    // Ctrl+Enter submits even while typing the note.
    session.chord(&[KEY_CONTROL, KEY_ENTER]);
    session.wait_until(
        "the saved message",
        "const f = document.getElementById('flash'); return !f.hidden && f.textContent.startsWith('Saved as label #');",
    );
}

/// The pair task: the B key, then Enter.
fn label_pair_task(session: &Session) {
    assert!(!submit_enabled(session));
    session.chord(&["b"]);
    assert_eq!(shown_ranking(session), vec![Some(1), Some(0)]);
    session.chord(&[KEY_ENTER]);
    session.wait_until(
        "the saved message",
        "const f = document.getElementById('flash'); return !f.hidden && f.textContent.startsWith('Saved as label #');",
    );
}

#[test]
fn a_rater_labels_in_chromium_and_the_export_holds_exactly_that() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("rlhf-label-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let tasks = dir.join("tasks.jsonl");
    let db = dir.join("labels.sqlite");
    write_tasks(&tasks);
    let admin_token = "admin-e2e-0123456789abcdef0123456789abcdef";
    let server = serve(&tasks, &db, admin_token);
    let base = format!("http://127.0.0.1:{}", server.port);
    let shots = screenshot_dir();

    let driver = Driver::start(&chromedriver);
    let downloads = dir.join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let session = driver.session(&chromium, WIDTH, HEIGHT, &downloads);

    // The researcher signs in and adds a rater on the admin page; the token is shown once.
    session.goto(&format!("{base}/"));
    session.find("#token");
    session.screenshot(&shots.join("1-login.png"));
    sign_in(&session, &base, admin_token, "/admin");
    session.type_into(&session.find("#rater-name"), RATER);
    session.click(&session.find("#add-rater button[type=submit]"));
    let token = session.wait_for("the new rater's token", || {
        let value = session.script(
            "return document.getElementById('new-token').hidden ? '' : document.getElementById('new-token-value').value;",
            vec![],
        );
        value.as_str().filter(|t| !t.is_empty()).map(str::to_string)
    });
    // "alice <b>smith</b> (r1)": the name shown as text, the rater's id in parentheses.
    let who = session.script(
        "return document.getElementById('new-token-who').textContent;",
        vec![],
    );
    let who = who.as_str().unwrap();
    let rater_id = who
        .strip_prefix(&format!("{RATER} ("))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("the new rater shown as {who:?}"))
        .to_string();

    // The rater signs in and labels every task the server hands out (order is the server's).
    sign_in(&session, &base, &token, "/rate");
    let mut seen = Vec::new();
    for _ in 0..2 {
        let mode = wait_for_task(&session);
        if mode == "rank" {
            label_rank_task(&session, &shots);
        } else {
            label_pair_task(&session);
        }
        seen.push(mode);
    }
    seen.sort();
    assert_eq!(seen, ["pair", "rank"]);
    session.wait_until(
        "the no-tasks-left state",
        "const s = document.getElementById('state'); return !s.hidden && s.dataset.state === 'empty';",
    );
    session.screenshot(&shots.join("3-rate-done.png"));

    // The researcher's page shows the rater with two labels.
    sign_in(&session, &base, admin_token, "/admin");
    session.wait_until(
        "the rater's row with 2 labels",
        "return [...document.querySelectorAll('#raters tbody tr')].some(tr => tr.cells.length > 3 && tr.cells[1].textContent === 'alice <b>smith</b>' && tr.cells[3].textContent === '2');",
    );
    // Open the ranking task's standings (Elo, Bradley–Terry) for the screenshot.
    session.click(&session.find("#standings details summary"));
    session.wait_until(
        "the standings table",
        "return document.querySelectorAll('#standings details[open] tbody tr').length > 0;",
    );
    session.full_page_screenshot(&shots.join("4-admin.png"), WIDTH, HEIGHT);
    let problems: Vec<String> = session
        .console()
        .into_iter()
        .filter(|m| m.contains("Content Security Policy") || m.contains("Uncaught"))
        .collect();
    assert!(problems.is_empty(), "browser console: {problems:#?}");
    // The page's export button saves the same bytes as the CLI.
    session.click(&session.find("#exports button[data-format=\"kway\"]"));
    let downloaded = downloads.join("labels-kway.jsonl");
    let from_page = session.wait_for("the kway download", || std::fs::read(&downloaded).ok());
    drop(session);
    drop(driver);

    // The exports hold exactly what was entered.
    let db_arg = db.to_str().unwrap();
    let kway = rlhf(&["label", "export", "--db", db_arg, "--format", "kway"]);
    assert_eq!(
        String::from_utf8(from_page).unwrap(),
        kway,
        "the admin page's kway download and `rlhf label export --format kway`"
    );
    check_kway(&kway, &rater_id);
    let csv = rlhf(&["label", "export", "--db", db_arg, "--format", "labels-csv"]);
    check_labels_csv(&csv, &rater_id);
    drop(server);
    check_stored_label(&db);

    for name in [
        "1-login.png",
        "2-rate-task.png",
        "3-rate-done.png",
        "4-admin.png",
    ] {
        println!("screenshot: {}", shots.join(name).display());
    }
    println!("browser test took {:.1} s", started.elapsed().as_secs_f64());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `kway` (rlhf-data's native JSONL): per label a `ranking` record (`tiers`, best first) and, for
/// the task with rules, a `rule_violations` record (`broken` rule ids per response).
fn check_kway(kway: &str, rater: &str) {
    println!("kway export:\n{kway}");
    let records: Vec<Value> = kway
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |kind: &str, item: &str| -> Vec<&Value> {
        records
            .iter()
            .filter(|r| r["kind"] == json!(kind) && r["item_id"] == json!(item))
            .collect()
    };
    assert_eq!(records.len(), 3, "two rankings and one rule record");
    let rank = find("ranking", "t-rank");
    assert_eq!(rank.len(), 1, "one ranking of t-rank");
    assert_eq!(rank[0]["tiers"], json!([[2], [0], [1]]), "{}", rank[0]);
    assert_eq!(rank[0]["rater_id"], json!(rater));
    assert_eq!(
        rank[0]["prompt"][0]["content"],
        json!(format!("Summarise this page: {HOSTILE}")),
        "the hostile text is stored as it was given"
    );
    let rules = find("rule_violations", "t-rank");
    assert_eq!(rules.len(), 1, "one rule record of t-rank");
    assert_eq!(
        rules[0]["broken"],
        json!([[], ["r-harm"], []]),
        "{}",
        rules[0]
    );
    let pair = find("ranking", "t-pair");
    assert_eq!(pair.len(), 1, "one ranking of t-pair");
    assert_eq!(pair[0]["tiers"], json!([[1], [0]]), "{}", pair[0]);
}

/// `labels-csv` (long `item,rater,label`): the top-1 response per task, each question's answer
/// (`task/question`) and each rule verdict (`task/response/rule`), in label order.
fn check_labels_csv(csv: &str, rater: &str) {
    println!("labels-csv export:\n{csv}");
    let expected: Vec<String> = [
        "t-rank,R,2",
        "t-rank/q-correct,R,no",
        "t-rank/q-code,R,yes",
        "t-rank/0/r-harm,R,ok",
        "t-rank/0/r-made-up,R,ok",
        "t-rank/1/r-harm,R,broken",
        "t-rank/1/r-made-up,R,ok",
        "t-rank/2/r-harm,R,ok",
        "t-rank/2/r-made-up,R,ok",
        "t-pair,R,1",
    ]
    .iter()
    .map(|row| row.replace(",R,", &format!(",{rater},")))
    .collect();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("item,rater,label"));
    let rows: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    // The two labels' rows, each label's rows together (the server decides which task came first).
    let (rank_rows, pair_rows): (Vec<&str>, Vec<&str>) =
        rows.iter().partition(|r| r.starts_with("t-rank"));
    assert_eq!(rank_rows, expected[..9], "the ranking task's rows");
    assert_eq!(pair_rows, expected[9..], "the pair task's rows");
}

/// The note is in no export format; the database must hold it, with the rest of the label, as
/// typed.
fn check_stored_label(db: &Path) {
    let store = rlhf_label::Store::open(db).unwrap();
    let snapshot = store.snapshot().unwrap();
    assert_eq!(snapshot.labels.len(), 2);
    let label = snapshot
        .labels
        .iter()
        .find(|l| {
            snapshot
                .task(l.task)
                .is_some_and(|t| t.spec.source_id == "t-rank")
        })
        .expect("the ranking task's label");
    assert_eq!(label.ranking, [2, 0, 1]);
    assert_eq!(label.note, NOTE);
    let answers: Vec<(&str, &str)> = label
        .answers
        .iter()
        .map(|(q, a)| (q.as_str(), a.as_str()))
        .collect();
    assert_eq!(answers, [("q-code", "yes"), ("q-correct", "no")]);
    let violations: Vec<(usize, &str)> = label
        .violations
        .iter()
        .map(|v| (v.response, v.rule.as_str()))
        .collect();
    assert_eq!(violations, [(1, "r-harm")]);
}
