//! Turning labelers' records into long-format `(item, rater, label)` triples, one family per kind
//! of judgement, and the world's true label of every item:
//! - preferences: item `TASK#i-j`, label `first` (response i chosen) or `second`;
//! - rule flags: item `TASK#r{i}/RULE`, label `yes` (broken) or `no`;
//! - question answers: item `TASK#r{i}/QUESTION`, label the chosen option's index.

use std::collections::{BTreeMap, HashMap};

use rlhf_data::records::Feedback;
use rlhf_data::world::{LabelTask, World};

use super::error::{PipelineError, Result};

/// One `(item, rater, label)` row.
pub type Triple = (String, String, String);

/// Triples by kind of judgement.
#[derive(Debug, Clone, Default)]
pub struct Triples {
    /// Pairwise preferences.
    pub preferences: Vec<Triple>,
    /// Rule-violation flags.
    pub flags: Vec<Triple>,
    /// Question answers, by question id.
    pub answers: BTreeMap<String, Vec<Triple>>,
}

impl Triples {
    /// Only the rows of raters for which `keep` holds.
    pub fn filter(&self, keep: impl Fn(&str) -> bool) -> Triples {
        let f = |rows: &[Triple]| rows.iter().filter(|t| keep(&t.1)).cloned().collect();
        Triples {
            preferences: f(&self.preferences),
            flags: f(&self.flags),
            answers: self
                .answers
                .iter()
                .map(|(q, rows)| (q.clone(), f(rows)))
                .collect(),
        }
    }
}

/// The preference item of responses `i < j` of `task`.
pub fn pair_item(task: &str, i: usize, j: usize) -> String {
    format!("{task}#{i}-{j}")
}

/// The flag item of response `i` of `task` and `rule`.
pub fn flag_item(task: &str, i: usize, rule: &str) -> String {
    format!("{task}#r{i}/{rule}")
}

/// Splits a pairwise record's item id `TASK#i-j`.
fn parse_pair_item(item: &str) -> Option<(&str, usize, usize)> {
    let (task, pair) = item.rsplit_once('#')?;
    let (i, j) = pair.split_once('-')?;
    Some((task, i.parse().ok()?, j.parse().ok()?))
}

/// The triples of `records`; `tasks` gives each task's responses. `default_rater` names the rater
/// of records without one (the researchers' gold).
pub fn triples(
    records: &[Feedback],
    tasks: &HashMap<&str, &LabelTask>,
    default_rater: &str,
) -> Result<Triples> {
    let mut out = Triples::default();
    let bad = |item: &str, what: &str| PipelineError::BadFile {
        path: "labels/feedback.jsonl".into(),
        message: format!("record of item `{item}`: {what}"),
    };
    for record in records {
        match record {
            Feedback::Pairwise(p) => {
                let item = &p.meta.item_id;
                let (task, i, j) = parse_pair_item(item)
                    .ok_or_else(|| bad(item, "expected an item id TASK#i-j"))?;
                let responses = &tasks
                    .get(task)
                    .ok_or_else(|| bad(item, "unknown task"))?
                    .responses;
                let label = if responses.get(i) == Some(&p.chosen) {
                    "first"
                } else if responses.get(j) == Some(&p.chosen) {
                    "second"
                } else {
                    return Err(bad(item, "the chosen response is neither of the pair"));
                };
                let rater = p.meta.rater_id.as_deref().unwrap_or(default_rater);
                out.preferences
                    .push((item.clone(), rater.to_string(), label.to_string()));
            }
            Feedback::RuleViolations(v) => {
                let rater = v.meta.rater_id.as_deref().unwrap_or(default_rater);
                for i in 0..v.responses.len() {
                    for rule in &v.rules.rules {
                        let label = if v.breaks(i, &rule.id) { "yes" } else { "no" };
                        out.flags.push((
                            flag_item(&v.meta.item_id, i, &rule.id),
                            rater.to_string(),
                            label.to_string(),
                        ));
                    }
                }
            }
            Feedback::Questions(q) => {
                let rater = q.meta.rater_id.as_deref().unwrap_or(default_rater);
                for answer in &q.answers {
                    out.answers
                        .entry(answer.question_id.clone())
                        .or_default()
                        .push((
                            format!("{}/{}", q.meta.item_id, answer.question_id),
                            rater.to_string(),
                            answer.choice.to_string(),
                        ));
                }
            }
            // Rankings feed the per-prompt Bradley–Terry and Elo fits, not the triples.
            Feedback::Ranking(_) | Feedback::Rating(_) | Feedback::Label(_) => {}
        }
    }
    Ok(out)
}

/// The world's true label of every item of `tasks` (preferences only where the true totals
/// differ): item -> label.
pub fn truth(world: &World, tasks: &[LabelTask]) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for task in tasks {
        let judged = task
            .responses
            .iter()
            .map(|r| world.judge(&task.prompt, r))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for (i, a) in judged.iter().enumerate() {
            for (j, b) in judged.iter().enumerate().skip(i + 1) {
                let (ta, tb) = (a.scores.total, b.scores.total);
                if ta != tb {
                    let label = if ta > tb { "first" } else { "second" };
                    out.insert(pair_item(&task.item_id, i, j), label.to_string());
                }
            }
            for rule in &world.rules.rules {
                let broken = a.broken_rules.contains(&rule.id);
                out.insert(
                    flag_item(&task.item_id, i, &rule.id),
                    (if broken { "yes" } else { "no" }).to_string(),
                );
            }
            for (question, answer) in world.questions.iter().zip(&a.answers) {
                out.insert(
                    format!("{}#r{i}/{}", task.item_id, question.id),
                    answer.to_string(),
                );
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlhf_data::world::WorldConfig;

    #[test]
    fn researchers_labels_equal_the_truth() {
        let world = World::new(WorldConfig::small()).unwrap();
        let gold = world.gold_set().unwrap();
        let tasks: HashMap<&str, &LabelTask> =
            gold.tasks.iter().map(|t| (t.item_id.as_str(), t)).collect();
        let records: Vec<Feedback> = gold
            .labels
            .iter()
            .cloned()
            .flat_map(|o| o.into_feedback())
            .collect();
        let t = triples(&records, &tasks, "researchers").unwrap();
        let truth = truth(&world, &gold.tasks).unwrap();
        assert!(!t.preferences.is_empty() && !t.flags.is_empty() && t.answers.len() == 4);
        let all = t
            .preferences
            .iter()
            .chain(&t.flags)
            .chain(t.answers.values().flatten());
        for (item, rater, label) in all {
            assert_eq!(rater, "researchers");
            assert_eq!(truth.get(item), Some(label), "{item}");
        }
    }
}
