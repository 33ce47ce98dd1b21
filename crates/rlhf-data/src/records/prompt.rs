//! Conversations: a prompt is the list of turns before the response being judged.

use serde::{Deserialize, Serialize};

/// Who speaks a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions to the assistant (TRL/OpenAI `system`).
    System,
    /// The human side: HH-RLHF `Human:`, OASST `prompter`, TRL `user`.
    #[serde(alias = "human", alias = "prompter")]
    User,
    /// The model side: HH-RLHF `Assistant:`, TRL `assistant`.
    Assistant,
}

impl Role {
    /// The lowercase name used in TRL and in our JSONL (`system`, `user`, `assistant`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Turn {
    /// Who speaks.
    pub role: Role,
    /// What is said, exactly as in the source (no trimming).
    pub content: String,
}

impl Turn {
    /// A turn of `role` saying `content`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Turn {
            role,
            content: content.into(),
        }
    }

    /// A user turn.
    pub fn user(content: impl Into<String>) -> Self {
        Turn::new(Role::User, content)
    }

    /// An assistant turn.
    pub fn assistant(content: impl Into<String>) -> Self {
        Turn::new(Role::Assistant, content)
    }
}

/// The conversation a response answers, oldest turn first; single-turn prompts hold one user turn.
///
/// Serialised as a plain list of `{role, content}` objects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Prompt {
    /// The turns, oldest first; normally the last one is a user turn.
    pub turns: Vec<Turn>,
}

impl Prompt {
    /// A prompt of the given turns.
    pub fn new(turns: Vec<Turn>) -> Self {
        Prompt { turns }
    }

    /// A single-turn prompt: one user message.
    pub fn user(content: impl Into<String>) -> Self {
        Prompt {
            turns: vec![Turn::user(content)],
        }
    }

    /// The content of the last user turn, if any (the question being answered).
    pub fn last_user(&self) -> Option<&str> {
        self.turns
            .iter()
            .rev()
            .find(|t| t.role == Role::User)
            .map(|t| t.content.as_str())
    }

    /// Total characters (Unicode scalar values) over all turns' contents.
    pub fn char_len(&self) -> usize {
        self.turns.iter().map(|t| t.content.chars().count()).sum()
    }

    /// Whether the prompt has no turns.
    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_accepts_the_field_aliases() {
        let roles: Vec<Role> =
            serde_json::from_str(r#"["human","prompter","user","assistant","system"]"#).unwrap();
        assert_eq!(
            roles,
            [
                Role::User,
                Role::User,
                Role::User,
                Role::Assistant,
                Role::System
            ]
        );
        assert_eq!(serde_json::to_string(&Role::User).unwrap(), r#""user""#);
    }

    #[test]
    fn prompt_serialises_as_a_list_of_turns() {
        let p = Prompt::new(vec![
            Turn::user("hi"),
            Turn::assistant("hello"),
            Turn::user("2+2?"),
        ]);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":"2+2?"}]"#
        );
        assert_eq!(serde_json::from_str::<Prompt>(&json).unwrap(), p);
        assert_eq!(p.last_user(), Some("2+2?"));
    }
}
