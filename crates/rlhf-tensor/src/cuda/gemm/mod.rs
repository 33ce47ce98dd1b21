//! Our GEMM (`kernels/gemm.cu`): row-major, strided batches, the four transposes, with a fused
//! epilogue (alpha, beta, a bias row, an optional tanh-GELU that can also keep its input).
//!
//! - bf16 inputs: tensor cores (`mma.sync.m16n8k16`, fp32 accumulation, sm_80+), output bf16
//!   or f32;
//! - f32 inputs: exact fp32 on CUDA cores (register-tiled), output f32.
//!
//! Parts: [`gemm_ours`] (the launch wrapper, same [`GemmShape`] as cuBLAS's
//! [`crate::cuda::matmul::gemm_cublas`]), [`chooser`] (ours or cuBLAS per shape; what
//! [`crate::cuda::matmul::gemm`] asks), [`tiling`] (the kernel's index math mirrored on the CPU,
//! emulated by a test). Status: compiled, not run (docs/gpu.md).

pub mod chooser;
pub mod tiling;

use cudarc::driver::{CudaSlice, DevicePtr, DevicePtrMut, DeviceRepr, LaunchConfig, PushKernelArg};

use super::device::CudaDevice;
use super::dtype::CudaFloat;
use super::launch::{as_i32, launched};
use super::matmul::{GemmShape, check_operands};
use super::registry::KernelModule;
use crate::{Result, TensorError};

/// The kernel's parameter block, field for field `GemmParams` in `kernels/gemm.cu`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
struct GemmParams {
    stride_a: i64,
    stride_b: i64,
    stride_c: i64,
    m: i32,
    n: i32,
    k: i32,
    lda: i32,
    ldb: i32,
    ldc: i32,
    alpha: f32,
    beta: f32,
    gelu: i32,
    a_vec: i32,
    b_vec: i32,
}

// SAFETY: repr(C) plain old data matching the CUDA struct field for field.
unsafe impl DeviceRepr for GemmParams {}

/// What the epilogue adds to `alpha op(A) op(B) + beta C`: a bias over columns (N elements, the
/// input dtype `I`) and the tanh-GELU; with GELU, `pre_gelu` (shaped like C, dtype `O`) also
/// receives the value before the activation, which the GELU backward needs.
#[derive(Debug, Default)]
pub struct Epilogue<'a, I, O> {
    /// Added to every row of the product.
    pub bias: Option<&'a CudaSlice<I>>,
    /// Apply the tanh-GELU last.
    pub gelu: bool,
    /// With `gelu`: where the pre-activation goes.
    pub pre_gelu: Option<&'a mut CudaSlice<O>>,
}

impl<'a, I, O> Epilogue<'a, I, O> {
    /// Nothing fused: C = alpha op(A) op(B) + beta C.
    pub fn none() -> Epilogue<'a, I, O> {
        Epilogue {
            bias: None,
            gelu: false,
            pre_gelu: None,
        }
    }
}

/// Threads per block of both kernel families.
const THREADS: u32 = tiling::THREADS as u32;

/// Extern "C" name: `gemm_<in>_<out>_<layout>`.
fn kernel_name<I: CudaFloat, O: CudaFloat>(trans_a: bool, trans_b: bool) -> String {
    let t = |x: bool| if x { 't' } else { 'n' };
    format!(
        "gemm_{}_{}_{}{}",
        I::SUFFIX,
        O::SUFFIX,
        t(trans_a),
        t(trans_b)
    )
}

/// 16-byte loads are legal for an operand whose pointer is 16-byte aligned and whose stored
/// row length and batch stride are multiples of 8 elements.
fn vector_ok<I: CudaFloat>(ptr: u64, row_len: usize, batch_stride: usize, batch: usize) -> bool {
    let per_chunk = 16 / std::mem::size_of::<I>();
    ptr.is_multiple_of(16)
        && row_len.is_multiple_of(per_chunk)
        && (batch <= 1 || batch_stride.is_multiple_of(per_chunk))
}

/// Runs `shape` on our kernel: `c (batch, M, N) = act(alpha op(a) op(b) + beta c + bias)`.
/// bf16 inputs run on tensor cores (output bf16 or f32), f32 inputs on CUDA cores (output f32).
/// With beta = 0, C is never read (it may hold NaN).
pub fn gemm_ours<I, O, A, B, C>(
    dev: &CudaDevice,
    shape: GemmShape,
    a: &A,
    b: &B,
    c: &mut C,
    epilogue: Epilogue<'_, I, O>,
) -> Result<()>
where
    I: CudaFloat,
    O: CudaFloat,
    A: DevicePtr<I>,
    B: DevicePtr<I>,
    C: DevicePtrMut<O>,
{
    let op = "cuda::gemm_ours";
    if !check_operands(op, &shape, a.len(), b.len(), c.len())? {
        return Ok(());
    }
    let GemmShape { m, n, k, batch, .. } = shape;
    if I::DTYPE == crate::DType::F32 && O::DTYPE != crate::DType::F32 {
        return Err(TensorError::invalid(
            op,
            format!("f32 inputs give f32 outputs only (asked for {})", O::SUFFIX),
        ));
    }
    if let Some(bias) = epilogue.bias
        && bias.len() < n
    {
        return Err(TensorError::invalid(
            op,
            format!("bias holds {} elements, N = {n}", bias.len()),
        ));
    }
    if let Some(pre) = epilogue.pre_gelu.as_ref() {
        if !epilogue.gelu {
            return Err(TensorError::invalid(op, "pre_gelu given without gelu"));
        }
        let need = shape.extent(shape.stride_c, m * n);
        if pre.len() < need {
            return Err(TensorError::invalid(
                op,
                format!("pre_gelu holds {} elements, C needs {need}", pre.len()),
            ));
        }
    }
    if batch > 65_535 {
        return Err(TensorError::invalid(
            op,
            format!("batch = {batch} exceeds the grid's 65535"),
        ));
    }
    let tiles = m.div_ceil(tiling::BM) * n.div_ceil(tiling::BN);
    let tiles = as_i32(op, "M-tiles x N-tiles", tiles)? as u32;
    let lda = if shape.trans_a { m } else { k };
    let ldb = if shape.trans_b { k } else { n };
    let stream = dev.stream();
    let (a_ptr, _a_sync) = a.device_ptr(stream);
    let (b_ptr, _b_sync) = b.device_ptr(stream);
    let (c_ptr, _c_sync) = c.device_ptr_mut(stream);
    let bias_ptr = epilogue.bias.map(|s| s.device_ptr(stream));
    let mut pre = epilogue.pre_gelu;
    let pre_ptr = pre.as_mut().map(|s| s.device_ptr_mut(stream));
    let params = GemmParams {
        stride_a: shape.stride_a as i64,
        stride_b: shape.stride_b as i64,
        stride_c: shape.stride_c as i64,
        m: as_i32(op, "m", m)?,
        n: as_i32(op, "n", n)?,
        k: as_i32(op, "k", k)?,
        lda: as_i32(op, "lda", lda)?,
        ldb: as_i32(op, "ldb", ldb)?,
        ldc: as_i32(op, "ldc", n)?,
        alpha: shape.alpha,
        beta: shape.beta,
        gelu: epilogue.gelu as i32,
        a_vec: vector_ok::<I>(a_ptr, lda, shape.stride_a, batch) as i32,
        b_vec: vector_ok::<I>(b_ptr, ldb, shape.stride_b, batch) as i32,
    };
    let f = dev.function(
        KernelModule::Gemm,
        &kernel_name::<I, O>(shape.trans_a, shape.trans_b),
    )?;
    let cfg = LaunchConfig {
        grid_dim: (tiles, 1, batch as u32),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    };
    let null = 0u64;
    let bias_arg = bias_ptr.as_ref().map_or(null, |(p, _)| *p);
    let pre_arg = pre_ptr.as_ref().map_or(null, |(p, _)| *p);
    let mut args = stream.launch_builder(&f);
    args.arg(&params)
        .arg(&a_ptr)
        .arg(&b_ptr)
        .arg(&c_ptr)
        .arg(&bias_arg)
        .arg(&pre_arg);
    // SAFETY: gemm_<I>_<O>_<layout>(params, a, b, c, bias, pre): a, b and c hold every element
    // the shape's sizes and strides reach (checked above), bias N elements, pre C's extent; the
    // sync guards of every pointer live until after the launch.
    launched(op, unsafe { args.launch(cfg) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::bf16;

    #[test]
    fn params_match_the_cuda_layout() {
        // 3 x i64, 6 x i32, 2 x f32, 3 x i32 = 68 bytes, padded to 8-byte alignment.
        assert_eq!(std::mem::size_of::<GemmParams>(), 72);
        assert_eq!(std::mem::align_of::<GemmParams>(), 8);
    }

    #[test]
    fn kernel_names_and_vector_rules() {
        assert_eq!(kernel_name::<bf16, bf16>(false, true), "gemm_bf16_bf16_nt");
        assert_eq!(kernel_name::<f32, f32>(true, false), "gemm_f32_f32_tn");
        assert_eq!(kernel_name::<bf16, f32>(true, true), "gemm_bf16_f32_tt");
        assert!(vector_ok::<bf16>(256, 768, 0, 1));
        assert!(!vector_ok::<bf16>(258, 768, 0, 1));
        assert!(!vector_ok::<bf16>(256, 65, 0, 1));
        assert!(!vector_ok::<bf16>(256, 64, 12, 2));
        assert!(vector_ok::<bf16>(256, 64, 12, 1));
        assert!(vector_ok::<f32>(256, 4, 8, 2));
    }
}
