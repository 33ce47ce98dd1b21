//! Reading our fixtures in every format: values, edge cases, gzip, detection, error locations.

use std::io::{Cursor, Write};
use std::path::PathBuf;

use rlhf_data::DataError;
use rlhf_data::formats::item_id::prompt_item_id;
use rlhf_data::formats::{FeedbackReader, Format, Located};
use rlhf_data::records::{Feedback, Prompt, Role, Turn};
use rlhf_data::validate::{Checked, Duplicate, Policy};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn read_all(name: &str) -> (Format, Vec<Located>) {
    let reader = FeedbackReader::open(&fixture(name), None).unwrap();
    let format = reader.format();
    (format, reader.collect::<Result<Vec<_>, _>>().unwrap())
}

fn pairs(name: &str) -> Vec<rlhf_data::records::Pairwise> {
    read_all(name)
        .1
        .into_iter()
        .map(|l| match l.record {
            Feedback::Pairwise(p) => p,
            other => panic!("expected a pair, got {other:?}"),
        })
        .collect()
}

#[test]
fn hh_fixture_edge_cases() {
    let (format, records) = read_all("hh.jsonl");
    assert_eq!(format, Format::Hh);
    assert_eq!(
        records.iter().map(|r| r.line).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    let p = pairs("hh.jsonl");
    assert_eq!(p[0].chosen, "100 degrees Celsius.");
    assert_eq!(p[0].meta.item_id, prompt_item_id(&p[0].prompt));
    assert_eq!(
        p[1].prompt.turns,
        [
            Turn::user("I need a name for my cat."),
            Turn::assistant("How about Miso?"),
            Turn::user("Something longer, please.")
        ]
    );
    // No leading blank line; the chosen response is empty.
    assert_eq!(
        (p[2].prompt.clone(), p[2].chosen.as_str()),
        (Prompt::user("Tell me a secret password."), "")
    );
    // "Human:" inside a turn without the blank line stays text; one of two spaces is kept.
    assert_eq!(
        p[3].prompt.turns[1],
        Turn::assistant("Human: To be.\nAssistant: Or not.")
    );
    assert_eq!(p[3].chosen, " The end.");
    // A newline before the marker belongs to the turn; non-ASCII text survives.
    assert_eq!(
        p[4].prompt.last_user(),
        Some("Translate \"thank you\" to Japanese.\n")
    );
    assert_eq!(p[4].chosen, "ありがとう (arigatō).");
}

#[test]
fn gzip_is_detected_by_content_not_name() {
    let plain = std::fs::read(fixture("hh.jsonl")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let path = std::env::temp_dir().join(format!("rlhf-data-gz-{}.jsonl", std::process::id()));
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    let from_gz: Vec<_> = FeedbackReader::open(&path, None)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(from_gz, read_all("hh.jsonl").1);
}

#[test]
fn invalid_hh_records_are_located() {
    let open = || FeedbackReader::open(&fixture("hh-invalid.jsonl"), None).unwrap();
    let mut fail_fast = Checked::new(open(), Policy::FailFast);
    let items: Vec<_> = fail_fast.by_ref().collect();
    assert_eq!(items.len(), 2);
    match items[1].as_ref().unwrap_err() {
        DataError::Record {
            file,
            line,
            field,
            expected,
        } => {
            assert!(file.ends_with("hh-invalid.jsonl"));
            assert_eq!((*line, field.as_str()), (2, "rejected"));
            assert!(
                expected.contains("first difference at turn 1"),
                "{expected}"
            );
        }
        other => panic!("{other}"),
    }
    let mut skip = Checked::new(open(), Policy::Skip);
    let lines: Vec<u64> = skip.by_ref().map(|r| r.unwrap().line).collect();
    assert_eq!(lines, [1, 7]);
    let report = skip.into_report();
    assert_eq!(report.invalid, 5);
    let located: Vec<(u64, String)> = report
        .first_errors
        .iter()
        .map(|e| match e {
            DataError::Record { line, field, .. } => (*line, field.clone()),
            other => panic!("{other}"),
        })
        .collect();
    let expected = [
        (2, "rejected"),
        (3, "rejected"),
        (4, "rejected"),
        (5, "(line)"),
        (6, "chosen"),
    ];
    assert_eq!(located, expected.map(|(l, f)| (l, f.to_string())));
    assert_eq!(
        report.first_duplicates,
        [Duplicate {
            line: 7,
            first_line: 1
        }]
    );
}

#[test]
fn trl_fixture_variants() {
    let (format, _) = read_all("trl.jsonl");
    assert_eq!(format, Format::Trl);
    let p = pairs("trl.jsonl");
    assert_eq!(
        (p[0].prompt.clone(), p[0].margin),
        (Prompt::user("Name a primary colour."), Some(2.0))
    );
    assert_eq!(p[1].prompt.turns[0].role, Role::System);
    assert_eq!(p[1].chosen, "Rome.");
    assert_eq!(
        (p[2].prompt.clone(), p[2].chosen.as_str()),
        (Prompt::user("Water freezes at"), " 0 degrees.")
    );
    assert_eq!(
        (p[3].prompt.clone(), p[3].rejected.as_str()),
        (Prompt::user("Say hi."), "No.")
    );
    // The same prompt read from TRL and HH gets the same item id.
    assert_eq!(p[3].meta.item_id, prompt_item_id(&Prompt::user("Say hi.")));
}

#[test]
fn oasst_trees_give_rankings_per_parent() {
    let reader = FeedbackReader::open(&fixture("oasst.jsonl"), None).unwrap();
    assert_eq!(reader.format(), Format::Oasst);
    let mut reader = reader;
    let rankings: Vec<_> = reader
        .by_ref()
        .map(|r| match r.unwrap() {
            Located {
                line,
                record: Feedback::Ranking(r),
            } => (line, r),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        rankings
            .iter()
            .map(|(l, r)| (*l, r.meta.item_id.as_str()))
            .collect::<Vec<_>>(),
        [(1, "t1"), (1, "t1-a-p"), (2, "t2")]
    );
    let (_, top) = &rankings[0];
    // The deleted and the unranked replies are left out.
    assert_eq!(top.responses.len(), 3);
    assert_eq!(top.tiers, vec![vec![0], vec![1], vec![2]]);
    assert_eq!(
        top.meta.timestamp.as_deref(),
        Some("2023-02-01T10:00:00+00:00")
    );
    let (_, nested) = &rankings[1];
    assert_eq!(nested.prompt.turns.len(), 3);
    assert_eq!(nested.tiers, vec![vec![0], vec![1, 2]]);
    assert_eq!(nested.pair_group().pairs.len(), 2);
    let tally = reader.oasst_tally();
    assert_eq!((tally.deleted_messages, tally.unranked_replies), (1, 1));
}

#[test]
fn label_tables_in_both_vocabularies() {
    let (format, rows) = read_all("labels.csv");
    assert_eq!(format, Format::LabelsCsv);
    let labels: Vec<_> = rows
        .iter()
        .map(|l| match &l.record {
            Feedback::Label(x) => (
                l.line,
                x.meta.item_id.clone(),
                x.label.clone(),
                x.meta.confidence,
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(labels[0], (2, "q1".into(), "yes".into(), Some(0.9)));
    assert_eq!(labels[1].3, None);
    assert_eq!(labels[2].2, "partly, maybe");
    assert_eq!(labels[3].1, "q,3");
    let (format, rows) = read_all("labels.jsonl");
    assert_eq!(format, Format::LabelsJsonl);
    assert_eq!(
        rows[1].record,
        rlhf_data::records::Label::new("2", "bob", "4").into()
    );
}

#[test]
fn csv_errors_count_lines_from_the_top_of_the_file() {
    let text = "\n\nitem,rater,label\na,r,x\nb,r\n";
    let items: Vec<_> = FeedbackReader::from_reader("t.csv", Cursor::new(text), None)
        .unwrap()
        .collect();
    assert_eq!(items[0].as_ref().unwrap().line, 4);
    assert_eq!(
        items[1].as_ref().unwrap_err().to_string(),
        "t.csv:5: field `label`: expected a value in column 3 (the row has 2 cells)"
    );
    let bad_header = FeedbackReader::from_reader(
        "t.csv",
        Cursor::new("item,rater,label\n"),
        Some(Format::LabelsCsv),
    );
    assert!(bad_header.is_ok());
    let missing = FeedbackReader::from_reader(
        "t.csv",
        Cursor::new("item,who,label\n"),
        Some(Format::LabelsCsv),
    );
    assert!(missing.err().unwrap().to_string().contains("rater|worker"));
}

#[test]
fn native_fixture_holds_every_kind() {
    let (format, rows) = read_all("native.jsonl");
    assert_eq!(format, Format::Native);
    let kinds: Vec<&str> = rows.iter().map(|l| l.record.kind().as_str()).collect();
    assert_eq!(
        kinds,
        [
            "pairwise",
            "ranking",
            "rule_violations",
            "questions",
            "rating",
            "label"
        ]
    );
    match &rows[3].record {
        Feedback::Questions(q) => assert_eq!(q.answer_text("answers"), Some("yes")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn undetectable_and_empty_inputs_are_errors() {
    let err = FeedbackReader::from_reader("x.txt", Cursor::new("hello\n"), None)
        .err()
        .unwrap();
    assert!(
        matches!(err, DataError::UnknownFormat { line: 1, .. }),
        "{err}"
    );
    let err = FeedbackReader::from_reader("x.txt", Cursor::new("\n\n"), None)
        .err()
        .unwrap();
    assert!(err.to_string().contains("empty"), "{err}");
    let empty = FeedbackReader::from_reader("x.txt", Cursor::new(""), Some(Format::Hh)).unwrap();
    assert_eq!(empty.count(), 0);
    let err = FeedbackReader::open(&fixture("does-not-exist.jsonl"), None)
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            DataError::Io {
                action: "cannot open",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn byte_order_marks_and_crlf_line_ends_are_tolerated() {
    let hh = "\u{feff}{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: b\", \"rejected\": \"\\n\\nHuman: a\\n\\nAssistant: c\"}\r\n";
    let records: Vec<_> = FeedbackReader::from_reader("bom.jsonl", Cursor::new(hh), None)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(records.len(), 1);
    let csv = "\u{feff}task,worker,label\r\nq1,w1,yes\r\n";
    let rows: Vec<_> = FeedbackReader::from_reader("bom.csv", Cursor::new(csv), None)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows[0].record,
        rlhf_data::records::Label::new("q1", "w1", "yes").into()
    );
}
