//! Thin [`Tensor`] wrappers over the slice kernels, on any device: shapes are checked, the
//! kernels run in f32 and gradients come back as tensors of the input's shape. Response tensors
//! are (B, T).
//!
//! On the CPU they call the slice kernels (the numbers of the f64-checked definitions). On a GPU
//! the policy loss, value loss and per-token KL run there (`rlhf_tensor::ops::ppo`: the same
//! per-token arithmetic, reduced on the device): only their statistics cross to the host, and
//! the gradients and KL stay on the device. The entropy bonus, PPO-ptx term and GAE read their
//! inputs to the host: GAE is a sequential recurrence over each row, once per PPO step over
//! B x T floats, against the minibatch losses that run epochs x minibatches times.

use rlhf_tensor::ops::ppo as device;
use rlhf_tensor::{Shape, Tensor, TensorError};

use crate::{Gae, KlSpec, MeanTerm, PolicyLoss, Result, ValueLoss};

/// A per-token loss result with its gradient as a tensor of the input's shape (on a GPU the
/// statistics' own gradient vector is left empty: the gradient is only in `grad`).
#[derive(Debug, Clone, PartialEq)]
pub struct WithGrad<S> {
    /// The kernel's result (its gradient vector is moved into `grad`).
    pub stats: S,
    /// The gradient with respect to the differentiated input.
    pub grad: Tensor,
}

/// Checks that every tensor has `first`'s shape and has the same shape; returns its (B, T).
fn same_shape(op: &'static str, first: &Tensor, others: &[&Tensor]) -> Result<(usize, usize)> {
    for other in others {
        first.shape().expect_same(op, other.shape())?;
    }
    match *first.dims() {
        [b, t] => Ok((b, t)),
        _ => Err(TensorError::InvalidShape {
            op,
            shape: first.shape().clone(),
            expected: "(B, T) response tensors".into(),
        }
        .into()),
    }
}

fn tensor(data: Vec<f32>, shape: &Shape, like: &Tensor) -> Result<Tensor> {
    Ok(Tensor::from_vec(data, shape.clone(), like.device())?)
}

/// [`crate::policy_loss`] on (B, T) tensors; the gradient is d loss / d logp.
pub fn policy_loss(
    logp: &Tensor,
    old_logp: &Tensor,
    advantages: &Tensor,
    mask: &Tensor,
    cliprange: f64,
) -> Result<WithGrad<PolicyLoss<f32>>> {
    same_shape("policy_loss", logp, &[old_logp, advantages, mask])?;
    if logp.is_cuda() {
        let out = device::policy_loss(logp, old_logp, advantages, mask, cliprange as f32)?;
        let stats = PolicyLoss {
            loss: out.loss,
            grad_logp: Vec::new(),
            clipfrac: out.clipfrac,
            approxkl: out.approxkl,
            ratio_mean: out.ratio_mean,
        };
        return Ok(WithGrad {
            stats,
            grad: out.grad,
        });
    }
    let mut stats = crate::policy_loss(
        &logp.try_to_vec_f32()?,
        &old_logp.try_to_vec_f32()?,
        &advantages.try_to_vec_f32()?,
        &mask.try_to_vec_f32()?,
        cliprange,
    )?;
    let grad = tensor(std::mem::take(&mut stats.grad_logp), logp.shape(), logp)?;
    Ok(WithGrad { stats, grad })
}

/// [`crate::value_loss`] on (B, T) tensors; the gradient is d loss / d values.
pub fn value_loss(
    values: &Tensor,
    old_values: &Tensor,
    returns: &Tensor,
    mask: &Tensor,
    cliprange_value: f64,
) -> Result<WithGrad<ValueLoss<f32>>> {
    same_shape("value_loss", values, &[old_values, returns, mask])?;
    if values.is_cuda() {
        let out = device::value_loss(values, old_values, returns, mask, cliprange_value as f32)?;
        let stats = ValueLoss {
            loss: out.loss,
            grad_values: Vec::new(),
            clipfrac: out.clipfrac,
        };
        return Ok(WithGrad {
            stats,
            grad: out.grad,
        });
    }
    let mut stats = crate::value_loss(
        &values.try_to_vec_f32()?,
        &old_values.try_to_vec_f32()?,
        &returns.try_to_vec_f32()?,
        &mask.try_to_vec_f32()?,
        cliprange_value,
    )?;
    let grad = tensor(
        std::mem::take(&mut stats.grad_values),
        values.shape(),
        values,
    )?;
    Ok(WithGrad { stats, grad })
}

/// [`crate::entropy_bonus`] on (B, T) tensors; the gradient is d loss / d entropy.
pub fn entropy_bonus(
    entropy: &Tensor,
    mask: &Tensor,
    entropy_coef: f64,
) -> Result<WithGrad<MeanTerm<f32>>> {
    same_shape("entropy_bonus", entropy, &[mask])?;
    let mut stats = crate::entropy_bonus(
        &entropy.try_to_vec_f32()?,
        &mask.try_to_vec_f32()?,
        entropy_coef,
    )?;
    let grad = tensor(std::mem::take(&mut stats.grad), entropy.shape(), entropy)?;
    Ok(WithGrad { stats, grad })
}

/// [`crate::ptx_term`] on (N, L) tensors; the gradient is d loss / d ptx_logp.
pub fn ptx_term(
    ptx_logp: &Tensor,
    mask: &Tensor,
    gamma_ptx: f64,
) -> Result<WithGrad<MeanTerm<f32>>> {
    same_shape("ptx_term", ptx_logp, &[mask])?;
    let mut stats = crate::ptx_term(
        &ptx_logp.try_to_vec_f32()?,
        &mask.try_to_vec_f32()?,
        gamma_ptx,
    )?;
    let grad = tensor(std::mem::take(&mut stats.grad), ptx_logp.shape(), ptx_logp)?;
    Ok(WithGrad { stats, grad })
}

/// [`crate::per_token_kl`] on (B, T) tensors.
pub fn per_token_kl(
    logp: &Tensor,
    ref_logp: &Tensor,
    mask: &Tensor,
    spec: KlSpec,
) -> Result<Tensor> {
    same_shape("per_token_kl", logp, &[ref_logp, mask])?;
    if logp.is_cuda() {
        let estimator = match spec.estimator {
            crate::KlEstimator::K1 => device::KlTerm::K1,
            crate::KlEstimator::K2 => device::KlTerm::K2,
            crate::KlEstimator::K3 => device::KlTerm::K3,
        };
        let clamp = spec.clamp.map(|c| c as f32);
        return Ok(device::per_token_kl(
            logp, ref_logp, mask, estimator, clamp,
        )?);
    }
    let kl = crate::per_token_kl(
        &logp.try_to_vec_f32()?,
        &ref_logp.try_to_vec_f32()?,
        &mask.try_to_vec_f32()?,
        spec,
    )?;
    tensor(kl, logp.shape(), logp)
}

/// [`crate::gae()`] on (B, T) tensors: (advantages whitened over the mask, returns).
pub fn gae_whitened(
    rewards: &Tensor,
    values: &Tensor,
    mask: &Tensor,
    gamma: f64,
    lambda: f64,
) -> Result<(Tensor, Tensor)> {
    let (_, response_len) = same_shape("gae", rewards, &[values, mask])?;
    let mask_values = &mask.try_to_vec_f32()?;
    let Gae {
        advantages,
        returns,
    } = crate::gae(
        &rewards.try_to_vec_f32()?,
        &values.try_to_vec_f32()?,
        mask_values,
        response_len,
        gamma,
        lambda,
    )?;
    let whitened = crate::masked_whiten(&advantages, mask_values, true)?;
    Ok((
        tensor(whitened, rewards.shape(), rewards)?,
        tensor(returns, rewards.shape(), rewards)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlhf_tensor::Device;

    fn t(data: &[f32], shape: [usize; 2]) -> Tensor {
        Tensor::from_slice(data, shape, Device::Cpu).unwrap()
    }

    #[test]
    fn wrappers_agree_with_the_kernels_and_check_shapes() {
        let logp = t(&[-1.0, -0.5, -2.0, -0.1], [2, 2]);
        let old = t(&[-1.1, -0.4, -2.0, -0.3], [2, 2]);
        let adv = t(&[1.0, -1.0, 0.5, 2.0], [2, 2]);
        let mask = t(&[1.0, 1.0, 1.0, 0.0], [2, 2]);
        let out = policy_loss(&logp, &old, &adv, &mask, 0.2).unwrap();
        let direct = crate::policy_loss(
            logp.as_f32_slice().unwrap(),
            old.as_f32_slice().unwrap(),
            adv.as_f32_slice().unwrap(),
            mask.as_f32_slice().unwrap(),
            0.2,
        )
        .unwrap();
        assert_eq!(out.grad.to_vec_f32(), direct.grad_logp);
        assert_eq!(out.stats.loss, direct.loss);
        assert_eq!(out.grad.dims(), &[2, 2]);
        let wrong = t(&[1.0, 1.0], [1, 2]);
        let message = policy_loss(&logp, &old, &adv, &wrong, 0.2)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("[2, 2]") && message.contains("[1, 2]"),
            "{message}"
        );
        let (advantages, returns) = gae_whitened(&adv, &old, &mask, 1.0, 0.95).unwrap();
        assert_eq!(advantages.to_vec_f32()[3], 0.0);
        assert_eq!(returns.dims(), &[2, 2]);
        let flat = Tensor::from_slice(&[1.0, 1.0], [2], Device::Cpu).unwrap();
        assert!(per_token_kl(&flat, &flat, &flat, KlSpec::default()).is_err());
    }

    /// The device path's per-token arithmetic (`rlhf_tensor::ops::ppo`, here on the CPU: its
    /// reference kernel) against the f64 definitions of this crate, on random batches.
    #[test]
    fn device_ops_agree_with_the_f64_definitions() {
        use rlhf_tensor::Rng;
        use rlhf_tensor::testing::assert_close;
        let mut rng = Rng::new(11);
        let (b, r) = (7, 13);
        let n = b * r;
        let new: Vec<f32> = (0..n).map(|_| -2.0 + rng.normal() * 0.5).collect();
        let old: Vec<f32> = new.iter().map(|v| v + rng.normal() * 0.2).collect();
        let target: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
        let mask: Vec<f32> = (0..n)
            .map(|_| if rng.uniform() < 0.7 { 1.0 } else { 0.0 })
            .collect();
        let f64s = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
        let (n64, o64, t64, m64) = (f64s(&new), f64s(&old), f64s(&target), f64s(&mask));
        let [tn, to, tt, tm] = [&new, &old, &target, &mask].map(|v| t(v, [b, r]));

        let device = device::policy_loss(&tn, &to, &tt, &tm, 0.2).unwrap();
        let exact = crate::policy_loss(&n64, &o64, &t64, &m64, 0.2).unwrap();
        assert!(exact.clipfrac > 0.05 && exact.clipfrac < 0.95);
        let stats = [
            device.loss,
            device.clipfrac,
            device.approxkl,
            device.ratio_mean,
        ];
        let want = [exact.loss, exact.clipfrac, exact.approxkl, exact.ratio_mean];
        assert_close("policy stats", &f64s(&stats), &want, 1e-5, 1e-6);
        assert_close(
            "policy grad",
            &f64s(&device.grad.to_vec_f32()),
            &exact.grad_logp,
            1e-5,
            1e-7,
        );

        let device = device::value_loss(&tn, &to, &tt, &tm, 0.2).unwrap();
        let exact = crate::value_loss(&n64, &o64, &t64, &m64, 0.2).unwrap();
        let stats = [device.loss, device.clipfrac];
        assert_close(
            "value stats",
            &f64s(&stats),
            &[exact.loss, exact.clipfrac],
            1e-5,
            1e-6,
        );
        assert_close(
            "value grad",
            &f64s(&device.grad.to_vec_f32()),
            &exact.grad_values,
            1e-5,
            1e-7,
        );

        for (estimator, term) in [
            (crate::KlEstimator::K1, device::KlTerm::K1),
            (crate::KlEstimator::K2, device::KlTerm::K2),
            (crate::KlEstimator::K3, device::KlTerm::K3),
        ] {
            for clamp in [None, Some(0.1)] {
                let spec = KlSpec { estimator, clamp };
                let exact = crate::per_token_kl(&n64, &o64, &m64, spec).unwrap();
                let kl =
                    device::per_token_kl(&tn, &to, &tm, term, clamp.map(|c| c as f32)).unwrap();
                assert_close("kl", &f64s(&kl.to_vec_f32()), &exact, 1e-5, 1e-7);
            }
        }
    }
}
