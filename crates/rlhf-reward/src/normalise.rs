//! Normalisation after training: the preference losses only see reward differences, so the
//! reward's offset (and, without a target, its scale) is arbitrary. As in "Fine-Tuning
//! Language Models from Human Preferences" and the RLHF implementation-details work, a bias is
//! chosen so that the mean reward of reference responses (the SFT model's, or demonstrations)
//! is `target_mean` (0 by default); with a `target_std` a gain first brings their standard
//! deviation there. The map is folded into the reward head, so the saved checkpoint produces
//! normalised rewards, and is recorded in `reward_config.json`.

use rlhf_data::records::Prompt;
use rlhf_data::tokenizer::Tokenizer;
use serde::{Deserialize, Serialize};

use crate::dataset::{render_prompt, response_text};
use crate::model::{Normalisation, RewardModel};
use crate::{Result, RewardError};

/// Where normalisation puts the reference rewards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NormaliseConfig {
    /// Mean reward of the reference responses afterwards.
    pub target_mean: f64,
    /// Their standard deviation afterwards (None: keep the scale, only shift).
    pub target_std: Option<f64>,
}

impl Default for NormaliseConfig {
    fn default() -> Self {
        NormaliseConfig {
            target_mean: 0.0,
            target_std: None,
        }
    }
}

/// What normalisation found and did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormaliseReport {
    /// Reference responses scored.
    pub references: usize,
    /// Their mean reward before.
    pub mean_before: f64,
    /// Their (population) standard deviation before.
    pub std_before: f64,
    /// The map folded into the reward head.
    pub applied: Normalisation,
    /// Their mean reward after (re-scored).
    pub mean_after: f64,
    /// Their standard deviation after.
    pub std_after: f64,
}

fn mean_std(values: &[f32]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
}

/// Token rows of (prompt, response) texts in the training convention.
pub fn reference_rows(
    model: &RewardModel,
    tokenizer: &dyn Tokenizer,
    references: &[(Prompt, String)],
) -> Vec<Vec<u32>> {
    references
        .iter()
        .map(|(prompt, response)| {
            let p = tokenizer.encode(&render_prompt(prompt));
            let r = tokenizer.encode(&response_text(response));
            model.sequence(&p, &r).0
        })
        .collect()
}

/// Scores the reference `rows`, folds the map that moves them to the target into the reward
/// head, and re-scores them to report the result.
pub fn normalise(
    model: &mut RewardModel,
    rows: &[Vec<u32>],
    config: &NormaliseConfig,
    batch_size: usize,
) -> Result<NormaliseReport> {
    if rows.is_empty() {
        return Err(RewardError::Empty {
            op: "normalise",
            what: "no reference response to normalise on".into(),
        });
    }
    if !config.target_mean.is_finite() {
        return Err(RewardError::config(
            "target_mean",
            "expected a finite number",
        ));
    }
    let before = model.rewards(rows, batch_size)?;
    let (mean_before, std_before) = mean_std(&before);
    let gain = match config.target_std {
        None => 1.0,
        Some(s) if s.is_finite() && s > 0.0 => {
            if std_before <= 1e-12 {
                return Err(RewardError::Input(format!(
                    "the {} reference rewards are all equal ({mean_before}); no gain gives them std {s}",
                    rows.len()
                )));
            }
            s / std_before
        }
        Some(s) => {
            return Err(RewardError::config(
                "target_std",
                format!("{s}: expected a finite number > 0"),
            ));
        }
    };
    let applied = Normalisation {
        gain,
        bias: config.target_mean - gain * mean_before,
    };
    model.apply_normalisation(applied)?;
    let after = model.rewards(rows, batch_size)?;
    let (mean_after, std_after) = mean_std(&after);
    Ok(NormaliseReport {
        references: rows.len(),
        mean_before,
        std_before,
        applied,
        mean_after,
        std_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::tiny;

    #[test]
    fn reference_mean_goes_to_zero_and_std_to_the_target() {
        let rows = vec![
            vec![1u32, 2, 10],
            vec![3, 10],
            vec![4, 5, 6, 10],
            vec![7, 10],
        ];
        let mut m = tiny(0);
        let r = normalise(&mut m, &rows, &NormaliseConfig::default(), 3).unwrap();
        assert!(r.mean_after.abs() < 1e-5, "{r:?}");
        assert!((r.std_after - r.std_before).abs() < 1e-5);
        let mut m = tiny(1);
        let config = NormaliseConfig {
            target_mean: 1.0,
            target_std: Some(2.0),
        };
        let r = normalise(&mut m, &rows, &config, 4).unwrap();
        assert!(
            (r.mean_after - 1.0).abs() < 1e-4 && (r.std_after - 2.0).abs() < 1e-4,
            "{r:?}"
        );
        assert_eq!(m.head.normalisation, r.applied);
        assert!(normalise(&mut m, &[], &config, 4).is_err());
    }
}
