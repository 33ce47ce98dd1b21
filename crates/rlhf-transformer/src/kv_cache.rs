//! Incremental decoding with a key/value cache: each step runs only the new positions through the
//! blocks and attends over the cached keys and values, so a token costs O(current length).
//!
//! rlhf-tensor's attention op takes the whole (B, T, 3C) sequence, so the cached attention lives
//! here, on host slices (`Tensor::as_f32_slice`), parallel over the batch. Everything else
//! (LayerNorms, projections, GELU, embeddings) goes through the rlhf-tensor ops.

use rayon::prelude::*;
use rlhf_tensor::Tensor;
use rlhf_tensor::ops::elementwise::add;
use rlhf_tensor::ops::embedding::{TokenIds, embedding};
use rlhf_tensor::ops::gelu::gelu;
use rlhf_tensor::ops::layernorm::layernorm;
use rlhf_tensor::ops::matmul::{MatmulSpec, matmul};

use crate::{Gpt, ModelError, Result};

/// Cached keys and values of every layer for B sequences of up to `capacity` positions.
#[derive(Debug, Clone)]
pub struct KvCache {
    /// Per layer, keys (B, H, capacity, D).
    keys: Vec<Vec<f32>>,
    /// Per layer, values (B, H, capacity, D).
    values: Vec<Vec<f32>>,
    /// Which cached positions are real tokens, (B, capacity).
    mask: Vec<bool>,
    batch: usize,
    capacity: usize,
    len: usize,
}

impl KvCache {
    /// An empty cache for `batch` sequences of up to `capacity` positions.
    pub fn new(model: &Gpt, batch: usize, capacity: usize) -> KvCache {
        let c = &model.config;
        let size = batch * c.n_embd * capacity;
        KvCache {
            keys: vec![vec![0.0; size]; c.n_layer],
            values: vec![vec![0.0; size]; c.n_layer],
            mask: vec![false; batch * capacity],
            batch,
            capacity,
            len: 0,
        }
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
        for (layer, w) in p.blocks.iter().enumerate() {
            let (ln_1, _) = layernorm(&x, &w.ln_1_weight, &w.ln_1_bias, eps)?;
            let qkv = matmul(
                &ln_1,
                &w.attn_c_attn_weight,
                Some(&w.attn_c_attn_bias),
                MatmulSpec::NN,
            )?;
            let att = self.cached_attention(cache, layer, &qkv, n)?; // (B, n, C)
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

    /// Appends the new keys/values of `qkv` (B, n, 3C) to layer `layer`'s cache and attends each
    /// new query over every cached real position at or before it; (B, n, C).
    fn cached_attention(
        &self,
        cache: &mut KvCache,
        layer: usize,
        qkv: &Tensor,
        n: usize,
    ) -> Result<Tensor> {
        let (c, h) = (self.config.n_embd, self.config.n_head);
        let d = c / h;
        let (cap, start) = (cache.capacity, cache.len);
        let qkv_data = qkv.as_f32_slice()?;
        let keys = &mut cache.keys[layer];
        let values = &mut cache.values[layer];
        // Write the new keys and values: (B, n, 3C) -> (B, H, cap, D) at positions start..start+n.
        keys.par_chunks_mut(h * cap * d)
            .zip(values.par_chunks_mut(h * cap * d))
            .enumerate()
            .for_each(|(row, (k_row, v_row))| {
                for i in 0..n {
                    let src = &qkv_data[(row * n + i) * 3 * c..(row * n + i + 1) * 3 * c];
                    for head in 0..h {
                        let dst = (head * cap + start + i) * d;
                        k_row[dst..dst + d].copy_from_slice(&src[c + head * d..c + (head + 1) * d]);
                        v_row[dst..dst + d]
                            .copy_from_slice(&src[2 * c + head * d..2 * c + (head + 1) * d]);
                    }
                }
            });
        let (keys, values, mask) = (&*keys, &*values, &cache.mask);
        let scale = 1.0 / (d as f32).sqrt();
        let mut out = vec![0.0f32; cache.batch * n * c];
        out.par_chunks_mut(n * c)
            .enumerate()
            .for_each(|(row, out_row)| {
                let row_mask = &mask[row * cap..row * cap + start + n];
                let mut scores = vec![0.0f32; start + n];
                for i in 0..n {
                    let q_all = &qkv_data[(row * n + i) * 3 * c..(row * n + i) * 3 * c + c];
                    let visible = start + i + 1; // causal: keys 0..=start+i
                    for head in 0..h {
                        let q = &q_all[head * d..(head + 1) * d];
                        let k_head = &keys[(row * h + head) * cap * d..];
                        let v_head = &values[(row * h + head) * cap * d..];
                        let mut max = f32::NEG_INFINITY;
                        for (j, s) in scores[..visible].iter_mut().enumerate() {
                            *s = if row_mask[j] {
                                let k = &k_head[j * d..(j + 1) * d];
                                dot(q, k) * scale
                            } else {
                                f32::NEG_INFINITY
                            };
                            max = max.max(*s);
                        }
                        let o = &mut out_row[i * c + head * d..i * c + (head + 1) * d];
                        if max == f32::NEG_INFINITY {
                            continue; // nothing visible (a padded query before any real token): 0
                        }
                        let mut total = 0.0f32;
                        for s in &mut scores[..visible] {
                            *s = (*s - max).exp();
                            total += *s;
                        }
                        for (j, &s) in scores[..visible].iter().enumerate() {
                            if s > 0.0 {
                                let wgt = s / total;
                                let v = &v_head[j * d..(j + 1) * d];
                                o.iter_mut().zip(v).for_each(|(o, v)| *o += wgt * v);
                            }
                        }
                    }
                }
            });
        Ok(Tensor::from_vec(out, [cache.batch, n, c], qkv.device())?)
    }
}

/// Dot product with eight independent partial sums, so the compiler can vectorise it.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
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
        let mut fresh = KvCache::new(&model, 1, 8);
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
