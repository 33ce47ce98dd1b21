//! Pairwise preference: a chosen and a rejected response to one prompt.

use serde::{Deserialize, Serialize};

use super::{FeedbackMeta, InvalidRecord, Prompt};

/// A rater preferred `chosen` over `rejected` (HH-RLHF, TRL, summarize-from-feedback).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pairwise {
    /// Item, rater, time, confidence.
    #[serde(flatten)]
    pub meta: FeedbackMeta,
    /// The conversation both responses answer.
    pub prompt: Prompt,
    /// The preferred response.
    pub chosen: String,
    /// The dispreferred response.
    pub rejected: String,
    /// How much better `chosen` is (TRL `margin`; Llama 2 preference strength), if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
}

impl Pairwise {
    /// `chosen` preferred over `rejected` as answers to `prompt`, without a margin.
    pub fn new(
        meta: FeedbackMeta,
        prompt: Prompt,
        chosen: impl Into<String>,
        rejected: impl Into<String>,
    ) -> Self {
        Pairwise {
            meta,
            prompt,
            chosen: chosen.into(),
            rejected: rejected.into(),
            margin: None,
        }
    }

    /// The same pair with a preference margin.
    pub fn with_margin(mut self, margin: f64) -> Self {
        self.margin = Some(margin);
        self
    }

    /// Checks the metadata, that the two responses differ, and that a margin is finite.
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        self.meta.validate()?;
        if self.chosen == self.rejected {
            return Err(InvalidRecord::new(
                "rejected",
                "a response different from `chosen` (identical responses carry no preference)",
            ));
        }
        if let Some(m) = self.margin
            && !m.is_finite()
        {
            return Err(InvalidRecord::new(
                "margin",
                format!("a finite number, got {m}"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_responses_are_invalid() {
        let p = Pairwise::new(FeedbackMeta::new("a"), Prompt::user("q"), "same", "same");
        assert_eq!(p.validate().unwrap_err().field, "rejected");
        let ok =
            Pairwise::new(FeedbackMeta::new("a"), Prompt::user("q"), "x", "y").with_margin(2.0);
        assert_eq!(ok.validate(), Ok(()));
        assert!(ok.clone().with_margin(f64::INFINITY).validate().is_err());
    }
}
