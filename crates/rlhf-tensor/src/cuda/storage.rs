//! The device storage behind a `Tensor` on `Device::Cuda(n)`: a device buffer in the tensor's
//! dtype (f32 or bf16; f16 has no kernels) and the device it lives on. Host copies, dtype
//! conversion on the device, in-place accumulation, and the glue the `ops` dispatch uses to reach
//! the typed launch wrappers ([`DeviceElem`], [`by_cuda_dtype!`]).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cudarc::driver::{CudaSlice, DevicePtr, DevicePtrMut, PushKernelArg};
use half::bf16;

use super::device::{CudaDevice, driver_error};
use super::dtype::CudaFloat;
use super::elementwise;
use super::launch::{check_len, flat_config, launched};
use super::registry::KernelModule;
use crate::tensor::CpuStorage;
use crate::{DType, Device, Result, TensorError};

/// A device buffer in one of the dtypes the kernels are built for.
pub(crate) enum CudaData {
    /// fp32 storage.
    F32(CudaSlice<f32>),
    /// bf16 storage (fp32 arithmetic inside every kernel).
    BF16(CudaSlice<bf16>),
}

/// A tensor's storage on a CUDA device.
pub(crate) struct CudaStorage {
    pub(crate) dev: Arc<CudaDevice>,
    pub(crate) data: CudaData,
}

/// The error for a dtype that has no CUDA kernels (f16).
pub(crate) fn unsupported_dtype(op: &'static str, dtype: DType) -> TensorError {
    TensorError::invalid(
        op,
        format!(
            "{dtype} storage has no CUDA kernels; CUDA tensors are f32 or bf16 (convert with \
             `to_dtype` first)"
        ),
    )
}

/// Calls `f::<T>(args)` for the CUDA storage dtype `dtype` (f32 or bf16); f16 is an error naming
/// `op`.
macro_rules! by_cuda_dtype {
    ($op:expr, $dtype:expr, $f:ident ( $($arg:expr),* $(,)? )) => {
        match $dtype {
            $crate::DType::F32 => $f::<f32>($($arg),*),
            $crate::DType::BF16 => $f::<half::bf16>($($arg),*),
            other => Err($crate::cuda::storage::unsupported_dtype($op, other)),
        }
    };
}
pub(crate) use by_cuda_dtype;

/// A storage type of CUDA tensors: how to find its buffer in [`CudaData`], and the conversions
/// to and from the fp32 buffers that some kernels write (statistics, gradient accumulators).
pub(crate) trait DeviceElem: CudaFloat {
    /// The buffer, when `data` holds this dtype.
    fn of(data: &CudaData) -> Option<&CudaSlice<Self>>;
    /// The buffer, mutably, when `data` holds this dtype.
    fn of_mut(data: &mut CudaData) -> Option<&mut CudaSlice<Self>>;
    /// Wraps a buffer of this dtype.
    fn wrap(buffer: CudaSlice<Self>) -> CudaData;
    /// An fp32 buffer converted to this dtype (moved when it already is f32).
    fn from_f32_buffer(dev: &CudaDevice, buffer: CudaSlice<f32>) -> Result<CudaSlice<Self>>;
    /// A copy of `buffer` widened to fp32.
    fn to_f32_buffer(dev: &CudaDevice, buffer: &CudaSlice<Self>) -> Result<CudaSlice<f32>>;
}

impl DeviceElem for f32 {
    fn of(data: &CudaData) -> Option<&CudaSlice<f32>> {
        match data {
            CudaData::F32(b) => Some(b),
            CudaData::BF16(_) => None,
        }
    }
    fn of_mut(data: &mut CudaData) -> Option<&mut CudaSlice<f32>> {
        match data {
            CudaData::F32(b) => Some(b),
            CudaData::BF16(_) => None,
        }
    }
    fn wrap(buffer: CudaSlice<f32>) -> CudaData {
        CudaData::F32(buffer)
    }
    fn from_f32_buffer(_: &CudaDevice, buffer: CudaSlice<f32>) -> Result<CudaSlice<f32>> {
        Ok(buffer)
    }
    fn to_f32_buffer(dev: &CudaDevice, buffer: &CudaSlice<f32>) -> Result<CudaSlice<f32>> {
        clone_buffer(dev, buffer)
    }
}

impl DeviceElem for bf16 {
    fn of(data: &CudaData) -> Option<&CudaSlice<bf16>> {
        match data {
            CudaData::BF16(b) => Some(b),
            CudaData::F32(_) => None,
        }
    }
    fn of_mut(data: &mut CudaData) -> Option<&mut CudaSlice<bf16>> {
        match data {
            CudaData::BF16(b) => Some(b),
            CudaData::F32(_) => None,
        }
    }
    fn wrap(buffer: CudaSlice<bf16>) -> CudaData {
        CudaData::BF16(buffer)
    }
    fn from_f32_buffer(dev: &CudaDevice, buffer: CudaSlice<f32>) -> Result<CudaSlice<bf16>> {
        let mut out = dev.zeros::<bf16>(buffer.len())?;
        elementwise::f32_to_bf16(dev, &buffer, &mut out)?;
        Ok(out)
    }
    fn to_f32_buffer(dev: &CudaDevice, buffer: &CudaSlice<bf16>) -> Result<CudaSlice<f32>> {
        let mut out = dev.zeros::<f32>(buffer.len())?;
        elementwise::bf16_to_f32(dev, buffer, &mut out)?;
        Ok(out)
    }
}

/// Whether op outputs start as NaN (see [`poison_op_outputs`]).
static POISON_OUTPUTS: AtomicBool = AtomicBool::new(false);

/// For tests: when `on`, every buffer a tensor-level op allocates for an output its kernel must
/// write in full starts as NaN instead of zeros, so an element a kernel fails to write shows up
/// as NaN rather than hiding as a plausible 0. Off by default; process-wide.
pub fn poison_op_outputs(on: bool) {
    POISON_OUTPUTS.store(on, Ordering::Relaxed);
}

/// A buffer for an op's output that the kernel writes in full: zeros, or NaN under
/// [`poison_op_outputs`].
pub(crate) fn output<T: CudaFloat>(dev: &CudaDevice, len: usize) -> Result<CudaSlice<T>> {
    if POISON_OUTPUTS.load(Ordering::Relaxed) {
        dev.full::<T>(len, f32::NAN)
    } else {
        dev.zeros::<T>(len)
    }
}

/// A device-to-device copy of a buffer.
pub(crate) fn clone_buffer<T: CudaFloat>(
    dev: &CudaDevice,
    buffer: &CudaSlice<T>,
) -> Result<CudaSlice<T>> {
    dev.stream()
        .clone_dtod(buffer)
        .map_err(driver_error("cuda tensor copy"))
}

/// `x += y` in place (same length, same dtype): gradient accumulation and residual adds.
pub(crate) fn add_in_place<T: CudaFloat>(
    dev: &CudaDevice,
    x: &mut CudaSlice<T>,
    y: &CudaSlice<T>,
) -> Result<()> {
    let op = "cuda::add_in_place";
    check_len(op, "y", y.len(), x.len())?;
    if x.is_empty() {
        return Ok(());
    }
    let f = dev.typed::<T>(KernelModule::Elementwise, "add")?;
    let n = x.len() as i64;
    let cfg = flat_config(dev, x.len().div_ceil(T::PACK));
    let stream = dev.stream().clone();
    let (y_ptr, _y_record) = y.device_ptr(&stream);
    let (x_ptr, _x_record) = x.device_ptr_mut(&stream);
    let mut args = stream.launch_builder(&f);
    args.arg(&n).arg(&x_ptr).arg(&y_ptr).arg(&x_ptr);
    // SAFETY: add_T(n, a, b, out) reads a[i], b[i] and writes out[i] from the same thread (the
    // same packs at the same offsets), so out = a is allowed; both buffers hold n elements.
    launched(op, unsafe { args.launch(cfg) })
}

impl CudaData {
    fn dtype(&self) -> DType {
        match self {
            CudaData::F32(_) => DType::F32,
            CudaData::BF16(_) => DType::BF16,
        }
    }

    fn len(&self) -> usize {
        match self {
            CudaData::F32(b) => b.len(),
            CudaData::BF16(b) => b.len(),
        }
    }
}

impl CudaStorage {
    /// Copies host storage to `device` (an error naming the device when there is no such GPU).
    pub(crate) fn upload(op: &'static str, host: &CpuStorage, device: Device) -> Result<Self> {
        let dev = device_for(op, device)?;
        let len = match host {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::BF16(v) => v.len(),
            CpuStorage::F16(v) => v.len(),
        };
        check_nonempty(op, device, len)?;
        let data = match host {
            CpuStorage::F32(v) => CudaData::F32(dev.upload(v)?),
            CpuStorage::BF16(v) => CudaData::BF16(dev.upload(v)?),
            CpuStorage::F16(_) => return Err(unsupported_dtype(op, DType::F16)),
        };
        Ok(CudaStorage { dev, data })
    }

    /// `len` zeros of `dtype` on `device`.
    pub(crate) fn zeros(
        op: &'static str,
        device: Device,
        dtype: DType,
        len: usize,
    ) -> Result<Self> {
        let dev = device_for(op, device)?;
        check_nonempty(op, device, len)?;
        let data = match dtype {
            DType::F32 => CudaData::F32(dev.zeros(len)?),
            DType::BF16 => CudaData::BF16(dev.zeros(len)?),
            DType::F16 => return Err(unsupported_dtype(op, dtype)),
        };
        Ok(CudaStorage { dev, data })
    }

    /// `len` f32 elements equal to `value` on `device`, filled by a kernel (no host buffer).
    pub(crate) fn full(op: &'static str, device: Device, len: usize, value: f32) -> Result<Self> {
        let dev = device_for(op, device)?;
        check_nonempty(op, device, len)?;
        let mut buffer = dev.zeros::<f32>(len)?;
        if len > 0 && value != 0.0 {
            elementwise::fill(&dev, &mut buffer, value)?;
        }
        Ok(CudaStorage {
            dev,
            data: CudaData::F32(buffer),
        })
    }

    /// The crate-level device.
    pub(crate) fn device(&self) -> Device {
        self.dev.device()
    }

    /// The storage dtype.
    pub(crate) fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// Copies the buffer to the host, in its dtype (waits for the stream).
    pub(crate) fn download(&self) -> Result<CpuStorage> {
        Ok(match &self.data {
            CudaData::F32(b) => CpuStorage::F32(self.dev.download(b)?),
            CudaData::BF16(b) => CpuStorage::BF16(self.dev.download(b)?),
        })
    }

    /// A device copy (same device, same dtype).
    pub(crate) fn try_clone(&self) -> Result<Self> {
        let data = match &self.data {
            CudaData::F32(b) => CudaData::F32(clone_buffer(&self.dev, b)?),
            CudaData::BF16(b) => CudaData::BF16(clone_buffer(&self.dev, b)?),
        };
        Ok(CudaStorage {
            dev: self.dev.clone(),
            data,
        })
    }

    /// A copy in another dtype, converted on the device (round to nearest even when narrowing).
    pub(crate) fn to_dtype(&self, dtype: DType) -> Result<Self> {
        let op = "Tensor::to_dtype";
        let dev = &self.dev;
        let data = match (&self.data, dtype) {
            (CudaData::F32(b), DType::F32) => CudaData::F32(clone_buffer(dev, b)?),
            (CudaData::BF16(b), DType::BF16) => CudaData::BF16(clone_buffer(dev, b)?),
            (CudaData::F32(b), DType::BF16) => {
                CudaData::BF16(bf16::from_f32_buffer(dev, clone_buffer(dev, b)?)?)
            }
            (CudaData::BF16(b), DType::F32) => CudaData::F32(bf16::to_f32_buffer(dev, b)?),
            (_, DType::F16) => return Err(unsupported_dtype(op, dtype)),
        };
        Ok(CudaStorage {
            dev: dev.clone(),
            data,
        })
    }

    /// Sets every element to zero.
    pub(crate) fn fill_zero(&mut self) -> Result<()> {
        let stream = self.dev.stream().clone();
        match &mut self.data {
            CudaData::F32(b) => stream.memset_zeros(b),
            CudaData::BF16(b) => stream.memset_zeros(b),
        }
        .map_err(driver_error("fill_zero"))
    }

    /// `self += other` (same dtype and length).
    pub(crate) fn add_assign(&mut self, other: &CudaStorage) -> Result<()> {
        let dev = self.dev.clone();
        match (&mut self.data, &other.data) {
            (CudaData::F32(x), CudaData::F32(y)) => add_in_place(&dev, x, y),
            (CudaData::BF16(x), CudaData::BF16(y)) => add_in_place(&dev, x, y),
            (x, y) => Err(dtype_mismatch("add_assign", x.dtype(), y.dtype())),
        }
    }

    /// Elements `range` as a new buffer on the same device (a device copy).
    pub(crate) fn copy_range(&self, range: std::ops::Range<usize>) -> Result<Self> {
        let op = "Tensor::rows";
        check_nonempty(op, self.device(), range.len())?;
        let stream = self.dev.stream().clone();
        let data = match &self.data {
            CudaData::F32(b) => CudaData::F32(
                stream
                    .clone_dtod(&b.slice(range))
                    .map_err(driver_error(op))?,
            ),
            CudaData::BF16(b) => CudaData::BF16(
                stream
                    .clone_dtod(&b.slice(range))
                    .map_err(driver_error(op))?,
            ),
        };
        Ok(CudaStorage {
            dev: self.dev.clone(),
            data,
        })
    }

    /// Writes `src` over elements `start..start + src.len()` (same dtype, in bounds).
    pub(crate) fn write_range(&mut self, start: usize, src: &CudaStorage) -> Result<()> {
        let op = "Tensor::set_rows";
        let end = start + src.data.len();
        let stream = self.dev.stream().clone();
        match (&mut self.data, &src.data) {
            (CudaData::F32(x), CudaData::F32(y)) => {
                stream.memcpy_dtod(y, &mut x.slice_mut(start..end))
            }
            (CudaData::BF16(x), CudaData::BF16(y)) => {
                stream.memcpy_dtod(y, &mut x.slice_mut(start..end))
            }
            (x, y) => return Err(dtype_mismatch(op, x.dtype(), y.dtype())),
        }
        .map_err(driver_error(op))
    }

    /// Copies `other`'s elements into `self` (same dtype and length).
    pub(crate) fn copy_from(&mut self, other: &CudaStorage) -> Result<()> {
        let op = "copy_from";
        check_len(op, "source", other.data.len(), self.data.len())?;
        let stream = self.dev.stream().clone();
        match (&mut self.data, &other.data) {
            (CudaData::F32(x), CudaData::F32(y)) => stream.memcpy_dtod(y, x),
            (CudaData::BF16(x), CudaData::BF16(y)) => stream.memcpy_dtod(y, x),
            (x, y) => return Err(dtype_mismatch(op, x.dtype(), y.dtype())),
        }
        .map_err(driver_error(op))
    }
}

/// The error for operands of different dtypes on a CUDA op.
pub(crate) fn dtype_mismatch(op: &'static str, expected: DType, found: DType) -> TensorError {
    TensorError::DTypeMismatch {
        op,
        expected,
        found,
    }
}

/// CUDA cannot allocate an empty buffer: a typed error naming the op instead of the driver's
/// `CUDA_ERROR_INVALID_VALUE`.
fn check_nonempty(op: &'static str, device: Device, len: usize) -> Result<()> {
    if len == 0 {
        return Err(TensorError::invalid(
            op,
            format!("a tensor with no elements cannot be allocated on {device}"),
        ));
    }
    Ok(())
}

/// The registry's device for `device` (an `Unsupported` error naming it when there is no such
/// GPU or `device` is the CPU).
pub(crate) fn device_for(op: &'static str, device: Device) -> Result<Arc<CudaDevice>> {
    match device {
        Device::Cuda(ordinal) => CudaDevice::get(ordinal).map_err(|e| match e {
            TensorError::Unsupported { device, .. } => TensorError::Unsupported { op, device },
            other => other,
        }),
        Device::Cpu => Err(TensorError::invalid(op, "expected a CUDA device, got cpu")),
    }
}

impl fmt::Debug for CudaStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CudaStorage {{ device: {}, dtype: {}, len: {} }}",
            self.device(),
            self.dtype(),
            self.data.len()
        )
    }
}

impl Clone for CudaStorage {
    /// A device copy. Panics when the copy fails (out of device memory, a lost device): `Clone`
    /// cannot return an error; `Tensor::try_clone` can.
    fn clone(&self) -> Self {
        match self.try_clone() {
            Ok(copy) => copy,
            Err(e) => panic!("cloning a {} tensor: {e}", self.device()),
        }
    }
}

impl PartialEq for CudaStorage {
    /// Equal when on the same device with the same dtype and elements (compared on the host, NaN
    /// unequal as for `Vec<f32>`); a failed download compares unequal.
    fn eq(&self, other: &Self) -> bool {
        if self.device() != other.device() || self.dtype() != other.dtype() {
            return false;
        }
        match (self.download(), other.download()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}
