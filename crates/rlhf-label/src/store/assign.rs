//! Handing out tasks. In one write transaction per request:
//! 1. a screened-out rater gets nothing;
//! 2. an open (unsubmitted) assignment of the rater is returned again;
//! 3. otherwise the gold schedule decides whether this task is gold: while the rater has seen
//!    fewer than `min_gold_items` gold items, every `gold_every`-th task (at a per-rater offset),
//!    then each task with probability `gold_rate` (a hash of rater and position, so the schedule
//!    is reproducible and not guessable from the position alone);
//! 4. a gold item is one the rater has not seen, in a per-rater shuffled order; a plain task is
//!    one the rater has not seen with fewer than `target_per_task` assignments (the `full`
//!    flag, kept by this module), lowest id first so tasks fill up to their target one after
//!    another and complete tasks accrue steadily; super raters take the highest priority
//!    first. Only when no such task is left are assignments counted exactly: labels plus open
//!    assignments younger than the lease, so abandoned tasks go to someone else at the end;
//! 5. when no plain task is left the rater is done (no gold-only queue: gold is only a check).
//!
//! `UNIQUE(rater_id, task_id)` makes "never the same task twice" a database invariant.

use rlhf_data::formats::item_id::StableHash;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::raters::RaterStatus;
use super::tasks::{StoredTask, get_task};
use std::sync::atomic::Ordering;

use super::{Store, now_ms};
use crate::config::ServeConfig;
use crate::error::{LabelError, Result};

/// The rater's progress shown with each task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Labels submitted.
    pub done: u64,
    /// `done` plus the tasks still open to this rater (an upper bound: others may fill them).
    pub available: u64,
}

/// An open assignment.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// Database id (`a-{id}` in the API).
    pub id: i64,
    /// The task.
    pub task: StoredTask,
    /// The rater's progress.
    pub progress: Progress,
}

/// The answer to "what next?".
#[derive(Debug, Clone, PartialEq)]
pub enum NextTask {
    /// Label this.
    Assigned(Assignment),
    /// Nothing is left for this rater.
    Done,
    /// The rater is screened out.
    ScreenedOut,
}

/// A 64-bit hash of `parts` (stable across machines and versions).
fn mix(parts: &[u64]) -> u64 {
    let mut hash = StableHash::new();
    for p in parts {
        hash.part(&p.to_le_bytes());
    }
    hash.finish()
}

/// Whether the `position`-th task (0-based) of `rater`, who has seen `gold_seen` gold items, is
/// a gold item.
pub fn gold_wanted(rater: i64, position: u64, gold_seen: u64, config: &ServeConfig) -> bool {
    let every = u64::from(config.gold_every.max(1));
    if gold_seen < u64::from(config.min_gold_items) {
        let offset = mix(&[rater as u64, 0x601d]) % every;
        (position + offset) % every == every - 1
    } else {
        let draw = mix(&[rater as u64, position, 0x7a7e]) >> 11;
        (draw as f64) / ((1u64 << 53) as f64) < config.gold_rate
    }
}

/// Plain tasks this rater has not seen that still need labels, best first.
const PLAIN_CANDIDATES: &str = "
    SELECT t.id,
           (SELECT COUNT(*) FROM assignments a LEFT JOIN labels l ON l.assignment_id = a.id
             WHERE a.task_id = t.id AND (l.id IS NOT NULL OR a.created > ?2)) AS active
      FROM tasks t
     WHERE t.is_gold = 0
       AND NOT EXISTS (SELECT 1 FROM assignments s WHERE s.task_id = t.id AND s.rater_id = ?1)
       AND active < ?3";

fn open_assignment(conn: &Connection, rater: i64) -> Result<Option<(i64, i64)>> {
    Ok(conn
        .query_row(
            "SELECT a.id, a.task_id FROM assignments a LEFT JOIN labels l ON l.assignment_id = a.id \
             WHERE a.rater_id = ?1 AND l.id IS NULL ORDER BY a.id LIMIT 1",
            [rater],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// Sets `full` on `task` (or on every task) from its assignment count.
fn refresh_full(conn: &Connection, task: Option<i64>, target: u32) -> Result<()> {
    let sql = "UPDATE tasks SET full = ((SELECT COUNT(*) FROM assignments a WHERE a.task_id = tasks.id) >= ?1)";
    match task {
        Some(id) => conn.execute(&format!("{sql} WHERE id = ?2"), params![target, id])?,
        None => conn.execute(sql, params![target])?,
    };
    Ok(())
}

fn progress(conn: &Connection, rater: i64) -> Result<Progress> {
    let done: i64 = conn.query_row(
        "SELECT COUNT(*) FROM labels l JOIN assignments a ON a.id = l.assignment_id \
         WHERE a.rater_id = ?1",
        [rater],
        |r| r.get(0),
    )?;
    // Tasks not yet full (an upper bound of what this rater can still get: counting exactly
    // would cost a scan of every task per request).
    let open: i64 = conn.query_row(
        "SELECT COUNT(*) FROM tasks WHERE is_gold = 0 AND full = 0",
        [],
        |r| r.get(0),
    )?;
    let pending: i64 = conn.query_row(
        "SELECT COUNT(*) FROM assignments a LEFT JOIN labels l ON l.assignment_id = a.id \
         WHERE a.rater_id = ?1 AND l.id IS NULL",
        [rater],
        |r| r.get(0),
    )?;
    Ok(Progress {
        done: done as u64,
        available: (done + open + pending) as u64,
    })
}

fn assignment(conn: &Connection, id: i64, task: i64, rater: i64) -> Result<Assignment> {
    let task = get_task(conn, task)?
        .ok_or_else(|| LabelError::Corrupt(format!("assignment {id} names a missing task")))?;
    Ok(Assignment {
        id,
        task,
        progress: progress(conn, rater)?,
    })
}

impl Store {
    /// The rater's open assignment, or a new one (see the module docs).
    pub fn next_task(&self, rater: i64, config: &ServeConfig) -> Result<NextTask> {
        let now = now_ms();
        let lease_start = now - (config.lease_seconds.min(i64::MAX as u64 / 2000) as i64) * 1000;
        let target = config.target_per_task;
        let config = config.clone();
        let full_target = self.full_target.clone();
        self.write(move |conn| {
            let tx = conn.savepoint()?;
            let status: String =
                tx.query_row("SELECT status FROM raters WHERE id = ?1", [rater], |r| {
                    r.get(0)
                })?;
            let status = RaterStatus::from_name(&status)?;
            if status == RaterStatus::ScreenedOut {
                return Ok(NextTask::ScreenedOut);
            }
            if let Some((id, task)) = open_assignment(&tx, rater)? {
                return Ok(NextTask::Assigned(assignment(&tx, id, task, rater)?));
            }
            let (position, gold_seen): (i64, i64) = tx.query_row(
                "SELECT COUNT(*), COALESCE(SUM(t.is_gold), 0) FROM assignments a \
                 JOIN tasks t ON t.id = a.task_id WHERE a.rater_id = ?1",
                [rater],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if full_target.load(Ordering::Relaxed) != target {
                refresh_full(&tx, None, target)?;
            }
            let order = if status == RaterStatus::Super {
                "ORDER BY t.priority DESC, t.id"
            } else {
                "ORDER BY t.id"
            };
            let mut plain: Option<i64> = tx
                .query_row(
                    &format!(
                        "SELECT t.id FROM tasks t WHERE t.is_gold = 0 AND t.full = 0 AND NOT EXISTS \
                         (SELECT 1 FROM assignments s WHERE s.task_id = t.id AND s.rater_id = ?1) \
                         {order} LIMIT 1"
                    ),
                    [rater],
                    |r| r.get(0),
                )
                .optional()?;
            if plain.is_none() {
                plain = tx
                    .query_row(
                        &format!("{PLAIN_CANDIDATES} {order} LIMIT 1"),
                        params![rater, lease_start, target],
                        |r| r.get(0),
                    )
                    .optional()?;
            }
            let Some(plain) = plain else {
                return Ok(NextTask::Done);
            };
            let mut chosen = plain;
            if gold_wanted(rater, position as u64, gold_seen as u64, &config) {
                let salt = (mix(&[rater as u64, 0x5a17]) >> 33) as i64;
                let gold: Option<i64> = tx
                    .query_row(
                        "SELECT t.id FROM tasks t WHERE t.is_gold = 1 AND NOT EXISTS \
                         (SELECT 1 FROM assignments s WHERE s.task_id = t.id AND s.rater_id = ?1) \
                         ORDER BY ((t.id + ?2) * 2654435761) % 4294967296, t.id LIMIT 1",
                        params![rater, salt],
                        |r| r.get(0),
                    )
                    .optional()?;
                chosen = gold.unwrap_or(plain);
            }
            tx.execute(
                "INSERT INTO assignments (rater_id, task_id, created) VALUES (?1, ?2, ?3)",
                params![rater, chosen, now],
            )?;
            let id = tx.last_insert_rowid();
            refresh_full(&tx, Some(chosen), target)?;
            let out = assignment(&tx, id, chosen, rater)?;
            tx.commit()?;
            full_target.store(target, Ordering::Relaxed);
            Ok(NextTask::Assigned(out))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gold_schedule_is_every_nth_then_about_the_rate() {
        let config = ServeConfig::default();
        for rater in 1..20 {
            let warm: Vec<u64> = (0..20)
                .filter(|&p| gold_wanted(rater, p, 0, &config))
                .collect();
            assert_eq!(warm.len(), 4, "rater {rater}: {warm:?}");
            assert!(warm.windows(2).all(|w| w[1] - w[0] == 5));
        }
        let n = 20_000;
        let hits = (0..n).filter(|&p| gold_wanted(7, p, 99, &config)).count();
        let rate = hits as f64 / n as f64;
        assert!((rate - 0.1).abs() < 0.01, "{rate}");
    }
}
