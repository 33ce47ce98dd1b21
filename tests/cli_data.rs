//! End-to-end: `rlhf data validate|stats|convert` on the rlhf-data fixtures.

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::rlhf;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("crates/rlhf-data/tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn temp(name: &str) -> String {
    std::env::temp_dir()
        .join(format!("rlhf-cli-data-{}-{name}", std::process::id()))
        .display()
        .to_string()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn validate_accepts_valid_files_of_every_format() {
    for (name, format, count) in [
        ("hh.jsonl", "hh", 5),
        ("trl.jsonl", "trl", 4),
        ("oasst.jsonl", "oasst", 3),
        ("labels.csv", "labels-csv", 4),
        ("labels.jsonl", "labels-jsonl", 2),
        ("native.jsonl", "native", 6),
    ] {
        let output = rlhf(&["data", "validate", "--input", &fixture(name)]);
        let text = stdout(&output);
        assert!(output.status.success(), "{name}: {text}");
        assert!(
            text.contains(&format!(
                "{format} format: {count} valid records, 0 invalid"
            )),
            "{text}"
        );
    }
}

#[test]
fn validate_fails_with_file_line_and_field() {
    let input = fixture("hh-invalid.jsonl");
    let output = rlhf(&["data", "validate", "--input", &input]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains(&format!("{input}:2: field `rejected`: expected")),
        "{text}"
    );
    assert!(
        text.contains("stopped at the first invalid record"),
        "{text}"
    );

    let output = rlhf(&["data", "validate", "--input", &input, "--skip-invalid"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.contains("2 valid records, 5 invalid"), "{text}");
    assert!(
        text.contains(&format!(
            "{input}:3: field `rejected`: expected a response different from `chosen`"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{input}:5: field `(line)`: expected a JSON object"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("duplicate: {input}:7 repeats line 1")),
        "{text}"
    );
}

#[test]
fn stats_prints_counts_k_and_lengths_as_json() {
    let output = rlhf(&["data", "stats", "--input", &fixture("native.jsonl")]);
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("stats print JSON");
    assert_eq!(json["format"], "native");
    assert_eq!(json["records"], 6);
    assert_eq!(json["by_kind"]["rule_violations"], 1);
    assert_eq!(json["k_distribution"]["3"], 1);
    assert_eq!(json["implied_pairs"], 3); // the pair, and the ranking's 2 untied pairs
    assert_eq!(json["raters"], 3);
    assert_eq!(json["response_chars"]["count"], 9);
}

#[test]
fn convert_round_trips_through_other_formats() {
    let trl = temp("hh-as-trl.jsonl");
    let output = rlhf(&[
        "data",
        "convert",
        "--input",
        &fixture("hh.jsonl"),
        "--output",
        &trl,
        "--format",
        "trl",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let back = temp("back-to-hh.jsonl.gz");
    let output = rlhf(&[
        "data", "convert", "--input", &trl, "--output", &back, "--format", "hh",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(&std::fs::read(&back).unwrap()[..2], &[0x1f, 0x8b]);
    // hh -> trl -> hh gives the same records (compared through native JSONL).
    let native = |input: &str, name: &str| {
        let out = temp(name);
        assert!(
            rlhf(&[
                "data", "convert", "--input", input, "--output", &out, "--format", "native"
            ])
            .status
            .success()
        );
        let text = std::fs::read_to_string(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        text
    };
    assert_eq!(
        native(&fixture("hh.jsonl"), "a.jsonl"),
        native(&back, "b.jsonl")
    );

    let kway = temp("oasst-kway.jsonl");
    let output = rlhf(&[
        "data",
        "convert",
        "--input",
        &fixture("oasst.jsonl"),
        "--output",
        &kway,
        "--format",
        "kway",
    ]);
    assert!(output.status.success());
    let stats: serde_json::Value = serde_json::from_slice(
        &rlhf(&["data", "stats", "--input", &kway, "--input-format", "kway"]).stdout,
    )
    .unwrap();
    assert_eq!(stats["k_distribution"], serde_json::json!({"2": 1, "3": 2}));
    let oasst: serde_json::Value = serde_json::from_slice(
        &rlhf(&["data", "stats", "--input", &fixture("oasst.jsonl")]).stdout,
    )
    .unwrap();
    assert_eq!(oasst["oasst_left_out"]["deleted_messages"], 1);
    assert_eq!(oasst["oasst_left_out"]["unranked_replies"], 1);
    assert_eq!(oasst["k_distribution"], stats["k_distribution"]);
    for path in [trl, back, kway] {
        std::fs::remove_file(path).unwrap();
    }
}

#[test]
fn convert_failures_leave_no_output() {
    let out = temp("refused.csv");
    let output = rlhf(&[
        "data",
        "convert",
        "--input",
        &fixture("native.jsonl"),
        "--output",
        &out,
        "--format",
        "labels-csv",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("record 0 (pairwise): cannot be written as labels-csv"),
        "{stderr}"
    );
    assert!(stderr.contains("native.jsonl:1: "), "{stderr}");
    assert!(!std::path::Path::new(&out).exists());
    let bad = rlhf(&[
        "data",
        "convert",
        "--input",
        &fixture("hh.jsonl"),
        "--output",
        &out,
        "--format",
        "xml",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected one of hh, trl"));
}

#[test]
fn labels_convert_to_the_raters_table() {
    let out = temp("labels.csv");
    let output = rlhf(&[
        "data",
        "convert",
        "--input",
        &fixture("labels.jsonl"),
        "--output",
        &out,
        "--format",
        "labels-csv",
    ]);
    assert!(output.status.success());
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "item,rater,label\nq1,alice,yes\n2,bob,4\n"
    );
    std::fs::remove_file(&out).unwrap();
}
