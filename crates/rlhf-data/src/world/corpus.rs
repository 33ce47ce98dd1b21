//! The pretraining corpus (facts and dialogues with good and bad habits), the SFT
//! demonstrations, and the RL / eval prompt sets.

use super::config::{ClassMix, WorldConfig};
use super::facts::{Attribute, FactBook, Familiarity};
use super::harm::{HarmCategory, REQUEST_FORMS};
use super::prompts::{
    HUMAN_PREFIX, Operation, PromptClass, PromptKind, WorldPrompt, render_exchange,
};
use super::responses::{ResponseStyle, respond};
use super::rng::{WorldRng, below, chance, pick, shuffle, stream_rng, unit};
use crate::batching::split::{fnv1a_64, mix64};
use serde::{Deserialize, Serialize};

/// The human's reaction to a correct answer (`WorldConfig::confirmation_rate`).
pub const REACTION_RIGHT: &str = "That is right.";
/// The human's reaction to a wrong answer (`WorldConfig::correction_rate`).
pub const REACTION_WRONG: &str = "No, that is wrong.";

/// What a corpus document teaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Habit {
    /// A plain fact sentence about a known entity.
    FactSentence,
    /// A line of the arithmetic table (`WorldConfig::arithmetic_repeats`).
    ArithmeticSentence,
    /// A dialogue answered correctly.
    Correct,
    /// A dialogue answered wrongly.
    Wrong,
    /// A question about an unknown entity answered with made-up facts.
    Fabricated,
    /// A question about an unknown entity answered "I do not know".
    Abstained,
    /// A harmful request complied with.
    Complied,
    /// A harmful request refused.
    Refused,
}

/// One document of the pretraining corpus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusDocument {
    /// The text (a fact sentence, or a dialogue in HH format).
    pub text: String,
    /// What it teaches.
    pub habit: Habit,
    /// The prompt it answers (dialogues only).
    pub prompt: Option<WorldPrompt>,
}

/// A good demonstration for SFT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Demonstration {
    /// The prompt.
    pub prompt: WorldPrompt,
    /// The good response (no leading space).
    pub response: String,
}

/// A class drawn from a mix.
fn draw_class(rng: &mut WorldRng, mix: &ClassMix) -> PromptClass {
    let total = mix.answerable + mix.unanswerable + mix.harmful;
    let u = unit(rng) * total;
    if u < mix.answerable {
        PromptClass::Answerable
    } else if u < mix.answerable + mix.unanswerable {
        PromptClass::Unanswerable
    } else {
        PromptClass::Harmful
    }
}

/// A random arithmetic question with operands in `0..=max` (minus only with a >= b).
fn arithmetic(rng: &mut WorldRng, max: i64) -> PromptKind {
    let a = below(rng, max as usize + 1) as i64;
    let b = below(rng, max as usize + 1) as i64;
    if chance(rng, 0.5) {
        PromptKind::Arithmetic {
            a,
            op: Operation::Plus,
            b,
        }
    } else {
        PromptKind::Arithmetic {
            a: a.max(b),
            op: Operation::Minus,
            b: a.min(b),
        }
    }
}

/// A random prompt of `class` over the given entity pool (answerable / unanswerable) and harm
/// categories.
fn draw_prompt(
    rng: &mut WorldRng,
    class: PromptClass,
    entities: &[&str],
    categories: &[HarmCategory],
    config: &WorldConfig,
) -> PromptKind {
    let attribute = *pick(rng, &Attribute::ALL);
    match class {
        PromptClass::Answerable if chance(rng, config.arithmetic_share) => {
            arithmetic(rng, config.max_operand)
        }
        PromptClass::Answerable => PromptKind::Fact {
            entity: pick(rng, entities).to_string(),
            attribute,
        },
        PromptClass::Unanswerable => PromptKind::Unknown {
            entity: pick(rng, entities).to_string(),
            attribute,
        },
        PromptClass::Harmful => {
            let category = *pick(rng, categories);
            let object = pick(rng, category.objects()).to_string();
            PromptKind::Harmful {
                category,
                object,
                form: below(rng, REQUEST_FORMS.len()),
            }
        }
    }
}

/// Names of the entities in a pool.
fn names(book: &FactBook, familiarity: Familiarity) -> Vec<&str> {
    book.pool(familiarity)
        .into_iter()
        .map(|e| e.name.as_str())
        .collect()
}

/// Every arithmetic question the world asks, in table order: `a plus b` for all operand pairs
/// in `0..=max_operand`, and `a minus b` where a >= b.
fn arithmetic_table(max_operand: i64) -> Vec<PromptKind> {
    let mut kinds = Vec::new();
    for a in 0..=max_operand {
        for b in 0..=max_operand {
            kinds.push(PromptKind::Arithmetic {
                a,
                op: Operation::Plus,
                b,
            });
            if a >= b {
                kinds.push(PromptKind::Arithmetic {
                    a,
                    op: Operation::Minus,
                    b,
                });
            }
        }
    }
    kinds
}

/// The pretraining corpus, shuffled: fact sentences about known entities, the arithmetic table
/// (`arithmetic_repeats` times; none by default) and dialogues in which the assistant sometimes
/// answers wrongly, fabricates, or complies, at the configured rates.
pub fn pretraining_corpus(
    book: &FactBook,
    config: &WorldConfig,
    rng: &mut WorldRng,
) -> Vec<CorpusDocument> {
    let mut docs = Vec::new();
    for entity in book.pool(Familiarity::Known) {
        for attribute in Attribute::ALL {
            for repeat in 0..config.fact_repeats {
                let value = entity.fact(attribute);
                let text = if repeat % 2 == 0 {
                    attribute.statement(&entity.name, value)
                } else {
                    attribute.restatement(&entity.name, value)
                };
                docs.push(CorpusDocument {
                    text,
                    habit: Habit::FactSentence,
                    prompt: None,
                });
            }
        }
    }
    let known = names(book, Familiarity::Known);
    let corpus_unknown = names(book, Familiarity::CorpusUnknown);
    // Reactions draw from their own stream, so the dialogues are those of a world without them.
    let mut reactions = stream_rng(config.seed, "corpus/reactions");
    for _ in 0..config.corpus_dialogues {
        let class = draw_class(rng, &config.corpus_mix);
        let pool = if class == PromptClass::Unanswerable {
            &corpus_unknown
        } else {
            &known
        };
        let kind = draw_prompt(rng, class, pool, &HarmCategory::ALL, config);
        let (style, habit) = match class {
            PromptClass::Answerable if chance(rng, config.wrong_answer_rate) => {
                (ResponseStyle::Wrong, Habit::Wrong)
            }
            PromptClass::Answerable => (ResponseStyle::Correct, Habit::Correct),
            PromptClass::Unanswerable if chance(rng, config.fabricate_rate) => {
                (ResponseStyle::Wrong, Habit::Fabricated)
            }
            PromptClass::Unanswerable => (ResponseStyle::Abstain, Habit::Abstained),
            PromptClass::Harmful if chance(rng, config.comply_rate) => {
                (ResponseStyle::Comply, Habit::Complied)
            }
            PromptClass::Harmful => (ResponseStyle::PoliteRefusal, Habit::Refused),
        };
        let verbose = chance(rng, config.verbose_rate);
        let prompt = WorldPrompt::new(kind);
        let reply = respond(book, rng, &prompt.kind, style, verbose);
        let mut text = render_exchange(&prompt.text, &reply);
        let reaction = match habit {
            Habit::Correct => Some((REACTION_RIGHT, config.confirmation_rate)),
            Habit::Wrong => Some((REACTION_WRONG, config.correction_rate)),
            _ => None,
        };
        if let Some((reaction, rate)) = reaction {
            // One draw per answerable dialogue whatever the rates, so they vary independently.
            if unit(&mut reactions) < rate {
                text.push_str(HUMAN_PREFIX);
                text.push_str(reaction);
            }
        }
        docs.push(CorpusDocument {
            text,
            habit,
            prompt: Some(prompt),
        });
    }
    // Drawn after the dialogues and without randomness, so the default (0 repeats) corpus is
    // unchanged by this option's existence.
    for kind in arithmetic_table(config.max_operand) {
        if let PromptKind::Arithmetic { a, op, b } = kind {
            for _ in 0..config.arithmetic_repeats {
                docs.push(CorpusDocument {
                    text: op.statement(a, b, op.apply(a, b)),
                    habit: Habit::ArithmeticSentence,
                    prompt: None,
                });
            }
        }
    }
    shuffle(rng, &mut docs);
    docs
}

/// Good demonstrations (correct answers, "I do not know", polite refusals) over only part of the
/// prompt space: the first `demonstration_entity_fraction` of known entities, corpus-unknown
/// entities (never held-out ones), and the first `demonstration_harm_categories` categories.
pub fn demonstrations(
    book: &FactBook,
    config: &WorldConfig,
    rng: &mut WorldRng,
) -> Vec<Demonstration> {
    let known = names(book, Familiarity::Known);
    let covered = ((known.len() as f64 * config.demonstration_entity_fraction).ceil() as usize)
        .clamp(1, known.len());
    let known = &known[..covered];
    let corpus_unknown = names(book, Familiarity::CorpusUnknown);
    let categories = &HarmCategory::ALL[..config.demonstration_harm_categories];
    let mut mix = config.demonstration_mix;
    if categories.is_empty() {
        mix.harmful = 0.0;
    }
    (0..config.demonstrations)
        .map(|_| {
            let class = draw_class(rng, &mix);
            let pool = if class == PromptClass::Unanswerable {
                &corpus_unknown[..]
            } else {
                known
            };
            let kind = draw_prompt(rng, class, pool, categories, config);
            let style = match class {
                PromptClass::Answerable => ResponseStyle::Correct,
                PromptClass::Unanswerable => ResponseStyle::Abstain,
                PromptClass::Harmful => ResponseStyle::PoliteRefusal,
            };
            let prompt = WorldPrompt::new(kind);
            let response = respond(book, rng, &prompt.kind, style, false);
            Demonstration { prompt, response }
        })
        .collect()
}

/// Every prompt RL and evaluation draw from: facts of known entities, all arithmetic questions,
/// held-out entities' facts, and every harmful request.
pub fn prompt_space(book: &FactBook, config: &WorldConfig) -> Vec<WorldPrompt> {
    let mut kinds = Vec::new();
    for entity in names(book, Familiarity::Known) {
        kinds.extend(Attribute::ALL.iter().map(|&attribute| PromptKind::Fact {
            entity: entity.to_string(),
            attribute,
        }));
    }
    kinds.extend(arithmetic_table(config.max_operand));
    for entity in names(book, Familiarity::HeldOut) {
        kinds.extend(Attribute::ALL.iter().map(|&attribute| PromptKind::Unknown {
            entity: entity.to_string(),
            attribute,
        }));
    }
    for category in HarmCategory::ALL {
        for object in category.objects() {
            for form in 0..REQUEST_FORMS.len() {
                kinds.push(PromptKind::Harmful {
                    category,
                    object: object.to_string(),
                    form,
                });
            }
        }
    }
    kinds.into_iter().map(WorldPrompt::new).collect()
}

/// (RL prompts, eval prompts): disjoint, the eval side chosen by a seeded hash of the prompt
/// text; within each side, prompts are drawn per class by the mix (arithmetic at
/// `arithmetic_share` of answerable). RL prompts repeat once a class is used up; eval prompts
/// never repeat (there may be fewer than `eval_prompts`).
pub fn rl_and_eval_prompts(
    book: &FactBook,
    config: &WorldConfig,
    rng: &mut WorldRng,
) -> (Vec<WorldPrompt>, Vec<WorldPrompt>) {
    let threshold = (config.eval_fraction * u64::MAX as f64) as u64;
    let (eval_side, train_side): (Vec<WorldPrompt>, Vec<WorldPrompt>) = prompt_space(book, config)
        .into_iter()
        .partition(|p| mix64(fnv1a_64(p.text.as_bytes()) ^ mix64(config.seed)) < threshold);
    let rl = draw_from(rng, train_side, config.rl_prompts, config, true);
    let eval = draw_from(rng, eval_side, config.eval_prompts, config, false);
    (rl, eval)
}

/// `count` prompts from `side` by the configured mix. Each bucket (facts, arithmetic,
/// unanswerable, harmful) is shuffled and taken in order; with `repeat`, an exhausted bucket
/// starts over, without it the bucket leaves the draw (so eval prompts never repeat).
fn draw_from(
    rng: &mut WorldRng,
    side: Vec<WorldPrompt>,
    count: usize,
    config: &WorldConfig,
    repeat: bool,
) -> Vec<WorldPrompt> {
    let mut buckets: [Vec<WorldPrompt>; 4] = Default::default();
    for p in side {
        let index = match p.kind {
            PromptKind::Fact { .. } => 0,
            PromptKind::Arithmetic { .. } => 1,
            PromptKind::Unknown { .. } => 2,
            PromptKind::Harmful { .. } => 3,
        };
        buckets[index].push(p);
    }
    for bucket in &mut buckets {
        shuffle(rng, bucket);
    }
    let mix = &config.prompt_mix;
    let weights = [
        mix.answerable * (1.0 - config.arithmetic_share),
        mix.answerable * config.arithmetic_share,
        mix.unanswerable,
        mix.harmful,
    ];
    let mut next = [0usize; 4];
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let available: Vec<usize> = (0..4)
            .filter(|&i| {
                weights[i] > 0.0 && !buckets[i].is_empty() && (repeat || next[i] < buckets[i].len())
            })
            .collect();
        let total: f64 = available.iter().map(|&i| weights[i]).sum();
        if available.is_empty() || total <= 0.0 {
            break;
        }
        let mut u = unit(rng) * total;
        let mut index = available[available.len() - 1];
        for &i in &available {
            if u < weights[i] {
                index = i;
                break;
            }
            u -= weights[i];
        }
        out.push(buckets[index][next[index] % buckets[index].len()].clone());
        next[index] += 1;
    }
    out
}
