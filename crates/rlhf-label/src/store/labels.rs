//! Submitting labels: checked against the task, written in one transaction with the rater's
//! new standing, idempotent per assignment (`labels.assignment_id` is UNIQUE).

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::raters::RaterStatus;
use super::tasks::get_task;
use super::{Store, now_ms};
use crate::config::ServeConfig;
use crate::error::{LabelError, Result};
use crate::task::{Mode, TaskSpec};

/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

/// A rule a rater says a response breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Response index.
    pub response: usize,
    /// Rule id.
    pub rule: String,
}

/// A rater's answer to an assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// The assignment answered.
    pub assignment_id: i64,
    /// Response indices, best first: every index once (two entries in pair mode).
    pub ranking: Vec<usize>,
    /// Question id -> chosen choice, every question answered.
    pub answers: BTreeMap<String, String>,
    /// Rules broken.
    pub violations: Vec<Violation>,
    /// Free text.
    pub note: String,
}

/// The stored label's id, and whether it was stored before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Submitted {
    /// Database id.
    pub label_id: i64,
    /// The assignment had been answered already; nothing was written.
    pub duplicate: bool,
}

/// Checks `submission` against `task`: the ranking a permutation of the response indices,
/// every question answered with one of its choices and nothing else, violations naming an
/// existing response and rule once each, the note at most 2000 characters.
pub fn check_submission(task: &TaskSpec, submission: &Submission) -> Result<()> {
    let k = task.responses.len();
    let ranking = &submission.ranking;
    let mut seen = vec![false; k];
    for (i, &r) in ranking.iter().enumerate() {
        if r >= k || seen[r] {
            return Err(LabelError::invalid(
                format!("ranking[{i}]"),
                format!("each response index 0..{k} exactly once, got {r}"),
            ));
        }
        seen[r] = true;
    }
    if ranking.len() != k {
        let expected = match task.mode {
            Mode::Pair => "2 entries (the better response first)".to_string(),
            Mode::Rank => format!("all {k} response indices, best first"),
        };
        return Err(LabelError::invalid(
            "ranking",
            format!("{expected}, got {}", ranking.len()),
        ));
    }
    for q in &task.questions {
        match submission.answers.get(&q.id) {
            None => {
                return Err(LabelError::invalid(
                    format!("answers.{}", q.id),
                    "an answer (every question is required)",
                ));
            }
            Some(a) if !q.choices.contains(a) => {
                return Err(LabelError::invalid(
                    format!("answers.{}", q.id),
                    format!("one of {:?}", q.choices),
                ));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = submission
        .answers
        .keys()
        .find(|id| !task.questions.iter().any(|q| &q.id == *id))
    {
        return Err(LabelError::invalid(
            format!("answers.{extra}"),
            "a question of this task",
        ));
    }
    for (i, v) in submission.violations.iter().enumerate() {
        if v.response >= k {
            return Err(LabelError::invalid(
                format!("violations[{i}].response"),
                format!("a response index below {k}"),
            ));
        }
        if !task.rules.iter().any(|r| r.id == v.rule) {
            return Err(LabelError::invalid(
                format!("violations[{i}].rule"),
                "a rule id of this task",
            ));
        }
        if submission.violations[..i].contains(v) {
            return Err(LabelError::invalid(
                format!("violations[{i}]"),
                "each (response, rule) once",
            ));
        }
    }
    if submission.note.chars().count() > MAX_NOTE_CHARS {
        return Err(LabelError::invalid(
            "note",
            format!("at most {MAX_NOTE_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Whether a ranking's top-1 is among the gold best tier.
pub fn top1_correct(gold: &[Vec<usize>], ranking: &[usize]) -> bool {
    match (gold.first(), ranking.first()) {
        (Some(best), Some(top)) => best.contains(top),
        _ => false,
    }
}

/// The rater's gold record `(answered, correct)`.
pub fn gold_record(conn: &Connection, rater: i64) -> Result<(u64, u64)> {
    let (n, correct): (i64, i64) = conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(l.gold_correct), 0) FROM labels l \
         JOIN assignments a ON a.id = l.assignment_id \
         WHERE a.rater_id = ?1 AND l.gold_correct IS NOT NULL",
        [rater],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((n as u64, correct as u64))
}

/// The standing a gold record earns: screened out below `min_gold_accuracy`, super at or above
/// `super_accuracy`, both only after `min_gold_items` answers. Screening out is final.
pub fn standing(
    current: RaterStatus,
    gold_n: u64,
    gold_correct: u64,
    config: &ServeConfig,
) -> RaterStatus {
    if current == RaterStatus::ScreenedOut {
        return current;
    }
    if gold_n < u64::from(config.min_gold_items) || gold_n == 0 {
        return RaterStatus::Active;
    }
    let accuracy = gold_correct as f64 / gold_n as f64;
    if accuracy < config.min_gold_accuracy {
        RaterStatus::ScreenedOut
    } else if config.super_accuracy.is_some_and(|s| accuracy >= s) {
        RaterStatus::Super
    } else {
        RaterStatus::Active
    }
}

impl Store {
    /// Stores `submission` by `rater`, after checking it; `NotFound` when the assignment is
    /// not this rater's. Returns once the transaction is committed (on disk).
    pub fn submit(
        &self,
        rater: i64,
        submission: &Submission,
        config: &ServeConfig,
    ) -> Result<Submitted> {
        let (submission, config) = (submission.clone(), config.clone());
        self.write(move |conn| {
            let tx = conn.savepoint()?;
            let owner: Option<(i64, i64)> = tx
                .query_row(
                    "SELECT rater_id, task_id FROM assignments WHERE id = ?1",
                    [submission.assignment_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let task_id = match owner {
                Some((owner, task)) if owner == rater => task,
                _ => {
                    return Err(LabelError::NotFound(format!(
                        "no assignment a-{} of yours",
                        submission.assignment_id
                    )));
                }
            };
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT id FROM labels WHERE assignment_id = ?1",
                    [submission.assignment_id],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(label_id) = existing {
                return Ok(Submitted {
                    label_id,
                    duplicate: true,
                });
            }
            let task = get_task(&tx, task_id)?
                .ok_or_else(|| LabelError::Corrupt(format!("task {task_id} is missing")))?;
            check_submission(&task.spec, &submission)?;
            let correct = task
                .spec
                .gold
                .as_ref()
                .map(|gold| top1_correct(gold, &submission.ranking));
            tx.execute(
                "INSERT INTO labels (assignment_id, ranking, answers, violations, note, \
                 gold_correct, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    submission.assignment_id,
                    serde_json::to_string(&submission.ranking).unwrap_or_default(),
                    serde_json::to_string(&submission.answers).unwrap_or_default(),
                    serde_json::to_string(&submission.violations).unwrap_or_default(),
                    submission.note,
                    correct,
                    now_ms(),
                ],
            )?;
            let label_id = tx.last_insert_rowid();
            if correct.is_some() {
                let status: String =
                    tx.query_row("SELECT status FROM raters WHERE id = ?1", [rater], |r| {
                        r.get(0)
                    })?;
                let (n, c) = gold_record(&tx, rater)?;
                let next = standing(RaterStatus::from_name(&status)?, n, c, &config);
                tx.execute(
                    "UPDATE raters SET status = ?1 WHERE id = ?2",
                    params![next.as_str(), rater],
                )?;
            }
            tx.commit()?;
            Ok(Submitted {
                label_id,
                duplicate: false,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{TaskQuestion, TaskRule};
    use rlhf_data::records::Prompt;

    fn task() -> TaskSpec {
        TaskSpec {
            source_id: "t".into(),
            prompt: Prompt::user("p"),
            responses: vec!["a".into(), "b".into(), "c".into()],
            questions: vec![TaskQuestion {
                id: "q1".into(),
                text: "ok?".into(),
                choices: vec!["yes".into(), "no".into()],
            }],
            rules: vec![TaskRule {
                id: "harm".into(),
                text: "harmful".into(),
            }],
            mode: Mode::Rank,
            gold: None,
            priority: 0,
        }
    }

    fn submission() -> Submission {
        Submission {
            assignment_id: 1,
            ranking: vec![2, 0, 1],
            answers: [("q1".to_string(), "yes".to_string())].into(),
            violations: vec![Violation {
                response: 1,
                rule: "harm".into(),
            }],
            note: String::new(),
        }
    }

    fn field_of(s: Submission) -> String {
        match check_submission(&task(), &s).unwrap_err() {
            LabelError::Invalid { field, .. } => field,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn submissions_are_checked_field_by_field() {
        assert!(check_submission(&task(), &submission()).is_ok());
        let mut s = submission();
        s.ranking = vec![2, 2, 1];
        assert_eq!(field_of(s), "ranking[1]");
        let mut s = submission();
        s.ranking.pop();
        assert_eq!(field_of(s), "ranking");
        let mut s = submission();
        s.answers.insert("q1".into(), "maybe".into());
        assert_eq!(field_of(s), "answers.q1");
        let mut s = submission();
        s.answers.clear();
        assert_eq!(field_of(s), "answers.q1");
        let mut s = submission();
        s.violations[0].rule = "nope".into();
        assert_eq!(field_of(s), "violations[0].rule");
        let mut s = submission();
        s.note = "x".repeat(MAX_NOTE_CHARS + 1);
        assert_eq!(field_of(s), "note");
    }

    #[test]
    fn standing_follows_the_rule_and_screening_is_final() {
        let config = ServeConfig::default();
        use RaterStatus::*;
        assert_eq!(standing(Active, 4, 0, &config), Active);
        assert_eq!(standing(Active, 5, 2, &config), ScreenedOut);
        assert_eq!(standing(Active, 5, 3, &config), Active);
        assert_eq!(standing(Active, 10, 9, &config), Super);
        assert_eq!(standing(Super, 10, 8, &config), Active);
        assert_eq!(standing(ScreenedOut, 10, 10, &config), ScreenedOut);
        assert!(top1_correct(&[vec![1, 2], vec![0]], &[2, 1, 0]));
        assert!(!top1_correct(&[vec![1], vec![0]], &[0, 1]));
    }
}
