//! Optimizers that update parameters in place from gradients, global-norm clipping, and the
//! optimizer state as named tensors for checkpoints ([`Optimizer`]).
//!
//! The update rules follow PyTorch's `torch.optim.AdamW` and `torch.optim.SGD` exactly (decoupled
//! weight decay, bias correction, eps added after the bias-corrected square root), so
//! hyper-parameters carry over from TRL and friends.
//!
//! On CUDA, AdamW runs the fused device kernel (fp32 parameters and moments, gradients f32 or
//! bf16), and the global norm is reduced on the device; [`AdamW::step_clipped`] also applies the
//! clip on the device, without a host round trip before the update. SGD runs its own fused
//! kernel (fp32 parameters and momentum buffers, gradients f32 or bf16).

mod adamw;
mod clip;
pub mod cpu;
mod cuda;
mod sgd;
mod state;

pub use adamw::{AdamW, AdamWConfig};
pub use clip::{clip_grad_norm, global_grad_norm};
pub use sgd::{Sgd, SgdConfig};
pub use state::{Optimizer, StateMismatch, unused_state};

use crate::{Result, Tensor, TensorError};

/// Checks that parameters and gradients pair up one to one with equal shapes.
pub(crate) fn check_pairs(
    op: &'static str,
    params: &[&mut Tensor],
    grads: &[&Tensor],
) -> Result<()> {
    if params.len() != grads.len() {
        return Err(TensorError::invalid(
            op,
            format!("{} parameters but {} gradients", params.len(), grads.len()),
        ));
    }
    for (p, g) in params.iter().zip(grads) {
        p.shape().expect_same(op, g.shape())?;
        crate::tensor::check_same_device(op, p, g)?;
    }
    Ok(())
}
