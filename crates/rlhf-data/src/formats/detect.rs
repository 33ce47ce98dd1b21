//! Telling the format of a file from its first non-blank line.

use serde_json::Value;

use super::{Format, json, labels};

/// What detection looks for, for error messages.
pub const DETECTABLE: &str = "a JSON object with `kind` (native), `prompt.replies` or \
`message_tree_id` (OASST), `chosen`+`rejected` (HH-RLHF when they hold `\\n\\nHuman:` turns, else TRL), \
`item|task`+`rater|worker`+`label` (labels JSONL), or a CSV header with item|task, rater|worker and label";

/// The format of a file whose first non-blank line is `line`, or what was found instead.
pub fn detect(line: &str) -> Result<Format, String> {
    let trimmed = line.trim_start_matches('\u{feff}').trim_start();
    if !trimmed.starts_with('{') {
        if labels::is_csv_header(trimmed) {
            return Ok(Format::LabelsCsv);
        }
        let shown: String = trimmed.chars().take(60).collect();
        return Err(format!("{DETECTABLE}; found `{shown}`"));
    }
    let map = json::parse_object(trimmed)
        .map_err(|e| format!("{DETECTABLE}; found invalid JSON: {}", e.expected))?;
    let has = |key: &str| map.contains_key(key);
    if has("kind") {
        return Ok(Format::Native);
    }
    if has("message_tree_id") || matches!(map.get("prompt"), Some(Value::Object(_))) {
        return Ok(Format::Oasst);
    }
    if has("chosen") && has("rejected") {
        let looks_hh = |v: Option<&Value>| {
            v.and_then(Value::as_str).is_some_and(|s| {
                s.contains("\n\nHuman:")
                    || (s.starts_with("Human:") && s.contains("\n\nAssistant:"))
            })
        };
        if !has("prompt") && looks_hh(map.get("chosen")) {
            return Ok(Format::Hh);
        }
        return Ok(Format::Trl);
    }
    let any = |keys: &[&str]| keys.iter().any(|k| has(k));
    if any(&labels::ITEM_KEYS) && any(&labels::RATER_KEYS) && has(labels::LABEL_KEY) {
        return Ok(Format::LabelsJsonl);
    }
    let keys: Vec<&str> = map.keys().map(String::as_str).take(10).collect();
    Err(format!(
        "{DETECTABLE}; found an object with keys [{}]",
        keys.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_is_recognised() {
        assert_eq!(
            detect(r#"{"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "x"}"#),
            Ok(Format::Hh)
        );
        assert_eq!(
            detect(r#"{"prompt": "a", "chosen": "b", "rejected": "c"}"#),
            Ok(Format::Trl)
        );
        assert_eq!(
            detect(r#"{"chosen": "The sky", "rejected": "The sea"}"#),
            Ok(Format::Trl)
        );
        assert_eq!(
            detect(r#"{"message_tree_id": "t", "prompt": {}}"#),
            Ok(Format::Oasst)
        );
        assert_eq!(detect(r#"{"kind": "pairwise"}"#), Ok(Format::Native));
        assert_eq!(
            detect(r#"{"task": 1, "worker": 2, "label": 3}"#),
            Ok(Format::LabelsJsonl)
        );
        assert_eq!(detect("item,rater,label"), Ok(Format::LabelsCsv));
        assert!(
            detect(r#"{"text": "x"}"#)
                .unwrap_err()
                .contains("keys [text]")
        );
        assert!(
            detect("hello world")
                .unwrap_err()
                .contains("found `hello world`")
        );
        assert!(detect("{broken").unwrap_err().contains("invalid JSON"));
    }
}
