//! The CUDA path of the optimizers: the AdamW step (`cuda::adamw`, fp32 parameters and moments,
//! the gradient in its storage dtype) and the global gradient norm (`cuda::reduce`), with the
//! clip scale either applied on the host's word (as `clip_grad_norm` does on the CPU) or read by
//! the AdamW kernel from device memory (the fused [`super::AdamW::step_clipped`]).

use cudarc::driver::{CudaSlice, CudaView};

use crate::cuda::adamw::{AdamWConfig as StepConfig, SgdConfig as SgdStep, adamw_step, sgd_step};
use crate::cuda::reduce::global_norm_clip;
use crate::cuda::storage::{DeviceElem, by_cuda_dtype};
use crate::cuda::{CudaDevice, elementwise};
use crate::tensor::check_same_device;
use crate::{DType, Result, Tensor, TensorError};

use super::{AdamWConfig, SgdConfig};

/// One AdamW update of a CUDA parameter (f32) from its gradient (f32 or bf16), moments f32;
/// `clip` is the `[norm, scale]` buffer of [`global_norm_clip`] when the update applies a clip.
#[allow(clippy::too_many_arguments)]
pub(super) fn adamw_update(
    config: &AdamWConfig,
    lr: f32,
    step: u64,
    param: &mut Tensor,
    grad: &Tensor,
    m: &mut Tensor,
    v: &mut Tensor,
    clip: Option<&CudaSlice<f32>>,
) -> Result<()> {
    let op = "AdamW::step";
    by_cuda_dtype!(
        op,
        grad.dtype(),
        adamw_t(config, lr, step, param, grad, m, v, clip)
    )
}

#[allow(clippy::too_many_arguments)]
fn adamw_t<T: DeviceElem>(
    config: &AdamWConfig,
    lr: f32,
    step: u64,
    param: &mut Tensor,
    grad: &Tensor,
    m: &mut Tensor,
    v: &mut Tensor,
    clip: Option<&CudaSlice<f32>>,
) -> Result<()> {
    let op = "AdamW::step";
    let (dev, g) = grad.cuda_parts::<T>(op)?;
    let cfg = StepConfig::for_step(config, lr, step, param.numel());
    let scale: Option<CudaView<'_, f32>> = clip.map(|c| c.slice(1..2));
    adamw_step(
        &dev,
        cfg,
        param.cuda_slice_mut::<f32>(op)?,
        g,
        m.cuda_slice_mut::<f32>(op)?,
        v.cuda_slice_mut::<f32>(op)?,
        scale.as_ref(),
        None,
    )
}

/// One SGD update of a CUDA parameter (f32) from its gradient (f32 or bf16), with the f32
/// momentum buffer when momentum is on.
pub(super) fn sgd_update(
    config: &SgdConfig,
    lr: f32,
    first_step: bool,
    param: &mut Tensor,
    grad: &Tensor,
    buffer: Option<&mut Tensor>,
) -> Result<()> {
    by_cuda_dtype!(
        "Sgd::step",
        grad.dtype(),
        sgd_t(config, lr, first_step, param, grad, buffer)
    )
}

fn sgd_t<T: DeviceElem>(
    config: &SgdConfig,
    lr: f32,
    first_step: bool,
    param: &mut Tensor,
    grad: &Tensor,
    buffer: Option<&mut Tensor>,
) -> Result<()> {
    let op = "Sgd::step";
    let (dev, g) = grad.cuda_parts::<T>(op)?;
    let cfg = SgdStep {
        n: param.numel() as i64,
        lr,
        momentum: config.momentum,
        dampening: config.dampening,
        weight_decay: config.weight_decay,
        nesterov: config.nesterov as i32,
        first_step: first_step as i32,
    };
    let buffer = buffer.map(|b| b.cuda_slice_mut::<f32>(op)).transpose()?;
    sgd_step(&dev, cfg, param.cuda_slice_mut::<f32>(op)?, g, buffer)
}

/// The device of a list of CUDA tensors (all on one device), or None for an empty list.
fn common_device(
    op: &'static str,
    tensors: &[&Tensor],
) -> Result<Option<std::sync::Arc<CudaDevice>>> {
    let Some(first) = tensors.first() else {
        return Ok(None);
    };
    for t in tensors {
        check_same_device(op, first, t)?;
    }
    Ok(first.cuda_device().cloned())
}

/// `[norm, clip scale]` on the device over gradients of one dtype (`max_norm <= 0`: scale 1).
pub(super) fn norm_and_scale(
    op: &'static str,
    grads: &[&Tensor],
    max_norm: f32,
) -> Result<CudaSlice<f32>> {
    let dtype = grads.first().map_or(DType::F32, |g| g.dtype());
    by_cuda_dtype!(op, dtype, norm_t(op, grads, max_norm))
}

fn norm_t<T: DeviceElem>(
    op: &'static str,
    grads: &[&Tensor],
    max_norm: f32,
) -> Result<CudaSlice<f32>> {
    let dev = common_device(op, grads)?
        .ok_or_else(|| TensorError::invalid(op, "no gradients on a CUDA device"))?;
    let slices = grads
        .iter()
        .map(|g| g.cuda_slice::<T>(op))
        .collect::<Result<Vec<_>>>()?;
    global_norm_clip(&dev, &slices, max_norm)
}

/// The global L2 norm of CUDA gradients (f32 and bf16 may be mixed: each dtype is reduced on the
/// device, the squares added on the host).
pub(super) fn global_norm(grads: &[&Tensor]) -> Result<f32> {
    let op = "global_grad_norm";
    common_device(op, grads)?;
    let mut total = 0.0f64;
    for dtype in [DType::F32, DType::BF16, DType::F16] {
        let group: Vec<&Tensor> = grads
            .iter()
            .copied()
            .filter(|g| g.dtype() == dtype)
            .collect();
        if group.is_empty() {
            continue;
        }
        let buffer = norm_and_scale(op, &group, 0.0)?;
        let dev = group[0]
            .cuda_device()
            .ok_or_else(|| TensorError::invalid(op, "not on CUDA"))?;
        let norm = dev.download(&buffer)?[0] as f64;
        total += norm * norm;
    }
    Ok(total.sqrt() as f32)
}

/// Multiplies a CUDA gradient by `factor` in place.
pub(super) fn scale_in_place(grad: &mut Tensor, factor: f32) -> Result<()> {
    by_cuda_dtype!("clip_grad_norm", grad.dtype(), scale_t(grad, factor))
}

fn scale_t<T: DeviceElem>(grad: &mut Tensor, factor: f32) -> Result<()> {
    let op = "clip_grad_norm";
    let dev = grad
        .cuda_device()
        .cloned()
        .ok_or_else(|| TensorError::invalid(op, "not on CUDA"))?;
    elementwise::scale_in_place(&dev, grad.cuda_slice_mut::<T>(op)?, factor)
}
