//! Storage dtypes the kernels are instantiated for; the name suffix selects the `extern "C"`
//! kernel (`add_f32`, `add_bf16`), so dtype dispatch is written once, here. The cuBLAS GEMM of
//! each dtype hangs off the same trait, so generic code needs no `CudaBlas: Gemm<T>` bound.

use cudarc::cublas::{CudaBlas, Gemm, StridedBatchedConfig, result::CublasError};
use cudarc::driver::{DevicePtr, DevicePtrMut, DeviceRepr, ValidAsZeroBits};
use half::bf16;

use crate::DType;

/// A storage element type with CUDA kernels (all arithmetic is fp32 inside the kernels).
pub trait CudaFloat:
    DeviceRepr + ValidAsZeroBits + Copy + Default + Send + Sync + std::fmt::Debug + 'static
{
    /// Suffix of the kernel names for this dtype.
    const SUFFIX: &'static str;
    /// The tensor dtype this storage type is.
    const DTYPE: DType;
    /// Elements per 128-bit load.
    const PACK: usize;
    /// Rounds an f32 to this type (round to nearest even).
    fn from_f32(value: f32) -> Self;
    /// Widens to f32 (exact).
    fn to_f32(self) -> f32;
    /// cuBLAS strided-batched GEMM in this dtype (fp32 accumulation); see
    /// [`super::matmul::gemm`], which checks the operands and calls this.
    ///
    /// # Safety
    /// Every operand must hold the elements that `cfg`'s sizes, leading dimensions and strides
    /// reach.
    unsafe fn gemm_strided_batched<A: DevicePtr<Self>, B: DevicePtr<Self>, C: DevicePtrMut<Self>>(
        blas: &CudaBlas,
        cfg: StridedBatchedConfig<Self>,
        a: &A,
        b: &B,
        c: &mut C,
    ) -> Result<(), CublasError>;
}

impl CudaFloat for f32 {
    const SUFFIX: &'static str = "f32";
    const DTYPE: DType = DType::F32;
    const PACK: usize = 4;
    fn from_f32(value: f32) -> Self {
        value
    }
    fn to_f32(self) -> f32 {
        self
    }
    unsafe fn gemm_strided_batched<
        A: DevicePtr<Self>,
        B: DevicePtr<Self>,
        C: DevicePtrMut<Self>,
    >(
        blas: &CudaBlas,
        cfg: StridedBatchedConfig<Self>,
        a: &A,
        b: &B,
        c: &mut C,
    ) -> Result<(), CublasError> {
        // SAFETY: forwarded from the caller's contract.
        unsafe { Gemm::<Self>::gemm_strided_batched(blas, cfg, a, b, c) }
    }
}

impl CudaFloat for bf16 {
    const SUFFIX: &'static str = "bf16";
    const DTYPE: DType = DType::BF16;
    const PACK: usize = 8;
    fn from_f32(value: f32) -> Self {
        bf16::from_f32(value)
    }
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
    unsafe fn gemm_strided_batched<
        A: DevicePtr<Self>,
        B: DevicePtr<Self>,
        C: DevicePtrMut<Self>,
    >(
        blas: &CudaBlas,
        cfg: StridedBatchedConfig<Self>,
        a: &A,
        b: &B,
        c: &mut C,
    ) -> Result<(), CublasError> {
        // SAFETY: forwarded from the caller's contract.
        unsafe { Gemm::<Self>::gemm_strided_batched(blas, cfg, a, b, c) }
    }
}

/// The kernel name for dtype `T`: `base` + `_` + suffix.
pub(crate) fn kernel_name<T: CudaFloat>(base: &str) -> String {
    format!("{base}_{}", T::SUFFIX)
}
