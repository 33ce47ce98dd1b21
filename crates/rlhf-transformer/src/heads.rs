//! The LM head (tied to `wte`) and the losses on it, including fused paths that never hold the
//! whole (B, T, V) logits: rows of the hidden states are taken in chunks, each chunk's logits are
//! made, reduced to what is needed (loss, selected log-probs, entropy) and dropped; the backward
//! recomputes each chunk's logits rather than storing them (llm.c's trick, applied per chunk).
//!
//! Rows are cut from the hidden states with `Tensor::rows` and results written back with
//! `Tensor::set_rows`, on the hidden states' device: on a GPU no logits or activations cross to
//! the host, only the per-position losses, log-probs and entropies (B T floats each).

use rlhf_tensor::ops::cross_entropy::{IGNORE_INDEX, cross_entropy, cross_entropy_losses};
use rlhf_tensor::ops::embedding::{TokenIds, embedding, embedding_backward};
use rlhf_tensor::ops::logprob::{token_logprobs, token_logprobs_backward};
use rlhf_tensor::ops::matmul::{MatmulSpec, matmul, matmul_backward_accumulate};
use rlhf_tensor::{DType, Tensor};

use crate::{Gpt, GptParams, ModelError, ModelInput, Result};

/// Logits per chunk of rows: at most 16 M floats (64 MB) at a time. Every chunk streams the whole
/// head (V x C) three times (logits, hidden gradient, head gradient), so chunks are kept large:
/// GPT-2 small's 256-row step in one chunk instead of four (4 M floats) was ~8% of its step.
const CHUNK_FLOATS: usize = 1 << 24;

/// The result of [`Gpt::lm_loss`].
#[derive(Debug, Clone)]
pub struct LmLoss {
    /// Mean next-token cross-entropy over the scored positions (0 when none).
    pub loss: f32,
    /// Number of scored positions.
    pub count: usize,
    /// Per-position losses (B T), 0 where not scored.
    pub losses: Vec<f32>,
    /// Gradient of `loss` with respect to the hidden states (B, T, C), when asked for.
    pub dhidden: Option<Tensor>,
}

/// Selected-token log-probs and entropies from [`Gpt::token_logprobs`].
#[derive(Debug, Clone)]
pub struct LogProbs {
    /// log p(token) under softmax(logits / temperature), (B T).
    pub logp: Vec<f32>,
    /// Entropy of softmax(logits / temperature) in nats, (B T).
    pub entropy: Vec<f32>,
}

/// Next-token targets for a batch: position t's target is token t+1 when t+1 is a real token and
/// `loss_mask` (if given, (B T)) keeps it; [`IGNORE_INDEX`] elsewhere (last position, padding,
/// prompt tokens under a response-only loss).
pub fn next_token_targets(input: &ModelInput, loss_mask: Option<&[bool]>) -> Result<Vec<i32>> {
    let n = input.batch * input.seq_len;
    if let Some(m) = loss_mask.filter(|m| m.len() != n) {
        return Err(ModelError::Input(format!(
            "loss mask has {} flags for {n} positions",
            m.len()
        )));
    }
    let t = input.seq_len;
    let mut targets = vec![IGNORE_INDEX; n];
    for row in 0..input.batch {
        for pos in 0..t.saturating_sub(1) {
            let next = row * t + pos + 1;
            let keep = input.attention_mask[next]
                && input.attention_mask[next - 1]
                && loss_mask.is_none_or(|m| m[next]);
            if keep {
                targets[next - 1] = input.tokens[next] as i32;
            }
        }
    }
    Ok(targets)
}

impl Gpt {
    /// Logits (..., V) = hidden (..., C) @ wte^T: the tied LM head on all positions.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        Ok(matmul(hidden, &self.params.wte, None, MatmulSpec::NT)?)
    }

    /// Backward of [`Gpt::logits`]: adds the head's gradient into `grads.wte` and returns the
    /// hidden states' gradient (..., C).
    pub fn logits_backward(
        &self,
        dlogits: &Tensor,
        hidden: &Tensor,
        grads: &mut GptParams,
    ) -> Result<Tensor> {
        Ok(matmul_backward_accumulate(
            dlogits,
            hidden,
            &self.params.wte,
            MatmulSpec::NT,
            &mut grads.wte,
            None,
        )?)
    }

    /// Mean cross-entropy of `targets` (B T, [`IGNORE_INDEX`] = not scored) under the LM head on
    /// `hidden` (B, T, C), chunk by chunk; with `grads`, also the head's gradient (added into
    /// `grads.wte`) and `dhidden`.
    pub fn lm_loss(
        &self,
        hidden: &Tensor,
        targets: &[i32],
        grads: Option<&mut GptParams>,
    ) -> Result<LmLoss> {
        self.lm_loss_scaled(hidden, targets, grads, 1.0)
    }

    /// [`Gpt::lm_loss`] with the gradient (not the loss) multiplied by `grad_scale`: a
    /// micro-batch's share of a token-weighted mean over an accumulated step.
    pub fn lm_loss_scaled(
        &self,
        hidden: &Tensor,
        targets: &[i32],
        grads: Option<&mut GptParams>,
        grad_scale: f32,
    ) -> Result<LmLoss> {
        let (rows, c) = self.hidden_rows(hidden, targets.len())?;
        let count = targets.iter().filter(|&&t| t != IGNORE_INDEX).count();
        if count > 0 && count < rows && hidden.dtype() == DType::F32 {
            return self.lm_loss_scored_rows(hidden, (rows, c), targets, grads, grad_scale);
        }
        let mut losses = vec![0.0f32; rows];
        // (B T, C) in the hidden states' dtype, assembled chunk by chunk on their device.
        let mut dhidden = match grads {
            Some(_) => Some(hidden.zeros_like()?.reshape([rows, c])?),
            None => None,
        };
        let mut grads = grads;
        for (r0, r1) in self.chunks(rows) {
            let chunk_targets = &targets[r0..r1];
            let chunk_count = chunk_targets.iter().filter(|&&t| t != IGNORE_INDEX).count();
            if chunk_count == 0 {
                continue;
            }
            let h_chunk = hidden.rows(r0, r1)?; // (rows, C)
            let logits = self.logits(&h_chunk)?; // (rows, V)
            match (&mut grads, &mut dhidden) {
                (Some(g), Some(dh)) => {
                    let ce = cross_entropy(&logits, chunk_targets, IGNORE_INDEX)?;
                    losses[r0..r1].copy_from_slice(&ce.losses.try_to_vec_f32()?);
                    // The chunk's mean over chunk_count becomes a share of the mean over count.
                    let factor = grad_scale * chunk_count as f32 / count as f32;
                    let dlogits = if factor == 1.0 {
                        ce.dlogits // one chunk, one micro-batch: nothing to rescale
                    } else {
                        rlhf_tensor::ops::elementwise::scale(&ce.dlogits, factor)?
                    };
                    let dh_chunk = self.logits_backward(&dlogits, &h_chunk, g)?;
                    dh.set_rows(r0, &dh_chunk)?;
                }
                _ => {
                    let l = cross_entropy_losses(&logits, chunk_targets, IGNORE_INDEX)?;
                    losses[r0..r1].copy_from_slice(&l.try_to_vec_f32()?);
                }
            }
        }
        let total: f64 = losses.iter().map(|&l| f64::from(l)).sum();
        let loss = if count == 0 {
            0.0
        } else {
            (total / count as f64) as f32
        };
        let dhidden = dhidden.map(|d| d.reshape(hidden.dims())).transpose()?;
        Ok(LmLoss {
            loss,
            count,
            losses,
            dhidden,
        })
    }

    /// [`Gpt::lm_loss_scaled`] on the scored rows only: they are gathered into a compact
    /// (count, C) block, the head runs on it, and the hidden gradient is scattered back. Rows
    /// without a target (prompt tokens under a response-only loss, padding, each sequence's last
    /// position) then cost nothing in the head's three products (~3 x 2 x C x V flops a row).
    /// `(rows, c)` is `hidden`'s shape as [`Gpt::lm_loss_scaled`] has already checked it.
    fn lm_loss_scored_rows(
        &self,
        hidden: &Tensor,
        (rows, c): (usize, usize),
        targets: &[i32],
        grads: Option<&mut GptParams>,
        grad_scale: f32,
    ) -> Result<LmLoss> {
        let scored: Vec<u32> = (0..rows)
            .filter(|&r| targets[r] != IGNORE_INDEX)
            .map(|r| r as u32)
            .collect();
        let count = scored.len();
        let ids = TokenIds::new(&scored, 1, count);
        let flat = hidden.clone().reshape([rows, c])?; // (B T, C)
        let compact = embedding(&flat, None, ids)?.reshape([count, c])?; // (count, C)
        let compact_targets: Vec<i32> = scored.iter().map(|&r| targets[r as usize]).collect();
        let inner = self.lm_loss_scaled(&compact, &compact_targets, grads, grad_scale)?;
        let mut losses = vec![0.0f32; rows];
        for (&r, &l) in scored.iter().zip(&inner.losses) {
            losses[r as usize] = l;
        }
        let dhidden = match inner.dhidden {
            Some(d) => {
                let mut full = Tensor::zeros([rows, c], hidden.device())?; // (B T, C)
                embedding_backward(&d.reshape([1, count, c])?, ids, &mut full, None)?;
                Some(full.reshape(hidden.dims())?)
            }
            None => None,
        };
        Ok(LmLoss {
            loss: inner.loss,
            count,
            losses,
            dhidden,
        })
    }

    /// Log-probabilities of `tokens` (B T) and entropies under softmax(logits / temperature) at
    /// every position of `hidden` (B, T, C), without holding the (B, T, V) logits.
    pub fn token_logprobs(
        &self,
        hidden: &Tensor,
        tokens: &[u32],
        temperature: f32,
    ) -> Result<LogProbs> {
        let (logp, entropy) = self.token_logprobs_on_device(hidden, tokens, temperature)?;
        Ok(LogProbs {
            logp: logp.try_to_vec_f32()?,
            entropy: entropy.try_to_vec_f32()?,
        })
    }

    /// [`Gpt::token_logprobs`] with the results left on the hidden states' device: log-probs and
    /// entropies, (B T) f32 each.
    pub fn token_logprobs_on_device(
        &self,
        hidden: &Tensor,
        tokens: &[u32],
        temperature: f32,
    ) -> Result<(Tensor, Tensor)> {
        let (rows, _) = self.hidden_rows(hidden, tokens.len())?;
        let device = hidden.device();
        let mut logp = Tensor::zeros([rows, 1], device)?; // (B T, 1)
        let mut entropy = Tensor::zeros([rows, 1], device)?;
        for (r0, r1) in self.chunks(rows) {
            let h_chunk = hidden.rows(r0, r1)?;
            let out = token_logprobs(&self.logits(&h_chunk)?, &tokens[r0..r1], temperature)?;
            logp.set_rows(r0, &out.logp.reshape([r1 - r0, 1])?)?;
            entropy.set_rows(r0, &out.entropy.reshape([r1 - r0, 1])?)?;
        }
        Ok((logp.reshape([rows])?, entropy.reshape([rows])?))
    }

    /// Backward of [`Gpt::token_logprobs`] from `d_logp` and `d_entropy` (B T each, either may be
    /// absent): adds into `grads.wte` and returns dhidden (B, T, C). Logits are recomputed per
    /// chunk.
    pub fn token_logprobs_backward(
        &self,
        hidden: &Tensor,
        tokens: &[u32],
        temperature: f32,
        d_logp: Option<&[f32]>,
        d_entropy: Option<&[f32]>,
        grads: &mut GptParams,
    ) -> Result<Tensor> {
        let rows = tokens.len();
        let device = hidden.device();
        let upload = |what: &str, d: Option<&[f32]>| -> Result<Option<Tensor>> {
            match d {
                Some(d) if d.len() != rows => {
                    Err(ModelError::Input(format!("{what} must hold {rows} values")))
                }
                Some(d) => Ok(Some(Tensor::from_slice(d, [rows], device)?)),
                None => Ok(None),
            }
        };
        let (dl, de) = (upload("d_logp", d_logp)?, upload("d_entropy", d_entropy)?);
        self.token_logprobs_backward_on_device(
            hidden,
            tokens,
            temperature,
            dl.as_ref(),
            de.as_ref(),
            grads,
        )
    }

    /// [`Gpt::token_logprobs_backward`] from upstream gradients already on the hidden states'
    /// device: `d_logp` and `d_entropy` (B T) f32 each, either may be absent.
    pub fn token_logprobs_backward_on_device(
        &self,
        hidden: &Tensor,
        tokens: &[u32],
        temperature: f32,
        d_logp: Option<&Tensor>,
        d_entropy: Option<&Tensor>,
        grads: &mut GptParams,
    ) -> Result<Tensor> {
        let (rows, c) = self.hidden_rows(hidden, tokens.len())?;
        for (what, d) in [("d_logp", d_logp), ("d_entropy", d_entropy)] {
            if d.is_some_and(|d| d.numel() != rows) {
                return Err(ModelError::Input(format!("{what} must hold {rows} values")));
            }
        }
        let column = |d: Option<&Tensor>| d.map(|d| d.clone().reshape([rows, 1])).transpose();
        let (d_logp, d_entropy) = (column(d_logp)?, column(d_entropy)?); // (B T, 1)
        let mut dh = hidden.zeros_like()?.reshape([rows, c])?; // (B T, C)
        for (r0, r1) in self.chunks(rows) {
            let n = r1 - r0;
            let upstream = |d: Option<&Tensor>| -> Result<Option<Tensor>> {
                Ok(d.map(|d| d.rows(r0, r1)?.reshape([n])).transpose()?)
            };
            let (dl, de) = (upstream(d_logp.as_ref())?, upstream(d_entropy.as_ref())?);
            let h_chunk = hidden.rows(r0, r1)?;
            let logits = self.logits(&h_chunk)?;
            let dlogits = token_logprobs_backward(
                &logits,
                &tokens[r0..r1],
                temperature,
                dl.as_ref(),
                de.as_ref(),
            )?;
            let dh_chunk = self.logits_backward(&dlogits, &h_chunk, grads)?;
            dh.set_rows(r0, &dh_chunk)?;
        }
        Ok(dh.reshape(hidden.dims())?)
    }

    /// Checks hidden is (..., C) with `expected_rows` rows; returns (rows, C).
    fn hidden_rows(&self, hidden: &Tensor, expected_rows: usize) -> Result<(usize, usize)> {
        let c = self.config.n_embd;
        let dims = hidden.dims();
        if dims.last() != Some(&c) || hidden.numel() != expected_rows * c {
            return Err(ModelError::Input(format!(
                "hidden states of shape {} do not hold {expected_rows} rows of width {c}",
                hidden.shape()
            )));
        }
        Ok((expected_rows, c))
    }

    /// Row ranges whose logits fit in [`CHUNK_FLOATS`], as even as possible (a ragged last chunk
    /// of a few rows would stream the whole head for little work).
    fn chunks(&self, rows: usize) -> Vec<(usize, usize)> {
        let max_rows = (CHUNK_FLOATS / self.config.vocab_size.max(1)).max(1);
        #[cfg(test)]
        let max_rows = test_chunk_rows::get().unwrap_or(max_rows);
        let count = rows.div_ceil(max_rows).max(1);
        (0..count)
            .map(|i| (i * rows / count, (i + 1) * rows / count))
            .filter(|(r0, r1)| r1 > r0)
            .collect()
    }
}

/// Tests force small chunks (per thread, so parallel tests do not interfere).
#[cfg(test)]
pub(crate) mod test_chunk_rows {
    use std::cell::Cell;

    thread_local! {
        static ROWS: Cell<Option<usize>> = const { Cell::new(None) };
    }

    /// The forced chunk size on this thread, if any.
    pub fn get() -> Option<usize> {
        ROWS.with(Cell::get)
    }

    /// Forces (or, with `None`, stops forcing) the chunk size on this thread.
    pub fn set(rows: Option<usize>) {
        ROWS.with(|r| r.set(rows));
    }
}
