//! Rule-violation labels (Sparrow): a rule set, and which rules each response breaks.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{FeedbackMeta, InvalidRecord, Prompt};

/// One rule of conduct, e.g. `("no-medical-advice", "Do not give medical advice.")`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rule {
    /// Short stable id, referred to by violation labels.
    pub id: String,
    /// The rule as shown to raters.
    pub text: String,
}

impl Rule {
    /// The rule `id` reading `text`.
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        Rule {
            id: id.into(),
            text: text.into(),
        }
    }
}

/// The rules raters checked; serialised as a plain list of rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RuleSet {
    /// The rules, ids unique.
    pub rules: Vec<Rule>,
}

impl RuleSet {
    /// A rule set of `rules`.
    pub fn new(rules: Vec<Rule>) -> Self {
        RuleSet { rules }
    }

    /// The rule with this id.
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Checks that rule ids are non-empty and unique; `field` prefixes the reported path.
    pub fn validate(&self, field: &str) -> Result<(), InvalidRecord> {
        let mut ids = HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.id.is_empty() {
                return Err(InvalidRecord::new(
                    format!("{field}[{i}].id"),
                    "a non-empty rule id",
                ));
            }
            if !ids.insert(rule.id.as_str()) {
                return Err(InvalidRecord::new(
                    format!("{field}[{i}].id"),
                    format!("unique rule ids, `{}` repeats", rule.id),
                ));
            }
        }
        Ok(())
    }
}

/// A rater checked each response against every rule of `rules`; `broken[i]` lists the ids of the
/// rules `responses[i]` breaks (empty: it breaks none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleViolations {
    /// Item, rater, time, confidence.
    #[serde(flatten)]
    pub meta: FeedbackMeta,
    /// The conversation the responses answer.
    pub prompt: Prompt,
    /// The rules checked.
    pub rules: RuleSet,
    /// The responses judged.
    pub responses: Vec<String>,
    /// Per response (aligned with `responses`), the ids of the rules it breaks.
    pub broken: Vec<Vec<String>>,
}

impl RuleViolations {
    /// Whether `responses[response]` breaks the rule `rule_id`.
    pub fn breaks(&self, response: usize, rule_id: &str) -> bool {
        self.broken
            .get(response)
            .is_some_and(|ids| ids.iter().any(|id| id == rule_id))
    }

    /// Checks: the rule set, one entry of `broken` per response, each id in the rule set once.
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        self.meta.validate()?;
        self.rules.validate("rules")?;
        if self.responses.is_empty() {
            return Err(InvalidRecord::new("responses", "at least one response"));
        }
        if self.broken.len() != self.responses.len() {
            return Err(InvalidRecord::new(
                "broken",
                format!(
                    "one list per response ({}), got {}",
                    self.responses.len(),
                    self.broken.len()
                ),
            ));
        }
        for (i, ids) in self.broken.iter().enumerate() {
            let mut seen = HashSet::new();
            for (j, id) in ids.iter().enumerate() {
                if self.rules.get(id).is_none() {
                    return Err(InvalidRecord::new(
                        format!("broken[{i}][{j}]"),
                        format!("a rule id of `rules`, got `{id}`"),
                    ));
                }
                if !seen.insert(id) {
                    return Err(InvalidRecord::new(
                        format!("broken[{i}][{j}]"),
                        format!("each rule once, `{id}` repeats"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(broken: Vec<Vec<&str>>) -> RuleViolations {
        RuleViolations {
            meta: FeedbackMeta::new("d1").with_rater("r1"),
            prompt: Prompt::user("How do I pick a lock?"),
            rules: RuleSet::new(vec![
                Rule::new("harm", "Do not help with crimes."),
                Rule::new("pii", "No private data."),
            ]),
            responses: vec![
                "Use a tension wrench...".into(),
                "I can't help with that.".into(),
            ],
            broken: broken
                .into_iter()
                .map(|v| v.into_iter().map(String::from).collect())
                .collect(),
        }
    }

    #[test]
    fn lookups_and_checks() {
        let ok = record(vec![vec!["harm"], vec![]]);
        assert_eq!(ok.validate(), Ok(()));
        assert!(ok.breaks(0, "harm") && !ok.breaks(1, "harm") && !ok.breaks(5, "harm"));
        assert_eq!(
            record(vec![vec!["nope"], vec![]])
                .validate()
                .unwrap_err()
                .field,
            "broken[0][0]"
        );
        assert_eq!(
            record(vec![vec!["harm", "harm"], vec![]])
                .validate()
                .unwrap_err()
                .field,
            "broken[0][1]"
        );
        assert_eq!(record(vec![vec![]]).validate().unwrap_err().field, "broken");
        let mut dup = record(vec![vec![], vec![]]);
        dup.rules.rules.push(Rule::new("pii", "again"));
        assert_eq!(dup.validate().unwrap_err().field, "rules[2].id");
    }
}
