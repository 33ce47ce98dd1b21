//! Scalar ratings on a Likert scale.

use serde::{Deserialize, Serialize};

use super::{FeedbackMeta, InvalidRecord, Prompt};

/// An integer scale from `min` (worst) to `max` (best), e.g. 1..=7 as in InstructGPT's overall
/// quality rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LikertScale {
    /// The worst score.
    pub min: i32,
    /// The best score.
    pub max: i32,
}

impl LikertScale {
    /// A scale from `min` to `max` inclusive.
    pub fn new(min: i32, max: i32) -> Self {
        LikertScale { min, max }
    }
}

/// A rater scored one response on a Likert scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    /// Item, rater, time, confidence.
    #[serde(flatten)]
    pub meta: FeedbackMeta,
    /// The conversation the response answers.
    pub prompt: Prompt,
    /// The response scored.
    pub response: String,
    /// The score, in `scale.min..=scale.max`.
    pub value: i32,
    /// The scale used.
    pub scale: LikertScale,
}

impl Rating {
    /// The score mapped to [0, 1] (0 = `scale.min`, 1 = `scale.max`).
    pub fn normalized(&self) -> f64 {
        let span = f64::from(self.scale.max) - f64::from(self.scale.min);
        (f64::from(self.value) - f64::from(self.scale.min)) / span
    }

    /// Checks: `min < max` and the value on the scale.
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        self.meta.validate()?;
        let LikertScale { min, max } = self.scale;
        if min >= max {
            return Err(InvalidRecord::new(
                "scale",
                format!("min < max, got {min}..={max}"),
            ));
        }
        if !(min..=max).contains(&self.value) {
            return Err(InvalidRecord::new(
                "value",
                format!("a score in {min}..={max}, got {}", self.value),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_normalise_and_are_checked() {
        let mut r = Rating {
            meta: FeedbackMeta::new("i"),
            prompt: Prompt::user("q"),
            response: "a".into(),
            value: 4,
            scale: LikertScale::new(1, 7),
        };
        assert_eq!(r.validate(), Ok(()));
        assert_eq!(r.normalized(), 0.5);
        r.value = 8;
        assert_eq!(r.validate().unwrap_err().field, "value");
        r.scale = LikertScale::new(3, 3);
        assert_eq!(r.validate().unwrap_err().field, "scale");
    }
}
