//! The global gradient norm and clipping by it, as `torch.nn.utils.clip_grad_norm_`.

use super::cpu::{scale_in_place, sum_of_squares};
use super::cuda;
use crate::{Result, Tensor};

/// The L2 norm of all gradients together: sqrt(sum over tensors of sum of squares). On CUDA
/// (every gradient on one device) the squares are summed on the device, in fp32.
pub fn global_grad_norm(grads: &[&Tensor]) -> Result<f32> {
    if grads.first().is_some_and(|g| g.is_cuda()) {
        return cuda::global_norm(grads);
    }
    let mut total = 0.0f64;
    for g in grads {
        total += sum_of_squares(g.as_f32_slice()?);
    }
    Ok(total.sqrt() as f32)
}

/// Scales every gradient by max_norm / (norm + 1e-6) when the global norm exceeds `max_norm`;
/// returns the norm before clipping (what trainers log as `grad_norm`).
pub fn clip_grad_norm(grads: &mut [&mut Tensor], max_norm: f32) -> Result<f32> {
    let norm = {
        let views: Vec<&Tensor> = grads.iter().map(|g| &**g).collect();
        global_grad_norm(&views)?
    };
    let coefficient = max_norm / (norm + 1e-6);
    if coefficient < 1.0 {
        for g in grads.iter_mut() {
            if g.is_cuda() {
                cuda::scale_in_place(g, coefficient)?;
            } else {
                scale_in_place(g.as_f32_slice_mut()?, coefficient);
            }
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Device;

    #[test]
    fn norm_and_clip() {
        let mut a = Tensor::from_vec(vec![3.0, 0.0], [2], Device::Cpu).unwrap();
        let mut b = Tensor::from_vec(vec![4.0], [1], Device::Cpu).unwrap();
        assert_eq!(global_grad_norm(&[&a, &b]).unwrap(), 5.0);
        let before = clip_grad_norm(&mut [&mut a, &mut b], 1.0).unwrap();
        assert_eq!(before, 5.0);
        let after = global_grad_norm(&[&a, &b]).unwrap();
        assert!((after - 1.0).abs() < 1e-5, "{after}");
        // Below the threshold nothing changes.
        let before = clip_grad_norm(&mut [&mut a, &mut b], 10.0).unwrap();
        assert!((before - 1.0).abs() < 1e-5);
        assert!((global_grad_norm(&[&a, &b]).unwrap() - 1.0).abs() < 1e-5);
    }
}
