//! The parameters: one struct of named tensors per block, named as Hugging Face names them.
//!
//! The same structs hold gradients (and optimizer moments): a [`GptParams`] of zeros with the same
//! shapes, filled by the backward pass.

use rlhf_tensor::{Device, Rng, Tensor};

use crate::{GptConfig, Result};

/// One transformer block's parameters. Conv1D weights are stored [in, out], as in HF GPT-2.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockParams {
    /// `ln_1.weight` (C)
    pub ln_1_weight: Tensor,
    /// `ln_1.bias` (C)
    pub ln_1_bias: Tensor,
    /// `attn.c_attn.weight` (C, 3C)
    pub attn_c_attn_weight: Tensor,
    /// `attn.c_attn.bias` (3C)
    pub attn_c_attn_bias: Tensor,
    /// `attn.c_proj.weight` (C, C)
    pub attn_c_proj_weight: Tensor,
    /// `attn.c_proj.bias` (C)
    pub attn_c_proj_bias: Tensor,
    /// `ln_2.weight` (C)
    pub ln_2_weight: Tensor,
    /// `ln_2.bias` (C)
    pub ln_2_bias: Tensor,
    /// `mlp.c_fc.weight` (C, 4C)
    pub mlp_c_fc_weight: Tensor,
    /// `mlp.c_fc.bias` (4C)
    pub mlp_c_fc_bias: Tensor,
    /// `mlp.c_proj.weight` (4C, C)
    pub mlp_c_proj_weight: Tensor,
    /// `mlp.c_proj.bias` (C)
    pub mlp_c_proj_bias: Tensor,
}

/// The scalar heads (value, reward, ...): K linear maps C -> 1 stacked as HF's `score` layer.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarHeads {
    /// `score.weight` (K, C)
    pub weight: Tensor,
    /// `score.bias` (K)
    pub bias: Tensor,
}

/// Every parameter of the model (or a gradient of the same shapes).
#[derive(Debug, Clone, PartialEq)]
pub struct GptParams {
    /// `wte.weight` (V, C), also the LM head (tied).
    pub wte: Tensor,
    /// `wpe.weight` (P, C)
    pub wpe: Tensor,
    /// `h.{i}.*`, L blocks.
    pub blocks: Vec<BlockParams>,
    /// `ln_f.weight` (C)
    pub ln_f_weight: Tensor,
    /// `ln_f.bias` (C)
    pub ln_f_bias: Tensor,
    /// `score.*`, when the model has scalar heads.
    pub score: Option<ScalarHeads>,
}

impl BlockParams {
    /// The block's tensors with their HF names relative to `h.{i}.`.
    pub fn named(&self) -> [(&'static str, &Tensor); 12] {
        [
            ("ln_1.weight", &self.ln_1_weight),
            ("ln_1.bias", &self.ln_1_bias),
            ("attn.c_attn.weight", &self.attn_c_attn_weight),
            ("attn.c_attn.bias", &self.attn_c_attn_bias),
            ("attn.c_proj.weight", &self.attn_c_proj_weight),
            ("attn.c_proj.bias", &self.attn_c_proj_bias),
            ("ln_2.weight", &self.ln_2_weight),
            ("ln_2.bias", &self.ln_2_bias),
            ("mlp.c_fc.weight", &self.mlp_c_fc_weight),
            ("mlp.c_fc.bias", &self.mlp_c_fc_bias),
            ("mlp.c_proj.weight", &self.mlp_c_proj_weight),
            ("mlp.c_proj.bias", &self.mlp_c_proj_bias),
        ]
    }

    /// The block's tensors, mutably, in the order of [`BlockParams::named`].
    pub fn named_mut(&mut self) -> [(&'static str, &mut Tensor); 12] {
        [
            ("ln_1.weight", &mut self.ln_1_weight),
            ("ln_1.bias", &mut self.ln_1_bias),
            ("attn.c_attn.weight", &mut self.attn_c_attn_weight),
            ("attn.c_attn.bias", &mut self.attn_c_attn_bias),
            ("attn.c_proj.weight", &mut self.attn_c_proj_weight),
            ("attn.c_proj.bias", &mut self.attn_c_proj_bias),
            ("ln_2.weight", &mut self.ln_2_weight),
            ("ln_2.bias", &mut self.ln_2_bias),
            ("mlp.c_fc.weight", &mut self.mlp_c_fc_weight),
            ("mlp.c_fc.bias", &mut self.mlp_c_fc_bias),
            ("mlp.c_proj.weight", &mut self.mlp_c_proj_weight),
            ("mlp.c_proj.bias", &mut self.mlp_c_proj_bias),
        ]
    }
}

impl GptParams {
    /// GPT-2's initialisation: N(0, 0.02) weights, residual projections scaled by 1/sqrt(2L),
    /// LayerNorm scale 1, biases 0; `n_scalar_heads` heads (0 for none) with N(0, 0.02) weights.
    pub fn init(
        config: &GptConfig,
        n_scalar_heads: usize,
        rng: &mut Rng,
        device: Device,
    ) -> Result<GptParams> {
        config.validate()?;
        let (c, v, p, f) = (
            config.n_embd,
            config.vocab_size,
            config.n_positions,
            config.mlp_width(),
        );
        let std = 0.02;
        let proj_std = std / (2.0 * config.n_layer as f32).sqrt();
        let ones = |n: usize| Tensor::full([n], 1.0, device);
        let zeros = |n: usize| Tensor::zeros([n], device);
        let wte = Tensor::randn([v, c], std, rng, device)?;
        let wpe = Tensor::randn([p, c], 0.01, rng, device)?;
        let mut blocks = Vec::with_capacity(config.n_layer);
        for _ in 0..config.n_layer {
            blocks.push(BlockParams {
                ln_1_weight: ones(c)?,
                ln_1_bias: zeros(c)?,
                attn_c_attn_weight: Tensor::randn([c, 3 * c], std, rng, device)?,
                attn_c_attn_bias: zeros(3 * c)?,
                attn_c_proj_weight: Tensor::randn([c, c], proj_std, rng, device)?,
                attn_c_proj_bias: zeros(c)?,
                ln_2_weight: ones(c)?,
                ln_2_bias: zeros(c)?,
                mlp_c_fc_weight: Tensor::randn([c, f], std, rng, device)?,
                mlp_c_fc_bias: zeros(f)?,
                mlp_c_proj_weight: Tensor::randn([f, c], proj_std, rng, device)?,
                mlp_c_proj_bias: zeros(c)?,
            });
        }
        let score = if n_scalar_heads > 0 {
            Some(ScalarHeads {
                weight: Tensor::randn([n_scalar_heads, c], std, rng, device)?,
                bias: zeros(n_scalar_heads)?,
            })
        } else {
            None
        };
        Ok(GptParams {
            wte,
            wpe,
            blocks,
            ln_f_weight: ones(c)?,
            ln_f_bias: zeros(c)?,
            score,
        })
    }

    /// A tree of zeros with the same shapes (a gradient buffer).
    pub fn zeros_like(&self) -> Result<GptParams> {
        let mut out = self.clone();
        out.fill_zero();
        Ok(out)
    }

    /// Sets every tensor to zero (start of a training step).
    pub fn fill_zero(&mut self) {
        for (_, t) in self.named_mut() {
            t.fill_zero();
        }
    }

    /// A copy on `device`, every tensor in its dtype (one host <-> device copy per tensor).
    pub fn to_device(&self, device: Device) -> Result<GptParams> {
        self.map(|t| Ok(t.to_device(device)?))
    }

    /// A copy with every tensor in `dtype` (converted on the tensors' device).
    pub fn to_dtype(&self, dtype: rlhf_tensor::DType) -> Result<GptParams> {
        self.map(|t| {
            Ok(if t.dtype() == dtype {
                t.try_clone()?
            } else {
                t.to_dtype(dtype)?
            })
        })
    }

    /// The same tree with `f` applied to every tensor.
    fn map(&self, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<GptParams> {
        let blocks = self
            .blocks
            .iter()
            .map(|b| {
                Ok(BlockParams {
                    ln_1_weight: f(&b.ln_1_weight)?,
                    ln_1_bias: f(&b.ln_1_bias)?,
                    attn_c_attn_weight: f(&b.attn_c_attn_weight)?,
                    attn_c_attn_bias: f(&b.attn_c_attn_bias)?,
                    attn_c_proj_weight: f(&b.attn_c_proj_weight)?,
                    attn_c_proj_bias: f(&b.attn_c_proj_bias)?,
                    ln_2_weight: f(&b.ln_2_weight)?,
                    ln_2_bias: f(&b.ln_2_bias)?,
                    mlp_c_fc_weight: f(&b.mlp_c_fc_weight)?,
                    mlp_c_fc_bias: f(&b.mlp_c_fc_bias)?,
                    mlp_c_proj_weight: f(&b.mlp_c_proj_weight)?,
                    mlp_c_proj_bias: f(&b.mlp_c_proj_bias)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let score = self
            .score
            .as_ref()
            .map(|s| -> Result<ScalarHeads> {
                Ok(ScalarHeads {
                    weight: f(&s.weight)?,
                    bias: f(&s.bias)?,
                })
            })
            .transpose()?;
        Ok(GptParams {
            wte: f(&self.wte)?,
            wpe: f(&self.wpe)?,
            blocks,
            ln_f_weight: f(&self.ln_f_weight)?,
            ln_f_bias: f(&self.ln_f_bias)?,
            score,
        })
    }

    /// Number of scalar heads K (0 when there are none).
    pub fn n_scalar_heads(&self) -> usize {
        self.score.as_ref().map_or(0, |s| s.bias.numel())
    }

    /// Every tensor with its HF name (no `transformer.` prefix), in a fixed order.
    pub fn named(&self) -> Vec<(String, &Tensor)> {
        let mut out = vec![
            ("wte.weight".to_string(), &self.wte),
            ("wpe.weight".to_string(), &self.wpe),
        ];
        for (i, block) in self.blocks.iter().enumerate() {
            out.extend(block.named().map(|(n, t)| (format!("h.{i}.{n}"), t)));
        }
        out.push(("ln_f.weight".into(), &self.ln_f_weight));
        out.push(("ln_f.bias".into(), &self.ln_f_bias));
        if let Some(score) = &self.score {
            out.push(("score.weight".into(), &score.weight));
            out.push(("score.bias".into(), &score.bias));
        }
        out
    }

    /// Every tensor with its HF name, mutably, in the order of [`GptParams::named`].
    pub fn named_mut(&mut self) -> Vec<(String, &mut Tensor)> {
        let mut out = vec![
            ("wte.weight".to_string(), &mut self.wte),
            ("wpe.weight".to_string(), &mut self.wpe),
        ];
        for (i, block) in self.blocks.iter_mut().enumerate() {
            out.extend(block.named_mut().map(|(n, t)| (format!("h.{i}.{n}"), t)));
        }
        out.push(("ln_f.weight".into(), &mut self.ln_f_weight));
        out.push(("ln_f.bias".into(), &mut self.ln_f_bias));
        if let Some(score) = &mut self.score {
            out.push(("score.weight".into(), &mut score.weight));
            out.push(("score.bias".into(), &mut score.bias));
        }
        out
    }

    /// All tensors in [`GptParams::named`] order, for optimizers.
    pub fn tensors(&self) -> Vec<&Tensor> {
        self.named().into_iter().map(|(_, t)| t).collect()
    }

    /// All tensors mutably in [`GptParams::named`] order, for optimizers.
    pub fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        self.named_mut().into_iter().map(|(_, t)| t).collect()
    }

    /// Adds `other` (same shapes) into `self`: gradient accumulation.
    pub fn add_assign(&mut self, other: &GptParams) -> Result<()> {
        for (dst, src) in self.tensors_mut().into_iter().zip(other.tensors()) {
            dst.add_assign(src)?;
        }
        Ok(())
    }

    /// Total number of scalars.
    pub fn numel(&self) -> usize {
        self.tensors().iter().map(|t| t.numel()).sum()
    }
}
