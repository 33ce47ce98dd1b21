//! Learning-rate schedules: linear warmup, then cosine or linear decay to zero (or constant).

use serde::{Deserialize, Serialize};

/// How the learning rate falls after warmup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decay {
    /// Half a cosine from the peak to zero at the last step.
    Cosine,
    /// A straight line from the peak to zero at the last step.
    Linear,
    /// No decay.
    Constant,
}

/// Warmup plus decay over a fixed number of optimizer steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    /// Peak learning rate.
    pub peak: f32,
    /// Steps of linear warmup from peak / warmup to peak.
    pub warmup_steps: u64,
    /// Total optimizer steps; the rate reaches zero after the last one.
    pub total_steps: u64,
    /// The decay after warmup.
    pub decay: Decay,
}

impl LrSchedule {
    /// The learning rate of optimizer step `step` (0-based).
    pub fn lr(&self, step: u64) -> f32 {
        if step < self.warmup_steps {
            return self.peak * (step + 1) as f32 / self.warmup_steps as f32;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        // Progress (step - warmup + 1) / span: 1 at the last step, so the rate reaches 0 there.
        let progress = ((step - self.warmup_steps + 1) as f64 / span as f64).min(1.0);
        let factor = match self.decay {
            Decay::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
            Decay::Linear => 1.0 - progress,
            Decay::Constant => 1.0,
        };
        self.peak * factor as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_decay_to_zero() {
        for decay in [Decay::Cosine, Decay::Linear] {
            let s = LrSchedule {
                peak: 1.0,
                warmup_steps: 4,
                total_steps: 10,
                decay,
            };
            assert_eq!(s.lr(0), 0.25);
            assert_eq!(s.lr(3), 1.0);
            assert!(s.lr(4) < 1.0 && s.lr(4) > s.lr(6));
            assert!(s.lr(9).abs() < 1e-7);
        }
        let s = LrSchedule {
            peak: 1.0,
            warmup_steps: 0,
            total_steps: 4,
            decay: Decay::Linear,
        };
        assert_eq!(s.lr(1), 0.5);
        assert_eq!(
            LrSchedule {
                decay: Decay::Constant,
                ..s
            }
            .lr(3),
            1.0
        );
    }
}
