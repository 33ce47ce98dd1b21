//! The `Tensor`: a shape, a device and contiguous row-major storage.
//!
//! CPU storage is a `Vec` of the tensor's dtype; every CPU op computes on f32 storage, so bf16
//! and f16 tensors are converted with [`Tensor::to_dtype`] at the edges (loading, saving, moving
//! to a device). CUDA storage ([`crate::cuda`]'s device buffers) is f32 or bf16, and CUDA ops run
//! on either (fp32 arithmetic inside the kernels); f16 has no CUDA kernels.
//!
//! Host views (`as_f32_slice`, `as_array`, ...) exist only on the CPU; on CUDA they are an
//! `Unsupported` error. Host copies (`to_vec_f32`, `to_le_bytes`, `to_device(Device::Cpu)`) work
//! on every device: on CUDA they wait for the device and copy.

use std::sync::Arc;

use half::{bf16, f16};
use ndarray::{ArrayViewD, ArrayViewMutD, IxDyn};

use crate::cuda::storage::{CudaStorage, DeviceElem, dtype_mismatch};
use crate::cuda::{CudaDevice, CudaSlice};
use crate::{DType, Device, Result, Rng, Shape, TensorError};

/// Host storage in the tensor's dtype.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CpuStorage {
    F32(Vec<f32>),
    BF16(Vec<bf16>),
    F16(Vec<f16>),
}

/// Storage on some device.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Storage {
    Cpu(CpuStorage),
    Cuda(CudaStorage),
}

/// An n-dimensional array of numbers on a device. Cloning copies the data (on a CUDA device, a
/// device-to-device copy that panics if the device fails; [`Tensor::try_clone`] returns the error
/// instead). Equality compares shape, device, dtype and elements (CUDA tensors are compared on
/// the host).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Shape,
    storage: Storage,
}

impl Tensor {
    /// A tensor of zeros (f32).
    pub fn zeros(shape: impl Into<Shape>, device: Device) -> Result<Tensor> {
        Self::full(shape, 0.0, device)
    }

    /// A tensor filled with `value` (f32); on CUDA filled by a kernel, with no host buffer.
    pub fn full(shape: impl Into<Shape>, value: f32, device: Device) -> Result<Tensor> {
        let shape = shape.into();
        match device {
            Device::Cpu => {
                let data = vec![value; shape.numel()];
                Self::from_vec(data, shape, device)
            }
            Device::Cuda(_) => {
                let storage = CudaStorage::full("Tensor::full", device, shape.numel(), value)?;
                Ok(Tensor {
                    shape,
                    storage: Storage::Cuda(storage),
                })
            }
        }
    }

    /// A tensor of zeros with the same shape and device as `self`: f32 on the CPU (where every op
    /// computes on f32 storage), the same dtype as `self` on CUDA (where ops run on f32 and bf16
    /// storage alike), so gradient buffers match their tensors on every device.
    pub fn zeros_like(&self) -> Result<Tensor> {
        match &self.storage {
            Storage::Cpu(_) => Self::zeros(self.shape.clone(), self.device()),
            Storage::Cuda(s) => {
                let storage =
                    CudaStorage::zeros("Tensor::zeros_like", s.device(), s.dtype(), self.numel())?;
                Ok(Tensor {
                    shape: self.shape.clone(),
                    storage: Storage::Cuda(storage),
                })
            }
        }
    }

    /// An f32 tensor from row-major data; the length must match the shape.
    pub fn from_vec(data: Vec<f32>, shape: impl Into<Shape>, device: Device) -> Result<Tensor> {
        let shape = shape.into();
        check_len("Tensor::from_vec", data.len(), &shape)?;
        Self::on_device(shape, CpuStorage::F32(data), device)
    }

    /// An f32 tensor copied from a slice.
    pub fn from_slice(data: &[f32], shape: impl Into<Shape>, device: Device) -> Result<Tensor> {
        Self::from_vec(data.to_vec(), shape, device)
    }

    /// A bf16 tensor from row-major data.
    pub fn from_bf16(data: Vec<bf16>, shape: impl Into<Shape>, device: Device) -> Result<Tensor> {
        let shape = shape.into();
        check_len("Tensor::from_bf16", data.len(), &shape)?;
        Self::on_device(shape, CpuStorage::BF16(data), device)
    }

    /// An f16 tensor from row-major data.
    pub fn from_f16(data: Vec<f16>, shape: impl Into<Shape>, device: Device) -> Result<Tensor> {
        let shape = shape.into();
        check_len("Tensor::from_f16", data.len(), &shape)?;
        Self::on_device(shape, CpuStorage::F16(data), device)
    }

    /// A tensor from little-endian bytes of the given dtype (the safetensors layout).
    pub fn from_le_bytes(
        bytes: &[u8],
        dtype: DType,
        shape: impl Into<Shape>,
        device: Device,
    ) -> Result<Tensor> {
        let shape = shape.into();
        let expected = shape.numel() * dtype.size_in_bytes();
        if bytes.len() != expected {
            return Err(TensorError::invalid(
                "Tensor::from_le_bytes",
                format!(
                    "{} bytes for a {dtype} tensor of shape {shape}, expected {expected}",
                    bytes.len()
                ),
            ));
        }
        // Decode element by element: the bytes need not be aligned.
        let storage = match dtype {
            DType::F32 => CpuStorage::F32(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            DType::BF16 => CpuStorage::BF16(
                bytes
                    .chunks_exact(2)
                    .map(|c| bf16::from_le_bytes([c[0], c[1]]))
                    .collect(),
            ),
            DType::F16 => CpuStorage::F16(
                bytes
                    .chunks_exact(2)
                    .map(|c| f16::from_le_bytes([c[0], c[1]]))
                    .collect(),
            ),
        };
        Self::on_device(shape, storage, device)
    }

    /// Samples from N(0, std²), drawing from `rng` in row-major order.
    pub fn randn(
        shape: impl Into<Shape>,
        std: f32,
        rng: &mut Rng,
        device: Device,
    ) -> Result<Tensor> {
        let shape = shape.into();
        let data = (0..shape.numel()).map(|_| rng.normal() * std).collect();
        Self::from_vec(data, shape, device)
    }

    /// Samples uniformly from [low, high), drawing from `rng` in row-major order.
    pub fn uniform(
        shape: impl Into<Shape>,
        low: f32,
        high: f32,
        rng: &mut Rng,
        device: Device,
    ) -> Result<Tensor> {
        let shape = shape.into();
        let data = (0..shape.numel())
            .map(|_| low + (high - low) * rng.uniform())
            .collect();
        Self::from_vec(data, shape, device)
    }

    fn on_device(shape: Shape, storage: CpuStorage, device: Device) -> Result<Tensor> {
        let storage = match device {
            Device::Cpu => Storage::Cpu(storage),
            Device::Cuda(_) => {
                Storage::Cuda(CudaStorage::upload("Tensor creation", &storage, device)?)
            }
        };
        Ok(Tensor { shape, storage })
    }

    /// A tensor over a device buffer of `T` (f32 or bf16) holding `shape`'s elements.
    pub(crate) fn from_cuda<T: DeviceElem>(
        dev: Arc<CudaDevice>,
        buffer: CudaSlice<T>,
        shape: impl Into<Shape>,
    ) -> Result<Tensor> {
        let shape = shape.into();
        check_len("Tensor::from_cuda", buffer.len(), &shape)?;
        Ok(Tensor {
            shape,
            storage: Storage::Cuda(CudaStorage {
                dev,
                data: T::wrap(buffer),
            }),
        })
    }

    /// The CUDA device of a CUDA tensor (`None` on the CPU).
    pub(crate) fn cuda_device(&self) -> Option<&Arc<CudaDevice>> {
        match &self.storage {
            Storage::Cuda(s) => Some(&s.dev),
            Storage::Cpu(_) => None,
        }
    }

    /// The device buffer of a CUDA tensor of dtype `T`: `Unsupported` on the CPU, a dtype
    /// mismatch naming `op` when the tensor holds the other dtype.
    pub(crate) fn cuda_slice<T: DeviceElem>(&self, op: &'static str) -> Result<&CudaSlice<T>> {
        match &self.storage {
            Storage::Cuda(s) => T::of(&s.data).ok_or(dtype_mismatch(op, T::DTYPE, s.dtype())),
            Storage::Cpu(_) => Err(TensorError::Unsupported {
                op,
                device: Device::Cpu,
            }),
        }
    }

    /// The device and buffer of a CUDA tensor of dtype `T` (see [`Tensor::cuda_slice`]).
    pub(crate) fn cuda_parts<T: DeviceElem>(
        &self,
        op: &'static str,
    ) -> Result<(Arc<CudaDevice>, &CudaSlice<T>)> {
        let buffer = self.cuda_slice::<T>(op)?;
        let dev = self
            .cuda_device()
            .cloned()
            .ok_or(TensorError::Unsupported {
                op,
                device: Device::Cpu,
            })?;
        Ok((dev, buffer))
    }

    /// The device buffer of a CUDA tensor of dtype `T`, mutably.
    pub(crate) fn cuda_slice_mut<T: DeviceElem>(
        &mut self,
        op: &'static str,
    ) -> Result<&mut CudaSlice<T>> {
        match &mut self.storage {
            Storage::Cuda(s) => {
                let found = s.dtype();
                T::of_mut(&mut s.data).ok_or(dtype_mismatch(op, T::DTYPE, found))
            }
            Storage::Cpu(_) => Err(TensorError::Unsupported {
                op,
                device: Device::Cpu,
            }),
        }
    }

    /// Whether the tensor lives on a CUDA device.
    pub fn is_cuda(&self) -> bool {
        matches!(self.storage, Storage::Cuda(_))
    }

    /// A copy, returning the error of a failed device copy rather than panicking as `clone` does
    /// (on the CPU this is `clone`).
    pub fn try_clone(&self) -> Result<Tensor> {
        let storage = match &self.storage {
            Storage::Cpu(s) => Storage::Cpu(s.clone()),
            Storage::Cuda(s) => Storage::Cuda(s.try_clone()?),
        };
        Ok(Tensor {
            shape: self.shape.clone(),
            storage,
        })
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The dimensions, outermost first.
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.shape.numel()
    }

    /// The storage dtype.
    pub fn dtype(&self) -> DType {
        match &self.storage {
            Storage::Cpu(CpuStorage::F32(_)) => DType::F32,
            Storage::Cpu(CpuStorage::BF16(_)) => DType::BF16,
            Storage::Cpu(CpuStorage::F16(_)) => DType::F16,
            Storage::Cuda(s) => s.dtype(),
        }
    }

    /// The device the data lives on.
    pub fn device(&self) -> Device {
        match &self.storage {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Cuda(s) => s.device(),
        }
    }

    /// The same data with another shape of equal element count.
    pub fn reshape(mut self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if shape.numel() != self.numel() {
            return Err(TensorError::ShapeMismatch {
                op: "reshape",
                detail: "element counts must be equal".into(),
                left: self.shape,
                right: shape,
            });
        }
        self.shape = shape;
        Ok(self)
    }

    /// A copy in another dtype (round to nearest even when narrowing); on CUDA converted on the
    /// device (f32 and bf16).
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        let storage = match &self.storage {
            Storage::Cpu(storage) => storage,
            Storage::Cuda(s) => {
                return Ok(Tensor {
                    shape: self.shape.clone(),
                    storage: Storage::Cuda(s.to_dtype(dtype)?),
                });
            }
        };
        let values = cpu_values_f32(storage);
        let converted = match dtype {
            DType::F32 => CpuStorage::F32(values),
            DType::BF16 => CpuStorage::BF16(values.iter().map(|&v| bf16::from_f32(v)).collect()),
            DType::F16 => CpuStorage::F16(values.iter().map(|&v| f16::from_f32(v)).collect()),
        };
        Self::on_device(self.shape.clone(), converted, self.device())
    }

    /// A copy on another device, in the same dtype (host <-> device copies; between two GPUs
    /// through the host). An error naming the device when there is no such GPU, or when the dtype
    /// has no CUDA kernels (f16).
    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        match &self.storage {
            Storage::Cpu(storage) => Self::on_device(self.shape.clone(), storage.clone(), device),
            Storage::Cuda(s) if s.device() == device => self.try_clone(),
            Storage::Cuda(s) => Self::on_device(self.shape.clone(), s.download()?, device),
        }
    }

    /// The elements as f32 on the host, converting from the storage dtype.
    ///
    /// # Panics
    /// On a CUDA tensor, when the device-to-host copy fails (a lost device, an earlier kernel's
    /// error surfacing); [`Tensor::try_to_vec_f32`] returns that error instead.
    pub fn to_vec_f32(&self) -> Vec<f32> {
        match self.try_to_vec_f32() {
            Ok(values) => values,
            Err(e) => panic!("to_vec_f32 on {}: {e}", self.device()),
        }
    }

    /// The elements as f32 on the host (a device-to-host copy on CUDA), or the device's error.
    pub fn try_to_vec_f32(&self) -> Result<Vec<f32>> {
        match &self.storage {
            Storage::Cpu(storage) => Ok(cpu_values_f32(storage)),
            Storage::Cuda(s) => Ok(cpu_values_f32(&s.download()?)),
        }
    }

    /// The single element of a one-element tensor (a loss, a norm).
    pub fn to_scalar(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(TensorError::InvalidShape {
                op: "to_scalar",
                shape: self.shape.clone(),
                expected: "exactly one element".into(),
            });
        }
        Ok(self.try_to_vec_f32()?[0])
    }

    /// The storage as little-endian bytes (the safetensors layout), without conversion.
    ///
    /// # Panics
    /// On a CUDA tensor, when the device-to-host copy fails (see [`Tensor::to_vec_f32`]).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let downloaded;
        let storage = match &self.storage {
            Storage::Cpu(storage) => storage,
            Storage::Cuda(s) => match s.download() {
                Ok(host) => {
                    downloaded = host;
                    &downloaded
                }
                Err(e) => panic!("to_le_bytes on {}: {e}", self.device()),
            },
        };
        match storage {
            CpuStorage::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            CpuStorage::BF16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            CpuStorage::F16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }

    /// The f32 elements of a host tensor, borrowed (for kernels and host-side code); an
    /// `Unsupported` error on a CUDA tensor (copy with `to_vec_f32` or `to_device` instead).
    pub fn as_f32_slice(&self) -> Result<&[f32]> {
        match &self.storage {
            Storage::Cpu(CpuStorage::F32(v)) => Ok(v),
            Storage::Cpu(_) => Err(TensorError::DTypeMismatch {
                op: "as_f32_slice",
                expected: DType::F32,
                found: self.dtype(),
            }),
            Storage::Cuda(s) => Err(TensorError::Unsupported {
                op: "as_f32_slice (a host view)",
                device: s.device(),
            }),
        }
    }

    /// The f32 elements of a host tensor, mutably borrowed (`Unsupported` on CUDA).
    pub fn as_f32_slice_mut(&mut self) -> Result<&mut [f32]> {
        let dtype = self.dtype();
        match &mut self.storage {
            Storage::Cpu(CpuStorage::F32(v)) => Ok(v),
            Storage::Cpu(_) => Err(TensorError::DTypeMismatch {
                op: "as_f32_slice_mut",
                expected: DType::F32,
                found: dtype,
            }),
            Storage::Cuda(s) => Err(TensorError::Unsupported {
                op: "as_f32_slice_mut (a host view)",
                device: s.device(),
            }),
        }
    }

    /// The raw bytes of an f32 host tensor, borrowed through bytemuck (native endianness).
    pub fn as_bytes(&self) -> Result<&[u8]> {
        Ok(bytemuck::cast_slice(self.as_f32_slice()?))
    }

    /// An ndarray view of an f32 host tensor.
    pub fn as_array(&self) -> Result<ArrayViewD<'_, f32>> {
        let dims = IxDyn(self.shape.dims());
        let data = self.as_f32_slice()?;
        // The storage length equals the shape's element count by construction.
        ArrayViewD::from_shape(dims, data)
            .map_err(|e| TensorError::invalid("as_array", e.to_string()))
    }

    /// A mutable ndarray view of an f32 host tensor.
    pub fn as_array_mut(&mut self) -> Result<ArrayViewMutD<'_, f32>> {
        let dims = IxDyn(self.shape.clone().dims());
        let data = self.as_f32_slice_mut()?;
        ArrayViewMutD::from_shape(dims, data)
            .map_err(|e| TensorError::invalid("as_array_mut", e.to_string()))
    }

    /// Sets every element to zero (keeps shape, dtype and device).
    ///
    /// # Panics
    /// On a CUDA tensor, when the device rejects the memset (a lost device).
    pub fn fill_zero(&mut self) {
        match &mut self.storage {
            Storage::Cpu(CpuStorage::F32(v)) => v.fill(0.0),
            Storage::Cpu(CpuStorage::BF16(v)) => v.fill(bf16::ZERO),
            Storage::Cpu(CpuStorage::F16(v)) => v.fill(f16::ZERO),
            Storage::Cuda(s) => {
                if let Err(e) = s.fill_zero() {
                    panic!("fill_zero on {}: {e}", s.device());
                }
            }
        }
    }

    /// `self += other`, elementwise: gradient accumulation and residual adds in place (on CUDA,
    /// both f32 or both bf16).
    pub fn add_assign(&mut self, other: &Tensor) -> Result<()> {
        self.shape.expect_same("add_assign", &other.shape)?;
        check_same_device("add_assign", self, other)?;
        if let (Storage::Cuda(dst), Storage::Cuda(src)) = (&mut self.storage, &other.storage) {
            return dst.add_assign(src);
        }
        let src = other.as_f32_slice()?;
        let dst = self.as_f32_slice_mut()?;
        crate::ops::elementwise::cpu::add_assign(dst, src);
        Ok(())
    }

    /// Copies `other`'s elements into `self` (same shape; on CUDA the same dtype).
    pub fn copy_from(&mut self, other: &Tensor) -> Result<()> {
        self.shape.expect_same("copy_from", &other.shape)?;
        check_same_device("copy_from", self, other)?;
        if let (Storage::Cuda(dst), Storage::Cuda(src)) = (&mut self.storage, &other.storage) {
            return dst.copy_from(src);
        }
        let src = other.as_f32_slice()?;
        self.as_f32_slice_mut()?.copy_from_slice(src);
        Ok(())
    }
}

impl Tensor {
    /// Rows `start..end` of the (N, C) matrix view (N the product of the leading dimensions, C
    /// the last) as a new (end - start, C) tensor on the same device in the same dtype (a device
    /// copy on CUDA): how a caller cuts a chunk of hidden states without a host view.
    pub fn rows(&self, start: usize, end: usize) -> Result<Tensor> {
        let cols = self.check_rows("Tensor::rows", start, end)?;
        let range = start * cols..end * cols;
        let storage = match &self.storage {
            Storage::Cpu(CpuStorage::F32(v)) => Storage::Cpu(CpuStorage::F32(v[range].to_vec())),
            Storage::Cpu(CpuStorage::BF16(v)) => Storage::Cpu(CpuStorage::BF16(v[range].to_vec())),
            Storage::Cpu(CpuStorage::F16(v)) => Storage::Cpu(CpuStorage::F16(v[range].to_vec())),
            Storage::Cuda(s) => Storage::Cuda(s.copy_range(range)?),
        };
        Ok(Tensor {
            shape: Shape::new([end - start, cols]),
            storage,
        })
    }

    /// Overwrites rows `start..start + R` of the (N, C) matrix view with `src` (R rows of C, any
    /// shape with that many elements and last dimension C), same device and dtype: the inverse of
    /// [`Tensor::rows`], for assembling a result chunk by chunk.
    pub fn set_rows(&mut self, start: usize, src: &Tensor) -> Result<()> {
        let op = "Tensor::set_rows";
        check_same_device(op, self, src)?;
        if src.shape.last_dim() != self.shape.last_dim() {
            return Err(TensorError::ShapeMismatch {
                op,
                detail: "rows must have the destination's last dimension".into(),
                left: self.shape.clone(),
                right: src.shape.clone(),
            });
        }
        let end = start + src.shape.leading_rows();
        let cols = self.check_rows(op, start, end)?;
        let range = start * cols..end * cols;
        let (self_dtype, src_dtype) = (self.dtype(), src.dtype());
        match (&mut self.storage, &src.storage) {
            (Storage::Cpu(CpuStorage::F32(d)), Storage::Cpu(CpuStorage::F32(s))) => {
                d[range].copy_from_slice(s)
            }
            (Storage::Cpu(CpuStorage::BF16(d)), Storage::Cpu(CpuStorage::BF16(s))) => {
                d[range].copy_from_slice(s)
            }
            (Storage::Cpu(CpuStorage::F16(d)), Storage::Cpu(CpuStorage::F16(s))) => {
                d[range].copy_from_slice(s)
            }
            (Storage::Cuda(d), Storage::Cuda(s)) => d.write_range(range.start, s)?,
            _ => return Err(dtype_mismatch(op, self_dtype, src_dtype)),
        }
        Ok(())
    }

    /// Checks `start..end` against the (N, C) view's rows; returns C.
    fn check_rows(&self, op: &'static str, start: usize, end: usize) -> Result<usize> {
        let rows = self.shape.leading_rows();
        if self.shape.rank() == 0 || start > end || end > rows {
            return Err(TensorError::invalid(
                op,
                format!(
                    "rows {start}..{end} of a tensor of shape {} ({rows} rows of its last \
                     dimension)",
                    self.shape
                ),
            ));
        }
        Ok(self.shape.last_dim())
    }
}

/// Checks that every tensor has the dtype of the first (CUDA ops run on f32 or bf16 storage, one
/// dtype per call); returns it.
pub(crate) fn check_same_dtype(op: &'static str, tensors: &[&Tensor]) -> Result<DType> {
    let dtype = tensors.first().map_or(DType::F32, |t| t.dtype());
    for t in tensors {
        if t.dtype() != dtype {
            return Err(dtype_mismatch(op, dtype, t.dtype()));
        }
    }
    Ok(dtype)
}

/// Checks that two tensors live on the same device.
pub(crate) fn check_same_device(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.device() == b.device() {
        Ok(())
    } else {
        Err(TensorError::DeviceMismatch {
            op,
            left: a.device(),
            right: b.device(),
        })
    }
}

fn check_len(op: &'static str, len: usize, shape: &Shape) -> Result<()> {
    if len == shape.numel() {
        Ok(())
    } else {
        Err(TensorError::invalid(
            op,
            format!(
                "{len} elements for shape {shape}, which holds {}",
                shape.numel()
            ),
        ))
    }
}

fn cpu_values_f32(storage: &CpuStorage) -> Vec<f32> {
    match storage {
        CpuStorage::F32(v) => v.clone(),
        CpuStorage::BF16(v) => v.iter().map(|x| x.to_f32()).collect(),
        CpuStorage::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_vec_rejects_wrong_length_naming_both() {
        let err = Tensor::from_vec(vec![1.0; 5], [2, 3], Device::Cpu).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("5 elements") && message.contains("[2, 3]"),
            "{message}"
        );
    }

    #[test]
    fn bf16_round_trip_keeps_representable_values() {
        let t = Tensor::from_vec(vec![1.0, -2.5, 0.15625, 3.0e5], [4], Device::Cpu).unwrap();
        let b = t.to_dtype(DType::BF16).unwrap();
        assert_eq!(b.dtype(), DType::BF16);
        assert_eq!(b.to_le_bytes().len(), 8);
        let back = b.to_dtype(DType::F32).unwrap().to_vec_f32();
        assert_eq!(&back[..3], &[1.0, -2.5, 0.15625]);
        // 3.0e5 is not representable in bf16: rounds to the nearest, 299008.
        assert_eq!(back[3], 299_008.0);
    }

    #[test]
    fn le_bytes_round_trip_every_dtype() {
        let t = Tensor::from_vec(vec![0.5, -1.25, 7.0], [3, 1], Device::Cpu).unwrap();
        for dtype in [DType::F32, DType::BF16, DType::F16] {
            let converted = t.to_dtype(dtype).unwrap();
            let bytes = converted.to_le_bytes();
            let back = Tensor::from_le_bytes(&bytes, dtype, [3, 1], Device::Cpu).unwrap();
            assert_eq!(back, converted);
            assert_eq!(back.to_vec_f32(), vec![0.5, -1.25, 7.0]);
        }
    }

    #[test]
    fn ops_refuse_half_storage_with_clear_error() {
        let t = Tensor::zeros([2], Device::Cpu)
            .unwrap()
            .to_dtype(DType::F16)
            .unwrap();
        let message = t.as_f32_slice().unwrap_err().to_string();
        assert!(
            message.contains("expected dtype f32, found f16"),
            "{message}"
        );
    }

    #[test]
    fn reshape_checks_element_count() {
        let t = Tensor::zeros([2, 3], Device::Cpu).unwrap();
        assert_eq!(t.clone().reshape([3, 2]).unwrap().dims(), &[3, 2]);
        assert!(t.reshape([4]).is_err());
    }

    #[test]
    fn rows_and_set_rows_cut_and_assemble_the_matrix_view() {
        let t =
            Tensor::from_vec((0..12).map(|v| v as f32).collect(), [2, 3, 2], Device::Cpu).unwrap();
        let middle = t.rows(2, 5).unwrap();
        assert_eq!(middle.dims(), &[3, 2]);
        assert_eq!(middle.to_vec_f32(), vec![4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        let mut out = Tensor::zeros([6, 2], Device::Cpu).unwrap();
        out.set_rows(0, &t.rows(0, 2).unwrap()).unwrap();
        out.set_rows(2, &middle).unwrap();
        out.set_rows(5, &t.rows(5, 6).unwrap()).unwrap();
        assert_eq!(out.to_vec_f32(), t.to_vec_f32());
        assert!(t.rows(4, 7).is_err());
        assert!(t.rows(3, 2).is_err());
        assert!(out.set_rows(5, &middle).is_err());
        let wide = Tensor::zeros([1, 3], Device::Cpu).unwrap();
        assert!(out.set_rows(0, &wide).is_err());
        let half = middle.to_dtype(DType::BF16).unwrap();
        assert!(out.set_rows(0, &half).is_err());
        assert_eq!(half.rows(1, 2).unwrap().dtype(), DType::BF16);
    }

    #[test]
    fn a_missing_gpu_is_an_error_naming_the_device() {
        // No machine has 1000 GPUs: creation, copies and moves are typed errors, never panics.
        let missing = Device::Cuda(1000);
        let message = Tensor::zeros([2], missing).unwrap_err().to_string();
        assert!(message.contains("cuda:1000"), "{message}");
        let t = Tensor::from_vec(vec![1.0, 2.0], [2], Device::Cpu).unwrap();
        let message = t.to_device(missing).unwrap_err().to_string();
        assert!(message.contains("cuda:1000"), "{message}");
        assert!(Tensor::full([3], 1.0, missing).is_err());
        assert!(Tensor::from_bf16(vec![bf16::ONE], [1], missing).is_err());
    }
}
