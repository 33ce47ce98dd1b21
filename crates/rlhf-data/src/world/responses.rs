//! Responses of known styles to the world's prompts: what the corpus, the demonstrations and the
//! candidate sets for labeling are made of.

use super::facts::{Attribute, FactBook};
use super::harm::{POLITE_REFUSAL, RUDE_REFUSAL};
use super::prompts::{PromptClass, PromptKind};
use super::rng::{WorldRng, below, chance, pick};
use serde::{Deserialize, Serialize};

/// How a response answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseStyle {
    /// States the true value (for an unknown entity: a lucky guess of its hidden fact).
    Correct,
    /// States a wrong value (for an unknown entity: a fabrication).
    Wrong,
    /// Says it does not know.
    Abstain,
    /// Refuses politely.
    PoliteRefusal,
    /// Refuses rudely.
    RudeRefusal,
    /// Complies with a harmful request (gives the banned instructions).
    Comply,
}

impl ResponseStyle {
    /// The styles that make sense for a prompt class.
    pub fn for_class(class: PromptClass) -> &'static [ResponseStyle] {
        use ResponseStyle::*;
        match class {
            PromptClass::Answerable => &[Correct, Wrong, Abstain, PoliteRefusal, RudeRefusal],
            PromptClass::Unanswerable => &[Abstain, Wrong, Correct, PoliteRefusal, RudeRefusal],
            PromptClass::Harmful => &[PoliteRefusal, RudeRefusal, Comply, Abstain],
        }
    }
}

/// Filler that lengthens a reply without changing any score.
const FILLER: (&str, &str) = (
    "Let me think about this. ",
    " I hope this is what you wanted.",
);

/// A wrong value for `attribute` of `entity` (never the true one).
fn wrong_value(book: &FactBook, rng: &mut WorldRng, entity: &str, attribute: Attribute) -> String {
    let truth = book
        .entity(entity)
        .map(|e| e.fact(attribute).to_lowercase());
    let candidates: Vec<&str> = book
        .candidates(attribute)
        .into_iter()
        .filter(|c| Some(c.to_string()) != truth)
        .collect();
    if candidates.is_empty() {
        return "nothing".to_string();
    }
    let value = pick(rng, &candidates);
    // Capitals are stored lower-case in the value set; write them as names.
    match attribute {
        Attribute::Capital => capitalise(value),
        _ => value.to_string(),
    }
}

/// `word` with its first letter upper-cased.
fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A response in `style` to `kind`; `verbose` wraps it in neutral filler.
///
/// A style that does not fit the prompt (e.g. `Comply` to a fact question) falls back to a
/// polite refusal for harmful prompts and to abstaining otherwise.
pub fn respond(
    book: &FactBook,
    rng: &mut WorldRng,
    kind: &PromptKind,
    style: ResponseStyle,
    verbose: bool,
) -> String {
    use ResponseStyle::*;
    let core = match (kind, style) {
        (_, PoliteRefusal) => POLITE_REFUSAL.to_string(),
        (_, RudeRefusal) => RUDE_REFUSAL.to_string(),
        (
            PromptKind::Harmful {
                category, object, ..
            },
            Comply,
        ) => category.compliance(object),
        (PromptKind::Harmful { .. }, _) => "I do not know how to do that.".to_string(),
        (
            PromptKind::Fact { entity, attribute } | PromptKind::Unknown { entity, attribute },
            Correct,
        ) => {
            let value = book
                .entity(entity)
                .map(|e| e.fact(*attribute))
                .unwrap_or("nothing");
            attribute.statement(entity, value)
        }
        (
            PromptKind::Fact { entity, attribute } | PromptKind::Unknown { entity, attribute },
            Wrong,
        ) => attribute.statement(entity, &wrong_value(book, rng, entity, *attribute)),
        (PromptKind::Fact { entity, .. } | PromptKind::Unknown { entity, .. }, _) => {
            format!("I do not know anything about {entity}.")
        }
        (PromptKind::Arithmetic { a, op, b }, Correct) => op.statement(*a, *b, op.apply(*a, *b)),
        (PromptKind::Arithmetic { a, op, b }, Wrong) => {
            let offset = 1 + below(rng, 3) as i64;
            let truth = op.apply(*a, *b);
            let wrong = if truth >= offset && chance(rng, 0.5) {
                truth - offset
            } else {
                truth + offset
            };
            op.statement(*a, *b, wrong)
        }
        (PromptKind::Arithmetic { .. }, _) => "I do not know.".to_string(),
    };
    if verbose {
        format!("{}{core}{}", FILLER.0, FILLER.1)
    } else {
        core
    }
}
