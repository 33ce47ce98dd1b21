//! The GPT-2 decoder: forward keeping what backward needs, and the backward pass written out
//! block by block in reverse (llm.c style, no tape).
//!
//! Shapes: B batch, T sequence length, C width, H heads, F MLP width (4C), V vocabulary, K scalar
//! heads. Every op comes from `rlhf_tensor::ops`; nothing here matches on the device.

use rlhf_tensor::ops::attention::{AttentionCache, attention, attention_backward};
use rlhf_tensor::ops::elementwise::add;
use rlhf_tensor::ops::embedding::{TokenIds, embedding, embedding_backward};
use rlhf_tensor::ops::gelu::{gelu, gelu_backward};
use rlhf_tensor::ops::layernorm::{LayerNormCache, layernorm, layernorm_backward};
use rlhf_tensor::ops::matmul::{MatmulSpec, matmul, matmul_backward, matmul_backward_accumulate};
use rlhf_tensor::{Device, Rng, Tensor};

use crate::params::BlockParams;
use crate::recompute::Recompute;
use crate::{GptConfig, GptParams, ModelError, ModelInput, Result};

/// A GPT-2 model: its config and parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Gpt {
    /// The hyper-parameters.
    pub config: GptConfig,
    /// The weights.
    pub params: GptParams,
}

/// What one block's backward needs from its forward. Under activation recomputation the
/// LayerNorm outputs and the GELU output are dropped (`None`) and rebuilt in the backward from
/// `input`, `residual_mid` and `fc` (see [`crate::recompute`]).
#[derive(Debug, Clone)]
pub(crate) struct BlockCache {
    pub(crate) input: Tensor, // (B, T, C) the residual stream entering the block
    pub(crate) ln_1: Option<Tensor>, // (B, T, C)
    pub(crate) ln_1_cache: LayerNormCache,
    pub(crate) qkv: Tensor, // (B, T, 3C)
    pub(crate) att_cache: AttentionCache,
    pub(crate) att_out: Tensor, // (B, T, C) heads side by side, before c_proj
    pub(crate) residual_mid: Tensor, // (B, T, C) input + attention branch
    pub(crate) ln_2: Option<Tensor>, // (B, T, C)
    pub(crate) ln_2_cache: LayerNormCache,
    pub(crate) fc: Tensor,              // (B, T, F) before GELU
    pub(crate) fc_gelu: Option<Tensor>, // (B, T, F)
}

/// The result of [`Gpt::forward`]: final hidden states, scalar heads, and the activations that
/// [`Gpt::backward`] needs.
#[derive(Debug, Clone)]
pub struct Forward {
    /// Final hidden states after `ln_f`, (B, T, C): the LM head's and scalar heads' input.
    pub hidden: Tensor,
    /// Scalar head outputs, (B, T, K), when the model has scalar heads.
    pub scalars: Option<Tensor>,
    input: ModelInput,
    pub(crate) blocks: Vec<BlockCache>,
    pub(crate) final_residual: Tensor, // (B, T, C) before ln_f
    pub(crate) ln_f_cache: LayerNormCache,
}

impl Forward {
    /// The batch this forward ran on.
    pub fn input(&self) -> &ModelInput {
        &self.input
    }
}

impl Gpt {
    /// A freshly initialised model (GPT-2's init) with `n_scalar_heads` scalar heads.
    ///
    /// ```
    /// use rlhf_tensor::{Device, Rng};
    /// use rlhf_transformer::{Gpt, GptConfig, ModelInput};
    /// let config = GptConfig::new(16, 8, 8, 1, 2);
    /// let model = Gpt::new(config, 1, &mut Rng::new(0), Device::Cpu)?;
    /// let input = ModelInput::dense(vec![1, 2, 3], 1, 3)?;
    /// let fwd = model.forward(&input)?;
    /// assert_eq!(model.logits(&fwd.hidden)?.dims(), &[1, 3, 16]);
    /// assert_eq!(fwd.scalars.unwrap().dims(), &[1, 3, 1]);
    /// # Ok::<(), rlhf_transformer::ModelError>(())
    /// ```
    pub fn new(
        config: GptConfig,
        n_scalar_heads: usize,
        rng: &mut Rng,
        device: Device,
    ) -> Result<Gpt> {
        let params = GptParams::init(&config, n_scalar_heads, rng, device)?;
        Ok(Gpt { config, params })
    }

    /// A model from a config and parameters, checking that every shape matches the config.
    pub fn from_parts(config: GptConfig, params: GptParams) -> Result<Gpt> {
        config.validate()?;
        let expected = GptParams::init(
            &config,
            params.n_scalar_heads(),
            &mut Rng::new(0),
            params.wte.device(),
        )?;
        for ((name, want), (_, got)) in expected.named().into_iter().zip(params.named()) {
            if want.dims() != got.dims() {
                return Err(ModelError::config(
                    "params",
                    format!(
                        "`{name}` has shape {}, the config needs {}",
                        got.shape(),
                        want.shape()
                    ),
                ));
            }
        }
        if expected.named().len() != params.named().len() {
            return Err(ModelError::config(
                "n_layer",
                format!(
                    "{} blocks given, config says {}",
                    params.blocks.len(),
                    config.n_layer
                ),
            ));
        }
        Ok(Gpt { config, params })
    }

    /// A copy of the model on `device` (weights keep their dtype): how a model loaded or built
    /// on the host moves to a GPU, and back for saving or host-side evaluation.
    pub fn to_device(&self, device: Device) -> Result<Gpt> {
        Ok(Gpt {
            config: self.config.clone(),
            params: self.params.to_device(device)?,
        })
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.params.wte.device()
    }

    /// Checks ids and lengths against the config.
    pub(crate) fn check_input(&self, input: &ModelInput) -> Result<()> {
        let n = input.batch * input.seq_len;
        if input.tokens.len() != n
            || input.attention_mask.len() != n
            || input.position_ids.len() != n
        {
            return Err(ModelError::Input(format!(
                "a ({}, {}) batch needs {n} tokens, mask flags and position ids; got {}, {} and {}",
                input.batch,
                input.seq_len,
                input.tokens.len(),
                input.attention_mask.len(),
                input.position_ids.len()
            )));
        }
        if let Some(&bad) = input
            .tokens
            .iter()
            .find(|&&t| t as usize >= self.config.vocab_size)
        {
            return Err(ModelError::Input(format!(
                "token id {bad} is outside the vocabulary (size {})",
                self.config.vocab_size
            )));
        }
        if let Some(&bad) = input
            .position_ids
            .iter()
            .find(|&&p| p as usize >= self.config.n_positions)
        {
            return Err(ModelError::Input(format!(
                "position id {bad} exceeds the model's n_positions = {}",
                self.config.n_positions
            )));
        }
        Ok(())
    }

    /// Runs the model on a batch, keeping the activations for [`Gpt::backward`].
    pub fn forward(&self, input: &ModelInput) -> Result<Forward> {
        self.forward_with(input, Recompute::Off)
    }

    /// [`Gpt::forward`] with a choice of what to keep: under [`Recompute::Activations`] the
    /// LayerNorm and GELU outputs are dropped and [`Gpt::backward`] recomputes them (the same
    /// gradients, bit for bit, for 6 C fewer values per token and block).
    pub fn forward_with(&self, input: &ModelInput, recompute: Recompute) -> Result<Forward> {
        self.check_input(input)?;
        let p = &self.params;
        let (b, t) = (input.batch, input.seq_len);
        let ids = TokenIds::new(&input.tokens, b, t).with_positions(&input.position_ids);
        let mask = (!input.is_dense()).then_some(input.attention_mask.as_slice());
        let mut residual = embedding(&p.wte, Some(&p.wpe), ids)?; // (B, T, C)
        let mut blocks = Vec::with_capacity(p.blocks.len());
        for block in &p.blocks {
            let (cache, out) = self.block_forward(block, residual, mask, recompute)?;
            residual = out;
            blocks.push(cache);
        }
        let eps = self.config.layer_norm_epsilon;
        let (hidden, ln_f_cache) = layernorm(&residual, &p.ln_f_weight, &p.ln_f_bias, eps)?;
        let scalars = p
            .score
            .as_ref()
            .map(|s| matmul(&hidden, &s.weight, Some(&s.bias), MatmulSpec::NT))
            .transpose()?; // (B, T, K)
        Ok(Forward {
            hidden,
            scalars,
            input: input.clone(),
            blocks,
            final_residual: residual,
            ln_f_cache,
        })
    }

    /// One block: its cache (without the recomputable activations under `recompute`) and its
    /// output residual (B, T, C).
    fn block_forward(
        &self,
        w: &BlockParams,
        input: Tensor,
        mask: Option<&[bool]>,
        recompute: Recompute,
    ) -> Result<(BlockCache, Tensor)> {
        let eps = self.config.layer_norm_epsilon;
        let (ln_1, ln_1_cache) = layernorm(&input, &w.ln_1_weight, &w.ln_1_bias, eps)?;
        let qkv = matmul(
            &ln_1,
            &w.attn_c_attn_weight,
            Some(&w.attn_c_attn_bias),
            MatmulSpec::NN,
        )?;
        let (att_out, att_cache) = attention(&qkv, self.config.n_head, mask)?;
        let att_proj = matmul(
            &att_out,
            &w.attn_c_proj_weight,
            Some(&w.attn_c_proj_bias),
            MatmulSpec::NN,
        )?;
        let residual_mid = add(&input, &att_proj)?;
        let (ln_2, ln_2_cache) = layernorm(&residual_mid, &w.ln_2_weight, &w.ln_2_bias, eps)?;
        let fc = matmul(
            &ln_2,
            &w.mlp_c_fc_weight,
            Some(&w.mlp_c_fc_bias),
            MatmulSpec::NN,
        )?;
        let fc_gelu = gelu(&fc)?;
        let out = add(&residual_mid, &self.mlp_out(w, &fc_gelu)?)?;
        let keep = recompute == Recompute::Off;
        let cache = BlockCache {
            input,
            ln_1: keep.then_some(ln_1),
            ln_1_cache,
            qkv,
            att_cache,
            att_out,
            residual_mid,
            ln_2: keep.then_some(ln_2),
            ln_2_cache,
            fc,
            fc_gelu: keep.then_some(fc_gelu),
        };
        Ok((cache, out))
    }

    /// The MLP's output projection (B, T, F) -> (B, T, C).
    fn mlp_out(&self, w: &BlockParams, fc_gelu: &Tensor) -> Result<Tensor> {
        Ok(matmul(
            fc_gelu,
            &w.mlp_c_proj_weight,
            Some(&w.mlp_c_proj_bias),
            MatmulSpec::NN,
        )?)
    }

    /// Backpropagates from the gradients of the final hidden states `dhidden` (B, T, C) (from the
    /// LM head, see `heads`) and of the scalar heads `dscalars` (B, T, K), adding every parameter's
    /// gradient into `grads` (zero it first at the start of a step; accumulation across
    /// micro-batches is the caller's choice).
    pub fn backward(
        &self,
        fwd: &Forward,
        dhidden: Option<&Tensor>,
        dscalars: Option<&Tensor>,
        grads: &mut GptParams,
    ) -> Result<()> {
        self.backward_with_hook(fwd, dhidden, dscalars, grads, &mut |_, _| Ok(()))
    }

    /// [`Gpt::backward`], calling `block_done(i, grads)` as soon as block i's backward has
    /// finished (blocks go in reverse, L-1 down to 0): from then on block i's gradients, and
    /// `ln_f`'s and the scalar heads', are final for this pass, so data parallel can start
    /// reducing them while the backward goes on. The embeddings' are final when this returns.
    pub fn backward_with_hook(
        &self,
        fwd: &Forward,
        dhidden: Option<&Tensor>,
        dscalars: Option<&Tensor>,
        grads: &mut GptParams,
        block_done: &mut dyn FnMut(usize, &GptParams) -> Result<()>,
    ) -> Result<()> {
        let p = &self.params;
        let mut dh = match dhidden {
            Some(d) => {
                d.shape()
                    .expect_same("Gpt::backward (dhidden)", fwd.hidden.shape())?;
                d.clone()
            }
            None => fwd.hidden.zeros_like()?,
        };
        if let Some(ds) = dscalars {
            let (score, gscore) = match (&p.score, &mut grads.score) {
                (Some(s), Some(g)) => (s, g),
                _ => {
                    return Err(ModelError::Input(
                        "scalar gradients given to a model without scalar heads".into(),
                    ));
                }
            };
            let g = matmul_backward(ds, &fwd.hidden, &score.weight, true, MatmulSpec::NT)?;
            dh.add_assign(&g.da)?;
            gscore.weight.add_assign(&g.db)?;
            if let Some(dbias) = &g.dbias {
                gscore.bias.add_assign(dbias)?;
            }
        }
        let ln_f = layernorm_backward(&dh, &fwd.final_residual, &p.ln_f_weight, &fwd.ln_f_cache)?;
        grads.ln_f_weight.add_assign(&ln_f.dgamma)?;
        grads.ln_f_bias.add_assign(&ln_f.dbeta)?;
        let mut dresidual = ln_f.dx; // (B, T, C)
        let eps = self.config.layer_norm_epsilon;
        for i in (0..p.blocks.len()).rev() {
            let cache = fwd.blocks.get(i).ok_or_else(|| {
                ModelError::Input("the forward ran a model with fewer blocks".into())
            })?;
            dresidual = block_backward(&p.blocks[i], cache, dresidual, &mut grads.blocks[i], eps)?;
            block_done(i, grads)?;
        }
        let input = &fwd.input;
        let ids = TokenIds::new(&input.tokens, input.batch, input.seq_len)
            .with_positions(&input.position_ids);
        embedding_backward(&dresidual, ids, &mut grads.wte, Some(&mut grads.wpe))?;
        Ok(())
    }
}

/// One block's backward: from the gradient of its output residual (B, T, C) to the gradient of its
/// input, adding parameter gradients into `g`.
fn block_backward(
    w: &BlockParams,
    c: &BlockCache,
    dout: Tensor,
    g: &mut BlockParams,
    eps: f32,
) -> Result<Tensor> {
    // MLP branch: out = residual_mid + c_proj(gelu(c_fc(ln_2(residual_mid)))).
    let fc_gelu = c.fc_gelu()?; // (B, T, F), recomputed when dropped
    // Weight and bias gradients are summed straight into `g` (GEMM with beta = 1).
    let dfc_gelu = matmul_backward_accumulate(
        &dout,
        &fc_gelu,
        &w.mlp_c_proj_weight,
        MatmulSpec::NN,
        &mut g.mlp_c_proj_weight,
        Some(&mut g.mlp_c_proj_bias),
    )?;
    drop(fc_gelu);
    let dfc = gelu_backward(&dfc_gelu, &c.fc)?; // (B, T, F)
    let ln_2_out = c.ln_2(w, eps)?;
    let dln_2_out = matmul_backward_accumulate(
        &dfc,
        &ln_2_out,
        &w.mlp_c_fc_weight,
        MatmulSpec::NN,
        &mut g.mlp_c_fc_weight,
        Some(&mut g.mlp_c_fc_bias),
    )?;
    drop(ln_2_out);
    let ln_2 = layernorm_backward(&dln_2_out, &c.residual_mid, &w.ln_2_weight, &c.ln_2_cache)?;
    accumulate(
        &mut g.ln_2_weight,
        &mut g.ln_2_bias,
        &ln_2.dgamma,
        Some(&ln_2.dbeta),
    )?;
    let mut dmid = dout;
    dmid.add_assign(&ln_2.dx)?; // (B, T, C)
    // Attention branch: residual_mid = input + c_proj(attention(c_attn(ln_1(input)))).
    let datt_out = matmul_backward_accumulate(
        &dmid,
        &c.att_out,
        &w.attn_c_proj_weight,
        MatmulSpec::NN,
        &mut g.attn_c_proj_weight,
        Some(&mut g.attn_c_proj_bias),
    )?;
    let dqkv = attention_backward(&datt_out, &c.qkv, &c.att_cache)?; // (B, T, 3C)
    let ln_1_out = c.ln_1(w, eps)?;
    let dln_1_out = matmul_backward_accumulate(
        &dqkv,
        &ln_1_out,
        &w.attn_c_attn_weight,
        MatmulSpec::NN,
        &mut g.attn_c_attn_weight,
        Some(&mut g.attn_c_attn_bias),
    )?;
    drop(ln_1_out);
    let ln_1 = layernorm_backward(&dln_1_out, &c.input, &w.ln_1_weight, &c.ln_1_cache)?;
    accumulate(
        &mut g.ln_1_weight,
        &mut g.ln_1_bias,
        &ln_1.dgamma,
        Some(&ln_1.dbeta),
    )?;
    dmid.add_assign(&ln_1.dx)?;
    Ok(dmid)
}

/// Adds a weight gradient and an optional bias gradient into their buffers.
fn accumulate(gw: &mut Tensor, gb: &mut Tensor, dw: &Tensor, db: Option<&Tensor>) -> Result<()> {
    gw.add_assign(dw)?;
    if let Some(db) = db {
        gb.add_assign(db)?;
    }
    Ok(())
}
