//! The model's hyper-parameters, serialised with Hugging Face's `GPT2Config` keys.

use serde::{Deserialize, Serialize};

use crate::{ModelError, Result};

/// GPT-2 hyper-parameters (the keys of `config.json` in an HF GPT-2 directory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GptConfig {
    /// Vocabulary size V.
    pub vocab_size: usize,
    /// Maximum sequence length (rows of the position table).
    pub n_positions: usize,
    /// Model width C.
    pub n_embd: usize,
    /// Number of blocks L.
    pub n_layer: usize,
    /// Number of attention heads H (C must be a multiple of H).
    pub n_head: usize,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f32,
    /// The MLP activation; only `gelu_new` (tanh GELU, GPT-2's) is implemented.
    #[serde(default = "default_activation")]
    pub activation_function: String,
    /// Width of the MLP hidden layer; `None` means 4 C (GPT-2's `n_inner`).
    #[serde(default)]
    pub n_inner: Option<usize>,
    /// End-of-sequence token id, when the tokenizer has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token_id: Option<u32>,
    /// Padding token id, when the tokenizer has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_token_id: Option<u32>,
}

fn default_eps() -> f32 {
    1e-5
}

fn default_activation() -> String {
    "gelu_new".into()
}

impl GptConfig {
    /// GPT-2 small (124M): V 50257, 1024 positions, C 768, 12 layers, 12 heads.
    pub fn gpt2_small() -> GptConfig {
        GptConfig::new(50257, 1024, 768, 12, 12)
    }

    /// A config with GPT-2 defaults for everything but the sizes.
    pub fn new(
        vocab_size: usize,
        n_positions: usize,
        n_embd: usize,
        n_layer: usize,
        n_head: usize,
    ) -> GptConfig {
        GptConfig {
            vocab_size,
            n_positions,
            n_embd,
            n_layer,
            n_head,
            layer_norm_epsilon: default_eps(),
            activation_function: default_activation(),
            n_inner: None,
            eos_token_id: None,
            pad_token_id: None,
        }
    }

    /// Width of the MLP hidden layer (4 C unless `n_inner` says otherwise).
    pub fn mlp_width(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    /// Per-head width D = C / H.
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head.max(1)
    }

    /// Checks that every size is positive and consistent.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("n_positions", self.n_positions),
            ("n_embd", self.n_embd),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("n_inner", self.mlp_width()),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(ModelError::config(field, "must be > 0"));
            }
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(ModelError::config(
                "n_embd",
                format!(
                    "{} is not a multiple of n_head = {}",
                    self.n_embd, self.n_head
                ),
            ));
        }
        if !(self.layer_norm_epsilon.is_finite() && self.layer_norm_epsilon >= 0.0) {
            return Err(ModelError::config(
                "layer_norm_epsilon",
                format!("must be finite and >= 0, got {}", self.layer_norm_epsilon),
            ));
        }
        if !matches!(
            self.activation_function.as_str(),
            "gelu_new" | "gelu_pytorch_tanh"
        ) {
            return Err(ModelError::config(
                "activation_function",
                format!(
                    "`{}` is not supported; expected `gelu_new` (the tanh GELU)",
                    self.activation_function
                ),
            ));
        }
        Ok(())
    }
}
