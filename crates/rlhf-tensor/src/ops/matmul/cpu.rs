//! Matrix-multiply kernels: strided views over slices, multiplied by the `gemm` crate.
//!
//! `gemm` (the pure-Rust GEMM behind candle and faer) is chosen because it reaches BLAS-class
//! speed with runtime SIMD dispatch (AVX2/AVX-512/NEON), takes arbitrary row and column strides (so
//! transposed operands cost nothing) and parallelises over rayon, without a system BLAS to install.
//! Products of at most [`skinny::MAX_ROWS`] rows (decoding) go to the few-row kernel in
//! [`skinny`] instead, which streams the weight once without packing it.

use std::any::TypeId;

use gemm::Parallelism;
use rayon::prelude::*;

use super::skinny;
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

    /// Whether distinct (row, col) always address distinct elements: rows laid one after another
    /// (row-major, possibly padded) or columns one after another (column-major).
    pub fn is_one_to_one(self) -> bool {
        let row_major = self.col_stride >= 1 && self.row_stride >= self.cols * self.col_stride;
        let col_major = self.row_stride >= 1 && self.col_stride >= self.rows * self.row_stride;
        self.rows <= 1 && self.col_stride >= 1
            || self.cols <= 1 && self.row_stride >= 1
            || row_major
            || col_major
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
/// Parallel products split the larger of M and N into one band per thread, each band a
/// single-threaded `gemm` call: on two cores this beats `gemm`'s own rayon split at the GPT shapes
/// (BENCHMARKS.md, rlhf-tensor matmul), and every output element is still summed over K by one
/// thread in one order, so results do not depend on how the bands fall.
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
    let threads = rayon::current_num_threads();
    if flops < PARALLEL_MIN_FLOPS || threads == 1 || !dst_layout.is_one_to_one() {
        gemm_with(
            dst,
            dst_layout,
            accumulate,
            lhs,
            lhs_layout,
            rhs,
            rhs_layout,
            Parallelism::None,
        );
        return;
    }
    check_views(dst, dst_layout, lhs, lhs_layout, rhs, rhs_layout);
    if k == 0 {
        gemm_with(
            dst,
            dst_layout,
            accumulate,
            lhs,
            lhs_layout,
            rhs,
            rhs_layout,
            Parallelism::None,
        );
        return;
    }
    let split_cols = n >= m;
    let extent = if split_cols { n } else { m };
    let band = extent.div_ceil(threads).next_multiple_of(BAND_ALIGN);
    let bands = extent.div_ceil(band);
    let dst_ptr = SharedMut(dst.as_mut_ptr());
    (0..bands).into_par_iter().for_each(|b| {
        let (start, len) = (b * band, band.min(extent - b * band));
        let (mut dst_view, mut lhs_view, mut rhs_view) = (dst_layout, lhs_layout, rhs_layout);
        let (dst_off, lhs_off, rhs_off);
        if split_cols {
            (dst_view.cols, rhs_view.cols) = (len, len);
            (dst_off, lhs_off, rhs_off) = (
                start * dst_layout.col_stride,
                0,
                start * rhs_layout.col_stride,
            );
        } else {
            (dst_view.rows, lhs_view.rows) = (len, len);
            (dst_off, lhs_off, rhs_off) = (
                start * dst_layout.row_stride,
                start * lhs_layout.row_stride,
                0,
            );
        }
        // SAFETY: the whole views lie inside their slices (checked above) and a band is a
        // sub-view of them; `dst_layout` maps distinct (row, col) to distinct elements, so the
        // bands' destinations are disjoint and no two threads write the same element.
        unsafe {
            gemm_raw(
                dst_ptr.get().add(dst_off),
                dst_view,
                accumulate,
                lhs.as_ptr().add(lhs_off),
                lhs_view,
                rhs.as_ptr().add(rhs_off),
                rhs_view,
                Parallelism::None,
            );
        }
    });
}

/// Bands of a parallel product are a multiple of this many rows or columns: a multiple of every
/// microkernel width `gemm` uses, so no band ends in a ragged tile that a whole band could avoid.
const BAND_ALIGN: usize = 64;

/// A destination pointer shared by the threads of one product, each writing its own band.
#[derive(Clone, Copy)]
struct SharedMut<T>(*mut T);

// SAFETY: the threads holding copies write disjoint elements (see `gemm_into`).
unsafe impl<T: Send> Send for SharedMut<T> {}
// SAFETY: as above; the pointer itself is only read.
unsafe impl<T: Send> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    /// The pointer (a method, so closures capture the `Send` wrapper, not the raw field).
    fn get(self) -> *mut T {
        self.0
    }
}

/// Asserts that the dimensions agree and every view lies inside its slice.
fn check_views<T>(
    dst: &[T],
    dst_layout: MatLayout,
    lhs: &[T],
    lhs_layout: MatLayout,
    rhs: &[T],
    rhs_layout: MatLayout,
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
    check_views(dst, dst_layout, lhs, lhs_layout, rhs, rhs_layout);
    let (m, k, n) = (lhs_layout.rows, lhs_layout.cols, rhs_layout.cols);
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
    // SAFETY: the dimensions agree and every view lies inside its slice (checked above); `dst`
    // is borrowed mutably, so it aliases neither operand.
    unsafe {
        gemm_raw(
            dst.as_mut_ptr(),
            dst_layout,
            accumulate,
            lhs.as_ptr(),
            lhs_layout,
            rhs.as_ptr(),
            rhs_layout,
            parallelism,
        );
    }
}

/// The `gemm` call on raw views.
///
/// # Safety
/// The views' dimensions agree, each view lies inside the memory its pointer addresses, `dst`
/// aliases neither operand, and no other thread touches the elements of `dst`'s view.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_raw<T: Float>(
    dst: *mut T,
    dst_layout: MatLayout,
    accumulate: bool,
    lhs: *const T,
    lhs_layout: MatLayout,
    rhs: *const T,
    rhs_layout: MatLayout,
    parallelism: Parallelism,
) {
    let (m, k, n) = (lhs_layout.rows, lhs_layout.cols, rhs_layout.cols);
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        // SAFETY: T is f32, so the casts change nothing; the caller's contract is the kernel's.
        let done = unsafe {
            skinny::try_gemm(
                dst.cast::<f32>(),
                dst_layout,
                accumulate,
                lhs.cast::<f32>(),
                lhs_layout,
                rhs.cast::<f32>(),
                rhs_layout,
            )
        };
        if done {
            return;
        }
    }
    // SAFETY: the caller's contract is `gemm::gemm`'s.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_layout.col_stride as isize,
            dst_layout.row_stride as isize,
            accumulate,
            lhs,
            lhs_layout.col_stride as isize,
            lhs_layout.row_stride as isize,
            rhs,
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
