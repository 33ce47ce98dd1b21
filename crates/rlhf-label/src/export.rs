//! Exports, written by rlhf-data's writers so that its readers read them back:
//! - `hh`, `trl`: preference pairs (each label's ranking expands to its C(K, 2) pairs);
//! - `kway`: native JSONL, per label a `ranking` record and, when the task has rules, a
//!   `rule_violations` record (what the reward model's rule head trains on);
//! - `labels-csv`: the long `item,rater,label` table rlhf-raters reads: the top-1 response per
//!   task (`item` = task id), each question's answer (`item` = `task/question`), each rule
//!   verdict (`item` = `task/response/rule`).
//!
//! Gold items are left out of the preference exports (`hh`, `trl`, `kway`) unless asked for;
//! `labels-csv` keeps them, since rater statistics need them. Records carry the task's id from
//! its file, the rater's API id (`r3`) and the submission time (RFC 3339, UTC). The CLI and the
//! admin route call [`export`], so both give the same bytes for the same database.

use rlhf_data::formats::{FeedbackWriter, OutputFormat};
use rlhf_data::records::{
    Answer, Feedback, FeedbackMeta, Label, Question, QuestionFeedback, Ranking, Rule, RuleSet,
    RuleViolations,
};

use crate::error::{LabelError, Result};
use crate::store::raters::rater_key;
use crate::store::snapshot::{LabelRow, Snapshot};
use crate::store::tasks::StoredTask;

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// HH-RLHF JSONL pairs.
    Hh,
    /// TRL JSONL pairs.
    Trl,
    /// `item,rater,label` CSV.
    LabelsCsv,
    /// Native JSONL rankings (and rule violations).
    Kway,
}

impl ExportFormat {
    /// Every format.
    pub const ALL: [ExportFormat; 4] = [
        ExportFormat::Hh,
        ExportFormat::Trl,
        ExportFormat::LabelsCsv,
        ExportFormat::Kway,
    ];

    /// The name on the command line and in `?format=`.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Hh => "hh",
            ExportFormat::Trl => "trl",
            ExportFormat::LabelsCsv => "labels-csv",
            ExportFormat::Kway => "kway",
        }
    }

    /// The format named `name`.
    pub fn from_name(name: &str) -> Result<ExportFormat> {
        ExportFormat::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                LabelError::invalid(
                    "format",
                    format!("one of hh, trl, labels-csv, kway, got `{name}`"),
                )
            })
    }

    /// The HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::LabelsCsv => "text/plain; charset=utf-8",
            _ => "application/x-ndjson",
        }
    }

    /// A file name for downloads.
    pub fn file_name(self) -> &'static str {
        match self {
            ExportFormat::Hh => "labels-hh.jsonl",
            ExportFormat::Trl => "labels-trl.jsonl",
            ExportFormat::LabelsCsv => "labels.csv",
            ExportFormat::Kway => "labels-kway.jsonl",
        }
    }

    fn output(self) -> OutputFormat {
        match self {
            ExportFormat::Hh => OutputFormat::Hh,
            ExportFormat::Trl => OutputFormat::Trl,
            ExportFormat::LabelsCsv => OutputFormat::LabelsCsv,
            ExportFormat::Kway => OutputFormat::Native,
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of Unix milliseconds (proleptic Gregorian, UTC).
pub fn rfc3339(ms: i64) -> String {
    let (secs, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn meta(task: &StoredTask, label: &LabelRow) -> FeedbackMeta {
    FeedbackMeta::new(task.spec.source_id.clone())
        .with_rater(rater_key(label.rater))
        .with_timestamp(rfc3339(label.created))
}

fn ranking(task: &StoredTask, label: &LabelRow) -> Ranking {
    Ranking::new(
        meta(task, label),
        task.spec.prompt.clone(),
        task.spec.responses.clone(),
        label.ranking.iter().map(|&i| vec![i]).collect(),
    )
}

fn violations(task: &StoredTask, label: &LabelRow) -> RuleViolations {
    let mut broken = vec![Vec::new(); task.spec.responses.len()];
    for v in &label.violations {
        if let Some(list) = broken.get_mut(v.response) {
            list.push(v.rule.clone());
        }
    }
    RuleViolations {
        meta: meta(task, label),
        prompt: task.spec.prompt.clone(),
        rules: RuleSet::new(
            task.spec
                .rules
                .iter()
                .map(|r| Rule::new(r.id.clone(), r.text.clone()))
                .collect(),
        ),
        responses: task.spec.responses.clone(),
        broken,
    }
}

fn questions(task: &StoredTask, label: &LabelRow) -> QuestionFeedback {
    let questions: Vec<Question> = task
        .spec
        .questions
        .iter()
        .map(|q| Question {
            id: q.id.clone(),
            text: q.text.clone(),
            options: q.choices.clone(),
        })
        .collect();
    let answers = questions
        .iter()
        .filter_map(|q| {
            let chosen = label.answers.get(&q.id)?;
            Some(Answer {
                question_id: q.id.clone(),
                choice: q.options.iter().position(|o| o == chosen)?,
            })
        })
        .collect();
    QuestionFeedback {
        meta: meta(task, label),
        prompt: task.spec.prompt.clone(),
        // The questions are about the task as a whole, not one response.
        response: String::new(),
        questions,
        answers,
    }
}

/// The records one label exports to in `format`.
fn records_of(format: ExportFormat, task: &StoredTask, label: &LabelRow) -> Vec<Feedback> {
    match format {
        ExportFormat::Hh | ExportFormat::Trl => vec![ranking(task, label).into()],
        ExportFormat::Kway => {
            let mut out = vec![ranking(task, label).into()];
            if !task.spec.rules.is_empty() {
                out.push(violations(task, label).into());
            }
            out
        }
        ExportFormat::LabelsCsv => {
            let mut out: Vec<Feedback> = Vec::new();
            if let Some(top) = label.ranking.first() {
                let mut row = Label::new(
                    task.spec.source_id.clone(),
                    rater_key(label.rater),
                    top.to_string(),
                );
                row.meta.timestamp = Some(rfc3339(label.created));
                out.push(row.into());
            }
            if !task.spec.questions.is_empty() {
                out.push(questions(task, label).into());
            }
            if !task.spec.rules.is_empty() {
                out.push(violations(task, label).into());
            }
            out
        }
    }
}

/// Every label of `snapshot` in `format` (gold items only in `labels-csv` or when
/// `include_gold`), in label order.
pub fn export(snapshot: &Snapshot, format: ExportFormat, include_gold: bool) -> Result<Vec<u8>> {
    let keep_gold = include_gold || format == ExportFormat::LabelsCsv;
    let mut writer = FeedbackWriter::new(Vec::new(), format.output(), format.file_name());
    for label in &snapshot.labels {
        let task = snapshot.task(label.task).ok_or_else(|| {
            LabelError::Corrupt(format!("label {} names a missing task", label.id))
        })?;
        if task.spec.is_gold() && !keep_gold {
            continue;
        }
        for record in records_of(format, task, label) {
            writer.write(&record)?;
        }
    }
    let (bytes, _summary) = writer.finish()?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_798_761_599_000), "2026-12-31T23:59:59.000Z");
    }
}
