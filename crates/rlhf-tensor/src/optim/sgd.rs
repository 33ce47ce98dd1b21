//! Stochastic gradient descent with momentum, dampening, Nesterov and weight decay, as
//! `torch.optim.SGD`.

use serde::{Deserialize, Serialize};

use super::cpu::sgd_update;
use crate::{Result, Tensor};

/// SGD hyper-parameters; the defaults are PyTorch's except the learning rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f32,
    /// Momentum factor (0 disables the buffer).
    pub momentum: f32,
    /// Dampening of the momentum.
    pub dampening: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 1e-2,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}

/// SGD state: the momentum buffers (when momentum is on) and the step count.
#[derive(Debug, Clone, PartialEq)]
pub struct Sgd {
    /// The hyper-parameters.
    pub config: SgdConfig,
    /// Steps taken so far.
    pub step: u64,
    /// Momentum buffers, one per parameter (created on the first step when momentum > 0).
    pub momentum_buffers: Vec<Tensor>,
}

impl Sgd {
    /// A fresh optimizer.
    pub fn new(config: SgdConfig) -> Sgd {
        Sgd {
            config,
            step: 0,
            momentum_buffers: Vec::new(),
        }
    }

    /// Updates every parameter in place from its gradient.
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
        super::check_pairs("Sgd::step", params, grads)?;
        let c = self.config;
        let use_momentum = c.momentum != 0.0;
        let first_step = self.momentum_buffers.is_empty();
        if use_momentum && first_step {
            // f32 on the gradient's device, whatever the gradient's dtype.
            self.momentum_buffers = grads
                .iter()
                .map(|g| Tensor::zeros(g.shape().clone(), g.device()))
                .collect::<Result<_>>()?;
        }
        self.step += 1;
        for (i, (param, grad)) in params.iter_mut().zip(grads).enumerate() {
            if param.is_cuda() {
                let buffer = match self.momentum_buffers.get_mut(i) {
                    Some(b) if use_momentum => {
                        b.shape().expect_same("Sgd::step (state)", param.shape())?;
                        crate::tensor::check_same_device("Sgd::step (state)", param, b)?;
                        Some(b)
                    }
                    _ => None,
                };
                super::cuda::sgd_update(&c, lr, first_step, param, grad, buffer)?;
                continue;
            }
            let buffer = match self.momentum_buffers.get_mut(i) {
                Some(b) if use_momentum => {
                    b.shape().expect_same("Sgd::step (state)", param.shape())?;
                    Some(b.as_f32_slice_mut()?)
                }
                _ => None,
            };
            sgd_update(
                param.as_f32_slice_mut()?,
                grad.as_f32_slice()?,
                buffer,
                first_step,
                lr,
                c.momentum,
                c.dampening,
                c.weight_decay,
                c.nesterov,
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
    fn momentum_and_nesterov_follow_pytorch() {
        // p = 1, g = 1 twice, lr 0.1, momentum 0.9, wd 0:
        // plain momentum: step1 buf=1, p=0.9; step2 buf=1.9, p=0.71.
        // nesterov: step1 buf=1, d=1+0.9=1.9, p=0.81; step2 buf=1.9, d=1+1.71=2.71, p=0.539.
        for (nesterov, expected) in [(false, [0.9, 0.71]), (true, [0.81, 0.539])] {
            let mut p = Tensor::from_vec(vec![1.0], [1], Device::Cpu).unwrap();
            let g = Tensor::from_vec(vec![1.0], [1], Device::Cpu).unwrap();
            let mut opt = Sgd::new(SgdConfig {
                lr: 0.1,
                momentum: 0.9,
                nesterov,
                ..SgdConfig::default()
            });
            for e in expected {
                opt.step(&mut [&mut p], &[&g]).unwrap();
                assert!((p.to_vec_f32()[0] - e).abs() < 1e-6, "nesterov {nesterov}");
            }
        }
    }

    #[test]
    fn plain_sgd_with_weight_decay() {
        let mut p = Tensor::from_vec(vec![2.0, -1.0], [2], Device::Cpu).unwrap();
        let g = Tensor::from_vec(vec![0.5, 0.5], [2], Device::Cpu).unwrap();
        let mut opt = Sgd::new(SgdConfig {
            lr: 0.1,
            weight_decay: 0.5,
            ..SgdConfig::default()
        });
        opt.step(&mut [&mut p], &[&g]).unwrap();
        // p -= 0.1 * (g + 0.5 p)
        assert_eq!(p.to_vec_f32(), vec![2.0 - 0.1 * 1.5, -1.0 - 0.1 * 0.0]);
    }
}
