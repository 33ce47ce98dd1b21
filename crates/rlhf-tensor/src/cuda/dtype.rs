//! Storage dtypes the kernels are instantiated for; the name suffix selects the `extern "C"`
//! kernel (`add_f32`, `add_bf16`), so dtype dispatch is written once, here.

use cudarc::driver::{DeviceRepr, ValidAsZeroBits};
use half::bf16;

/// A storage element type with CUDA kernels (all arithmetic is fp32 inside the kernels).
pub trait CudaFloat:
    DeviceRepr + ValidAsZeroBits + Copy + Default + Send + Sync + std::fmt::Debug + 'static
{
    /// Suffix of the kernel names for this dtype.
    const SUFFIX: &'static str;
    /// Elements per 128-bit load.
    const PACK: usize;
    /// Rounds an f32 to this type (round to nearest even).
    fn from_f32(value: f32) -> Self;
    /// Widens to f32 (exact).
    fn to_f32(self) -> f32;
}

impl CudaFloat for f32 {
    const SUFFIX: &'static str = "f32";
    const PACK: usize = 4;
    fn from_f32(value: f32) -> Self {
        value
    }
    fn to_f32(self) -> f32 {
        self
    }
}

impl CudaFloat for bf16 {
    const SUFFIX: &'static str = "bf16";
    const PACK: usize = 8;
    fn from_f32(value: f32) -> Self {
        bf16::from_f32(value)
    }
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
}

/// The kernel name for dtype `T`: `base` + `_` + suffix.
pub(crate) fn kernel_name<T: CudaFloat>(base: &str) -> String {
    format!("{base}_{}", T::SUFFIX)
}
