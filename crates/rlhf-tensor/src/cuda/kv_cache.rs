//! Decoding attention over a key/value cache on device buffers (kernels/kv_cache.cu): append a
//! step's keys and values, and attend the step's queries over every cached real position.

use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg};

use super::device::CudaDevice;
use super::dtype::CudaFloat;
use super::launch::{as_i32, check_len, flat_config, launched};
use super::registry::KernelModule;
use crate::{Result, TensorError};

/// Threads per (row, query, head) block of the attention kernel.
const ATTEND_THREADS: u32 = 128;

/// Dynamic shared memory the attention kernel may use without an opt-in (48 KiB).
const MAX_SHARED_BYTES: usize = 48 * 1024;

/// Sizes of a cache launch; the layout of `KvConfig` in kv_cache.cu.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KvConfig {
    /// B, sequences.
    pub batch: i32,
    /// n, new positions this step.
    pub new_len: i32,
    /// H, heads.
    pub heads: i32,
    /// D, features per head.
    pub head_dim: i32,
    /// Positions the cache holds.
    pub capacity: i32,
    /// Positions cached before this step.
    pub start: i32,
}

// SAFETY: repr(C) plain old data matching the CUDA struct field for field.
unsafe impl DeviceRepr for KvConfig {}

impl KvConfig {
    /// A step of `new_len` positions for `batch` sequences after `start` cached ones.
    pub fn new(
        batch: usize,
        new_len: usize,
        heads: usize,
        head_dim: usize,
        capacity: usize,
        start: usize,
    ) -> Result<Self> {
        let op = "cuda::KvConfig";
        if start + new_len > capacity {
            return Err(TensorError::invalid(
                op,
                format!("{start} cached + {new_len} new positions exceed the capacity {capacity}"),
            ));
        }
        Ok(KvConfig {
            batch: as_i32(op, "batch", batch)?,
            new_len: as_i32(op, "new_len", new_len)?,
            heads: as_i32(op, "heads", heads)?,
            head_dim: as_i32(op, "head_dim", head_dim)?,
            capacity: as_i32(op, "capacity", capacity)?,
            start: as_i32(op, "start", start)?,
        })
    }

    fn sizes(&self) -> [usize; 6] {
        [
            self.batch,
            self.new_len,
            self.heads,
            self.head_dim,
            self.capacity,
            self.start,
        ]
        .map(|v| v.max(0) as usize)
    }
}

/// Writes the keys and values of `qkv` (B, n, 3C) into `keys` / `values` (B, H, cap, D) at
/// positions start..start + n.
pub fn kv_append<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: KvConfig,
    qkv: &CudaSlice<T>,
    keys: &mut CudaSlice<T>,
    values: &mut CudaSlice<T>,
) -> Result<()> {
    let op = "cuda::kv_append";
    let [b, n, h, d, cap, _] = cfg.sizes();
    check_len(op, "qkv", qkv.len(), b * n * 3 * h * d)?;
    check_len(op, "keys", keys.len(), b * h * cap * d)?;
    check_len(op, "values", values.len(), b * h * cap * d)?;
    if b * n * h * d == 0 {
        return Ok(());
    }
    let f = dev.typed::<T>(KernelModule::KvCache, "kv_append")?;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&cfg).arg(qkv).arg(keys).arg(values);
    // SAFETY: sizes checked above; the kernel writes positions start..start + n < cap.
    launched(op, unsafe { args.launch(flat_config(dev, b * n * h * d)) })
}

/// Attention of the step's queries in `qkv` (B, n, 3C) over the cache (B, H, cap, D) with the
/// real-token `mask` (B, cap) f32 (1 = real): `out` (B, n, C).
pub fn kv_attention<T: CudaFloat>(
    dev: &CudaDevice,
    cfg: KvConfig,
    qkv: &CudaSlice<T>,
    keys: &CudaSlice<T>,
    values: &CudaSlice<T>,
    mask: &CudaSlice<f32>,
    out: &mut CudaSlice<T>,
) -> Result<()> {
    let op = "cuda::kv_attention";
    let [b, n, h, d, cap, start] = cfg.sizes();
    check_len(op, "qkv", qkv.len(), b * n * 3 * h * d)?;
    check_len(op, "keys", keys.len(), b * h * cap * d)?;
    check_len(op, "values", values.len(), b * h * cap * d)?;
    check_len(op, "mask", mask.len(), b * cap)?;
    check_len(op, "out", out.len(), b * n * h * d)?;
    let shared = (d + start + n) * std::mem::size_of::<f32>();
    if shared > MAX_SHARED_BYTES {
        return Err(TensorError::invalid(
            op,
            format!(
                "{} positions of D = {d} need {shared} bytes of shared memory (max {MAX_SHARED_BYTES})",
                start + n
            ),
        ));
    }
    if b * n * h == 0 {
        return Ok(());
    }
    let f = dev.typed::<T>(KernelModule::KvCache, "kv_attention")?;
    let launch = LaunchConfig {
        grid_dim: ((b * n * h).clamp(1, 1 << 20) as u32, 1, 1),
        block_dim: (ATTEND_THREADS, 1, 1),
        shared_mem_bytes: shared as u32,
    };
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&cfg)
        .arg(qkv)
        .arg(keys)
        .arg(values)
        .arg(mask)
        .arg(out);
    // SAFETY: sizes checked above; shared memory holds D + start + n floats.
    launched(op, unsafe { args.launch(launch) })
}
