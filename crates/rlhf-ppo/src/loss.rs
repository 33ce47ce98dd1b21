//! The PPO loss of one micro-batch through the models, and its backward: clipped policy loss
//! (on log-probs from the fused path), vf_coef times the clipped value loss, the entropy bonus,
//! and the PPO-ptx term on a pretraining batch. Gradients are added, times `grad_scale` (the
//! micro-batch's share of an accumulated step), into the caller's buffers.

use rlhf_tensor::Tensor;
use rlhf_tensor::ops::cross_entropy::IGNORE_INDEX;
use rlhf_transformer::{Example, Forward, Gpt, GptParams, lm_batch};

use crate::rollout::{Advantages, Rollout};
use crate::sequences::{response_rows, response_values, scatter_response_rows, scatter_values};
use crate::train_error::TrainResult;
use crate::{PolicyLoss, PpoConfig, ValueLoss};

/// One micro-batch's losses.
#[derive(Debug, Clone)]
pub struct MicroLoss {
    /// The clipped policy loss and its statistics.
    pub policy: PolicyLoss<f32>,
    /// The clipped value loss and its clip fraction.
    pub value: ValueLoss<f32>,
    /// Mean per-token entropy of the policy on the kept tokens.
    pub entropy_mean: f32,
    /// policy + vf_coef value - entropy_coef entropy: what the gradient descends.
    pub total: f64,
}

impl MicroLoss {
    /// The losses with their total policy + vf_coef value + entropy_loss (entropy_loss =
    /// -entropy_coef entropy_mean).
    pub(crate) fn new(
        policy: PolicyLoss<f32>,
        value: ValueLoss<f32>,
        entropy_mean: f32,
        entropy_loss: f32,
        vf_coef: f64,
    ) -> MicroLoss {
        let total =
            f64::from(policy.loss) + vf_coef * f64::from(value.loss) + f64::from(entropy_loss);
        MicroLoss {
            policy,
            value,
            entropy_mean,
            total,
        }
    }
}

/// Gradient buffers of the models being trained.
pub struct Grads<'a> {
    /// The policy's (with the value head when the critic is shared).
    pub policy: &'a mut GptParams,
    /// The separate critic's, when there is one.
    pub critic: Option<&'a mut GptParams>,
}

/// Picks `rows` out of (B, R) row-major `data`.
pub(crate) fn take_rows(data: &[f32], rows: &[usize], width: usize) -> Vec<f32> {
    rows.iter()
        .flat_map(|&r| data[r * width..(r + 1) * width].iter().copied())
        .collect()
}

/// Forward and backward of the PPO loss on rollout rows `rows`; `critic` is `None` when the
/// value head sits on the policy. Models on a GPU take the device path
/// ([`crate::loss_device`]: per-token values and gradients stay there); on the CPU the losses
/// run as host code over the per-token values.
#[allow(clippy::too_many_arguments)]
pub fn ppo_micro_batch(
    policy: &Gpt,
    critic: Option<&Gpt>,
    rollout: &Rollout,
    advantages: &Advantages,
    rows: &[usize],
    config: &PpoConfig,
    grad_scale: f32,
    grads: Grads<'_>,
) -> TrainResult<MicroLoss> {
    let value_model = critic.unwrap_or(policy);
    let one_value_head = value_model.params.n_scalar_heads() == 1;
    if policy.device() != rlhf_tensor::Device::Cpu && one_value_head {
        return crate::loss_device::ppo_micro_batch_on_device(
            policy, critic, rollout, advantages, rows, config, grad_scale, grads,
        );
    }
    let seqs = &rollout.sequences;
    let (p, r) = (seqs.context_len, seqs.response_len);
    let temperature = config.temperature as f32;
    let input = seqs.input(rows)?;
    let tokens = seqs.response_tokens(rows); // (b R)
    let mask = take_rows(&rollout.mask, rows, r);
    let old_logp = take_rows(&rollout.logp, rows, r);
    let old_values = take_rows(&rollout.values, rows, r);
    let adv = take_rows(&advantages.advantages, rows, r);
    let returns = take_rows(&advantages.returns, rows, r);

    let fwd = policy.forward(&input)?;
    let hidden = response_rows(&fwd.hidden, p, r)?; // (b R, C)
    let lp = policy.token_logprobs(&hidden, &tokens, temperature)?;
    let pl = crate::policy_loss(&lp.logp, &old_logp, &adv, &mask, config.cliprange)?;
    let ent = crate::entropy_bonus(&lp.entropy, &mask, config.entropy_coef)?;

    let critic_fwd = critic.map(|c| c.forward(&input)).transpose()?;
    let scalars = match &critic_fwd {
        Some(f) => f.scalars.as_ref(),
        None => fwd.scalars.as_ref(),
    }
    .ok_or_else(|| crate::TrainError::Input("the critic has no scalar (value) head".into()))?;
    let values = response_values(scalars, p, r)?;
    let vl = crate::value_loss(
        &values,
        &old_values,
        &returns,
        &mask,
        config.cliprange_value,
    )?;

    let scale = |g: &[f32], by: f32| -> Vec<f32> { g.iter().map(|x| x * by).collect() };
    let d_logp = scale(&pl.grad_logp, grad_scale);
    let d_entropy = (config.entropy_coef > 0.0).then(|| scale(&ent.grad, grad_scale));
    let dh_rows = policy.token_logprobs_backward(
        &hidden,
        &tokens,
        temperature,
        Some(&d_logp),
        d_entropy.as_deref(),
        grads.policy,
    )?;
    let dhidden = scatter_response_rows(&dh_rows, &fwd.hidden, p, r)?;
    let d_values = scale(&vl.grad_values, config.vf_coef as f32 * grad_scale);
    let dscalars = scatter_values(&d_values, scalars, p, r)?;
    backward_models(
        policy,
        critic,
        &fwd,
        critic_fwd.as_ref(),
        &dhidden,
        &dscalars,
        grads,
    )?;
    Ok(MicroLoss::new(pl, vl, ent.mean, ent.loss, config.vf_coef))
}

/// The policy's and critic's backward from dhidden (b, T, C) and the value head's gradient
/// dscalars (b, T, K): into the policy when the critic is shared, else into each model.
pub(crate) fn backward_models(
    policy: &Gpt,
    critic: Option<&Gpt>,
    fwd: &Forward,
    critic_fwd: Option<&Forward>,
    dhidden: &Tensor,
    dscalars: &Tensor,
    grads: Grads<'_>,
) -> TrainResult<()> {
    match (critic, critic_fwd, grads.critic) {
        (Some(c), Some(cf), Some(cg)) => {
            policy.backward(fwd, Some(dhidden), None, grads.policy)?;
            c.backward(cf, None, Some(dscalars), cg)?;
        }
        (None, _, _) => policy.backward(fwd, Some(dhidden), Some(dscalars), grads.policy)?,
        _ => {
            return Err(crate::TrainError::Input(
                "a separate critic needs its gradient buffer".into(),
            ));
        }
    }
    Ok(())
}

/// Forward and backward of the PPO-ptx term -ptx_coef * mean log p(pretraining tokens) on
/// `examples` (cut to `config.ptx_seq_len` tokens); returns the pretraining LM loss
/// (-mean log p, the `ptx_loss` metric) and the term added to the objective.
pub fn ptx_micro_batch(
    policy: &Gpt,
    examples: &[&Example],
    config: &PpoConfig,
    pad: u32,
    grad_scale: f32,
    grads: &mut GptParams,
) -> TrainResult<(f64, f64)> {
    let batch = lm_batch(examples, config.ptx_seq_len, pad)?;
    let fwd = policy.forward(&batch.input)?;
    let tokens: Vec<u32> = batch
        .targets
        .iter()
        .map(|&t| if t == IGNORE_INDEX { 0 } else { t as u32 })
        .collect();
    let mask: Vec<f32> = batch
        .targets
        .iter()
        .map(|&t| if t == IGNORE_INDEX { 0.0 } else { 1.0 })
        .collect();
    let lp = policy.token_logprobs(&fwd.hidden, &tokens, 1.0)?;
    let term = crate::ptx_term(&lp.logp, &mask, config.ptx_coef)?;
    let d_logp: Vec<f32> = term.grad.iter().map(|g| g * grad_scale).collect();
    let dhidden =
        policy.token_logprobs_backward(&fwd.hidden, &tokens, 1.0, Some(&d_logp), None, grads)?;
    policy.backward(&fwd, Some(&dhidden), None, grads)?;
    Ok((-f64::from(term.mean), f64::from(term.loss)))
}
