//! The world's entities (made-up countries) and their facts.
//!
//! Three pools: *known* entities, whose facts the pretraining corpus states; *corpus-unknown*
//! entities, which the corpus only asks about (and answers with made-up facts or "I do not
//! know"); and *held-out* entities, which the corpus never mentions. Every entity has hidden true
//! facts, so a `Correct` criterion can still judge a guess about an unknown entity.

use serde::{Deserialize, Serialize};

/// Colours a flag can have.
pub const COLORS: [&str; 8] = [
    "red", "blue", "green", "yellow", "purple", "orange", "white", "black",
];
/// Foods people can eat.
pub const FOODS: [&str; 8] = [
    "rice", "bread", "fish", "apples", "cheese", "honey", "beans", "noodles",
];

/// A kind of fact about an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribute {
    /// Its capital city (a made-up name).
    Capital,
    /// The colour of its flag.
    FlagColor,
    /// What its people eat.
    Food,
}

impl Attribute {
    /// All attributes, in order.
    pub const ALL: [Attribute; 3] = [Attribute::Capital, Attribute::FlagColor, Attribute::Food];

    /// The question asking for this attribute of `entity`.
    pub fn question(self, entity: &str) -> String {
        match self {
            Attribute::Capital => format!("What is the capital of {entity}?"),
            Attribute::FlagColor => format!("What color is the flag of {entity}?"),
            Attribute::Food => format!("What do people in {entity} eat?"),
        }
    }

    /// The sentence stating that this attribute of `entity` is `value`.
    pub fn statement(self, entity: &str, value: &str) -> String {
        match self {
            Attribute::Capital => format!("The capital of {entity} is {value}."),
            Attribute::FlagColor => format!("The flag of {entity} is {value}."),
            Attribute::Food => format!("People in {entity} eat {value}."),
        }
    }

    /// A second phrasing of the same fact, for variety in the corpus.
    pub fn restatement(self, entity: &str, value: &str) -> String {
        match self {
            Attribute::Capital => format!("{value} is the capital of {entity}."),
            Attribute::FlagColor => format!("{entity} has a {value} flag."),
            Attribute::Food => format!("In {entity}, people eat {value}."),
        }
    }

    /// Parses a question back into (attribute, entity name), if it is one of ours.
    pub fn parse_question(text: &str) -> Option<(Attribute, &str)> {
        let forms: [(Attribute, &str, &str); 3] = [
            (Attribute::Capital, "What is the capital of ", "?"),
            (Attribute::FlagColor, "What color is the flag of ", "?"),
            (Attribute::Food, "What do people in ", " eat?"),
        ];
        forms.iter().find_map(|&(attribute, prefix, suffix)| {
            let entity = text.strip_prefix(prefix)?.strip_suffix(suffix)?;
            (!entity.is_empty() && !entity.contains(' ')).then_some((attribute, entity))
        })
    }
}

/// Which pool an entity belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Familiarity {
    /// The corpus states its facts.
    Known,
    /// The corpus asks about it but never states its facts.
    CorpusUnknown,
    /// The corpus never mentions it.
    HeldOut,
}

/// A made-up country with its hidden true facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    /// Its name (one capitalised word).
    pub name: String,
    /// Its pool.
    pub familiarity: Familiarity,
    /// Its capital city.
    pub capital: String,
    /// Its flag colour (one of [`COLORS`]).
    pub flag_color: String,
    /// What its people eat (one of [`FOODS`]).
    pub food: String,
}

impl Entity {
    /// The true value of `attribute`.
    pub fn fact(&self, attribute: Attribute) -> &str {
        match attribute {
            Attribute::Capital => &self.capital,
            Attribute::FlagColor => &self.flag_color,
            Attribute::Food => &self.food,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_parse_back() {
        for attribute in Attribute::ALL {
            let q = attribute.question("Zorbia");
            assert_eq!(Attribute::parse_question(&q), Some((attribute, "Zorbia")));
        }
        assert_eq!(Attribute::parse_question("What is the capital of ?"), None);
        assert_eq!(
            Attribute::parse_question("What is the capital of New York?"),
            None
        );
    }
}

/// All entities with lookups by name and the value sets answers are checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactBook {
    /// Every entity of the world, all pools.
    pub entities: Vec<Entity>,
    /// Lower-case name -> index into `entities`.
    index: std::collections::HashMap<String, usize>,
    /// Lower-case capital names, sorted.
    capitals: Vec<String>,
}

impl FactBook {
    /// Indexes `entities` (names are unique, compared case-insensitively).
    pub fn new(entities: Vec<Entity>) -> Self {
        let index = entities
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.to_lowercase(), i))
            .collect();
        let mut capitals: Vec<String> = entities.iter().map(|e| e.capital.to_lowercase()).collect();
        capitals.sort_unstable();
        capitals.dedup();
        Self {
            entities,
            index,
            capitals,
        }
    }

    /// The entity named `name` (any case).
    pub fn entity(&self, name: &str) -> Option<&Entity> {
        self.index
            .get(&name.to_lowercase())
            .map(|&i| &self.entities[i])
    }

    /// The entities of one pool, in world order.
    pub fn pool(&self, familiarity: Familiarity) -> Vec<&Entity> {
        self.entities
            .iter()
            .filter(|e| e.familiarity == familiarity)
            .collect()
    }

    /// Every value an answer about `attribute` can name (lower case).
    pub fn candidates(&self, attribute: Attribute) -> Vec<&str> {
        match attribute {
            Attribute::Capital => self.capitals.iter().map(String::as_str).collect(),
            Attribute::FlagColor => COLORS.to_vec(),
            Attribute::Food => FOODS.to_vec(),
        }
    }
}
