//! The issue's acceptance experiment on the synthetic HHH world: reward models trained on
//! labels from screened raters and from all raters, measured against the ground-truth
//! preference on held-out prompts.
//!
//! 1. The world (seeded) gives a corpus, demonstrations, RL prompts and disjoint eval prompts
//!    (`--arithmetic-repeats`, `--fact-repeats`, `--corpus-dialogues`, `--wrong-answer-rate`,
//!    `--confirmation-rate`, `--correction-rate` change the corpus only; the prompts and the
//!    test stay the same).
//! 2. The SFT trunk ([`sft`]): `--sft DIR` (an HF GPT-2 directory with its `tokenizer.json`),
//!    or, by default, a BPE tokenizer trained on the corpus and a tiny GPT-2 pretrained on it
//!    and fine-tuned on the demonstrations here (saved under the output directory).
//! 3. What the trunk knows: the "SFT likelihood wins" baseline, the knowledge probe (correct vs
//!    wrong statements of one template, by likelihood; [`probe`]) and the read-out probe (is a
//!    claim's truth linearly readable at the EOS of the frozen trunk; [`readout`]).
//! 4. Simulated labelers (experts, average, careless, random, adversarial, length-biased) rank
//!    K candidate responses per RL prompt and flag rule violations, `--per-task` labelers each.
//! 5. Screening, as InstructGPT did: every labeler labels the researchers' gold set; a labeler
//!    is kept when the lower end of the 95% Wilson interval of its agreement with the gold
//!    pairwise preferences is at least `--min-agreement`.
//! 6. Reward models, same seed and settings (K-wise loss + rule auxiliary), one per label set
//!    of `--models`: `screened` (the kept labelers' records), `unscreened` (everyone's),
//!    `truth` (the ground truth on the same tasks: the ceiling of any labelers) and
//!    `dense-truth` (the truth on every non-eval prompt of the world). Each is evaluated on the
//!    eval prompts' candidates ranked by the ground truth, per slice (fact, arithmetic,
//!    unanswerable, harmful) beside the length baseline, on the RL prompts' tasks against the
//!    same truth (training side), and on correct-vs-wrong claim pairs. `--read gated-likelihood`
//!    (or `gated-probability`, `gated-centred-likelihood`, `gated-top-margin`,
//!    `gated-top-choice`, `gated-top-ratio`, `gated-top-gap`, `gated-top-margin-ratio`)
//!    reads the reward as the EOS head plus the trunk's gated token log-likelihoods
//!    (`rlhf_reward::read`); `--lm-weight`, `--trunk-lr-scale` and `--detach-likelihood true`
//!    keep the trunk a language model during reward training (`rlhf_reward::trunk`).
//!    `--rm-seed N` changes the reward models' seed alone (head initialisation and batch
//!    order; the world, its labels and the test stay `--seed`'s). `--ensemble M` trains M
//!    models per label set (seeds RM seed .. RM seed + M - 1) and also reports the ensembles
//!    of the first 2..=M (the mean of their rewards, each normalised to mean 0, std 1 on the
//!    reference responses; `rlhf_reward::ensemble`). `--read a,b` gives member i read i mod 2
//!    (an ensemble over reads as well as seeds).
//!
//! ```text
//! cargo run --release -p rlhf-reward --example world_reward -- --out target/world-reward
//! ```
//! Prints one JSON object with every report; BENCHMARKS.md ("rlhf-reward") has the numbers.

mod evaluation;
mod pair_types;
mod probe;
mod readout;
mod sft;

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use rlhf_data::records::{Feedback, FeedbackMeta, Pairwise, Prompt, Ranking};
use rlhf_data::tokenizer::{BpeTokenizer, Tokenizer};
use rlhf_data::world::{
    Claim, LabelTask, LabelerKind, PromptClass, PromptKind, World, WorldConfig, WorldPrompt,
};
use rlhf_raters::screening::wilson_interval;
use rlhf_reward::{
    ObjectiveConfig, PreferenceBuilder, PreferenceLoss, RewardRead, RewardStageConfig,
    RewardTrainConfig, RuleColumns, TrunkTraining, train_reward_model,
};
use rlhf_tensor::Device;
use rlhf_transformer::Gpt;

use evaluation::{Scores, TestSets};
use probe::{knowledge_probe, likelihood_baseline};
use serde_json::json;
use sft::{TrunkConfig, build_sft};

/// The label sets a reward model can be trained on (`--models`).
const LABEL_SETS: [&str; 4] = ["screened", "unscreened", "truth", "dense-truth"];

struct Args {
    out: PathBuf,
    sft: Option<PathBuf>,
    seed: u64,
    /// The reward models' seed (head init and batch order) alone; None: `seed`.
    rm_seed: Option<u64>,
    /// Reward models per label set, seeds from the RM seed up (1: one model).
    ensemble: usize,
    world: WorldConfig,
    k: usize,
    per_task: usize,
    trunk: TrunkConfig,
    epochs: usize,
    lr: f32,
    min_agreement: f64,
    models: Vec<String>,
    baselines_only: bool,
    /// The reads, member i of an ensemble taking read i mod their number.
    reads: Vec<RewardRead>,
    trunk_training: TrunkTraining,
}

fn parse_args() -> Result<Args, Box<dyn Error>> {
    let mut args = Args {
        out: PathBuf::from("target/world-reward"),
        sft: None,
        seed: 0,
        rm_seed: None,
        ensemble: 1,
        world: WorldConfig::default(),
        k: 4,
        per_task: 3,
        trunk: TrunkConfig {
            seed: 0,
            n_embd: 64,
            n_layer: 2,
            n_head: 4,
            vocab_size: 512,
            pretrain_steps: 300,
            pretrain_lr: 1e-3,
            sft_steps: 60,
        },
        epochs: 2,
        lr: 3e-4,
        min_agreement: 0.75,
        models: ["screened", "unscreened", "truth"]
            .map(String::from)
            .to_vec(),
        baselines_only: false,
        reads: vec![RewardRead::Eos],
        trunk_training: TrunkTraining::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--baselines-only" {
            args.baselines_only = true;
            continue;
        }
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--out" => args.out = value()?.into(),
            "--sft" => args.sft = Some(value()?.into()),
            "--seed" => {
                args.seed = value()?.parse()?;
                args.trunk.seed = args.seed;
            }
            "--rm-seed" => args.rm_seed = Some(value()?.parse()?),
            "--ensemble" => {
                args.ensemble = value()?.parse()?;
                if args.ensemble == 0 {
                    return Err("--ensemble: expected at least one model per label set".into());
                }
            }
            "--arithmetic-repeats" => args.world.arithmetic_repeats = value()?.parse()?,
            "--confirmation-rate" => args.world.confirmation_rate = value()?.parse()?,
            "--correction-rate" => args.world.correction_rate = value()?.parse()?,
            "--wrong-answer-rate" => args.world.wrong_answer_rate = value()?.parse()?,
            "--fact-repeats" => args.world.fact_repeats = value()?.parse()?,
            "--corpus-dialogues" => args.world.corpus_dialogues = value()?.parse()?,
            "--k" => args.k = value()?.parse()?,
            "--per-task" => args.per_task = value()?.parse()?,
            "--pretrain-steps" => args.trunk.pretrain_steps = value()?.parse()?,
            "--pretrain-lr" => args.trunk.pretrain_lr = value()?.parse()?,
            "--sft-steps" => args.trunk.sft_steps = value()?.parse()?,
            "--vocab" => args.trunk.vocab_size = value()?.parse()?,
            "--n-head" => args.trunk.n_head = value()?.parse()?,
            "--epochs" => args.epochs = value()?.parse()?,
            "--lr" => args.lr = value()?.parse()?,
            "--min-agreement" => args.min_agreement = value()?.parse()?,
            "--read" => {
                args.reads = value()?
                    .split(',')
                    .map(|name| {
                        RewardRead::from_name(name).ok_or_else(|| {
                            format!("--read: unknown read {name:?}, expected eos, gated-likelihood, gated-probability, gated-centred-likelihood, gated-top-margin, gated-top-choice, gated-top-ratio, gated-top-gap or gated-top-margin-ratio")
                        })
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--lm-weight" => args.trunk_training.lm_weight = value()?.parse()?,
            "--trunk-lr-scale" => args.trunk_training.trunk_lr_scale = value()?.parse()?,
            "--detach-likelihood" => args.trunk_training.detach_likelihood = value()?.parse()?,
            "--models" => {
                args.models = value()?.split(',').map(String::from).collect();
                if let Some(bad) = args
                    .models
                    .iter()
                    .find(|m| !LABEL_SETS.contains(&m.as_str()))
                {
                    return Err(format!(
                        "--models: unknown label set {bad:?}, expected a comma-separated list of {}",
                        LABEL_SETS.join(", ")
                    )
                    .into());
                }
            }
            "--n-embd" => args.trunk.n_embd = value()?.parse()?,
            "--n-layer" => args.trunk.n_layer = value()?.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    if args.reads.len() > args.ensemble {
        return Err(format!(
            "--read names {} reads: give --ensemble {} or more so that each has a model",
            args.reads.len(),
            args.reads.len()
        )
        .into());
    }
    Ok(args)
}

/// Adds the keys of the object `more` to the object `entry`.
fn merge(entry: &mut serde_json::Value, more: serde_json::Value) {
    if let (Some(entry), serde_json::Value::Object(more)) = (entry.as_object_mut(), more) {
        entry.extend(more);
    }
}

/// The test slice a prompt belongs to: answerable prompts split into facts and arithmetic
/// (they need different knowledge), then unanswerable and harmful.
fn slice_of(kind: &PromptKind) -> &'static str {
    match kind {
        PromptKind::Fact { .. } => "fact",
        PromptKind::Arithmetic { .. } => "arithmetic",
        PromptKind::Unknown { .. } => "unanswerable",
        PromptKind::Harmful { .. } => "harmful",
    }
}

/// K candidates per prompt as labelling tasks.
fn tasks(world: &World, prompts: &[WorldPrompt], k: usize, stream: &str) -> Vec<LabelTask> {
    prompts
        .iter()
        .enumerate()
        .map(|(i, p)| LabelTask {
            item_id: format!("{stream}-{i}-{}", p.id),
            prompt: p.render(),
            responses: world.candidate_responses(p, k, stream),
        })
        .collect()
}

/// Share of the researchers' strict pairwise preferences a ranking orders the same way.
fn agreement(truth: &Ranking, labels: &Ranking) -> (u64, u64) {
    let label_ranks = labels.ranks();
    let mut same = 0;
    let pairs = truth.pairs();
    for p in &pairs {
        if label_ranks[p.better] < label_ranks[p.worse] {
            same += 1;
        }
    }
    (same, pairs.len() as u64)
}

/// The ground truth's rankings and rule flags of `tasks` (aligned with `prompts`) as
/// comparisons sourced by [`slice_of`]; tasks whose candidates all tie are left out (no
/// preference to test).
fn truth_comparisons(
    world: &World,
    tasks: &[LabelTask],
    prompts: &[WorldPrompt],
    tok: &BpeTokenizer,
    sequence: &rlhf_reward::SequenceConfig,
) -> Result<Vec<rlhf_reward::Comparison>, Box<dyn Error>> {
    let researchers = LabelerKind::Researcher.profile("truth");
    let rule_ids = world.rules.rules.iter().map(|r| r.id.clone()).collect();
    let mut builder = PreferenceBuilder::new(tok, sequence.clone(), RuleColumns::Fixed(rule_ids));
    for (task, prompt) in tasks.iter().zip(prompts) {
        let truth = world.label(&researchers, task)?;
        if truth.ranking.tiers.len() < 2 {
            continue;
        }
        let slice = slice_of(&prompt.kind);
        builder.add(&truth.ranking.into(), slice)?;
        builder.add(&truth.violations.into(), slice)?;
    }
    Ok(builder.build()?.comparisons)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    std::fs::create_dir_all(&args.out)?;
    let world = World::new(WorldConfig {
        seed: args.seed,
        ..args.world.clone()
    })?;
    let sft_dir = match &args.sft {
        Some(dir) => dir.clone(),
        None => {
            let dir = args.out.join("sft");
            build_sft(&world, &args.trunk, &dir)?;
            dir
        }
    };
    let tok = BpeTokenizer::load(sft_dir.join("tokenizer.json"))?;

    // Screening on the gold set.
    let gold = world.gold_set()?;
    let mut kept = Vec::new();
    let mut screening = Vec::new();
    for labeler in &world.labelers {
        let (mut same, mut total) = (0, 0);
        for (task, truth) in gold.tasks.iter().zip(&gold.labels) {
            let out = world.label(labeler, task)?;
            let (s, t) = agreement(&truth.ranking, &out.ranking);
            same += s;
            total += t;
        }
        let [lower, _] = wilson_interval(same, total, 0.95).unwrap_or([0.0, 1.0]);
        let keep = lower >= args.min_agreement;
        if keep {
            kept.push(labeler.id.clone());
        }
        screening.push(
            json!({"labeler": labeler.id, "agreement": same as f64 / total.max(1) as f64,
            "wilson_lower": lower, "kept": keep}),
        );
    }

    // Labels on the RL prompts.
    let train_tasks = tasks(&world, &world.rl_prompts, args.k, "rm");
    let labels = world.label_tasks(&train_tasks, args.per_task)?;
    let mut everyone: Vec<Feedback> = Vec::new();
    let mut screened: Vec<Feedback> = Vec::new();
    for (_, labeler, output) in labels {
        let records = vec![output.ranking.into(), output.violations.into()];
        if kept.contains(&labeler) {
            screened.extend(records.iter().cloned());
        }
        everyone.extend(records);
    }
    // The ceiling: the same tasks ranked and flagged by the ground truth, once each.
    let researchers = LabelerKind::Researcher.profile("truth");

    let mut truth_labels: Vec<Feedback> = Vec::new();
    for task in &train_tasks {
        let output = world.label(&researchers, task)?;
        truth_labels.extend([output.ranking.into(), output.violations.into()]);
    }
    // What more labels would do: the truth on every prompt of the world that is not an eval
    // prompt, once each (the RL prompts hold only a fraction of the arithmetic questions).
    let mut dense_truth: Vec<Feedback> = Vec::new();
    if args.models.iter().any(|m| m == "dense-truth") {
        let eval_ids: std::collections::HashSet<&str> =
            world.eval_prompts.iter().map(|p| p.id.as_str()).collect();
        let space: Vec<WorldPrompt> =
            rlhf_data::world::corpus::prompt_space(&world.facts, &world.config)
                .into_iter()
                .filter(|p| !eval_ids.contains(p.id.as_str()))
                .collect();
        for task in tasks(&world, &space, args.k, "dense") {
            let output = world.label(&researchers, &task)?;
            dense_truth.extend([output.ranking.into(), output.violations.into()]);
        }
    }

    // The ground-truth test set on the held-out eval prompts, sourced by prompt class.
    let test_tasks = tasks(&world, &world.eval_prompts, args.k, "test");
    let sft = Gpt::load(&sft_dir, Device::Cpu)?;
    let sequence = rlhf_reward::SequenceConfig {
        eos_token_id: tok.eos_id(),
        pad_token_id: tok.pad_id(),
        max_len: sft.config.n_positions,
    };
    let test = truth_comparisons(&world, &test_tasks, &world.eval_prompts, &tok, &sequence)?;
    // The same truth on the RL prompts' tasks the labelers ranked: training-side accuracy.
    let train_truth = truth_comparisons(&world, &train_tasks, &world.rl_prompts, &tok, &sequence)?;
    let by_pair_type = pair_types::pair_type_comparisons(
        &world,
        &test_tasks,
        &world.eval_prompts,
        &tok,
        &sequence,
    )?;
    let likelihood = likelihood_baseline(&sft, &test, tok.pad_id())?;
    eprintln!("SFT likelihood baseline on the truth pairs: {likelihood}");
    // The knowledge test: on answerable eval prompts, the correct claim against a wrong one.
    let mut claims = PreferenceBuilder::new(&tok, sequence.clone(), RuleColumns::Off);
    for task in &test_tasks {
        let judged: Vec<Claim> = task
            .responses
            .iter()
            .map(|r| world.judge(&task.prompt, r).map(|j| j.analysis.claim))
            .collect::<Result<_, _>>()?;
        let find = |want: Claim| judged.iter().position(|&c| c == want);
        if let (Some(good), Some(bad), true) = (
            find(Claim::Correct),
            find(Claim::Wrong),
            world.parse_prompt(&task.prompt)?.class() == PromptClass::Answerable,
        ) {
            let pair = Pairwise::new(
                FeedbackMeta::new(task.item_id.clone()),
                Prompt::user(rlhf_data::world::prompts::question_of(&task.prompt)),
                task.responses[good].clone(),
                task.responses[bad].clone(),
            );
            claims.add(&pair.into(), slice_of(&world.parse_prompt(&task.prompt)?))?;
        }
    }
    let claims = claims.build()?.comparisons;
    let claims_likelihood = likelihood_baseline(&sft, &claims, tok.pad_id())?;
    eprintln!(
        "{} correct-vs-wrong claim pairs; SFT likelihood baseline {claims_likelihood}",
        claims.len()
    );
    let count_slices = |prompts: &[WorldPrompt]| {
        let mut counts = std::collections::BTreeMap::<&str, usize>::new();
        for p in prompts {
            *counts.entry(slice_of(&p.kind)).or_default() += 1;
        }
        counts
    };
    let prompt_counts = json!({
        "rl": count_slices(&world.rl_prompts),
        "eval": count_slices(&world.eval_prompts),
    });
    eprintln!("prompts per slice: {prompt_counts}");
    let knowledge = knowledge_probe(&world, &sft, &tok)?;
    eprintln!("knowledge probe (correct vs wrong statement, same template): {knowledge}");
    let readout = readout::readout_probe(&world, &sft, &tok)?;
    eprintln!("read-out probe (linear, frozen EOS features): {readout}");
    if args.baselines_only {
        return Ok(());
    }

    let config = RewardStageConfig {
        train: RewardTrainConfig {
            objective: ObjectiveConfig {
                loss: PreferenceLoss::Kwise,
                centering: 0.0,
                rule_weight: 0.5,
            },
            lr: args.lr,
            epochs: args.epochs,
            batch_size: 16,
            eval_batch_size: 32,
            warmup_steps: 10,
            seed: args.rm_seed.unwrap_or(args.seed),
            ..RewardTrainConfig::default()
        },
        read: args.reads[0],
        trunk: args.trunk_training,
        ..RewardStageConfig::default()
    };
    let references: Vec<(Prompt, String)> = world
        .demonstrations
        .iter()
        .map(|d| (Prompt::user(d.prompt.text.clone()), d.response.clone()))
        .collect();
    let mut reports = serde_json::Map::new();
    let label_sets = [
        ("screened", &screened),
        ("unscreened", &everyone),
        ("truth", &truth_labels),
        ("dense-truth", &dense_truth),
    ];
    let sets = TestSets {
        heldout: &test,
        rl_prompts: &train_truth,
        claims: &claims,
        by_pair_type: &by_pair_type,
    };
    let objective = &config.train.objective;
    for (name, records) in label_sets
        .into_iter()
        .filter(|(name, _)| args.models.iter().any(|m| m == name))
    {
        // One model per seed; with --ensemble M > 1, M seeds from the RM seed up and the
        // ensembles of the first 2..=M of them.
        let mut members: Vec<Scores> = Vec::new();
        for member in 0..args.ensemble {
            let mut config = config.clone();
            config.train.seed += member as u64;
            config.read = args.reads[member % args.reads.len()];
            let label = if args.ensemble == 1 {
                name.to_string()
            } else if args.reads.len() > 1 {
                format!("{name}-{}-seed{}", config.read.name(), config.train.seed)
            } else {
                format!("{name}-seed{}", config.train.seed)
            };
            let started = Instant::now();
            let mut pairs = 0usize;
            let trained = train_reward_model(
                sft.clone(),
                &tok,
                &[(name, &records[..])],
                &references,
                &config,
                Some(&args.out.join(format!("rm-{label}"))),
                &mut |e| {
                    if let rlhf_reward::RewardEvent::Step(s) = e {
                        pairs += s.pairs;
                    }
                },
            )?;
            let seconds = started.elapsed().as_secs_f64();
            let scores = sets.score(&trained.model)?;
            let (report, summary) = sets.report(&scores, objective)?;
            eprintln!(
                "{label}: {} records, {} train comparisons, {seconds:.0} s\n{summary}",
                records.len(),
                trained.train_comparisons,
            );
            let mut entry = json!({
                "rm_seed": config.train.seed,
                "records": records.len(),
                "train_comparisons": trained.train_comparisons,
                "validation": trained.validation,
                "normalisation": trained.normalisation,
                "train_pairs_per_second": pairs as f64 / seconds,
                "seconds": seconds,
            });
            merge(&mut entry, report);
            reports.insert(label, entry);
            // Members on one scale before the mean: the shift-normalised rewards divided by
            // the reference responses' std, i.e. normalised to mean 0 and std 1 on them.
            let std = trained.normalisation.as_ref().map_or(1.0, |n| n.std_after);
            let gain = if std > 1e-12 { (1.0 / std) as f32 } else { 1.0 };
            members.push(scores.scaled(gain));
        }
        for m in 2..=members.len() {
            let (report, summary) = sets.report(&Scores::mean(&members[..m])?, objective)?;
            let label = format!("{name}-ensemble{m}");
            eprintln!("{label} (mean of {m} seeds' normalised rewards):\n{summary}");
            let mut entry = json!({"members": m, "first_rm_seed": config.train.seed});
            merge(&mut entry, report);
            reports.insert(label, entry);
        }
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "reward_read": args.reads.iter().map(|r| r.name()).collect::<Vec<_>>().join(","),
            "rm_seed": config.train.seed,
            "trunk_training": args.trunk_training,
            "kept_labelers": kept,
            "screening": screening,
            "prompts": prompt_counts,
            "test_comparisons": test.len(),
            "sft_likelihood_baseline": likelihood,
            "claim_pairs": claims.len(),
            "claims_sft_likelihood_baseline": claims_likelihood,
            "knowledge_probe": knowledge,
            "readout_probe": readout,
            "reports": reports,
        }))?
    );
    Ok(())
}
