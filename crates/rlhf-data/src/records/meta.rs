//! What every record carries besides its content: item id, rater, time, confidence.

use serde::{Deserialize, Serialize};

use super::InvalidRecord;

/// Identity and provenance of one judgement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedbackMeta {
    /// The item judged (a prompt, or a prompt and its responses); shared by all raters of it.
    pub item_id: String,
    /// Who judged; `None` where the source does not say (HH-RLHF, TRL files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rater_id: Option<String>,
    /// When, as the source wrote it (RFC 3339 in OASST); kept verbatim, not parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The rater's stated confidence, in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

impl FeedbackMeta {
    /// Metadata for `item_id` with no rater, time or confidence.
    pub fn new(item_id: impl Into<String>) -> Self {
        FeedbackMeta {
            item_id: item_id.into(),
            ..FeedbackMeta::default()
        }
    }

    /// The same, judged by `rater_id`.
    pub fn with_rater(mut self, rater_id: impl Into<String>) -> Self {
        self.rater_id = Some(rater_id.into());
        self
    }

    /// The same, stamped with `timestamp`.
    pub fn with_timestamp(mut self, timestamp: impl Into<String>) -> Self {
        self.timestamp = Some(timestamp.into());
        self
    }

    /// The same, with confidence `confidence` (expected in [0, 1]).
    pub fn with_confidence(mut self, confidence: f64) -> Self {
        self.confidence = Some(confidence);
        self
    }

    /// Checks: non-empty item id, non-empty rater id if given, confidence in [0, 1].
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        if self.item_id.is_empty() {
            return Err(InvalidRecord::new("item_id", "a non-empty id"));
        }
        if self.rater_id.as_deref() == Some("") {
            return Err(InvalidRecord::new(
                "rater_id",
                "a non-empty id or no rater_id at all",
            ));
        }
        if let Some(c) = self.confidence
            && !(0.0..=1.0).contains(&c)
        {
            return Err(InvalidRecord::new(
                "confidence",
                format!("a number in [0, 1], got {c}"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_fields_are_omitted_and_checked() {
        let meta = FeedbackMeta::new("x");
        assert_eq!(serde_json::to_string(&meta).unwrap(), r#"{"item_id":"x"}"#);
        assert_eq!(meta.validate(), Ok(()));
        let err = FeedbackMeta::new("x")
            .with_confidence(1.5)
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "confidence");
        assert!(FeedbackMeta::new("").validate().is_err());
        assert!(
            FeedbackMeta::new("x")
                .with_confidence(f64::NAN)
                .validate()
                .is_err()
        );
    }
}
