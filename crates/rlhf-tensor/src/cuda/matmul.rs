//! Matrix products, row-major, optionally transposed operands, strided batches, fp32
//! accumulation for every dtype. [`gemm()`] is the dispatch point the ops use: it asks
//! [`super::gemm::chooser`] per shape whether our kernel (`kernels/gemm.cu`, [`super::gemm`]) or
//! cuBLAS ([`gemm_cublas`], the measured baseline) runs it; cuBLAS unless ours was verified and
//! measured faster on that shape, or `RLHF_GEMM=ours|cublas` forces one.
//!
//! cuBLAS is column-major. A row-major (M, N) matrix is the column-major (N, M) matrix of the
//! same memory, so the row-major `C = op(A) op(B)` is computed as the column-major
//! `C^T = op(B)^T op(A)^T`: swap the operands and the roles of M and N.

use cudarc::cublas::sys::cublasOperation_t;
/// The cuBLAS handle and its GEMM trait (implemented for f32 and bf16, the dtypes [`gemm()`]
/// runs for; [`CudaFloat`] carries the call, so generic code needs no `Gemm` bound).
pub use cudarc::cublas::{CudaBlas, Gemm};
use cudarc::cublas::{GemmConfig, StridedBatchedConfig};
use cudarc::driver::{DevicePtr, DevicePtrMut};

use super::device::CudaDevice;
use super::dtype::CudaFloat;
use super::gemm::chooser::GemmBackend;
use super::launch::as_i32;
use crate::{Result, TensorError};

/// A row-major strided-batched product `c[p] = alpha * op(a[p]) @ op(b[p]) + beta * c[p]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GemmShape {
    /// Rows of op(A) and C.
    pub m: usize,
    /// Columns of op(B) and C.
    pub n: usize,
    /// Columns of op(A), rows of op(B).
    pub k: usize,
    /// A is stored (K, M) and used transposed.
    pub trans_a: bool,
    /// B is stored (N, K) and used transposed.
    pub trans_b: bool,
    /// Number of products.
    pub batch: usize,
    /// Elements between consecutive A matrices (0: one A shared by the batch).
    pub stride_a: usize,
    /// Elements between consecutive B matrices (0: shared).
    pub stride_b: usize,
    /// Elements between consecutive C matrices.
    pub stride_c: usize,
    /// Multiplies the product.
    pub alpha: f32,
    /// Multiplies the existing C (0: C is overwritten; 1: accumulate).
    pub beta: f32,
}

impl GemmShape {
    /// One product `C (M, N) = op(A) op(B)` with C overwritten.
    pub fn new(m: usize, n: usize, k: usize, trans_a: bool, trans_b: bool) -> GemmShape {
        GemmShape {
            m,
            n,
            k,
            trans_a,
            trans_b,
            batch: 1,
            stride_a: m * k,
            stride_b: k * n,
            stride_c: m * n,
            alpha: 1.0,
            beta: 0.0,
        }
    }

    /// The same product over `batch` contiguous matrices of each operand.
    pub fn batched(self, batch: usize) -> GemmShape {
        GemmShape { batch, ..self }
    }

    /// Elements a buffer must hold for `stride` and one `size`-element matrix per batch entry.
    pub(crate) fn extent(&self, stride: usize, size: usize) -> usize {
        if self.batch == 0 || size == 0 {
            0
        } else {
            stride * (self.batch - 1) + size
        }
    }
}

/// Runs `shape`: `c (batch, M, N) = alpha op(a) op(b) + beta c`, on our kernel or cuBLAS as
/// [`super::gemm::chooser::choose`] says for this shape and dtype. The operands are device
/// buffers or views of them (`CudaSlice`, `CudaView`, `CudaViewMut`).
pub fn gemm<T: CudaFloat, A: DevicePtr<T>, B: DevicePtr<T>, C: DevicePtrMut<T>>(
    dev: &CudaDevice,
    shape: GemmShape,
    a: &A,
    b: &B,
    c: &mut C,
) -> Result<()> {
    match super::gemm::chooser::choose(&shape, T::DTYPE)? {
        GemmBackend::Ours => {
            super::gemm::gemm_ours(dev, shape, a, b, c, super::gemm::Epilogue::none())
        }
        GemmBackend::Cublas => gemm_cublas(dev, shape, a, b, c),
    }
}

/// Fails unless a, b and c hold the elements `shape` reaches and C matrices do not overlap;
/// `Ok(false)` when the product is empty (nothing to launch).
pub(crate) fn check_operands(
    op: &'static str,
    shape: &GemmShape,
    a_len: usize,
    b_len: usize,
    c_len: usize,
) -> Result<bool> {
    let GemmShape { m, n, k, .. } = *shape;
    for (what, len, need) in [
        ("a", a_len, shape.extent(shape.stride_a, m * k)),
        ("b", b_len, shape.extent(shape.stride_b, k * n)),
        ("c", c_len, shape.extent(shape.stride_c, m * n)),
    ] {
        if len < need {
            return Err(TensorError::invalid(
                op,
                format!("{what} holds {len} elements, the product needs {need} ({shape:?})"),
            ));
        }
    }
    if shape.stride_c < m * n && shape.batch > 1 {
        return Err(TensorError::invalid(op, "C matrices of a batch overlap"));
    }
    Ok(!(m == 0 || n == 0 || shape.batch == 0))
}

/// Runs `shape` on the device's cuBLAS handle: `c (batch, M, N) = alpha op(a) op(b) + beta c`.
pub fn gemm_cublas<T: CudaFloat, A: DevicePtr<T>, B: DevicePtr<T>, C: DevicePtrMut<T>>(
    dev: &CudaDevice,
    shape: GemmShape,
    a: &A,
    b: &B,
    c: &mut C,
) -> Result<()> {
    let op = "cuda::gemm_cublas";
    let GemmShape { m, n, k, .. } = shape;
    if !check_operands(op, &shape, a.len(), b.len(), c.len())? {
        return Ok(());
    }
    let transpose = |t: bool| {
        if t {
            cublasOperation_t::CUBLAS_OP_T
        } else {
            cublasOperation_t::CUBLAS_OP_N
        }
    };
    // Column-major view: C^T (N, M) = op(B)^T (N, K) op(A)^T (K, M).
    let gemm = GemmConfig {
        transa: transpose(shape.trans_b),
        transb: transpose(shape.trans_a),
        m: as_i32(op, "n", n)?,
        n: as_i32(op, "m", m)?,
        k: as_i32(op, "k", k)?,
        alpha: T::from_f32(shape.alpha),
        lda: as_i32(op, "ldb", (if shape.trans_b { k } else { n }).max(1))?,
        ldb: as_i32(op, "lda", (if shape.trans_a { m } else { k }).max(1))?,
        beta: T::from_f32(shape.beta),
        ldc: as_i32(op, "ldc", n)?,
    };
    let cfg = StridedBatchedConfig {
        gemm,
        batch_size: as_i32(op, "batch", shape.batch)?,
        stride_a: shape.stride_b as i64,
        stride_b: shape.stride_a as i64,
        stride_c: shape.stride_c as i64,
    };
    let blas = dev.blas()?;
    // cuBLAS runs in the context current on the calling thread; tests and callers may be on any
    // thread.
    dev.stream()
        .context()
        .bind_to_thread()
        .map_err(super::device::driver_error(op))?;
    // SAFETY: every operand holds the elements its strides and leading dimensions reach
    // (checked above against the row-major extents, which are the same memory).
    unsafe { T::gemm_strided_batched(&blas, cfg, b, a, c) }
        .map_err(|e| TensorError::invalid(op, format!("cuBLAS: {e:?}")))
}
