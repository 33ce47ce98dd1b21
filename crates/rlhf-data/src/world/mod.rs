//! The synthetic HHH world: the default data of `rlhf run`, where alignment is measured against
//! a known truth.
//!
//! One seed generates, in memory and in well under a second:
//! - made-up countries with facts ([`facts`]): *known* ones the corpus teaches, *corpus-unknown*
//!   ones it only asks about, and *held-out* ones it never mentions; arithmetic questions; and
//!   harmful requests in five templated categories ([`harm`]);
//! - a pretraining corpus ([`corpus`]) of fact sentences and HH-format dialogues in which the
//!   assistant sometimes answers wrongly, fabricates facts about unknown countries and complies
//!   with harmful requests, at stated rates, so a model pretrained on it is measurably misaligned;
//!   optionally also the arithmetic table (`arithmetic_repeats`) and the human's reactions that
//!   confirm or correct answers (`confirmation_rate`, `correction_rate`), all off by default;
//! - good demonstrations for SFT covering only part of the prompt space;
//! - RL prompts and disjoint held-out eval prompts;
//! - ground-truth scorers per criterion with user weights ([`scorers`]), a checkable rule set and
//!   questions ([`rules`]), all reading arbitrary text ([`analysis`]);
//! - simulated labelers of known skill and the researchers' gold labels ([`labelers`]).
//!
//! ```
//! use rlhf_data::world::{Criterion, World, WorldConfig};
//! let world = World::new(WorldConfig::small())?;
//! let prompt = &world.eval_prompts[0];
//! let demo = &world.demonstrations[0];
//! let scores = world.score(&demo.prompt.render(), &demo.response)?;
//! assert_eq!(scores.total, 1.0);
//! let made_up = world.score("What is the capital of Nowhere?", "It is Blorp.");
//! assert!(made_up.is_err()); // not a question of this world
//! # let _ = prompt;
//! # Ok::<(), rlhf_data::world::WorldError>(())
//! ```

pub mod analysis;
pub mod config;
pub mod corpus;
pub mod facts;
pub mod harm;
pub mod labelers;
pub mod names;
pub mod prompts;
pub mod responses;
pub mod rng;
pub mod rules;
pub mod scorers;

pub use analysis::{Claim, ResponseAnalysis};
pub use config::{ClassMix, WorldConfig};
pub use corpus::{CorpusDocument, Demonstration, Habit};
pub use facts::{Attribute, Entity, FactBook, Familiarity};
pub use harm::HarmCategory;
pub use labelers::{LabelTask, LabelerKind, LabelerOutput, LabelerProfile, PopulationConfig};
pub use prompts::{PromptClass, PromptKind, WorldPrompt};
pub use responses::ResponseStyle;
pub use scorers::{Criteria, Criterion, Scores};

use crate::records::{Question, RuleSet};
use facts::{COLORS, FOODS};
use rng::{WorldRng, chance, pick, shuffle, stream_rng};
use std::collections::HashSet;

/// Errors of building a world or judging text against it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WorldError {
    /// A configuration field is out of range.
    #[error("invalid world config: {0}")]
    InvalidConfig(String),
    /// A prompt is not one of this world's questions or requests.
    #[error(
        "prompt {prompt:?} is not a question of this world (expected a fact, arithmetic or harmful-request template)"
    )]
    UnknownPrompt {
        /// The question part of the prompt.
        prompt: String,
    },
}

/// The world's judgement of one response: what was asked, what the response does, its scores,
/// broken rules and the true answers to the world's questions.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// What the prompt asks.
    pub kind: PromptKind,
    /// What the response does.
    pub analysis: ResponseAnalysis,
    /// Ground-truth scores under the world's criteria.
    pub scores: Scores,
    /// Ids of the rules it breaks.
    pub broken_rules: Vec<String>,
    /// True answer (option index) to each of the world's questions, in order.
    pub answers: Vec<usize>,
}

/// Researchers' gold labels on a small set of tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct GoldSet {
    /// The tasks (prompts with K candidate responses).
    pub tasks: Vec<LabelTask>,
    /// The researchers' labels, aligned with `tasks`.
    pub labels: Vec<LabelerOutput>,
}

/// A generated world; see the module docs.
#[derive(Debug, Clone)]
pub struct World {
    /// The settings it was built from.
    pub config: WorldConfig,
    /// Entities and their facts.
    pub facts: FactBook,
    /// The pretraining corpus, shuffled.
    pub corpus: Vec<CorpusDocument>,
    /// Good demonstrations for SFT.
    pub demonstrations: Vec<Demonstration>,
    /// Prompts for RL.
    pub rl_prompts: Vec<WorldPrompt>,
    /// Held-out prompts for evaluation.
    pub eval_prompts: Vec<WorldPrompt>,
    /// The simulated labelers.
    pub labelers: Vec<LabelerProfile>,
    /// The rule set labelers check.
    pub rules: RuleSet,
    /// The questions labelers answer about each response.
    pub questions: Vec<Question>,
}

/// Entities of all three pools with made-up names and capitals.
fn make_entities(config: &WorldConfig, rng: &mut WorldRng) -> Vec<Entity> {
    let mut taken = HashSet::new();
    let reserved: Vec<&str> = COLORS.iter().chain(FOODS.iter()).copied().collect();
    let pools = [
        (Familiarity::Known, config.known_entities),
        (Familiarity::CorpusUnknown, config.corpus_unknown_entities),
        (Familiarity::HeldOut, config.held_out_entities),
    ];
    let total: usize = pools.iter().map(|p| p.1).sum();
    let names = names::distinct_names(rng, total, &mut taken, &reserved);
    let capitals = names::distinct_names(rng, total, &mut taken, &reserved);
    let mut familiarity = pools.iter().flat_map(|&(f, n)| std::iter::repeat_n(f, n));
    names
        .into_iter()
        .zip(capitals)
        .map(|(name, capital)| Entity {
            name,
            familiarity: familiarity.next().unwrap_or(Familiarity::HeldOut),
            capital,
            flag_color: pick(rng, &COLORS).to_string(),
            food: pick(rng, &FOODS).to_string(),
        })
        .collect()
}

impl World {
    /// Builds the world of `config` (deterministic in `config.seed`).
    pub fn new(config: WorldConfig) -> Result<Self, WorldError> {
        config.validate().map_err(WorldError::InvalidConfig)?;
        let seed = config.seed;
        let facts = FactBook::new(make_entities(&config, &mut stream_rng(seed, "entities")));
        let corpus = corpus::pretraining_corpus(&facts, &config, &mut stream_rng(seed, "corpus"));
        let demonstrations =
            corpus::demonstrations(&facts, &config, &mut stream_rng(seed, "demonstrations"));
        let (rl_prompts, eval_prompts) =
            corpus::rl_and_eval_prompts(&facts, &config, &mut stream_rng(seed, "prompts"));
        let labelers = config.labelers.profiles();
        Ok(Self {
            config,
            facts,
            corpus,
            demonstrations,
            rl_prompts,
            eval_prompts,
            labelers,
            rules: rules::rule_set(),
            questions: rules::questions(),
        })
    }

    /// The corpus texts, for tokenizer training and pretraining.
    pub fn corpus_texts(&self) -> impl Iterator<Item = &str> {
        self.corpus.iter().map(|d| d.text.as_str())
    }

    /// What `prompt` (plain or in dialogue format) asks.
    pub fn parse_prompt(&self, prompt: &str) -> Result<PromptKind, WorldError> {
        analysis::parse_prompt(&self.facts, prompt).ok_or_else(|| WorldError::UnknownPrompt {
            prompt: prompts::question_of(prompt).to_string(),
        })
    }

    /// Judges `response` (any text) to `prompt` under the world's criteria.
    pub fn judge(&self, prompt: &str, response: &str) -> Result<Judgement, WorldError> {
        self.judge_with(&self.config.criteria, prompt, response)
    }

    /// Judges `response` to `prompt` under `criteria`.
    pub fn judge_with(
        &self,
        criteria: &Criteria,
        prompt: &str,
        response: &str,
    ) -> Result<Judgement, WorldError> {
        let kind = self.parse_prompt(prompt)?;
        let analysis = analysis::analyse(&self.facts, &kind, response);
        let class = kind.class();
        let scores = criteria.score(class, &analysis);
        let broken_rules = rules::broken_rules(class, &analysis);
        let answers = self
            .questions
            .iter()
            .map(|q| rules::true_answer(&q.id, class, &analysis).unwrap_or(0))
            .collect();
        Ok(Judgement {
            kind,
            analysis,
            scores,
            broken_rules,
            answers,
        })
    }

    /// Ground-truth scores of `response` to `prompt` under the world's criteria.
    pub fn score(&self, prompt: &str, response: &str) -> Result<Scores, WorldError> {
        Ok(self.judge(prompt, response)?.scores)
    }

    /// `labeler`'s feedback on `task`.
    pub fn label(
        &self,
        labeler: &LabelerProfile,
        task: &LabelTask,
    ) -> Result<LabelerOutput, WorldError> {
        let judgements = task
            .responses
            .iter()
            .map(|r| self.judge(&task.prompt, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(labeler.label(
            self.config.seed,
            task,
            &judgements,
            &self.rules,
            &self.questions,
        ))
    }

    /// Labels each task by `per_task` distinct labelers of the population (all of them if it is
    /// larger), chosen per task from a seeded stream: a sparse design like a real crowd's.
    /// Returns (task index, labeler id, output) in task order, labelers in population order.
    pub fn label_tasks(
        &self,
        tasks: &[LabelTask],
        per_task: usize,
    ) -> Result<Vec<(usize, String, LabelerOutput)>, WorldError> {
        let mut out = Vec::new();
        for (index, task) in tasks.iter().enumerate() {
            let mut rng = stream_rng(self.config.seed, &format!("assign/{}", task.item_id));
            let mut chosen: Vec<usize> = (0..self.labelers.len()).collect();
            shuffle(&mut rng, &mut chosen);
            chosen.truncate(per_task);
            chosen.sort_unstable();
            for labeler in chosen.into_iter().map(|i| &self.labelers[i]) {
                out.push((index, labeler.id.clone(), self.label(labeler, task)?));
            }
        }
        Ok(out)
    }

    /// `k` responses of varied styles to `prompt` (distinct styles while they last, some padded
    /// with neutral filler), drawn from the stream named `stream`.
    pub fn candidate_responses(&self, prompt: &WorldPrompt, k: usize, stream: &str) -> Vec<String> {
        let mut rng = stream_rng(
            self.config.seed,
            &format!("candidates/{stream}/{}", prompt.id),
        );
        let mut styles = ResponseStyle::for_class(prompt.kind.class()).to_vec();
        shuffle(&mut rng, &mut styles);
        (0..k)
            .map(|i| {
                let style = styles[i % styles.len()];
                // Past the first round of styles, pad so that responses stay distinct.
                let verbose = i >= styles.len() || chance(&mut rng, 0.3);
                responses::respond(&self.facts, &mut rng, &prompt.kind, style, verbose)
            })
            .collect()
    }

    /// The researchers' gold set: `gold_prompts` RL prompts with `gold_k` candidate responses
    /// each, labeled with the truth (rankings, pairs, rule flags, question answers).
    pub fn gold_set(&self) -> Result<GoldSet, WorldError> {
        let mut rng = stream_rng(self.config.seed, "gold");
        // RL prompts repeat once a class runs out: keep each prompt once (first occurrence).
        let mut seen = HashSet::new();
        let mut pool: Vec<WorldPrompt> = self
            .rl_prompts
            .iter()
            .filter(|p| seen.insert(p.id.as_str()))
            .cloned()
            .collect();
        shuffle(&mut rng, &mut pool);
        let researchers = LabelerKind::Researcher.profile("researchers");
        let mut tasks = Vec::new();
        let mut labels = Vec::new();
        for prompt in pool.iter().take(self.config.gold_prompts) {
            let task = LabelTask {
                item_id: format!("gold-{}", prompt.id),
                prompt: prompt.render(),
                responses: self.candidate_responses(prompt, self.config.gold_k, "gold"),
            };
            labels.push(self.label(&researchers, &task)?);
            tasks.push(task);
        }
        Ok(GoldSet { tasks, labels })
    }
}
