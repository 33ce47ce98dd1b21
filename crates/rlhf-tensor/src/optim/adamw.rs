//! AdamW with decoupled weight decay (Loshchilov & Hutter), as `torch.optim.AdamW`.

use serde::{Deserialize, Serialize};

use super::cpu::{AdamWStep, adamw_update};
use super::cuda;
use crate::{Result, Tensor, TensorError};

/// AdamW hyper-parameters; the defaults are PyTorch's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    /// Learning rate (the trainer's schedule may change it every step).
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Added to the bias-corrected root of the second moment.
    pub eps: f32,
    /// Decoupled weight decay.
    pub weight_decay: f32,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        }
    }
}

/// AdamW state: one pair of moment tensors per parameter (f32, on the parameter's device), and
/// the step count. Parameters are f32 on every device; on CUDA their gradients may be f32 or
/// bf16.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamW {
    /// The hyper-parameters.
    pub config: AdamWConfig,
    /// Steps taken so far.
    pub step: u64,
    /// First moments, one per parameter (created on the first step).
    pub exp_avg: Vec<Tensor>,
    /// Second moments, one per parameter (created on the first step).
    pub exp_avg_sq: Vec<Tensor>,
}

impl AdamW {
    /// A fresh optimizer.
    pub fn new(config: AdamWConfig) -> AdamW {
        AdamW {
            config,
            step: 0,
            exp_avg: Vec::new(),
            exp_avg_sq: Vec::new(),
        }
    }

    /// Updates every parameter in place from its gradient, at the configured learning rate.
    pub fn step(&mut self, params: &mut [&mut Tensor], grads: &[&Tensor]) -> Result<()> {
        let lr = self.config.lr;
        self.step_with_lr(params, grads, lr)
    }

    /// Updates every parameter in place with a learning rate from a schedule.
    pub fn step_with_lr(
        &mut self,
        params: &mut [&mut Tensor],
        grads: &[&Tensor],
        lr: f32,
    ) -> Result<()> {
        self.update(params, grads, lr, None)
    }

    /// One step with `clip_grad_norm` folded in: the gradients are scaled by
    /// `max_norm / (norm + 1e-6)` when that is below 1, as `clip_grad_norm` would, but are left
    /// unchanged. On CUDA the norm and the scale stay on the device and the AdamW kernel reads
    /// the scale there (every gradient of one dtype); the norm is copied to the host once, after
    /// the update is queued. Returns the norm before clipping.
    pub fn step_clipped(
        &mut self,
        params: &mut [&mut Tensor],
        grads: &[&Tensor],
        lr: f32,
        max_norm: f32,
    ) -> Result<f32> {
        let op = "AdamW::step_clipped";
        if !(max_norm.is_finite() && max_norm > 0.0) {
            return Err(TensorError::invalid(
                op,
                format!("max_norm must be finite and > 0, got {max_norm}"),
            ));
        }
        super::check_pairs(op, params, grads)?;
        if grads.first().is_some_and(|g| g.is_cuda()) {
            let clip = cuda::norm_and_scale(op, grads, max_norm)?;
            self.update(params, grads, lr, Some(&clip))?;
            let dev = grads[0]
                .cuda_device()
                .ok_or_else(|| TensorError::invalid(op, "not on CUDA"))?;
            return Ok(dev.download(&clip)?[0]);
        }
        let norm = super::global_grad_norm(grads)?;
        let coefficient = max_norm / (norm + 1e-6);
        if coefficient < 1.0 {
            let scaled = grads
                .iter()
                .map(|g| crate::ops::elementwise::scale(g, coefficient))
                .collect::<Result<Vec<_>>>()?;
            let views: Vec<&Tensor> = scaled.iter().collect();
            self.update(params, &views, lr, None)?;
        } else {
            self.update(params, grads, lr, None)?;
        }
        Ok(norm)
    }

    /// The update itself; `clip` is the device `[norm, scale]` buffer of a fused CUDA clip.
    fn update(
        &mut self,
        params: &mut [&mut Tensor],
        grads: &[&Tensor],
        lr: f32,
        clip: Option<&crate::cuda::CudaSlice<f32>>,
    ) -> Result<()> {
        super::check_pairs("AdamW::step", params, grads)?;
        if self.exp_avg.is_empty() {
            // Moments are f32 on the gradient's device, whatever the gradient's dtype.
            let zeros = |g: &&Tensor| Tensor::zeros(g.shape().clone(), g.device());
            self.exp_avg = grads.iter().map(zeros).collect::<Result<_>>()?;
            self.exp_avg_sq = grads.iter().map(zeros).collect::<Result<_>>()?;
        } else if self.exp_avg.len() != params.len() {
            return Err(TensorError::invalid(
                "AdamW::step",
                format!(
                    "state holds {} parameters, given {}",
                    self.exp_avg.len(),
                    params.len()
                ),
            ));
        }
        self.step += 1;
        let c = self.config;
        let t = self.step as i32;
        let scalars = AdamWStep {
            lr,
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            weight_decay: c.weight_decay,
            bias_correction1: 1.0 - c.beta1.powi(t),
            bias_correction2: 1.0 - c.beta2.powi(t),
        };
        for (i, (param, grad)) in params.iter_mut().zip(grads).enumerate() {
            param
                .shape()
                .expect_same("AdamW::step (state)", self.exp_avg[i].shape())?;
            crate::tensor::check_same_device("AdamW::step (state)", param, &self.exp_avg[i])?;
            if param.is_cuda() {
                cuda::adamw_update(
                    &c,
                    lr,
                    self.step,
                    param,
                    grad,
                    &mut self.exp_avg[i],
                    &mut self.exp_avg_sq[i],
                    clip,
                )?;
                continue;
            }
            adamw_update(
                param.as_f32_slice_mut()?,
                grad.as_f32_slice()?,
                self.exp_avg[i].as_f32_slice_mut()?,
                self.exp_avg_sq[i].as_f32_slice_mut()?,
                scalars,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Device;

    #[test]
    fn two_steps_match_hand_computed_pytorch_values() {
        // One parameter p = 1.0, gradients 0.5 then -0.25, lr 0.1, wd 0.1, betas (0.9, 0.999),
        // eps 1e-8. Computed by hand following torch.optim.AdamW:
        // step 1: m = 0.05, v = 0.00025, bc1 = 0.1, bc2 = 0.001;
        //         p = 1*(1-0.01) - (0.1/0.1) * 0.05 / (sqrt(0.00025)/sqrt(0.001) + 1e-8) = 0.89
        // step 2: m = 0.045 - 0.025 = 0.02; v = 0.00024975 + 0.0000625 = 0.00031225;
        //         bc1 = 0.19, bc2 = 0.001999; p = 0.89*0.99 - (0.1/0.19) * 0.02 / (sqrt(v)/sqrt(bc2) + eps)
        let mut p = Tensor::from_vec(vec![1.0], [1], Device::Cpu).unwrap();
        let mut opt = AdamW::new(AdamWConfig {
            lr: 0.1,
            weight_decay: 0.1,
            ..AdamWConfig::default()
        });
        let g1 = Tensor::from_vec(vec![0.5], [1], Device::Cpu).unwrap();
        opt.step(&mut [&mut p], &[&g1]).unwrap();
        let after_one = p.to_vec_f32()[0] as f64;
        let expected_one = 0.99 - (0.1 / 0.1) * 0.05 / (0.5 + 1e-8);
        assert!(
            (after_one - expected_one).abs() < 1e-6,
            "{after_one} vs {expected_one}"
        );
        let g2 = Tensor::from_vec(vec![-0.25], [1], Device::Cpu).unwrap();
        opt.step(&mut [&mut p], &[&g2]).unwrap();
        let v: f64 = 0.999 * 0.00025 + 0.001 * 0.0625;
        let denom = v.sqrt() / (1.0f64 - 0.999f64.powi(2)).sqrt() + 1e-8;
        let expected_two = expected_one * 0.99 - (0.1 / 0.19) * 0.02 / denom;
        let after_two = p.to_vec_f32()[0] as f64;
        assert!(
            (after_two - expected_two).abs() < 1e-6,
            "{after_two} vs {expected_two}"
        );
        assert_eq!(opt.step, 2);
    }

    #[test]
    fn mismatched_gradients_are_errors() {
        let mut p = Tensor::zeros([2], Device::Cpu).unwrap();
        let g = Tensor::zeros([3], Device::Cpu).unwrap();
        let mut opt = AdamW::new(AdamWConfig::default());
        assert!(opt.step(&mut [&mut p], &[&g]).is_err());
        assert!(opt.step(&mut [&mut p], &[]).is_err());
    }
}
