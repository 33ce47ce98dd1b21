//! KL coefficient controllers: fixed, and the adaptive proportional controller of Ziegler et al.
//! (2019), whose state is serialisable for checkpoints (`trainer_state.json`).
//!
//! Adaptive update, once per PPO batch: e = clip(KL / target - 1, -0.2, 0.2), then
//! kl_coef *= 1 + e * n_steps / horizon, where KL is the batch mean of each sequence's summed
//! per-token KL (`objective/kl`) and n_steps the number of episodes in the batch.

use serde::{Deserialize, Serialize};

use crate::{Result, check};

/// The largest proportional error the adaptive controller acts on, either way.
pub const ADAPTIVE_ERROR_CLIP: f64 = 0.2;

/// A KL coefficient controller and its state.
///
/// ```
/// use rlhf_ppo::KlController;
/// let mut controller = KlController::adaptive(0.1, 6.0, 10_000.0)?;
/// // KL 12 is twice the target: e = clip(1, -0.2, 0.2) = 0.2; 0.1 * (1 + 0.2 * 512 / 10000).
/// controller.update(12.0, 512)?;
/// assert!((controller.kl_coef() - 0.1 * 1.01024).abs() < 1e-15);
/// # Ok::<(), rlhf_ppo::PpoError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KlController {
    /// A constant coefficient.
    Fixed {
        /// The coefficient beta of the per-token KL penalty.
        kl_coef: f64,
    },
    /// The proportional controller steering the KL towards `target`.
    Adaptive {
        /// The current coefficient.
        kl_coef: f64,
        /// The target KL (nats per sequence).
        target: f64,
        /// The horizon, in episodes, over which the coefficient adapts.
        horizon: f64,
    },
}

impl KlController {
    /// A fixed coefficient (finite, >= 0).
    pub fn fixed(kl_coef: f64) -> Result<Self> {
        check_coef("KlController::fixed", kl_coef)?;
        Ok(KlController::Fixed { kl_coef })
    }

    /// An adaptive controller starting at `kl_coef`, aiming at `target` over `horizon` episodes.
    pub fn adaptive(kl_coef: f64, target: f64, horizon: f64) -> Result<Self> {
        let op = "KlController::adaptive";
        check_coef(op, kl_coef)?;
        check::range(
            op,
            "target",
            target,
            target > 0.0 && target.is_finite(),
            "finite and > 0",
        )?;
        check::range(
            op,
            "horizon",
            horizon,
            horizon > 0.0 && horizon.is_finite(),
            "finite and > 0",
        )?;
        Ok(KlController::Adaptive {
            kl_coef,
            target,
            horizon,
        })
    }

    /// The current coefficient (`objective/kl_coef`).
    pub fn kl_coef(&self) -> f64 {
        match self {
            KlController::Fixed { kl_coef } | KlController::Adaptive { kl_coef, .. } => *kl_coef,
        }
    }

    /// Updates the coefficient from the batch's measured KL after `n_steps` episodes; a
    /// non-finite KL is refused and leaves the state unchanged.
    pub fn update(&mut self, current_kl: f64, n_steps: usize) -> Result<()> {
        let op = "KlController::update";
        check::range(
            op,
            "current_kl",
            current_kl,
            current_kl.is_finite(),
            "finite",
        )?;
        if let KlController::Adaptive {
            kl_coef,
            target,
            horizon,
        } = self
        {
            let error =
                (current_kl / *target - 1.0).clamp(-ADAPTIVE_ERROR_CLIP, ADAPTIVE_ERROR_CLIP);
            *kl_coef *= 1.0 + error * n_steps as f64 / *horizon;
        }
        Ok(())
    }
}

fn check_coef(op: &'static str, kl_coef: f64) -> Result<()> {
    check::range(
        op,
        "kl_coef",
        kl_coef,
        kl_coef >= 0.0 && kl_coef.is_finite(),
        "finite and >= 0",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_updates_by_hand() {
        let mut c = KlController::adaptive(0.2, 4.0, 1000.0).unwrap();
        // KL 3: e = 3/4 - 1 = -0.25 -> clipped -0.2; 0.2 * (1 - 0.2 * 100/1000) = 0.2 * 0.98 = 0.196.
        c.update(3.0, 100).unwrap();
        assert!((c.kl_coef() - 0.196).abs() < 1e-15);
        // KL 4.4: e = 0.1; 0.196 * (1 + 0.1 * 50/1000) = 0.196 * 1.005 = 0.19698.
        c.update(4.4, 50).unwrap();
        assert!((c.kl_coef() - 0.19698).abs() < 1e-15);
        assert!(c.update(f64::NAN, 1).is_err());
        assert!((c.kl_coef() - 0.19698).abs() < 1e-15);
        let mut f = KlController::fixed(0.05).unwrap();
        f.update(100.0, 64).unwrap();
        assert_eq!(f.kl_coef(), 0.05);
        assert!(KlController::adaptive(0.1, 0.0, 10.0).is_err());
        assert!(KlController::fixed(-0.1).is_err());
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut c = KlController::adaptive(0.15, 6.0, 10_000.0).unwrap();
        c.update(7.0, 64).unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"kind\":\"adaptive\""), "{json}");
        let back: KlController = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        let fixed: KlController =
            serde_json::from_str(r#"{"kind":"fixed","kl_coef":0.05}"#).unwrap();
        assert_eq!(fixed.kl_coef(), 0.05);
    }
}
