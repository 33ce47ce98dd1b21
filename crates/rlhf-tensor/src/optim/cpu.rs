//! Optimizer kernels on slices (generic, so tests can check them in f64).

use rayon::prelude::*;

use crate::Float;

const CHUNK: usize = 1 << 14;

/// Scalars of one AdamW step, with bias corrections precomputed.
#[derive(Debug, Clone, Copy)]
pub struct AdamWStep<T> {
    /// Learning rate.
    pub lr: T,
    /// First-moment decay.
    pub beta1: T,
    /// Second-moment decay.
    pub beta2: T,
    /// Added to the bias-corrected root of the second moment.
    pub eps: T,
    /// Decoupled weight decay (multiplied by lr).
    pub weight_decay: T,
    /// 1 - beta1^t.
    pub bias_correction1: T,
    /// 1 - beta2^t.
    pub bias_correction2: T,
}

/// One AdamW update, as PyTorch: p *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²;
/// p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps).
///
/// In f32 on an AVX2 CPU each chunk runs vectorised (8 lanes of sqrt and divide instead of one):
/// the same operations in the same order, so the result is bit for bit the scalar loop's.
pub fn adamw_update<T: Float>(
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
    s: AdamWStep<T>,
) {
    param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
        .for_each(|((p, g), (m, v))| adamw_chunk(p, g, m, v, s));
}

/// [`adamw_update`] on one chunk, dispatched to the AVX2 build of the loop where it helps.
fn adamw_chunk<T: Float>(p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], s: AdamWStep<T>) {
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && std::arch::is_x86_feature_detected!("avx2")
    {
        // SAFETY: T is f32 (checked above), so the casts change nothing; the CPU has AVX2.
        unsafe {
            let cast = |x: &mut [T]| std::slice::from_raw_parts_mut(x.as_mut_ptr().cast(), x.len());
            let g = std::slice::from_raw_parts(g.as_ptr().cast::<f32>(), g.len());
            let s32 = AdamWStep::<f32> {
                lr: s.lr.to_f32().unwrap_or(f32::NAN),
                beta1: s.beta1.to_f32().unwrap_or(f32::NAN),
                beta2: s.beta2.to_f32().unwrap_or(f32::NAN),
                eps: s.eps.to_f32().unwrap_or(f32::NAN),
                weight_decay: s.weight_decay.to_f32().unwrap_or(f32::NAN),
                bias_correction1: s.bias_correction1.to_f32().unwrap_or(f32::NAN),
                bias_correction2: s.bias_correction2.to_f32().unwrap_or(f32::NAN),
            };
            adamw_chunk_avx2(cast(p), g, cast(m), cast(v), s32);
        }
        return;
    }
    adamw_chunk_with(p, g, m, v, s);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn adamw_chunk_avx2(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: AdamWStep<f32>) {
    adamw_chunk_with(p, g, m, v, s);
}

/// The AdamW loop itself (inlined into each build above). Zipped iterators, so the compiler
/// sees equal lengths and vectorises without bounds checks.
#[inline(always)]
fn adamw_chunk_with<T: Float>(p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], s: AdamWStep<T>) {
    let decay = T::one() - s.lr * s.weight_decay;
    let step_size = s.lr / s.bias_correction1;
    let root_bc2 = s.bias_correction2.sqrt();
    let (one_minus_b1, one_minus_b2) = (T::one() - s.beta1, T::one() - s.beta2);
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m = s.beta1 * *m + one_minus_b1 * g;
        *v = s.beta2 * *v + one_minus_b2 * g * g;
        let denom = v.sqrt() / root_bc2 + s.eps;
        *p = *p * decay - step_size * *m / denom;
    }
}

/// One SGD update, as PyTorch: g' = g + wd p; buf = momentum buf + (1 - dampening) g' (buf = g'
/// on the first step); g' = nesterov ? g' + momentum buf : buf; p -= lr g'.
#[allow(clippy::too_many_arguments)]
pub fn sgd_update<T: Float>(
    param: &mut [T],
    grad: &[T],
    momentum_buffer: Option<&mut [T]>,
    first_step: bool,
    lr: T,
    momentum: T,
    dampening: T,
    weight_decay: T,
    nesterov: bool,
) {
    match momentum_buffer {
        None => param
            .par_chunks_mut(CHUNK)
            .zip(grad.par_chunks(CHUNK))
            .for_each(|(p, g)| {
                for (p, &g) in p.iter_mut().zip(g) {
                    *p = *p - lr * (g + weight_decay * *p);
                }
            }),
        Some(buffer) => param
            .par_chunks_mut(CHUNK)
            .zip(grad.par_chunks(CHUNK))
            .zip(buffer.par_chunks_mut(CHUNK))
            .for_each(|((p, g), b)| {
                for i in 0..p.len() {
                    let g = g[i] + weight_decay * p[i];
                    b[i] = if first_step {
                        g
                    } else {
                        momentum * b[i] + (T::one() - dampening) * g
                    };
                    let direction = if nesterov { g + momentum * b[i] } else { b[i] };
                    p[i] = p[i] - lr * direction;
                }
            }),
    }
}

/// Sum of squares, accumulated in f64 whatever T is; partials added in chunk order (deterministic).
pub fn sum_of_squares<T: Float>(values: &[T]) -> f64 {
    let partials: Vec<f64> = values
        .par_chunks(CHUNK)
        .map(|c| {
            c.iter()
                .map(|&v| {
                    let v = v.to_f64().unwrap_or(f64::NAN);
                    v * v
                })
                .sum::<f64>()
        })
        .collect();
    partials.into_iter().sum()
}

/// Multiplies every element by `factor`.
pub fn scale_in_place<T: Float>(values: &mut [T], factor: T) {
    values
        .par_chunks_mut(CHUNK)
        .for_each(|c| c.iter_mut().for_each(|v| *v = *v * factor));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dispatched f32 update (vectorised where the CPU allows) equals the scalar loop bit
    /// for bit, across chunk boundaries and a ragged tail.
    #[test]
    fn vectorised_adamw_equals_the_scalar_loop() {
        let n = 2 * CHUNK + 13;
        let init = |seed: u32| -> Vec<f32> {
            (0..n as u32)
                .map(|i| ((i.wrapping_mul(2654435761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
                .collect()
        };
        let (mut p, g, mut m) = (init(1), init(2), init(3));
        let mut v: Vec<f32> = init(4).iter().map(|x| x * x).collect();
        let (mut p2, mut m2, mut v2) = (p.clone(), m.clone(), v.clone());
        let s = AdamWStep {
            lr: 3e-3f32,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            bias_correction1: 1.0 - 0.9f32.powi(3),
            bias_correction2: 1.0 - 0.95f32.powi(3),
        };
        adamw_update(&mut p, &g, &mut m, &mut v, s);
        adamw_chunk_with(&mut p2, &g, &mut m2, &mut v2, s);
        for (name, a, b) in [("p", &p, &p2), ("m", &m, &m2), ("v", &v, &v2)] {
            let differ = a
                .iter()
                .zip(b)
                .position(|(x, y)| x.to_bits() != y.to_bits());
            assert_eq!(differ, None, "{name} differs");
        }
    }
}
