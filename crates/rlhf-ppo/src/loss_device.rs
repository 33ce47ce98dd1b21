//! The PPO loss of one micro-batch with its per-token values on the models' device: the policy's
//! log-probs and entropies, the critic's values, the clipped losses and every gradient stay
//! there, and only the losses' statistics (a few floats) come back. The rollout's arrays for the
//! micro-batch's rows (mask, old log-probs and values, advantages, returns: 5 x b x R floats)
//! go up once. [`crate::loss::ppo_micro_batch`] takes this path for models on a GPU; the host
//! path keeps the CPU's numbers exactly as they were.
//!
//! The arithmetic is the same per token (`rlhf_tensor::ops::ppo`, checked against the f64
//! definitions); sums run in another order, so the two paths agree to f32 rounding.

use rlhf_tensor::ops::reduce::{masked_mean, masked_mean_backward};
use rlhf_tensor::{Shape, Tensor};
use rlhf_transformer::Gpt;

use crate::loss::{Grads, MicroLoss, backward_models, take_rows};
use crate::rollout::{Advantages, Rollout};
use crate::sequences::{response_rows, scatter_response_rows};
use crate::train_error::TrainResult;
use crate::{PpoConfig, TrainError};

/// [`crate::loss::ppo_micro_batch`] on the device (any device: on the CPU it is the test of
/// this path against the host one).
#[allow(clippy::too_many_arguments)]
pub fn ppo_micro_batch_on_device(
    policy: &Gpt,
    critic: Option<&Gpt>,
    rollout: &Rollout,
    advantages: &Advantages,
    rows: &[usize],
    config: &PpoConfig,
    grad_scale: f32,
    grads: Grads<'_>,
) -> TrainResult<MicroLoss> {
    let seqs = &rollout.sequences;
    let (p, r, b) = (seqs.context_len, seqs.response_len, rows.len());
    let device = policy.device();
    let upload = |data: &[f32]| -> TrainResult<Tensor> {
        Ok(Tensor::from_vec(take_rows(data, rows, r), [b, r], device)?)
    };
    let mask = upload(&rollout.mask)?; // (b, R)
    let old_logp = upload(&rollout.logp)?;
    let old_values = upload(&rollout.values)?;
    let adv = upload(&advantages.advantages)?;
    let returns = upload(&advantages.returns)?;
    let input = seqs.input(rows)?;
    let tokens = seqs.response_tokens(rows); // (b R)
    let temperature = config.temperature as f32;

    let fwd = policy.forward(&input)?;
    let hidden = response_rows(&fwd.hidden, p, r)?; // (b R, C)
    let (logp, entropy) = policy.token_logprobs_on_device(&hidden, &tokens, temperature)?;
    let (logp, entropy) = (logp.reshape([b, r])?, entropy.reshape([b, r])?);
    let pl = crate::tensors::policy_loss(&logp, &old_logp, &adv, &mask, config.cliprange)?;

    let critic_fwd = critic.map(|c| c.forward(&input)).transpose()?;
    let scalars = match &critic_fwd {
        Some(f) => f.scalars.as_ref(),
        None => fwd.scalars.as_ref(),
    }
    .ok_or_else(|| TrainError::Input("the critic has no scalar (value) head".into()))?;
    let values = response_rows(scalars, p, r)?.reshape([b, r])?; // one value head: (b, R)
    let vl = crate::tensors::value_loss(
        &values,
        &old_values,
        &returns,
        &mask,
        config.cliprange_value,
    )?;

    // Entropy bonus -coef * masked mean(entropy): its gradient is -coef mask / kept.
    let entropy_mean = masked_mean(&entropy, &mask)?.to_scalar()?;
    let coef = config.entropy_coef as f32;
    let d_entropy = (config.entropy_coef > 0.0)
        .then(|| {
            let dout = Tensor::from_vec(vec![-coef * grad_scale], Shape::scalar(), device)?;
            masked_mean_backward(&dout, &entropy, &mask)
        })
        .transpose()?;

    let d_logp = rlhf_tensor::ops::elementwise::scale(&pl.grad, grad_scale)?;
    let dh_rows = policy.token_logprobs_backward_on_device(
        &hidden,
        &tokens,
        temperature,
        Some(&d_logp),
        d_entropy.as_ref(),
        grads.policy,
    )?;
    let dhidden = scatter_response_rows(&dh_rows, &fwd.hidden, p, r)?;
    let value_scale = config.vf_coef as f32 * grad_scale;
    let d_values = rlhf_tensor::ops::elementwise::scale(&vl.grad, value_scale)?;
    let dscalars = scatter_response_rows(&d_values.reshape([b * r, 1])?, scalars, p, r)?;
    backward_models(
        policy,
        critic,
        &fwd,
        critic_fwd.as_ref(),
        &dhidden,
        &dscalars,
        grads,
    )?;

    let entropy_loss = -coef * entropy_mean;
    Ok(MicroLoss::new(
        pl.stats,
        vl.stats,
        entropy_mean,
        entropy_loss,
        config.vf_coef,
    ))
}
