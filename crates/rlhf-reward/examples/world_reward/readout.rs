//! The read-out probe: does the frozen SFT trunk represent whether a stated claim is true at
//! the token the reward is read at (the EOS after prompt + statement)?
//!
//! Features: the final hidden state (after `ln_f`) at the EOS, standardised. A logistic
//! regression (full-batch gradient descent, L2 1e-3, positives re-weighted to balance the
//! classes) learns "correct statement" on the answerable RL prompts (one row per distinct
//! prompt: the correct statement and its wrong variants, see `probe::statement_rows`) and is
//! scored on the eval prompts as correct-versus-wrong pairs, per slice. If the knowledge the
//! language model shows by likelihood were linearly readable there, a reward head on a frozen
//! trunk could use it on prompts it was never trained on.

use std::collections::{BTreeMap, HashSet};
use std::error::Error;

use rlhf_data::tokenizer::Tokenizer;
use rlhf_data::world::{PromptKind, World, WorldPrompt};
use rlhf_transformer::{Example, Gpt, lm_batch};

use crate::probe::{statement_rows, tally_json, vote};

/// One prompt's statements: EOS features (one row of C per statement, row 0 correct) and
/// the slice it is scored in.
struct Group {
    features: Vec<Vec<f64>>,
    slice: &'static str,
}

/// EOS hidden states of `rows` under `lm`. (B, C)
fn eos_features(lm: &Gpt, rows: &[Vec<u32>], pad: u32) -> Result<Vec<Vec<f64>>, Box<dyn Error>> {
    let examples: Vec<Example> = rows.iter().map(|r| Example::full(r.clone())).collect();
    let refs: Vec<&Example> = examples.iter().collect();
    let batch = lm_batch(&refs, lm.config.n_positions, pad)?;
    let hidden = lm.forward(&batch.input)?.hidden.to_vec_f32(); // (B, T, C)
    let (t, c) = (batch.input.seq_len, lm.config.n_embd);
    Ok(rows
        .iter()
        .enumerate()
        .map(|(b, row)| {
            let at = (b * t + row.len().min(t) - 1) * c;
            hidden[at..at + c].iter().map(|&x| f64::from(x)).collect()
        })
        .collect())
}

/// The answerable prompts of `prompts` (each once) as feature groups.
fn groups(
    world: &World,
    lm: &Gpt,
    tok: &dyn Tokenizer,
    prompts: &[WorldPrompt],
) -> Result<Vec<Group>, Box<dyn Error>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, prompt) in prompts.iter().enumerate() {
        if !seen.insert(prompt.id.as_str()) {
            continue;
        }
        let Some(rows) = statement_rows(world, tok, prompt, i) else {
            continue;
        };
        let slice = match prompt.kind {
            PromptKind::Fact { .. } => "fact",
            _ => "arithmetic",
        };
        out.push(Group {
            features: eos_features(lm, &rows, tok.pad_id())?,
            slice,
        });
    }
    Ok(out)
}

/// A linear scorer w . standardise(x) + b.
struct Linear {
    mean: Vec<f64>,
    scale: Vec<f64>,
    w: Vec<f64>,
    b: f64,
}

impl Linear {
    fn score(&self, x: &[f64]) -> f64 {
        self.b
            + x.iter()
                .zip(&self.mean)
                .zip(&self.scale)
                .zip(&self.w)
                .map(|(((x, m), s), w)| w * (x - m) / s)
                .sum::<f64>()
    }

    /// Logistic regression of "row 0 of its group" on every row of `train`.
    fn fit(train: &[Group]) -> Linear {
        let rows: Vec<(&[f64], f64)> = train
            .iter()
            .flat_map(|g| {
                g.features
                    .iter()
                    .enumerate()
                    .map(|(i, x)| (x.as_slice(), if i == 0 { 1.0 } else { 0.0 }))
            })
            .collect();
        let (n, c) = (
            rows.len().max(1) as f64,
            rows.first().map_or(0, |r| r.0.len()),
        );
        let mut mean = vec![0.0; c];
        for (x, _) in &rows {
            for (m, v) in mean.iter_mut().zip(*x) {
                *m += v / n;
            }
        }
        let mut scale = vec![0.0; c];
        for (x, _) in &rows {
            for ((s, v), m) in scale.iter_mut().zip(*x).zip(&mean) {
                *s += (v - m).powi(2) / n;
            }
        }
        scale.iter_mut().for_each(|s| *s = s.sqrt().max(1e-6));
        let positives = rows.iter().filter(|r| r.1 == 1.0).count().max(1) as f64;
        let positive_weight = (n - positives) / positives;
        let mut model = Linear {
            mean,
            scale,
            w: vec![0.0; c],
            b: 0.0,
        };
        for _ in 0..2000 {
            let (mut grad_w, mut grad_b, mut total) = (vec![0.0; c], 0.0, 0.0);
            for &(x, y) in &rows {
                let p = 1.0 / (1.0 + (-model.score(x)).exp());
                let weight = if y == 1.0 { positive_weight } else { 1.0 };
                let g = (p - y) * weight;
                total += weight;
                for (k, gw) in grad_w.iter_mut().enumerate() {
                    *gw += g * (x[k] - model.mean[k]) / model.scale[k];
                }
                grad_b += g;
            }
            for (w, g) in model.w.iter_mut().zip(&grad_w) {
                *w -= 0.5 * (g / total + 1e-3 * *w);
            }
            model.b -= 0.5 * grad_b / total;
        }
        model
    }
}

/// Correct-versus-wrong accuracy of `model` on `groups`, per slice.
fn pair_accuracy(model: &Linear, groups: &[Group]) -> serde_json::Value {
    let mut tally: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for g in groups {
        let scores: Vec<f64> = g.features.iter().map(|x| model.score(x)).collect();
        let entry = tally.entry(g.slice.to_string()).or_default();
        for &wrong in &scores[1..] {
            entry.0 += vote(scores[0], wrong);
            entry.1 += 1;
        }
    }
    tally_json(&tally)
}

/// Trains the probe on the RL prompts and scores it there and on the eval prompts.
pub fn readout_probe(
    world: &World,
    lm: &Gpt,
    tok: &dyn Tokenizer,
) -> Result<serde_json::Value, Box<dyn Error>> {
    let train = groups(world, lm, tok, &world.rl_prompts)?;
    let test = groups(world, lm, tok, &world.eval_prompts)?;
    let model = Linear::fit(&train);
    Ok(serde_json::json!({
        "rl_prompts": pair_accuracy(&model, &train),
        "eval_prompts": pair_accuracy(&model, &test),
    }))
}
