//! Anthropic HH-RLHF JSONL: `{"chosen": T, "rejected": T}` where each transcript `T` is a run of
//! `\n\nHuman: ...` / `\n\nAssistant: ...` turns.
//!
//! Reading: a turn marker is `\n\nHuman:` or `\n\nAssistant:` (a transcript may also open with a
//! bare `Human:`; whitespace before the first marker is allowed). One space after the colon is
//! part of the marker; the rest of the turn is kept verbatim, so `Human:` inside a turn (without
//! the blank line) stays text. The prompt is every turn before the last `\n\nAssistant:`; the
//! response is that last turn, possibly empty. Both transcripts must share the prompt exactly:
//! records whose conversations diverge earlier (a few exist in the released data) are errors.
//! The item id is the hash of the prompt (see `item_id`); there is no rater.
//!
//! Writing: the inverse, for prompts of user and assistant turns whose contents do not contain a
//! turn marker; margin, rater, timestamp and confidence have no place and are counted as dropped.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::item_id::prompt_item_id;
use super::json::{self, Fields, WHOLE_LINE};
use super::writer::Dropped;
use crate::records::{FeedbackMeta, InvalidRecord, Pairwise, Prompt, Role, Turn};

const HUMAN: &[u8] = b"Human:";
const ASSISTANT: &[u8] = b"Assistant:";

/// The line as serde sees it: both transcripts, borrowed where they hold no escapes.
#[derive(Deserialize)]
struct HhLine<'a> {
    #[serde(borrow)]
    chosen: Cow<'a, str>,
    #[serde(borrow)]
    rejected: Cow<'a, str>,
}

#[derive(Serialize)]
struct HhLineOut<'a> {
    chosen: &'a str,
    rejected: &'a str,
}

/// One turn found in a transcript.
struct Span<'t> {
    role: Role,
    /// Byte offset where the marker (with its blank line) starts.
    marker_start: usize,
    /// The turn's text, one leading space removed.
    content: &'t str,
}

/// Splits a transcript into turns; `Err` says what was expected.
fn split_turns(transcript: &str) -> Result<Vec<Span<'_>>, String> {
    let bytes = transcript.as_bytes();
    let mut spans = Vec::with_capacity(8);
    // (role, marker start, content start) of the turn being read.
    let mut open: Option<(Role, usize, usize)> = None;
    if bytes.starts_with(HUMAN) {
        open = Some((Role::User, 0, HUMAN.len()));
    } else if bytes.starts_with(ASSISTANT) {
        open = Some((Role::Assistant, 0, ASSISTANT.len()));
    }
    let mut close = |open: Option<(Role, usize, usize)>, end: usize| -> Result<(), String> {
        match open {
            Some((role, marker_start, content_start)) => {
                let text = &transcript[content_start..end];
                let content = text.strip_prefix(' ').unwrap_or(text);
                spans.push(Span {
                    role,
                    marker_start,
                    content,
                });
            }
            None if transcript[..end].trim().is_empty() => {}
            None => {
                return Err(
                    "a transcript opening with `\\n\\nHuman:`, found text before the first turn"
                        .into(),
                );
            }
        }
        Ok(())
    };
    for newline in memchr::memchr_iter(b'\n', bytes) {
        if newline == 0 || bytes[newline - 1] != b'\n' {
            continue;
        }
        let rest = &bytes[newline + 1..];
        let (role, marker_len) = if rest.starts_with(HUMAN) {
            (Role::User, HUMAN.len())
        } else if rest.starts_with(ASSISTANT) {
            (Role::Assistant, ASSISTANT.len())
        } else {
            continue;
        };
        let marker_start = newline - 1;
        close(open, marker_start)?;
        open = Some((role, marker_start, newline + 1 + marker_len));
    }
    if open.is_none() {
        return Err(
            "a transcript of `\\n\\nHuman:` / `\\n\\nAssistant:` turns, found no turn marker"
                .into(),
        );
    }
    close(open, bytes.len())?;
    Ok(spans)
}

/// The turns of one transcript, with the final assistant turn split off.
struct Transcript<'t> {
    spans: Vec<Span<'t>>,
}

impl<'t> Transcript<'t> {
    fn parse(text: &'t str, field: &str) -> Result<Self, InvalidRecord> {
        let spans = split_turns(text).map_err(|e| InvalidRecord::new(field, e))?;
        match spans.last() {
            Some(last) if last.role == Role::Assistant => {}
            _ => {
                return Err(InvalidRecord::new(
                    field,
                    "a transcript ending with an `\\n\\nAssistant:` turn, the last turn is `Human:`",
                ));
            }
        }
        if spans.len() < 2 {
            return Err(InvalidRecord::new(
                field,
                "at least one turn before the final `\\n\\nAssistant:`",
            ));
        }
        Ok(Transcript { spans })
    }

    /// Byte offset where the final assistant turn's marker starts: the prompt is before it.
    fn prompt_end(&self) -> usize {
        self.spans[self.spans.len() - 1].marker_start
    }

    fn prompt_spans(&self) -> &[Span<'t>] {
        &self.spans[..self.spans.len() - 1]
    }

    fn response(&self) -> &'t str {
        self.spans[self.spans.len() - 1].content
    }
}

/// Parses one HH-RLHF line into a pairwise record.
pub fn parse_line(line: &str) -> Result<Pairwise, InvalidRecord> {
    let raw: HhLine<'_> = serde_json::from_str(line).map_err(|e| diagnose(line, e))?;
    let chosen = Transcript::parse(&raw.chosen, "chosen")?;
    let rejected_response =
        match shared_prompt_response(&raw.chosen, chosen.prompt_end(), &raw.rejected) {
            Some(response) => response,
            None => {
                let rejected = Transcript::parse(&raw.rejected, "rejected")?;
                check_same_prompt(&chosen, &rejected)?;
                rejected.response()
            }
        };
    let prompt = Prompt::new(
        chosen
            .prompt_spans()
            .iter()
            .map(|s| Turn::new(s.role, s.content))
            .collect(),
    );
    let meta = FeedbackMeta::new(prompt_item_id(&prompt));
    Ok(Pairwise::new(
        meta,
        prompt,
        chosen.response(),
        rejected_response,
    ))
}

/// The fast path: when `rejected` starts with the same bytes as `chosen` up to chosen's final
/// marker and the rest is exactly one assistant turn, that turn's text.
fn shared_prompt_response<'t>(
    chosen: &str,
    prompt_end: usize,
    rejected: &'t str,
) -> Option<&'t str> {
    let prefix = chosen.as_bytes().get(..prompt_end)?;
    if rejected.as_bytes().get(..prompt_end)? != prefix {
        return None;
    }
    let spans = split_turns(rejected.get(prompt_end..)?).ok()?;
    match spans.as_slice() {
        [only] if only.role == Role::Assistant && only.marker_start == 0 => Some(only.content),
        _ => None,
    }
}

/// The slow path's check that both transcripts hold the same prompt turns.
fn check_same_prompt(
    chosen: &Transcript<'_>,
    rejected: &Transcript<'_>,
) -> Result<(), InvalidRecord> {
    let (c, r) = (chosen.prompt_spans(), rejected.prompt_spans());
    if same_turns(c, r) {
        return Ok(());
    }
    let shorter = c.len().min(r.len());
    let differ_at = c
        .iter()
        .zip(r)
        .position(|(a, b)| a.role != b.role || a.content != b.content)
        .unwrap_or(shorter);
    let difference = if differ_at == shorter {
        format!(
            "the prompts have {} and {} turns and agree on the first {shorter}",
            c.len(),
            r.len()
        )
    } else {
        format!("first difference at turn {differ_at}")
    };
    Err(InvalidRecord::new(
        "rejected",
        format!("the conversation of `chosen` before the final `\\n\\nAssistant:`; {difference}"),
    ))
}

fn same_turns(a: &[Span<'_>], b: &[Span<'_>]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.role == y.role && x.content == y.content)
}

/// Turns a serde failure into the field that is wrong and what was expected there.
fn diagnose(line: &str, error: serde_json::Error) -> InvalidRecord {
    let map = match json::parse_object(line) {
        Ok(map) => map,
        Err(invalid) => return invalid,
    };
    let fields = Fields::new(&map, "");
    for key in ["chosen", "rejected"] {
        if let Err(invalid) = fields.str(key) {
            return invalid;
        }
    }
    InvalidRecord::new(WHOLE_LINE, format!("an HH-RLHF record ({error})"))
}

/// Writes `record` as one HH-RLHF line (with its newline) onto `out`.
pub fn write_line(
    record: &Pairwise,
    out: &mut Vec<u8>,
    dropped: &mut Dropped,
) -> Result<(), String> {
    if record.prompt.turns.is_empty() {
        return Err("HH-RLHF needs at least one turn before the response".into());
    }
    let mut prefix = String::new();
    for (i, turn) in record.prompt.turns.iter().enumerate() {
        let marker = match turn.role {
            Role::User => "\n\nHuman: ",
            Role::Assistant => "\n\nAssistant: ",
            Role::System => {
                return Err(format!(
                    "prompt turn {i} is a system turn; HH-RLHF has none"
                ));
            }
        };
        check_content(&turn.content).map_err(|e| format!("prompt turn {i} {e}"))?;
        prefix.push_str(marker);
        prefix.push_str(&turn.content);
    }
    check_content(&record.chosen).map_err(|e| format!("`chosen` {e}"))?;
    check_content(&record.rejected).map_err(|e| format!("`rejected` {e}"))?;
    let chosen = format!("{prefix}\n\nAssistant: {}", record.chosen);
    let rejected = format!("{prefix}\n\nAssistant: {}", record.rejected);
    serde_json::to_writer(
        &mut *out,
        &HhLineOut {
            chosen: &chosen,
            rejected: &rejected,
        },
    )
    .map_err(|e| format!("cannot encode JSON: {e}"))?;
    out.push(b'\n');
    dropped.meta_beyond_prompt_id(&record.meta, &record.prompt);
    if record.margin.is_some() {
        dropped.add("margin");
    }
    Ok(())
}

fn check_content(content: &str) -> Result<(), String> {
    for marker in ["\n\nHuman:", "\n\nAssistant:"] {
        if content.contains(marker) {
            return Err(format!(
                "contains the turn marker {marker:?}, which HH-RLHF cannot quote"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(chosen: &str, rejected: &str) -> String {
        serde_json::to_string(&serde_json::json!({"chosen": chosen, "rejected": rejected})).unwrap()
    }

    #[test]
    fn single_turn_splits_prompt_and_responses() {
        let p = parse_line(&line(
            "\n\nHuman: 2+2?\n\nAssistant: 4",
            "\n\nHuman: 2+2?\n\nAssistant: 5",
        ))
        .unwrap();
        assert_eq!(p.prompt, Prompt::user("2+2?"));
        assert_eq!((p.chosen.as_str(), p.rejected.as_str()), ("4", "5"));
        assert_eq!(p.meta.item_id, prompt_item_id(&Prompt::user("2+2?")));
        assert_eq!(p.meta.rater_id, None);
    }

    #[test]
    fn multi_turn_prompts_keep_their_turns() {
        let c =
            "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: capital of France?\n\nAssistant: Paris.";
        let r =
            "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: capital of France?\n\nAssistant: Lyon.";
        let p = parse_line(&line(c, r)).unwrap();
        assert_eq!(
            p.prompt.turns,
            [
                Turn::user("hi"),
                Turn::assistant("hello"),
                Turn::user("capital of France?")
            ]
        );
        assert_eq!(p.chosen, "Paris.");
    }

    #[test]
    fn edge_cases_of_the_released_data() {
        // No leading blank line; an inline "Human:" inside a turn; an empty final response;
        // two spaces after the colon (one is kept); a newline inside a turn.
        let c = "Human: why?\n\nAssistant: Human: because\nreally\n\nHuman: ok\n\nAssistant:";
        let r =
            "\n\nHuman: why?\n\nAssistant: Human: because\nreally\n\nHuman: ok\n\nAssistant:  sure";
        let p = parse_line(&line(c, r)).unwrap();
        assert_eq!(p.prompt.turns[1], Turn::assistant("Human: because\nreally"));
        assert_eq!((p.chosen.as_str(), p.rejected.as_str()), ("", " sure"));
        // Three newlines before a marker: the first belongs to the turn.
        let p = parse_line(&line(
            "\n\nHuman: a\n\n\nAssistant: b",
            "\n\nHuman: a\n\n\nAssistant: c",
        ))
        .unwrap();
        assert_eq!(p.prompt, Prompt::user("a\n"));
    }

    #[test]
    fn errors_name_the_field() {
        let diverge = line(
            "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: d",
            "\n\nHuman: a\n\nAssistant: x\n\nHuman: c\n\nAssistant: d",
        );
        let err = parse_line(&diverge).unwrap_err();
        assert_eq!(err.field, "rejected");
        assert!(
            err.expected.contains("first difference at turn 1"),
            "{}",
            err.expected
        );
        assert_eq!(
            parse_line(&line("no markers", "\n\nHuman: a\n\nAssistant: b"))
                .unwrap_err()
                .field,
            "chosen"
        );
        // The released data's commonest mismatch: one side goes on for another exchange.
        let longer = line(
            "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: d",
            "\n\nHuman: a\n\nAssistant: x",
        );
        let err = parse_line(&longer).unwrap_err().expected;
        assert!(
            err.contains("the prompts have 3 and 1 turns and agree on the first 1"),
            "{err}"
        );
        let ends_human = line(
            "\n\nHuman: a\n\nAssistant: b\n\nHuman: c",
            "\n\nHuman: a\n\nAssistant: b",
        );
        assert!(
            parse_line(&ends_human)
                .unwrap_err()
                .expected
                .contains("ending with")
        );
        assert_eq!(
            parse_line(&line("\n\nAssistant: b", "\n\nAssistant: c"))
                .unwrap_err()
                .field,
            "chosen"
        );
        assert_eq!(
            parse_line(&line("junk\n\nHuman: a\n\nAssistant: b", "x"))
                .unwrap_err()
                .field,
            "chosen"
        );
        assert_eq!(
            parse_line(r#"{"chosen": 3, "rejected": "x"}"#)
                .unwrap_err()
                .field,
            "chosen"
        );
        assert_eq!(
            parse_line(r#"{"chosen": "x"}"#).unwrap_err().field,
            "rejected"
        );
        assert_eq!(parse_line("not json").unwrap_err().field, WHOLE_LINE);
    }

    #[test]
    fn writing_then_reading_gives_the_record_back() {
        let prompt = Prompt::new(vec![
            Turn::user(" lead space"),
            Turn::assistant(""),
            Turn::user("end\n"),
        ]);
        let record = Pairwise::new(
            FeedbackMeta::new(prompt_item_id(&prompt)),
            prompt,
            "yes\n",
            "",
        );
        let mut out = Vec::new();
        let mut dropped = Dropped::default();
        write_line(&record, &mut out, &mut dropped).unwrap();
        assert_eq!(out.last(), Some(&b'\n'));
        let text = std::str::from_utf8(&out).unwrap().trim_end_matches('\n');
        assert_eq!(parse_line(text).unwrap(), record);
        assert!(dropped.is_empty());
    }

    #[test]
    fn unrepresentable_records_are_refused() {
        let mut dropped = Dropped::default();
        let mut out = Vec::new();
        let system = Pairwise::new(
            FeedbackMeta::new("x"),
            Prompt::new(vec![Turn::new(Role::System, "be nice"), Turn::user("hi")]),
            "a",
            "b",
        );
        assert!(
            write_line(&system, &mut out, &mut dropped)
                .unwrap_err()
                .contains("system")
        );
        let quoting = Pairwise::new(
            FeedbackMeta::new("x"),
            Prompt::user("hi"),
            "a\n\nHuman: b",
            "c",
        );
        assert!(
            write_line(&quoting, &mut out, &mut dropped)
                .unwrap_err()
                .contains("marker")
        );
        assert!(out.is_empty());
    }
}
