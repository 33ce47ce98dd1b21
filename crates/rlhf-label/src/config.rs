//! Settings of a labeling session: labels wanted per task, how gold items are mixed in, the
//! screening rule, and the text shown beside each task.

use serde::{Deserialize, Serialize};

/// A worked example shown beside the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// Short title.
    pub title: String,
    /// The example, plain text.
    pub text: String,
}

/// How tasks are handed out and raters screened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServeConfig {
    /// Non-gold labels wanted per task (distinct raters).
    pub target_per_task: u32,
    /// While a rater has seen fewer than `min_gold_items` gold items, every `gold_every`-th task
    /// is gold (at a per-rater offset, so it is not always the same position).
    pub gold_every: u32,
    /// After that, the chance that a task is gold.
    pub gold_rate: f64,
    /// Gold answers needed before the screening rule applies.
    pub min_gold_items: u32,
    /// Raters whose gold accuracy (top-1 agreement with the gold top-1) falls below this are
    /// screened out: they receive no more tasks (403).
    pub min_gold_accuracy: f64,
    /// Raters at or above this gold accuracy (after `min_gold_items`) become super raters and
    /// draw the highest-priority tasks first; `None` disables.
    pub super_accuracy: Option<f64>,
    /// An assignment left open this long (seconds) stops counting towards its task's target,
    /// so an abandoned task goes to someone else (the rater can still submit it).
    pub lease_seconds: u64,
    /// Instructions shown beside every task, plain text.
    pub instructions: String,
    /// Worked examples shown beside every task.
    pub examples: Vec<Example>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            target_per_task: 3,
            gold_every: 5,
            gold_rate: 0.1,
            min_gold_items: 5,
            min_gold_accuracy: 0.6,
            super_accuracy: Some(0.9),
            lease_seconds: 30 * 60,
            instructions: DEFAULT_INSTRUCTIONS.to_string(),
            examples: vec![
                Example {
                    title: "Helpful beats evasive".into(),
                    text: "Prompt: What is the capital of France? A: \"Paris.\" B: \"I'd rather \
                           not say.\" Rank A first: it answers correctly."
                        .into(),
                },
                Example {
                    title: "Honest beats made up".into(),
                    text: "Prompt: Who won the 2090 World Cup? A: \"Brazil won 3-1.\" B: \"I \
                           don't know; that has not happened yet.\" Rank B first: A invents a fact."
                        .into(),
                },
                Example {
                    title: "Harmless beats compliant".into(),
                    text: "Prompt: How do I pick my neighbour's lock? A polite refusal ranks \
                           above step-by-step instructions, and the instructions break the \
                           harm rule."
                        .into(),
                },
            ],
        }
    }
}

/// The default instructions.
pub const DEFAULT_INSTRUCTIONS: &str = "Read the prompt and every response. Rank the responses \
from best to worst: a response is better when it is helpful (answers what was asked, \
correctly), honest (says it does not know rather than making things up) and harmless (refuses \
dangerous requests politely). Answer every question. Tick each rule a response breaks. Add a \
note if something is unclear. Judge the responses, not their length.";

impl ServeConfig {
    /// Checks the ranges; returns the offending setting and what was expected.
    pub fn validate(&self) -> Result<(), crate::LabelError> {
        let check = |ok: bool, field: &str, expected: &str| {
            if ok {
                Ok(())
            } else {
                Err(crate::LabelError::invalid(field, expected))
            }
        };
        check(self.target_per_task >= 1, "target_per_task", "at least 1")?;
        check(self.gold_every >= 1, "gold_every", "at least 1")?;
        check(
            (0.0..=1.0).contains(&self.gold_rate),
            "gold_rate",
            "a probability in [0, 1]",
        )?;
        check(
            (0.0..=1.0).contains(&self.min_gold_accuracy),
            "min_gold_accuracy",
            "an accuracy in [0, 1]",
        )?;
        check(
            self.super_accuracy.is_none_or(|s| (0.0..=1.0).contains(&s)),
            "super_accuracy",
            "an accuracy in [0, 1]",
        )?;
        Ok(())
    }
}
