//! Row primitives shared by the row-wise ops (softmax, cross-entropy, log-probs, layernorm, GELU):
//! reductions with eight independent accumulators (so the compiler vectorises them without
//! reassociating a single sum), a branch-free `exp` for f32, and the rayon task size.
//!
//! The f32 `exp` follows the classic Cephes `expf` scheme: split x = n ln2 + r with |r| <= ln2/2,
//! a degree-7 polynomial for e^r, and 2^n built in the exponent bits. Relative error stays below
//! 2^-22 over the whole range; inputs below -87.33 give 0 and above 88.37 give +inf, NaN stays NaN.
//!
//! Where the CPU has AVX2 and FMA (detected at run time) the f32 exp loops run 8 lanes wide with
//! fused multiply-adds. Results are reproducible run to run on one machine, whatever the thread
//! count (rows never split across tasks), but may differ in the last bits between a CPU with FMA
//! and one without.

use std::any::TypeId;

use crate::Float;

/// Elements per rayon task: row-wise ops hand each task whole rows totalling about this many.
pub(crate) const TASK_ELEMS: usize = 1 << 14;

/// Rows per rayon task for rows of `cols` elements (at least one).
pub fn rows_per_task(cols: usize) -> usize {
    (TASK_ELEMS / cols.max(1)).max(1)
}

const LANES: usize = 8;

/// The largest element (-inf for an empty slice; NaN elements are skipped, callers see them
/// again when they use the values).
#[inline(always)]
pub fn max<T: Float>(xs: &[T]) -> T {
    let mut acc = [T::neg_infinity(); LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a = if x > *a { x } else { *a };
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(T::neg_infinity(), |m, &x| if x > m { x } else { m });
    acc.iter().fold(tail, |m, &x| if x > m { x } else { m })
}

/// The sum of the elements.
#[inline(always)]
pub fn sum<T: Float>(xs: &[T]) -> T {
    let mut acc = [T::zero(); LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a = *a + x;
        }
    }
    let tail = chunks.remainder().iter().fold(T::zero(), |s, &x| s + x);
    combine(acc) + tail
}

/// The dot product of two equally long slices.
#[inline(always)]
pub fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [T::zero(); LANES];
    let mut a_chunks = a.chunks_exact(LANES);
    let mut b_chunks = b.chunks_exact(LANES);
    for (ca, cb) in (&mut a_chunks).zip(&mut b_chunks) {
        for l in 0..LANES {
            acc[l] = acc[l] + ca[l] * cb[l];
        }
    }
    let tail = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .fold(T::zero(), |s, (&x, &y)| s + x * y);
    combine(acc) + tail
}

/// `sum(a[i] * (b[i] - shift))`: an expectation taken relative to `shift` (a row's maximum), so
/// that no precision is lost to a large common offset.
#[inline(always)]
pub fn dot_shifted<T: Float>(a: &[T], b: &[T], shift: T) -> T {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [T::zero(); LANES];
    let mut a_chunks = a.chunks_exact(LANES);
    let mut b_chunks = b.chunks_exact(LANES);
    for (ca, cb) in (&mut a_chunks).zip(&mut b_chunks) {
        for l in 0..LANES {
            acc[l] = acc[l] + ca[l] * (cb[l] - shift);
        }
    }
    let tail = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .fold(T::zero(), |s, (&x, &y)| s + x * (y - shift));
    combine(acc) + tail
}

/// `sum((x[i] - mean)^2)`: the second pass of a two-pass variance.
#[inline(always)]
pub fn squared_deviations<T: Float>(xs: &[T], mean: T) -> T {
    let mut acc = [T::zero(); LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a = *a + (x - mean) * (x - mean);
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(T::zero(), |s, &x| s + (x - mean) * (x - mean));
    combine(acc) + tail
}

/// Pairwise sum of the lane accumulators.
#[inline(always)]
fn combine<T: Float>(acc: [T; LANES]) -> T {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// `dst[i] = exp((src[i] - shift) * scale)`, returning the sum of `dst`. With `shift` the row's
/// maximum and `scale` > 0 this is the numerator of a (temperature-scaled) softmax. For f32 the
/// shift, the exp and the sum run in one vectorised pass.
#[inline(always)]
pub fn exp_shifted<T: Float>(src: &[T], shift: T, scale: T, dst: &mut [T]) -> T {
    exp_shifted_impl::<T, false>(src, shift, scale, dst).0
}

/// As [`exp_shifted`], also returning `sum(dst[i] * (src[i] - shift) * scale)` from the same
/// pass: with the sum, the softmax-weighted mean of the shifted logits (for the entropy).
#[inline(always)]
pub fn exp_shifted_moment<T: Float>(src: &[T], shift: T, scale: T, dst: &mut [T]) -> (T, T) {
    exp_shifted_impl::<T, true>(src, shift, scale, dst)
}

#[inline(always)]
fn exp_shifted_impl<T: Float, const MOMENT: bool>(
    src: &[T],
    shift: T,
    scale: T,
    dst: &mut [T],
) -> (T, T) {
    debug_assert_eq!(src.len(), dst.len());
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        // SAFETY: T is f32 (the TypeId check above), so both slices have exactly f32's layout.
        let (src, dst) = unsafe {
            (
                &*(src as *const [T] as *const [f32]),
                &mut *(dst as *mut [T] as *mut [f32]),
            )
        };
        let (shift, scale) = (
            shift.to_f32().unwrap_or(f32::NAN),
            scale.to_f32().unwrap_or(f32::NAN),
        );
        let (total, moment) = exp_shifted_f32::<MOMENT>(src, shift, scale, dst);
        return (T::c(total as f64), T::c(moment as f64));
    }
    let mut moment = T::zero();
    for (d, &x) in dst.iter_mut().zip(src) {
        let z = (x - shift) * scale;
        *d = z.exp();
        if MOMENT {
            moment = moment + *d * z;
        }
    }
    (sum(dst), moment)
}

fn exp_shifted_f32<const MOMENT: bool>(
    src: &[f32],
    shift: f32,
    scale: f32,
    dst: &mut [f32],
) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked on the line above).
            return unsafe { exp_shifted_f32_avx2_fma::<MOMENT>(src, shift, scale, dst) };
        }
    }
    exp_shifted_f32_with::<false, MOMENT>(src, shift, scale, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn exp_shifted_f32_avx2_fma<const MOMENT: bool>(
    src: &[f32],
    shift: f32,
    scale: f32,
    dst: &mut [f32],
) -> (f32, f32) {
    exp_shifted_f32_with::<true, MOMENT>(src, shift, scale, dst)
}

/// One pass: 16 independent sums (two 8-lane registers), so the loop vectorises.
#[inline(always)]
fn exp_shifted_f32_with<const FMA: bool, const MOMENT: bool>(
    src: &[f32],
    shift: f32,
    scale: f32,
    dst: &mut [f32],
) -> (f32, f32) {
    const WIDTH: usize = 16;
    let mut acc = [0.0f32; WIDTH];
    let mut acc_moment = [0.0f32; WIDTH];
    let mut dst_chunks = dst.chunks_exact_mut(WIDTH);
    let mut src_chunks = src.chunks_exact(WIDTH);
    for (d, s) in (&mut dst_chunks).zip(&mut src_chunks) {
        for l in 0..WIDTH {
            let z = (s[l] - shift) * scale;
            let e = exp_f32_with::<FMA>(z);
            d[l] = e;
            acc[l] += e;
            if MOMENT {
                acc_moment[l] = madd::<FMA>(e, z, acc_moment[l]);
            }
        }
    }
    let (mut tail, mut tail_moment) = (0.0, 0.0);
    let rest = dst_chunks
        .into_remainder()
        .iter_mut()
        .zip(src_chunks.remainder());
    for (d, &s) in rest {
        let z = (s - shift) * scale;
        let e = exp_f32_with::<FMA>(z);
        *d = e;
        tail += e;
        tail_moment += e * z;
    }
    (
        acc.iter().sum::<f32>() + tail,
        acc_moment.iter().sum::<f32>() + tail_moment,
    )
}

/// `x = exp(x)` for every element: the vectorised polynomial for f32 (8 lanes with FMA where
/// the CPU has AVX2 and FMA, detected at run time), `Float::exp` otherwise.
#[inline(always)]
pub fn exp_in_place<T: Float>(xs: &mut [T]) {
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        // SAFETY: T is f32 (the TypeId check above), so the slice has exactly f32's layout.
        let xs = unsafe { &mut *(xs as *mut [T] as *mut [f32]) };
        exp_f32_slice(xs);
    } else {
        xs.iter_mut().for_each(|x| *x = x.exp());
    }
}

#[inline(always)]
fn exp_f32_slice(xs: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked on the line above).
            unsafe { exp_f32_slice_avx2_fma(xs) };
            return;
        }
    }
    xs.iter_mut().for_each(|x| *x = exp_f32_with::<false>(*x));
}

/// The same loop compiled for AVX2 + FMA: the compiler widens it to 8 lanes and fuses the
/// polynomial's multiply-adds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn exp_f32_slice_avx2_fma(xs: &mut [f32]) {
    xs.iter_mut().for_each(|x| *x = exp_f32_with::<true>(*x));
}

/// Branch-free single-precision exp (see the module docs); inlined so loops vectorise.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    exp_f32_with::<false>(x)
}

/// `a * b + c`, fused when `FMA` (only used where the CPU has FMA, else it would call libm).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

#[inline(always)]
fn exp_f32_with<const FMA: bool>(x: f32) -> f32 {
    const HI: f32 = 88.37;
    const LO: f32 = -87.33;
    // ln 2 split in two so that n * LN2_HI is exact for |n| <= 127 (Cody–Waite).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding it rounds to the nearest integer and leaves that integer in the low
    // mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    // `clamp` and the comparisons below let NaN flow through to the result.
    let clamped = x.clamp(LO, HI);
    let shifted = madd::<FMA>(clamped, std::f32::consts::LOG2_E, ROUND);
    let n = shifted - ROUND;
    let r = madd::<FMA>(-n, LN2_LO, madd::<FMA>(-n, LN2_HI, clamped));
    // e^r on [-ln2/2, ln2/2] (Cephes expf coefficients), Horner's scheme.
    let mut p = 1.987_569_2e-4;
    for coefficient in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        p = madd::<FMA>(p, r, coefficient);
    }
    let poly = madd::<FMA>(p, r * r, r + 1.0);
    let exponent = (shifted.to_bits() as i32 - ROUND.to_bits() as i32 + 127) << 23;
    let value = poly * f32::from_bits(exponent as u32);
    if x < LO {
        0.0
    } else if x > HI {
        f32::INFINITY
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_f32_is_accurate_over_the_range() {
        let mut worst = 0.0f64;
        let mut x = -87.0f64;
        while x < 88.0 {
            let got = exp_f32(x as f32) as f64;
            let expected = (x as f32 as f64).exp();
            worst = worst.max(((got - expected) / expected).abs());
            x += 0.001_37;
        }
        assert!(worst < 2.5e-7, "worst relative error {worst}");
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
        // The slice path (AVX2 + FMA where available) agrees with the scalar one.
        let xs: Vec<f32> = (0..1003).map(|i| -90.0 + 0.18 * i as f32).collect();
        let mut fast = xs.clone();
        exp_in_place(&mut fast);
        for (&x, &f) in xs.iter().zip(&fast) {
            let expected = (x as f64).exp();
            let error = if expected < 1e-37 {
                f as f64
            } else {
                (f as f64 - expected) / expected
            };
            assert!(
                error.abs() < 2.5e-7 || (x > 88.37 && f == f32::INFINITY),
                "exp({x}) = {f}"
            );
        }
    }

    #[test]
    fn reductions_agree_with_naive_loops_on_odd_lengths() {
        for n in [0usize, 1, 7, 8, 9, 31, 100] {
            let xs: Vec<f64> = crate::testing::random_values(n as u64, n);
            let ys: Vec<f64> = crate::testing::random_values(n as u64 + 7, n);
            let naive_sum: f64 = xs.iter().sum();
            let naive_dot: f64 = xs.iter().zip(&ys).map(|(a, b)| a * b).sum();
            let naive_max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert!((sum(&xs) - naive_sum).abs() < 1e-12);
            assert!((dot(&xs, &ys) - naive_dot).abs() < 1e-12);
            assert_eq!(max(&xs), naive_max);
        }
        let mut row = vec![0.5f32, -1.0, 2.0];
        let total = exp_shifted(&row.clone(), 2.0, 1.0, &mut row);
        assert!((total - (1.0 + (-1.5f32).exp() + (-3.0f32).exp())).abs() < 1e-6);
    }
}
