//! Which CUDA attention runs: the unfused path (cuBLAS batched GEMMs + the causal softmax, the
//! probabilities (B, H, T, T) kept for the backward) or the fused flash kernels
//! (`cuda::flash_attention`, memory linear in T).
//!
//! Chosen by `RLHF_ATTENTION` = `unfused` (the default), `flash` (fused; an error for a head dim
//! or dtype without fused kernels) or `auto` (fused where supported, unfused otherwise), read at
//! each call; [`set_attention_impl`] overrides the variable for the process (tests, benches).
//! The default stays `unfused` until a GPU run has verified the fused kernels (docs/gpu.md).
//! CPU tensors always take the CPU kernels.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::{Result, TensorError};

/// The environment variable that picks the CUDA attention.
pub const ATTENTION_ENV: &str = "RLHF_ATTENTION";

/// A CUDA attention implementation choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionImpl {
    /// cuBLAS batched GEMMs + causal softmax (probabilities kept).
    Unfused,
    /// The fused flash kernels; unsupported shapes are an error.
    Flash,
    /// Fused where supported (head dim 64 or 128, f32 or bf16), unfused otherwise.
    Auto,
}

impl AttentionImpl {
    /// Parses `unfused`, `flash` or `auto`.
    pub fn parse(value: &str) -> Result<AttentionImpl> {
        match value.trim() {
            "unfused" => Ok(AttentionImpl::Unfused),
            "flash" => Ok(AttentionImpl::Flash),
            "auto" => Ok(AttentionImpl::Auto),
            other => Err(TensorError::invalid(
                "attention",
                format!("{ATTENTION_ENV}={other:?}: expected `unfused`, `flash` or `auto`"),
            )),
        }
    }

    fn code(self) -> u8 {
        match self {
            AttentionImpl::Unfused => 1,
            AttentionImpl::Flash => 2,
            AttentionImpl::Auto => 3,
        }
    }

    fn from_code(code: u8) -> Option<AttentionImpl> {
        match code {
            1 => Some(AttentionImpl::Unfused),
            2 => Some(AttentionImpl::Flash),
            3 => Some(AttentionImpl::Auto),
            _ => None,
        }
    }

    /// Whether to run the fused kernels for this head dim: `Flash` fails when there are none.
    pub fn use_flash(self, head_dim: usize) -> Result<bool> {
        let supported = crate::cuda::flash_attention::supported_head_dim(head_dim);
        match self {
            AttentionImpl::Unfused => Ok(false),
            AttentionImpl::Auto => Ok(supported),
            AttentionImpl::Flash if supported => Ok(true),
            AttentionImpl::Flash => Err(TensorError::invalid(
                "attention",
                format!(
                    "{ATTENTION_ENV}=flash but head_dim = {head_dim} has no fused kernels \
                     (64 or 128); use `auto` to fall back to the unfused path"
                ),
            )),
        }
    }
}

/// 0 = no override (read the environment).
static OVERRIDE: AtomicU8 = AtomicU8::new(0);

/// Overrides `RLHF_ATTENTION` for this process (`None` goes back to the variable).
pub fn set_attention_impl(choice: Option<AttentionImpl>) {
    OVERRIDE.store(choice.map_or(0, AttentionImpl::code), Ordering::Relaxed);
}

/// The current choice: the override, else `RLHF_ATTENTION`, else `Unfused`; a malformed value
/// is an error naming the variable.
pub fn attention_impl() -> Result<AttentionImpl> {
    if let Some(choice) = AttentionImpl::from_code(OVERRIDE.load(Ordering::Relaxed)) {
        return Ok(choice);
    }
    match std::env::var(ATTENTION_ENV) {
        Ok(value) if !value.trim().is_empty() => AttentionImpl::parse(&value),
        _ => Ok(AttentionImpl::Unfused),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decides() {
        assert_eq!(AttentionImpl::parse("flash").unwrap(), AttentionImpl::Flash);
        assert_eq!(AttentionImpl::parse(" auto ").unwrap(), AttentionImpl::Auto);
        let err = AttentionImpl::parse("fast").unwrap_err().to_string();
        assert!(
            err.contains("RLHF_ATTENTION") && err.contains("fast"),
            "{err}"
        );
        assert!(!AttentionImpl::Unfused.use_flash(64).unwrap());
        assert!(AttentionImpl::Auto.use_flash(128).unwrap());
        assert!(!AttentionImpl::Auto.use_flash(16).unwrap());
        assert!(AttentionImpl::Flash.use_flash(64).unwrap());
        assert!(AttentionImpl::Flash.use_flash(16).is_err());
        for choice in [
            AttentionImpl::Unfused,
            AttentionImpl::Flash,
            AttentionImpl::Auto,
        ] {
            assert_eq!(AttentionImpl::from_code(choice.code()), Some(choice));
        }
    }
}
