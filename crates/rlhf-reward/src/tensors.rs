//! Thin [`Tensor`] wrappers over the slice kernels, on any device (the per-response or per-token
//! values are read to the host, the gradients go back to the inputs' device): shapes are checked,
//! the kernels run in f32 and gradients come back as tensors of the inputs' shapes (rewards are (N)
//! or (N, 1) scalar head outputs; rule logits are (N, R)).

use rlhf_tensor::{Tensor, TensorError};

use crate::{Result, RuleLoss};

/// A loss value with gradients as tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorPairLoss {
    /// The loss.
    pub loss: f32,
    /// d loss / d chosen rewards, shaped like them.
    pub grad_chosen: Tensor,
    /// d loss / d rejected rewards, shaped like them.
    pub grad_rejected: Tensor,
}

fn same_shape(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    a.shape().expect_same(op, b.shape())?;
    Ok(())
}

fn like(data: Vec<f32>, t: &Tensor) -> Result<Tensor> {
    Ok(Tensor::from_vec(data, t.shape().clone(), t.device())?)
}

/// [`crate::bradley_terry_loss`] plus the centering term (coefficient 0 for none) on reward
/// tensors of one shape; `margins` shaped like them when given.
pub fn pairwise_loss(
    chosen: &Tensor,
    rejected: &Tensor,
    margins: Option<&Tensor>,
    centering: f64,
) -> Result<TensorPairLoss> {
    let op = "pairwise_loss";
    same_shape(op, chosen, rejected)?;
    if let Some(m) = margins {
        same_shape(op, chosen, m)?;
    }
    let (c, r) = (&chosen.try_to_vec_f32()?, &rejected.try_to_vec_f32()?);
    let margins = margins.map(Tensor::try_to_vec_f32).transpose()?;
    let mut out = crate::bradley_terry_loss(c, r, margins.as_deref())?;
    if centering > 0.0 {
        out.add(&crate::centering_loss(c, r, centering)?)?;
    }
    Ok(TensorPairLoss {
        loss: out.loss,
        grad_chosen: like(out.grad_chosen, chosen)?,
        grad_rejected: like(out.grad_rejected, rejected)?,
    })
}

/// [`crate::kwise_loss_batch`] on a rewards tensor (sum of K) or (sum of K, 1): (loss, gradient).
pub fn kwise_loss(
    rewards: &Tensor,
    ranks: &[usize],
    group_sizes: &[usize],
) -> Result<(f32, Tensor)> {
    let out = crate::kwise_loss_batch(&rewards.try_to_vec_f32()?, ranks, group_sizes)?;
    Ok((out.loss, like(out.grad, rewards)?))
}

/// [`crate::rule_violation_loss`] on logits (N, R), labels (N, R) and an optional mask (N, R).
pub fn rule_violation_loss(
    logits: &Tensor,
    labels: &Tensor,
    labelled: Option<&Tensor>,
    weight: f64,
) -> Result<(f32, Tensor)> {
    let op = "rule_violation_loss";
    if logits.shape().rank() != 2 {
        return Err(TensorError::InvalidShape {
            op,
            shape: logits.shape().clone(),
            expected: "(N, R): one logit per response and rule".into(),
        }
        .into());
    }
    same_shape(op, logits, labels)?;
    if let Some(m) = labelled {
        same_shape(op, logits, m)?;
    }
    let mask = labelled.map(Tensor::try_to_vec_f32).transpose()?;
    let RuleLoss {
        loss, grad_logits, ..
    } = crate::rule_violation_loss(
        &logits.try_to_vec_f32()?,
        &labels.try_to_vec_f32()?,
        mask.as_deref(),
        weight,
    )?;
    Ok((loss, like(grad_logits, logits)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlhf_tensor::Device;

    #[test]
    fn wrappers_agree_with_kernels() {
        let c = Tensor::from_vec(vec![1.0, 0.5], [2, 1], Device::Cpu).unwrap();
        let r = Tensor::from_vec(vec![0.0, 0.5], [2, 1], Device::Cpu).unwrap();
        let out = pairwise_loss(&c, &r, None, 0.01).unwrap();
        let mut direct = crate::bradley_terry_loss(&[1.0f32, 0.5], &[0.0, 0.5], None).unwrap();
        direct
            .add(&crate::centering_loss(&[1.0f32, 0.5], &[0.0, 0.5], 0.01).unwrap())
            .unwrap();
        assert_eq!(out.loss, direct.loss);
        assert_eq!(out.grad_chosen.to_vec_f32(), direct.grad_chosen);
        assert_eq!(out.grad_rejected.dims(), &[2, 1]);
        let flat = Tensor::from_vec(vec![0.0, 1.0], [2], Device::Cpu).unwrap();
        assert!(pairwise_loss(&c, &flat, None, 0.0).is_err());
        assert!(rule_violation_loss(&flat, &flat, None, 1.0).is_err());
        let (loss, grad) = kwise_loss(&flat, &[1, 0], &[2]).unwrap();
        assert!(loss > 0.0 && grad.to_vec_f32()[1] < 0.0);
    }
}
