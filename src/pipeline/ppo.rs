//! Stage 7: PPO from the SFT model against the reward model, with a KL penalty to SFT, twice:
//! `ppo` with the PPO-ptx pretraining term (`[ppo] ptx_coef`) and `ppo_no_ptx` without it, so
//! the evaluation can show the alignment tax and what ptx does to it. The critic starts from
//! the reward model's trunk and head; PPO's own checkpoints (`ppo/NAME/`) make an interrupted
//! run resume exactly.

use std::path::PathBuf;

use rlhf_data::tokenizer::Tokenizer;
use rlhf_data::world::World;
use rlhf_ppo::{CriticKind, PpoConfig, PpoEvent, PpoPrompt, PpoSetup, train_ppo};
use rlhf_reward::ModelReward;
use rlhf_tensor::Tensor;
use rlhf_transformer::{Gpt, ScalarHeads};
use serde_json::Value;

use super::context::RunContext;
use super::error::{PipelineError, Result};
use super::pretrain::Pretrained;
use super::reward_model::RewardStage;
use super::rundir::Metrics;
use super::sft::Sft;

/// The stage's name (marker, `--halt-after`, metrics) for the policy with PPO-ptx.
pub const STAGE: &str = "ppo";
/// The policy trained without the ptx term (its own marker and metrics).
pub const NO_PTX: &str = "ppo_no_ptx";
/// Rows per reward-model forward.
const REWARD_BATCH: usize = 32;
/// PPO checkpoints every this many steps.
const SAVE_STEPS: u64 = 5;

/// The rlhf-ppo settings from the run config's `[ppo]` section, with `ptx_coef`.
pub fn ppo_config(ctx: &RunContext, ptx_coef: f64) -> Result<PpoConfig> {
    let p = &ctx.config.ppo;
    if !p.batch_size.is_multiple_of(p.num_mini_batches) {
        return Err(PipelineError::config(
            "ppo.batch_size",
            format!(
                "{} prompts per rollout do not split into ppo.num_mini_batches = {} equal minibatches",
                p.batch_size, p.num_mini_batches
            ),
        ));
    }
    Ok(PpoConfig {
        seed: ctx.config.seed,
        learning_rate: f64::from(p.lr),
        per_device_train_batch_size: p.batch_size / p.num_mini_batches,
        gradient_accumulation_steps: 1,
        num_mini_batches: p.num_mini_batches,
        num_ppo_epochs: p.num_ppo_epochs,
        total_episodes: Some(p.steps as usize * p.batch_size),
        response_length: p.response_length,
        temperature: f64::from(p.temperature),
        missing_eos_penalty: Some(p.missing_eos_penalty),
        kl_coef: p.kl_coef,
        adap_kl_ctrl: p.target_kl > 0.0,
        target: if p.target_kl > 0.0 { p.target_kl } else { 6.0 },
        cliprange: p.cliprange,
        cliprange_value: p.cliprange_value,
        vf_coef: p.vf_coef,
        gamma: p.gamma,
        lam: p.lam,
        ptx_coef,
        ptx_seq_len: ctx.config.pretrain.seq_len,
        critic: CriticKind::Separate,
        save_steps: SAVE_STEPS,
        ..PpoConfig::default()
    })
}

/// The critic's starting point: the reward model's trunk with only its reward head (row 0 of
/// the `score` heads; the rule heads are dropped), so values start at the normalised reward.
fn critic_init(rm: &RewardStage) -> Result<Gpt> {
    let mut model = rm.model.gpt.clone();
    if let Some(heads) = model.params.score.take() {
        let c = model.config.n_embd;
        let weight = heads.weight.to_vec_f32();
        let bias = heads.bias.to_vec_f32();
        let device = heads.weight.device();
        model.params.score = Some(ScalarHeads {
            weight: Tensor::from_vec(weight[..c].to_vec(), [1, c], device)?,
            bias: Tensor::from_vec(bias[..1].to_vec(), [1], device)?,
        });
    }
    Ok(model)
}

/// Trains (or, when done, finds) the PPO policy `name` (`ppo` or `ppo_no_ptx`) with PPO-ptx
/// coefficient `ptx_coef`; returns its checkpoint directory (`models/NAME`).
pub fn ppo(
    ctx: &RunContext,
    world: &World,
    base: &Pretrained,
    sft_model: &Sft,
    rm: &RewardStage,
    name: &'static str,
    ptx_coef: f64,
) -> Result<PathBuf> {
    let model_dir = ctx.dir.model_dir(name);
    if ctx.dir.is_done(name) {
        return Ok(model_dir);
    }
    let started = std::time::Instant::now();
    let config = ppo_config(ctx, ptx_coef)?;
    let tok = &base.tokenizer;
    let policy = Gpt::load(&sft_model.model_dir, ctx.config.device()?)?;
    let prompts: Vec<PpoPrompt> = super::world::distinct(&world.rl_prompts)
        .iter()
        .map(|p| {
            let text = p.render();
            PpoPrompt {
                tokens: tok.encode(&text),
                text,
            }
        })
        .collect();
    // PPO-ptx mixes in the pretraining distribution: the training windows only, never the
    // held-out ones the alignment tax is measured on.
    let ptx_data = if ptx_coef > 0.0 {
        base.train_windows.clone()
    } else {
        Vec::new()
    };
    let decode_tok = tok.clone();
    let setup = PpoSetup {
        config: config.clone(),
        policy,
        reference: None,
        critic_init: Some(critic_init(rm)?),
        reward: Box::new(ModelReward::new(rm.model.clone(), REWARD_BATCH)),
        decode: Box::new(move |ids: &[u32]| {
            decode_tok
                .decode_skip_special(ids)
                .map_err(|e| e.to_string())
        }),
        prompts: prompts.clone(),
        ptx_data,
        eos_token_id: tok.eos_id(),
        pad_token_id: tok.pad_id(),
    };
    let bar = ctx
        .progress
        .bar(name, config.total_steps(prompts.len()), "steps");
    let mut metrics = Metrics::new(name);
    let run_dir = ctx.dir.path(&format!("ppo/{name}"));
    let outcome = train_ppo(setup, Some(&run_dir), true, &mut |event| match event {
        PpoEvent::Step(record) => {
            bar.set_position(record.step);
            bar.set_message(format!(
                "score {:.3} kl {:.3} {}",
                record.metrics.scores,
                record.metrics.kl,
                record.timing.split()
            ));
        }
        PpoEvent::Skipped { step, reason } => {
            tracing::warn!(step, reason, "PPO skipped an update");
        }
        PpoEvent::Saved(_) => {}
    })?;
    bar.finish_and_clear();
    // The whole history (resumed steps included) goes to the metrics, TRL names kept.
    for record in &outcome.metrics {
        let line = serde_json::to_value(record).unwrap_or(Value::Null);
        let mut values: Vec<(String, f64)> = Vec::new();
        if let Value::Object(map) = line {
            for (key, value) in map {
                match value {
                    Value::Object(inner) => values.extend(
                        inner
                            .into_iter()
                            .filter_map(|(k, v)| v.as_f64().map(|x| (format!("{key}/{k}"), x))),
                    ),
                    other if key != "step" => {
                        if let Some(x) = other.as_f64() {
                            values.push((key, x));
                        }
                    }
                    _ => {}
                }
            }
        }
        let pairs: Vec<(&str, f64)> = values.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        metrics.push(Some(record.step), &pairs);
    }
    if let Some(last) = outcome.metrics.last() {
        tracing::info!(
            policy = name,
            score = last.metrics.scores,
            kl = last.metrics.kl,
            "PPO done"
        );
    }
    outcome.policy.save(&model_dir)?;
    tok.save(model_dir.join("tokenizer.json"))?;
    ctx.dir
        .write_metrics(name, metrics.lines(), &super::stage_names())?;
    ctx.dir.mark_done(name, started.elapsed().as_secs_f64())?;
    ctx.check_halt(name, None)?;
    Ok(model_dir)
}
