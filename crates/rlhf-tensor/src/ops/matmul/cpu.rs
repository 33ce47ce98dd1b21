//! Matrix-multiply kernels: strided views over slices, multiplied by the `gemm` crate.
//!
//! `gemm` (the pure-Rust GEMM behind candle and faer) is chosen because it reaches BLAS-class
//! speed with runtime SIMD dispatch (AVX2/AVX-512/NEON), takes arbitrary row and column strides (so
//! transposed operands cost nothing) and parallelises over rayon, without a system BLAS to install.

use gemm::Parallelism;
use rayon::prelude::*;

use crate::Float;

/// Below this many multiply-adds a product runs on one thread: spawning costs more.
const PARALLEL_MIN_FLOPS: usize = 64 * 64 * 64;

/// A strided matrix view: element (i, j) lives at `i * row_stride + j * col_stride`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatLayout {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Distance between consecutive rows, in elements.
    pub row_stride: usize,
    /// Distance between consecutive columns, in elements.
    pub col_stride: usize,
}

impl MatLayout {
    /// A contiguous row-major (rows, cols) matrix.
    pub fn row_major(rows: usize, cols: usize) -> MatLayout {
        MatLayout {
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transposed view of the same memory.
    pub fn t(self) -> MatLayout {
        MatLayout {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// How many elements a slice must hold for this view (0 for an empty matrix).
    pub fn extent(self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride + 1
        }
    }
}

/// `dst = lhs × rhs`, or `dst += lhs × rhs` when `accumulate`; one product, on all cores when it
/// is large enough.
///
/// # Panics
/// If the layouts' dimensions disagree or a view reaches past its slice (the callers in this crate
/// validate shapes first; the check keeps the unsafe call sound).
pub fn gemm_into<T: Float>(
    dst: &mut [T],
    dst_layout: MatLayout,
    accumulate: bool,
    lhs: &[T],
    lhs_layout: MatLayout,
    rhs: &[T],
    rhs_layout: MatLayout,
) {
    let (m, k, n) = (lhs_layout.rows, lhs_layout.cols, rhs_layout.cols);
    let flops = m.saturating_mul(n).saturating_mul(k);
    let parallelism = if flops >= PARALLEL_MIN_FLOPS && rayon::current_num_threads() > 1 {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    };
    gemm_with(
        dst,
        dst_layout,
        accumulate,
        lhs,
        lhs_layout,
        rhs,
        rhs_layout,
        parallelism,
    );
}

#[allow(clippy::too_many_arguments)]
fn gemm_with<T: Float>(
    dst: &mut [T],
    dst_layout: MatLayout,
    accumulate: bool,
    lhs: &[T],
    lhs_layout: MatLayout,
    rhs: &[T],
    rhs_layout: MatLayout,
    parallelism: Parallelism,
) {
    let (m, k, n) = (lhs_layout.rows, lhs_layout.cols, rhs_layout.cols);
    assert!(
        rhs_layout.rows == k && dst_layout.rows == m && dst_layout.cols == n,
        "gemm: (m, k) x (k, n) -> (m, n) violated: lhs {lhs_layout:?}, rhs {rhs_layout:?}, dst {dst_layout:?}"
    );
    assert!(
        dst_layout.extent() <= dst.len()
            && lhs_layout.extent() <= lhs.len()
            && rhs_layout.extent() <= rhs.len(),
        "gemm: a view reaches past its slice"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst[i * dst_layout.row_stride + j * dst_layout.col_stride] = T::zero();
                }
            }
        }
        return;
    }
    // SAFETY: the dimensions agree and every view lies inside its slice (both asserted above);
    // `dst` is borrowed mutably, so it aliases neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_layout.col_stride as isize,
            dst_layout.row_stride as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_layout.col_stride as isize,
            lhs_layout.row_stride as isize,
            rhs.as_ptr(),
            rhs_layout.col_stride as isize,
            rhs_layout.row_stride as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// One operand of a batched product: a view per batch element, `batch_stride` elements apart
/// (0 when every batch element shares the same matrix).
#[derive(Debug, Clone, Copy)]
pub struct BatchOperand<'a, T> {
    /// The whole buffer.
    pub data: &'a [T],
    /// The view of one batch element.
    pub layout: MatLayout,
    /// Elements between batch elements; 0 = shared.
    pub batch_stride: usize,
}

/// The data of batch element `p` onward.
fn batch_view<'a, T>(operand: &BatchOperand<'a, T>, p: usize) -> &'a [T] {
    let start = p * operand.batch_stride;
    &operand.data[start.min(operand.data.len())..]
}

/// `dst[p] (+)= lhs[p] × rhs[p]` for p in 0..batch. With `dst_batch_stride == 0` every product is
/// summed into the one destination (a weight gradient shared across the batch).
pub fn batched_gemm_into<T: Float>(
    dst: &mut [T],
    dst_layout: MatLayout,
    dst_batch_stride: usize,
    accumulate: bool,
    lhs: BatchOperand<'_, T>,
    rhs: BatchOperand<'_, T>,
    batch: usize,
) {
    if dst_batch_stride == 0 || batch <= 1 {
        for p in 0..batch {
            let accumulate_here = accumulate || (dst_batch_stride == 0 && p > 0);
            let dst_start = (p * dst_batch_stride).min(dst.len());
            gemm_into(
                &mut dst[dst_start..],
                dst_layout,
                accumulate_here,
                batch_view(&lhs, p),
                lhs.layout,
                batch_view(&rhs, p),
                rhs.layout,
            );
        }
        return;
    }
    assert!(
        dst_batch_stride >= dst_layout.extent(),
        "batched gemm: destination batch elements overlap"
    );
    // Disjoint destinations: one task per batch element, each product on one thread.
    dst.par_chunks_mut(dst_batch_stride)
        .take(batch)
        .enumerate()
        .for_each(|(p, dst_p)| {
            gemm_with(
                dst_p,
                dst_layout,
                accumulate,
                batch_view(&lhs, p),
                lhs.layout,
                batch_view(&rhs, p),
                rhs.layout,
                Parallelism::None,
            );
        });
}
