//! Activation recomputation: what the forward may drop and how the backward rebuilds it, and
//! the bytes a forward keeps for the backward.
//!
//! Under [`Recompute::Activations`] each block keeps its input, LayerNorm statistics, qkv,
//! attention cache, attention output, mid residual and the MLP pre-activation `fc`, and drops
//! `ln_1(input)` (B, T, C), `ln_2(residual_mid)` (B, T, C) and `gelu(fc)` (B, T, F): 6 C of the
//! 16 C values per token a GPT-2 block keeps (F = 4 C), besides the attention cache. The
//! backward reruns the same ops on the same inputs, so the gradients are bit-identical; the
//! cost is one LayerNorm forward twice and one GELU forward per block (a few percent of a
//! step, against the matmuls).

use std::borrow::Cow;
use std::str::FromStr;

use rlhf_tensor::Tensor;
use rlhf_tensor::ops::gelu::gelu;
use rlhf_tensor::ops::layernorm::{LayerNormCache, layernorm};
use serde::{Deserialize, Serialize};

use crate::model::BlockCache;
use crate::params::BlockParams;
use crate::{Forward, ModelError, Result};

/// Which activations [`crate::Gpt::forward_with`] keeps for the backward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recompute {
    /// Keep every activation the backward reads.
    #[default]
    Off,
    /// Drop the LayerNorm and GELU outputs; the backward recomputes them.
    Activations,
}

impl Recompute {
    /// `Activations` when `on`, `Off` otherwise (what a `--recompute` flag maps to).
    pub fn from_flag(on: bool) -> Recompute {
        if on {
            Recompute::Activations
        } else {
            Recompute::Off
        }
    }
}

impl FromStr for Recompute {
    type Err = ModelError;

    fn from_str(name: &str) -> Result<Recompute> {
        match name.trim().to_ascii_lowercase().as_str() {
            "off" | "none" | "false" => Ok(Recompute::Off),
            "activations" | "on" | "true" => Ok(Recompute::Activations),
            _ => Err(ModelError::config(
                "recompute",
                format!("unknown setting `{name}`: expected off or activations"),
            )),
        }
    }
}

impl BlockCache {
    /// `ln_1(input)` (B, T, C): kept, or recomputed from the block input.
    pub(crate) fn ln_1(&self, w: &BlockParams, eps: f32) -> Result<Cow<'_, Tensor>> {
        kept_or(&self.ln_1, || {
            Ok(layernorm(&self.input, &w.ln_1_weight, &w.ln_1_bias, eps)?.0)
        })
    }

    /// `ln_2(residual_mid)` (B, T, C): kept, or recomputed from the mid residual.
    pub(crate) fn ln_2(&self, w: &BlockParams, eps: f32) -> Result<Cow<'_, Tensor>> {
        kept_or(&self.ln_2, || {
            Ok(layernorm(&self.residual_mid, &w.ln_2_weight, &w.ln_2_bias, eps)?.0)
        })
    }

    /// `gelu(fc)` (B, T, F): kept, or recomputed from the pre-activation.
    pub(crate) fn fc_gelu(&self) -> Result<Cow<'_, Tensor>> {
        kept_or(&self.fc_gelu, || Ok(gelu(&self.fc)?))
    }

    /// Bytes of every tensor this block keeps.
    fn bytes(&self) -> usize {
        let tensors = [
            Some(&self.input),
            self.ln_1.as_ref(),
            Some(&self.qkv),
            Some(&self.att_cache.att),
            self.att_cache.fused.as_ref().map(|f| &f.out),
            Some(&self.att_out),
            Some(&self.residual_mid),
            self.ln_2.as_ref(),
            Some(&self.fc),
            self.fc_gelu.as_ref(),
        ];
        let mask = self
            .att_cache
            .fused
            .as_ref()
            .and_then(|f| f.padding_mask.as_ref())
            .map_or(0, Vec::len);
        tensors
            .into_iter()
            .flatten()
            .map(tensor_bytes)
            .sum::<usize>()
            + stats_bytes(&self.ln_1_cache)
            + stats_bytes(&self.ln_2_cache)
            + mask
    }
}

impl Forward {
    /// Bytes of the activations this forward keeps for the backward (device or host memory):
    /// every block's cache, the final residual, LayerNorm statistics, hidden states and scalar
    /// heads. What activation recomputation saves is the difference between two forwards.
    pub fn activation_bytes(&self) -> usize {
        let blocks: usize = self.blocks.iter().map(BlockCache::bytes).sum();
        blocks
            + tensor_bytes(&self.final_residual)
            + stats_bytes(&self.ln_f_cache)
            + tensor_bytes(&self.hidden)
            + self.scalars.as_ref().map_or(0, tensor_bytes)
    }
}

/// The kept tensor, or the one `rebuild` makes.
fn kept_or(
    kept: &Option<Tensor>,
    rebuild: impl FnOnce() -> Result<Tensor>,
) -> Result<Cow<'_, Tensor>> {
    match kept {
        Some(t) => Ok(Cow::Borrowed(t)),
        None => Ok(Cow::Owned(rebuild()?)),
    }
}

fn tensor_bytes(t: &Tensor) -> usize {
    t.numel() * t.dtype().size_in_bytes()
}

fn stats_bytes(c: &LayerNormCache) -> usize {
    tensor_bytes(&c.mean) + tensor_bytes(&c.rstd)
}
