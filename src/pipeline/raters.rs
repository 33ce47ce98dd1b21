//! Stage 5: the raters measured and their labels aggregated (rlhf-raters).
//!
//! 1. Agreement coefficients (percent agreement, Fleiss' kappa, Krippendorff's alpha) of the
//!    pairwise preferences, for all raters and for the super raters.
//! 2. Screening on the researchers' gold preferences: accuracy with a Wilson interval, random /
//!    adversarial flags, super raters = accuracy >= `raters.min_gold_accuracy` and not flagged.
//! 3. Aggregation, all raters against super raters, each measured against the world's truth on
//!    the ordinary (non-gold) tasks: Dawid–Skene for rule flags and question answers (and
//!    preferences, per pair), majority vote, and per prompt a Bradley–Terry fit and online Elo
//!    over every comparison of its K candidates (pairwise choices and the pairs of rankings).
//! 4. The preference dataset: per prompt the super raters' Bradley–Terry order as a K-way ranking
//!    (ties where strengths are equal) and their Dawid–Skene rule flags, written to
//!    `preferences.jsonl` (rlhf-data native JSONL: `ranking` and `rule_violations` records); the
//!    same from every rater, unscreened, in `preferences_all.jsonl`.

use std::collections::{HashMap, HashSet};

use rlhf_data::formats::{OutputFormat, write_file};
use rlhf_data::records::{Feedback, FeedbackMeta, Prompt, Ranking, RuleViolations};
use rlhf_data::world::{LabelTask, World, prompts::question_of};
use rlhf_raters::Level;
use rlhf_raters::aggregate::{EmConfig, Method, aggregate};
use rlhf_raters::ranking::bradley_terry::BtConfig;
use rlhf_raters::ranking::elo::EloConfig;
use rlhf_raters::ranking::{Anchor, rank_bradley_terry, rank_elo};
use rlhf_raters::screening::{Flag, ScreenRules, screen};
use rlhf_raters::{AgreementOptions, Comparisons, LabelSetBuilder, Outcome, agreement};
use serde::{Deserialize, Serialize};

use super::context::RunContext;
use super::error::{PipelineError, Result};
use super::label::Labels;
use super::raters_labels::{Triple, Triples, flag_item, pair_item, triples, truth};
use super::rundir::Metrics;

/// Stage name.
pub const STAGE: &str = "raters";
/// Rater id of the super raters' aggregated preference records.
pub const AGGREGATE_RATER: &str = "super-raters";
/// Rater id of every rater's aggregated preference records.
pub const ALL_RATERS: &str = "all-raters";

/// One rater's screening row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RaterRow {
    /// Rater id.
    pub rater: String,
    /// Its kind in the simulated population (`expert`, `careless`, ...), if known.
    pub kind: Option<String>,
    /// Gold preferences it labeled.
    pub gold_items: u64,
    /// Accuracy on gold preferences.
    pub gold_accuracy: Option<f64>,
    /// Wilson interval of that accuracy.
    pub wilson: Option<[f64; 2]>,
    /// Accuracy on gold rule flags.
    pub gold_flag_accuracy: Option<f64>,
    /// Accuracy on gold question answers.
    pub gold_answer_accuracy: Option<f64>,
    /// `random` or `adversarial`, when flagged.
    pub flag: Option<String>,
    /// Selected as a super rater.
    pub kept: bool,
}

/// Agreement coefficients of one set of preference labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementFigures {
    /// Raters in the set.
    pub raters: usize,
    /// Share of agreeing rater pairs per item.
    pub percent_agreement: Option<f64>,
    /// Fleiss' kappa.
    pub fleiss_kappa: Option<f64>,
    /// Krippendorff's alpha (nominal).
    pub krippendorff_alpha: Option<f64>,
}

/// Accuracy against the world's truth of labels aggregated from one set of raters (ordinary
/// tasks only: gold items are clamped to the truth).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregateAccuracy {
    /// Raters whose labels were aggregated.
    pub raters: usize,
    /// Per-prompt Bradley–Terry order: share of response pairs (with different true totals)
    /// ordered as the truth orders them (equal strengths count a half).
    pub preferences_bradley_terry: Option<f64>,
    /// The same for per-prompt online Elo.
    pub preferences_elo: Option<f64>,
    /// Dawid–Skene on each pair's choices.
    pub preferences_dawid_skene: Option<f64>,
    /// Majority vote on each pair's choices.
    pub preferences_majority: Option<f64>,
    /// Dawid–Skene on rule flags.
    pub flags_dawid_skene: Option<f64>,
    /// Dawid–Skene on question answers (per question, pooled).
    pub answers_dawid_skene: Option<f64>,
}

/// Everything the stage measured (`raters/report.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatersReport {
    /// Every rater, in population order.
    pub raters: Vec<RaterRow>,
    /// The super raters.
    pub kept: Vec<String>,
    /// The accuracy cut used.
    pub min_gold_accuracy: f64,
    /// Chance accuracy of a preference.
    pub chance: f64,
    /// Agreement of all raters.
    pub agreement_all: AgreementFigures,
    /// Agreement of the super raters.
    pub agreement_screened: AgreementFigures,
    /// Aggregated accuracy from all raters.
    pub accuracy_all: AggregateAccuracy,
    /// Aggregated accuracy from the super raters.
    pub accuracy_screened: AggregateAccuracy,
    /// Share of response pairs that Elo and Bradley–Terry (super raters) order alike.
    pub elo_bradley_terry_concordance: Option<f64>,
    /// Prompts whose Bradley–Terry fit failed and fell back to Elo.
    pub bradley_terry_fallbacks: usize,
    /// Rankings in the preference dataset.
    pub preference_rankings: usize,
    /// Tasks left out of the dataset because no super rater labeled them.
    pub tasks_without_super_raters: usize,
    /// Tasks left out because the super raters tied every candidate.
    pub tasks_all_tied: usize,
}

/// The stage's output.
#[derive(Debug, Clone)]
pub struct RatersOutput {
    /// The statistics.
    pub report: RatersReport,
    /// The preference dataset: a `Ranking` and a `RuleViolations` record per prompt, in task
    /// order, from the super raters (`preferences.jsonl`).
    pub preferences: Vec<Feedback>,
    /// The same aggregated from every rater, unscreened (`preferences_all.jsonl`): what a
    /// reward model trained without screening sees.
    pub preferences_all: Vec<Feedback>,
}

/// Share of `(item, label)` predictions equal to `truth` (items without a truth, and gold items,
/// are left out).
fn accuracy<'a>(
    predictions: impl Iterator<Item = (&'a str, &'a str)>,
    truth: &HashMap<String, String>,
) -> Option<f64> {
    let (mut right, mut n) = (0usize, 0usize);
    for (item, label) in predictions {
        if let Some(t) = truth.get(item) {
            right += usize::from(t == label);
            n += 1;
        }
    }
    (n > 0).then(|| right as f64 / n as f64)
}

/// Aggregates `rows` with `method` (gold clamped) and returns `(item, label)` pairs.
fn aggregate_rows(
    rows: &[Triple],
    gold: &HashMap<String, String>,
    method: Method,
    iterations: usize,
) -> Result<Vec<(String, String)>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut b = LabelSetBuilder::new("<labels>");
    for (line, (item, rater, label)) in rows.iter().enumerate() {
        b.push(item, rater, label, line as u64 + 1);
    }
    for (line, (item, label)) in gold.iter().enumerate() {
        b.push_gold(item, label, line as u64 + 1);
    }
    let (set, gold_set) = b.build()?;
    if set.n_categories() < 2 {
        // Everyone gave the same label: that label is the aggregate.
        let only = set.categories().first().cloned().unwrap_or_default();
        return Ok((0..set.n_items())
            .map(|i| (set.items().name(i as u32).to_string(), only.clone()))
            .collect());
    }
    let config = EmConfig {
        max_iterations: iterations,
        ..EmConfig::default()
    };
    let agg = aggregate(&set, Some(&gold_set), method, &config)?;
    Ok(agg
        .labels
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            (
                set.items().name(i as u32).to_string(),
                set.categories()[l as usize].clone(),
            )
        })
        .collect())
}

/// Gold labels of one family, restricted to ordinary-task-free items (all gold items).
fn gold_map(rows: &[Triple]) -> HashMap<String, String> {
    rows.iter()
        .map(|(item, _, label)| (item.clone(), label.clone()))
        .collect()
}

fn figures(rows: &[Triple]) -> Result<AgreementFigures> {
    let mut b = LabelSetBuilder::new("<preferences>");
    for (line, (item, rater, label)) in rows.iter().enumerate() {
        b.push(item, rater, label, line as u64 + 1);
    }
    let (set, _) = b.build()?;
    let report = agreement(
        &set,
        &AgreementOptions {
            levels: vec![Level::Nominal],
            bootstrap: None,
        },
    );
    Ok(AgreementFigures {
        raters: set.n_raters(),
        percent_agreement: report.percent_agreement.value(),
        fleiss_kappa: report.fleiss.kappa.value(),
        krippendorff_alpha: report
            .krippendorff_alpha
            .first()
            .and_then(|a| a.alpha.value()),
    })
}

/// Per-prompt comparisons `(task index, i, j, outcome)` from pairwise choices and rankings of the
/// raters for which `keep` holds.
fn games(
    labels: &Labels,
    keep: &dyn Fn(&str) -> bool,
) -> HashMap<String, Vec<(usize, usize, Outcome)>> {
    let mut out: HashMap<String, Vec<(usize, usize, Outcome)>> = HashMap::new();
    let tasks: HashMap<&str, &LabelTask> = labels
        .tasks
        .iter()
        .map(|t| (t.item_id.as_str(), t))
        .collect();
    for record in &labels.feedback {
        match record {
            Feedback::Pairwise(p) if p.meta.rater_id.as_deref().is_some_and(keep) => {
                let Some((task, pair)) = p.meta.item_id.rsplit_once('#') else {
                    continue;
                };
                let Some(t) = tasks.get(task) else { continue };
                let Some((i, j)) = pair
                    .split_once('-')
                    .and_then(|(i, j)| Some((i.parse().ok()?, j.parse().ok()?)))
                else {
                    continue;
                };
                let outcome = if t.responses.get(i) == Some(&p.chosen) {
                    Outcome::Left
                } else {
                    Outcome::Right
                };
                out.entry(task.to_string())
                    .or_default()
                    .push((i, j, outcome));
            }
            Feedback::Ranking(r)
                if r.meta.rater_id.as_deref().is_some_and(keep)
                    && tasks.contains_key(r.meta.item_id.as_str()) =>
            {
                let entry = out.entry(r.meta.item_id.clone()).or_default();
                for pair in r.pairs() {
                    entry.push((pair.better, pair.worse, Outcome::Left));
                }
            }
            _ => {}
        }
    }
    out
}

/// Per-prompt strengths (Elo scale) of the K candidates from Bradley–Terry (with `prior_ties`
/// virtual ties per pair) and from online Elo; `None` where the raters gave no comparison.
struct PromptFit {
    bradley_terry: Vec<f64>,
    elo: Vec<f64>,
    fell_back: bool,
}

fn fit_prompt(
    k: usize,
    games: &[(usize, usize, Outcome)],
    prior_ties: usize,
    elo_k: f64,
) -> Result<PromptFit> {
    let mut c = Comparisons::new();
    let name = |i: usize| format!("r{i}");
    for i in 0..k {
        for j in i + 1..k {
            for _ in 0..prior_ties {
                c.push(&name(i), &name(j), Outcome::Tie, None)?;
            }
        }
    }
    for &(i, j, outcome) in games {
        if i != j {
            c.push(&name(i), &name(j), outcome, None)?;
        }
    }
    let by_item = |items: &[rlhf_raters::ranking::RatedItem]| -> Vec<f64> {
        (0..k)
            .map(|i| {
                items
                    .iter()
                    .find(|it| it.item == name(i))
                    .map_or(f64::NAN, |it| it.rating)
            })
            .collect()
    };
    let elo = rank_elo(
        &c,
        &EloConfig {
            k: elo_k,
            ..EloConfig::default()
        },
        None,
    );
    let elo = by_item(&elo.items);
    let (bradley_terry, fell_back) =
        match rank_bradley_terry(&c, &BtConfig::default(), &Anchor::default(), None) {
            Ok(r) => (by_item(&r.items), false),
            Err(_) => (elo.clone(), true),
        };
    Ok(PromptFit {
        bradley_terry,
        elo,
        fell_back,
    })
}

/// Strengths closer than this are a tie.
const TIE: f64 = 1e-6;

/// Share of pairs with different true totals that `strength` orders as the truth does.
fn order_accuracy(task: &str, strength: &[f64], truth: &HashMap<String, String>) -> (f64, usize) {
    let (mut score, mut n) = (0.0, 0);
    for i in 0..strength.len() {
        for j in i + 1..strength.len() {
            let Some(t) = truth.get(&pair_item(task, i, j)) else {
                continue;
            };
            let (a, b) = (strength[i], strength[j]);
            if !(a.is_finite() && b.is_finite()) {
                continue;
            }
            n += 1;
            score += if (a - b).abs() < TIE {
                0.5
            } else if (a > b) == (t == "first") {
                1.0
            } else {
                0.0
            };
        }
    }
    (score, n)
}

/// Tiers (best first) from strengths; equal strengths share a tier.
fn tiers(strength: &[f64]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..strength.len()).collect();
    order.sort_by(|&a, &b| strength[b].total_cmp(&strength[a]).then(a.cmp(&b)));
    let mut out: Vec<Vec<usize>> = Vec::new();
    for i in order {
        match out.last_mut() {
            Some(tier) if (strength[tier[0]] - strength[i]).abs() < TIE => tier.push(i),
            _ => out.push(vec![i]),
        }
    }
    out
}

/// The aggregated accuracies of one rater subset, and its per-prompt fits.
fn measure(
    ctx: &RunContext,
    labels: &Labels,
    fam: &Triples,
    gold: &Triples,
    truth: &HashMap<String, String>,
    keep: &dyn Fn(&str) -> bool,
    raters: usize,
) -> Result<(AggregateAccuracy, HashMap<String, PromptFit>, usize)> {
    let c = &ctx.config.raters;
    let iterations = c.em_max_iterations;
    let pref_gold = gold_map(&gold.preferences);
    let ds = aggregate_rows(&fam.preferences, &pref_gold, Method::DawidSkene, iterations)?;
    let mv = aggregate_rows(&fam.preferences, &pref_gold, Method::Majority, iterations)?;
    let flags = aggregate_rows(
        &fam.flags,
        &gold_map(&gold.flags),
        Method::DawidSkene,
        iterations,
    )?;
    let mut answers = Vec::new();
    for (question, rows) in &fam.answers {
        let g = gold
            .answers
            .get(question)
            .map(|r| gold_map(r))
            .unwrap_or_default();
        answers.extend(aggregate_rows(rows, &g, Method::DawidSkene, iterations)?);
    }
    let acc = |pairs: &[(String, String)]| {
        accuracy(pairs.iter().map(|(i, l)| (i.as_str(), l.as_str())), truth)
    };
    let all_games = games(labels, keep);
    let mut fits = HashMap::new();
    let (mut bt, mut elo, mut n, mut fallbacks) = (0.0, 0.0, 0usize, 0usize);
    for task in &labels.tasks {
        let Some(g) = all_games.get(&task.item_id) else {
            continue;
        };
        let fit = fit_prompt(task.responses.len(), g, c.bt_prior_ties, c.elo_k)?;
        let (s, m) = order_accuracy(&task.item_id, &fit.bradley_terry, truth);
        let (e, _) = order_accuracy(&task.item_id, &fit.elo, truth);
        bt += s;
        elo += e;
        n += m;
        fallbacks += usize::from(fit.fell_back);
        fits.insert(task.item_id.clone(), fit);
    }
    let share = |x: f64| (n > 0).then(|| x / n as f64);
    Ok((
        AggregateAccuracy {
            raters,
            preferences_bradley_terry: share(bt),
            preferences_elo: share(elo),
            preferences_dawid_skene: acc(&ds),
            preferences_majority: acc(&mv),
            flags_dawid_skene: acc(&flags),
            answers_dawid_skene: acc(&answers),
        },
        fits,
        fallbacks,
    ))
}

/// Accuracy of `rater` on gold rows of one family.
fn gold_accuracy(rows: &[Triple], rater: &str, gold: &HashMap<String, String>) -> Option<f64> {
    accuracy(
        rows.iter()
            .filter(|t| t.1 == rater)
            .map(|t| (t.0.as_str(), t.2.as_str())),
        gold,
    )
}

/// Per prompt, a K-way `Ranking` (Bradley–Terry order of `fits`, equal strengths tied) and a
/// `RuleViolations` record (the aggregated `flags`), rater id `rater`. Returns the records and
/// how many prompts had no comparison or tied every candidate (left out).
fn preference_dataset(
    world: &World,
    labels: &Labels,
    fits: &HashMap<String, PromptFit>,
    flags: &HashMap<String, String>,
    rater: &str,
) -> (Vec<Feedback>, usize, usize) {
    let mut preferences = Vec::new();
    let (mut without, mut all_tied) = (0usize, 0usize);
    for task in &labels.tasks {
        let Some(fit) = fits.get(&task.item_id) else {
            without += 1;
            continue;
        };
        let tiers = tiers(&fit.bradley_terry);
        if tiers.len() < 2 {
            all_tied += 1;
            continue;
        }
        let meta = || FeedbackMeta::new(task.item_id.clone()).with_rater(rater);
        let prompt = Prompt::user(question_of(&task.prompt));
        preferences.push(Feedback::Ranking(Ranking::new(
            meta(),
            prompt.clone(),
            task.responses.clone(),
            tiers,
        )));
        let broken = (0..task.responses.len())
            .map(|i| {
                world
                    .rules
                    .rules
                    .iter()
                    .filter(|rule| {
                        flags
                            .get(&flag_item(&task.item_id, i, &rule.id))
                            .is_some_and(|l| l == "yes")
                    })
                    .map(|rule| rule.id.clone())
                    .collect()
            })
            .collect();
        preferences.push(Feedback::RuleViolations(RuleViolations {
            meta: meta(),
            prompt,
            rules: world.rules.clone(),
            responses: task.responses.clone(),
            broken,
        }));
    }
    (preferences, without, all_tied)
}

/// Loads the report and preference dataset of a finished stage.
pub fn load_raters(ctx: &RunContext, stage: &'static str) -> Result<RatersOutput> {
    Ok(RatersOutput {
        report: ctx.dir.read_json("raters/report.json", stage, STAGE)?,
        preferences: ctx.dir.read_jsonl("preferences.jsonl", stage, STAGE)?,
        preferences_all: ctx.dir.read_jsonl("preferences_all.jsonl", stage, STAGE)?,
    })
}

/// Measures the raters, aggregates, and builds the preference dataset (or loads them).
pub fn raters(ctx: &RunContext, world: &World, labels: &Labels) -> Result<RatersOutput> {
    if ctx.dir.is_done(STAGE) {
        return load_raters(ctx, STAGE);
    }
    let started = std::time::Instant::now();
    let c = &ctx.config.raters;
    let all_tasks: HashMap<&str, &LabelTask> = labels
        .tasks
        .iter()
        .chain(&labels.gold_tasks)
        .map(|t| (t.item_id.as_str(), t))
        .collect();
    let fam = triples(&labels.feedback, &all_tasks, "unknown")?;
    let gold = triples(&labels.gold, &all_tasks, "researchers")?;
    // The truth of ordinary tasks only: gold items are clamped, so they would flatter everyone.
    let truth = truth(world, &labels.tasks)?;

    // Screening on gold preferences.
    let mut b = LabelSetBuilder::new("labels/feedback.jsonl");
    b.gold_path("labels/gold.jsonl");
    for (line, (item, rater, label)) in fam.preferences.iter().enumerate() {
        b.push(item, rater, label, line as u64 + 1);
    }
    for (line, (item, _, label)) in gold.preferences.iter().enumerate() {
        b.push_gold(item, label, line as u64 + 1);
    }
    let (set, gold_set) = b.build()?;
    if gold_set.is_empty() {
        return Err(PipelineError::bad_file(
            &ctx.dir.path("labels/gold.jsonl"),
            "no gold preference was labeled by any rater: nothing to screen on",
        ));
    }
    let rules = ScreenRules {
        min_accuracy: Some(c.min_gold_accuracy),
        min_gold_items: c.min_gold_items,
        min_lower_bound: None,
        min_consensus: None,
        confidence: c.confidence,
        exclude_flagged: c.exclude_flagged,
    };
    let screen = screen(&set, &gold_set, &rules);
    if screen.kept.is_empty() {
        return Err(PipelineError::config(
            "raters.min_gold_accuracy",
            format!(
                "no rater passed screening at {}; lower it",
                c.min_gold_accuracy
            ),
        ));
    }
    let kept: HashSet<String> = screen.kept.iter().cloned().collect();
    let (flag_gold, answer_gold) = (
        gold_map(&gold.flags),
        gold_map(&gold.answers.values().flatten().cloned().collect::<Vec<_>>()),
    );
    let all_answers: Vec<Triple> = fam.answers.values().flatten().cloned().collect();
    let kind_of: HashMap<&str, String> = world
        .labelers
        .iter()
        .map(|l| {
            (
                l.id.as_str(),
                serde_json::to_value(l.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
            )
        })
        .collect();
    let rows: Vec<RaterRow> = world
        .labelers
        .iter()
        .filter_map(|l| screen.raters.iter().find(|r| r.rater == l.id))
        .map(|r| RaterRow {
            rater: r.rater.clone(),
            kind: kind_of.get(r.rater.as_str()).cloned(),
            gold_items: r.gold_items,
            gold_accuracy: r.accuracy.value(),
            wilson: r.wilson,
            gold_flag_accuracy: gold_accuracy(&fam.flags, &r.rater, &flag_gold),
            gold_answer_accuracy: gold_accuracy(&all_answers, &r.rater, &answer_gold),
            flag: r.flag.map(|f| match f {
                Flag::Random => "random".to_string(),
                Flag::Adversarial => "adversarial".to_string(),
            }),
            kept: r.kept,
        })
        .collect();

    let screened = fam.filter(|r| kept.contains(r));
    let keep_all = |_: &str| true;
    let keep_screened = |r: &str| kept.contains(r);
    let n_all = set.n_raters();
    let (accuracy_all, fits_all, _) = measure(ctx, labels, &fam, &gold, &truth, &keep_all, n_all)?;
    let (accuracy_screened, fits, fallbacks) = measure(
        ctx,
        labels,
        &screened,
        &gold,
        &truth,
        &keep_screened,
        kept.len(),
    )?;

    // Elo against Bradley–Terry on the super raters' fits.
    let (mut same, mut pairs) = (0usize, 0usize);
    for fit in fits.values() {
        for i in 0..fit.elo.len() {
            for j in i + 1..fit.elo.len() {
                let bt = fit.bradley_terry[i] - fit.bradley_terry[j];
                let elo = fit.elo[i] - fit.elo[j];
                pairs += 1;
                same += usize::from(
                    (bt > TIE && elo > TIE)
                        || (bt < -TIE && elo < -TIE)
                        || (bt.abs() <= TIE && elo.abs() <= TIE),
                );
            }
        }
    }

    // The preference datasets: the super raters' (what stages 6-7 train on) and, for the
    // comparison a reward model trained on unscreened labels makes, every rater's.
    let flags_of = |rows: &[Triple]| -> Result<HashMap<String, String>> {
        Ok(
            aggregate_rows(rows, &flag_gold, Method::DawidSkene, c.em_max_iterations)?
                .into_iter()
                .collect(),
        )
    };
    let (preferences, without, all_tied) = preference_dataset(
        world,
        labels,
        &fits,
        &flags_of(&screened.flags)?,
        AGGREGATE_RATER,
    );
    let (preferences_all, _, _) =
        preference_dataset(world, labels, &fits_all, &flags_of(&fam.flags)?, ALL_RATERS);
    for (file, records) in [
        ("preferences.jsonl", &preferences),
        ("preferences_all.jsonl", &preferences_all),
    ] {
        write_file(
            &ctx.dir.path(file),
            OutputFormat::Native,
            records.iter().cloned().map(Ok),
        )?;
    }

    let report = RatersReport {
        raters: rows,
        kept: screen.kept.clone(),
        min_gold_accuracy: c.min_gold_accuracy,
        chance: screen.chance,
        agreement_all: figures(&fam.preferences)?,
        agreement_screened: figures(&screened.preferences)?,
        accuracy_all,
        accuracy_screened,
        elo_bradley_terry_concordance: (pairs > 0).then(|| same as f64 / pairs as f64),
        bradley_terry_fallbacks: fallbacks,
        preference_rankings: preferences.len() / 2,
        tasks_without_super_raters: without,
        tasks_all_tied: all_tied,
    };
    ctx.dir.write_json("raters/report.json", &report)?;
    let mut metrics = Metrics::new(STAGE);
    let opt = |v: Option<f64>| v.unwrap_or(f64::NAN);
    let mut values: Vec<(String, f64)> = vec![
        ("raters".into(), report.raters.len() as f64),
        ("super_raters".into(), report.kept.len() as f64),
        (
            "preference_rankings".into(),
            report.preference_rankings as f64,
        ),
        (
            "elo_bt_concordance".into(),
            opt(report.elo_bradley_terry_concordance),
        ),
    ];
    for (who, a, g) in [
        ("all", &report.accuracy_all, &report.agreement_all),
        (
            "screened",
            &report.accuracy_screened,
            &report.agreement_screened,
        ),
    ] {
        values.extend([
            (
                format!("{who}/pref_accuracy_bt"),
                opt(a.preferences_bradley_terry),
            ),
            (format!("{who}/pref_accuracy_elo"), opt(a.preferences_elo)),
            (
                format!("{who}/pref_accuracy_ds"),
                opt(a.preferences_dawid_skene),
            ),
            (
                format!("{who}/pref_accuracy_majority"),
                opt(a.preferences_majority),
            ),
            (format!("{who}/flag_accuracy_ds"), opt(a.flags_dawid_skene)),
            (
                format!("{who}/answer_accuracy_ds"),
                opt(a.answers_dawid_skene),
            ),
            (
                format!("{who}/krippendorff_alpha"),
                opt(g.krippendorff_alpha),
            ),
            (format!("{who}/fleiss_kappa"), opt(g.fleiss_kappa)),
        ]);
    }
    for r in &report.raters {
        values.push((format!("gold_accuracy/{}", r.rater), opt(r.gold_accuracy)));
    }
    let named: Vec<(&str, f64)> = values.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    metrics.push(None, &named);
    ctx.dir
        .write_metrics(STAGE, metrics.lines(), &super::stage_names())?;
    tracing::info!(
        super_raters = report.kept.len(),
        rankings = report.preference_rankings,
        "raters screened, labels aggregated"
    );
    ctx.dir.mark_done(STAGE, started.elapsed().as_secs_f64())?;
    ctx.check_halt(STAGE, None)?;
    Ok(RatersOutput {
        report,
        preferences,
        preferences_all,
    })
}
