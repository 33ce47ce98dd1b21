//! The AdamW and SGD steps on device buffers (kernels/adamw.cu): fp32 master weights, moments
//! and momentum buffers, the gradient in the storage dtype, AdamW's global-norm clip scale read
//! from device memory.

use cudarc::driver::{CudaSlice, CudaView, DeviceRepr, PushKernelArg};

use super::device::CudaDevice;
use super::dtype::CudaFloat;
use super::launch::{arg_opt_mut, check_len, flat_config, launched};
use super::registry::KernelModule;
use crate::Result;
use crate::optim::AdamWConfig as HostAdamWConfig;

/// Scalars of one AdamW step; the layout of `AdamWConfig` in adamw.cu.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// Number of parameters in the buffer.
    pub n: i64,
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Added to the bias-corrected root of the second moment.
    pub eps: f32,
    /// Decoupled weight decay (multiplied by lr).
    pub weight_decay: f32,
    /// 1 - beta1^t.
    pub bias_correction1: f32,
    /// 1 - beta2^t.
    pub bias_correction2: f32,
}

// SAFETY: repr(C) plain old data matching the CUDA struct field for field.
unsafe impl DeviceRepr for AdamWConfig {}

impl AdamWConfig {
    /// The scalars of step `step` (1-based) over `n` parameters, from the optimizer's
    /// hyper-parameters and the scheduled learning rate, bias corrections as PyTorch.
    pub fn for_step(config: &HostAdamWConfig, lr: f32, step: u64, n: usize) -> AdamWConfig {
        let t = step.min(i32::MAX as u64) as i32;
        AdamWConfig {
            n: n as i64,
            lr,
            beta1: config.beta1,
            beta2: config.beta2,
            eps: config.eps,
            weight_decay: config.weight_decay,
            bias_correction1: 1.0 - config.beta1.powi(t),
            bias_correction2: 1.0 - config.beta2.powi(t),
        }
    }
}

/// One AdamW update of `param`, `m`, `v` (n, f32, in place) from `grad` (n, T), the gradient
/// multiplied by `clip_scale[0]` when given (the second element of
/// [`super::reduce::global_norm_clip`]'s output); the updated weights are also written to
/// `param_copy` (n, T) when given.
#[allow(clippy::too_many_arguments)]
pub fn adamw_step<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: AdamWConfig,
    param: &mut CudaSlice<f32>,
    grad: &CudaSlice<T>,
    m: &mut CudaSlice<f32>,
    v: &mut CudaSlice<f32>,
    clip_scale: Option<&CudaView<'_, f32>>,
    param_copy: Option<&mut CudaSlice<T>>,
) -> Result<()> {
    let op = "cuda::adamw_step";
    let n = param.len();
    check_len(op, "config n", cfg.n.max(0) as usize, n)?;
    check_len(op, "grad", grad.len(), n)?;
    check_len(op, "m", m.len(), n)?;
    check_len(op, "v", v.len(), n)?;
    if let Some(c) = clip_scale {
        check_len(op, "clip_scale", c.len(), 1)?;
    }
    if let Some(p) = &param_copy {
        check_len(op, "param_copy", p.len(), n)?;
    }
    if n == 0 {
        return Ok(());
    }
    let f = dev.typed::<T>(KernelModule::Adamw, "adamw")?;
    let null = 0u64;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&cfg).arg(param).arg(grad).arg(m).arg(v);
    match clip_scale {
        Some(c) => args.arg(c),
        None => args.arg(&null),
    };
    arg_opt_mut(&mut args, param_copy);
    // SAFETY: param, grad, m, v (and param_copy) hold n elements, clip_scale one (checked).
    launched(op, unsafe {
        args.launch(flat_config(dev, n.div_ceil(T::PACK)))
    })
}

/// Scalars of one SGD step; the layout of `SgdConfig` in adamw.cu.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    /// Number of parameters in the buffer.
    pub n: i64,
    /// Learning rate.
    pub lr: f32,
    /// Momentum factor (the buffer is absent when it is 0).
    pub momentum: f32,
    /// Dampening of the momentum.
    pub dampening: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
    /// 1: Nesterov momentum.
    pub nesterov: i32,
    /// 1: the momentum buffer starts as the gradient (the first step).
    pub first_step: i32,
}

// SAFETY: repr(C) plain old data matching the CUDA struct field for field.
unsafe impl DeviceRepr for SgdConfig {}

/// One SGD update of `param` (n, f32, in place) from `grad` (n, T), with the momentum buffer
/// (n, f32, in place) when momentum is on; as `torch.optim.SGD` and `optim::cpu::sgd_update`.
pub fn sgd_step<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: SgdConfig,
    param: &mut CudaSlice<f32>,
    grad: &CudaSlice<T>,
    momentum_buffer: Option<&mut CudaSlice<f32>>,
) -> Result<()> {
    let op = "cuda::sgd_step";
    let n = param.len();
    check_len(op, "config n", cfg.n.max(0) as usize, n)?;
    check_len(op, "grad", grad.len(), n)?;
    if let Some(b) = &momentum_buffer {
        check_len(op, "momentum buffer", b.len(), n)?;
    }
    if n == 0 {
        return Ok(());
    }
    let f = dev.typed::<T>(KernelModule::Adamw, "sgd")?;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&cfg).arg(param).arg(grad);
    arg_opt_mut(&mut args, momentum_buffer);
    // SAFETY: param, grad (and the buffer) hold n elements (checked); the buffer may be null,
    // which the kernel tests.
    launched(op, unsafe { args.launch(flat_config(dev, n)) })
}
