//! Scoring a reward model on the example's four test sets once, reporting from the scores, and
//! averaging members' scores into an ensemble's ([`rlhf_reward::mean_rewards`], the mean
//! [`rlhf_reward::EnsembleReward`] takes).

use std::error::Error;

use rlhf_reward::eval::{EvalReport, report, score_rows};
use rlhf_reward::{Comparison, ObjectiveConfig, RewardModel, mean_rewards};
use serde_json::{Value, json};

/// The test sets every reward model is measured on.
pub struct TestSets<'a> {
    /// The ground truth's pairs on the held-out eval prompts, sourced by slice.
    pub heldout: &'a [Comparison],
    /// The same truth on the RL prompts' tasks the labelers ranked.
    pub rl_prompts: &'a [Comparison],
    /// Correct-vs-wrong claim pairs on the answerable eval prompts.
    pub claims: &'a [Comparison],
    /// The held-out pairs sourced by pair type (slice and what each response does).
    pub by_pair_type: &'a [Comparison],
}

/// One set's rewards (N rows) and rule logits (N, R).
#[derive(Clone)]
pub struct SetScores {
    rewards: Vec<f32>,
    rule_logits: Vec<f32>,
}

/// Every test set's scores under one model (or an ensemble's mean), in [`TestSets`]' order.
#[derive(Clone)]
pub struct Scores {
    sets: [SetScores; 4],
    n_rules: usize,
}

impl TestSets<'_> {
    fn all(&self) -> [&[Comparison]; 4] {
        [
            self.heldout,
            self.rl_prompts,
            self.claims,
            self.by_pair_type,
        ]
    }

    /// Scores every set with `model`, 32 comparisons per forward.
    pub fn score(&self, model: &RewardModel) -> Result<Scores, Box<dyn Error>> {
        let mut sets = Vec::with_capacity(4);
        for data in self.all() {
            let (rewards, rule_logits) = score_rows(model, data, 32)?;
            sets.push(SetScores {
                rewards,
                rule_logits,
            });
        }
        let sets = sets.try_into().map_err(|_| "four test sets")?;
        Ok(Scores {
            sets,
            n_rules: model.n_rules(),
        })
    }

    /// The reports of `scores`: JSON (the keys the example has always printed) and a summary.
    pub fn report(
        &self,
        scores: &Scores,
        objective: &ObjectiveConfig,
    ) -> Result<(Value, String), Box<dyn Error>> {
        let mut reports: Vec<EvalReport> = Vec::with_capacity(4);
        for (data, s) in self.all().into_iter().zip(&scores.sets) {
            reports.push(report(
                data,
                &s.rewards,
                &s.rule_logits,
                scores.n_rules,
                objective,
            )?);
        }
        let [truth, train_side, claims, pair_kinds] =
            <[EvalReport; 4]>::try_from(reports).map_err(|_| "four reports")?;
        let by_pair_type: serde_json::Map<String, Value> = pair_kinds
            .per_source
            .iter()
            .map(|(s, p)| (s.clone(), json!({"pairs": p.pairs, "accuracy": p.accuracy})))
            .collect();
        let per_slice = |r: &EvalReport| {
            r.per_source
                .iter()
                .map(|(s, p)| format!("{s} {:.3}", p.accuracy))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let summary = format!(
            "  held-out truth accuracy {:.4} ({}; length baseline {:.4}), rule heads {:?}\n  truth accuracy on the RL prompts' tasks {:.4} ({})\n  correct-vs-wrong claims {:.4} ({})",
            truth.overall.accuracy,
            per_slice(&truth),
            truth.overall.length_baseline_accuracy,
            truth.rule_accuracy,
            train_side.overall.accuracy,
            per_slice(&train_side),
            claims.overall.accuracy,
            per_slice(&claims),
        );
        let json = json!({
            "ground_truth_heldout": truth,
            "ground_truth_rl_prompts": train_side,
            "correct_vs_wrong_claims": claims,
            "heldout_by_pair_type": by_pair_type,
        });
        Ok((json, summary))
    }
}

impl Scores {
    /// The rewards times `gain` (rule logits unchanged): a member brought to one scale.
    pub fn scaled(mut self, gain: f32) -> Scores {
        for s in &mut self.sets {
            s.rewards.iter_mut().for_each(|r| *r *= gain);
        }
        self
    }

    /// The ensemble's scores: the mean of the members' rewards and rule logits.
    pub fn mean(members: &[Scores]) -> Result<Scores, Box<dyn Error>> {
        let first = members.first().ok_or("an ensemble of no member")?;
        let mut sets = first.sets.clone();
        for (i, set) in sets.iter_mut().enumerate() {
            let rewards: Vec<Vec<f32>> =
                members.iter().map(|m| m.sets[i].rewards.clone()).collect();
            let logits: Vec<Vec<f32>> = members
                .iter()
                .map(|m| m.sets[i].rule_logits.clone())
                .collect();
            set.rewards = mean_rewards(&rewards)?;
            set.rule_logits = mean_rewards(&logits)?;
        }
        Ok(Scores {
            sets,
            n_rules: first.n_rules,
        })
    }
}
