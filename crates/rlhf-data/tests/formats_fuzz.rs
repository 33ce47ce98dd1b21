//! No parser panics on any input: arbitrary bytes, and mutations of valid lines (which reach
//! deeper than random bytes), through every reader and every line parser.

use std::io::Cursor;

use proptest::prelude::*;
use rlhf_data::formats::{FeedbackReader, Format, hh, labels, native, oasst, trl};

/// Valid lines of every format, mutated by the strategies below.
const SEEDS: &[&str] = &[
    r#"{"chosen": "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: d", "rejected": "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: e"}"#,
    r#"{"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}], "margin": 1}"#,
    r#"{"chosen": "The sky is blue", "rejected": "The sky is green"}"#,
    r#"{"message_tree_id": "t", "prompt": {"message_id": "p", "role": "prompter", "text": "q", "replies": [{"message_id": "a", "role": "assistant", "text": "x", "rank": 0, "replies": []}, {"message_id": "b", "role": "assistant", "text": "y", "rank": 1, "deleted": false}]}}"#,
    r#"{"kind": "ranking", "item_id": "i", "prompt": [{"role": "user", "content": "q"}], "responses": ["a", "b", "c"], "tiers": [[2], [0, 1]]}"#,
    r#"{"kind": "rule_violations", "item_id": "i", "rater_id": "r", "prompt": [], "rules": [{"id": "x", "text": "t"}], "responses": ["a"], "broken": [["x"]]}"#,
    r#"{"kind": "questions", "item_id": "i", "prompt": [], "response": "a", "questions": [{"id": "q", "text": "t", "options": ["y", "n"]}], "answers": [{"question_id": "q", "choice": 1}]}"#,
    r#"{"task": "t", "worker": 3, "label": "x", "confidence": 0.5}"#,
    "item,rater,label\nq1,w1,yes\n\"q,2\",w2,\"no\"\"\"",
];

/// Pieces spliced into lines: JSON syntax, markers, huge numbers, odd Unicode.
const PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ",",
    ":",
    "null",
    "true",
    "-1",
    "1e999",
    "18446744073709551616",
    "\\u0000",
    "\\ud800",
    "\n\nHuman:",
    "\n\nAssistant:",
    "\n",
    "\r",
    "\"rank\": ",
    "\"replies\": [",
    "\"tiers\": [[",
    "\"role\": \"assistant\"",
    "\u{feff}",
    "é",
    "\u{1F600}",
    "\"kind\": \"label\"",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, piece: usize },
    Flip { at: usize, byte: u8 },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..20).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 0..PIECES.len()).prop_map(|(at, piece)| Mutation::Insert { at, piece }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn mutate(seed: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = seed.as_bytes().to_vec();
    for m in mutations {
        let n = bytes.len().max(1);
        match *m {
            Mutation::Delete { at, len } => {
                let start = (at % n).min(bytes.len());
                let end = (start + len).min(bytes.len());
                bytes.drain(start..end);
            }
            Mutation::Insert { at, piece } => {
                let at = (at % n).min(bytes.len());
                bytes.splice(at..at, PIECES[piece].bytes());
            }
            Mutation::Flip { at, byte } => {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] = byte;
                }
            }
            Mutation::Truncate { at } => bytes.truncate(at % n),
        }
    }
    bytes
}

/// Every reader over `bytes`, with each format forced and with detection; every line parser on
/// the text. Only panics fail.
fn exercise(bytes: &[u8]) {
    let mut formats: Vec<Option<Format>> = Format::ALL.into_iter().map(Some).collect();
    formats.push(None);
    for format in formats {
        if let Ok(reader) = FeedbackReader::from_reader("fuzz", Cursor::new(bytes.to_vec()), format)
        {
            for item in reader.take(10_000) {
                let _ = item;
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = hh::parse_line(text);
        let _ = trl::parse_line(text);
        let _ = oasst::parse_line(text);
        let _ = native::parse_line(text);
        let _ = labels::parse_jsonl_line(text);
        let _ = rlhf_data::formats::detect::detect(text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        exercise(&bytes);
    }

    #[test]
    fn gzip_magic_with_garbage_never_panics(tail in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut bytes = vec![0x1f, 0x8b];
        bytes.extend(tail);
        exercise(&bytes);
    }

    #[test]
    fn mutated_valid_lines_never_panic(seed in 0..SEEDS.len(), mutations in prop::collection::vec(mutation(), 1..6)) {
        exercise(&mutate(SEEDS[seed], &mutations));
    }
}

#[test]
fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
    let deep = "[".repeat(100_000);
    exercise(deep.as_bytes());
    let mut tree = String::from(r#"{"prompt": "#);
    for _ in 0..5_000 {
        tree.push_str(r#"{"message_id": "m", "role": "prompter", "text": "t", "replies": ["#);
    }
    exercise(tree.as_bytes());
}

#[test]
fn the_seeds_are_valid_so_mutations_start_from_real_records() {
    for seed in SEEDS {
        let reader =
            FeedbackReader::from_reader("seed", Cursor::new(seed.to_string()), None).unwrap();
        let records: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
        assert!(!records.is_empty(), "{seed}");
    }
}
