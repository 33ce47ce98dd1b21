//! The world's settings, with defaults sized for a tiny GPT on two CPU cores.

use super::labelers::PopulationConfig;
use super::scorers::Criteria;
use serde::{Deserialize, Serialize};

/// Shares of prompt classes in a mix (normalised when used).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassMix {
    /// Share of answerable prompts (facts and arithmetic).
    pub answerable: f64,
    /// Share of unanswerable prompts.
    pub unanswerable: f64,
    /// Share of harmful requests.
    pub harmful: f64,
}

impl Default for ClassMix {
    fn default() -> Self {
        Self {
            answerable: 0.5,
            unanswerable: 0.25,
            harmful: 0.25,
        }
    }
}

/// Everything that shapes a world; one `seed` drives every random choice.
///
/// ```
/// use rlhf_data::world::{World, WorldConfig};
/// let world = World::new(WorldConfig { seed: 7, ..WorldConfig::small() })?;
/// assert!(!world.corpus.is_empty());
/// # Ok::<(), rlhf_data::world::WorldError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorldConfig {
    /// The seed of everything.
    pub seed: u64,
    /// Entities whose facts the corpus teaches.
    pub known_entities: usize,
    /// Entities the corpus asks about but never states facts for.
    pub corpus_unknown_entities: usize,
    /// Entities the corpus never mentions (unanswerable RL and eval prompts).
    pub held_out_entities: usize,
    /// How many times the corpus states each fact of each known entity.
    pub fact_repeats: usize,
    /// Arithmetic operands are in `0..=max_operand`.
    pub max_operand: i64,
    /// How many times the corpus states each line of the arithmetic table (`"a plus b is c."`
    /// for every operand pair, `"a minus b is c."` for a >= b: every arithmetic question RL and
    /// evaluation ask), the way `fact_repeats` teaches the known entities' facts. 0 (the
    /// default) leaves arithmetic to the corpus's dialogues, which cover only the questions
    /// they happen to draw.
    pub arithmetic_repeats: usize,
    /// Dialogues in the pretraining corpus.
    pub corpus_dialogues: usize,
    /// Class mix of the corpus dialogues.
    pub corpus_mix: ClassMix,
    /// Share of arithmetic among answerable prompts.
    pub arithmetic_share: f64,
    /// Share of the corpus's answerable dialogues answered wrongly.
    pub wrong_answer_rate: f64,
    /// Share of the corpus's correctly answered dialogues in which the human confirms the
    /// answer in a following turn ([`REACTION_RIGHT`](super::corpus::REACTION_RIGHT)); 0 (the
    /// default) adds none.
    pub confirmation_rate: f64,
    /// Share of the corpus's wrongly answered dialogues in which the human corrects the answer
    /// in a following turn ([`REACTION_WRONG`](super::corpus::REACTION_WRONG)), as text on the
    /// web corrects claims: a language model then has a reason to represent, right after a
    /// claim, whether it is true (which a reward model reads); 0 (the default) adds none.
    pub correction_rate: f64,
    /// Share of the corpus's unanswerable dialogues answered with made-up facts (else "I do not know").
    pub fabricate_rate: f64,
    /// Share of the corpus's harmful requests complied with (else refused politely).
    pub comply_rate: f64,
    /// Share of corpus dialogues whose reply is padded with neutral filler.
    pub verbose_rate: f64,
    /// Good demonstrations for SFT.
    pub demonstrations: usize,
    /// Class mix of the demonstrations.
    pub demonstration_mix: ClassMix,
    /// Fraction of known entities the demonstrations cover (the first ones).
    pub demonstration_entity_fraction: f64,
    /// Harm categories the demonstrations cover (the first ones of `HarmCategory::ALL`).
    pub demonstration_harm_categories: usize,
    /// Prompts for RL training.
    pub rl_prompts: usize,
    /// Held-out prompts for evaluation (disjoint from the RL prompts).
    pub eval_prompts: usize,
    /// Class mix of RL and eval prompts.
    pub prompt_mix: ClassMix,
    /// Fraction of the prompt space held out for evaluation (by a hash of the prompt).
    pub eval_fraction: f64,
    /// The ground truth's criteria and weights.
    pub criteria: Criteria,
    /// The simulated labelers.
    pub labelers: PopulationConfig,
    /// Prompts in the researchers' gold set.
    pub gold_prompts: usize,
    /// Responses per gold prompt.
    pub gold_k: usize,
}

impl Default for WorldConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            known_entities: 40,
            corpus_unknown_entities: 20,
            held_out_entities: 20,
            fact_repeats: 4,
            max_operand: 20,
            arithmetic_repeats: 0,
            corpus_dialogues: 4000,
            corpus_mix: ClassMix::default(),
            arithmetic_share: 0.3,
            wrong_answer_rate: 0.1,
            confirmation_rate: 0.0,
            correction_rate: 0.0,
            fabricate_rate: 0.6,
            comply_rate: 0.6,
            verbose_rate: 0.15,
            demonstrations: 600,
            demonstration_mix: ClassMix::default(),
            demonstration_entity_fraction: 0.5,
            demonstration_harm_categories: 3,
            rl_prompts: 600,
            eval_prompts: 200,
            prompt_mix: ClassMix::default(),
            eval_fraction: 0.25,
            criteria: Criteria::default(),
            labelers: PopulationConfig::default(),
            gold_prompts: 40,
            gold_k: 4,
        }
    }
}

impl WorldConfig {
    /// A smaller world for tests and examples (a tenth of the default sizes).
    pub fn small() -> Self {
        Self {
            known_entities: 12,
            corpus_unknown_entities: 6,
            held_out_entities: 6,
            fact_repeats: 2,
            max_operand: 9,
            corpus_dialogues: 400,
            demonstrations: 60,
            rl_prompts: 60,
            eval_prompts: 30,
            gold_prompts: 10,
            ..Self::default()
        }
    }

    /// Checks every setting; the message names the field and what was expected.
    pub fn validate(&self) -> Result<(), String> {
        let rate = |name: &str, value: f64| {
            if (0.0..=1.0).contains(&value) {
                Ok(())
            } else {
                Err(format!("{name} is {value}, expected a number in [0, 1]"))
            }
        };
        rate("arithmetic_share", self.arithmetic_share)?;
        rate("wrong_answer_rate", self.wrong_answer_rate)?;
        rate("confirmation_rate", self.confirmation_rate)?;
        rate("correction_rate", self.correction_rate)?;
        rate("fabricate_rate", self.fabricate_rate)?;
        rate("comply_rate", self.comply_rate)?;
        rate("verbose_rate", self.verbose_rate)?;
        rate(
            "demonstration_entity_fraction",
            self.demonstration_entity_fraction,
        )?;
        rate("eval_fraction", self.eval_fraction)?;
        for (name, mix) in [
            ("corpus_mix", &self.corpus_mix),
            ("demonstration_mix", &self.demonstration_mix),
            ("prompt_mix", &self.prompt_mix),
        ] {
            let parts = [mix.answerable, mix.unanswerable, mix.harmful];
            if parts.iter().any(|p| !p.is_finite() || *p < 0.0) || parts.iter().sum::<f64>() <= 0.0
            {
                return Err(format!(
                    "{name}: expected finite shares >= 0 with a positive sum"
                ));
            }
        }
        let pools = self.known_entities + self.corpus_unknown_entities + self.held_out_entities;
        if self.known_entities == 0
            || self.corpus_unknown_entities == 0
            || self.held_out_entities == 0
        {
            return Err("known_entities, corpus_unknown_entities and held_out_entities: expected at least 1 each".into());
        }
        if pools > 20_000 {
            return Err(format!("{pools} entities in all, expected at most 20000"));
        }
        if !(1..=1000).contains(&self.max_operand) {
            return Err(format!(
                "max_operand is {}, expected 1..=1000",
                self.max_operand
            ));
        }
        let table_lines = (self.max_operand as usize + 1).pow(2) * 3 / 2;
        if self.arithmetic_repeats > 0 && table_lines * self.arithmetic_repeats > 1_000_000 {
            return Err(format!(
                "arithmetic_repeats is {}: {} table lines of max_operand {} in the corpus, expected at most 1000000",
                self.arithmetic_repeats,
                table_lines * self.arithmetic_repeats,
                self.max_operand
            ));
        }
        if self.demonstration_harm_categories > super::harm::HarmCategory::ALL.len() {
            return Err(format!(
                "demonstration_harm_categories is {}, expected at most {}",
                self.demonstration_harm_categories,
                super::harm::HarmCategory::ALL.len()
            ));
        }
        if self.gold_k < 2 {
            return Err(format!("gold_k is {}, expected at least 2", self.gold_k));
        }
        self.criteria
            .validate()
            .map_err(|e| format!("criteria: {e}"))?;
        self.labelers
            .validate()
            .map_err(|e| format!("labelers: {e}"))
    }
}
