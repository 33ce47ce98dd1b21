//! The CUDA path of sampling: the tensor-level glue over `cuda::sampling`. Uniforms go up (N
//! f64), tokens and log-probs come back (N each): nothing V-wide crosses.

use crate::cuda::device::driver_error;
use crate::cuda::sampling::{SampleConfig, sample as sample_kernel};
use crate::cuda::storage::{DeviceElem, by_cuda_dtype, output};
use crate::{Result, Tensor};

use super::SampleSpec;

/// Per row: Some((token, logp)), or None where the row holds NaN.
pub(super) fn sample(
    logits: &Tensor,
    spec: SampleSpec,
    uniforms: &[f64],
) -> Result<Vec<Option<(usize, f32)>>> {
    by_cuda_dtype!("sample", logits.dtype(), sample_t(logits, spec, uniforms))
}

fn sample_t<T: DeviceElem>(
    logits: &Tensor,
    spec: SampleSpec,
    uniforms: &[f64],
) -> Result<Vec<Option<(usize, f32)>>> {
    let op = "sample";
    let (dev, xs) = logits.cuda_parts::<T>(op)?;
    let (rows, vocab) = (logits.shape().leading_rows(), logits.shape().last_dim());
    let cfg = SampleConfig::new(rows, vocab, spec.temperature, spec.top_k, spec.top_p)?;
    let stream = dev.stream();
    let u = stream.clone_htod(uniforms).map_err(driver_error(op))?;
    let mut tokens = dev.zeros::<i32>(rows)?;
    let mut logp = output::<f32>(&dev, rows)?;
    sample_kernel(&dev, cfg, xs, &u, &mut tokens, &mut logp)?;
    let tokens = stream.clone_dtoh(&tokens).map_err(driver_error(op))?;
    let logp = stream.clone_dtoh(&logp).map_err(driver_error(op))?;
    Ok(tokens
        .into_iter()
        .zip(logp)
        .map(|(t, l)| usize::try_from(t).ok().map(|t| (t, l)))
        .collect())
}
