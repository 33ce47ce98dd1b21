//! GELU kernels (tanh approximation, as GPT-2), elementwise over slices in rayon tasks.
//!
//! With u = sqrt(2/pi) (x + 0.044715 x^3) and s = sigmoid(2u):
//! 0.5 x (1 + tanh u) = x s, and its derivative is s + 2 x s (1 - s) du/dx,
//! since 1 + tanh u = 2s and 1 - tanh^2 u = 4 s (1 - s). Written with one exp per element so the
//! f32 path runs the vectorised exp; large |x| saturate to x or 0 (derivative 1 or 0), never NaN.

use rayon::prelude::*;

use crate::Float;
use crate::ops::softmax::rowwise::{TASK_ELEMS, exp_in_place};

/// Elements processed together: small enough to stay in L1 across the three passes.
const BLOCK: usize = 512;
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const CUBIC: f64 = 0.044_715;

/// `exp(-2u(x))` for each element of `x`, into `out`.
fn exp_minus_two_u<T: Float>(x: &[T], out: &mut [T]) {
    let (k, c) = (T::c(-2.0 * SQRT_2_OVER_PI), T::c(CUBIC));
    for (o, &v) in out.iter_mut().zip(x) {
        *o = k * (v + c * v * v * v);
    }
    exp_in_place(out);
}

/// `out = gelu(x)`.
pub fn gelu<T: Float>(x: &[T], out: &mut [T]) {
    out.par_chunks_mut(TASK_ELEMS)
        .zip(x.par_chunks(TASK_ELEMS))
        .for_each(|(out, x)| {
            for (out, x) in out.chunks_mut(BLOCK).zip(x.chunks(BLOCK)) {
                exp_minus_two_u(x, out);
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = v / (T::one() + *o);
                }
            }
        });
}

/// `dx = dout * gelu'(x)`.
pub fn gelu_backward<T: Float>(dout: &[T], x: &[T], dx: &mut [T]) {
    let (k, c3) = (T::c(SQRT_2_OVER_PI), T::c(3.0 * CUBIC));
    let two = T::c(2.0);
    dx.par_chunks_mut(TASK_ELEMS)
        .zip(x.par_chunks(TASK_ELEMS).zip(dout.par_chunks(TASK_ELEMS)))
        .for_each(|(dx, (x, dout))| {
            let blocks = dx
                .chunks_mut(BLOCK)
                .zip(x.chunks(BLOCK).zip(dout.chunks(BLOCK)));
            for (dx, (x, dout)) in blocks {
                exp_minus_two_u(x, dx);
                for ((d, &v), &g) in dx.iter_mut().zip(x).zip(dout) {
                    let s = T::one() / (T::one() + *d);
                    let du = k * (T::one() + c3 * v * v);
                    *d = g * (s + two * v * s * (T::one() - s) * du);
                }
            }
        });
}
