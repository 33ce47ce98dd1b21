//! Simulated labelers with known skills, and the feedback they give.
//!
//! Noise model: a labeler perceives response `i` as `mu_i = truth_weight * total_i +
//! length_weight * chars_i / 100` (its bias) plus `temperature * G_i` with `G_i` standard Gumbel.
//! Rankings sort the perceived utilities (a Plackett–Luce draw with scores `mu / temperature`);
//! pairwise choices are independent Bradley–Terry draws, `P(i over j) = sigmoid((mu_i - mu_j) /
//! temperature)`, with that probability of the choice made as the record's confidence; rule flags and question answers are the truth, each wrong with probability
//! `error_rate` (a wrong answer is a uniformly chosen other option; adversaries always answer
//! wrongly; random labelers answer uniformly). Every draw comes from a stream seeded by the
//! world seed, the labeler id and the item id, so labels do not depend on the order of work.

use super::Judgement;
use super::rng::{WorldRng, below, chance, gumbel, stream_rng, unit};
use crate::records::{
    Answer, FeedbackMeta, Pairwise, Prompt, Question, QuestionFeedback, Ranking, RuleSet,
    RuleViolations,
};
use serde::{Deserialize, Serialize};

/// The kinds of labeler in the population.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelerKind {
    /// Follows the truth with little noise.
    Expert,
    /// Follows the truth with moderate noise.
    Average,
    /// Follows the truth with a lot of noise.
    Careless,
    /// Ignores the responses: uniform choices and answers.
    Random,
    /// Prefers what the truth ranks low, answers wrongly.
    Adversarial,
    /// Prefers longer answers over better ones.
    LengthBiased,
    /// The researchers: the truth itself, no noise (the gold labels).
    Researcher,
}

/// One labeler: its id and its skill parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelerProfile {
    /// Rater id written into its records.
    pub id: String,
    /// Its kind.
    pub kind: LabelerKind,
    /// Scale of the Gumbel noise on perceived utilities (0 = none).
    pub temperature: f64,
    /// Weight of the true total score in the perceived utility (negative: adversarial).
    pub truth_weight: f64,
    /// Perceived utility per 100 characters of reply (the length bias).
    pub length_weight: f64,
    /// Probability that a rule flag or question answer is wrong.
    pub error_rate: f64,
    /// Perceived utilities closer than this are tied in rankings.
    pub tie_margin: f64,
}

impl LabelerKind {
    /// The standard profile of this kind, with rater id `id`.
    pub fn profile(self, id: impl Into<String>) -> LabelerProfile {
        // (temperature, truth_weight, length_weight, error_rate, tie_margin)
        let (temperature, truth_weight, length_weight, error_rate, tie_margin) = match self {
            LabelerKind::Expert => (0.03, 1.0, 0.0, 0.02, 0.01),
            LabelerKind::Average => (0.15, 1.0, 0.0, 0.1, 0.02),
            LabelerKind::Careless => (0.6, 1.0, 0.0, 0.3, 0.0),
            LabelerKind::Random => (1.0, 0.0, 0.0, 1.0, 0.0),
            LabelerKind::Adversarial => (0.05, -1.0, 0.0, 1.0, 0.0),
            LabelerKind::LengthBiased => (0.1, 0.3, 1.0, 0.1, 0.0),
            LabelerKind::Researcher => (0.0, 1.0, 0.0, 0.0, 1e-9),
        };
        LabelerProfile {
            id: id.into(),
            kind: self,
            temperature,
            truth_weight,
            length_weight,
            error_rate,
            tie_margin,
        }
    }
}

/// How many labelers of each kind, plus any custom profiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PopulationConfig {
    /// Experts.
    pub experts: usize,
    /// Average labelers.
    pub average: usize,
    /// Careless labelers.
    pub careless: usize,
    /// Random labelers.
    pub random: usize,
    /// Adversarial labelers.
    pub adversarial: usize,
    /// Labelers biased towards longer answers.
    pub length_biased: usize,
    /// Extra labelers with hand-set parameters.
    pub custom: Vec<LabelerProfile>,
}

impl Default for PopulationConfig {
    fn default() -> Self {
        Self {
            experts: 2,
            average: 4,
            careless: 2,
            random: 1,
            adversarial: 1,
            length_biased: 1,
            custom: Vec::new(),
        }
    }
}

impl PopulationConfig {
    /// The labelers, ids `"{kind}-{n}"` (e.g. `expert-0`), then the custom ones.
    pub fn profiles(&self) -> Vec<LabelerProfile> {
        let groups = [
            (LabelerKind::Expert, "expert", self.experts),
            (LabelerKind::Average, "average", self.average),
            (LabelerKind::Careless, "careless", self.careless),
            (LabelerKind::Random, "random", self.random),
            (LabelerKind::Adversarial, "adversarial", self.adversarial),
            (
                LabelerKind::LengthBiased,
                "length-biased",
                self.length_biased,
            ),
        ];
        let mut profiles: Vec<LabelerProfile> = groups
            .iter()
            .flat_map(|&(kind, name, count)| {
                (0..count).map(move |n| kind.profile(format!("{name}-{n}")))
            })
            .collect();
        profiles.extend(self.custom.iter().cloned());
        profiles
    }

    /// Checks custom profiles (finite, non-negative noise, rates in [0, 1]) and unique ids.
    pub fn validate(&self) -> Result<(), String> {
        let profiles = self.profiles();
        for p in &profiles {
            let finite = [
                p.temperature,
                p.truth_weight,
                p.length_weight,
                p.error_rate,
                p.tie_margin,
            ];
            if finite.iter().any(|v| !v.is_finite()) || p.temperature < 0.0 || p.tie_margin < 0.0 {
                return Err(format!(
                    "labeler {}: expected finite parameters, temperature and tie_margin >= 0",
                    p.id
                ));
            }
            if !(0.0..=1.0).contains(&p.error_rate) {
                return Err(format!(
                    "labeler {}: error_rate {} expected in [0, 1]",
                    p.id, p.error_rate
                ));
            }
        }
        let mut ids: Vec<&str> = profiles.iter().map(|p| p.id.as_str()).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("labeler id {} repeats, expected unique ids", w[0]));
        }
        Ok(())
    }
}

/// K responses to one prompt, to be labeled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelTask {
    /// The item id (the same for every labeler).
    pub item_id: String,
    /// The question (plain, or in dialogue format).
    pub prompt: String,
    /// The K responses.
    pub responses: Vec<String>,
}

/// Everything one labeler says about one task.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelerOutput {
    /// A ranking of the K responses, best first, ties allowed.
    pub ranking: Ranking,
    /// A choice for each pair of distinct responses (item id `"{item}#{i}-{j}"`, i < j).
    pub pairwise: Vec<Pairwise>,
    /// Which rules each response breaks.
    pub violations: RuleViolations,
    /// Answers to the world's questions about each response (item id `"{item}#r{i}"`).
    pub questions: Vec<QuestionFeedback>,
}

impl LabelerOutput {
    /// All records as [`Feedback`](crate::records::Feedback): the ranking, the pairwise choices,
    /// the rule flags, then the question answers.
    pub fn into_feedback(self) -> Vec<crate::records::Feedback> {
        let mut out = Vec::with_capacity(2 + self.pairwise.len() + self.questions.len());
        out.push(self.ranking.into());
        out.extend(self.pairwise.into_iter().map(Into::into));
        out.push(self.violations.into());
        out.extend(self.questions.into_iter().map(Into::into));
        out
    }
}

/// An answer to a question with `options` options whose true answer is `truth`.
fn noisy_answer(
    rng: &mut WorldRng,
    profile: &LabelerProfile,
    options: usize,
    truth: usize,
) -> usize {
    if profile.kind == LabelerKind::Random || options < 2 {
        return below(rng, options.max(1));
    }
    if chance(rng, profile.error_rate) {
        // A uniformly chosen wrong option.
        let wrong = below(rng, options - 1);
        if wrong >= truth { wrong + 1 } else { wrong }
    } else {
        truth
    }
}

impl LabelerProfile {
    /// Labels `task`, whose responses the world judged as `judgements` (aligned), with `rules`
    /// and `questions` as asked; `seed` is the world seed.
    pub fn label(
        &self,
        seed: u64,
        task: &LabelTask,
        judgements: &[Judgement],
        rules: &RuleSet,
        questions: &[Question],
    ) -> LabelerOutput {
        let mut rng = stream_rng(seed, &format!("label/{}/{}", self.id, task.item_id));
        let prompt = Prompt::user(super::prompts::question_of(&task.prompt));
        let meta = |item: String| FeedbackMeta::new(item).with_rater(self.id.clone());
        // Perceived utility without noise: (K,).
        let mean: Vec<f64> = judgements
            .iter()
            .map(|j| {
                self.truth_weight * j.scores.total
                    + self.length_weight * j.analysis.reply_chars as f64 / 100.0
            })
            .collect();

        // Ranking: sort perceived utilities (mean + Gumbel noise), tie close ones.
        let perceived: Vec<f64> = mean
            .iter()
            .map(|m| m + self.temperature * gumbel(&mut rng))
            .collect();
        let mut order: Vec<usize> = (0..perceived.len()).collect();
        order.sort_by(|&a, &b| perceived[b].total_cmp(&perceived[a]).then(a.cmp(&b)));
        let mut tiers: Vec<Vec<usize>> = Vec::new();
        for &i in &order {
            match tiers.last_mut() {
                Some(tier) if perceived[tier[0]] - perceived[i] < self.tie_margin => tier.push(i),
                _ => tiers.push(vec![i]),
            }
        }
        let ranking = Ranking::new(
            meta(task.item_id.clone()),
            prompt.clone(),
            task.responses.clone(),
            tiers,
        );

        // Pairwise: one Bradley–Terry draw per pair of distinct responses.
        let mut pairwise = Vec::new();
        for i in 0..task.responses.len() {
            for j in i + 1..task.responses.len() {
                if task.responses[i] == task.responses[j] {
                    continue;
                }
                let diff = mean[i] - mean[j];
                // P(i over j) under the labeler's own noise.
                let p_i = if self.temperature > 0.0 {
                    1.0 / (1.0 + (-diff / self.temperature).exp())
                } else if diff.abs() <= self.tie_margin {
                    continue; // no noise and no preference: the truth has no choice to give
                } else if diff > 0.0 {
                    1.0
                } else {
                    0.0
                };
                let i_wins = unit(&mut rng) < p_i;
                let (chosen, rejected) = if i_wins { (i, j) } else { (j, i) };
                // Confidence: how surely the labeler would make this choice again.
                let confidence = if i_wins { p_i } else { 1.0 - p_i };
                pairwise.push(Pairwise::new(
                    meta(format!("{}#{i}-{j}", task.item_id)).with_confidence(confidence),
                    prompt.clone(),
                    task.responses[chosen].clone(),
                    task.responses[rejected].clone(),
                ));
            }
        }

        // Rule flags: each true flag kept or flipped.
        let broken = judgements
            .iter()
            .map(|j| {
                rules
                    .rules
                    .iter()
                    .filter(|rule| {
                        let truth = j.broken_rules.contains(&rule.id);
                        let flipped = if self.kind == LabelerKind::Random {
                            chance(&mut rng, 0.5)
                        } else {
                            chance(&mut rng, self.error_rate)
                        };
                        if self.kind == LabelerKind::Random {
                            flipped
                        } else {
                            truth != flipped
                        }
                    })
                    .map(|rule| rule.id.clone())
                    .collect()
            })
            .collect();
        let violations = RuleViolations {
            meta: meta(task.item_id.clone()),
            prompt: prompt.clone(),
            rules: rules.clone(),
            responses: task.responses.clone(),
            broken,
        };

        let questions = judgements
            .iter()
            .enumerate()
            .map(|(i, j)| {
                let answers = questions
                    .iter()
                    .zip(&j.answers)
                    .map(|(q, &truth)| Answer {
                        question_id: q.id.clone(),
                        choice: noisy_answer(&mut rng, self, q.options.len(), truth),
                    })
                    .collect();
                QuestionFeedback {
                    meta: meta(format!("{}#r{i}", task.item_id)),
                    prompt: prompt.clone(),
                    response: task.responses[i].clone(),
                    questions: questions.to_vec(),
                    answers,
                }
            })
            .collect();
        LabelerOutput {
            ranking,
            pairwise,
            violations,
            questions,
        }
    }
}
