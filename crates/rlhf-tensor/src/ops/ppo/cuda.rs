//! The CUDA path of the PPO token terms: f32 tensors into the kernels of kernels/ppo.cu.

use crate::cuda::ppo::{self as kernels, POLICY_STATS, TokenInputs, VALUE_STATS};
use crate::cuda::storage::output;
use crate::{Result, Tensor};

/// The four inputs' f32 device buffers.
fn inputs<'a>(op: &'static str, x: [&'a Tensor; 4]) -> Result<TokenInputs<'a>> {
    Ok(TokenInputs {
        new: x[0].cuda_slice::<f32>(op)?,
        old: x[1].cuda_slice::<f32>(op)?,
        target: x[2].cuda_slice::<f32>(op)?,
        mask: x[3].cuda_slice::<f32>(op)?,
    })
}

/// (stats (n, 6), raw grad (n)) of the policy loss.
pub(super) fn policy_tokens(x: [&Tensor; 4], low: f32, high: f32) -> Result<(Tensor, Tensor)> {
    let op = "ppo::policy_loss";
    let (dev, _) = x[0].cuda_parts::<f32>(op)?;
    let n = x[0].numel();
    let mut stats = output::<f32>(&dev, n * POLICY_STATS)?;
    let mut grad = output::<f32>(&dev, n)?;
    kernels::policy_tokens(&dev, inputs(op, x)?, low, high, &mut stats, &mut grad)?;
    Ok((
        Tensor::from_cuda(dev.clone(), stats, [n, POLICY_STATS])?,
        Tensor::from_cuda(dev, grad, x[0].shape().clone())?,
    ))
}

/// (stats (n, 4), raw grad (n)) of the value loss.
pub(super) fn value_tokens(x: [&Tensor; 4], eps: f32) -> Result<(Tensor, Tensor)> {
    let op = "ppo::value_loss";
    let (dev, _) = x[0].cuda_parts::<f32>(op)?;
    let n = x[0].numel();
    let mut stats = output::<f32>(&dev, n * VALUE_STATS)?;
    let mut grad = output::<f32>(&dev, n)?;
    kernels::value_tokens(&dev, inputs(op, x)?, eps, &mut stats, &mut grad)?;
    Ok((
        Tensor::from_cuda(dev.clone(), stats, [n, VALUE_STATS])?,
        Tensor::from_cuda(dev, grad, x[0].shape().clone())?,
    ))
}

/// (kl (x's shape), bad-mask flags (n)).
pub(super) fn kl_tokens(
    logp: &Tensor,
    ref_logp: &Tensor,
    mask: &Tensor,
    estimator: i32,
    clamp: f32,
) -> Result<(Tensor, Tensor)> {
    let op = "ppo::per_token_kl";
    let (dev, lp) = logp.cuda_parts::<f32>(op)?;
    let n = logp.numel();
    let mut kl = output::<f32>(&dev, n)?;
    let mut bad = output::<f32>(&dev, n)?;
    kernels::kl_tokens(
        &dev,
        lp,
        ref_logp.cuda_slice::<f32>(op)?,
        mask.cuda_slice::<f32>(op)?,
        estimator,
        clamp,
        &mut kl,
        &mut bad,
    )?;
    Ok((
        Tensor::from_cuda(dev.clone(), kl, logp.shape().clone())?,
        Tensor::from_cuda(dev, bad, [n])?,
    ))
}
