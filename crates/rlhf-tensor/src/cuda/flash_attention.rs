//! Fused causal self-attention, flash-attention-2 style (kernels/flash_attention.cu): forward and
//! backward without a (T, T) matrix in device memory, for head dims 64 and 128, f32 or bf16
//! storage, fp32 math, with the key-padding mask. Memory beyond the operands: the logsumexp
//! (B, H, T) f32 saved by the forward; the backward's delta (B, H, T) and dQ accumulator
//! (B, H, T, D) f32 — all linear in T.
//!
//! Shapes: qkv (B, T, 3C) read in place as (B, T, 3, H, D) (no head split pass); out (B, T, C);
//! lse (B, H, T) f32 (+inf for a padded query); key_mask (B, T) i32, 0 = padding; dout (B, T, C);
//! dqkv (B, T, 3C). Semantics are those of `ops::attention::cpu` (padded queries output 0 and
//! pass no gradient).
//!
//! Two forwards: fp32 SIMT FMAs (f32 and bf16 storage) and, for bf16, tensor cores
//! (`mma.sync.m16n8k16`, fp32 accumulation), which [`flash_forward`] picks for bf16; the backward
//! is SIMT for both dtypes.
//!
//! Status: compiled, not run (see docs/gpu.md). The tile sizes below are the kernels'; the CPU
//! emulation test (`tests/flash_emulation`) follows the same tiling.

use cudarc::driver::sys::CUfunction_attribute;
use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg};

use super::device::{CudaDevice, driver_error};
use super::dtype::CudaFloat;
use super::launch::{arg_opt, as_i32, check_len, flat_config, launched};
use super::registry::KernelModule;
use crate::{Result, TensorError};

/// Threads per block of the SIMT forward and the backward kernels (16 x 16).
pub const THREADS: u32 = 256;
/// Threads per block of the tensor-core forward (4 warps of 16 query rows each).
pub const TC_THREADS: u32 = 128;
/// Query rows per tensor-core forward block (its key tiles are `FWD_BLOCK_K` = 64 too).
pub const TC_BLOCK_Q: usize = 64;
/// Query rows per forward block.
pub const FWD_BLOCK_Q: usize = 64;
/// Keys per forward inner tile.
pub const FWD_BLOCK_K: usize = 64;
/// Query rows per backward inner tile.
pub const BWD_BLOCK_Q: usize = 32;
/// Keys per backward block.
pub const BWD_BLOCK_K: usize = 64;
/// Head dims with compiled kernels.
pub const HEAD_DIMS: [usize; 2] = [64, 128];

/// Whether the fused kernels exist for this head dim.
pub fn supported_head_dim(head_dim: usize) -> bool {
    HEAD_DIMS.contains(&head_dim)
}

/// Dynamic shared memory of the forward kernel, bytes: Q (64, D+1) + K|V (64, D+1) + P (64, 64)
/// in f32 (the `fwd_smem_floats` of the kernel file).
pub fn forward_shared_bytes(head_dim: usize) -> usize {
    4 * (FWD_BLOCK_Q * (head_dim + 1) + FWD_BLOCK_K * (head_dim + 1) + FWD_BLOCK_Q * FWD_BLOCK_K)
}

/// Dynamic shared memory of the tensor-core forward, bytes: Q, K (64, D+8) and V transposed
/// (D, 64+8) in bf16 (the `tc_fwd_smem_bytes` of the kernel file).
pub fn tc_forward_shared_bytes(head_dim: usize) -> usize {
    2 * (TC_BLOCK_Q * (head_dim + 8) + FWD_BLOCK_K * (head_dim + 8) + head_dim * (FWD_BLOCK_K + 8))
}

/// The forward kernel to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardKernel {
    /// fp32 SIMT FMAs (`flash_fwd_d*`), f32 and bf16 storage.
    Simt,
    /// bf16 `mma.sync.m16n8k16` with fp32 accumulation (`flash_fwd_tc_d*_bf16`), bf16 only.
    TensorCore,
}

impl ForwardKernel {
    /// What [`flash_forward`] runs for storage dtype `T`: tensor cores for bf16, SIMT for f32.
    pub fn for_dtype<T: CudaFloat>() -> ForwardKernel {
        if T::DTYPE == crate::DType::BF16 {
            ForwardKernel::TensorCore
        } else {
            ForwardKernel::Simt
        }
    }
}

/// Dynamic shared memory of the backward kernel, bytes: K, V (64, D+1), Q, dO (32, D+1),
/// P, dS (32, 64) in f32 (the `bwd_smem_floats` of the kernel file).
pub fn backward_shared_bytes(head_dim: usize) -> usize {
    4 * (2 * BWD_BLOCK_K * (head_dim + 1)
        + 2 * BWD_BLOCK_Q * (head_dim + 1)
        + 2 * BWD_BLOCK_Q * BWD_BLOCK_K)
}

/// Scalars of a launch; the layout of `FlashConfig` in flash_attention.cu.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlashConfig {
    /// B.
    pub batch: i32,
    /// T.
    pub seq_len: i32,
    /// H.
    pub heads: i32,
    /// D (64 or 128).
    pub head_dim: i32,
    /// The score scale 1 / sqrt(D).
    pub scale: f32,
}

// SAFETY: repr(C) plain old data matching the CUDA struct field for field.
unsafe impl DeviceRepr for FlashConfig {}

impl FlashConfig {
    /// B, T, H, D; fails for a head dim without kernels or sizes beyond the grid's reach.
    pub fn new(batch: usize, seq_len: usize, heads: usize, head_dim: usize) -> Result<FlashConfig> {
        let op = "cuda::FlashConfig";
        if !supported_head_dim(head_dim) {
            return Err(TensorError::invalid(
                op,
                format!("head_dim = {head_dim}: the fused attention has kernels for {HEAD_DIMS:?}"),
            ));
        }
        // One block row per (b, h) in grid y (at most 65535).
        if batch * heads > 65_535 {
            return Err(TensorError::invalid(
                op,
                format!("batch * heads = {} exceeds 65535", batch * heads),
            ));
        }
        Ok(FlashConfig {
            batch: as_i32(op, "batch", batch)?,
            seq_len: as_i32(op, "seq_len", seq_len)?,
            heads: as_i32(op, "heads", heads)?,
            head_dim: as_i32(op, "head_dim", head_dim)?,
            scale: 1.0 / (head_dim as f32).sqrt(),
        })
    }

    fn b(&self) -> usize {
        self.batch as usize
    }

    fn t(&self) -> usize {
        self.seq_len as usize
    }

    fn bh(&self) -> usize {
        self.batch as usize * self.heads as usize
    }

    fn d(&self) -> usize {
        self.head_dim as usize
    }

    /// B * T * C, the elements of out (qkv holds three times as many).
    pub fn elements(&self) -> usize {
        self.bh() * self.t() * self.d()
    }

    /// B * H * T, the rows of lse.
    pub fn rows(&self) -> usize {
        self.bh() * self.t()
    }
}

/// The launch of one of the tiled kernels: (ceil(T / tile), B * H) blocks of `threads` with
/// `shared` bytes of dynamic shared memory (raised above the 48 KiB default on the function).
fn tiled_launch(
    op: &'static str,
    f: &cudarc::driver::CudaFunction,
    cfg: &FlashConfig,
    threads: u32,
    tile: usize,
    shared: usize,
) -> Result<LaunchConfig> {
    f.set_attribute(
        CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
        shared as i32,
    )
    .map_err(driver_error(op))?;
    Ok(LaunchConfig {
        grid_dim: (cfg.t().div_ceil(tile) as u32, cfg.bh() as u32, 1),
        block_dim: (threads, 1, 1),
        shared_mem_bytes: shared as u32,
    })
}

fn check_mask(
    op: &'static str,
    cfg: &FlashConfig,
    key_mask: Option<&CudaSlice<i32>>,
) -> Result<()> {
    match key_mask {
        Some(mask) => check_len(op, "key_mask", mask.len(), cfg.b() * cfg.t()),
        None => Ok(()),
    }
}

/// Forward: out (B, T, C) and lse (B, H, T) from qkv (B, T, 3C) and the optional key-padding
/// mask (B, T). Every element of `out` and `lse` is written. Runs
/// [`ForwardKernel::for_dtype`]`::<T>()`.
pub fn flash_forward<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: FlashConfig,
    qkv: &CudaSlice<T>,
    key_mask: Option<&CudaSlice<i32>>,
    out: &mut CudaSlice<T>,
    lse: &mut CudaSlice<f32>,
) -> Result<()> {
    let kernel = ForwardKernel::for_dtype::<T>();
    flash_forward_with(dev, kernel, cfg, qkv, key_mask, out, lse)
}

/// [`flash_forward`] with an explicit kernel (the tests compare both on bf16); the tensor-core
/// kernel with f32 storage is an error.
pub fn flash_forward_with<T: CudaFloat>(
    dev: &CudaDevice,
    kernel: ForwardKernel,
    cfg: FlashConfig,
    qkv: &CudaSlice<T>,
    key_mask: Option<&CudaSlice<i32>>,
    out: &mut CudaSlice<T>,
    lse: &mut CudaSlice<f32>,
) -> Result<()> {
    let op = "cuda::flash_forward";
    let n = cfg.elements();
    check_len(op, "qkv", qkv.len(), 3 * n)?;
    check_len(op, "out", out.len(), n)?;
    check_len(op, "lse", lse.len(), cfg.rows())?;
    check_mask(op, &cfg, key_mask)?;
    if n == 0 {
        return Ok(());
    }
    let (name, threads, tile, shared) = match kernel {
        ForwardKernel::Simt => (
            "flash_fwd",
            THREADS,
            FWD_BLOCK_Q,
            forward_shared_bytes(cfg.d()),
        ),
        ForwardKernel::TensorCore if T::DTYPE == crate::DType::BF16 => (
            "flash_fwd_tc",
            TC_THREADS,
            TC_BLOCK_Q,
            tc_forward_shared_bytes(cfg.d()),
        ),
        ForwardKernel::TensorCore => {
            return Err(TensorError::invalid(
                op,
                format!(
                    "the tensor-core forward needs bf16 storage, not {}",
                    T::SUFFIX
                ),
            ));
        }
    };
    let f = dev.typed::<T>(
        KernelModule::FlashAttention,
        &format!("{name}_d{}", cfg.d()),
    )?;
    let launch = tiled_launch(op, &f, &cfg, threads, tile, shared)?;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&cfg).arg(qkv);
    arg_opt(&mut args, key_mask);
    args.arg(out).arg(lse);
    // SAFETY: qkv holds 3 B T C elements, out B T C, lse B H T, the mask B T (checked above);
    // the launch carries the shared memory the kernel's layout needs for this head dim.
    launched(op, unsafe { args.launch(launch) })
}

/// Backward: dqkv (B, T, 3C) from dout (B, T, C), the forward's qkv, out and lse, and the same
/// key-padding mask. Every element of `dqkv` is written. Allocates delta (B, H, T) and the fp32
/// dQ accumulator (B, H, T, D) for the call.
#[allow(clippy::too_many_arguments)]
pub fn flash_backward<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: FlashConfig,
    qkv: &CudaSlice<T>,
    key_mask: Option<&CudaSlice<i32>>,
    out: &CudaSlice<T>,
    lse: &CudaSlice<f32>,
    dout: &CudaSlice<T>,
    dqkv: &mut CudaSlice<T>,
) -> Result<()> {
    let op = "cuda::flash_backward";
    let n = cfg.elements();
    check_len(op, "qkv", qkv.len(), 3 * n)?;
    check_len(op, "out", out.len(), n)?;
    check_len(op, "dout", dout.len(), n)?;
    check_len(op, "lse", lse.len(), cfg.rows())?;
    check_len(op, "dqkv", dqkv.len(), 3 * n)?;
    check_mask(op, &cfg, key_mask)?;
    if n == 0 {
        return Ok(());
    }
    let mut delta = dev.zeros::<f32>(cfg.rows())?;
    let mut dq_acc = dev.zeros::<f32>(n)?;

    // delta = rowsum(dO * O), dq_acc = 0: one warp per row.
    let prep = dev.typed::<T>(KernelModule::FlashAttention, "flash_bwd_prep")?;
    let mut args = dev.stream().launch_builder(&prep);
    args.arg(&cfg)
        .arg(out)
        .arg(dout)
        .arg(&mut delta)
        .arg(&mut dq_acc);
    // SAFETY: out and dout hold B T C elements, delta B H T, dq_acc B H T D (checked/allocated).
    launched(op, unsafe {
        args.launch(flat_config(dev, cfg.rows() * 32))
    })?;

    let f = dev.typed::<T>(
        KernelModule::FlashAttention,
        &format!("flash_bwd_d{}", cfg.d()),
    )?;
    let launch = tiled_launch(
        op,
        &f,
        &cfg,
        THREADS,
        BWD_BLOCK_K,
        backward_shared_bytes(cfg.d()),
    )?;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&cfg).arg(qkv);
    arg_opt(&mut args, key_mask);
    args.arg(dout)
        .arg(lse)
        .arg(&delta)
        .arg(&mut dq_acc)
        .arg(&mut *dqkv);
    // SAFETY: as above; dqkv holds 3 B T C elements; the shared memory matches the head dim.
    launched(op, unsafe { args.launch(launch) })?;

    let dq = dev.typed::<T>(KernelModule::FlashAttention, "flash_bwd_dq")?;
    let mut args = dev.stream().launch_builder(&dq);
    args.arg(&cfg).arg(&dq_acc).arg(dqkv);
    // SAFETY: dq_acc holds B H T D floats, dqkv 3 B T C elements.
    launched(op, unsafe { args.launch(flat_config(dev, n)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_memory_fits_an_h100_block() {
        // 227 KiB is the per-block opt-in maximum on sm_90.
        for d in HEAD_DIMS {
            assert!(forward_shared_bytes(d) <= 227 * 1024);
            assert!(backward_shared_bytes(d) <= 227 * 1024);
        }
        assert_eq!(forward_shared_bytes(64), 49_664);
        assert_eq!(forward_shared_bytes(128), 82_432);
        assert_eq!(backward_shared_bytes(64), 66_304);
        assert_eq!(backward_shared_bytes(128), 115_456);
        assert_eq!(tc_forward_shared_bytes(64), 27_648);
        assert_eq!(tc_forward_shared_bytes(128), 53_248);
    }

    #[test]
    fn config_refuses_unsupported_head_dims() {
        assert!(FlashConfig::new(2, 17, 3, 64).is_ok());
        assert!(FlashConfig::new(2, 17, 3, 128).is_ok());
        let err = FlashConfig::new(2, 17, 3, 16).unwrap_err().to_string();
        assert!(err.contains("head_dim = 16"), "{err}");
    }

    #[test]
    fn kernels_are_in_the_ptx() {
        let ptx = KernelModule::FlashAttention.ptx();
        for dtype in ["f32", "bf16"] {
            for d in HEAD_DIMS {
                assert!(ptx.contains(&format!(".entry flash_fwd_d{d}_{dtype}(")));
                assert!(ptx.contains(&format!(".entry flash_bwd_d{d}_{dtype}(")));
            }
            assert!(ptx.contains(&format!(".entry flash_bwd_prep_{dtype}(")));
            assert!(ptx.contains(&format!(".entry flash_bwd_dq_{dtype}(")));
        }
        for d in HEAD_DIMS {
            assert!(ptx.contains(&format!(".entry flash_fwd_tc_d{d}_bf16(")));
        }
        assert!(ptx.contains("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"));
    }
}
