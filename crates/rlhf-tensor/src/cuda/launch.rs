//! Launch helpers shared by the op wrappers: grid sizes, length checks, nullable arguments.

use cudarc::driver::{CudaSlice, LaunchArgs, LaunchConfig, PushKernelArg};

use super::device::CudaDevice;
use crate::{Result, TensorError};

/// Threads per block of the flat (one element or pack per thread) kernels.
pub(crate) const FLAT_BLOCK: u32 = 256;

/// A null device pointer for a nullable kernel argument.
static NULL_POINTER: u64 = 0;

/// A 1-D launch of `FLAT_BLOCK` threads per block covering `items` threads (grid-stride kernels
/// stay correct with fewer); capped at 64 blocks per SM.
pub(crate) fn flat_config(dev: &CudaDevice, items: usize) -> LaunchConfig {
    let cap = dev.sm_count() as usize * 64;
    let blocks = items.div_ceil(FLAT_BLOCK as usize).clamp(1, cap);
    LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (FLAT_BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// One block per row (grid-stride beyond 2^20 rows), 32..=1024 threads: about four columns per
/// thread, rounded up to whole warps.
pub(crate) fn row_config(rows: usize, cols: usize) -> LaunchConfig {
    let threads = cols.div_ceil(4).div_ceil(32).clamp(1, 32) * 32;
    LaunchConfig {
        grid_dim: (rows.clamp(1, 1 << 20) as u32, 1, 1),
        block_dim: (threads as u32, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Fails unless a buffer holds exactly `expected` elements.
pub(crate) fn check_len(op: &'static str, what: &str, len: usize, expected: usize) -> Result<()> {
    if len != expected {
        return Err(TensorError::invalid(
            op,
            format!("{what} holds {len} elements, expected {expected}"),
        ));
    }
    Ok(())
}

/// `value` as a kernel's `int` argument, or an error naming it.
pub(crate) fn as_i32(op: &'static str, what: &str, value: usize) -> Result<i32> {
    i32::try_from(value)
        .map_err(|_| TensorError::invalid(op, format!("{what} = {value} exceeds i32::MAX")))
}

/// Pushes a nullable read-only buffer.
pub(crate) fn arg_opt<'a, 'b: 'a, T>(args: &mut LaunchArgs<'a>, buffer: Option<&'b CudaSlice<T>>) {
    match buffer {
        Some(b) => args.arg(b),
        None => args.arg(&NULL_POINTER),
    };
}

/// Pushes a nullable written buffer.
pub(crate) fn arg_opt_mut<'a, 'b: 'a, T>(
    args: &mut LaunchArgs<'a>,
    buffer: Option<&'b mut CudaSlice<T>>,
) {
    match buffer {
        Some(b) => args.arg(b),
        None => args.arg(&NULL_POINTER),
    };
}

/// Maps a launch's driver error.
pub(crate) fn launched<T>(
    op: &'static str,
    result: std::result::Result<T, cudarc::driver::DriverError>,
) -> Result<()> {
    result
        .map(|_| ())
        .map_err(|e| TensorError::invalid(op, format!("kernel launch: {e}")))
}
