//! Reward-model ensembles (Coste et al. 2023, "Reward model ensembles help mitigate
//! overoptimization"): M reward models trained on the same labels from different seeds
//! (initialisation and batch order), the reward being the mean of their rewards. Seeds err in
//! different places, so the mean orders more pairs right than a typical member and is harder
//! for a policy to exploit.
//!
//! The mean is taken over the members' rewards as they score, so the members should be
//! normalised to one scale first: [`crate::normalise::normalise`] with a `target_std` (e.g.
//! mean 0, std 1 on the same reference responses), else a member with a larger scale counts
//! more.

use crate::model::RewardModel;
use crate::rewards::ModelReward;
use crate::{Episode, Result, RewardError, RewardFunction};

/// The mean of M reward functions' scores, each episode alike.
pub struct EnsembleReward {
    name: String,
    members: Vec<Box<dyn RewardFunction>>,
}

impl EnsembleReward {
    /// The mean of `members` (at least one), named `name` in logs.
    pub fn new(
        name: impl Into<String>,
        members: Vec<Box<dyn RewardFunction>>,
    ) -> Result<EnsembleReward> {
        if members.is_empty() {
            return Err(RewardError::config(
                "members",
                "an ensemble needs at least one reward function",
            ));
        }
        Ok(EnsembleReward {
            name: name.into(),
            members,
        })
    }

    /// The mean of learned reward models (each a [`ModelReward`] of `batch_size` episodes per
    /// forward), named `"reward-ensemble"`.
    pub fn from_models(models: Vec<RewardModel>, batch_size: usize) -> Result<EnsembleReward> {
        let members = models
            .into_iter()
            .map(|m| Box::new(ModelReward::new(m, batch_size)) as Box<dyn RewardFunction>)
            .collect();
        EnsembleReward::new("reward-ensemble", members)
    }

    /// M, the number of members.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }
}

impl RewardFunction for EnsembleReward {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&mut self, episodes: &[Episode<'_>]) -> Result<Vec<f32>> {
        let scores = self
            .members
            .iter_mut()
            .map(|m| m.score(episodes))
            .collect::<Result<Vec<_>>>()?;
        mean_rewards(&scores).map_err(|e| RewardError::Scoring {
            scorer: self.name.clone(),
            message: e.to_string(),
        })
    }
}

/// The element-wise mean of M members' values (M, N) -> (N): rewards, or any per-row output
/// (rule logits (M, N R)). Refuses no member, members of different lengths and values that are
/// not finite (naming the member and the row).
pub fn mean_rewards(per_member: &[Vec<f32>]) -> Result<Vec<f32>> {
    let first = per_member.first().ok_or_else(|| RewardError::Empty {
        op: "mean_rewards",
        what: "no ensemble member to average".into(),
    })?;
    let mut sum = vec![0.0f64; first.len()];
    for (m, values) in per_member.iter().enumerate() {
        crate::check::len("mean_rewards", "member values", values.len(), sum.len())?;
        for (row, (s, &v)) in sum.iter_mut().zip(values).enumerate() {
            if !v.is_finite() {
                return Err(RewardError::Input(format!(
                    "mean_rewards: member {m} row {row} is {v}, expected a finite number"
                )));
            }
            *s += f64::from(v);
        }
    }
    let m = per_member.len() as f64;
    Ok(sum.into_iter().map(|s| (s / m) as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FnReward;
    use crate::model::tests::tiny;

    fn episode<'a>(p: &'a [u32], r: &'a [u32]) -> Episode<'a> {
        Episode {
            prompt: "p",
            response: "r",
            prompt_tokens: p,
            response_tokens: r,
        }
    }

    /// Returns one score too few: an ensemble must notice.
    struct Short;

    impl RewardFunction for Short {
        fn name(&self) -> &str {
            "short"
        }

        fn score(&mut self, episodes: &[Episode<'_>]) -> Result<Vec<f32>> {
            Ok(vec![0.0; episodes.len().saturating_sub(1)])
        }
    }

    #[test]
    fn the_mean_of_members_and_its_refusals() {
        assert_eq!(
            mean_rewards(&[vec![1.0, -2.0], vec![3.0, 0.0], vec![2.0, 5.0]]).unwrap(),
            vec![2.0, 1.0]
        );
        assert!(mean_rewards(&[]).is_err());
        let err = mean_rewards(&[vec![1.0, 2.0], vec![1.0]]).unwrap_err();
        assert!(err.to_string().contains("member values"), "{err}");
        let err = mean_rewards(&[vec![1.0], vec![f32::NAN]]).unwrap_err();
        assert!(err.to_string().contains("member 1 row 0"), "{err}");

        let length = |e: &Episode<'_>| Ok(e.response_tokens.len() as f32);
        let twice = |e: &Episode<'_>| Ok(2.0 * e.prompt_tokens.len() as f32);
        let mut ensemble = EnsembleReward::new(
            "pair",
            vec![
                Box::new(FnReward::new("len", length)),
                Box::new(FnReward::new("twice", twice)),
            ],
        )
        .unwrap();
        let eps = [episode(&[1], &[2, 3, 4]), episode(&[1, 2, 3], &[])];
        // (3 + 2) / 2 and (0 + 6) / 2.
        assert_eq!(ensemble.score(&eps).unwrap(), vec![2.5, 3.0]);
        assert_eq!((ensemble.name(), ensemble.member_count()), ("pair", 2));
        assert!(EnsembleReward::new("none", Vec::new()).is_err());
        let mut broken = EnsembleReward::new(
            "broken",
            vec![Box::new(FnReward::new("len", length)), Box::new(Short)],
        )
        .unwrap();
        let err = broken.score(&eps).unwrap_err();
        assert!(err.to_string().contains("broken"), "{err}");
    }

    /// An ensemble of two models scores the mean of their rewards; of one model, the model.
    #[test]
    fn an_ensemble_of_models_is_the_mean_of_their_rewards() {
        let (a, b) = (
            tiny(1),
            tiny(1).with_read(crate::RewardRead::GatedTopRatio).unwrap(),
        );
        let mut b = b;
        let score = b.gpt.params.score.as_mut().unwrap();
        score.bias =
            rlhf_tensor::Tensor::from_vec(vec![0.5, 0.0, 1.0], [3], rlhf_tensor::Device::Cpu)
                .unwrap();
        let rows = [vec![1u32, 2, 10], vec![3, 4, 5, 6, 10]];
        let (ra, rb) = (a.rewards(&rows, 4).unwrap(), b.rewards(&rows, 4).unwrap());
        assert_ne!(ra, rb);
        let eps = [episode(&[1, 2], &[]), episode(&[3, 4], &[5, 6, 10])];
        let mut ensemble = EnsembleReward::from_models(vec![a.clone(), b], 1).unwrap();
        for (i, s) in ensemble.score(&eps).unwrap().iter().enumerate() {
            assert!(
                (s - (ra[i] + rb[i]) / 2.0).abs() < 1e-5,
                "{s} vs {ra:?} {rb:?}"
            );
        }
        let mut alone = EnsembleReward::from_models(vec![a], 2).unwrap();
        for (s, r) in alone.score(&eps).unwrap().iter().zip(&ra) {
            assert!((s - r).abs() < 1e-5, "{s} vs {r}");
        }
    }
}
