//! Where a tensor lives.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A compute device. Code above this crate never matches on it: ops dispatch internally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Device {
    /// Host memory; kernels on ndarray, gemm and rayon.
    #[default]
    Cpu,
    /// The CUDA device with this ordinal (arrives with the CUDA backend).
    Cuda(usize),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(ordinal) => write!(f, "cuda:{ordinal}"),
        }
    }
}
