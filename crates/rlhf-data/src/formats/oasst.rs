//! OpenAssistant message trees (one tree per JSONL line: `{message_tree_id, prompt: message}`,
//! each message `{message_id, role: prompter|assistant, text, rank, deleted, replies: [...]}`)
//! read into K-way rankings, one per prompter message whose assistant replies carry ranks.
//!
//! - The prompt of a ranking is the conversation from the root down to that prompter message.
//! - Sibling `rank` 0 is the best; equal ranks tie; replies with a null rank were not ranked and
//!   are left out of the ranking; a ranking needs at least two ranked replies.
//! - Deleted messages are left out together with everything below them.
//! - Ranked prompter replies (OASST also ranks user turns) give no ranking: we rank responses.
//! - The item id is the parent's `message_id`; the timestamp its `created_date` when present;
//!   there is no single rater (OASST ranks merge several rankers).
//!
//! Everything left out is counted in an [`OasstTally`] so the reader can report it.
//! The format is read-only here: `rlhf data convert --format kway` writes rankings natively.

use serde_json::{Map, Value};

use super::json::{self, Fields, describe};
use crate::records::{FeedbackMeta, InvalidRecord, Prompt, Ranking, Role, Turn};

/// What reading a tree left out, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct OasstTally {
    /// Messages marked deleted (their subtrees are not visited).
    pub deleted_messages: u64,
    /// Assistant replies without a rank among siblings that were ranked.
    pub unranked_replies: u64,
    /// Prompter messages with exactly one ranked assistant reply (nothing to compare).
    pub single_ranked_replies: u64,
    /// Sibling groups of ranked prompter replies (user turns, not responses).
    pub prompter_rankings: u64,
}

impl OasstTally {
    /// Adds `other`'s counts.
    pub fn add(&mut self, other: &OasstTally) {
        self.deleted_messages += other.deleted_messages;
        self.unranked_replies += other.unranked_replies;
        self.single_ranked_replies += other.single_ranked_replies;
        self.prompter_rankings += other.prompter_rankings;
    }
}

/// Parses one tree into its rankings (in depth-first order) and what was left out.
pub fn parse_line(line: &str) -> Result<(Vec<Ranking>, OasstTally), InvalidRecord> {
    let map = json::parse_object(line)?;
    let fields = Fields::new(&map, "");
    fields.opt_str("message_tree_id")?;
    let root = match fields.get("prompt") {
        Some(Value::Object(root)) => root,
        Some(other) => {
            return Err(fields.error(
                "prompt",
                format!("the root message object, got {}", describe(other)),
            ));
        }
        None => return Err(fields.error("prompt", "the root message object (missing)")),
    };
    let mut walk = Walk {
        rankings: Vec::new(),
        tally: OasstTally::default(),
        conversation: Vec::new(),
    };
    walk.visit(root, "prompt".to_string())?;
    Ok((walk.rankings, walk.tally))
}

struct Walk {
    rankings: Vec<Ranking>,
    tally: OasstTally,
    /// Turns from the root to the message being visited.
    conversation: Vec<Turn>,
}

/// A reply as needed to rank it.
struct Reply<'v> {
    map: &'v Map<String, Value>,
    path: String,
    role: Role,
    deleted: bool,
    rank: Option<u32>,
}

impl Walk {
    fn visit(&mut self, message: &Map<String, Value>, path: String) -> Result<(), InvalidRecord> {
        let fields = Fields::new(message, &path);
        if fields.opt_bool("deleted")?.unwrap_or(false) {
            self.tally.deleted_messages += 1;
            return Ok(());
        }
        let role = parse_role(&fields)?;
        self.conversation.push(Turn::new(role, fields.str("text")?));
        let replies = self.replies(&fields)?;
        let ranked: Vec<&Reply<'_>> = replies
            .iter()
            .filter(|r| !r.deleted && r.rank.is_some())
            .collect();
        let ranked_assistants: Vec<&Reply<'_>> = ranked
            .iter()
            .copied()
            .filter(|r| r.role == Role::Assistant)
            .collect();
        if ranked.len() > ranked_assistants.len() && ranked.len() - ranked_assistants.len() >= 2 {
            self.tally.prompter_rankings += 1;
        }
        if !ranked_assistants.is_empty() {
            self.tally.unranked_replies += replies
                .iter()
                .filter(|r| !r.deleted && r.rank.is_none() && r.role == Role::Assistant)
                .count() as u64;
        }
        if role == Role::User && ranked_assistants.len() == 1 {
            self.tally.single_ranked_replies += 1;
        }
        if role == Role::User && ranked_assistants.len() >= 2 {
            let mut responses = Vec::with_capacity(ranked_assistants.len());
            let mut ranks = Vec::with_capacity(ranked_assistants.len());
            for reply in &ranked_assistants {
                responses.push(Fields::new(reply.map, &reply.path).str("text")?.to_string());
                ranks.push(reply.rank.unwrap_or(u32::MAX)); // filtered on `rank.is_some()` above
            }
            let mut meta = FeedbackMeta::new(fields.str("message_id")?);
            meta.timestamp = fields.opt_str("created_date")?.map(str::to_string);
            let prompt = Prompt::new(self.conversation.clone());
            self.rankings
                .push(Ranking::from_ranks(meta, prompt, responses, &ranks));
        }
        for reply in replies {
            self.visit(reply.map, reply.path)?;
        }
        self.conversation.pop();
        Ok(())
    }

    fn replies<'v>(&self, fields: &Fields<'v>) -> Result<Vec<Reply<'v>>, InvalidRecord> {
        let items = match fields.get("replies") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(fields.error(
                    "replies",
                    format!("a list of messages, got {}", describe(other)),
                ));
            }
        };
        let mut replies = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = fields.path_of(&format!("replies[{i}]"));
            let Value::Object(map) = item else {
                return Err(InvalidRecord::new(
                    path,
                    format!("a message object, got {}", describe(item)),
                ));
            };
            let reply = Fields::new(map, &path);
            let deleted = reply.opt_bool("deleted")?.unwrap_or(false);
            let role = parse_role(&reply)?;
            let rank = reply.opt_u32("rank")?;
            replies.push(Reply {
                map,
                path,
                role,
                deleted,
                rank,
            });
        }
        Ok(replies)
    }
}

fn parse_role(fields: &Fields<'_>) -> Result<Role, InvalidRecord> {
    match fields.str("role")? {
        "prompter" | "user" => Ok(Role::User),
        "assistant" => Ok(Role::Assistant),
        other => Err(fields.error("role", format!("`prompter` or `assistant`, got `{other}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(id: &str, role: &str, text: &str, rank: Option<u32>, replies: Vec<Value>) -> Value {
        json!({"message_id": id, "role": role, "text": text, "rank": rank, "deleted": false, "replies": replies})
    }

    #[test]
    fn ranked_siblings_become_rankings_per_parent() {
        let mut deleted = msg(
            "a4",
            "assistant",
            "gone",
            Some(0),
            vec![msg("p9", "prompter", "x", None, vec![])],
        );
        deleted["deleted"] = json!(true);
        let tree = json!({"message_tree_id": "t", "prompt": msg("p0", "prompter", "Q?", None, vec![
            msg("a1", "assistant", "second", Some(1), vec![
                msg("p1", "prompter", "why?", None, vec![
                    msg("a5", "assistant", "because", Some(0), vec![]),
                    msg("a6", "assistant", "dunno", Some(1), vec![]),
                ]),
            ]),
            msg("a2", "assistant", "best", Some(0), vec![]),
            msg("a3", "assistant", "unranked", None, vec![]),
            deleted,
        ])});
        let (rankings, tally) = parse_line(&tree.to_string()).unwrap();
        assert_eq!(rankings.len(), 2);
        assert_eq!(rankings[0].meta.item_id, "p0");
        assert_eq!(rankings[0].prompt, Prompt::user("Q?"));
        assert_eq!(rankings[0].responses, ["second", "best"]);
        assert_eq!(rankings[0].tiers, vec![vec![1], vec![0]]);
        assert_eq!(rankings[1].meta.item_id, "p1");
        assert_eq!(
            rankings[1].prompt.turns,
            [
                Turn::user("Q?"),
                Turn::assistant("second"),
                Turn::user("why?")
            ]
        );
        assert_eq!(rankings[1].responses, ["because", "dunno"]);
        assert_eq!(
            tally,
            OasstTally {
                deleted_messages: 1,
                unranked_replies: 1,
                ..OasstTally::default()
            }
        );
    }

    #[test]
    fn errors_give_the_path_into_the_tree() {
        let tree = json!({"prompt": msg("p0", "prompter", "Q?", None, vec![
            msg("a1", "assistant", "x", Some(0), vec![]),
            json!({"message_id": "a2", "role": "assistant", "text": "y", "rank": -1}),
        ])});
        let err = parse_line(&tree.to_string()).unwrap_err();
        assert_eq!(err.field, "prompt.replies[1].rank");
        let tree = json!({"prompt": msg("p0", "robot", "Q?", None, vec![])});
        assert_eq!(
            parse_line(&tree.to_string()).unwrap_err().field,
            "prompt.role"
        );
        assert_eq!(parse_line(r#"{"prompt": 3}"#).unwrap_err().field, "prompt");
    }
}
