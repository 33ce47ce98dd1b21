//! Tasks in the database: loading (idempotent by content hash) and reading back.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::{Store, now_ms};
use crate::error::{LabelError, Result};
use crate::load::LoadedTask;
use crate::task::{Mode, TaskSpec};

/// What loading a task file did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LoadSummary {
    /// Tasks read from the file.
    pub read: u64,
    /// Tasks added.
    pub added: u64,
    /// Of those, gold items.
    pub added_gold: u64,
    /// Tasks already in the database (same content), left as they were.
    pub already_present: u64,
}

/// A task row: its database id and content.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTask {
    /// Database id (`t-{id}` in the API).
    pub id: i64,
    /// The task.
    pub spec: TaskSpec,
}

fn json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| LabelError::Corrupt(format!("task {what}: {e}")))
}

/// The columns [`task_of_row`] reads, in order.
pub const TASK_COLUMNS: &str =
    "id, source_id, prompt, responses, questions, rules, mode, gold, priority";

/// Decodes a row selected with [`TASK_COLUMNS`].
pub fn task_of_row(row: &Row<'_>) -> rusqlite::Result<(i64, [String; 6], Option<String>, i64)> {
    Ok((
        row.get(0)?,
        [
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
        ],
        row.get(7)?,
        row.get(8)?,
    ))
}

/// Builds the task of a decoded row.
pub fn decode_task(raw: (i64, [String; 6], Option<String>, i64)) -> Result<StoredTask> {
    let (id, [source_id, prompt, responses, questions, rules, mode], gold, priority) = raw;
    Ok(StoredTask {
        id,
        spec: TaskSpec {
            source_id,
            prompt: json(&prompt, "prompt")?,
            responses: json(&responses, "responses")?,
            questions: json(&questions, "questions")?,
            rules: json(&rules, "rules")?,
            mode: Mode::from_name(&mode)
                .ok_or_else(|| LabelError::Corrupt(format!("task {id}: mode `{mode}`")))?,
            gold: gold.as_deref().map(|g| json(g, "gold")).transpose()?,
            priority,
        },
    })
}

/// The task with database id `id`.
pub fn get_task(conn: &Connection, id: i64) -> Result<Option<StoredTask>> {
    let raw = conn
        .query_row(
            &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"),
            [id],
            task_of_row,
        )
        .optional()?;
    raw.map(decode_task).transpose()
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Plain data (strings, numbers, lists): serialising cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

impl Store {
    /// Adds the tasks not yet present (by content hash) in one transaction. A task whose id is
    /// already used by a different task is an error naming its line.
    pub fn add_tasks(&self, file: &std::path::Path, tasks: &[LoadedTask]) -> Result<LoadSummary> {
        let (file, tasks) = (file.to_path_buf(), tasks.to_vec());
        self.write(move |conn| {
            let tx = conn.savepoint()?;
            let mut summary = LoadSummary::default();
            let now = now_ms();
            for LoadedTask { line, task } in &tasks {
                summary.read += 1;
                let hash = task.content_hash();
                let present: Option<i64> = tx
                    .query_row(
                        "SELECT id FROM tasks WHERE content_hash = ?1",
                        [&hash],
                        |r| r.get(0),
                    )
                    .optional()?;
                if present.is_some() {
                    summary.already_present += 1;
                    continue;
                }
                let taken: Option<i64> = tx
                    .query_row(
                        "SELECT id FROM tasks WHERE source_id = ?1",
                        [&task.source_id],
                        |r| r.get(0),
                    )
                    .optional()?;
                if taken.is_some() {
                    return Err(LabelError::TaskFile {
                        file: file.clone(),
                        line: *line,
                        field: "id".into(),
                        expected: format!(
                            "an id not used by another task in the database, `{}` names a task \
                             with different content",
                            task.source_id
                        ),
                    });
                }
                tx.execute(
                    "INSERT INTO tasks (source_id, content_hash, prompt, responses, questions, \
                     rules, mode, is_gold, gold, priority, created) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![
                        task.source_id,
                        hash,
                        to_json(&task.prompt),
                        to_json(&task.responses),
                        to_json(&task.questions),
                        to_json(&task.rules),
                        task.mode.as_str(),
                        task.is_gold(),
                        task.gold.as_ref().map(to_json),
                        task.priority,
                        now,
                    ],
                )?;
                summary.added += 1;
                summary.added_gold += u64::from(task.is_gold());
            }
            tx.commit()?;
            Ok(summary)
        })
    }

    /// Reads `path` ([`crate::load::read_tasks`]) and adds its tasks.
    pub fn load_tasks(
        &self,
        path: &std::path::Path,
        role: crate::load::TaskRole,
    ) -> Result<LoadSummary> {
        let tasks = crate::load::read_tasks(path, role)?;
        self.add_tasks(path, &tasks)
    }

    /// The task with database id `id`.
    pub fn task(&self, id: i64) -> Result<Option<StoredTask>> {
        self.read(|conn| get_task(conn, id))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::temp_store;
    use crate::load::{LoadedTask, TaskRole};
    use crate::task::{Mode, TaskSpec};
    use rlhf_data::records::Prompt;

    fn task(id: &str, text: &str) -> LoadedTask {
        LoadedTask {
            line: 1,
            task: TaskSpec {
                source_id: id.into(),
                prompt: Prompt::user(text),
                responses: vec!["a".into(), "b".into()],
                questions: vec![],
                rules: vec![],
                mode: Mode::Pair,
                gold: None,
                priority: 0,
            },
        }
    }

    #[test]
    fn loading_twice_adds_nothing_and_reused_ids_are_refused() {
        let (store, dir) = temp_store("tasks");
        let file = std::path::Path::new("t.jsonl");
        let tasks = [task("x", "p1"), task("y", "p2")];
        assert_eq!(store.add_tasks(file, &tasks).unwrap().added, 2);
        let again = store.add_tasks(file, &tasks).unwrap();
        assert_eq!((again.added, again.already_present), (0, 2));
        let err = store.add_tasks(file, &[task("x", "other")]).unwrap_err();
        assert!(err.to_string().contains("field `id`"), "{err}");
        let back = store.task(1).unwrap().unwrap();
        assert_eq!(back.spec, tasks[0].task);
        let _ = TaskRole::Tasks;
        std::fs::remove_dir_all(dir).unwrap();
    }
}
