//! From feedback records to [`Comparison`]s: the [`PreferenceBuilder`] takes any `rlhf-data`
//! feedback (pairwise choices, K-way rankings with ties, rule-violation labels), in memory or
//! from any file format `rlhf-data` reads (HH-RLHF, TRL, OASST, native JSONL; gzip or not),
//! and tokenises each response once.
//!
//! Conventions:
//! - The text the model reads is the HH dialogue: [`render_prompt`] (`"\n\nHuman: ..."` turns
//!   ending in `"\n\nAssistant:"`) followed by `" " + response` ([`response_text`]), which is the
//!   original transcript for HH-RLHF data and the world's `render_exchange`; then the EOS.
//! - A rule-violation record whose source, item id and rater match a ranking or pair already
//!   added, and whose responses are among that comparison's, labels that comparison's rows (so
//!   the responses are scored once); otherwise it becomes a comparison of its own, with labels
//!   and no pair.
//! - Records of other kinds (questions, ratings, label rows) carry no preference between
//!   responses; they are counted in [`BuildStats::ignored`], never silently dropped.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use rlhf_data::batching::{Split, SplitFractions, fnv1a_64, split_of};
use rlhf_data::formats::item_id::prompt_item_id;
use rlhf_data::formats::{FeedbackReader, Format};
use rlhf_data::records::{Feedback, Prompt, Role, RuleViolations};
use rlhf_data::tokenizer::Tokenizer;
use rlhf_data::validate::{Checked, Policy};
use serde::{Deserialize, Serialize};

use crate::batch::{Comparison, ComparisonPair};
use crate::model::{SequenceConfig, build_sequence};
use crate::{Result, RewardError};

/// A prompt as HH dialogue text ending in `"\n\nAssistant:"` (system turns open it as is).
pub fn render_prompt(prompt: &Prompt) -> String {
    let mut text = String::new();
    for turn in &prompt.turns {
        text.push_str(match turn.role {
            Role::System => "",
            Role::User => "\n\nHuman: ",
            Role::Assistant => "\n\nAssistant: ",
        });
        text.push_str(&turn.content);
    }
    text.push_str("\n\nAssistant:");
    text
}

/// The response as it follows the rendered prompt: one space, then the text.
pub fn response_text(response: &str) -> String {
    format!(" {response}")
}

/// Which rule heads the data trains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleColumns {
    /// No rule heads: rule-violation records are counted as ignored.
    Off,
    /// The union of the rule ids in the data, in first-seen order.
    Discover,
    /// Exactly these rule ids (e.g. an existing model's); others are counted as ignored.
    Fixed(Vec<String>),
}

/// What the builder did with the records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildStats {
    /// Pairwise records turned into K = 2 comparisons.
    pub pairwise: usize,
    /// Rankings turned into K-way comparisons.
    pub rankings: usize,
    /// Rule-violation records that labelled an existing comparison.
    pub rule_labels_merged: usize,
    /// Rule-violation records that became comparisons of their own.
    pub rule_labels_alone: usize,
    /// Records not used, by kind (with the reason in the key).
    pub ignored: BTreeMap<String, usize>,
    /// Rows cut to `max_len`.
    pub truncated_rows: usize,
    /// Invalid records left out under [`Policy::Skip`].
    pub skipped_invalid: u64,
    /// The first of those errors, with file, line and field.
    pub first_skipped: Vec<String>,
}

/// The training examples and the rule heads they label.
#[derive(Debug, Clone, PartialEq)]
pub struct PreferenceData {
    /// The comparisons, in the order of the records.
    pub comparisons: Vec<Comparison>,
    /// Rule ids of the rule heads (empty: none).
    pub rules: Vec<String>,
    /// What was used and what was not.
    pub stats: BuildStats,
}

impl PreferenceData {
    /// Splits by a hash of each comparison's prompt (every judgement of one prompt falls on
    /// one side): (train, validation) with about `validation` of the prompts in validation.
    pub fn split(&self, validation: f64) -> Result<(Vec<Comparison>, Vec<Comparison>)> {
        let fractions = SplitFractions {
            validation,
            test: 0.0,
        };
        let (mut train, mut val) = (Vec::new(), Vec::new());
        for c in &self.comparisons {
            let side = split_of(&c.prompt_key, &fractions)
                .map_err(|e| RewardError::config("validation_fraction", e.to_string()))?;
            match side {
                Split::Validation => val.push(c.clone()),
                _ => train.push(c.clone()),
            }
        }
        Ok((train, val))
    }
}

/// Index of an added comparison, for matching rule labels: (source, item id, rater).
type MatchKey = (String, String, Option<String>);

/// Turns feedback records into [`Comparison`]s; see the module docs.
pub struct PreferenceBuilder<'t> {
    tokenizer: &'t dyn Tokenizer,
    sequence: SequenceConfig,
    rules: RuleColumns,
    comparisons: Vec<Comparison>,
    /// Hashes of each comparison's response texts, for matching rule labels.
    response_hashes: Vec<Vec<u64>>,
    by_key: HashMap<MatchKey, usize>,
    violations: Vec<(String, RuleViolations)>,
    stats: BuildStats,
}

impl<'t> PreferenceBuilder<'t> {
    /// A builder tokenising with `tokenizer` into rows of `sequence`'s convention.
    pub fn new(
        tokenizer: &'t dyn Tokenizer,
        sequence: SequenceConfig,
        rules: RuleColumns,
    ) -> PreferenceBuilder<'t> {
        PreferenceBuilder {
            tokenizer,
            sequence,
            rules,
            comparisons: Vec::new(),
            response_hashes: Vec::new(),
            by_key: HashMap::new(),
            violations: Vec::new(),
            stats: BuildStats::default(),
        }
    }

    /// Adds one record judged in `source`; an invalid record is an error naming its item.
    pub fn add(&mut self, record: &Feedback, source: &str) -> Result<()> {
        record.validate().map_err(|invalid| {
            RewardError::Input(format!(
                "{source}: record `{}`: {invalid}",
                record.meta().item_id
            ))
        })?;
        match record {
            Feedback::Pairwise(p) => {
                let margin = p.margin.unwrap_or(0.0) as f32;
                let pairs = vec![ComparisonPair {
                    better: 0,
                    worse: 1,
                    margin,
                }];
                let responses = [p.chosen.as_str(), p.rejected.as_str()];
                self.push(source, &p.meta, &p.prompt, &responses, vec![0, 1], pairs);
                self.stats.pairwise += 1;
            }
            Feedback::Ranking(r) => {
                let ranks: Vec<usize> = r.ranks().into_iter().map(|t| t.unwrap_or(0)).collect();
                let pairs = r
                    .pairs()
                    .into_iter()
                    .map(|p| ComparisonPair {
                        better: p.better,
                        worse: p.worse,
                        margin: 0.0,
                    })
                    .collect();
                let responses: Vec<&str> = r.responses.iter().map(String::as_str).collect();
                self.push(source, &r.meta, &r.prompt, &responses, ranks, pairs);
                self.stats.rankings += 1;
            }
            Feedback::RuleViolations(v) => {
                if self.rules == RuleColumns::Off {
                    self.ignore("rule_violations (rule heads off)");
                } else {
                    self.violations.push((source.to_string(), v.clone()));
                }
            }
            other => self.ignore(&format!("{} (no preference)", other.kind().as_str())),
        }
        Ok(())
    }

    /// Adds every record of a file (format detected unless given); the source is the file
    /// name. Returns the number of records used. Under [`Policy::FailFast`] the first bad
    /// record is an error naming the file, line and field; under [`Policy::Skip`] bad records
    /// are left out and counted in [`BuildStats::skipped_invalid`].
    pub fn add_file(
        &mut self,
        path: &Path,
        format: Option<Format>,
        policy: Policy,
    ) -> Result<usize> {
        let source = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut count = 0;
        let mut checked = Checked::new(FeedbackReader::open(path, format)?, policy);
        for located in checked.by_ref() {
            let located = located?;
            self.add(&located.record, &source).map_err(|e| {
                RewardError::Input(format!("{}:{}: {e}", path.display(), located.line))
            })?;
            count += 1;
        }
        let report = checked.into_report();
        if policy == Policy::Skip {
            self.stats.skipped_invalid += report.invalid;
            let room = 5usize.saturating_sub(self.stats.first_skipped.len());
            self.stats.first_skipped.extend(
                report
                    .first_errors
                    .iter()
                    .take(room)
                    .map(ToString::to_string),
            );
        }
        Ok(count)
    }

    fn ignore(&mut self, what: &str) {
        *self.stats.ignored.entry(what.to_string()).or_default() += 1;
    }

    /// Tokenises one comparison and records it.
    fn push(
        &mut self,
        source: &str,
        meta: &rlhf_data::records::FeedbackMeta,
        prompt: &Prompt,
        responses: &[&str],
        ranks: Vec<usize>,
        pairs: Vec<ComparisonPair>,
    ) -> usize {
        let prompt_tokens = self.tokenizer.encode(&render_prompt(prompt));
        let mut rows = Vec::with_capacity(responses.len());
        for r in responses {
            let response = self.tokenizer.encode(&response_text(r));
            let (row, cut) = build_sequence(&self.sequence, &prompt_tokens, &response);
            self.stats.truncated_rows += usize::from(cut);
            rows.push(row);
        }
        let index = self.comparisons.len();
        self.comparisons.push(Comparison {
            source: source.to_string(),
            item_id: meta.item_id.clone(),
            prompt_key: prompt_item_id(prompt),
            rows,
            response_chars: responses.iter().map(|r| r.chars().count()).collect(),
            ranks,
            pairs,
            rule_labels: Vec::new(),
            rule_mask: Vec::new(),
        });
        self.response_hashes
            .push(responses.iter().map(|r| fnv1a_64(r.as_bytes())).collect());
        let key = (
            source.to_string(),
            meta.item_id.clone(),
            meta.rater_id.clone(),
        );
        self.by_key.entry(key).or_insert(index);
        index
    }

    /// Attaches the rule labels and returns the examples.
    pub fn build(mut self) -> Result<PreferenceData> {
        let rules: Vec<String> = match &self.rules {
            RuleColumns::Off => Vec::new(),
            RuleColumns::Fixed(ids) => ids.clone(),
            RuleColumns::Discover => {
                let mut ids: Vec<String> = Vec::new();
                for (_, v) in &self.violations {
                    for rule in &v.rules.rules {
                        if !ids.contains(&rule.id) {
                            ids.push(rule.id.clone());
                        }
                    }
                }
                ids
            }
        };
        let violations = std::mem::take(&mut self.violations);
        for (source, v) in violations {
            let judged: Vec<usize> = (0..rules.len())
                .filter(|&r| v.rules.get(&rules[r]).is_some())
                .collect();
            if judged.is_empty() {
                self.ignore("rule_violations (none of the model's rules)");
                continue;
            }
            let key = (
                source.clone(),
                v.meta.item_id.clone(),
                v.meta.rater_id.clone(),
            );
            let target = self.by_key.get(&key).copied().and_then(|index| {
                let hashes = &self.response_hashes[index];
                let rows: Option<Vec<usize>> = v
                    .responses
                    .iter()
                    .map(|r| hashes.iter().position(|&h| h == fnv1a_64(r.as_bytes())))
                    .collect();
                let free = self.comparisons[index].rule_labels.is_empty();
                rows.filter(|_| free).map(|rows| (index, rows))
            });
            let (index, rows) = match target {
                Some(found) => {
                    self.stats.rule_labels_merged += 1;
                    found
                }
                None => {
                    let responses: Vec<&str> = v.responses.iter().map(String::as_str).collect();
                    let k = responses.len();
                    let index =
                        self.push(&source, &v.meta, &v.prompt, &responses, vec![0; k], vec![]);
                    self.stats.rule_labels_alone += 1;
                    (index, (0..k).collect())
                }
            };
            let c = &mut self.comparisons[index];
            let r = rules.len();
            c.rule_labels = vec![0.0; c.k() * r];
            c.rule_mask = vec![0.0; c.k() * r];
            for (i, &row) in rows.iter().enumerate() {
                for &rule in &judged {
                    c.rule_mask[row * r + rule] = 1.0;
                    c.rule_labels[row * r + rule] = f32::from(u8::from(v.breaks(i, &rules[rule])));
                }
            }
        }
        for c in &self.comparisons {
            c.validate(rules.len())?;
        }
        Ok(PreferenceData {
            comparisons: self.comparisons,
            rules,
            stats: self.stats,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlhf_data::records::{FeedbackMeta, Pairwise, Ranking, Rule, RuleSet};
    use rlhf_data::tokenizer::Gpt2Tokenizer;

    fn sequence() -> SequenceConfig {
        SequenceConfig {
            eos_token_id: 50256,
            pad_token_id: 50257,
            max_len: 64,
        }
    }

    #[test]
    fn records_become_comparisons_and_rule_labels_attach() {
        let tok = Gpt2Tokenizer::new().unwrap();
        let mut b = PreferenceBuilder::new(&tok, sequence(), RuleColumns::Discover);
        let meta = FeedbackMeta::new("q1").with_rater("r1");
        let prompt = Prompt::user("What is 2 plus 2?");
        let responses: Vec<String> = ["4.", "5.", "I do not know."].map(String::from).to_vec();
        let ranking =
            Ranking::from_ranks(meta.clone(), prompt.clone(), responses.clone(), &[0, 2, 1]);
        b.add(&ranking.into(), "world").unwrap();
        let pair =
            Pairwise::new(FeedbackMeta::new("q2"), prompt.clone(), "4", "5").with_margin(1.5);
        b.add(&pair.into(), "hh").unwrap();
        let violations = RuleViolations {
            meta: meta.clone(),
            prompt: prompt.clone(),
            rules: RuleSet::new(vec![
                Rule::new("false", "no false facts"),
                Rule::new("rude", "be polite"),
            ]),
            responses: vec![responses[1].clone(), responses[0].clone()],
            broken: vec![vec!["false".into()], vec![]],
        };
        b.add(&violations.clone().into(), "world").unwrap();
        let alone = RuleViolations {
            meta: FeedbackMeta::new("q3"),
            ..violations
        };
        b.add(&alone.into(), "world").unwrap();
        let question = rlhf_data::records::Rating {
            meta: FeedbackMeta::new("x"),
            prompt: prompt.clone(),
            response: "4".into(),
            scale: rlhf_data::records::LikertScale::new(1, 7),
            value: 5,
        };
        b.add(&question.into(), "world").unwrap();
        let data = b.build().unwrap();
        assert_eq!(data.rules, vec!["false", "rude"]);
        assert_eq!(data.comparisons.len(), 3);
        let c = &data.comparisons[0];
        assert_eq!(c.ranks, vec![0, 2, 1]);
        assert_eq!(c.pairs.len(), 3);
        // "5." (row 1) breaks "false"; "4." (row 0) breaks nothing; row 2 was not judged.
        assert_eq!(c.rule_labels, vec![0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
        assert_eq!(c.rule_mask, vec![1.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        let text = tok.decode(&c.rows[0]).unwrap();
        assert_eq!(
            text,
            "\n\nHuman: What is 2 plus 2?\n\nAssistant: 4.<|endoftext|>"
        );
        assert_eq!(data.comparisons[1].pairs[0].margin, 1.5);
        assert!(data.comparisons[2].pairs.is_empty() && data.comparisons[2].rule_mask.len() == 4);
        assert_eq!(data.stats.rule_labels_merged, 1);
        assert_eq!(data.stats.rule_labels_alone, 1);
        assert_eq!(data.stats.ignored.values().sum::<usize>(), 1);
        let bad = Pairwise::new(FeedbackMeta::new("q9"), prompt, "same", "same");
        let mut b = PreferenceBuilder::new(&tok, sequence(), RuleColumns::Off);
        let err = b.add(&bad.into(), "f.jsonl").unwrap_err().to_string();
        assert!(err.contains("q9") && err.contains("rejected"), "{err}");
    }

    #[test]
    fn files_of_every_format_are_read_and_errors_name_the_line() {
        let tok = Gpt2Tokenizer::new().unwrap();
        let dir = std::env::temp_dir().join(format!("rlhf-reward-dataset-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let hh = dir.join("hh.jsonl");
        std::fs::write(
            &hh,
            "{\"chosen\": \"\\n\\nHuman: Hi\\n\\nAssistant: Hello!\", \"rejected\": \"\\n\\nHuman: Hi\\n\\nAssistant: Go away.\"}\n\
             {\"prompt\": \"Hi\", \"chosen\": \"Hello!\"}\n",
        )
        .unwrap();
        let mut b = PreferenceBuilder::new(&tok, sequence(), RuleColumns::Off);
        let err = b
            .add_file(&hh, None, Policy::FailFast)
            .unwrap_err()
            .to_string();
        assert!(err.contains("hh.jsonl:2"), "{err}");
        let mut b = PreferenceBuilder::new(&tok, sequence(), RuleColumns::Off);
        assert_eq!(b.add_file(&hh, None, Policy::Skip).unwrap(), 1);
        let data = b.build().unwrap();
        assert_eq!(data.stats.skipped_invalid, 1);
        assert!(
            data.stats.first_skipped[0].contains("hh.jsonl:2"),
            "{:?}",
            data.stats
        );
        let trl = dir.join("trl.jsonl");
        std::fs::write(
            &trl,
            "{\"prompt\": \"Hi\", \"chosen\": \"Hello!\", \"rejected\": \"No.\", \"margin\": 2}\n",
        )
        .unwrap();
        let mut b = PreferenceBuilder::new(&tok, sequence(), RuleColumns::Off);
        assert_eq!(b.add_file(&trl, None, Policy::FailFast).unwrap(), 1);
        let data = b.build().unwrap();
        assert_eq!(data.comparisons[0].source, "trl.jsonl");
        assert_eq!(data.comparisons[0].pairs[0].margin, 2.0);
    }
}
