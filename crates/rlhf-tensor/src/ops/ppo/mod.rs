//! PPO's per-token losses on any device, reduced to scalars there: the clipped policy loss, the
//! clipped value loss (with their gradients, which stay on the device) and the per-token KL
//! estimators. Only the statistics (a few floats) cross to the host. Inputs are (B, T) f32
//! tensors of one shape (log-probs, values, advantages, returns, a 0/1 mask); `rlhf-ppo` holds
//! the definitions and the f64-checked slice versions.
//!
//! How: one kernel writes a statistics row and a raw gradient per token (`cpu` is its
//! reference), the deterministic column sum (`elementwise::add_bias_backward`) reduces the rows,
//! and the gradient is scaled by 1 / kept tokens on the device.

pub mod cpu;
mod cuda;

use crate::ops::elementwise::{add_bias_backward, scale};
use crate::tensor::check_same_device;
use crate::{Result, Tensor, TensorError};

/// The clipped policy loss of a batch and its gradient.
#[derive(Debug, Clone)]
pub struct PolicyLossOut {
    /// Masked mean of max(-A rho, -A clip(rho, 1 - eps, 1 + eps)).
    pub loss: f32,
    /// Share of kept tokens where the clipped term won.
    pub clipfrac: f32,
    /// 0.5 * masked mean of (logp - old_logp)².
    pub approxkl: f32,
    /// Masked mean of rho.
    pub ratio_mean: f32,
    /// Kept tokens.
    pub kept: usize,
    /// d loss / d logp, logp's shape, on its device.
    pub grad: Tensor,
}

/// The clipped value loss of a batch and its gradient.
#[derive(Debug, Clone)]
pub struct ValueLossOut {
    /// 0.5 * masked mean of max((V - R)², (V_clip - R)²).
    pub loss: f32,
    /// Share of kept tokens where the clipped term won.
    pub clipfrac: f32,
    /// Kept tokens.
    pub kept: usize,
    /// d loss / d values, values' shape, on their device.
    pub grad: Tensor,
}

/// Which per-token KL estimator [`per_token_kl`] computes, with d = logp - ref_logp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KlTerm {
    /// d.
    K1,
    /// d² / 2.
    K2,
    /// exp(-d) - 1 + d.
    K3,
}

/// Checks that the four inputs share one shape, one device and f32 storage.
fn check_inputs(op: &'static str, x: [&Tensor; 4]) -> Result<()> {
    for other in &x[1..] {
        x[0].shape().expect_same(op, other.shape())?;
        check_same_device(op, x[0], other)?;
    }
    if x[0].numel() == 0 {
        return Err(TensorError::invalid(op, "the inputs are empty"));
    }
    Ok(())
}

/// Column sums of `stats` (n, k) on the host, after checking the last column (bad-mask flags)
/// is 0 and the first (kept tokens) is positive; returns the sums and 1 / kept.
fn reduced(op: &'static str, stats: &Tensor) -> Result<(Vec<f32>, f32)> {
    let sums = add_bias_backward(stats)?.try_to_vec_f32()?;
    let (kept, bad) = (sums[0], sums[sums.len() - 1]);
    if bad > 0.0 {
        return Err(TensorError::invalid(
            op,
            format!("the mask holds {bad} values other than 0 and 1"),
        ));
    }
    if kept < 1.0 {
        return Err(TensorError::invalid(op, "the mask keeps no token"));
    }
    Ok((sums, 1.0 / kept))
}

/// Host statistics rows and raw gradients from a per-token function over four f32 inputs.
fn cpu_tokens<const K: usize>(
    x: [&Tensor; 4],
    token: impl Fn(f32, f32, f32, f32) -> ([f32; K], f32),
) -> Result<(Tensor, Tensor)> {
    let [a, b, c, m] = [
        x[0].as_f32_slice()?,
        x[1].as_f32_slice()?,
        x[2].as_f32_slice()?,
        x[3].as_f32_slice()?,
    ];
    let n = a.len();
    let mut stats = Vec::with_capacity(n * K);
    let mut grad = Vec::with_capacity(n);
    for i in 0..n {
        let (row, g) = token(a[i], b[i], c[i], m[i]);
        stats.extend_from_slice(&row);
        grad.push(g);
    }
    Ok((
        Tensor::from_vec(stats, [n, K], x[0].device())?,
        Tensor::from_vec(grad, x[0].shape().clone(), x[0].device())?,
    ))
}

/// PPO's clipped surrogate loss from `logp`, `old_logp`, `advantages` and `mask` (B, T), with
/// the ratio clipped to [1 - cliprange, 1 + cliprange].
///
/// ```
/// use rlhf_tensor::{Device, Tensor, ops::ppo::policy_loss};
/// let t = |v: &[f32]| Tensor::from_slice(v, [1, v.len()], Device::Cpu).unwrap();
/// // rho = e^0.5 > 1.2 with A = 1: the clipped term -1.2 wins, no gradient; token 2 is masked.
/// let out = policy_loss(&t(&[0.5, 3.0]), &t(&[0.0, 0.0]), &t(&[1.0, 9.0]), &t(&[1.0, 0.0]), 0.2)?;
/// assert!((out.loss + 1.2).abs() < 1e-6);
/// assert_eq!((out.clipfrac, out.kept), (1.0, 1));
/// assert_eq!(out.grad.to_vec_f32(), vec![0.0, 0.0]);
/// # Ok::<(), rlhf_tensor::TensorError>(())
/// ```
pub fn policy_loss(
    logp: &Tensor,
    old_logp: &Tensor,
    advantages: &Tensor,
    mask: &Tensor,
    cliprange: f32,
) -> Result<PolicyLossOut> {
    let op = "ppo::policy_loss";
    let x = [logp, old_logp, advantages, mask];
    check_inputs(op, x)?;
    if !(cliprange > 0.0 && cliprange < 1.0) {
        return Err(TensorError::invalid(
            op,
            format!("cliprange must be in (0, 1), got {cliprange}"),
        ));
    }
    let (low, high) = (1.0 - cliprange, 1.0 + cliprange);
    let (stats, raw) = if logp.is_cuda() {
        cuda::policy_tokens(x, low, high)?
    } else {
        cpu_tokens(x, |lp, old, a, m| {
            cpu::policy_token(lp, old, a, m, low, high)
        })?
    };
    let (sums, inv) = reduced(op, &stats)?;
    Ok(PolicyLossOut {
        loss: sums[1] * inv,
        clipfrac: sums[2] * inv,
        approxkl: 0.5 * sums[3] * inv,
        ratio_mean: sums[4] * inv,
        kept: sums[0] as usize,
        grad: scale(&raw, inv)?,
    })
}

/// PPO's clipped value loss from `values`, `old_values`, `returns` and `mask` (B, T), with the
/// new values clipped to old ± `cliprange_value`.
pub fn value_loss(
    values: &Tensor,
    old_values: &Tensor,
    returns: &Tensor,
    mask: &Tensor,
    cliprange_value: f32,
) -> Result<ValueLossOut> {
    let op = "ppo::value_loss";
    let x = [values, old_values, returns, mask];
    check_inputs(op, x)?;
    if !(cliprange_value > 0.0 && cliprange_value.is_finite()) {
        return Err(TensorError::invalid(
            op,
            format!("cliprange_value must be positive, got {cliprange_value}"),
        ));
    }
    let (stats, raw) = if values.is_cuda() {
        cuda::value_tokens(x, cliprange_value)?
    } else {
        cpu_tokens(x, |v, old, r, m| {
            cpu::value_token(v, old, r, m, cliprange_value)
        })?
    };
    let (sums, inv) = reduced(op, &stats)?;
    Ok(ValueLossOut {
        loss: 0.5 * sums[1] * inv,
        clipfrac: sums[2] * inv,
        kept: sums[0] as usize,
        grad: scale(&raw, inv)?,
    })
}

/// The per-token KL estimate (B, T) between `logp` and `ref_logp` (B, T), 0 where `mask` is 0,
/// the log-ratio clamped to [-c, c] when `clamp` is `Some(c)` (c > 0); stays on the device.
pub fn per_token_kl(
    logp: &Tensor,
    ref_logp: &Tensor,
    mask: &Tensor,
    estimator: KlTerm,
    clamp: Option<f32>,
) -> Result<Tensor> {
    let op = "ppo::per_token_kl";
    check_inputs(op, [logp, ref_logp, mask, mask])?;
    let clamp = match clamp {
        Some(c) if !(c > 0.0 && c.is_finite()) => {
            return Err(TensorError::invalid(
                op,
                format!("clamp must be positive, got {c}"),
            ));
        }
        Some(c) => c,
        None => 0.0,
    };
    let code = match estimator {
        KlTerm::K1 => 0,
        KlTerm::K2 => 1,
        KlTerm::K3 => 2,
    };
    let (kl, bad) = if logp.is_cuda() {
        cuda::kl_tokens(logp, ref_logp, mask, code, clamp)?
    } else {
        let (lp, rp, m) = (
            logp.as_f32_slice()?,
            ref_logp.as_f32_slice()?,
            mask.as_f32_slice()?,
        );
        let (kl, bad): (Vec<f32>, Vec<f32>) = (0..lp.len())
            .map(|i| {
                let (v, b) = cpu::kl_token(lp[i], rp[i], m[i], code, clamp);
                (v, f32::from(b))
            })
            .unzip();
        let n = bad.len();
        (
            Tensor::from_vec(kl, logp.shape().clone(), logp.device())?,
            Tensor::from_vec(bad, [n], logp.device())?,
        )
    };
    let n = bad.numel();
    let n_bad = add_bias_backward(&bad.reshape([n, 1])?)?.try_to_vec_f32()?[0];
    if n_bad > 0.0 {
        return Err(TensorError::invalid(
            op,
            format!("the mask holds {n_bad} values other than 0 and 1"),
        ));
    }
    Ok(kl)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Device;

    fn t(data: &[f32]) -> Tensor {
        Tensor::from_slice(data, [1, data.len()], Device::Cpu).unwrap()
    }

    #[test]
    fn policy_and_value_losses_by_hand() {
        // eps = 0.2; d = logp - old. 1) rho 1.1, A 2: inside, l = -2.2, grad -2.2 / 3.
        // 2) rho 1.5, A 1: clipped -1.2 wins, grad 0. 3) rho 1, A -1: l = 1, grad 1 / 3.
        // The fourth token is masked.
        let logp = t(&[1.1f32.ln(), 1.5f32.ln(), 0.0, 5.0]);
        let old = t(&[0.0, 0.0, 0.0, 0.0]);
        let adv = t(&[2.0, 1.0, -1.0, 7.0]);
        let mask = t(&[1.0, 1.0, 1.0, 0.0]);
        let out = policy_loss(&logp, &old, &adv, &mask, 0.2).unwrap();
        assert!(
            (out.loss - (-2.2 - 1.2 + 1.0) / 3.0).abs() < 1e-6,
            "{out:?}"
        );
        assert!((out.clipfrac - 1.0 / 3.0).abs() < 1e-7);
        assert!((out.ratio_mean - 3.6 / 3.0).abs() < 1e-6);
        let grad = out.grad.to_vec_f32();
        let want = [-2.2 / 3.0, 0.0, 1.0 / 3.0, 0.0];
        assert!(
            grad.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6),
            "{grad:?}"
        );
        // Value: eps_v 0.2. V 1 (old 0.9) R 0.5 -> 0.25, grad 0.5 / 2; V 2 (old 1 -> 1.2) R 3:
        // 1 vs 3.24 -> clipped, grad 0.
        let out = value_loss(
            &t(&[1.0, 2.0, 0.0, 0.0]),
            &t(&[0.9, 1.0, 0.0, 0.0]),
            &t(&[0.5, 3.0, 0.0, 0.0]),
            &t(&[1.0, 1.0, 0.0, 0.0]),
            0.2,
        )
        .unwrap();
        assert!(
            (out.loss - 0.5 * (0.25 + 3.24) / 2.0).abs() < 1e-6,
            "{out:?}"
        );
        assert_eq!((out.clipfrac, out.kept), (0.5, 2));
        assert_eq!(out.grad.to_vec_f32(), vec![0.25, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn kl_estimators_and_bad_input() {
        let (lp, rp, mask) = (
            t(&[-1.0, -2.0, 0.0]),
            t(&[-1.5, 0.0, 0.0]),
            t(&[1.0, 0.0, 1.0]),
        );
        let k2 = per_token_kl(&lp, &rp, &mask, KlTerm::K2, None).unwrap();
        assert_eq!(k2.to_vec_f32(), vec![0.125, 0.0, 0.0]);
        let k1 = per_token_kl(&lp, &rp, &mask, KlTerm::K1, Some(0.1)).unwrap();
        assert_eq!(k1.to_vec_f32(), vec![0.1, 0.0, 0.0]);
        let k3 = per_token_kl(&lp, &rp, &mask, KlTerm::K3, None).unwrap();
        assert!((k3.to_vec_f32()[0] - ((-0.5f32).exp_m1() + 0.5)).abs() < 1e-7);
        let half = t(&[1.0, 0.5, 1.0]);
        let message = per_token_kl(&lp, &rp, &half, KlTerm::K1, None)
            .unwrap_err()
            .to_string();
        assert!(message.contains("other than 0 and 1"), "{message}");
        let none = t(&[0.0, 0.0, 0.0]);
        let message = policy_loss(&lp, &rp, &rp, &none, 0.2)
            .unwrap_err()
            .to_string();
        assert!(message.contains("keeps no token"), "{message}");
        assert!(policy_loss(&lp, &rp, &rp, &mask, 1.5).is_err());
        assert!(value_loss(&lp, &rp, &t(&[1.0]), &mask, 0.2).is_err());
    }
}
