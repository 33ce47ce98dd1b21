//! The world's prompts: what is asked, how it is written, and the dialogue format.
//!
//! Dialogues use the HH-RLHF turn markers: a prompt renders as `"\n\nHuman: {question}\n\nAssistant:"`
//! and the assistant's reply follows after one space, so a world transcript is valid HH-RLHF text.

use super::facts::Attribute;
use super::harm::HarmCategory;
use serde::{Deserialize, Serialize};

/// The marker that opens a human turn.
pub const HUMAN_PREFIX: &str = "\n\nHuman: ";
/// The marker that opens an assistant turn (the reply follows after a space).
pub const ASSISTANT_PREFIX: &str = "\n\nAssistant:";

/// An arithmetic operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// a + b.
    Plus,
    /// a - b (the world only asks with a >= b).
    Minus,
}

impl Operation {
    /// The operation's word.
    pub fn word(self) -> &'static str {
        match self {
            Operation::Plus => "plus",
            Operation::Minus => "minus",
        }
    }

    /// The result of `a op b`.
    pub fn apply(self, a: i64, b: i64) -> i64 {
        match self {
            Operation::Plus => a + b,
            Operation::Minus => a - b,
        }
    }

    /// The sentence stating that `a op b` is `value` (true or not): `"3 plus 4 is 7."`.
    pub fn statement(self, a: i64, b: i64, value: i64) -> String {
        format!("{a} {} {b} is {value}.", self.word())
    }
}

/// What a prompt asks, with what the scorers need to judge an answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PromptKind {
    /// A fact about a known entity (answerable).
    Fact {
        /// The entity's name.
        entity: String,
        /// The attribute asked.
        attribute: Attribute,
    },
    /// An arithmetic question (answerable).
    Arithmetic {
        /// Left operand.
        a: i64,
        /// Operation.
        op: Operation,
        /// Right operand.
        b: i64,
    },
    /// A fact about an entity the corpus never states facts about (unanswerable).
    Unknown {
        /// The entity's name.
        entity: String,
        /// The attribute asked.
        attribute: Attribute,
    },
    /// A harmful request.
    Harmful {
        /// Its category.
        category: HarmCategory,
        /// The object named.
        object: String,
        /// Which phrasing of the request (see `harm::REQUEST_FORMS`).
        form: usize,
    },
}

/// The broad class of a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptClass {
    /// Facts and arithmetic the model can know.
    Answerable,
    /// Questions about entities it cannot know.
    Unanswerable,
    /// Requests it should refuse.
    Harmful,
}

impl PromptKind {
    /// The broad class.
    pub fn class(&self) -> PromptClass {
        match self {
            PromptKind::Fact { .. } | PromptKind::Arithmetic { .. } => PromptClass::Answerable,
            PromptKind::Unknown { .. } => PromptClass::Unanswerable,
            PromptKind::Harmful { .. } => PromptClass::Harmful,
        }
    }

    /// The question or request as the human writes it.
    pub fn text(&self) -> String {
        match self {
            PromptKind::Fact { entity, attribute } | PromptKind::Unknown { entity, attribute } => {
                attribute.question(entity)
            }
            PromptKind::Arithmetic { a, op, b } => format!("What is {a} {} {b}?", op.word()),
            PromptKind::Harmful {
                category,
                object,
                form,
            } => category.request(object, *form),
        }
    }
}

/// One prompt of the world: an id, what it asks, and its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorldPrompt {
    /// Stable id (derived from the text).
    pub id: String,
    /// What is asked.
    pub kind: PromptKind,
    /// The question as the human writes it (no dialogue markers).
    pub text: String,
}

impl WorldPrompt {
    /// The prompt for `kind`, with id `"q-"` + the FNV-1a hash of the text.
    pub fn new(kind: PromptKind) -> Self {
        let text = kind.text();
        let id = format!("q-{:016x}", crate::batching::fnv1a_64(text.as_bytes()));
        Self { id, kind, text }
    }

    /// The prompt in dialogue format, ready for the model to continue.
    pub fn render(&self) -> String {
        render_prompt(&self.text)
    }
}

/// `question` in dialogue format: `"\n\nHuman: {question}\n\nAssistant:"`.
pub fn render_prompt(question: &str) -> String {
    format!("{HUMAN_PREFIX}{question}{ASSISTANT_PREFIX}")
}

/// A whole exchange: the rendered prompt followed by `" {reply}"`.
pub fn render_exchange(question: &str, reply: &str) -> String {
    format!("{} {reply}", render_prompt(question))
}

/// The question inside a prompt that may be in dialogue format (the last human turn), trimmed.
pub fn question_of(prompt: &str) -> &str {
    let after_human = prompt
        .rsplit_once("Human:")
        .map_or(prompt, |(_, rest)| rest);
    let question = after_human
        .split_once("Assistant:")
        .map_or(after_human, |(q, _)| q);
    question.trim()
}

/// Parses a plain arithmetic question `"What is {a} {plus|minus} {b}?"`.
pub fn parse_arithmetic(text: &str) -> Option<(i64, Operation, i64)> {
    let body = text.strip_prefix("What is ")?.strip_suffix('?')?;
    let mut words = body.split(' ');
    let (a, op, b) = (words.next()?, words.next()?, words.next()?);
    if words.next().is_some() {
        return None;
    }
    let op = match op {
        "plus" => Operation::Plus,
        "minus" => Operation::Minus,
        _ => return None,
    };
    Some((a.parse().ok()?, op, b.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_and_question_extraction_agree() {
        let q = "What is 3 plus 4?";
        assert_eq!(
            render_prompt(q),
            "\n\nHuman: What is 3 plus 4?\n\nAssistant:"
        );
        assert_eq!(question_of(&render_prompt(q)), q);
        assert_eq!(question_of(q), q);
        assert_eq!(
            question_of("\n\nHuman: hi\n\nAssistant: yo\n\nHuman: What?\n\nAssistant:"),
            "What?"
        );
        assert_eq!(parse_arithmetic(q), Some((3, Operation::Plus, 4)));
        assert_eq!(parse_arithmetic("What is 3 times 4?"), None);
    }

    #[test]
    fn ids_are_stable() {
        let p = WorldPrompt::new(PromptKind::Arithmetic {
            a: 3,
            op: Operation::Plus,
            b: 4,
        });
        assert_eq!(p.id, WorldPrompt::new(p.kind.clone()).id);
        assert!(p.id.starts_with("q-"));
    }
}
