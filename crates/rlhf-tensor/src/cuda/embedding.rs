//! Token (+ position) embeddings on device buffers (kernels/embedding.cu): the forward gather,
//! and two backward scatter-adds into fp32 gradients: atomic (fast) or deterministic (rows
//! grouped by id on the host with a counting sort, then summed in a fixed order).

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};

use super::device::CudaDevice;
use super::dtype::CudaFloat;
use super::launch::{FLAT_BLOCK, arg_opt, arg_opt_mut, as_i32, check_len, flat_config, launched};
use super::registry::KernelModule;
use crate::{Result, TensorError};

/// Sizes shared by the embedding launches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddingShape {
    /// Positions looked up, B * T.
    pub rows: usize,
    /// Embedding width C.
    pub cols: usize,
    /// Rows of the token table V.
    pub vocab: usize,
    /// T: position of row r is r % seq_len (rows must be a multiple of it when a position
    /// table is used).
    pub seq_len: usize,
}

impl EmbeddingShape {
    fn check(&self, op: &'static str) -> Result<(i64, i32, i32, i32)> {
        if self.cols == 0 || self.seq_len == 0 || !self.rows.is_multiple_of(self.seq_len) {
            return Err(TensorError::invalid(
                op,
                format!(
                    "rows {} must be a multiple of seq_len {} (> 0), cols {} > 0",
                    self.rows, self.seq_len, self.cols
                ),
            ));
        }
        Ok((
            self.rows as i64,
            as_i32(op, "cols", self.cols)?,
            as_i32(op, "vocab", self.vocab)?,
            as_i32(op, "seq_len", self.seq_len)?,
        ))
    }
}

/// `out[r] = table[ids[r]] (+ pos[r % T])`: ids (rows) i32, table (V, C), pos (T, C), out
/// (rows, C). An id outside [0, V) is an error (its row is left NaN); checking it waits for the
/// stream.
pub fn embedding_forward<T: CudaFloat>(
    dev: &CudaDevice,
    shape: EmbeddingShape,
    ids: &CudaSlice<i32>,
    table: &CudaSlice<T>,
    pos: Option<&CudaSlice<T>>,
    out: &mut CudaSlice<T>,
) -> Result<()> {
    let op = "cuda::embedding_forward";
    let Some(bad) = launch_forward(dev, op, shape, ids, table, pos, out)? else {
        return Ok(());
    };
    let flag = dev
        .stream()
        .clone_dtoh(&bad)
        .map_err(super::device::driver_error(op))?;
    if flag[0] != 0 {
        return Err(TensorError::invalid(
            op,
            format!("a token id is outside the vocabulary [0, {})", shape.vocab),
        ));
    }
    Ok(())
}

/// [`embedding_forward`] for ids already checked on the host: the bad-id flag is not read, so
/// nothing waits for the stream.
pub fn embedding_forward_prechecked<T: CudaFloat>(
    dev: &CudaDevice,
    shape: EmbeddingShape,
    ids: &CudaSlice<i32>,
    table: &CudaSlice<T>,
    pos: Option<&CudaSlice<T>>,
    out: &mut CudaSlice<T>,
) -> Result<()> {
    let op = "cuda::embedding_forward";
    launch_forward(dev, op, shape, ids, table, pos, out).map(drop)
}

/// Checks the buffers and launches embedding_fwd; returns the device flag that is non-zero when
/// an id was out of range (`None` when there are no rows, and nothing was launched).
fn launch_forward<T: CudaFloat>(
    dev: &CudaDevice,
    op: &'static str,
    shape: EmbeddingShape,
    ids: &CudaSlice<i32>,
    table: &CudaSlice<T>,
    pos: Option<&CudaSlice<T>>,
    out: &mut CudaSlice<T>,
) -> Result<Option<CudaSlice<i32>>> {
    let (rows, cols, vocab, seq_len) = shape.check(op)?;
    check_len(op, "ids", ids.len(), shape.rows)?;
    check_len(op, "table", table.len(), shape.vocab * shape.cols)?;
    check_len(op, "out", out.len(), shape.rows * shape.cols)?;
    if let Some(p) = pos {
        check_len(op, "pos", p.len(), shape.seq_len * shape.cols)?;
    }
    if shape.rows == 0 {
        return Ok(None);
    }
    let mut bad = dev.zeros::<i32>(1)?;
    let f = dev.typed::<T>(KernelModule::Embedding, "embedding_fwd")?;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&rows)
        .arg(&cols)
        .arg(&vocab)
        .arg(&seq_len)
        .arg(ids)
        .arg(table);
    arg_opt(&mut args, pos);
    args.arg(out).arg(&mut bad);
    let cfg = flat_config(dev, (shape.rows * shape.cols).div_ceil(T::PACK));
    // SAFETY: ids hold rows, table V * C, pos T * C, out rows * C (checked); ids are bounds-
    // checked in the kernel before the table is read.
    launched(op, unsafe { args.launch(cfg) })?;
    Ok(Some(bad))
}

/// Adds the gradient of [`embedding_forward`] into `dtable` (V, C) and `dpos` (T, C), fp32,
/// with atomics: fast, but the summation order (last bits) may change from run to run.
pub fn embedding_backward_atomic<T: CudaFloat>(
    dev: &CudaDevice,
    shape: EmbeddingShape,
    ids: &CudaSlice<i32>,
    dout: &CudaSlice<T>,
    dtable: &mut CudaSlice<f32>,
    dpos: Option<&mut CudaSlice<f32>>,
) -> Result<()> {
    let op = "cuda::embedding_backward_atomic";
    let (rows, cols, vocab, seq_len) = shape.check(op)?;
    check_len(op, "ids", ids.len(), shape.rows)?;
    check_len(op, "dout", dout.len(), shape.rows * shape.cols)?;
    check_len(op, "dtable", dtable.len(), shape.vocab * shape.cols)?;
    if let Some(p) = &dpos {
        check_len(op, "dpos", p.len(), shape.seq_len * shape.cols)?;
    }
    if shape.rows == 0 {
        return Ok(());
    }
    let f = dev.typed::<T>(KernelModule::Embedding, "embedding_bwd_atomic")?;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&rows)
        .arg(&cols)
        .arg(&vocab)
        .arg(&seq_len)
        .arg(ids)
        .arg(dout)
        .arg(dtable);
    arg_opt_mut(&mut args, dpos);
    // SAFETY: sizes checked above; out-of-range ids are skipped by the kernel.
    launched(op, unsafe {
        args.launch(flat_config(dev, shape.rows * shape.cols))
    })
}

/// Rows grouped by id (a stable counting sort): (order, segment starts, segment ids).
pub fn group_rows_by_id(ids: &[i32], vocab: usize) -> Result<(Vec<i32>, Vec<i32>, Vec<i32>)> {
    let op = "cuda::group_rows_by_id";
    let mut counts = vec![0usize; vocab + 1];
    for (r, &id) in ids.iter().enumerate() {
        if id < 0 || id as usize >= vocab {
            return Err(TensorError::invalid(
                op,
                format!("ids[{r}] = {id} is outside the vocabulary [0, {vocab})"),
            ));
        }
        counts[id as usize + 1] += 1;
    }
    for v in 0..vocab {
        counts[v + 1] += counts[v];
    }
    let mut next = counts.clone();
    let mut order = vec![0i32; ids.len()];
    for (r, &id) in ids.iter().enumerate() {
        order[next[id as usize]] = as_i32(op, "row", r)?;
        next[id as usize] += 1;
    }
    let mut starts = Vec::new();
    let mut segment_ids = Vec::new();
    for v in 0..vocab {
        if counts[v + 1] > counts[v] {
            starts.push(counts[v] as i32);
            segment_ids.push(v as i32);
        }
    }
    starts.push(ids.len() as i32);
    Ok((order, starts, segment_ids))
}

/// Adds the gradient of [`embedding_forward`] into `dtable` (V, C) and `dpos` (T, C), fp32, in a
/// fixed order (bit-identical from run to run). Takes the ids on the host (`ids`, rows) to group
/// the rows by id.
pub fn embedding_backward_deterministic<T: CudaFloat>(
    dev: &CudaDevice,
    shape: EmbeddingShape,
    ids: &[i32],
    dout: &CudaSlice<T>,
    dtable: &mut CudaSlice<f32>,
    dpos: Option<&mut CudaSlice<f32>>,
) -> Result<()> {
    let op = "cuda::embedding_backward_deterministic";
    let (_, cols, _, seq_len) = shape.check(op)?;
    check_len(op, "ids", ids.len(), shape.rows)?;
    check_len(op, "dout", dout.len(), shape.rows * shape.cols)?;
    check_len(op, "dtable", dtable.len(), shape.vocab * shape.cols)?;
    if shape.rows == 0 {
        return Ok(());
    }
    let (order, starts, segment_ids) = group_rows_by_id(ids, shape.vocab)?;
    let order = dev.upload_i32(&order)?;
    let starts = dev.upload_i32(&starts)?;
    let segments = segment_ids.len();
    let segment_ids = dev.upload_i32(&segment_ids)?;
    let f = dev.typed::<T>(KernelModule::Embedding, "embedding_bwd_sorted")?;
    let threads = shape.cols.min(FLAT_BLOCK as usize).div_ceil(32) * 32;
    let cfg = LaunchConfig {
        grid_dim: (segments as u32, shape.cols.div_ceil(threads) as u32, 1),
        block_dim: (threads as u32, 1, 1),
        shared_mem_bytes: 0,
    };
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&cols)
        .arg(&order)
        .arg(&starts)
        .arg(&segment_ids)
        .arg(dout)
        .arg(&mut *dtable);
    // SAFETY: order holds rows indices < rows, starts segments + 1 offsets into it, segment_ids
    // ids < V (checked by group_rows_by_id); dout rows * C, dtable V * C.
    launched(op, unsafe { args.launch(cfg) })?;
    if let Some(dpos) = dpos {
        check_len(op, "dpos", dpos.len(), shape.seq_len * shape.cols)?;
        let batch = as_i32(op, "batch", shape.rows / shape.seq_len)?;
        let f = dev.typed::<T>(KernelModule::Embedding, "position_bwd")?;
        let mut args = dev.stream().launch_builder(&f);
        args.arg(&batch)
            .arg(&seq_len)
            .arg(&cols)
            .arg(dout)
            .arg(dpos);
        // SAFETY: dout holds batch * T * C, dpos T * C.
        launched(op, unsafe {
            args.launch(flat_config(dev, shape.seq_len * shape.cols))
        })?;
    }
    Ok(())
}
