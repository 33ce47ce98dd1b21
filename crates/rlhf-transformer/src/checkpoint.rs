//! Hugging Face GPT-2 checkpoint directories (DESIGN.md decision 6): `config.json` with
//! `GPT2Config` keys and `model.safetensors` with HF names in Conv1D `[in, out]` layout.
//!
//! Loading accepts names with or without the `transformer.` prefix, ignores the `attn.bias` /
//! `attn.masked_bias` buffers, accepts a `lm_head.weight` only when it equals `wte` (the head is
//! tied), reads scalar heads from `score.weight` (K, C) and optional `score.bias` (K), and converts
//! f16/bf16 to f32. Any other tensor, a missing one, or a wrong shape is an error naming it.
//! Saving writes names without a prefix (as the original `gpt2` checkpoint does) and every file
//! atomically.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use rlhf_tensor::{Device, Rng, Tensor};
use serde::{Deserialize, Serialize};

use crate::files::{load_safetensors, save_safetensors, write_atomic};
use crate::{Gpt, GptConfig, GptParams, ModelError, Result};

/// The weights file in a checkpoint directory.
pub const MODEL_FILE: &str = "model.safetensors";
/// The config file in a checkpoint directory.
pub const CONFIG_FILE: &str = "config.json";

/// `config.json` as written: the model's keys plus what `transformers` needs to pick GPT-2.
#[derive(Serialize, Deserialize)]
struct HfConfig {
    #[serde(flatten)]
    config: GptConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model_type: Option<String>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    tie_word_embeddings: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    num_labels: Option<usize>,
    /// Written as the EOS id (GPT-2 uses one token for both), so `transformers` does not fall
    /// back to 50256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bos_token_id: Option<u32>,
}

/// Reads `config.json` from a checkpoint directory.
pub fn load_config(dir: &Path) -> Result<GptConfig> {
    let path = dir.join(CONFIG_FILE);
    let text = fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
    let hf: HfConfig = serde_json::from_str(&text).map_err(|source| ModelError::Json {
        path: path.clone(),
        source,
    })?;
    if let Some(kind) = hf.model_type.as_deref().filter(|k| *k != "gpt2") {
        return Err(ModelError::config(
            "model_type",
            format!("{}: `{kind}`, expected `gpt2`", path.display()),
        ));
    }
    if hf.tie_word_embeddings == Some(false) {
        return Err(ModelError::config(
            "tie_word_embeddings",
            format!(
                "{}: false; this model ties the LM head to wte",
                path.display()
            ),
        ));
    }
    hf.config.validate()?;
    Ok(hf.config)
}

/// Loads a GPT-2 checkpoint directory onto `device`.
pub fn load(dir: &Path, device: Device) -> Result<Gpt> {
    let config = load_config(dir)?;
    let path = dir.join(MODEL_FILE);
    let mut found: BTreeMap<String, Tensor> = BTreeMap::new();
    for (name, tensor) in load_safetensors(&path, device)? {
        let short = name
            .strip_prefix("transformer.")
            .unwrap_or(&name)
            .to_string();
        if short.ends_with(".attn.bias") || short.ends_with(".attn.masked_bias") {
            continue; // causal-mask buffers, not parameters
        }
        if found.insert(short.clone(), tensor).is_some() {
            return Err(bad(
                &path,
                &name,
                "appears both with and without the `transformer.` prefix",
            ));
        }
    }
    let n_heads = match found.get("score.weight") {
        Some(w) if w.dims().len() == 2 => w.dims()[0],
        Some(w) => {
            return Err(bad(
                &path,
                "score.weight",
                &format!("shape {}, expected (K, n_embd)", w.shape()),
            ));
        }
        None => 0,
    };
    // A template with the right shapes, filled tensor by tensor.
    let mut params = GptParams::init(&config, n_heads, &mut Rng::new(0), device)?;
    if n_heads > 0 && !found.contains_key("score.bias") {
        // HF's GPT2ForSequenceClassification has no bias: treat it as zero.
        found.insert("score.bias".into(), Tensor::zeros([n_heads], device)?);
    }
    for (name, slot) in params.named_mut() {
        let tensor = found
            .remove(&name)
            .ok_or_else(|| bad(&path, &name, "missing"))?;
        if tensor.dims() != slot.dims() {
            return Err(bad(
                &path,
                &name,
                &format!(
                    "shape {}, the config needs {}",
                    tensor.shape(),
                    slot.shape()
                ),
            ));
        }
        *slot = tensor;
    }
    if found
        .remove("lm_head.weight")
        .is_some_and(|head| head != params.wte)
    {
        return Err(bad(
            &path,
            "lm_head.weight",
            "differs from wte.weight; only tied LM heads are supported",
        ));
    }
    if let Some(name) = found.keys().next() {
        return Err(bad(&path, name, "unexpected tensor for a GPT-2 model"));
    }
    Gpt::from_parts(config, params)
}

/// Saves a model as a GPT-2 checkpoint directory (created if needed), every file atomically.
pub fn save(model: &Gpt, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let k = model.params.n_scalar_heads();
    let hf = HfConfig {
        config: model.config.clone(),
        model_type: Some("gpt2".into()),
        architectures: Some(vec![if k > 0 {
            "GPT2ForSequenceClassification".into()
        } else {
            "GPT2LMHeadModel".into()
        }]),
        tie_word_embeddings: Some(true),
        num_labels: (k > 0).then_some(k),
        bos_token_id: model.config.eos_token_id,
    };
    let json = serde_json::to_vec_pretty(&hf).map_err(|source| ModelError::Json {
        path: dir.join(CONFIG_FILE),
        source,
    })?;
    save_safetensors(&dir.join(MODEL_FILE), &model.params.named())?;
    write_atomic(&dir.join(CONFIG_FILE), &json)
}

fn bad(path: &Path, tensor: &str, reason: &str) -> ModelError {
    ModelError::Checkpoint {
        path: path.into(),
        tensor: tensor.into(),
        reason: reason.into(),
    }
}

impl Gpt {
    /// Loads a Hugging Face GPT-2 directory (`config.json` + `model.safetensors`).
    ///
    /// ```no_run
    /// let model = rlhf_transformer::Gpt::load("runs/sft".as_ref(), rlhf_tensor::Device::Cpu)?;
    /// # Ok::<(), rlhf_transformer::ModelError>(())
    /// ```
    pub fn load(dir: &Path, device: Device) -> Result<Gpt> {
        load(dir, device)
    }

    /// Saves the model as a Hugging Face GPT-2 directory.
    pub fn save(&self, dir: &Path) -> Result<()> {
        save(self, dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::save_safetensors;

    fn tmpdir(tag: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("rlhf-transformer-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn model(k: usize) -> Gpt {
        Gpt::new(
            GptConfig::new(13, 8, 8, 2, 2),
            k,
            &mut Rng::new(3),
            Device::Cpu,
        )
        .unwrap()
    }

    #[test]
    fn save_then_load_round_trips_exactly() {
        let dir = tmpdir("roundtrip");
        let m = model(2);
        m.save(&dir).unwrap();
        let back = Gpt::load(&dir, Device::Cpu).unwrap();
        assert_eq!(back, m);
        assert!(
            fs::read_dir(&dir).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp"))
        );
    }

    #[test]
    fn prefixed_names_buffers_and_half_precision_load() {
        let dir = tmpdir("prefixed");
        let m = model(0);
        m.save(&dir).unwrap();
        let mut named: Vec<(String, Tensor)> = m
            .params
            .named()
            .into_iter()
            .map(|(n, t)| {
                (
                    format!("transformer.{n}"),
                    t.to_dtype(rlhf_tensor::DType::BF16).unwrap(),
                )
            })
            .collect();
        named.push((
            "transformer.h.0.attn.bias".into(),
            Tensor::zeros([1, 1, 8, 8], Device::Cpu).unwrap(),
        ));
        named.push(("lm_head.weight".into(), named[0].1.clone()));
        // Write bf16 through the raw API.
        let bytes: Vec<Vec<u8>> = named.iter().map(|(_, t)| t.to_le_bytes()).collect();
        let views: Vec<_> = named
            .iter()
            .zip(&bytes)
            .map(|((n, t), b)| {
                let dt = if n.ends_with(".attn.bias") {
                    safetensors::Dtype::F32
                } else {
                    safetensors::Dtype::BF16
                };
                (
                    n.clone(),
                    safetensors::tensor::TensorView::new(dt, t.dims().to_vec(), b).unwrap(),
                )
            })
            .collect();
        fs::write(
            dir.join(MODEL_FILE),
            safetensors::serialize(views, None).unwrap(),
        )
        .unwrap();
        let back = Gpt::load(&dir, Device::Cpu).unwrap();
        let a = back.params.wte.to_vec_f32();
        let b = m.params.wte.to_vec_f32();
        assert!(
            a.iter()
                .zip(&b)
                .all(|(x, y)| (x - y).abs() <= 1e-2 * y.abs() + 1e-6)
        );
    }

    #[test]
    fn wrong_shape_missing_and_unknown_tensors_name_the_tensor() {
        let dir = tmpdir("errors");
        let m = model(0);
        m.save(&dir).unwrap();
        let path = dir.join(MODEL_FILE);
        let mut named = m.params.named();
        let wrong = Tensor::zeros([8, 7], Device::Cpu).unwrap();
        let idx = named
            .iter()
            .position(|(n, _)| n == "h.1.attn.c_proj.weight")
            .unwrap();
        named[idx].1 = &wrong;
        save_safetensors(&path, &named).unwrap();
        let err = Gpt::load(&dir, Device::Cpu).unwrap_err().to_string();
        assert!(
            err.contains("h.1.attn.c_proj.weight") && err.contains("shape"),
            "{err}"
        );

        let mut named = m.params.named();
        named.retain(|(n, _)| n != "ln_f.bias");
        save_safetensors(&path, &named).unwrap();
        let err = Gpt::load(&dir, Device::Cpu).unwrap_err().to_string();
        assert!(
            err.contains("ln_f.bias") && err.contains("missing"),
            "{err}"
        );

        let mut named = m.params.named();
        let extra = Tensor::zeros([2], Device::Cpu).unwrap();
        named.push(("h.0.mystery".into(), &extra));
        save_safetensors(&path, &named).unwrap();
        let err = Gpt::load(&dir, Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("h.0.mystery"), "{err}");
    }

    #[test]
    fn unsupported_dtype_and_untied_head_name_the_tensor() {
        let dir = tmpdir("dtype");
        let m = model(0);
        m.save(&dir).unwrap();
        let mut views = Vec::new();
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = m
            .params
            .named()
            .into_iter()
            .map(|(n, t)| (n, t.dims().to_vec(), t.to_le_bytes()))
            .collect();
        let ids = vec![0u8; 8 * 13 * 8];
        for (n, dims, b) in &bytes {
            if n == "wte.weight" {
                views.push((
                    n.clone(),
                    safetensors::tensor::TensorView::new(
                        safetensors::Dtype::I64,
                        dims.clone(),
                        &ids,
                    )
                    .unwrap(),
                ));
            } else {
                views.push((
                    n.clone(),
                    safetensors::tensor::TensorView::new(safetensors::Dtype::F32, dims.clone(), b)
                        .unwrap(),
                ));
            }
        }
        fs::write(
            dir.join(MODEL_FILE),
            safetensors::serialize(views, None).unwrap(),
        )
        .unwrap();
        let err = Gpt::load(&dir, Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("wte.weight") && err.contains("I64"), "{err}");

        let mut named = m.params.named();
        let other = Tensor::zeros([13, 8], Device::Cpu).unwrap();
        named.push(("lm_head.weight".into(), &other));
        save_safetensors(&dir.join(MODEL_FILE), &named).unwrap();
        let err = Gpt::load(&dir, Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("lm_head.weight"), "{err}");
    }

    #[test]
    fn bad_config_names_the_field() {
        let dir = tmpdir("config");
        fs::write(
            dir.join(CONFIG_FILE),
            r#"{"vocab_size": 10, "n_positions": 4, "n_embd": 6, "n_layer": 1, "n_head": 4}"#,
        )
        .unwrap();
        let err = load_config(&dir).unwrap_err().to_string();
        assert!(err.contains("n_embd"), "{err}");
        fs::write(
            dir.join(CONFIG_FILE),
            "{\"vocab_size\": 10,\n \"n_positions\": }",
        )
        .unwrap();
        let err = load_config(&dir).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }
}
