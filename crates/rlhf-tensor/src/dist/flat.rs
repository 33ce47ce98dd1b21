//! Flat buffers: many tensors packed end to end into one 1-D tensor (llm.c's slab) so that one
//! collective moves them all, and unpacked again. Works on every device (on CUDA a device copy
//! on the device's stream) for f32 and bf16.

use super::{DistError, Result};
use crate::cuda::device::driver_error;
use crate::cuda::storage::{DeviceElem, by_cuda_dtype};
use crate::{DType, Tensor};

/// A flat buffer of `len` zeros on `like`'s device in `like`'s dtype.
pub fn flat_like(like: &Tensor, len: usize) -> Result<Tensor> {
    let zeros = Tensor::zeros([len], like.device())?;
    Ok(if like.dtype() == DType::F32 {
        zeros
    } else {
        zeros.to_dtype(like.dtype())?
    })
}

/// Copies `src`'s elements into `flat[offset..offset + src.numel()]` (same device and dtype).
pub fn write_at(flat: &mut Tensor, offset: usize, src: &Tensor) -> Result<()> {
    let op = "dist::write_at";
    check(op, flat, offset, src)?;
    if flat.is_cuda() {
        return Ok(by_cuda_dtype!(
            op,
            src.dtype(),
            write_cuda(op, flat, offset, src)
        )?);
    }
    let src = src.as_f32_slice()?;
    flat.as_f32_slice_mut()?[offset..offset + src.len()].copy_from_slice(src);
    Ok(())
}

/// Copies `flat[offset..offset + dst.numel()]` into `dst` (same device and dtype).
pub fn read_at(flat: &Tensor, offset: usize, dst: &mut Tensor) -> Result<()> {
    let op = "dist::read_at";
    check(op, flat, offset, dst)?;
    if flat.is_cuda() {
        return Ok(by_cuda_dtype!(
            op,
            dst.dtype(),
            read_cuda(op, flat, offset, dst)
        )?);
    }
    let src = flat.as_f32_slice()?;
    let dst = dst.as_f32_slice_mut()?;
    let len = dst.len();
    dst.copy_from_slice(&src[offset..offset + len]);
    Ok(())
}

fn check(op: &'static str, flat: &Tensor, offset: usize, part: &Tensor) -> Result<()> {
    if flat.device() != part.device() || flat.dtype() != part.dtype() {
        return Err(DistError::invalid(
            op,
            format!(
                "flat buffer {} on {} but tensor {} on {}",
                flat.dtype(),
                flat.device(),
                part.dtype(),
                part.device()
            ),
        ));
    }
    if offset + part.numel() > flat.numel() {
        return Err(DistError::invalid(
            op,
            format!(
                "elements {offset}..{} are past the flat buffer's {}",
                offset + part.numel(),
                flat.numel()
            ),
        ));
    }
    Ok(())
}

fn write_cuda<T: DeviceElem>(
    op: &'static str,
    flat: &mut Tensor,
    offset: usize,
    src: &Tensor,
) -> crate::Result<()> {
    let (dev, src) = src.cuda_parts::<T>(op)?;
    let dst = flat.cuda_slice_mut::<T>(op)?;
    dev.stream()
        .memcpy_dtod(src, &mut dst.slice_mut(offset..offset + src.len()))
        .map_err(driver_error(op))
}

fn read_cuda<T: DeviceElem>(
    op: &'static str,
    flat: &Tensor,
    offset: usize,
    dst: &mut Tensor,
) -> crate::Result<()> {
    let (dev, src) = flat.cuda_parts::<T>(op)?;
    let dst = dst.cuda_slice_mut::<T>(op)?;
    let len = dst.len();
    dev.stream()
        .memcpy_dtod(&src.slice(offset..offset + len), dst)
        .map_err(driver_error(op))
}
