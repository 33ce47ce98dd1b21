//! Next-token sampling from rows of logits: greedy argmax, or sampling under a temperature with
//! top-k and top-p (nucleus) filtering, given one uniform number in [0, 1) per row (drawn by
//! the caller from its seeded `Rng`, so the CPU and a GPU pick the same tokens for the same
//! logits and seed).
//!
//! The algorithm (the CPU reference [`cpu::sample_row`] and kernels/sampling.cu make the same
//! decisions, because every decision is an integer comparison):
//! 1. `s_i = z_i / T`, `m = max s`, weights `w_i = exp(s_i - m)` in (0, 1] (f32).
//! 2. Masses `mass_i = floor(w_i * 2^40)` as u64: exact in f64, and sums of masses are exact
//!    whatever the summation order (a device reduction equals a host loop).
//! 3. Keys `key_i = (bits(w_i) << 32) | (u32::MAX - i)`: a total order, descending weight and
//!    ascending index on ties.
//! 4. Top-k: keep the k largest keys. Top-p, over those: with `M` their mass, keep the smallest
//!    prefix in descending key order whose mass reaches `p * M` (f64), i.e. the probabilities
//!    renormalised over the top-k set, as Hugging Face applies top-k then top-p.
//! 5. Sample: with `M'` the kept mass, `target = floor(u * M')` (f64); the token is the first
//!    index, in index order, whose running kept mass exceeds `target`.
//! 6. The reported log-prob is `s_tok - m - ln(sum w)` (the sum in f64): under softmax(z / T)
//!    before any filtering, as TRL reports it. Greedy (T = 0) takes the first index of the
//!    largest logit and reports its log-prob under softmax(z).
//!
//! On the CPU the kept set comes from a sort by key; the GPU finds the same thresholds by
//! bisection over the 64-bit keys with integer block reductions (no sort). A test checks the
//! bisection against the sort on the CPU. The only remaining difference between devices is the
//! last bit of `exp` (Rust's libm vs CUDA's `expf`), which can move a token across a boundary
//! with probability of order 1e-7 per draw.
//!
//! Shapes: logits (..., V) viewed as (N, V); uniforms (N); tokens and log-probs (N) on the host
//! (only they cross from the device).

pub mod cpu;
mod cuda;

use crate::{Result, Tensor, TensorError};

/// How a token is chosen from a row of logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleSpec {
    /// Softmax temperature; 0 means greedy (argmax).
    pub temperature: f32,
    /// Keep only the k most likely tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches p (1 = all).
    pub top_p: f32,
}

impl SampleSpec {
    /// Argmax decoding.
    pub fn greedy() -> SampleSpec {
        SampleSpec {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
        }
    }

    /// Checks the ranges: temperature finite and >= 0, top_p in (0, 1].
    pub fn validate(&self, op: &'static str) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(TensorError::invalid(
                op,
                format!(
                    "temperature must be finite and >= 0, got {}",
                    self.temperature
                ),
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(TensorError::invalid(
                op,
                format!("top_p must be in (0, 1], got {}", self.top_p),
            ));
        }
        Ok(())
    }
}

/// The tokens [`sample`] picked and their log-probs, on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampled {
    /// One token per row. (N)
    pub tokens: Vec<u32>,
    /// log p(token) under softmax(logits / T) (T = 1 when greedy), before filtering. (N)
    pub logp: Vec<f32>,
}

/// Picks one token per row of `logits` (..., V) with `uniforms` (N, each in [0, 1)); on CUDA
/// the whole choice runs on the device and only the tokens and log-probs come back.
///
/// ```
/// use rlhf_tensor::{Device, Tensor, ops::sampling::{SampleSpec, sample}};
/// let logits = Tensor::from_vec(vec![0.0, 2.0, 1.0, 5.0, 0.0, 0.0], [2, 3], Device::Cpu)?;
/// let out = sample(&logits, SampleSpec::greedy(), &[0.5, 0.5])?;
/// assert_eq!(out.tokens, vec![1, 0]);
/// let top1 = SampleSpec { temperature: 1.0, top_k: 1, top_p: 1.0 };
/// assert_eq!(sample(&logits, top1, &[0.99, 0.0])?.tokens, vec![1, 0]);
/// # Ok::<(), rlhf_tensor::TensorError>(())
/// ```
pub fn sample(logits: &Tensor, spec: SampleSpec, uniforms: &[f64]) -> Result<Sampled> {
    let op = "sample";
    spec.validate(op)?;
    let (rows, vocab) = (logits.shape().leading_rows(), logits.shape().last_dim());
    if logits.shape().rank() == 0 || vocab == 0 {
        return Err(TensorError::invalid(
            op,
            format!("logits of shape {} have no vocabulary axis", logits.shape()),
        ));
    }
    if uniforms.len() != rows {
        return Err(TensorError::invalid(
            op,
            format!("{} uniforms for {rows} rows of logits", uniforms.len()),
        ));
    }
    if let Some((row, u)) = uniforms
        .iter()
        .enumerate()
        .find(|(_, u)| !(**u >= 0.0 && **u < 1.0))
    {
        return Err(TensorError::invalid(
            op,
            format!("uniform {u} of row {row} is outside [0, 1)"),
        ));
    }
    let picked: Vec<Option<(usize, f32)>> = if logits.is_cuda() {
        cuda::sample(logits, spec, uniforms)?
    } else {
        let z = logits.as_f32_slice()?;
        z.chunks(vocab)
            .zip(uniforms)
            .map(|(row, &u)| cpu::sample_row(row, spec, u))
            .collect()
    };
    let mut out = Sampled {
        tokens: Vec::with_capacity(rows),
        logp: Vec::with_capacity(rows),
    };
    for (row, p) in picked.into_iter().enumerate() {
        let (token, logp) = p.ok_or_else(|| {
            TensorError::invalid(op, format!("row {row} of the logits holds NaN"))
        })?;
        out.tokens.push(token as u32);
        out.logp.push(logp);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
