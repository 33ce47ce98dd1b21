//! The native JSONL: one [`Feedback`] per line, tagged by `kind` (what `--format kway` and
//! `--format native` write, and what the simulated labelers can save).

use super::json::WHOLE_LINE;
use crate::records::{Feedback, InvalidRecord};

/// Parses one native line.
pub fn parse_line(line: &str) -> Result<Feedback, InvalidRecord> {
    serde_json::from_str::<Feedback>(line).map_err(|error| {
        let message = error.to_string();
        let field = if let Some(rest) = message.strip_prefix("missing field `") {
            rest.split('`').next().unwrap_or(WHOLE_LINE).to_string()
        } else if message.starts_with("unknown variant") {
            "kind".to_string()
        } else {
            WHOLE_LINE.to_string()
        };
        InvalidRecord::new(field, format!("a native feedback record ({message})"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_and_kinds_are_named() {
        let err =
            parse_line(r#"{"kind": "ranking", "item_id": "a", "prompt": [], "responses": []}"#)
                .unwrap_err();
        assert_eq!(err.field, "tiers");
        assert_eq!(
            parse_line(r#"{"kind": "vote", "item_id": "a"}"#)
                .unwrap_err()
                .field,
            "kind"
        );
        assert_eq!(parse_line(r#"{"item_id": "a"}"#).unwrap_err().field, "kind");
        assert_eq!(parse_line("[").unwrap_err().field, WHOLE_LINE);
        let ok = parse_line(r#"{"kind": "label", "item_id": "a", "rater_id": "r", "label": "x"}"#)
            .unwrap();
        assert_eq!(ok, crate::records::Label::new("a", "r", "x").into());
    }
}
