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
pub fn adamw_update<T: Float>(
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
    s: AdamWStep<T>,
) {
    let decay = T::one() - s.lr * s.weight_decay;
    let step_size = s.lr / s.bias_correction1;
    let root_bc2 = s.bias_correction2.sqrt();
    param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
        .for_each(|((p, g), (m, v))| {
            for i in 0..p.len() {
                let g = g[i];
                m[i] = s.beta1 * m[i] + (T::one() - s.beta1) * g;
                v[i] = s.beta2 * v[i] + (T::one() - s.beta2) * g * g;
                let denom = v[i].sqrt() / root_bc2 + s.eps;
                p[i] = p[i] * decay - step_size * m[i] / denom;
            }
        });
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
