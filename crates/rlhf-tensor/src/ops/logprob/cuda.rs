//! The CUDA path of the selected-token log-probs and entropies: the tensor-level glue over
//! `cuda::logprob`. Tokens are checked on the host (by the caller) and uploaded as i32; logp and
//! entropy are f32 (N). The tensor-level backward keeps no cache, so it runs the forward again
//! for the row statistics (logsumexp, entropy) the fused backward kernel reads.

use cudarc::driver::CudaSlice;

use crate::cuda::CudaDevice;
use crate::cuda::logprob::{LogprobConfig, logprob_entropy_backward, logprob_entropy_forward};
use crate::cuda::storage::{DeviceElem, by_cuda_dtype, output};
use crate::{DType, Result, Tensor, TensorError};

/// No token is ever ignored here (tokens are in [0, V)).
const NO_IGNORE: i32 = i32::MIN;

/// Row outputs of the forward kernel, all (N) f32.
struct RowStats {
    logp: CudaSlice<f32>,
    entropy: CudaSlice<f32>,
    lse: CudaSlice<f32>,
}

fn tokens_i32(op: &'static str, tokens: &[usize]) -> Result<Vec<i32>> {
    tokens
        .iter()
        .map(|&t| {
            i32::try_from(t).map_err(|_| TensorError::invalid(op, format!("token {t} > i32::MAX")))
        })
        .collect()
}

fn run_forward<T: DeviceElem>(
    op: &'static str,
    dev: &CudaDevice,
    logits: &CudaSlice<T>,
    cfg: LogprobConfig,
    targets: &CudaSlice<i32>,
    rows: usize,
) -> Result<RowStats> {
    let mut stats = RowStats {
        logp: output::<f32>(dev, rows)?,
        entropy: output::<f32>(dev, rows)?,
        lse: output::<f32>(dev, rows)?,
    };
    logprob_entropy_forward(
        dev,
        cfg,
        logits,
        targets,
        &mut stats.logp,
        &mut stats.entropy,
        &mut stats.lse,
    )
    .map_err(|e| match e {
        TensorError::InvalidArgument { reason, .. } => TensorError::invalid(op, reason),
        other => other,
    })?;
    Ok(stats)
}

/// (logp, entropy), each (N) f32 on the device.
pub(super) fn forward(
    logits: &Tensor,
    tokens: &[usize],
    temperature: f32,
) -> Result<(Tensor, Tensor)> {
    by_cuda_dtype!(
        "token_logprobs",
        logits.dtype(),
        forward_t(logits, tokens, temperature)
    )
}

fn forward_t<T: DeviceElem>(
    logits: &Tensor,
    tokens: &[usize],
    temperature: f32,
) -> Result<(Tensor, Tensor)> {
    let op = "token_logprobs";
    let (dev, xs) = logits.cuda_parts::<T>(op)?;
    let (rows, vocab) = (logits.shape().leading_rows(), logits.shape().last_dim());
    let cfg = LogprobConfig::new(rows, vocab, NO_IGNORE, temperature)?;
    let targets = dev.upload_i32(&tokens_i32(op, tokens)?)?;
    let stats = run_forward(op, &dev, xs, cfg, &targets, rows)?;
    Ok((
        Tensor::from_cuda(dev.clone(), stats.logp, [rows])?,
        Tensor::from_cuda(dev, stats.entropy, [rows])?,
    ))
}

/// dlogits (..., V) in the logits' dtype from the upstream gradients (N) of logp and entropy.
pub(super) fn backward(
    logits: &Tensor,
    tokens: &[usize],
    temperature: f32,
    d_logp: Option<&Tensor>,
    d_entropy: Option<&Tensor>,
) -> Result<Tensor> {
    by_cuda_dtype!(
        "token_logprobs_backward",
        logits.dtype(),
        backward_t(logits, tokens, temperature, d_logp, d_entropy)
    )
}

/// An upstream gradient as an f32 device buffer (widened from bf16 when needed).
fn upstream(op: &'static str, grad: Option<&Tensor>) -> Result<Option<Tensor>> {
    grad.map(|g| {
        if g.dtype() == DType::F32 {
            g.try_clone()
        } else {
            g.to_dtype(DType::F32)
        }
    })
    .transpose()
    .map_err(|e| match e {
        TensorError::InvalidArgument { reason, .. } => TensorError::invalid(op, reason),
        other => other,
    })
}

fn backward_t<T: DeviceElem>(
    logits: &Tensor,
    tokens: &[usize],
    temperature: f32,
    d_logp: Option<&Tensor>,
    d_entropy: Option<&Tensor>,
) -> Result<Tensor> {
    let op = "token_logprobs_backward";
    let (dev, xs) = logits.cuda_parts::<T>(op)?;
    let (rows, vocab) = (logits.shape().leading_rows(), logits.shape().last_dim());
    let cfg = LogprobConfig::new(rows, vocab, NO_IGNORE, temperature)?;
    let targets = dev.upload_i32(&tokens_i32(op, tokens)?)?;
    let stats = run_forward(op, &dev, xs, cfg, &targets, rows)?;
    let (d_logp, d_entropy) = (upstream(op, d_logp)?, upstream(op, d_entropy)?);
    let d_logp = d_logp
        .as_ref()
        .map(|t| t.cuda_slice::<f32>(op))
        .transpose()?;
    let d_entropy = d_entropy
        .as_ref()
        .map(|t| t.cuda_slice::<f32>(op))
        .transpose()?;
    let mut dlogits = output::<T>(&dev, xs.len())?;
    logprob_entropy_backward(
        &dev,
        cfg,
        xs,
        &targets,
        &stats.lse,
        &stats.entropy,
        d_logp,
        d_entropy,
        &mut dlogits,
    )?;
    Tensor::from_cuda(dev, dlogits, logits.shape().clone())
}
