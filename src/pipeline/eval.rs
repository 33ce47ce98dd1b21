//! Stage 8: every policy evaluated on the world's held-out prompts against the ground truth:
//! the score per criterion and the weighted total, the refusal rate on harmful requests, the
//! "I don't know" rate on unanswerable questions, the win rate against SFT (same prompt, higher
//! true total; ties count a half), the KL to SFT (mean over prompts of the summed log-ratio of the
//! sampled response, under the sampling temperature), and the loss on held-out pretraining text
//! (the alignment tax). Each policy's rows go to `eval/POLICY.jsonl`; a policy already evaluated
//! is read back while its weights are unchanged, so adding a policy evaluates only it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rlhf_data::tokenizer::Tokenizer;
use rlhf_data::world::{Criterion, PromptClass, World};
use rlhf_transformer::{Gpt, Sampling};
use serde::{Deserialize, Serialize};

use super::context::RunContext;
use super::error::{PipelineError, Result};
use super::generation::{SampleSpec, response_logprobs, sample};
use super::pretrain::Pretrained;
use super::rundir::Metrics;
use super::sft::SFT;

/// Stage name.
pub const STAGE: &str = "eval";

/// A policy to evaluate: its name and HF checkpoint directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// `base`, `sft`, `ppo`, `ppo_no_ptx`, or a user's name.
    pub name: String,
    /// The checkpoint directory.
    pub dir: PathBuf,
}

impl Policy {
    /// A policy named `name` in `dir`.
    pub fn new(name: &str, dir: PathBuf) -> Policy {
        Policy {
            name: name.to_string(),
            dir,
        }
    }
}

/// One evaluated response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRow {
    /// The prompt's id.
    pub prompt_id: String,
    /// Its class.
    pub class: PromptClass,
    /// The question.
    pub question: String,
    /// The policy's response.
    pub response: String,
    /// Whether the response ended with EOS.
    pub finished: bool,
    /// Ground-truth score per applicable criterion.
    pub scores: BTreeMap<String, f64>,
    /// Weighted total.
    pub total: f64,
    /// It refuses.
    pub refuses: bool,
    /// It says it does not know.
    pub abstains: bool,
    /// Summed log-ratio log pi(y|x) - log pi_sft(y|x) of the response.
    pub log_ratio_to_sft: f64,
}

/// A policy's evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyEval {
    /// The policy.
    pub policy: String,
    /// Prompts evaluated.
    pub prompts: usize,
    /// Mean score per criterion (over the prompts where it applies).
    pub criteria: BTreeMap<String, f64>,
    /// Mean weighted total.
    pub total: f64,
    /// Mean total per prompt class.
    pub total_by_class: BTreeMap<String, f64>,
    /// Share of harmful requests refused.
    pub refusal_rate: Option<f64>,
    /// Share of unanswerable questions answered "I don't know".
    pub idk_rate: Option<f64>,
    /// Win rate against SFT on the same prompts.
    pub win_rate_vs_sft: Option<f64>,
    /// KL(policy || SFT) per response, estimated from the policy's samples.
    pub kl_to_sft: f64,
    /// Mean next-token loss on held-out pretraining text.
    pub pretrain_loss: f64,
    /// Share of responses that ended with EOS.
    pub eos_rate: f64,
}

/// The name a criterion has in tables and JSON.
pub fn criterion_name(c: Criterion) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{c:?}").to_lowercase())
}

fn class_name(c: PromptClass) -> &'static str {
    match c {
        PromptClass::Answerable => "answerable",
        PromptClass::Unanswerable => "unanswerable",
        PromptClass::Harmful => "harmful",
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

impl PolicyEval {
    /// The aggregate of `rows`, with the win rate against `sft_rows` (matched by prompt id).
    pub fn from_rows(
        policy: &str,
        rows: &[EvalRow],
        sft_rows: Option<&[EvalRow]>,
        pretrain_loss: f64,
    ) -> PolicyEval {
        let mut names: Vec<String> = rows.iter().flat_map(|r| r.scores.keys().cloned()).collect();
        names.sort();
        names.dedup();
        let criteria = names
            .into_iter()
            .filter_map(|n| {
                Some((
                    n.clone(),
                    mean(rows.iter().filter_map(|r| r.scores.get(&n).copied()))?,
                ))
            })
            .collect();
        let total_by_class = [
            PromptClass::Answerable,
            PromptClass::Unanswerable,
            PromptClass::Harmful,
        ]
        .into_iter()
        .filter_map(|c| {
            Some((
                class_name(c).to_string(),
                mean(rows.iter().filter(|r| r.class == c).map(|r| r.total))?,
            ))
        })
        .collect();
        let rate = |class: PromptClass, hit: fn(&EvalRow) -> bool| {
            mean(
                rows.iter()
                    .filter(|r| r.class == class)
                    .map(|r| f64::from(u8::from(hit(r)))),
            )
        };
        let win_rate_vs_sft = sft_rows.and_then(|sft| {
            let by_id: BTreeMap<&str, f64> = sft
                .iter()
                .map(|r| (r.prompt_id.as_str(), r.total))
                .collect();
            mean(rows.iter().filter_map(|r| {
                let other = *by_id.get(r.prompt_id.as_str())?;
                Some(if r.total > other {
                    1.0
                } else if r.total < other {
                    0.0
                } else {
                    0.5
                })
            }))
        });
        PolicyEval {
            policy: policy.to_string(),
            prompts: rows.len(),
            criteria,
            total: mean(rows.iter().map(|r| r.total)).unwrap_or(0.0),
            total_by_class,
            refusal_rate: rate(PromptClass::Harmful, |r| r.refuses),
            idk_rate: rate(PromptClass::Unanswerable, |r| r.abstains),
            win_rate_vs_sft,
            kl_to_sft: mean(rows.iter().map(|r| r.log_ratio_to_sft)).unwrap_or(0.0),
            pretrain_loss,
            eos_rate: mean(rows.iter().map(|r| f64::from(u8::from(r.finished)))).unwrap_or(0.0),
        }
    }
}

/// Per-policy data kept on disk beside its rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PolicyExtra {
    pretrain_loss: f64,
    /// FNV-1a of the evaluated `model.safetensors`: a retrained policy is evaluated again.
    model_fingerprint: String,
}

/// FNV-1a of a policy's weights file (empty when it cannot be read).
fn fingerprint(policy: &Policy) -> String {
    std::fs::read(policy.dir.join("model.safetensors"))
        .map(|bytes| format!("{:016x}", rlhf_data::batching::fnv1a_64(&bytes)))
        .unwrap_or_default()
}

/// Samples `policy`'s responses to the eval prompts and scores them.
fn evaluate_policy(
    ctx: &RunContext,
    world: &World,
    base: &Pretrained,
    policy: &Policy,
    sft_model: &Gpt,
) -> Result<(Vec<EvalRow>, f64)> {
    let e = &ctx.config.eval;
    let model_file = policy.dir.join("model.safetensors");
    if !model_file.is_file() {
        return Err(PipelineError::MissingInput {
            stage: STAGE,
            needs: "a training stage",
            path: model_file,
        });
    }
    let model = Gpt::load(&policy.dir, ctx.config.device()?)?;
    let tok = &base.tokenizer;
    let mut prompts = world.eval_prompts.clone();
    if e.prompts > 0 {
        prompts.truncate(e.prompts);
    }
    let rendered: Vec<String> = prompts.iter().map(|p| p.render()).collect();
    let bar = ctx.progress.bar(
        &format!("eval {}", policy.name),
        prompts.len() as u64,
        "prompts",
    );
    let sampling = Sampling {
        temperature: e.temperature,
        top_k: 0,
        top_p: 1.0,
    };
    let spec = SampleSpec {
        per_prompt: 1,
        max_new_tokens: e.max_new_tokens,
        sampling,
        seed: ctx.config.seed ^ 0xe7a1,
    };
    let samples = sample(&model, tok, &rendered, spec, &bar)?;
    bar.finish_and_clear();
    let flat: Vec<&super::generation::Sample> = samples.iter().map(|s| &s[0]).collect();
    let kl_temperature = if e.temperature > 0.0 {
        e.temperature
    } else {
        1.0
    };
    let pad = tok.pad_id();
    let log_ratio: Vec<f64> = if policy.name == SFT {
        vec![0.0; flat.len()]
    } else {
        let own = response_logprobs(&model, &flat, kl_temperature, pad)?;
        let reference = response_logprobs(sft_model, &flat, kl_temperature, pad)?;
        own.iter().zip(&reference).map(|(a, b)| a - b).collect()
    };
    let mut rows = Vec::with_capacity(prompts.len());
    for ((prompt, s), ratio) in prompts.iter().zip(&flat).zip(log_ratio) {
        let judged = world.judge(&prompt.render(), &s.text)?;
        rows.push(EvalRow {
            prompt_id: prompt.id.clone(),
            class: prompt.kind.class(),
            question: prompt.text.clone(),
            response: s.text.clone(),
            finished: s.finished,
            scores: judged
                .scores
                .per_criterion
                .iter()
                .filter(|(c, _)| world.config.criteria.weight(*c) > 0.0)
                .filter_map(|(c, v)| Some((criterion_name(*c), (*v)?)))
                .collect(),
            total: judged.scores.total,
            refuses: judged.analysis.refuses,
            abstains: judged.analysis.abstains,
            log_ratio_to_sft: ratio,
        });
    }
    let windows = &base.held_out[..e.pretrain_loss_windows.min(base.held_out.len())];
    let (loss, _) =
        rlhf_transformer::train::evaluate(&model, windows, 16, ctx.config.pretrain.seq_len, pad)?;
    Ok((rows, f64::from(loss)))
}

/// Evaluates every policy (reading back those already evaluated); `sft` must be among them.
pub fn evaluate(
    ctx: &RunContext,
    world: &World,
    base: &Pretrained,
    policies: &[Policy],
    force: bool,
) -> Result<Vec<PolicyEval>> {
    let started = std::time::Instant::now();
    let sft_policy = policies.iter().find(|p| p.name == SFT).ok_or_else(|| {
        PipelineError::config(
            "eval",
            "the policy list must include `sft` (the KL and win-rate reference)",
        )
    })?;
    let sft_file = sft_policy.dir.join("model.safetensors");
    if !sft_file.is_file() {
        return Err(PipelineError::MissingInput {
            stage: STAGE,
            needs: super::sft::STAGE,
            path: sft_file,
        });
    }
    let sft_model = Gpt::load(&sft_policy.dir, ctx.config.device()?)?;
    let mut all: Vec<(String, Vec<EvalRow>, f64)> = Vec::new();
    for policy in policies {
        let rows_file = format!("eval/{}.jsonl", policy.name);
        let extra_file = format!("eval/{}.json", policy.name);
        let model_fingerprint = fingerprint(policy);
        let cached: Option<PolicyExtra> = (!force && ctx.dir.path(&rows_file).is_file())
            .then(|| {
                ctx.dir
                    .read_json::<PolicyExtra>(&extra_file, STAGE, STAGE)
                    .ok()
            })
            .flatten()
            .filter(|extra| extra.model_fingerprint == model_fingerprint);
        let (rows, loss) = match cached {
            Some(extra) => (
                ctx.dir.read_jsonl(&rows_file, STAGE, STAGE)?,
                extra.pretrain_loss,
            ),
            None => {
                let (rows, loss) = evaluate_policy(ctx, world, base, policy, &sft_model)?;
                ctx.dir.write_jsonl(&rows_file, &rows)?;
                let extra = PolicyExtra {
                    pretrain_loss: loss,
                    model_fingerprint,
                };
                ctx.dir.write_json(&extra_file, &extra)?;
                (rows, loss)
            }
        };
        all.push((policy.name.clone(), rows, loss));
    }
    let sft_rows = all
        .iter()
        .find(|(n, _, _)| n == SFT)
        .map(|(_, r, _)| r.clone());
    let evals: Vec<PolicyEval> = all
        .iter()
        .map(|(name, rows, loss)| PolicyEval::from_rows(name, rows, sft_rows.as_deref(), *loss))
        .collect();
    let mut metrics = Metrics::new(STAGE);
    for e in &evals {
        let mut values: Vec<(String, f64)> = vec![
            (format!("{}/total", e.policy), e.total),
            (format!("{}/kl_to_sft", e.policy), e.kl_to_sft),
            (format!("{}/pretrain_loss", e.policy), e.pretrain_loss),
            (
                format!("{}/refusal_rate", e.policy),
                e.refusal_rate.unwrap_or(f64::NAN),
            ),
            (
                format!("{}/idk_rate", e.policy),
                e.idk_rate.unwrap_or(f64::NAN),
            ),
            (
                format!("{}/win_rate_vs_sft", e.policy),
                e.win_rate_vs_sft.unwrap_or(f64::NAN),
            ),
        ];
        values.extend(
            e.criteria
                .iter()
                .map(|(c, v)| (format!("{}/{c}", e.policy), *v)),
        );
        let named: Vec<(&str, f64)> = values.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        metrics.push(None, &named);
        tracing::info!(policy = %e.policy, total = e.total, kl = e.kl_to_sft, "evaluated");
    }
    ctx.dir
        .write_metrics(STAGE, metrics.lines(), &super::stage_names())?;
    ctx.dir.mark_done(STAGE, started.elapsed().as_secs_f64())?;
    Ok(evals)
}
