//! Selected-token log-probabilities and per-position entropy under temperature-scaled logits,
//! with backward: the two quantities PPO takes from a policy's logits.
//!
//! Shapes: logits (..., V) viewed as (N, V); tokens (N); logp (N) and entropy (N). For each
//! position, z = logits / temperature, `logp = log_softmax(z)[token]` and
//! `entropy = -sum softmax(z) log softmax(z)`. The backward takes both upstream gradients and
//! writes dlogits (..., V) in one fused pass per row (see [`cpu`]).

pub mod cpu;
mod cuda;

use crate::ops::cross_entropy::check_logits;
use crate::tensor::check_same_device;
use crate::{Result, Shape, Tensor, TensorError};

/// The result of [`token_logprobs`].
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogProbs {
    /// log p(token) under softmax(logits / temperature). (N)
    pub logp: Tensor,
    /// Entropy of softmax(logits / temperature), in nats. (N)
    pub entropy: Tensor,
}

/// Log-probabilities of `tokens` (N) and entropies under `logits` (..., V) / `temperature`.
///
/// ```
/// use rlhf_tensor::{Device, Tensor, ops::logprob::token_logprobs};
/// // Two equal logits: each token has probability 1/2 and the entropy is ln 2.
/// let logits = Tensor::from_vec(vec![3.0, 3.0], [1, 2], Device::Cpu)?;
/// let out = token_logprobs(&logits, &[1], 0.7)?;
/// assert!((out.logp.to_vec_f32()[0] + 2f32.ln()).abs() < 1e-6);
/// assert!((out.entropy.to_vec_f32()[0] - 2f32.ln()).abs() < 1e-6);
/// # Ok::<(), rlhf_tensor::TensorError>(())
/// ```
pub fn token_logprobs(logits: &Tensor, tokens: &[u32], temperature: f32) -> Result<TokenLogProbs> {
    let op = "token_logprobs";
    let (rows, cols) = check_logits(op, logits, tokens.len())?;
    let tokens = check_tokens(op, tokens, cols)?;
    let inv_temperature = check_temperature(op, temperature)?;
    if logits.is_cuda() {
        let (logp, entropy) = cuda::forward(logits, &tokens, temperature)?;
        return Ok(TokenLogProbs { logp, entropy });
    }
    let mut logp = Tensor::zeros([rows], logits.device())?;
    let mut entropy = Tensor::zeros([rows], logits.device())?;
    cpu::token_logprobs_rows(
        logits.as_f32_slice()?,
        cols,
        &tokens,
        inv_temperature,
        logp.as_f32_slice_mut()?,
        entropy.as_f32_slice_mut()?,
    );
    Ok(TokenLogProbs { logp, entropy })
}

/// Gradient of [`token_logprobs`] with respect to the logits (..., V), from the upstream
/// gradients of `logp` (N) and of `entropy` (N); a missing one counts as zero.
pub fn token_logprobs_backward(
    logits: &Tensor,
    tokens: &[u32],
    temperature: f32,
    d_logp: Option<&Tensor>,
    d_entropy: Option<&Tensor>,
) -> Result<Tensor> {
    let op = "token_logprobs_backward";
    let (rows, cols) = check_logits(op, logits, tokens.len())?;
    let tokens = check_tokens(op, tokens, cols)?;
    let inv_temperature = check_temperature(op, temperature)?;
    let rows_shape = Shape::new([rows]);
    for grad in [d_logp, d_entropy].into_iter().flatten() {
        grad.shape().expect_same(op, &rows_shape)?;
        check_same_device(op, logits, grad)?;
    }
    if logits.is_cuda() {
        return cuda::backward(logits, &tokens, temperature, d_logp, d_entropy);
    }
    let upstream = |grad: Option<&Tensor>| -> Result<Vec<f32>> {
        match grad {
            Some(grad) => {
                grad.shape().expect_same(op, &rows_shape)?;
                Ok(grad.as_f32_slice()?.to_vec())
            }
            None => Ok(vec![0.0; rows]),
        }
    };
    let d_logp = upstream(d_logp)?;
    let d_entropy = upstream(d_entropy)?;
    let mut dlogits = logits.zeros_like()?;
    cpu::token_logprobs_rows_backward(
        logits.as_f32_slice()?,
        cols,
        &tokens,
        inv_temperature,
        &d_logp,
        &d_entropy,
        dlogits.as_f32_slice_mut()?,
    );
    Ok(dlogits)
}

fn check_tokens(op: &'static str, tokens: &[u32], vocab: usize) -> Result<Vec<usize>> {
    tokens
        .iter()
        .enumerate()
        .map(|(position, &token)| {
            let token = token as usize;
            if token < vocab {
                Ok(token)
            } else {
                Err(TensorError::invalid(
                    op,
                    format!(
                        "token {token} at position {position} is outside the vocabulary of \
                         {vocab}"
                    ),
                ))
            }
        })
        .collect()
}

fn check_temperature(op: &'static str, temperature: f32) -> Result<f32> {
    if temperature.is_finite() && temperature > 0.0 {
        Ok(1.0 / temperature)
    } else {
        Err(TensorError::invalid(
            op,
            format!("temperature must be finite and > 0, got {temperature}"),
        ))
    }
}

#[cfg(test)]
mod tests;
