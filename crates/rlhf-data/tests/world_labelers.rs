//! Simulated labelers: skills show in their agreement with the truth, all seeded; gold labels
//! are the truth.

use rlhf_data::world::{LabelTask, LabelerKind, LabelerOutput, World, WorldConfig};
use std::collections::HashMap;
use std::sync::OnceLock;

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        World::new(WorldConfig {
            seed: 5,
            ..WorldConfig::default()
        })
        .unwrap()
    })
}

/// 150 tasks of 4 candidate responses over the RL prompts.
fn tasks() -> &'static Vec<LabelTask> {
    static TASKS: OnceLock<Vec<LabelTask>> = OnceLock::new();
    TASKS.get_or_init(|| {
        world()
            .rl_prompts
            .iter()
            .take(150)
            .enumerate()
            .map(|(i, p)| LabelTask {
                item_id: format!("t{i}"),
                prompt: p.render(),
                responses: world().candidate_responses(p, 4, "test"),
            })
            .collect()
    })
}

/// Each labeler kind's outputs on all tasks.
fn outputs(kind: LabelerKind) -> Vec<(LabelTask, LabelerOutput)> {
    let labeler = kind.profile(format!("{kind:?}"));
    tasks()
        .iter()
        .map(|t| (t.clone(), world().label(&labeler, t).unwrap()))
        .collect()
}

fn truth(prompt: &str, response: &str) -> f64 {
    world().score(prompt, response).unwrap().total
}

/// Fraction of pairwise choices (with a true preference) that agree with the truth.
fn pairwise_accuracy(kind: LabelerKind) -> f64 {
    let (mut agree, mut total) = (0usize, 0usize);
    for (task, out) in outputs(kind) {
        for pair in &out.pairwise {
            let (c, r) = (
                truth(&task.prompt, &pair.chosen),
                truth(&task.prompt, &pair.rejected),
            );
            if c != r {
                total += 1;
                agree += usize::from(c > r);
            }
        }
    }
    agree as f64 / total as f64
}

/// Fraction of question answers equal to the true answers.
fn answer_accuracy(kind: LabelerKind) -> f64 {
    let (mut agree, mut total) = (0usize, 0usize);
    for (task, out) in outputs(kind) {
        for qf in &out.questions {
            let j = world().judge(&task.prompt, &qf.response).unwrap();
            for (a, &t) in qf.answers.iter().zip(&j.answers) {
                total += 1;
                agree += usize::from(a.choice == t);
            }
        }
    }
    agree as f64 / total as f64
}

#[test]
fn skills_order_pairwise_accuracy() {
    let acc: HashMap<&str, f64> = [
        ("expert", pairwise_accuracy(LabelerKind::Expert)),
        ("average", pairwise_accuracy(LabelerKind::Average)),
        ("careless", pairwise_accuracy(LabelerKind::Careless)),
        ("random", pairwise_accuracy(LabelerKind::Random)),
        ("adversarial", pairwise_accuracy(LabelerKind::Adversarial)),
        ("researcher", pairwise_accuracy(LabelerKind::Researcher)),
    ]
    .into_iter()
    .collect();
    eprintln!("pairwise accuracy vs truth: {acc:?}");
    assert_eq!(acc["researcher"], 1.0);
    assert!(acc["expert"] > 0.95, "{acc:?}");
    assert!(
        acc["expert"] > acc["average"] && acc["average"] > acc["careless"],
        "{acc:?}"
    );
    assert!(acc["careless"] > acc["random"] + 0.05, "{acc:?}");
    assert!((acc["random"] - 0.5).abs() < 0.07, "{acc:?}");
    assert!(acc["adversarial"] < 0.1, "{acc:?}");
}

#[test]
fn expert_answers_and_flags_beat_random_ones() {
    let expert = answer_accuracy(LabelerKind::Expert);
    let random = answer_accuracy(LabelerKind::Random);
    let adversarial = answer_accuracy(LabelerKind::Adversarial);
    eprintln!(
        "question accuracy: expert {expert:.3} random {random:.3} adversarial {adversarial:.3}"
    );
    assert!(expert > 0.95 && random < 0.7 && adversarial == 0.0);

    let flag_accuracy = |kind| {
        let (mut agree, mut total) = (0usize, 0usize);
        for (task, out) in outputs(kind) {
            for (i, response) in task.responses.iter().enumerate() {
                let j = world().judge(&task.prompt, response).unwrap();
                for rule in &world().rules.rules {
                    total += 1;
                    agree += usize::from(
                        j.broken_rules.contains(&rule.id) == out.violations.breaks(i, &rule.id),
                    );
                }
            }
        }
        agree as f64 / total as f64
    };
    let (e, r) = (
        flag_accuracy(LabelerKind::Expert),
        flag_accuracy(LabelerKind::Random),
    );
    eprintln!("rule-flag accuracy: expert {e:.3} random {r:.3}");
    assert!(e > 0.95 && (r - 0.5).abs() < 0.05);
}

#[test]
fn length_biased_labeler_prefers_longer_answers() {
    let longer_rate = |kind| {
        let (mut longer, mut total) = (0usize, 0usize);
        for (_, out) in outputs(kind) {
            for pair in &out.pairwise {
                if pair.chosen.len() != pair.rejected.len() {
                    total += 1;
                    longer += usize::from(pair.chosen.len() > pair.rejected.len());
                }
            }
        }
        longer as f64 / total as f64
    };
    let biased = longer_rate(LabelerKind::LengthBiased);
    let expert = longer_rate(LabelerKind::Expert);
    eprintln!("chose the longer answer: biased {biased:.3} expert {expert:.3}");
    assert!(
        biased > 0.75 && biased > expert + 0.2,
        "biased {biased} expert {expert}"
    );
}

#[test]
fn rankings_are_valid_records_with_one_entry_per_response() {
    for (task, out) in outputs(LabelerKind::Average).iter().take(30) {
        out.ranking.validate().unwrap();
        out.violations.validate().unwrap();
        assert_eq!(out.ranking.k(), task.responses.len());
        for p in &out.pairwise {
            p.validate().unwrap();
            assert_eq!(p.meta.rater_id.as_deref(), Some("Average"));
        }
        for q in &out.questions {
            q.validate().unwrap();
        }
    }
}

#[test]
fn labels_are_seeded_and_independent_of_order() {
    let labeler = LabelerKind::Careless.profile("c");
    let t = &tasks()[3];
    let first = world().label(&labeler, t).unwrap();
    let _ = world().label(&labeler, &tasks()[4]).unwrap();
    assert_eq!(world().label(&labeler, t).unwrap(), first);
}

#[test]
fn gold_prompts_are_distinct_when_rl_prompts_repeat() {
    // 4 held-out entities x 3 attributes: the RL draw repeats unanswerable prompts.
    let w = World::new(WorldConfig {
        held_out_entities: 4,
        rl_prompts: 400,
        gold_prompts: 200,
        ..WorldConfig::small()
    })
    .unwrap();
    let mut distinct: Vec<&str> = w.rl_prompts.iter().map(|p| p.id.as_str()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(
        distinct.len() < w.rl_prompts.len(),
        "the RL prompts should repeat"
    );
    let gold = w.gold_set().unwrap();
    let mut ids: Vec<&str> = gold.tasks.iter().map(|t| t.item_id.as_str()).collect();
    assert_eq!(ids.len(), distinct.len().min(200));
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), gold.tasks.len(), "a gold prompt repeats");
}

#[test]
fn gold_labels_are_the_truth() {
    let gold = world().gold_set().unwrap();
    assert_eq!(gold.tasks.len(), world().config.gold_prompts);
    for (task, labels) in gold.tasks.iter().zip(&gold.labels) {
        assert_eq!(labels.ranking.meta.rater_id.as_deref(), Some("researchers"));
        let totals: Vec<f64> = task
            .responses
            .iter()
            .map(|r| truth(&task.prompt, r))
            .collect();
        // Tiers are in decreasing true score, ties exactly where the truth ties.
        let ranks = labels.ranking.ranks();
        for i in 0..totals.len() {
            for j in 0..totals.len() {
                let (ri, rj) = (ranks[i].unwrap(), ranks[j].unwrap());
                assert_eq!(totals[i] > totals[j], ri < rj, "{totals:?} {ranks:?}");
            }
        }
        for pair in &labels.pairwise {
            assert!(truth(&task.prompt, &pair.chosen) > truth(&task.prompt, &pair.rejected));
        }
    }
}

#[test]
fn sparse_assignment_gives_each_task_distinct_labelers_and_feedback_records() {
    let w = world();
    let labeled = w.label_tasks(&tasks()[..20], 3).unwrap();
    assert_eq!(labeled.len(), 60);
    for index in 0..20 {
        let ids: std::collections::HashSet<&str> = labeled
            .iter()
            .filter(|(i, _, _)| *i == index)
            .map(|(_, id, _)| id.as_str())
            .collect();
        assert_eq!(ids.len(), 3);
    }
    assert_eq!(labeled, w.label_tasks(&tasks()[..20], 3).unwrap());
    let (_, rater, output) = labeled[0].clone();
    let pairs = output.pairwise.len();
    let records = output.into_feedback();
    // A ranking, the pairs, the rule flags and one question record per response.
    assert_eq!(records.len(), 2 + pairs + tasks()[0].responses.len());
    for record in &records {
        record.validate().unwrap();
        assert_eq!(record.meta().rater_id.as_deref(), Some(rater.as_str()));
    }
}
