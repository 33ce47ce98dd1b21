//! Incremental decoding with a key/value cache: each step runs only the new positions through the
//! blocks and attends over the cached keys and values, so a token costs O(current length).
//!
//! The cache is one pair of tensors per layer on the model's device (in the weights' dtype), and
//! the cached attention is rlhf-tensor's `ops::kv_attention` (host kernels on the CPU, a CUDA
//! kernel on a GPU); the real-token mask stays on the host and goes up once per step (B x
//! capacity flags). Everything else (LayerNorms, projections, GELU, embeddings) goes through
//! the same ops as the full forward.

use rlhf_tensor::ops::elementwise::add;
use rlhf_tensor::ops::embedding::{TokenIds, embedding};
use rlhf_tensor::ops::gelu::gelu;
use rlhf_tensor::ops::kv_attention::{kv_append, kv_attention};
use rlhf_tensor::ops::layernorm::layernorm;
use rlhf_tensor::ops::matmul::{MatmulSpec, matmul};
use rlhf_tensor::{DType, Tensor};

use crate::{Gpt, ModelError, Result};

/// Cached keys and values of every layer for B sequences of up to `capacity` positions.
#[derive(Debug, Clone)]
pub struct KvCache {
    /// Per layer, keys (B, H, capacity, D) on the model's device.
    keys: Vec<Tensor>,
    /// Per layer, values (B, H, capacity, D).
    values: Vec<Tensor>,
    /// Which cached positions are real tokens, (B, capacity), on the host.
    mask: Vec<bool>,
    batch: usize,
    capacity: usize,
    len: usize,
}

impl KvCache {
    /// An empty cache for `batch` sequences of up to `capacity` positions, on the model's device
    /// in the dtype of its weights.
    pub fn new(model: &Gpt, batch: usize, capacity: usize) -> Result<KvCache> {
        let c = &model.config;
        let shape = [batch, c.n_head, capacity, c.n_embd / c.n_head];
        let dtype = model.params.wte.dtype();
        let zeros = || -> Result<Tensor> {
            let t = Tensor::zeros(shape, model.device())?;
            Ok(if dtype == DType::F32 {
                t
            } else {
                t.to_dtype(dtype)?
            })
        };
        let mut keys = Vec::with_capacity(c.n_layer);
        let mut values = Vec::with_capacity(c.n_layer);
        for _ in 0..c.n_layer {
            keys.push(zeros()?);
            values.push(zeros()?);
        }
        Ok(KvCache {
            keys,
            values,
            mask: vec![false; batch * capacity],
            batch,
            capacity,
            len: 0,
        })
    }
    /// Number of positions cached so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Forgets every position from `len` on (e.g. to re-decode from a prefix); longer `len` is
    /// an error.
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        if len > self.len {
            return Err(ModelError::Input(format!(
                "cannot truncate a KV cache of {} positions to {len}",
                self.len
            )));
        }
        for row in self.mask.chunks_mut(self.capacity) {
            row[len..self.len].fill(false);
        }
        self.len = len;
        Ok(())
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Gpt {
    /// Runs `new_len` new positions per sequence through the model, appending their keys and
    /// values to `cache`; returns the final hidden states of the new positions (B, new_len, C).
    ///
    /// `tokens`, `mask` (true = real) and `positions` are (B, new_len). Padded positions are cached
    /// but never attended to.
    pub fn forward_cached(
        &self,
        cache: &mut KvCache,
        tokens: &[u32],
        mask: &[bool],
        positions: &[u32],
    ) -> Result<Tensor> {
        let b = cache.batch;
        let n = tokens.len() / b.max(1);
        if n == 0 || tokens.len() != b * n || mask.len() != b * n || positions.len() != b * n {
            return Err(ModelError::Input(format!(
                "cached step on {b} sequences needs B x new_len tokens, mask flags and positions; got {}, {} and {}",
                tokens.len(),
                mask.len(),
                positions.len()
            )));
        }
        if cache.len + n > cache.capacity {
            return Err(ModelError::Input(format!(
                "the KV cache holds {} positions; {} cached + {n} new do not fit",
                cache.capacity, cache.len
            )));
        }
        let probe = crate::ModelInput {
            tokens: tokens.to_vec(),
            attention_mask: mask.to_vec(),
            position_ids: positions.to_vec(),
            batch: b,
            seq_len: n,
        };
        self.check_input(&probe)?;
        for row in 0..b {
            let dst = row * cache.capacity + cache.len;
            cache.mask[dst..dst + n].copy_from_slice(&mask[row * n..(row + 1) * n]);
        }
        let p = &self.params;
        let eps = self.config.layer_norm_epsilon;
        let ids = TokenIds::new(tokens, b, n).with_positions(positions);
        let mut x = embedding(&p.wte, Some(&p.wpe), ids)?; // (B, n, C)
        let mask_flags: Vec<f32> = cache.mask.iter().map(|&m| f32::from(u8::from(m))).collect();
        let mask = Tensor::from_vec(mask_flags, [b, cache.capacity], self.device())?; // (B, cap)
        let (h, start) = (self.config.n_head, cache.len);
        for (layer, w) in p.blocks.iter().enumerate() {
            let (ln_1, _) = layernorm(&x, &w.ln_1_weight, &w.ln_1_bias, eps)?;
            let qkv = matmul(
                &ln_1,
                &w.attn_c_attn_weight,
                Some(&w.attn_c_attn_bias),
                MatmulSpec::NN,
            )?;
            kv_append(
                &mut cache.keys[layer],
                &mut cache.values[layer],
                &qkv,
                h,
                start,
            )?;
            let att = kv_attention(
                &qkv,
                &cache.keys[layer],
                &cache.values[layer],
                &mask,
                h,
                start,
            )?; // (B, n, C)
            let proj = matmul(
                &att,
                &w.attn_c_proj_weight,
                Some(&w.attn_c_proj_bias),
                MatmulSpec::NN,
            )?;
            let mid = add(&x, &proj)?;
            let (ln_2, _) = layernorm(&mid, &w.ln_2_weight, &w.ln_2_bias, eps)?;
            let fc = gelu(&matmul(
                &ln_2,
                &w.mlp_c_fc_weight,
                Some(&w.mlp_c_fc_bias),
                MatmulSpec::NN,
            )?)?;
            let out = matmul(
                &fc,
                &w.mlp_c_proj_weight,
                Some(&w.mlp_c_proj_bias),
                MatmulSpec::NN,
            )?;
            x = add(&mid, &out)?;
        }
        cache.len += n;
        let (hidden, _) = layernorm(&x, &p.ln_f_weight, &p.ln_f_bias, eps)?;
        Ok(hidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GptConfig;
    use rlhf_tensor::{Device, Rng};

    #[test]
    fn truncate_rewinds_to_a_prefix() {
        let model = Gpt::new(
            GptConfig::new(9, 8, 8, 1, 2),
            0,
            &mut Rng::new(2),
            Device::Cpu,
        )
        .unwrap();
        let step = |cache: &mut KvCache, tok: u32, pos: u32| {
            model
                .forward_cached(cache, &[tok], &[true], &[pos])
                .unwrap()
                .to_vec_f32()
        };
        let mut fresh = KvCache::new(&model, 1, 8).unwrap();
        model
            .forward_cached(&mut fresh, &[1, 2, 3], &[true; 3], &[0, 1, 2])
            .unwrap();
        let mut rewound = fresh.clone();
        let want = step(&mut fresh, 5, 3);
        step(&mut rewound, 4, 3);
        rewound.truncate(3).unwrap();
        assert_eq!(rewound.len(), 3);
        assert_eq!(step(&mut rewound, 5, 3), want);
        assert!(rewound.truncate(9).is_err());
    }
}
