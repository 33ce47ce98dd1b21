//! The schema and its migrations: `schema_version` holds the number of migrations applied; each
//! migration runs once, in its own transaction, in order.

use rusqlite::Connection;

use crate::error::{LabelError, Result};

/// Migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: tasks, raters, assignments, labels, settings.
    r#"
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );
    CREATE TABLE tasks (
        id           INTEGER PRIMARY KEY,
        source_id    TEXT NOT NULL UNIQUE,      -- the id the task file gave
        content_hash TEXT NOT NULL UNIQUE,      -- SHA-256 of what raters see
        prompt       TEXT NOT NULL,             -- JSON list of {role, content}
        responses    TEXT NOT NULL,             -- JSON list of strings (K)
        questions    TEXT NOT NULL,             -- JSON list of {id, text, choices}
        rules        TEXT NOT NULL,             -- JSON list of {id, text}
        mode         TEXT NOT NULL CHECK (mode IN ('rank', 'pair')),
        is_gold      INTEGER NOT NULL CHECK (is_gold IN (0, 1)),
        gold         TEXT,                      -- JSON tiers of response indices, best first
        priority     INTEGER NOT NULL DEFAULT 0,
        created      INTEGER NOT NULL           -- Unix milliseconds
    );
    CREATE TABLE raters (
        id           INTEGER PRIMARY KEY,
        name         TEXT NOT NULL UNIQUE,
        token_sha256 BLOB NOT NULL UNIQUE,
        status       TEXT NOT NULL DEFAULT 'active'
                     CHECK (status IN ('active', 'screened_out', 'super')),
        created      INTEGER NOT NULL
    );
    CREATE TABLE assignments (
        id       INTEGER PRIMARY KEY,
        rater_id INTEGER NOT NULL REFERENCES raters(id),
        task_id  INTEGER NOT NULL REFERENCES tasks(id),
        created  INTEGER NOT NULL,
        UNIQUE (rater_id, task_id)              -- a rater never sees a task twice
    );
    CREATE INDEX assignments_by_task ON assignments(task_id);
    CREATE TABLE labels (
        id            INTEGER PRIMARY KEY,
        assignment_id INTEGER NOT NULL UNIQUE REFERENCES assignments(id),  -- idempotent
        ranking       TEXT NOT NULL,            -- JSON response indices, best first
        answers       TEXT NOT NULL,            -- JSON {question id: choice}
        violations    TEXT NOT NULL,            -- JSON [{response, rule}]
        note          TEXT NOT NULL,
        gold_correct  INTEGER,                  -- gold items: top-1 matches the gold top-1
        created       INTEGER NOT NULL
    );
    "#,
    // 2: a task is `full` once its assignments reach the session's target, so finding the
    // next open task is an index range scan instead of a count per task.
    r#"
    ALTER TABLE tasks ADD COLUMN full INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX tasks_open ON tasks(is_gold, full, priority, id);
    "#,
    // 3: one index per pick order, so neither pick sorts the open tasks (the single index of
    // migration 2 made SQLite sort every open task, with its subquery, on each request).
    r#"
    DROP INDEX tasks_open;
    CREATE INDEX tasks_open_by_id ON tasks(is_gold, full, id);
    CREATE INDEX tasks_open_by_priority ON tasks(is_gold, full, priority DESC, id);
    "#,
];

/// The schema version this build writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Applies the missing migrations; refuses a database newer than this build.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);")?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: Option<i64> =
        tx.query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))?;
    let current = current.unwrap_or(0);
    if current > VERSION {
        return Err(LabelError::Corrupt(format!(
            "schema version {current} is newer than this build's {VERSION}; upgrade rlhf"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [i as i64 + 1],
        )?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, VERSION);
        conn.execute("INSERT INTO schema_version (version) VALUES (99)", [])
            .unwrap();
        assert!(
            migrate(&mut conn)
                .unwrap_err()
                .to_string()
                .contains("newer")
        );
    }
}
