//! Labeling tasks: a prompt with K responses, the questions and rules shown with it, the mode
//! (rank K or pick one of two), and, for gold items, the researchers' answer.
//!
//! [`TaskSpec`] is what the task files hold and what the store saves; [`TaskSpec::content_hash`]
//! identifies a task by its content so that loading a file twice adds nothing.

use rlhf_data::formats::item_id::{StableHash, hash_prompt};
use rlhf_data::records::{Prompt, Role};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Most responses one task may show.
pub const MAX_RESPONSES: usize = 16;

/// How the rater answers: rank all K responses, or pick the better of two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Order all K responses best to worst.
    Rank,
    /// Choose the better of exactly two responses.
    Pair,
}

impl Mode {
    /// `rank` or `pair`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Rank => "rank",
            Mode::Pair => "pair",
        }
    }

    /// The mode named `name`.
    pub fn from_name(name: &str) -> Option<Mode> {
        match name {
            "rank" => Some(Mode::Rank),
            "pair" => Some(Mode::Pair),
            _ => None,
        }
    }
}

/// A multiple-choice question asked about the task (e.g. "Is response 1 factually correct?").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskQuestion {
    /// Short id, unique within the task.
    pub id: String,
    /// The question as shown.
    pub text: String,
    /// The allowed answers, at least two, distinct.
    pub choices: Vec<String>,
}

/// A rule a response may break (Sparrow style), ticked by the rater per response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRule {
    /// Short id, unique within the task.
    pub id: String,
    /// The rule as shown.
    pub text: String,
}

/// One task as loaded from a file and kept in the database.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// The id the file gave it (unique in the database), used as the item id of exports.
    pub source_id: String,
    /// The conversation the responses answer.
    pub prompt: Prompt,
    /// The K responses, in the order shown to raters.
    pub responses: Vec<String>,
    /// Questions answered once per task.
    pub questions: Vec<TaskQuestion>,
    /// Rules checked against each response.
    pub rules: Vec<TaskRule>,
    /// Rank or pair.
    pub mode: Mode,
    /// The researchers' ranking of a gold item: tiers of response indices, best first.
    pub gold: Option<Vec<Vec<usize>>>,
    /// Larger is more urgent; super raters draw the most urgent tasks first.
    pub priority: i64,
}

impl TaskSpec {
    /// The prompt as one text: the user turn alone, or `User: ...` / `Assistant: ...` lines.
    pub fn prompt_text(&self) -> String {
        prompt_text(&self.prompt)
    }

    /// Whether this is a gold item.
    pub fn is_gold(&self) -> bool {
        self.gold.is_some()
    }

    /// SHA-256 (hex) of the content a rater sees: prompt, responses, questions, rules, mode.
    /// Gold answers and priority are not part of it, so the same task loaded as gold and as a
    /// plain task is one task.
    pub fn content_hash(&self) -> String {
        let content = serde_json::json!({
            "prompt": self.prompt,
            "responses": self.responses,
            "questions": self.questions,
            "rules": self.rules,
            "mode": self.mode,
        });
        crate::token::hex(&Sha256::digest(content.to_string().as_bytes()))
    }

    /// Checks the invariants: responses (2 to 16, non-empty; exactly 2 in pair mode), unique
    /// question and rule ids, at least two distinct choices per question, the gold ranking a
    /// partition of the response indices. Returns the offending field and what was expected.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |field: String, expected: String| Err((field, expected));
        if self.source_id.is_empty() {
            return bad("id".into(), "a non-empty id".into());
        }
        if self.prompt.is_empty() || self.prompt.turns.iter().all(|t| t.content.is_empty()) {
            return bad("prompt".into(), "a non-empty prompt".into());
        }
        let k = self.responses.len();
        if !(2..=MAX_RESPONSES).contains(&k) {
            return bad(
                "responses".into(),
                format!("2 to {MAX_RESPONSES} responses, got {k}"),
            );
        }
        if self.mode == Mode::Pair && k != 2 {
            return bad(
                "mode".into(),
                format!("`pair` only with exactly 2 responses, got {k}"),
            );
        }
        if let Some(i) = self.responses.iter().position(|r| r.trim().is_empty()) {
            return bad(format!("responses[{i}]"), "a non-empty response".into());
        }
        for (i, q) in self.questions.iter().enumerate() {
            if q.id.is_empty() || self.questions[..i].iter().any(|p| p.id == q.id) {
                return bad(
                    format!("questions[{i}].id"),
                    format!("a unique non-empty id, got `{}`", q.id),
                );
            }
            if q.text.is_empty() {
                return bad(format!("questions[{i}].text"), "a non-empty text".into());
            }
            if q.choices.len() < 2 {
                return bad(
                    format!("questions[{i}].choices"),
                    format!("at least two choices, got {}", q.choices.len()),
                );
            }
            for (j, c) in q.choices.iter().enumerate() {
                if c.is_empty() || q.choices[..j].contains(c) {
                    return bad(
                        format!("questions[{i}].choices[{j}]"),
                        format!("a unique non-empty choice, got `{c}`"),
                    );
                }
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            if r.id.is_empty() || self.rules[..i].iter().any(|p| p.id == r.id) {
                return bad(
                    format!("rules[{i}].id"),
                    format!("a unique non-empty id, got `{}`", r.id),
                );
            }
            if r.text.is_empty() {
                return bad(format!("rules[{i}].text"), "a non-empty text".into());
            }
        }
        if let Some(tiers) = &self.gold {
            let mut seen = vec![false; k];
            for (t, tier) in tiers.iter().enumerate() {
                if tier.is_empty() {
                    return bad(format!("gold.ranking[{t}]"), "a non-empty tier".into());
                }
                for &i in tier {
                    if i >= k || seen[i] {
                        return bad(
                            "gold.ranking".into(),
                            format!(
                                "each response index 0..{k} exactly once, got {i} twice or out of range"
                            ),
                        );
                    }
                    seen[i] = true;
                }
            }
            if let Some(missing) = seen.iter().position(|s| !s) {
                return bad(
                    "gold.ranking".into(),
                    format!("every response index 0..{k}, {missing} is missing"),
                );
            }
        }
        Ok(())
    }
}

/// The prompt as shown: a lone user turn as is, otherwise one `Role: content` paragraph per turn.
pub fn prompt_text(prompt: &Prompt) -> String {
    if let [turn] = prompt.turns.as_slice()
        && turn.role == Role::User
    {
        return turn.content.clone();
    }
    prompt
        .turns
        .iter()
        .map(|t| {
            let role = match t.role {
                Role::System => "System",
                Role::User => "User",
                Role::Assistant => "Assistant",
            };
            format!("{role}: {}", t.content)
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A permutation of `0..k` drawn from the prompt and responses (the same on every machine), used
/// to show the responses of pair and ranking records in an order that does not reveal which one
/// the record preferred. `order[shown] = original`.
pub fn presentation_order(prompt: &Prompt, responses: &[String]) -> Vec<usize> {
    let mut hash = StableHash::new();
    hash_prompt(&mut hash, prompt);
    for r in responses {
        hash.part(r.as_bytes());
    }
    let mut state = hash.finish();
    let mut order: Vec<usize> = (0..responses.len()).collect();
    // Fisher–Yates with a SplitMix64 stream.
    for i in (1..order.len()).rev() {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let j = (z % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TaskSpec {
        TaskSpec {
            source_id: "t1".into(),
            prompt: Prompt::user("2+2?"),
            responses: vec!["4".into(), "5".into(), "22".into()],
            questions: vec![TaskQuestion {
                id: "q1".into(),
                text: "Correct?".into(),
                choices: vec!["yes".into(), "no".into()],
            }],
            rules: vec![],
            mode: Mode::Rank,
            gold: Some(vec![vec![0], vec![2], vec![1]]),
            priority: 0,
        }
    }

    #[test]
    fn validation_names_the_field() {
        assert_eq!(spec().validate(), Ok(()));
        let mut s = spec();
        s.gold = Some(vec![vec![0], vec![0], vec![1]]);
        assert_eq!(s.validate().unwrap_err().0, "gold.ranking");
        let mut s = spec();
        s.mode = Mode::Pair;
        assert_eq!(s.validate().unwrap_err().0, "mode");
        let mut s = spec();
        s.questions[0].choices.pop();
        assert_eq!(s.validate().unwrap_err().0, "questions[0].choices");
    }

    #[test]
    fn content_hash_ignores_gold_and_priority() {
        let mut a = spec();
        let b = spec();
        a.gold = None;
        a.priority = 9;
        assert_eq!(a.content_hash(), b.content_hash());
        a.responses[0] = "four".into();
        assert_ne!(a.content_hash(), b.content_hash());
    }

    #[test]
    fn presentation_order_is_a_stable_permutation() {
        let responses: Vec<String> = (0..7).map(|i| format!("r{i}")).collect();
        let order = presentation_order(&Prompt::user("p"), &responses);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..7).collect::<Vec<_>>());
        assert_eq!(order, presentation_order(&Prompt::user("p"), &responses));
    }
}
