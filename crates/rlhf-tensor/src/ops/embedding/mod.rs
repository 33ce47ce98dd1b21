//! Token and position embeddings: `out (B, T, C) = wte[tokens] (+ wpe[positions])`, with a
//! scatter-add backward into the tables' gradients.
//!
//! Ids are host slices (`u32`, row-major (B, T)), bundled in [`TokenIds`]. Positions default to
//! 0..T in every sequence (right padding); left-padded batches pass explicit position ids (e.g.
//! the running count of real tokens, as Hugging Face does) so that each sequence's first real
//! token sits at position 0.

pub mod cpu;
mod cuda;

use crate::tensor::check_same_device;
use crate::{Result, Shape, Tensor, TensorError};

/// The ids of one (B, T) batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenIds<'a> {
    /// Token ids, (B, T) row-major.
    pub tokens: &'a [u32],
    /// Position ids, (B, T) row-major; `None` means 0..T in every sequence.
    pub positions: Option<&'a [u32]>,
    /// Number of sequences B.
    pub batch: usize,
    /// Sequence length T.
    pub seq_len: usize,
}

impl<'a> TokenIds<'a> {
    /// Token ids of a (batch, seq_len) batch with positions 0..seq_len.
    pub fn new(tokens: &'a [u32], batch: usize, seq_len: usize) -> Self {
        TokenIds {
            tokens,
            positions: None,
            batch,
            seq_len,
        }
    }

    /// The same ids with explicit position ids (B, T).
    pub fn with_positions(self, positions: &'a [u32]) -> Self {
        TokenIds {
            positions: Some(positions),
            ..self
        }
    }

    fn shape(&self) -> Shape {
        Shape::new([self.batch, self.seq_len])
    }
}

/// Validated ids as table row indices.
struct Resolved {
    tokens: Vec<usize>,
    /// Empty when there is no position table.
    positions: Vec<usize>,
}

/// `wte[tokens] (+ wpe[positions])`: wte (V, C), wpe (P, C) -> out (B, T, C).
///
/// ```
/// use rlhf_tensor::{Device, Tensor, ops::embedding::{embedding, TokenIds}};
/// let wte = Tensor::from_vec(vec![0.0, 0.0, 1.0, 1.0, 2.0, 2.0], [3, 2], Device::Cpu)?;
/// let wpe = Tensor::from_vec(vec![0.0, 0.5, 0.0, 0.25], [2, 2], Device::Cpu)?;
/// let out = embedding(&wte, Some(&wpe), TokenIds::new(&[2, 1], 1, 2))?;
/// assert_eq!(out.dims(), &[1, 2, 2]);
/// assert_eq!(out.to_vec_f32(), vec![2.0, 2.5, 1.0, 1.25]);
/// # Ok::<(), rlhf_tensor::TensorError>(())
/// ```
pub fn embedding(wte: &Tensor, wpe: Option<&Tensor>, ids: TokenIds<'_>) -> Result<Tensor> {
    let op = "embedding";
    let cols = check_tables(op, wte, wpe)?;
    let resolved = resolve(op, wte, wpe, &ids)?;
    if wte.is_cuda() {
        let out_shape = [ids.batch, ids.seq_len, cols];
        return cuda::forward(wte, wpe, &resolved.tokens, &resolved.positions, out_shape);
    }
    let mut out = Tensor::zeros([ids.batch, ids.seq_len, cols], wte.device())?;
    cpu::embedding_rows(
        wte.as_f32_slice()?,
        wpe.map(Tensor::as_f32_slice).transpose()?,
        &resolved.tokens,
        &resolved.positions,
        cols,
        out.as_f32_slice_mut()?,
    );
    Ok(out)
}

/// Adds the gradient of [`embedding`] into `dwte` (V, C) and `dwpe` (P, C), from `dout` (B, T, C).
///
/// Accumulates (as llm.c does) rather than overwriting, so that a tied LM head's gradient can
/// share `dwte`: zero the buffers first when starting a step.
pub fn embedding_backward(
    dout: &Tensor,
    ids: TokenIds<'_>,
    dwte: &mut Tensor,
    dwpe: Option<&mut Tensor>,
) -> Result<()> {
    let op = "embedding_backward";
    let cols = check_tables(op, dwte, dwpe.as_deref())?;
    let resolved = resolve(op, dwte, dwpe.as_deref(), &ids)?;
    let expected = Shape::new([ids.batch, ids.seq_len, cols]);
    dout.shape().expect_same(op, &expected)?;
    check_same_device(op, dout, dwte)?;
    if dout.is_cuda() {
        return cuda::backward(dout, &resolved.tokens, &resolved.positions, dwte, dwpe);
    }
    let dout = dout.as_f32_slice()?;
    cpu::scatter_add_rows(dout, &resolved.tokens, cols, dwte.as_f32_slice_mut()?);
    if let Some(dwpe) = dwpe {
        cpu::scatter_add_rows(dout, &resolved.positions, cols, dwpe.as_f32_slice_mut()?);
    }
    Ok(())
}

/// Checks that the tables are 2-D with the same width; returns C.
fn check_tables(op: &'static str, wte: &Tensor, wpe: Option<&Tensor>) -> Result<usize> {
    wte.shape().expect_rank(op, 2)?;
    let cols = wte.dims()[1];
    if let Some(wpe) = wpe {
        check_same_device(op, wte, wpe)?;
        if wpe.shape().rank() != 2 || wpe.dims()[1] != cols {
            return Err(TensorError::ShapeMismatch {
                op,
                detail: "wte (V, C) and wpe (P, C) must be 2-D with the same C".into(),
                left: wte.shape().clone(),
                right: wpe.shape().clone(),
            });
        }
    }
    Ok(cols)
}

/// Checks id counts and ranges; returns the ids as row indices.
fn resolve(
    op: &'static str,
    wte: &Tensor,
    wpe: Option<&Tensor>,
    ids: &TokenIds<'_>,
) -> Result<Resolved> {
    let n = ids.batch * ids.seq_len;
    let check_len = |what: &str, len: usize| {
        if len == n {
            Ok(())
        } else {
            Err(TensorError::ShapeMismatch {
                op,
                detail: format!("{len} {what} for a (B, T) batch"),
                left: [len].into(),
                right: ids.shape(),
            })
        }
    };
    check_len("token ids", ids.tokens.len())?;
    let in_range = |what: &str, values: &[u32], limit: usize| -> Result<Vec<usize>> {
        values
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                let id = id as usize;
                if id < limit {
                    Ok(id)
                } else {
                    Err(TensorError::invalid(
                        op,
                        format!(
                            "{what} {id} at (batch {}, position {}) is out of range for a table \
                             of {limit} rows",
                            i / ids.seq_len.max(1),
                            i % ids.seq_len.max(1)
                        ),
                    ))
                }
            })
            .collect()
    };
    let tokens = in_range("token id", ids.tokens, wte.dims()[0])?;
    let positions = match (wpe, ids.positions) {
        (None, None) => Vec::new(),
        (None, Some(_)) => {
            return Err(TensorError::invalid(
                op,
                "position ids were given but there is no position table (wpe)",
            ));
        }
        (Some(wpe), Some(positions)) => {
            check_len("position ids", positions.len())?;
            in_range("position id", positions, wpe.dims()[0])?
        }
        (Some(wpe), None) => {
            if ids.seq_len > wpe.dims()[0] {
                return Err(TensorError::ShapeMismatch {
                    op,
                    detail: "the sequence is longer than the position table".into(),
                    left: ids.shape(),
                    right: wpe.shape().clone(),
                });
            }
            (0..n).map(|i| i % ids.seq_len).collect()
        }
    };
    Ok(Resolved { tokens, positions })
}

#[cfg(test)]
mod tests;
