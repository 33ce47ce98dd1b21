//! A few-row f32 GEMM for decoding: M <= [`MAX_ROWS`] rows (one new token of each sequence)
//! against a large weight, reading every weight element once, straight from where it is stored.
//!
//! A general GEMM packs panels of both operands before its microkernel runs. At M = 16, packing
//! the weight costs more than multiplying by it, and a GPT-2 small decode step reads ~500 MB of
//! weights, so the step is bound by how fast the weights stream from memory. Two loops, chosen by
//! how the weight (rhs, (K, N)) is stored:
//! - rows contiguous along N (a Conv1D `[in, out]` weight, `NN`): blocks of `KB` (16) weight rows,
//!   each swept across all column bands so every row streams front to back (a band walked down
//!   all K rows would touch a new page per row, which hardware prefetchers do not follow); per
//!   band a tile of MR output rows x NR vectors of columns is accumulated in registers, each
//!   step loading NR weight vectors and broadcasting MR elements of x (`axpy_tile`), the partial
//!   sums kept in a thread-local scratch between blocks; small (cache-resident) weights in one
//!   block;
//! - columns contiguous along K (a tied embedding read as (N, K), `NT`): MR x NR dot products in
//!   vectors along K, the next group of columns prefetched, lanes summed by shuffles at the end
//!   (`dot_tile`).
//!
//! With 16 rows against GPT-2 small's weights from DRAM this streams 5.7-10 GB/s on one thread
//! (the single pass down K did 3.2-3.9, the `gemm` crate 3.1-5.0): `decode_gemm` example.
//!
//! One body per loop, generic over the vector type (`Simd`: 16-lane AVX-512F or 8-lane AVX2 +
//! FMA), compiled into `#[target_feature]` functions and chosen at run time; other CPUs and f64
//! keep the `gemm` crate. Every output element is summed over K in
//! the same order whatever M, the tile or the thread band it falls in, so a sequence's result does
//! not depend on the other sequences in the batch. `RLHF_SKINNY_GEMM=0` turns the kernel off (for
//! A/B measurements); `RLHF_SKINNY_GEMM=avx2` takes the AVX2 variant on an AVX-512 CPU (to test it).

use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::cpu::MatLayout;

/// Products with at most this many rows use the few-row kernel.
pub const MAX_ROWS: usize = 32;

/// The instruction set the kernel was compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    Avx512,
    Avx2,
}

/// The best instruction set of this CPU, or `None` (no kernel, or disabled by the environment).
fn isa() -> Option<Isa> {
    static ISA: OnceLock<Option<Isa>> = OnceLock::new();
    *ISA.get_or_init(|| {
        match std::env::var("RLHF_SKINNY_GEMM").as_deref().map(str::trim) {
            Ok("0") => None,
            // The narrower variant on a wider CPU, to test it.
            Ok("avx2") => detect().map(|_| Isa::Avx2),
            _ => detect(),
        }
    })
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Option<Isa> {
    if is_x86_feature_detected!("avx512f") {
        Some(Isa::Avx512)
    } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        Some(Isa::Avx2)
    } else {
        None
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Option<Isa> {
    None
}

/// Whether [`try_gemm`] takes a product of this shape: few rows, the weight contiguous along one
/// of its axes, a row-major destination, and a CPU the kernel was compiled for.
pub fn applies(dst: MatLayout, lhs: MatLayout, rhs: MatLayout) -> bool {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    (1..=MAX_ROWS).contains(&m)
        && k > 0
        && n > 0
        && dst.col_stride == 1
        && (rhs.col_stride == 1 || rhs.row_stride == 1)
        && isa().is_some()
}

/// `dst (+)= lhs × rhs` with the few-row kernel; returns `false` (nothing written) when
/// [`applies`] says no.
///
/// # Safety
/// The views' dimensions agree (`lhs` (M, K), `rhs` (K, N), `dst` (M, N)), each view lies inside
/// the memory its pointer addresses, `dst` aliases neither operand, and no other thread touches
/// `dst`'s view.
pub unsafe fn try_gemm(
    dst: *mut f32,
    dst_layout: MatLayout,
    accumulate: bool,
    lhs: *const f32,
    lhs_layout: MatLayout,
    rhs: *const f32,
    rhs_layout: MatLayout,
) -> bool {
    if !applies(dst_layout, lhs_layout, rhs_layout) {
        return false;
    }
    let (m, k) = (lhs_layout.rows, lhs_layout.cols);
    // x as contiguous rows (M, K): read in place when it already is, else gathered (<= 32 rows).
    let packed: Vec<f32>;
    let (x, x_rs) = if lhs_layout.col_stride == 1 {
        (lhs, lhs_layout.row_stride)
    } else {
        packed = (0..m * k)
            .map(|e| {
                let (i, l) = (e / k, e % k);
                // SAFETY: (i, l) lies inside lhs's view (the caller's contract).
                unsafe { *lhs.add(i * lhs_layout.row_stride + l * lhs_layout.col_stride) }
            })
            .collect();
        (packed.as_ptr(), k)
    };
    let job = Job {
        x,
        x_rs,
        m,
        k,
        n: rhs_layout.cols,
        w: rhs,
        w_rs: rhs_layout.row_stride,
        w_cs: rhs_layout.col_stride,
        dst,
        d_rs: dst_layout.row_stride,
        accumulate,
    };
    // SAFETY: the job's views are the caller's (see the contract above); the CPU has the
    // features each variant was compiled for (`isa` detected them).
    unsafe {
        match (isa(), rhs_layout.col_stride == 1) {
            (Some(Isa::Avx512), true) => axpy_avx512(&job),
            (Some(Isa::Avx512), false) => dot_avx512(&job),
            (Some(Isa::Avx2), true) => axpy_avx2(&job),
            (Some(Isa::Avx2), false) => dot_avx2(&job),
            (None, _) => unreachable!("`applies` checked the ISA"),
        }
    }
    true
}

/// One product's operands as raw strided views.
struct Job {
    x: *const f32, // (M, K), rows x_rs apart, contiguous along K
    x_rs: usize,
    m: usize,
    k: usize,
    n: usize,
    w: *const f32, // (K, N): element (l, j) at l * w_rs + j * w_cs
    w_rs: usize,
    w_cs: usize,
    dst: *mut f32, // (M, N), rows d_rs apart, contiguous along N
    d_rs: usize,
    accumulate: bool,
}

/// The vector operations the loops need, over `L` f32 lanes.
///
/// # Safety
/// Every method needs the CPU features of its implementation; callers are `#[target_feature]`
/// functions with them, into which these inline.
trait Simd {
    /// Lanes per vector.
    const L: usize;
    /// One vector register.
    type V: Copy;
    unsafe fn zero() -> Self::V;
    unsafe fn load(p: *const f32) -> Self::V;
    unsafe fn splat(a: f32) -> Self::V;
    /// `a * b + c`.
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    unsafe fn store(p: *mut f32, v: Self::V);
    /// The sum of the lanes, in a fixed tree order (halves added until one lane is left).
    unsafe fn sum_lanes(v: Self::V) -> f32;
    /// Asks for the cache line holding `p` (a hint: any address is allowed).
    #[inline(always)]
    unsafe fn prefetch(p: *const f32) {
        // SAFETY: a prefetch never faults, whatever the address.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p.cast())
        };
    }
}

/// 16 lanes, AVX-512F.
#[cfg(target_arch = "x86_64")]
struct Avx512;

#[cfg(target_arch = "x86_64")]
impl Simd for Avx512 {
    const L: usize = 16;
    type V = __m512;
    #[inline(always)]
    unsafe fn zero() -> __m512 {
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m512 {
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn splat(a: f32) -> __m512 {
        unsafe { _mm512_set1_ps(a) }
    }
    #[inline(always)]
    unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m512) {
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn sum_lanes(v: __m512) -> f32 {
        // SAFETY: the caller has AVX-512F (and so AVX2).
        unsafe {
            let high = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
            let half = _mm256_add_ps(_mm512_castps512_ps256(v), high);
            Avx2::sum_lanes(half)
        }
    }
}

/// 8 lanes, AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
struct Avx2;

#[cfg(target_arch = "x86_64")]
impl Simd for Avx2 {
    const L: usize = 8;
    type V = __m256;
    #[inline(always)]
    unsafe fn zero() -> __m256 {
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m256 {
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn splat(a: f32) -> __m256 {
        unsafe { _mm256_set1_ps(a) }
    }
    #[inline(always)]
    unsafe fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m256) {
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn sum_lanes(v: __m256) -> f32 {
        // SAFETY: the caller has AVX2.
        unsafe {
            let x4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let x2 = _mm_add_ps(x4, _mm_movehl_ps(x4, x4));
            let x1 = _mm_add_ss(x2, _mm_movehdup_ps(x2));
            _mm_cvtss_f32(x1)
        }
    }
}

/// Calls `$tile::<S, R, ...>` with R the const row count matching the runtime `$rows` (1..=8).
macro_rules! by_rows {
    ($rows:expr, $tile:ident, $s:ty, [$($c:tt),*], $($arg:expr),*) => {
        match $rows {
            1 => $tile::<$s, 1, $($c),*>($($arg),*),
            2 => $tile::<$s, 2, $($c),*>($($arg),*),
            3 => $tile::<$s, 3, $($c),*>($($arg),*),
            4 => $tile::<$s, 4, $($c),*>($($arg),*),
            5 => $tile::<$s, 5, $($c),*>($($arg),*),
            6 => $tile::<$s, 6, $($c),*>($($arg),*),
            7 => $tile::<$s, 7, $($c),*>($($arg),*),
            8 => $tile::<$s, 8, $($c),*>($($arg),*),
            r => unreachable!("row tiles hold 1..=8 rows, not {r}"),
        }
    };
}

/// Writes a tile held in `buf` (R rows of `width` elements) to `d` (rows `d_rs` apart), its first
/// `cols` columns, overwriting or adding.
///
/// # Safety
/// `d` addresses R rows of `cols` elements.
#[inline(always)]
unsafe fn write_tile(
    buf: &[f32],
    width: usize,
    rows: usize,
    cols: usize,
    d: *mut f32,
    d_rs: usize,
    accumulate: bool,
) {
    for r in 0..rows {
        let src = &buf[r * width..r * width + cols];
        // SAFETY: row r of the destination holds `cols` elements.
        let dst = unsafe { std::slice::from_raw_parts_mut(d.add(r * d_rs), cols) };
        if accumulate {
            dst.iter_mut().zip(src).for_each(|(o, v)| *o += v);
        } else {
            dst.copy_from_slice(src);
        }
    }
}

/// Weight rows per block of the NN loop.
///
/// Walking one band of columns down all K rows touches a new 4 KiB page every row (rows are
/// `n * 4` bytes apart), which the hardware prefetchers do not follow: the weight then arrives at
/// DRAM latency, ~2 GB/s per core here. Instead the loop takes `KB` rows at a time and sweeps
/// them across every band, so each row is read front to back (`KB` sequential streams) and the
/// partial sums wait in a row-major scratch (M x N, L2-resident for the GPT-2 shapes) between
/// blocks.
const KB: usize = 16;

/// Weights of at most this many elements (256 KiB: a quarter of a 1 MiB L2) stay in cache between
/// decode steps, so the NN loop takes them in one block of all K rows (no scratch round trips).
const CACHED_WEIGHT: usize = 1 << 16;

/// How far ahead along a weight row the NN loop asks for the weight (elements): two tiles of
/// 32 columns, which the hardware prefetchers alone fetch too late with 16 rows in flight.
const PREFETCH_AHEAD: usize = 64;

thread_local! {
    /// The NN loop's partial sums, kept between calls so decoding allocates nothing per product.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The NN loop: for each block of [`KB`] weight rows, for each band of NR vectors of columns,
/// tiles of up to MR rows accumulate the block's rows into the scratch; then the scratch is
/// written to the destination.
///
/// # Safety
/// See [`try_gemm`]; the CPU has `S`'s features; `MR <= 8`, `NR <= 4`.
#[inline(always)]
unsafe fn axpy_all<S: Simd, const MR: usize, const NR: usize>(job: &Job) {
    let width = NR * S::L;
    let n_pad = job.n.next_multiple_of(width);
    // Partial last band: its columns copied into a zero-padded (K, width) panel first.
    let tail = job.n - job.n % width;
    let panel: Vec<f32> = if tail < job.n {
        let cols = job.n - tail;
        let mut panel = vec![0.0; job.k * width];
        for l in 0..job.k {
            for c in 0..cols {
                // SAFETY: (l, tail + c) lies inside the weight.
                panel[l * width + c] = unsafe { *job.w.add(l * job.w_rs + tail + c) };
            }
        }
        panel
    } else {
        Vec::new()
    };
    // Taken out of the thread-local and put back: a closure would not inherit this function's
    // target features, and the intrinsics would not inline.
    let mut scratch = SCRATCH.take();
    scratch.clear();
    scratch.resize(job.m * n_pad, 0.0);
    let acc = scratch.as_mut_ptr();
    let block = if job.k * job.n <= CACHED_WEIGHT {
        job.k
    } else {
        KB
    };
    let mut l0 = 0;
    while l0 < job.k {
        let l1 = (l0 + block).min(job.k);
        let mut j = 0;
        while j < job.n {
            let (w, w_rs) = if j < tail {
                // SAFETY: column j lies inside the weight.
                (unsafe { job.w.add(j) }, job.w_rs)
            } else {
                (panel.as_ptr(), width)
            };
            let mut i = 0;
            while i < job.m {
                let rows = MR.min(job.m - i);
                // SAFETY: rows i..i+rows, columns j..j+width of the scratch and weight rows
                // l0..l1 lie inside their buffers.
                unsafe {
                    let x = job.x.add(i * job.x_rs);
                    let a = acc.add(i * n_pad + j);
                    by_rows!(rows, axpy_tile, S, [NR], job, x, w, w_rs, a, n_pad, l0, l1);
                }
                i += rows;
            }
            j += width;
        }
        l0 = l1;
    }
    let d = job.dst;
    // SAFETY: the destination holds M rows of N elements, `d_rs` apart.
    unsafe { write_tile(&scratch, n_pad, job.m, job.n, d, job.d_rs, job.accumulate) };
    SCRATCH.set(scratch);
}

/// One tile of the NN loop over weight rows `l0..l1`: `acc[r, c] += sum_l x[r, l] * w[l, c]` for
/// R rows and NR * L columns, accumulated in R x NR vector registers (loaded from and stored back
/// to the scratch, so every element is still summed over l in order from 0).
///
/// # Safety
/// `x` addresses R rows of K, `w` K rows (`w_rs` apart) of NR * L elements, `acc` R rows
/// (`acc_rs` apart) of NR * L.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn axpy_tile<S: Simd, const R: usize, const NR: usize>(
    job: &Job,
    x: *const f32,
    w: *const f32,
    w_rs: usize,
    acc_ptr: *mut f32,
    acc_rs: usize,
    l0: usize,
    l1: usize,
) {
    // SAFETY: the pointers address what the contract says; the CPU has S's features.
    unsafe {
        let mut acc: [[S::V; NR]; R] = std::array::from_fn(|r| {
            std::array::from_fn(|v| S::load(acc_ptr.add(r * acc_rs + v * S::L)))
        });
        for l in l0..l1 {
            let row = w.add(l * w_rs);
            for v in 0..NR {
                S::prefetch(row.wrapping_add(PREFETCH_AHEAD + v * S::L));
            }
            let wv: [S::V; NR] = std::array::from_fn(|v| S::load(row.add(v * S::L)));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let a = S::splat(*x.add(r * job.x_rs + l));
                for (acc_v, &w_v) in acc_r.iter_mut().zip(&wv) {
                    *acc_v = S::fma(w_v, a, *acc_v);
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            for (v, &acc_v) in acc_r.iter().enumerate() {
                S::store(acc_ptr.add(r * acc_rs + v * S::L), acc_v);
            }
        }
    }
}

/// The NT loop: for each group of up to 4 weight columns (each contiguous along K), tiles of up
/// to MR rows, MR x 4 dot products at once.
///
/// # Safety
/// See [`try_gemm`]; the CPU has `S`'s features; `MR <= 8`.
#[inline(always)]
unsafe fn dot_all<S: Simd, const MR: usize>(job: &Job) {
    let mut j = 0;
    while j < job.n {
        let cols = 4.min(job.n - j);
        let mut i = 0;
        while i < job.m {
            let rows = MR.min(job.m - i);
            // SAFETY: rows i..i+rows and columns j..j+cols lie inside the views.
            unsafe {
                let x = job.x.add(i * job.x_rs);
                let w = job.w.add(j * job.w_cs);
                let d = job.dst.add(i * job.d_rs + j);
                match cols {
                    4 => by_rows!(rows, dot_tile, S, [4], job, x, w, d),
                    3 => by_rows!(rows, dot_tile, S, [3], job, x, w, d),
                    2 => by_rows!(rows, dot_tile, S, [2], job, x, w, d),
                    _ => by_rows!(rows, dot_tile, S, [1], job, x, w, d),
                }
            }
            i += rows;
        }
        j += cols;
    }
}

/// One tile of the NT loop: `d[r, c] (+)= sum_l x[r, l] * w[l, c]` for R rows and C columns, each
/// column contiguous along K: L-lane partial sums, then the lanes and the K tail in order.
///
/// # Safety
/// `x` addresses R rows of K, `w` C columns (`w_cs` apart) of K, `d` R rows of C.
#[inline(always)]
unsafe fn dot_tile<S: Simd, const R: usize, const C: usize>(
    job: &Job,
    x: *const f32,
    w: *const f32,
    d: *mut f32,
) {
    let k = job.k;
    let body = k - k % S::L;
    // SAFETY: lanes l..l+L < K of every row and column lie inside the views; the CPU has S's
    // features.
    unsafe {
        let mut acc = [[S::zero(); C]; R];
        let mut l = 0;
        while l < body {
            for c in 0..C {
                // The same stretch of the next group's columns (read next, from DRAM).
                S::prefetch(w.wrapping_add((c + C) * job.w_cs + l));
            }
            let wv: [S::V; C] = std::array::from_fn(|c| S::load(w.add(c * job.w_cs + l)));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let xv = S::load(x.add(r * job.x_rs + l));
                for (acc_v, &w_v) in acc_r.iter_mut().zip(&wv) {
                    *acc_v = S::fma(w_v, xv, *acc_v);
                }
            }
            l += S::L;
        }
        let mut buf = [0.0f32; 8 * 4];
        for (r, acc_r) in acc.iter().enumerate() {
            for (c, &acc_v) in acc_r.iter().enumerate() {
                let mut v = S::sum_lanes(acc_v);
                for t in body..k {
                    v = (*w.add(c * job.w_cs + t)).mul_add(*x.add(r * job.x_rs + t), v);
                }
                buf[r * C + c] = v;
            }
        }
        write_tile(&buf, C, R, C, d, job.d_rs, job.accumulate);
    }
}

/// Instantiates one loop for one instruction set.
macro_rules! variant {
    ($name:ident, $features:literal, $all:ident, [$($p:tt),*]) => {
        /// See the module docs.
        ///
        /// # Safety
        /// The CPU has the features this variant is compiled for; see [`try_gemm`].
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name(job: &Job) {
            // SAFETY: forwarded contract.
            unsafe { $all::<$($p),*>(job) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unsafe fn $name(_: &Job) {}
    };
}

variant!(axpy_avx512, "avx512f,avx2,fma", axpy_all, [Avx512, 8, 2]);
variant!(dot_avx512, "avx512f,avx2,fma", dot_all, [Avx512, 4]);
variant!(axpy_avx2, "avx2,fma", axpy_all, [Avx2, 4, 2]);
variant!(dot_avx2, "avx2,fma", dot_all, [Avx2, 2]);
