//! What the researcher's page shows, computed from a [`Snapshot`] with rlhf-raters:
//! progress; per-rater gold accuracy with Wilson 95% intervals and mean pairwise agreement;
//! agreement coefficients (Krippendorff's alpha, ordinal, on the rank each rater gave each
//! response; Fleiss' kappa and percent agreement on the top-1 choice); Elo and Bradley–Terry
//! standings of each task's candidates from the pairs implied by the rankings.

use std::collections::BTreeMap;

use rlhf_raters::agreement::pairwise::pairwise_agreement;
use rlhf_raters::ranking::bradley_terry::BtConfig;
use rlhf_raters::ranking::elo::EloConfig;
use rlhf_raters::ranking::{Anchor, rank_bradley_terry, rank_elo};
use rlhf_raters::screening::wilson_interval;
use rlhf_raters::{AgreementOptions, Comparisons, LabelSet, Level, Outcome, agreement};
use serde::Serialize;

use crate::store::raters::{RaterStatus, rater_key};
use crate::store::snapshot::Snapshot;

/// `GET /api/admin/progress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProgressReport {
    /// Tasks, gold included.
    pub tasks: u64,
    /// Gold items.
    pub gold_tasks: u64,
    /// Labels, gold included.
    pub labels: u64,
    /// Labels wanted per plain task.
    pub target_per_task: u32,
    /// Plain tasks with at least `target_per_task` labels.
    pub complete_tasks: u64,
    /// Raters.
    pub raters: u64,
    /// Raters not screened out.
    pub active_raters: u64,
}

/// Progress of the session.
pub fn progress(snapshot: &Snapshot, target_per_task: u32) -> ProgressReport {
    let mut per_task: BTreeMap<i64, u64> = BTreeMap::new();
    for l in &snapshot.labels {
        *per_task.entry(l.task).or_default() += 1;
    }
    let complete = snapshot
        .tasks
        .iter()
        .filter(|t| !t.spec.is_gold())
        .filter(|t| per_task.get(&t.id).copied().unwrap_or(0) >= u64::from(target_per_task))
        .count();
    ProgressReport {
        tasks: snapshot.tasks.len() as u64,
        gold_tasks: snapshot.tasks.iter().filter(|t| t.spec.is_gold()).count() as u64,
        labels: snapshot.labels.len() as u64,
        target_per_task,
        complete_tasks: complete as u64,
        raters: snapshot.raters.len() as u64,
        active_raters: snapshot
            .raters
            .iter()
            .filter(|r| r.status != RaterStatus::ScreenedOut)
            .count() as u64,
    }
}

/// One row of `GET /api/admin/raters`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RaterReport {
    /// API id.
    pub rater_id: String,
    /// Name.
    pub name: String,
    /// Standing.
    pub status: RaterStatus,
    /// Labels given.
    pub labels: u64,
    /// Gold items answered.
    pub gold_n: u64,
    /// Of those, top-1 equal to the gold top-1.
    pub gold_correct: u64,
    /// `gold_correct / gold_n`.
    pub gold_accuracy: Option<f64>,
    /// Wilson 95% interval, lower end.
    pub gold_ci_low: Option<f64>,
    /// Wilson 95% interval, upper end.
    pub gold_ci_high: Option<f64>,
    /// Mean top-1 agreement with the other raters over shared tasks (weighted by shared tasks).
    pub agreement: Option<f64>,
}

/// The top-1 choice of every label as `(task, rater, choice)` triples.
fn top1_triples(snapshot: &Snapshot) -> Vec<(String, String, String)> {
    snapshot
        .labels
        .iter()
        .filter_map(|l| {
            let top = l.ranking.first()?;
            Some((format!("t-{}", l.task), rater_key(l.rater), top.to_string()))
        })
        .collect()
}

fn label_set(triples: Vec<(String, String, String)>) -> Option<LabelSet> {
    if triples.is_empty() {
        return None;
    }
    LabelSet::from_triples(triples).ok()
}

/// Per-rater quality.
pub fn rater_reports(snapshot: &Snapshot) -> Vec<RaterReport> {
    let mut agree: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    if let Some(set) = label_set(top1_triples(snapshot)) {
        for pair in pairwise_agreement(&set) {
            let n = pair.shared_items as f64;
            for rater in [&pair.rater_a, &pair.rater_b] {
                let e = agree.entry(rater.clone()).or_default();
                e.0 += pair.agreement * n;
                e.1 += n;
            }
        }
    }
    snapshot
        .raters
        .iter()
        .map(|r| {
            let mine = snapshot.labels.iter().filter(|l| l.rater == r.id);
            let (mut labels, mut gold_n, mut gold_correct) = (0u64, 0u64, 0u64);
            for l in mine {
                labels += 1;
                if let Some(c) = l.gold_correct {
                    gold_n += 1;
                    gold_correct += u64::from(c);
                }
            }
            let ci = wilson_interval(gold_correct, gold_n, 0.95);
            let key = rater_key(r.id);
            RaterReport {
                agreement: agree
                    .get(&key)
                    .filter(|(_, n)| *n > 0.0)
                    .map(|(s, n)| s / n),
                rater_id: key,
                name: r.name.clone(),
                status: r.status,
                labels,
                gold_n,
                gold_correct,
                gold_accuracy: (gold_n > 0).then(|| gold_correct as f64 / gold_n as f64),
                gold_ci_low: ci.map(|c| c[0]),
                gold_ci_high: ci.map(|c| c[1]),
            }
        })
        .collect()
}

/// `GET /api/admin/agreement`; `None` where too few labels make a coefficient undefined.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgreementSummary {
    /// Tasks with two or more labels.
    pub items: u64,
    /// Krippendorff's alpha, ordinal, units = (task, response), values = the rank given.
    pub krippendorff_alpha_ordinal: Option<f64>,
    /// Fleiss' kappa on the top-1 choice.
    pub fleiss_kappa_top1: Option<f64>,
    /// Share of agreeing rater pairs on the top-1 choice, averaged over tasks.
    pub percent_agreement_top1: Option<f64>,
}

/// Agreement so far.
pub fn agreement_summary(snapshot: &Snapshot) -> AgreementSummary {
    let mut per_task: BTreeMap<i64, u64> = BTreeMap::new();
    for l in &snapshot.labels {
        *per_task.entry(l.task).or_default() += 1;
    }
    let items = per_task.values().filter(|&&n| n >= 2).count() as u64;
    let ranks: Vec<(String, String, String)> = snapshot
        .labels
        .iter()
        .flat_map(|l| {
            l.ranking
                .iter()
                .enumerate()
                .map(move |(position, response)| {
                    (
                        format!("t-{}/{response}", l.task),
                        rater_key(l.rater),
                        position.to_string(),
                    )
                })
        })
        .collect();
    let alpha = label_set(ranks).and_then(|set| {
        rlhf_raters::krippendorff_alpha(&set, &[Level::Ordinal])
            .first()
            .and_then(|a| a.alpha.value())
    });
    let (kappa, percent) = match label_set(top1_triples(snapshot)) {
        Some(set) => {
            let report = agreement(
                &set,
                &AgreementOptions {
                    levels: Vec::new(),
                    bootstrap: None,
                },
            );
            (
                report.fleiss.kappa.value(),
                report.percent_agreement.value(),
            )
        }
        None => (None, None),
    };
    AgreementSummary {
        items,
        krippendorff_alpha_ordinal: alpha,
        fleiss_kappa_top1: kappa,
        percent_agreement_top1: percent,
    }
}

/// One candidate response of a task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// Response index.
    pub index: usize,
    /// Online Elo rating (K = 4, base 10, scale 400, start 1000), labels in submission order.
    pub elo: Option<f64>,
    /// Bradley–Terry natural-log strength (centred); `None` when the MLE does not exist (e.g.
    /// one response won every comparison).
    pub bt_score: Option<f64>,
    /// Pairwise wins.
    pub wins: u64,
    /// Pairwise losses.
    pub losses: u64,
}

/// Standings of one task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskStanding {
    /// API id.
    pub task_id: String,
    /// The prompt as shown.
    pub prompt: String,
    /// The candidates in index order.
    pub candidates: Vec<Candidate>,
}

/// `GET /api/admin/standings`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Standings {
    /// Tasks with at least one label, in id order.
    pub tasks: Vec<TaskStanding>,
}

/// Elo and Bradley–Terry standings of every labelled task's candidates.
pub fn standings(snapshot: &Snapshot) -> Standings {
    let mut by_task: BTreeMap<i64, Comparisons> = BTreeMap::new();
    for l in &snapshot.labels {
        let c = by_task.entry(l.task).or_default();
        let rater = rater_key(l.rater);
        for (i, better) in l.ranking.iter().enumerate() {
            for worse in &l.ranking[i + 1..] {
                // Indices of a checked ranking are distinct, so this cannot fail.
                let _ = c.push(
                    &better.to_string(),
                    &worse.to_string(),
                    Outcome::Left,
                    Some(&rater),
                );
            }
        }
    }
    let tasks = by_task
        .into_iter()
        .filter_map(|(task_id, comparisons)| {
            let task = snapshot.task(task_id)?;
            let elo = rank_elo(&comparisons, &EloConfig::default(), None);
            let bt =
                rank_bradley_terry(&comparisons, &BtConfig::default(), &Anchor::default(), None)
                    .ok();
            let candidates = (0..task.spec.responses.len())
                .map(|index| {
                    let name = index.to_string();
                    let e = elo.items.iter().find(|i| i.item == name);
                    let b = bt
                        .as_ref()
                        .and_then(|r| r.items.iter().find(|i| i.item == name));
                    Candidate {
                        index,
                        elo: e.map(|e| e.rating),
                        bt_score: b.and_then(|b| b.log_strength),
                        wins: e.map_or(0, |e| e.wins),
                        losses: e.map_or(0, |e| e.games - e.wins - e.ties),
                    }
                })
                .collect();
            Some(TaskStanding {
                task_id: format!("t-{task_id}"),
                prompt: task.spec.prompt_text(),
                candidates,
            })
        })
        .collect();
    Standings { tasks }
}
