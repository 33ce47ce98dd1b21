//! One row of a long-format label table (`item,rater,label`), as crowd-kit and rlhf-raters read it.

use serde::{Deserialize, Serialize};

use super::{FeedbackMeta, InvalidRecord};

/// Rater `meta.rater_id` gave item `meta.item_id` the categorical label `label`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// Item and rater (both required here), time, confidence.
    #[serde(flatten)]
    pub meta: FeedbackMeta,
    /// The label, as text (a class name, a Likert score, `A`/`B` for a pair...).
    pub label: String,
}

impl Label {
    /// Rater `rater_id` labelled `item_id` with `label`.
    pub fn new(
        item_id: impl Into<String>,
        rater_id: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        Label {
            meta: FeedbackMeta::new(item_id).with_rater(rater_id),
            label: label.into(),
        }
    }

    /// Checks: item and rater ids present and non-empty, label non-empty.
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        if self.meta.rater_id.as_deref().is_none_or(str::is_empty) {
            return Err(InvalidRecord::new(
                "rater_id",
                "a non-empty rater id (every label row has one)",
            ));
        }
        self.meta.validate()?;
        if self.label.is_empty() {
            return Err(InvalidRecord::new("label", "a non-empty label"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_need_a_rater_and_a_label() {
        assert_eq!(Label::new("t1", "w1", "yes").validate(), Ok(()));
        assert_eq!(
            Label::new("t1", "w1", "").validate().unwrap_err().field,
            "label"
        );
        let no_rater = Label {
            meta: FeedbackMeta::new("t1"),
            label: "x".into(),
        };
        assert_eq!(no_rater.validate().unwrap_err().field, "rater_id");
    }
}
