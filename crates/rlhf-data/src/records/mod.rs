//! Feedback records: one type per kind of human feedback the RLHF literature collects.
//!
//! Design:
//! - Every record starts with a [`FeedbackMeta`] (item id, optional rater id, timestamp, confidence)
//!   flattened into its JSON, then the [`Prompt`] as a list of turns (role + content), so
//!   multi-turn conversations survive every format, then the response(s) as plain strings.
//! - Kinds: [`Pairwise`] (chosen, rejected, margin), [`Ranking`] (K responses in tiers best to
//!   worst, ties share a tier; [`Ranking::pair_group`] expands to its pairs kept together per
//!   prompt, as InstructGPT trains on them), [`RuleViolations`] (a Sparrow rule set and the rules each
//!   response breaks), [`QuestionFeedback`] (WebGPT-style multiple-choice questions and answers),
//!   [`Rating`] (Likert), and [`Label`] (one `item,rater,label` row of a long-format table).
//! - [`Feedback`] is the tagged union (`"kind": "pairwise" | ...`): one line of our native JSONL.
//! - Indices, not copies: rankings and rule labels refer to responses by index into `responses`.
//! - Records are plain data with public fields; `validate` checks the invariants the types cannot
//!   (tiers partition the responses, confidence in [0, 1], answers among the options...) and names
//!   the offending field and what was expected.

mod label;
mod meta;
mod pairwise;
mod prompt;
mod questions;
mod ranking;
mod rating;
mod rules;

pub use label::Label;
pub use meta::FeedbackMeta;
pub use pairwise::Pairwise;
pub use prompt::{Prompt, Role, Turn};
pub use questions::{Answer, Question, QuestionFeedback};
pub use ranking::{PairGroup, RankedPair, Ranking};
pub use rating::{LikertScale, Rating};
pub use rules::{Rule, RuleSet, RuleViolations};

use serde::{Deserialize, Serialize};

/// A record breaks an invariant: which field, and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: expected {expected}")]
pub struct InvalidRecord {
    /// Dotted path of the offending field, e.g. `tiers[1][0]` or `answers[2].choice`.
    pub field: String,
    /// What a valid value looks like.
    pub expected: String,
}

impl InvalidRecord {
    /// An invariant failure at `field`, expecting `expected`.
    pub fn new(field: impl Into<String>, expected: impl Into<String>) -> Self {
        InvalidRecord {
            field: field.into(),
            expected: expected.into(),
        }
    }
}

/// Any feedback record; one line of the native JSONL, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Feedback {
    /// A preferred and a dispreferred response.
    Pairwise(Pairwise),
    /// K responses ordered best to worst, ties allowed.
    Ranking(Ranking),
    /// Which rules of a rule set each response breaks.
    RuleViolations(RuleViolations),
    /// Multiple-choice answers about one response.
    Questions(QuestionFeedback),
    /// A Likert score of one response.
    Rating(Rating),
    /// One `item,rater,label` row.
    Label(Label),
}

/// The kind of a [`Feedback`] record, for counting and reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    /// [`Pairwise`].
    Pairwise,
    /// [`Ranking`].
    Ranking,
    /// [`RuleViolations`].
    RuleViolations,
    /// [`QuestionFeedback`].
    Questions,
    /// [`Rating`].
    Rating,
    /// [`Label`].
    Label,
}

impl FeedbackKind {
    /// The `kind` tag as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackKind::Pairwise => "pairwise",
            FeedbackKind::Ranking => "ranking",
            FeedbackKind::RuleViolations => "rule_violations",
            FeedbackKind::Questions => "questions",
            FeedbackKind::Rating => "rating",
            FeedbackKind::Label => "label",
        }
    }
}

impl Feedback {
    /// The record's kind.
    pub fn kind(&self) -> FeedbackKind {
        match self {
            Feedback::Pairwise(_) => FeedbackKind::Pairwise,
            Feedback::Ranking(_) => FeedbackKind::Ranking,
            Feedback::RuleViolations(_) => FeedbackKind::RuleViolations,
            Feedback::Questions(_) => FeedbackKind::Questions,
            Feedback::Rating(_) => FeedbackKind::Rating,
            Feedback::Label(_) => FeedbackKind::Label,
        }
    }

    /// The item id, rater, timestamp and confidence.
    pub fn meta(&self) -> &FeedbackMeta {
        match self {
            Feedback::Pairwise(r) => &r.meta,
            Feedback::Ranking(r) => &r.meta,
            Feedback::RuleViolations(r) => &r.meta,
            Feedback::Questions(r) => &r.meta,
            Feedback::Rating(r) => &r.meta,
            Feedback::Label(r) => &r.meta,
        }
    }

    /// The prompt, for every kind but [`Label`] (a bare table row has none).
    pub fn prompt(&self) -> Option<&Prompt> {
        match self {
            Feedback::Pairwise(r) => Some(&r.prompt),
            Feedback::Ranking(r) => Some(&r.prompt),
            Feedback::RuleViolations(r) => Some(&r.prompt),
            Feedback::Questions(r) => Some(&r.prompt),
            Feedback::Rating(r) => Some(&r.prompt),
            Feedback::Label(_) => None,
        }
    }

    /// Checks the record's invariants.
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        match self {
            Feedback::Pairwise(r) => r.validate(),
            Feedback::Ranking(r) => r.validate(),
            Feedback::RuleViolations(r) => r.validate(),
            Feedback::Questions(r) => r.validate(),
            Feedback::Rating(r) => r.validate(),
            Feedback::Label(r) => r.validate(),
        }
    }
}

macro_rules! impl_from_record {
    ($($ty:ident => $variant:ident),* $(,)?) => {
        $(impl From<$ty> for Feedback {
            fn from(record: $ty) -> Self {
                Feedback::$variant(record)
            }
        })*
    };
}

impl_from_record!(
    Pairwise => Pairwise,
    Ranking => Ranking,
    RuleViolations => RuleViolations,
    QuestionFeedback => Questions,
    Rating => Rating,
    Label => Label,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_is_tagged_by_kind_and_round_trips() {
        let record: Feedback = Pairwise::new(
            FeedbackMeta::new("q1")
                .with_rater("r7")
                .with_confidence(0.75),
            Prompt::user("2+2?"),
            "4",
            "5",
        )
        .into();
        let json = serde_json::to_string(&record).unwrap();
        assert!(
            json.starts_with(r#"{"kind":"pairwise","item_id":"q1","rater_id":"r7""#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Feedback>(&json).unwrap(), record);
        assert_eq!(record.kind(), FeedbackKind::Pairwise);
        assert_eq!(record.validate(), Ok(()));
    }

    #[test]
    fn unknown_kind_is_rejected() {
        let err = serde_json::from_str::<Feedback>(r#"{"kind":"vote","item_id":"a"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
    }
}
