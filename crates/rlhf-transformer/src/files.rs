//! File plumbing shared by checkpoints and trainer state: atomic writes (temporary name, fsync,
//! rename, directory fsync) and safetensors reading/writing of named f32 tensors.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use rlhf_tensor::{DType, Device, Tensor};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::{ModelError, Result};

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one, never half
/// of one: a temporary file beside it is written, synced and renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .ok_or_else(|| ModelError::io(path, std::io::Error::other("not a file path")))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        Ok(())
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(ModelError::io(&tmp, e));
    }
    fs::rename(&tmp, path).map_err(|e| ModelError::io(path, e))?;
    // Persist the rename itself; some filesystems refuse to open a directory, which is harmless.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes named tensors as an f32 safetensors file (metadata `format: pt`, as PyTorch expects).
pub fn save_safetensors(path: &Path, tensors: &[(String, &Tensor)]) -> Result<()> {
    let mut views = Vec::with_capacity(tensors.len());
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, t)| t.to_dtype(DType::F32).map(|t| t.to_le_bytes()))
        .collect::<std::result::Result<_, _>>()?;
    for ((name, t), data) in tensors.iter().zip(&bytes) {
        let view = TensorView::new(Dtype::F32, t.dims().to_vec(), data).map_err(|e| {
            ModelError::Checkpoint {
                path: path.into(),
                tensor: name.clone(),
                reason: e.to_string(),
            }
        })?;
        views.push((name.clone(), view));
    }
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    let buffer =
        safetensors::serialize(views, Some(metadata)).map_err(|e| ModelError::Checkpoint {
            path: path.into(),
            tensor: "(header)".into(),
            reason: e.to_string(),
        })?;
    write_atomic(path, &buffer)
}

/// Reads every tensor of a safetensors file, converting f16 and bf16 to f32; any other dtype is
/// an error naming the tensor.
pub fn load_safetensors(path: &Path, device: Device) -> Result<Vec<(String, Tensor)>> {
    let buffer = fs::read(path).map_err(|e| ModelError::io(path, e))?;
    let file = SafeTensors::deserialize(&buffer).map_err(|e| ModelError::Checkpoint {
        path: path.into(),
        tensor: "(header)".into(),
        reason: format!("not a valid safetensors file: {e}"),
    })?;
    let mut out = Vec::with_capacity(file.len());
    for (name, view) in file.iter() {
        let bad = |reason: String| ModelError::Checkpoint {
            path: path.into(),
            tensor: name.to_string(),
            reason,
        };
        let dtype = match view.dtype() {
            Dtype::F32 => DType::F32,
            Dtype::F16 => DType::F16,
            Dtype::BF16 => DType::BF16,
            other => return Err(bad(format!("dtype {other:?}; expected F32, F16 or BF16"))),
        };
        let tensor = Tensor::from_le_bytes(view.data(), dtype, view.shape().to_vec(), device)
            .and_then(|t| t.to_dtype(DType::F32))
            .map_err(|e| bad(e.to_string()))?;
        out.push((name.to_string(), tensor));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
