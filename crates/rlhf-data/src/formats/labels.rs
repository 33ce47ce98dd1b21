//! Long-format label tables: one judgement per row, `item,rater,label` (crowd-kit's
//! `task,worker,label` header accepted too), as CSV with a header or as JSONL with the same keys.
//! Optional columns `timestamp` and `confidence` are read; other columns are ignored.
//!
//! Writing: the header `item,rater,label` (what rlhf-raters reads). Records other than label rows
//! are flattened where a label table can hold them: a rating gives its score; a question answer
//! gives the option's text with item `item/question`; a rule judgement gives `broken` or `ok` with
//! item `item/response/rule`. Pairs and rankings have no single label and are refused.

use serde_json::Value;

use super::json::{self, Fields};
use super::writer::Dropped;
use crate::records::{Feedback, FeedbackMeta, InvalidRecord, Label};

/// Accepted names of the item column.
pub const ITEM_KEYS: [&str; 2] = ["item", "task"];
/// Accepted names of the rater column.
pub const RATER_KEYS: [&str; 2] = ["rater", "worker"];
/// The label column.
pub const LABEL_KEY: &str = "label";

/// Column positions of a CSV header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    item: usize,
    rater: usize,
    label: usize,
    timestamp: Option<usize>,
    confidence: Option<usize>,
}

/// Whether a first line looks like a label-table CSV header.
pub fn is_csv_header(line: &str) -> bool {
    columns(&split_header(line)).is_ok()
}

fn split_header(line: &str) -> Vec<String> {
    line.trim_start_matches('\u{feff}')
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
        .collect()
}

/// Finds the columns in a header row.
pub fn columns<S: AsRef<str>>(header: &[S]) -> Result<Columns, InvalidRecord> {
    let find = |names: &[&str]| {
        header
            .iter()
            .position(|h| names.contains(&h.as_ref().trim_start_matches('\u{feff}')))
    };
    let missing = |what: &str| {
        let found: Vec<&str> = header.iter().map(AsRef::as_ref).collect();
        InvalidRecord::new(
            "(header)",
            format!("a `{what}` column, found [{}]", found.join(",")),
        )
    };
    Ok(Columns {
        item: find(&ITEM_KEYS).ok_or_else(|| missing("item|task"))?,
        rater: find(&RATER_KEYS).ok_or_else(|| missing("rater|worker"))?,
        label: find(&[LABEL_KEY]).ok_or_else(|| missing("label"))?,
        timestamp: find(&["timestamp"]),
        confidence: find(&["confidence"]),
    })
}

/// Builds a label from one CSV row.
pub fn from_csv_row(columns: &Columns, row: &csv::StringRecord) -> Result<Label, InvalidRecord> {
    let cell = |index: usize, name: &str| {
        row.get(index).ok_or_else(|| {
            InvalidRecord::new(
                name,
                format!(
                    "a value in column {} (the row has {} cells)",
                    index + 1,
                    row.len()
                ),
            )
        })
    };
    let mut label = Label::new(
        cell(columns.item, "item")?,
        cell(columns.rater, "rater")?,
        cell(columns.label, "label")?,
    );
    if let Some(index) = columns.timestamp {
        label.meta.timestamp = Some(cell(index, "timestamp")?)
            .filter(|t| !t.is_empty())
            .map(str::to_string);
    }
    if let Some(index) = columns.confidence {
        let text = cell(index, "confidence")?;
        if !text.is_empty() {
            let value = text.parse::<f64>().map_err(|_| {
                InvalidRecord::new("confidence", format!("a number in [0, 1], got `{text}`"))
            })?;
            label.meta.confidence = Some(value);
        }
    }
    Ok(label)
}

/// Parses one JSONL label line.
pub fn parse_jsonl_line(line: &str) -> Result<Label, InvalidRecord> {
    let map = json::parse_object(line)?;
    let fields = Fields::new(&map, "");
    let key = |names: &[&'static str]| -> Result<&'static str, InvalidRecord> {
        fields.first_of(names).map(|(k, _)| k).ok_or_else(|| {
            InvalidRecord::new(names.join("|"), "a string or number (the field is missing)")
        })
    };
    let mut meta = FeedbackMeta::new(fields.scalar_text(key(&ITEM_KEYS)?)?);
    meta.rater_id = Some(fields.scalar_text(key(&RATER_KEYS)?)?);
    meta.timestamp = fields.opt_str("timestamp")?.map(str::to_string);
    meta.confidence = fields.opt_f64("confidence")?;
    Ok(Label {
        meta,
        label: fields.scalar_text(LABEL_KEY)?,
    })
}

/// The label rows a record flattens to (see the module docs), or why it has none.
pub fn rows_of(record: &Feedback, dropped: &mut Dropped) -> Result<Vec<Label>, String> {
    let meta = record.meta();
    let rater = meta
        .rater_id
        .as_deref()
        .ok_or("a label row needs a rater, the record has none")?;
    let rows = match record {
        Feedback::Label(label) => vec![label.clone()],
        Feedback::Rating(rating) => {
            vec![Label::new(&meta.item_id, rater, rating.value.to_string())]
        }
        Feedback::Questions(q) => {
            let mut rows = Vec::with_capacity(q.answers.len());
            for answer in &q.answers {
                let text = q.answer_text(&answer.question_id).ok_or_else(|| {
                    format!(
                        "answer to `{}` is not among the options",
                        answer.question_id
                    )
                })?;
                rows.push(Label::new(
                    format!("{}/{}", meta.item_id, answer.question_id),
                    rater,
                    text,
                ));
            }
            rows
        }
        Feedback::RuleViolations(v) => {
            let mut rows = Vec::with_capacity(v.responses.len() * v.rules.rules.len());
            for response in 0..v.responses.len() {
                for rule in &v.rules.rules {
                    let verdict = if v.breaks(response, &rule.id) {
                        "broken"
                    } else {
                        "ok"
                    };
                    rows.push(Label::new(
                        format!("{}/{response}/{}", meta.item_id, rule.id),
                        rater,
                        verdict,
                    ));
                }
            }
            rows
        }
        Feedback::Pairwise(_) | Feedback::Ranking(_) => {
            return Err(
                "pairs and rankings have no single label per rater and item; use --format kway"
                    .into(),
            );
        }
    };
    if !matches!(record, Feedback::Label(_)) {
        dropped.add("prompt and responses");
    }
    Ok(rows)
}

/// Writes the CSV header line.
pub fn write_csv_header(out: &mut Vec<u8>) {
    out.extend_from_slice(b"item,rater,label\n");
}

/// Writes one CSV row (with its newline), quoting cells as RFC 4180 requires.
pub fn write_csv_row(
    label: &Label,
    out: &mut Vec<u8>,
    dropped: &mut Dropped,
) -> Result<(), String> {
    let rater = label
        .meta
        .rater_id
        .as_deref()
        .ok_or("a label row needs a rater")?;
    write_csv_cell(&label.meta.item_id, out);
    out.push(b',');
    write_csv_cell(rater, out);
    out.push(b',');
    write_csv_cell(&label.label, out);
    out.push(b'\n');
    dropped.optional_meta(&label.meta);
    Ok(())
}

/// A cell, in double quotes (inner quotes doubled) when it holds a comma, quote or line break.
fn write_csv_cell(cell: &str, out: &mut Vec<u8>) {
    if cell.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(cell.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(cell.as_bytes());
    }
}

/// Writes one JSONL row (with its newline).
pub fn write_jsonl_row(label: &Label, out: &mut Vec<u8>) -> Result<(), String> {
    let mut object = serde_json::Map::new();
    object.insert("item".into(), Value::String(label.meta.item_id.clone()));
    let rater = label
        .meta
        .rater_id
        .clone()
        .ok_or("a label row needs a rater")?;
    object.insert("rater".into(), Value::String(rater));
    object.insert("label".into(), Value::String(label.label.clone()));
    if let Some(t) = &label.meta.timestamp {
        object.insert("timestamp".into(), Value::String(t.clone()));
    }
    if let Some(c) = label.meta.confidence {
        let number = serde_json::Number::from_f64(c).ok_or("confidence is not a finite number")?;
        object.insert("confidence".into(), Value::Number(number));
    }
    serde_json::to_writer(&mut *out, &object).map_err(|e| e.to_string())?;
    out.push(b'\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Answer, LikertScale, Prompt, Question, QuestionFeedback, Rating};

    #[test]
    fn headers_accept_both_vocabularies() {
        assert!(is_csv_header("item,rater,label"));
        assert!(is_csv_header("\u{feff}\"task\", worker ,label,extra"));
        assert!(!is_csv_header("item,label"));
        let c = columns(&["worker", "label", "task", "confidence"]).unwrap();
        assert_eq!((c.item, c.rater, c.label, c.confidence), (2, 0, 1, Some(3)));
        assert!(
            columns(&["item", "rater"])
                .unwrap_err()
                .expected
                .contains("label")
        );
    }

    #[test]
    fn csv_rows_and_jsonl_lines() {
        let c = columns(&["item", "rater", "label", "confidence"]).unwrap();
        let row = csv::StringRecord::from(vec!["t1", "w1", "yes", "0.5"]);
        let label = from_csv_row(&c, &row).unwrap();
        assert_eq!(
            (
                label.meta.item_id.as_str(),
                label.label.as_str(),
                label.meta.confidence
            ),
            ("t1", "yes", Some(0.5))
        );
        let short = csv::StringRecord::from(vec!["t1", "w1"]);
        assert_eq!(from_csv_row(&c, &short).unwrap_err().field, "label");
        let bad = csv::StringRecord::from(vec!["t1", "w1", "x", "high"]);
        assert_eq!(from_csv_row(&c, &bad).unwrap_err().field, "confidence");
        let l = parse_jsonl_line(r#"{"task": 17, "worker": "w", "label": 3}"#).unwrap();
        assert_eq!(l, Label::new("17", "w", "3"));
        assert_eq!(
            parse_jsonl_line(r#"{"item": "a", "label": "x"}"#)
                .unwrap_err()
                .field,
            "rater|worker"
        );
        assert_eq!(
            parse_jsonl_line(r#"{"item": "a", "rater": [], "label": "x"}"#)
                .unwrap_err()
                .field,
            "rater"
        );
    }

    #[test]
    fn records_flatten_into_rows() {
        let mut dropped = Dropped::default();
        let meta = FeedbackMeta::new("i").with_rater("r");
        let rating = Rating {
            meta: meta.clone(),
            prompt: Prompt::user("q"),
            response: "a".into(),
            value: 5,
            scale: LikertScale::new(1, 7),
        };
        assert_eq!(
            rows_of(&rating.into(), &mut dropped).unwrap(),
            [Label::new("i", "r", "5")]
        );
        let q = QuestionFeedback {
            meta,
            prompt: Prompt::user("q"),
            response: "a".into(),
            questions: vec![Question::yes_partly_no("answers", "Does it answer?")],
            answers: vec![Answer {
                question_id: "answers".into(),
                choice: 1,
            }],
        };
        assert_eq!(
            rows_of(&q.into(), &mut dropped).unwrap(),
            [Label::new("i/answers", "r", "partly")]
        );
        let mut out = Vec::new();
        write_csv_row(
            &Label::new("a,b", "r", "say \"hi\""),
            &mut out,
            &mut dropped,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a,b\",r,\"say \"\"hi\"\"\"\n"
        );
    }
}
