//! TRL preference JSONL: `prompt`/`chosen`/`rejected` as plain strings, or conversational lists of
//! `{role, content}`; the implicit-prompt variant (`chosen`/`rejected` only); optional `margin`.
//!
//! Reading:
//! - plain explicit: the prompt string becomes one user turn;
//! - conversational explicit: the prompt messages become turns; `chosen` and `rejected` must each
//!   be one assistant message;
//! - conversational implicit: the prompt is the longest common prefix of the two message lists,
//!   and what follows must be one assistant message on each side;
//! - plain implicit: the prompt is the longest common prefix of the two strings, moved back to
//!   its last whitespace so the responses start with it (`"The sky is blue"` / `"The sky is
//!   green"` gives prompt `"The sky is"` and responses `" blue"`, `" green"`).
//!
//! The item id is the hash of the prompt; there is no rater.
//!
//! Writing: plain strings when the prompt is a single user turn, conversational otherwise, always
//! with an explicit prompt; `margin` kept; rater, timestamp and confidence counted as dropped.

use serde::Serialize;
use serde_json::Value;

use super::item_id::prompt_item_id;
use super::json::{self, Fields, describe};
use super::writer::Dropped;
use crate::records::{FeedbackMeta, InvalidRecord, Pairwise, Prompt, Role, Turn};

/// Parses one TRL line into a pairwise record.
pub fn parse_line(line: &str) -> Result<Pairwise, InvalidRecord> {
    let map = json::parse_object(line)?;
    let fields = Fields::new(&map, "");
    let margin = fields.opt_f64("margin")?;
    let chosen = fields
        .get("chosen")
        .ok_or_else(|| fields.error("chosen", "a string or a list of messages (missing)"))?;
    let rejected = fields
        .get("rejected")
        .ok_or_else(|| fields.error("rejected", "a string or a list of messages (missing)"))?;
    let (prompt, chosen, rejected) = match fields.get("prompt") {
        None | Some(Value::Null) => implicit(chosen, rejected)?,
        Some(Value::String(prompt)) => {
            let chosen = plain(chosen, "chosen")?;
            let rejected = plain(rejected, "rejected")?;
            (
                Prompt::user(prompt.as_str()),
                chosen.to_string(),
                rejected.to_string(),
            )
        }
        Some(Value::Array(messages)) => {
            let prompt = Prompt::new(parse_messages(messages, "prompt")?);
            let chosen = one_assistant(
                &parse_messages(as_array(chosen, "chosen")?, "chosen")?,
                "chosen",
            )?;
            let rejected = one_assistant(
                &parse_messages(as_array(rejected, "rejected")?, "rejected")?,
                "rejected",
            )?;
            (prompt, chosen, rejected)
        }
        Some(other) => {
            return Err(fields.error(
                "prompt",
                format!("a string or a list of messages, got {}", describe(other)),
            ));
        }
    };
    let meta = FeedbackMeta::new(prompt_item_id(&prompt));
    Ok(Pairwise {
        meta,
        prompt,
        chosen,
        rejected,
        margin,
    })
}

fn plain<'v>(value: &'v Value, field: &str) -> Result<&'v str, InvalidRecord> {
    value.as_str().ok_or_else(|| {
        InvalidRecord::new(
            field,
            format!("a string like the plain `prompt`, got {}", describe(value)),
        )
    })
}

fn as_array<'v>(value: &'v Value, field: &str) -> Result<&'v [Value], InvalidRecord> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(InvalidRecord::new(
            field,
            format!(
                "a list of messages like the conversational `prompt`, got {}",
                describe(other)
            ),
        )),
    }
}

fn parse_messages(items: &[Value], field: &str) -> Result<Vec<Turn>, InvalidRecord> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("{field}[{i}]");
            let Value::Object(map) = item else {
                return Err(InvalidRecord::new(
                    path,
                    format!("a {{role, content}} object, got {}", describe(item)),
                ));
            };
            let message = Fields::new(map, &path);
            let role = match message.str("role")? {
                "user" | "human" => Role::User,
                "assistant" => Role::Assistant,
                "system" => Role::System,
                other => {
                    return Err(message.error(
                        "role",
                        format!("`user`, `assistant` or `system`, got `{other}`"),
                    ));
                }
            };
            Ok(Turn::new(role, message.str("content")?))
        })
        .collect()
}

/// The text of a completion that must be exactly one assistant message.
fn one_assistant(messages: &[Turn], field: &str) -> Result<String, InvalidRecord> {
    match messages {
        [only] if only.role == Role::Assistant => Ok(only.content.clone()),
        [only] => Err(InvalidRecord::new(
            format!("{field}[0].role"),
            format!("`assistant` for the response, got `{}`", only.role.as_str()),
        )),
        _ => Err(InvalidRecord::new(
            field,
            format!(
                "one assistant message after the prompt, got {}",
                messages.len()
            ),
        )),
    }
}

type Split = (Prompt, String, String);

fn implicit(chosen: &Value, rejected: &Value) -> Result<Split, InvalidRecord> {
    match (chosen, rejected) {
        (Value::String(c), Value::String(r)) => implicit_plain(c, r),
        (Value::Array(c), Value::Array(r)) => {
            let c = parse_messages(c, "chosen")?;
            let r = parse_messages(r, "rejected")?;
            let shared = c.iter().zip(&r).take_while(|(a, b)| a == b).count();
            if shared == 0 {
                return Err(InvalidRecord::new(
                    "rejected",
                    "messages sharing a prompt with `chosen` (implicit prompt)",
                ));
            }
            let chosen = one_assistant(&c[shared..], "chosen")?;
            let rejected = one_assistant(&r[shared..], "rejected")?;
            Ok((Prompt::new(c[..shared].to_vec()), chosen, rejected))
        }
        (Value::String(_), other) => Err(InvalidRecord::new(
            "rejected",
            format!("a string like `chosen`, got {}", describe(other)),
        )),
        (Value::Array(_), other) => Err(InvalidRecord::new(
            "rejected",
            format!("a list of messages like `chosen`, got {}", describe(other)),
        )),
        (other, _) => Err(InvalidRecord::new(
            "chosen",
            format!("a string or a list of messages, got {}", describe(other)),
        )),
    }
}

fn implicit_plain(chosen: &str, rejected: &str) -> Result<Split, InvalidRecord> {
    let common = chosen
        .char_indices()
        .zip(rejected.chars())
        .find(|((_, a), b)| a != b)
        .map_or(chosen.len().min(rejected.len()), |((i, _), _)| i);
    // `common` is a char boundary of both (equal prefixes); back up to the last whitespace.
    let shared = &chosen[..common];
    let split = shared
        .rfind(char::is_whitespace)
        .filter(|&i| i > 0)
        .unwrap_or(common);
    if split == 0 {
        return Err(InvalidRecord::new(
            "rejected",
            "a string sharing a prompt prefix with `chosen` (implicit prompt)",
        ));
    }
    Ok((
        Prompt::user(&chosen[..split]),
        chosen[split..].to_string(),
        rejected[split..].to_string(),
    ))
}

#[derive(Serialize)]
struct PlainOut<'a> {
    prompt: &'a str,
    chosen: &'a str,
    rejected: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    margin: Option<f64>,
}

#[derive(Serialize)]
struct ConversationalOut<'a> {
    prompt: &'a Prompt,
    chosen: [&'a Turn; 1],
    rejected: [&'a Turn; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    margin: Option<f64>,
}

/// Writes `record` as one TRL line (with its newline) onto `out`.
pub fn write_line(
    record: &Pairwise,
    out: &mut Vec<u8>,
    dropped: &mut Dropped,
) -> Result<(), String> {
    let written = match record.prompt.turns.as_slice() {
        [only] if only.role == Role::User => serde_json::to_writer(
            &mut *out,
            &PlainOut {
                prompt: &only.content,
                chosen: &record.chosen,
                rejected: &record.rejected,
                margin: record.margin,
            },
        ),
        _ => {
            let chosen = Turn::assistant(record.chosen.as_str());
            let rejected = Turn::assistant(record.rejected.as_str());
            serde_json::to_writer(
                &mut *out,
                &ConversationalOut {
                    prompt: &record.prompt,
                    chosen: [&chosen],
                    rejected: [&rejected],
                    margin: record.margin,
                },
            )
        }
    };
    written.map_err(|e| format!("cannot encode JSON: {e}"))?;
    out.push(b'\n');
    dropped.meta_beyond_prompt_id(&record.meta, &record.prompt);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_explicit_with_margin() {
        let p = parse_line(r#"{"prompt": "2+2?", "chosen": "4", "rejected": "5", "margin": 1.5}"#)
            .unwrap();
        assert_eq!(p.prompt, Prompt::user("2+2?"));
        assert_eq!(
            (p.chosen.as_str(), p.rejected.as_str(), p.margin),
            ("4", "5", Some(1.5))
        );
    }

    #[test]
    fn conversational_explicit() {
        let line = r#"{"prompt": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            "chosen": [{"role": "assistant", "content": "hello"}], "rejected": [{"role": "assistant", "content": "go away"}]}"#;
        let p = parse_line(&line.replace('\n', " ")).unwrap();
        assert_eq!(
            p.prompt.turns,
            [Turn::new(Role::System, "be brief"), Turn::user("hi")]
        );
        assert_eq!(p.rejected, "go away");
    }

    #[test]
    fn implicit_prompts_are_the_shared_prefix() {
        let p = parse_line(r#"{"chosen": "The sky is blue.", "rejected": "The sky is green."}"#)
            .unwrap();
        assert_eq!(p.prompt, Prompt::user("The sky is"));
        assert_eq!(
            (p.chosen.as_str(), p.rejected.as_str()),
            (" blue.", " green.")
        );
        let conv = r#"{"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}]}"#;
        let p = parse_line(&conv.replace('\n', " ")).unwrap();
        assert_eq!(
            (p.prompt.clone(), p.chosen.as_str()),
            (Prompt::user("q"), "a")
        );
        let no_share = parse_line(r#"{"chosen": "abc", "rejected": "xyz"}"#).unwrap_err();
        assert_eq!(no_share.field, "rejected");
        // Multi-byte characters at the split point never cut a character.
        let p = parse_line(r#"{"chosen": "Ça va é", "rejected": "Ça va è"}"#).unwrap();
        assert_eq!(p.chosen, " é");
    }

    #[test]
    fn errors_name_the_field() {
        let err = |l: &str| parse_line(l).unwrap_err();
        assert_eq!(err(r#"{"prompt": "p", "chosen": "a"}"#).field, "rejected");
        assert_eq!(
            err(r#"{"prompt": "p", "chosen": [], "rejected": "b"}"#).field,
            "chosen"
        );
        assert_eq!(
            err(r#"{"prompt": [{"role": "bot", "content": "x"}], "chosen": [], "rejected": []}"#)
                .field,
            "prompt[0].role"
        );
        assert_eq!(
            err(r#"{"prompt": [{"role": "user"}], "chosen": [], "rejected": []}"#).field,
            "prompt[0].content"
        );
        let two = r#"{"prompt": [], "chosen": [{"role": "user", "content": "a"}], "rejected": []}"#;
        assert_eq!(err(two).field, "chosen[0].role");
        assert_eq!(
            err(r#"{"prompt": "p", "chosen": "a", "rejected": "b", "margin": "x"}"#).field,
            "margin"
        );
        assert_eq!(
            err(r#"{"prompt": 7, "chosen": "a", "rejected": "b"}"#).field,
            "prompt"
        );
    }

    #[test]
    fn written_lines_read_back() {
        let mut dropped = Dropped::default();
        for prompt in [
            Prompt::user("plain"),
            Prompt::new(vec![
                Turn::new(Role::System, "s"),
                Turn::user("u"),
                Turn::assistant("a"),
                Turn::user("u2"),
            ]),
        ] {
            let record = Pairwise::new(
                FeedbackMeta::new(prompt_item_id(&prompt)),
                prompt,
                "good",
                "bad",
            )
            .with_margin(0.25);
            let mut out = Vec::new();
            write_line(&record, &mut out, &mut dropped).unwrap();
            let text = std::str::from_utf8(&out).unwrap();
            assert_eq!(parse_line(text.trim_end()).unwrap(), record, "{text}");
        }
        assert!(dropped.is_empty());
    }
}
