//! Question-based feedback (WebGPT style): multiple-choice questions about one response.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{FeedbackMeta, InvalidRecord, Prompt};

/// A multiple-choice question asked about a response.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Question {
    /// Short stable id, referred to by answers.
    pub id: String,
    /// The question as shown to raters.
    pub text: String,
    /// The allowed answers, in display order.
    pub options: Vec<String>,
}

impl Question {
    /// The question `id` reading `text` with answers `options`.
    pub fn new(id: impl Into<String>, text: impl Into<String>, options: &[&str]) -> Self {
        Question {
            id: id.into(),
            text: text.into(),
            options: options.iter().map(|o| o.to_string()).collect(),
        }
    }

    /// A question answered `yes`, `partly` or `no` (WebGPT's "does it answer the question?").
    pub fn yes_partly_no(id: impl Into<String>, text: impl Into<String>) -> Self {
        Question::new(id, text, &["yes", "partly", "no"])
    }
}

/// A rater's answer: option `choice` of the question `question_id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Answer {
    /// The id of the question answered.
    pub question_id: String,
    /// Index into the question's `options`.
    pub choice: usize,
}

/// A rater's answers to multiple-choice questions about one response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuestionFeedback {
    /// Item, rater, time, confidence.
    #[serde(flatten)]
    pub meta: FeedbackMeta,
    /// The conversation the response answers.
    pub prompt: Prompt,
    /// The response judged.
    pub response: String,
    /// The questions asked.
    pub questions: Vec<Question>,
    /// The rater's answers, at most one per question (unanswered questions have none).
    pub answers: Vec<Answer>,
}

impl QuestionFeedback {
    /// The text of the option chosen for `question_id`, if answered.
    pub fn answer_text(&self, question_id: &str) -> Option<&str> {
        let answer = self.answers.iter().find(|a| a.question_id == question_id)?;
        let question = self.questions.iter().find(|q| q.id == question_id)?;
        question.options.get(answer.choice).map(String::as_str)
    }

    /// Checks: unique question ids with at least 2 options, each answer refers to a question once
    /// and picks an existing option.
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        self.meta.validate()?;
        let mut ids = HashSet::new();
        for (i, q) in self.questions.iter().enumerate() {
            if q.id.is_empty() || !ids.insert(q.id.as_str()) {
                return Err(InvalidRecord::new(
                    format!("questions[{i}].id"),
                    format!("a unique non-empty id, got `{}`", q.id),
                ));
            }
            if q.options.len() < 2 {
                return Err(InvalidRecord::new(
                    format!("questions[{i}].options"),
                    "at least 2 options",
                ));
            }
        }
        let mut answered = HashSet::new();
        for (i, a) in self.answers.iter().enumerate() {
            let Some(q) = self.questions.iter().find(|q| q.id == a.question_id) else {
                return Err(InvalidRecord::new(
                    format!("answers[{i}].question_id"),
                    format!("the id of a question, got `{}`", a.question_id),
                ));
            };
            if !answered.insert(a.question_id.as_str()) {
                return Err(InvalidRecord::new(
                    format!("answers[{i}].question_id"),
                    format!(
                        "one answer per question, `{}` answered twice",
                        a.question_id
                    ),
                ));
            }
            if a.choice >= q.options.len() {
                return Err(InvalidRecord::new(
                    format!("answers[{i}].choice"),
                    format!(
                        "an option index below {}, got {}",
                        q.options.len(),
                        a.choice
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(answers: Vec<(&str, usize)>) -> QuestionFeedback {
        QuestionFeedback {
            meta: FeedbackMeta::new("q9").with_rater("ann"),
            prompt: Prompt::user("Capital of France?"),
            response: "Lyon.".into(),
            questions: vec![
                Question::yes_partly_no("answers", "Does this answer the question?"),
                Question::new("true", "Is it factually accurate?", &["yes", "no"]),
            ],
            answers: answers
                .into_iter()
                .map(|(q, c)| Answer {
                    question_id: q.into(),
                    choice: c,
                })
                .collect(),
        }
    }

    #[test]
    fn answers_resolve_to_option_text() {
        let r = record(vec![("answers", 0), ("true", 1)]);
        assert_eq!(r.validate(), Ok(()));
        assert_eq!(r.answer_text("answers"), Some("yes"));
        assert_eq!(r.answer_text("true"), Some("no"));
        assert_eq!(r.answer_text("missing"), None);
    }

    #[test]
    fn bad_answers_name_the_field() {
        assert_eq!(
            record(vec![("true", 2)]).validate().unwrap_err().field,
            "answers[0].choice"
        );
        assert_eq!(
            record(vec![("x", 0)]).validate().unwrap_err().field,
            "answers[0].question_id"
        );
        assert_eq!(
            record(vec![("true", 0), ("true", 1)])
                .validate()
                .unwrap_err()
                .field,
            "answers[1].question_id"
        );
    }
}
