//! What the SFT language model itself knows, measured by its log-likelihood:
//! - [`likelihood_baseline`]: "the more likely response wins" on any comparisons (candidates
//!   differ in style and length, so this mixes knowledge with style);
//! - [`knowledge_probe`]: on every answerable eval prompt, the correct statement against wrong
//!   statements of the same template (only the value differs), so it measures the facts and sums
//!   the trunk knows and nothing else.

use std::collections::{BTreeMap, HashSet};
use std::error::Error;

use rlhf_data::tokenizer::Tokenizer;
use rlhf_data::world::{Attribute, Habit, PromptKind, World, WorldPrompt};
use rlhf_reward::Comparison;
use rlhf_transformer::{Example, Gpt, lm_batch};
use serde_json::json;

use crate::sft::encode;

/// Log-likelihood of each whole row (B rows of tokens) under `lm`. (B)
fn row_log_likelihoods(lm: &Gpt, rows: &[Vec<u32>], pad: u32) -> Result<Vec<f64>, Box<dyn Error>> {
    let examples: Vec<Example> = rows.iter().map(|r| Example::full(r.clone())).collect();
    let refs: Vec<&Example> = examples.iter().collect();
    let batch = lm_batch(&refs, lm.config.n_positions, pad)?;
    let fwd = lm.forward(&batch.input)?;
    let out = lm.lm_loss(&fwd.hidden, &batch.targets, None)?;
    let t = batch.input.seq_len;
    Ok((0..rows.len())
        .map(|b| {
            -out.losses[b * t..(b + 1) * t]
                .iter()
                .map(|&l| f64::from(l))
                .sum::<f64>()
        })
        .collect())
}

/// Right / total votes per slice as `{slice: {accuracy, pairs}}` plus `overall`.
pub fn tally_json(tally: &BTreeMap<String, (f64, usize)>) -> serde_json::Value {
    let (right, total) = tally
        .values()
        .fold((0.0, 0), |(r, n), &(a, b)| (r + a, n + b));
    let mut out = serde_json::Map::new();
    out.insert(
        "overall".into(),
        json!({"accuracy": right / total.max(1) as f64, "pairs": total}),
    );
    for (slice, &(r, n)) in tally {
        out.insert(
            slice.clone(),
            json!({"accuracy": r / n.max(1) as f64, "pairs": n}),
        );
    }
    out.into()
}

/// 1 when `better` is more likely than `worse`, 1/2 on a tie, else 0.
pub fn vote(better: f64, worse: f64) -> f64 {
    match better.partial_cmp(&worse) {
        Some(std::cmp::Ordering::Greater) => 1.0,
        Some(std::cmp::Ordering::Equal) => 0.5,
        _ => 0.0,
    }
}

/// The "SFT likelihood wins" baseline: per source, the share of pairs whose better response
/// has the higher log-likelihood (the prompt is a shared prefix, so whole rows compare as
/// their responses do).
pub fn likelihood_baseline(
    lm: &Gpt,
    comparisons: &[Comparison],
    pad: u32,
) -> Result<serde_json::Value, Box<dyn Error>> {
    let mut tally: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for c in comparisons {
        let ll = row_log_likelihoods(lm, &c.rows, pad)?;
        let entry = tally.entry(c.source.clone()).or_default();
        for p in &c.pairs {
            entry.0 += vote(ll[p.better], ll[p.worse]);
            entry.1 += 1;
        }
    }
    Ok(tally_json(&tally))
}

/// Wrong values of the same template for `kind`: for a fact, up to 7 other values of the
/// attribute (capitals from a rotating window of the capital list); for a sum or difference,
/// the truth +-1..3 (not below 0), as the world's wrong answers are drawn.
fn wrong_statements(world: &World, kind: &PromptKind, offset: usize) -> Vec<String> {
    match kind {
        PromptKind::Fact { entity, attribute } => {
            let truth = world
                .facts
                .entity(entity)
                .map(|e| e.fact(*attribute).to_lowercase());
            let others: Vec<&str> = world
                .facts
                .candidates(*attribute)
                .into_iter()
                .filter(|c| Some(c.to_string()) != truth)
                .collect();
            (0..others.len().min(7))
                .map(|i| {
                    let value = others[(offset + i) % others.len()];
                    let value = match attribute {
                        Attribute::Capital => capitalise(value),
                        _ => value.to_string(),
                    };
                    attribute.statement(entity, &value)
                })
                .collect()
        }
        PromptKind::Arithmetic { a, op, b } => {
            let truth = op.apply(*a, *b);
            [-3, -2, -1, 1, 2, 3]
                .iter()
                .map(|d| truth + d)
                .filter(|&v| v >= 0)
                .map(|v| op.statement(*a, *b, v))
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The correct statement for an answerable `kind`.
fn correct_statement(world: &World, kind: &PromptKind) -> Option<String> {
    match kind {
        PromptKind::Fact { entity, attribute } => world
            .facts
            .entity(entity)
            .map(|e| attribute.statement(entity, e.fact(*attribute))),
        PromptKind::Arithmetic { a, op, b } => Some(op.statement(*a, *b, op.apply(*a, *b))),
        _ => None,
    }
}

/// `word` with its first letter upper-cased (capitals are stored lower-case in value sets).
fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Token rows (prompt + statement + EOS) of the correct statement (row 0) and the wrong
/// ones for an answerable `prompt`; `None` for other prompts. `offset` rotates the wrong
/// capitals chosen.
pub fn statement_rows(
    world: &World,
    tok: &dyn Tokenizer,
    prompt: &WorldPrompt,
    offset: usize,
) -> Option<Vec<Vec<u32>>> {
    let correct = correct_statement(world, &prompt.kind)?;
    let statements = std::iter::once(correct).chain(wrong_statements(world, &prompt.kind, offset));
    Some(
        statements
            .map(|s| {
                let (mut p, r) = encode(tok, &prompt.text, &s);
                p.extend(r);
                p
            })
            .collect(),
    )
}

/// The knowledge probe on the answerable eval prompts: per slice (`fact`,
/// `arithmetic-in-corpus` when the corpus answers that very question correctly at least once,
/// in a dialogue or a line of the arithmetic table, `arithmetic-not-in-corpus` otherwise), the
/// share of (correct, wrong) statement pairs whose correct statement `lm` finds more likely.
pub fn knowledge_probe(
    world: &World,
    lm: &Gpt,
    tok: &dyn Tokenizer,
) -> Result<serde_json::Value, Box<dyn Error>> {
    let taught_dialogues: HashSet<&str> = world
        .corpus
        .iter()
        .filter(|d| d.habit == Habit::Correct)
        .filter_map(|d| d.prompt.as_ref().map(|p| p.id.as_str()))
        .collect();
    let taught_lines: HashSet<&str> = world
        .corpus
        .iter()
        .filter(|d| d.habit == Habit::ArithmeticSentence)
        .map(|d| d.text.as_str())
        .collect();
    let mut tally: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for (i, prompt) in world.eval_prompts.iter().enumerate() {
        let Some(correct) = correct_statement(world, &prompt.kind) else {
            continue;
        };
        let taught = taught_dialogues.contains(prompt.id.as_str())
            || taught_lines.contains(correct.as_str());
        let slice = match (&prompt.kind, taught) {
            (PromptKind::Fact { .. }, _) => "fact",
            (_, true) => "arithmetic-in-corpus",
            (_, false) => "arithmetic-not-in-corpus",
        };
        let rows = statement_rows(world, tok, prompt, i).unwrap_or_default();
        let ll = row_log_likelihoods(lm, &rows, tok.pad_id())?;
        let entry = tally.entry(slice.to_string()).or_default();
        for &wrong in &ll[1..] {
            entry.0 += vote(ll[0], wrong);
            entry.1 += 1;
        }
    }
    Ok(tally_json(&tally))
}
