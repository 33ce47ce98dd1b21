//! The CUDA path of the embeddings: the tensor-level glue over `cuda::embedding`. Ids are checked
//! on the host (by the caller) and uploaded as i32. Explicit position ids are a second gather
//! from wpe added onto the token rows (the fused kernel only knows positions 0..T). The backward
//! uses the deterministic scatter-add (rows grouped by id on the host), accumulating in fp32; bf16
//! gradient tables are widened for the sum and narrowed back.

use std::sync::Arc;

use half::bf16;

use crate::cuda::embedding::{
    EmbeddingShape, embedding_backward_deterministic, embedding_forward_prechecked,
};
use crate::cuda::storage::{DeviceElem, add_in_place, by_cuda_dtype, output};
use crate::cuda::{CudaDevice, CudaSlice};
use crate::tensor::check_same_dtype;
use crate::{DType, Result, Tensor, TensorError};

/// Row indices as i32, for upload.
fn ids_i32(op: &'static str, ids: &[usize]) -> Result<Vec<i32>> {
    ids.iter()
        .map(|&id| {
            i32::try_from(id)
                .map_err(|_| TensorError::invalid(op, format!("id {id} exceeds i32::MAX")))
        })
        .collect()
}

fn shape(rows: usize, cols: usize, vocab: usize) -> EmbeddingShape {
    // One "sequence" of all rows: positions are separate ids here, never r % T.
    EmbeddingShape {
        rows,
        cols,
        vocab,
        seq_len: rows.max(1),
    }
}

/// `wte[tokens] (+ wpe[positions])` -> (B, T, C); `positions` empty when there is no wpe.
pub(super) fn forward(
    wte: &Tensor,
    wpe: Option<&Tensor>,
    tokens: &[usize],
    positions: &[usize],
    out_shape: [usize; 3],
) -> Result<Tensor> {
    let mut tables = vec![wte];
    tables.extend(wpe);
    let dtype = check_same_dtype("embedding", &tables)?;
    by_cuda_dtype!(
        "embedding",
        dtype,
        forward_t(wte, wpe, tokens, positions, out_shape)
    )
}

fn gather<T: DeviceElem>(
    dev: &CudaDevice,
    table: &Tensor,
    ids: &[usize],
    out: &mut CudaSlice<T>,
) -> Result<()> {
    let op = "embedding";
    let (vocab, cols) = (table.dims()[0], table.dims()[1]);
    let ids = dev.upload_i32(&ids_i32(op, ids)?)?;
    let shape = shape(ids.len(), cols, vocab);
    embedding_forward_prechecked(dev, shape, &ids, table.cuda_slice::<T>(op)?, None, out)
}

fn forward_t<T: DeviceElem>(
    wte: &Tensor,
    wpe: Option<&Tensor>,
    tokens: &[usize],
    positions: &[usize],
    out_shape: [usize; 3],
) -> Result<Tensor> {
    let (dev, _) = wte.cuda_parts::<T>("embedding")?;
    let n = tokens.len() * wte.dims()[1];
    let mut out = output::<T>(&dev, n)?;
    gather(&dev, wte, tokens, &mut out)?;
    if let Some(wpe) = wpe {
        let mut pos = output::<T>(&dev, n)?;
        gather(&dev, wpe, positions, &mut pos)?;
        add_in_place(&dev, &mut out, &pos)?;
    }
    Tensor::from_cuda(dev, out, out_shape)
}

/// Adds the gradient into `dwte` and `dwpe` from dout (B, T, C).
pub(super) fn backward(
    dout: &Tensor,
    tokens: &[usize],
    positions: &[usize],
    dwte: &mut Tensor,
    dwpe: Option<&mut Tensor>,
) -> Result<()> {
    let op = "embedding_backward";
    let mut tensors = vec![dout, &*dwte];
    tensors.extend(dwpe.as_deref());
    let dtype = check_same_dtype(op, &tensors)?;
    by_cuda_dtype!(op, dtype, backward_t(dout, tokens, positions, dwte, dwpe))
}

fn backward_t<T: DeviceElem>(
    dout: &Tensor,
    tokens: &[usize],
    positions: &[usize],
    dwte: &mut Tensor,
    dwpe: Option<&mut Tensor>,
) -> Result<()> {
    let (dev, d) = dout.cuda_parts::<T>("embedding_backward")?;
    scatter_add(&dev, d, tokens, dwte)?;
    if let Some(dwpe) = dwpe {
        scatter_add(&dev, d, positions, dwpe)?;
    }
    Ok(())
}

/// `grad[ids[r]] += dout[r]` in a fixed order, summed in fp32.
fn scatter_add<T: DeviceElem>(
    dev: &Arc<CudaDevice>,
    dout: &CudaSlice<T>,
    ids: &[usize],
    grad: &mut Tensor,
) -> Result<()> {
    let op = "embedding_backward";
    let (vocab, cols) = (grad.dims()[0], grad.dims()[1]);
    let shape = shape(ids.len(), cols, vocab);
    let ids = ids_i32(op, ids)?;
    // An f32 table is the accumulator itself; a bf16 one is widened, summed into, narrowed.
    if grad.dtype() == DType::F32 {
        let acc = grad.cuda_slice_mut::<f32>(op)?;
        return embedding_backward_deterministic(dev, shape, &ids, dout, acc, None);
    }
    let table = grad.cuda_slice_mut::<bf16>(op)?;
    let mut acc = bf16::to_f32_buffer(dev, table)?;
    embedding_backward_deterministic(dev, shape, &ids, dout, &mut acc, None)?;
    *table = bf16::from_f32_buffer(dev, acc)?;
    Ok(())
}
