//! Reading task files: our task JSONL, or any pair / K-way ranking file rlhf-data reads
//! (HH-RLHF, TRL, OpenAssistant trees, native JSONL).
//!
//! Task JSONL, one task per line:
//! `{"id": "t1", "prompt": "..." | [{"role", "content"}...], "responses": ["...", ...],
//!   "mode": "rank" | "pair" (default: pair for 2 responses, rank otherwise),
//!   "questions": [{"id", "text", "choices": [...]}], "rules": [{"id", "text"}],
//!   "gold": {"ranking": [best, ..., worst]}, "priority": 0}`.
//! A line with `gold` is a gold item. Records of the other formats become tasks whose responses
//! are shown in a shuffled order (fixed by their content); their preference is ignored, unless
//! the file is loaded as gold (`--gold FILE`), where it becomes the gold answer.

use std::io::{BufRead, BufReader};
use std::path::Path;

use rlhf_data::formats::FeedbackReader;
use rlhf_data::records::{Feedback, Prompt, Ranking};
use serde_json::{Map, Value};

use crate::error::{LabelError, Result};
use crate::task::{Mode, TaskQuestion, TaskRule, TaskSpec, presentation_order};

/// Whether the file's records are gold items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskRole {
    /// Ordinary tasks (a task JSONL line with `gold` is still a gold item).
    Tasks,
    /// Gold items: every task must carry the researchers' answer.
    Gold,
}

/// A task and the line it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedTask {
    /// 1-based line.
    pub line: u64,
    /// The task.
    pub task: TaskSpec,
}

/// Reads every task of `path`; the first error stops (file, line, field, what was expected).
pub fn read_tasks(path: &Path, role: TaskRole) -> Result<Vec<LoadedTask>> {
    let tasks = if is_task_jsonl(path)? {
        read_task_jsonl(path)?
    } else {
        read_records(path, role)?
    };
    if role == TaskRole::Gold
        && let Some(t) = tasks.iter().find(|t| !t.task.is_gold())
    {
        return Err(task_error(
            path,
            t.line,
            "gold",
            "a gold answer (`gold.ranking`) on every line of a gold file",
        ));
    }
    if tasks.is_empty() {
        return Err(task_error(path, 1, "(file)", "at least one task"));
    }
    Ok(tasks)
}

fn task_error(path: &Path, line: u64, field: &str, expected: impl Into<String>) -> LabelError {
    LabelError::TaskFile {
        file: path.to_path_buf(),
        line,
        field: field.to_string(),
        expected: expected.into(),
    }
}

fn io_error(path: &Path, source: std::io::Error) -> LabelError {
    LabelError::Io {
        file: path.to_path_buf(),
        action: "cannot read",
        source,
    }
}

/// A task JSONL file: its first non-blank line is an object with `responses` and no `kind`.
fn is_task_jsonl(path: &Path) -> Result<bool> {
    let file = std::fs::File::open(path).map_err(|e| LabelError::Io {
        file: path.to_path_buf(),
        action: "cannot open",
        source: e,
    })?;
    // Gzip and other formats are left to rlhf-data's reader, which detects them.
    for line in BufReader::new(file).lines() {
        let Ok(line) = line else { return Ok(false) };
        if line.trim().is_empty() {
            continue;
        }
        return Ok(match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(map)) => map.contains_key("responses") && !map.contains_key("kind"),
            _ => false,
        });
    }
    Ok(false)
}

fn read_task_jsonl(path: &Path) -> Result<Vec<LoadedTask>> {
    let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let mut tasks: Vec<LoadedTask> = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line_no = index as u64 + 1;
        let text = line.map_err(|e| io_error(path, e))?;
        if text.trim().is_empty() {
            continue;
        }
        let task = parse_task_line(&text)
            .and_then(|task| task.validate().map(|()| task))
            .map_err(|(field, expected)| task_error(path, line_no, &field, expected))?;
        if let Some(first) = tasks.iter().find(|t| t.task.source_id == task.source_id) {
            return Err(task_error(
                path,
                line_no,
                "id",
                format!(
                    "a unique id, `{}` is already used on line {}",
                    task.source_id, first.line
                ),
            ));
        }
        tasks.push(LoadedTask {
            line: line_no,
            task,
        });
    }
    Ok(tasks)
}

type FieldError = (String, String);

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn want<T>(field: &str, expected: &str, value: &Value) -> Result<T, FieldError> {
    Err((
        field.to_string(),
        format!("{expected}, got {}", describe(value)),
    ))
}

fn string(map: &Map<String, Value>, key: &str, path: &str) -> Result<String, FieldError> {
    match map.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) if key == "id" => Ok(n.to_string()),
        Some(other) => want(path, "a string", other),
        None => Err((path.to_string(), "a string (missing)".into())),
    }
}

fn array<'v>(
    map: &'v Map<String, Value>,
    key: &str,
    required: bool,
) -> Result<&'v [Value], FieldError> {
    match map.get(key) {
        Some(Value::Array(items)) => Ok(items),
        None | Some(Value::Null) if !required => Ok(&[]),
        None => Err((key.to_string(), "an array (missing)".into())),
        Some(other) => want(key, "an array", other),
    }
}

fn object<'v>(value: &'v Value, path: &str) -> Result<&'v Map<String, Value>, FieldError> {
    match value {
        Value::Object(map) => Ok(map),
        other => want(path, "an object", other),
    }
}

/// Parses one task JSONL line (invariants are checked by [`TaskSpec::validate`]).
pub fn parse_task_line(line: &str) -> Result<TaskSpec, FieldError> {
    let map = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => map,
        Ok(other) => return want("(line)", "a JSON object", &other),
        Err(e) => return Err(("(line)".into(), format!("a JSON object ({e})"))),
    };
    let prompt = match map.get("prompt") {
        Some(Value::String(s)) => Prompt::user(s.as_str()),
        Some(turns @ Value::Array(_)) => {
            serde_json::from_value::<Prompt>(turns.clone()).map_err(|e| {
                (
                    "prompt".to_string(),
                    format!("a string or a list of {{role, content}} turns ({e})"),
                )
            })?
        }
        Some(other) => return want("prompt", "a string or a list of turns", other),
        None => return Err(("prompt".into(), "a string (missing)".into())),
    };
    let mut responses = Vec::new();
    for (i, r) in array(&map, "responses", true)?.iter().enumerate() {
        match r {
            Value::String(s) => responses.push(s.clone()),
            Value::Object(o) => responses.push(string(o, "text", &format!("responses[{i}].text"))?),
            other => return want(&format!("responses[{i}]"), "a string", other),
        }
    }
    let mode = match map.get("mode") {
        None | Some(Value::Null) if responses.len() == 2 => Mode::Pair,
        None | Some(Value::Null) => Mode::Rank,
        Some(Value::String(m)) => Mode::from_name(m)
            .ok_or_else(|| ("mode".to_string(), format!("`rank` or `pair`, got `{m}`")))?,
        Some(other) => return want("mode", "`rank` or `pair`", other),
    };
    let mut questions = Vec::new();
    for (i, q) in array(&map, "questions", false)?.iter().enumerate() {
        let path = format!("questions[{i}]");
        let q = object(q, &path)?;
        let key = if q.contains_key("choices") {
            "choices"
        } else {
            "options"
        };
        let mut choices = Vec::new();
        for (j, c) in array(q, key, true)
            .map_err(|(_, e)| (format!("{path}.choices"), e))?
            .iter()
            .enumerate()
        {
            match c {
                Value::String(s) => choices.push(s.clone()),
                other => return want(&format!("{path}.choices[{j}]"), "a string", other),
            }
        }
        questions.push(TaskQuestion {
            id: string(q, "id", &format!("{path}.id"))?,
            text: string(q, "text", &format!("{path}.text"))?,
            choices,
        });
    }
    let mut rules = Vec::new();
    for (i, r) in array(&map, "rules", false)?.iter().enumerate() {
        let path = format!("rules[{i}]");
        let r = object(r, &path)?;
        rules.push(TaskRule {
            id: string(r, "id", &format!("{path}.id"))?,
            text: string(r, "text", &format!("{path}.text"))?,
        });
    }
    let gold = match map.get("gold") {
        None | Some(Value::Null) => None,
        Some(g) => {
            let g = object(g, "gold")?;
            let ranking = array(g, "ranking", true).map_err(|(_, e)| ("gold.ranking".into(), e))?;
            let mut tiers = Vec::with_capacity(ranking.len());
            for (i, v) in ranking.iter().enumerate() {
                match v.as_u64() {
                    Some(index) => tiers.push(vec![index as usize]),
                    None => {
                        return want(&format!("gold.ranking[{i}]"), "a response index", v);
                    }
                }
            }
            Some(tiers)
        }
    };
    let priority = match map.get("priority") {
        None | Some(Value::Null) => 0,
        Some(v) => match v.as_i64() {
            Some(p) => p,
            None => return want("priority", "an integer", v),
        },
    };
    Ok(TaskSpec {
        source_id: string(&map, "id", "id")?,
        prompt,
        responses,
        questions,
        rules,
        mode,
        gold,
        priority,
    })
}

fn read_records(path: &Path, role: TaskRole) -> Result<Vec<LoadedTask>> {
    let mut tasks = Vec::new();
    let mut used_ids = std::collections::HashMap::<String, u32>::new();
    for located in FeedbackReader::open(path, None)? {
        let located = located?;
        let line = located.line;
        let ranking = match located.record {
            Feedback::Ranking(r) => r,
            Feedback::Pairwise(p) => Ranking::new(
                p.meta,
                p.prompt,
                vec![p.chosen, p.rejected],
                vec![vec![0], vec![1]],
            ),
            other => {
                return Err(task_error(
                    path,
                    line,
                    "kind",
                    format!(
                        "a pair or a ranking (a labeling task shows K responses), got `{}`",
                        other.kind().as_str()
                    ),
                ));
            }
        };
        let mut task = task_of_ranking(ranking, role == TaskRole::Gold);
        // Item ids of HH / TRL records are prompt hashes: several records may share one.
        let seen = used_ids.entry(task.source_id.clone()).or_insert(0);
        *seen += 1;
        if *seen > 1 {
            task.source_id = format!("{}-{}", task.source_id, *seen);
        }
        task.validate()
            .map_err(|(field, expected)| task_error(path, line, &field, expected))?;
        tasks.push(LoadedTask { line, task });
    }
    Ok(tasks)
}

/// A task of a ranking record, responses shown in a content-fixed shuffled order; the record's
/// ranking becomes the gold answer when `gold`.
fn task_of_ranking(ranking: Ranking, gold: bool) -> TaskSpec {
    let order = presentation_order(&ranking.prompt, &ranking.responses);
    // position[original] = shown
    let mut position = vec![0; order.len()];
    for (shown, &original) in order.iter().enumerate() {
        position[original] = shown;
    }
    let tiers = ranking
        .tiers
        .iter()
        .map(|tier| tier.iter().map(|&i| position[i]).collect())
        .collect();
    let responses: Vec<String> = order
        .iter()
        .map(|&i| ranking.responses[i].clone())
        .collect();
    TaskSpec {
        source_id: ranking.meta.item_id,
        prompt: ranking.prompt,
        mode: if responses.len() == 2 {
            Mode::Pair
        } else {
            Mode::Rank
        },
        responses,
        questions: Vec::new(),
        rules: Vec::new(),
        gold: gold.then_some(tiers),
        priority: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, text: &str) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("rlhf-label-load-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn task_jsonl_reads_and_errors_name_line_and_field() {
        let good =
            r#"{"id":"a","prompt":"p","responses":["x","y","z"],"gold":{"ranking":[2,0,1]}}"#;
        let path = temp(
            "ok.jsonl",
            &format!("{good}\n\n{}\n", good.replace("\"a\"", "\"b\"")),
        );
        let tasks = read_tasks(&path, TaskRole::Tasks).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[1].line, 3);
        assert_eq!(tasks[0].task.gold, Some(vec![vec![2], vec![0], vec![1]]));
        assert_eq!(tasks[0].task.mode, Mode::Rank);
        let bad = temp(
            "bad.jsonl",
            &format!("{good}\n{}\n", good.replace("[2,0,1]", "[2,2,1]")),
        );
        let err = read_tasks(&bad, TaskRole::Tasks).unwrap_err().to_string();
        assert!(err.contains(":2: field `gold.ranking`"), "{err}");
        let bad = temp(
            "bad2.jsonl",
            r#"{"id":"a","prompt":"p","responses":["x",3]}"#,
        );
        let err = read_tasks(&bad, TaskRole::Tasks).unwrap_err().to_string();
        assert!(err.contains(":1: field `responses[1]`"), "{err}");
        let no_gold = temp(
            "nogold.jsonl",
            r#"{"id":"a","prompt":"p","responses":["x","y"]}"#,
        );
        let err = read_tasks(&no_gold, TaskRole::Gold)
            .unwrap_err()
            .to_string();
        assert!(err.contains("field `gold`"), "{err}");
        for p in [path, bad, no_gold] {
            std::fs::remove_file(p).unwrap();
        }
    }

    #[test]
    fn pair_records_become_shuffled_tasks_with_gold_when_asked() {
        let trl = r#"{"prompt":"2+2?","chosen":"4","rejected":"5"}"#;
        let path = temp("trl.jsonl", &format!("{trl}\n{trl}\n"));
        let tasks = read_tasks(&path, TaskRole::Gold).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_ne!(tasks[0].task.source_id, tasks[1].task.source_id);
        let t = &tasks[0].task;
        assert_eq!(t.mode, Mode::Pair);
        let best = t.gold.as_ref().unwrap()[0][0];
        assert_eq!(t.responses[best], "4");
        let plain = read_tasks(&path, TaskRole::Tasks).unwrap();
        assert!(plain[0].task.gold.is_none());
        std::fs::remove_file(path).unwrap();
    }
}
