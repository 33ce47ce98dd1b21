//! A consistent read of everything the statistics and exports need, in one read transaction.

use std::collections::BTreeMap;

use super::Store;
use super::labels::Violation;
use super::raters::RaterStatus;
use super::tasks::{StoredTask, TASK_COLUMNS, decode_task, task_of_row};
use crate::error::{LabelError, Result};

/// A rater row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaterRow {
    /// Database id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Standing.
    pub status: RaterStatus,
}

/// A stored label with its rater and task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRow {
    /// Database id.
    pub id: i64,
    /// Rater id.
    pub rater: i64,
    /// Task id.
    pub task: i64,
    /// Response indices, best first.
    pub ranking: Vec<usize>,
    /// Question id -> choice.
    pub answers: BTreeMap<String, String>,
    /// Rules broken.
    pub violations: Vec<Violation>,
    /// Free text.
    pub note: String,
    /// For gold items, whether the top-1 matched.
    pub gold_correct: Option<bool>,
    /// Unix milliseconds.
    pub created: i64,
}

/// Tasks, raters and labels at one instant, each in id order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Every task.
    pub tasks: Vec<StoredTask>,
    /// Every rater.
    pub raters: Vec<RaterRow>,
    /// Every label.
    pub labels: Vec<LabelRow>,
}

impl Snapshot {
    /// The task with id `id` (tasks are in id order).
    pub fn task(&self, id: i64) -> Option<&StoredTask> {
        self.tasks
            .binary_search_by_key(&id, |t| t.id)
            .ok()
            .map(|i| &self.tasks[i])
    }

    /// The rater with id `id`.
    pub fn rater(&self, id: i64) -> Option<&RaterRow> {
        self.raters
            .binary_search_by_key(&id, |r| r.id)
            .ok()
            .map(|i| &self.raters[i])
    }
}

fn json<T: serde::de::DeserializeOwned>(text: &str, label: i64) -> Result<T> {
    serde_json::from_str(text).map_err(|e| LabelError::Corrupt(format!("label {label}: {e}")))
}

impl Store {
    /// Reads everything (one read transaction, so counts agree with each other).
    pub fn snapshot(&self) -> Result<Snapshot> {
        self.read(|conn| {
            let tx = conn.unchecked_transaction()?;
            let mut tasks = Vec::new();
            {
                let mut stmt =
                    tx.prepare(&format!("SELECT {TASK_COLUMNS} FROM tasks ORDER BY id"))?;
                for raw in stmt.query_map([], task_of_row)? {
                    tasks.push(decode_task(raw?)?);
                }
            }
            let mut raters = Vec::new();
            {
                let mut stmt = tx.prepare("SELECT id, name, status FROM raters ORDER BY id")?;
                let rows = stmt.query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?;
                for row in rows {
                    let (id, name, status) = row?;
                    raters.push(RaterRow {
                        id,
                        name,
                        status: RaterStatus::from_name(&status)?,
                    });
                }
            }
            let mut labels = Vec::new();
            {
                let mut stmt = tx.prepare(
                    "SELECT l.id, a.rater_id, a.task_id, l.ranking, l.answers, l.violations, \
                     l.note, l.gold_correct, l.created FROM labels l \
                     JOIN assignments a ON a.id = l.assignment_id ORDER BY l.id",
                )?;
                let rows = stmt.query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, Option<bool>>(7)?,
                        r.get::<_, i64>(8)?,
                    ))
                })?;
                for row in rows {
                    let (
                        id,
                        rater,
                        task,
                        ranking,
                        answers,
                        violations,
                        note,
                        gold_correct,
                        created,
                    ) = row?;
                    labels.push(LabelRow {
                        id,
                        rater,
                        task,
                        ranking: json(&ranking, id)?,
                        answers: json(&answers, id)?,
                        violations: json(&violations, id)?,
                        note,
                        gold_correct,
                        created,
                    });
                }
            }
            tx.finish()?;
            Ok(Snapshot {
                tasks,
                raters,
                labels,
            })
        })
    }
}
