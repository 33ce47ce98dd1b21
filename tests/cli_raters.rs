//! End-to-end tests of `rlhf raters ...`: the release binary on the fixture files in
//! tests/fixtures/raters/ (published examples re-laid in long format, plus bad inputs).

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/raters/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rlhf-cli-raters-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs `rlhf raters ARGS`; returns (success, stdout, stderr).
fn rlhf(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rlhf"))
        .arg("raters")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn json(args: &[&str]) -> Value {
    let (ok, stdout, stderr) = rlhf(args);
    assert!(ok, "rlhf raters {args:?} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap()
}

fn close(v: &Value, want: f64, tol: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert!((got - want).abs() <= tol, "got {got}, want {want}");
}

#[test]
fn agreement_krippendorff_2011_all_levels_with_bootstrap_and_csv() {
    let out = tmp("items.csv");
    let input = fixture("krippendorff_2011.csv");
    let args = [
        "agreement",
        "--input",
        &input,
        "--bootstrap",
        "50",
        "--seed",
        "9",
        "--out",
        out.to_str().unwrap(),
    ];
    let v = json(&args);
    let alphas = v["agreement"]["krippendorff_alpha"].as_array().unwrap();
    let want = [
        0.743421052631579,
        0.8153875037548814,
        0.8491071428571428,
        0.7974027747116121,
    ];
    for (a, w) in alphas.iter().zip(want) {
        close(&a["alpha"]["value"], w, 1e-12);
    }
    let boot = &v["agreement"]["bootstrap"]["alpha"][0];
    assert!(boot["lower"].as_f64().unwrap() < 0.7434 && boot["upper"].as_f64().unwrap() > 0.7434);
    // same seed, same intervals
    assert_eq!(
        json(&args)["agreement"]["bootstrap"],
        v["agreement"]["bootstrap"]
    );
    let csv = std::fs::read_to_string(&out).unwrap();
    assert!(
        csv.starts_with("item,ratings,modal_label,modal_share,pairwise_agreement\nunit1,3,1,1,1\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 13);
    // one level only
    let v = json(&["agreement", "--input", &input, "--level", "interval"]);
    assert_eq!(
        v["agreement"]["krippendorff_alpha"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    close(
        &v["agreement"]["krippendorff_alpha"][0]["alpha"]["value"],
        0.8491071428571428,
        1e-12,
    );
}

#[test]
fn agreement_two_raters_jsonl_task_worker_keys() {
    let v = json(&[
        "agreement",
        "--input",
        &fixture("cohen_sas.jsonl"),
        "--pairwise",
    ]);
    let two = &v["agreement"]["two_raters"];
    close(
        &two["cohen_kappa"][0]["kappa"]["value"],
        0.48416289592760187,
        1e-12,
    );
    close(
        &two["cohen_kappa"][0]["se"]["value"],
        0.1380135783058146,
        1e-12,
    );
    close(
        &two["cohen_kappa"][1]["kappa"]["value"],
        0.4701195219123506,
        1e-12,
    );
    close(
        &two["cohen_kappa"][2]["kappa"]["value"],
        0.4501607717041801,
        1e-12,
    );
    close(&two["scott_pi"]["value"], 0.4532374100719424, 1e-12);
    let pair = &v["pairwise"][0];
    assert_eq!(pair["shared_items"], 19);
    close(&pair["cohen_kappa"]["value"], 0.48416289592760187, 1e-12);
}

#[test]
fn screen_keeps_good_raters_and_flags_bad_ones() {
    let out = tmp("screen.csv");
    let v = json(&[
        "screen",
        "--input",
        &fixture("screen_labels.csv"),
        "--gold",
        &fixture("screen_gold.csv"),
        "--min-accuracy",
        "0.7",
        "--min-gold",
        "10",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(v["kept"], serde_json::json!(["expert", "noisy"]));
    let raters = v["raters"].as_array().unwrap();
    let by = |name: &str| raters.iter().find(|r| r["rater"] == name).unwrap().clone();
    assert_eq!(by("adversary")["flag"], "adversarial");
    assert_eq!(by("careless")["flag"], "random");
    assert_eq!(by("noisy")["gold_correct"], 15);
    // Wilson 15/20 at 95%
    close(&by("noisy")["wilson"][0], 0.5312991221999536, 1e-9);
    let reasons = by("careless")["reasons"].to_string();
    assert!(
        reasons.contains("fail: accuracy 0.4000 (min 0.7)"),
        "{reasons}"
    );
    let csv = std::fs::read_to_string(&out).unwrap();
    assert_eq!(csv.lines().count(), 5);
    // a stricter rule drops the noisy rater
    let v = json(&[
        "screen",
        "--input",
        &fixture("screen_labels.csv"),
        "--gold",
        &fixture("screen_gold.csv"),
        "--min-lower",
        "0.6",
    ]);
    assert_eq!(v["kept"], serde_json::json!(["expert"]));
}

#[test]
fn aggregate_every_method_recovers_gold_and_writes_csv() {
    for method in ["majority", "dawid-skene", "one-coin", "glad", "mace"] {
        let out = tmp(&format!("agg-{method}.csv"));
        let v = json(&[
            "aggregate",
            "--input",
            &fixture("screen_labels.csv"),
            "--method",
            method,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(v["raters"].as_array().unwrap().len(), 4, "{method}");
        let csv = std::fs::read_to_string(&out).unwrap();
        let header = csv.lines().next().unwrap();
        assert!(
            header.starts_with("item,label,p_cat,p_dog,p_fox"),
            "{header}"
        );
        assert_eq!(csv.lines().count(), 21, "{method}");
    }
    // Dawid-Skene learns that the adversary's labels are shifted: with gold clamping its skill
    // is the lowest and the expert's the highest.
    let v = json(&[
        "aggregate",
        "--input",
        &fixture("screen_labels.csv"),
        "--gold",
        &fixture("screen_gold.csv"),
        "--method",
        "dawid-skene",
    ]);
    assert_eq!(v["gold_items"], 20);
    let skill = |name: &str| {
        v["raters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rater"] == name)
            .unwrap()["skill"]
            .as_f64()
            .unwrap()
    };
    assert!(skill("expert") > 0.95 && skill("adversary") < 0.05, "{v}");
    assert!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["label"].is_string())
    );
}

#[test]
fn rank_bradley_terry_and_elo_match_references() {
    let out = tmp("rank.csv");
    let v = json(&[
        "rank",
        "--input",
        &fixture("pairs_bt.csv"),
        "--method",
        "bradley-terry",
        "--out",
        out.to_str().unwrap(),
    ]);
    let items = v["ranking"]["items"].as_array().unwrap();
    assert_eq!(items[0]["item"], "i0");
    close(&items[0]["rating"], 1111.6082544651772, 1e-6);
    close(&v["ranking"]["log_likelihood"], -15.429790091797704, 1e-8);
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 6);
    let anchored = json(&[
        "rank",
        "--input",
        &fixture("pairs_bt.csv"),
        "--method",
        "bradley-terry",
        "--anchor",
        "i4",
        "--anchor-rating",
        "800",
    ]);
    let last = anchored["ranking"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["item"] == "i4")
        .unwrap()
        .clone();
    close(&last["rating"], 800.0, 1e-9);
    let boot = json(&[
        "rank",
        "--input",
        &fixture("pairs_bt.csv"),
        "--method",
        "bradley-terry",
        "--bootstrap",
        "100",
        "--seed",
        "2",
    ]);
    let first = &boot["ranking"]["items"][0];
    assert!(first["lower"].as_f64().unwrap() < 1111.6 && first["upper"].as_f64().unwrap() > 1111.6);
    let elo = json(&[
        "rank",
        "--input",
        &fixture("games_elo.csv"),
        "--method",
        "elo",
        "--k",
        "32",
    ]);
    let rating = |name: &str| {
        elo["ranking"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["item"] == name)
            .unwrap()["rating"]
            .as_f64()
            .unwrap()
    };
    assert!((rating("A") - 994.2908550383964).abs() < 1e-9);
    assert!((rating("C") - 1018.5512046885858).abs() < 1e-9);
}

#[test]
fn bad_inputs_name_file_line_and_field() {
    let (h, l, w, m) = (
        fixture("bad_header.csv"),
        fixture("bad_label.jsonl"),
        fixture("bad_winner.csv"),
        fixture("missing.csv"),
    );
    let cases = [
        (
            vec!["agreement", "--input", &h],
            "bad_header.csv:1: field `rater`",
        ),
        (
            vec!["agreement", "--input", &l],
            "bad_label.jsonl:2: field `label`",
        ),
        (
            vec!["rank", "--input", &w, "--method", "elo"],
            "bad_winner.csv:3: field `winner`",
        ),
        (vec!["agreement", "--input", &m], "missing.csv: cannot read"),
    ];
    for (args, want) in cases {
        let (ok, _, stderr) = rlhf(&args);
        assert!(!ok, "{args:?} should fail");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}

#[test]
fn rank_elo_bootstrap_from_jsonl_is_seeded() {
    let input = fixture("pairs.jsonl");
    let args = [
        "rank",
        "--input",
        &input,
        "--method",
        "elo",
        "--k",
        "16",
        "--bootstrap",
        "200",
        "--seed",
        "7",
    ];
    let v = json(&args);
    assert_eq!(v["comparisons"], 5);
    let items = v["ranking"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    for item in items {
        let (lo, hi) = (
            item["lower"].as_f64().unwrap(),
            item["upper"].as_f64().unwrap(),
        );
        assert!(lo <= hi, "{item}");
        assert!((1..=3).contains(&item["rank"].as_u64().unwrap()));
    }
    // ratings sum to 3 x 1000: Elo moves points between the two players of each game
    let total: f64 = items.iter().map(|i| i["rating"].as_f64().unwrap()).sum();
    assert!((total - 3000.0).abs() < 1e-9);
    assert_eq!(json(&args)["ranking"], v["ranking"]);
}

#[test]
fn rank_per_prompt_reports_every_group() {
    let out = tmp("by-prompt.csv");
    let input = fixture("pairs_by_prompt.csv");
    let v = json(&[
        "rank",
        "--input",
        &input,
        "--method",
        "elo",
        "--k",
        "32",
        "--out",
        out.to_str().unwrap(),
    ]);
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 3);
    assert_eq!(groups[0]["group"], "p1");
    assert_eq!(groups[0]["ranking"]["items"].as_array().unwrap().len(), 3);
    assert_eq!(groups[1]["comparisons"], 2);
    let csv = std::fs::read_to_string(&out).unwrap();
    assert!(csv.starts_with("group,rank,item,"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 3 + 2 + 2);
    // Bradley-Terry: p3 has one game (t_a never loses), so its MLE is infinite: reported, not dropped
    let v = json(&["rank", "--input", &input, "--method", "bradley-terry"]);
    assert_eq!(v["groups_failed"], 1);
    let p3 = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "p3")
        .unwrap()
        .clone();
    assert!(
        p3["error"]
            .as_str()
            .unwrap()
            .contains("not strongly connected"),
        "{p3}"
    );
    assert!(v["groups"][0]["ranking"]["items"].is_array());
}
