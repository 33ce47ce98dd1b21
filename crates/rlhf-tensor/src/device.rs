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

impl std::str::FromStr for Device {
    type Err = crate::TensorError;

    /// `cpu`, `cuda` (= `cuda:0`) or `cuda:N`, case-insensitive.
    fn from_str(name: &str) -> crate::Result<Device> {
        let lower = name.trim().to_ascii_lowercase();
        match lower.as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<usize>().ok())
                .map(Device::Cuda)
                .ok_or_else(|| {
                    crate::TensorError::invalid(
                        "Device",
                        format!("unknown device `{name}`: expected cpu, cuda or cuda:N"),
                    )
                }),
        }
    }
}

impl Device {
    /// The device itself when it can be used here: always for the CPU; for `cuda:N` when a GPU
    /// with that ordinal is present, else an error that starts with "no CUDA device found" and
    /// says what was found (no driver library, no GPU, or fewer GPUs).
    ///
    /// ```
    /// use rlhf_tensor::Device;
    /// assert_eq!(Device::Cpu.available()?, Device::Cpu);
    /// let far = Device::Cuda(1000).available().unwrap_err().to_string();
    /// assert!(far.contains("no CUDA device found"), "{far}");
    /// # Ok::<(), rlhf_tensor::TensorError>(())
    /// ```
    pub fn available(self) -> crate::Result<Device> {
        let Device::Cuda(ordinal) = self else {
            return Ok(self);
        };
        let count = crate::cuda::gpu_count();
        if ordinal < count {
            return Ok(self);
        }
        // SAFETY: is_culib_present only tries to dlopen the driver library by its usual names.
        let driver = unsafe { cudarc::driver::sys::is_culib_present() };
        let found = match (driver, count) {
            (false, _) => "the CUDA driver library (libcuda.so) is not installed".to_string(),
            (true, 0) => "the CUDA driver reports no usable GPU".to_string(),
            (true, n) => format!("this machine has {n} GPU(s), cuda:0..cuda:{}", n - 1),
        };
        Err(crate::TensorError::invalid(
            "Device",
            format!("no CUDA device found: {self} was asked for, and {found}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_back() {
        for (name, device) in [
            ("cpu", Device::Cpu),
            ("CUDA", Device::Cuda(0)),
            ("cuda:3", Device::Cuda(3)),
        ] {
            assert_eq!(name.parse::<Device>().unwrap(), device);
            assert_eq!(device.to_string().parse::<Device>().unwrap(), device);
        }
        for bad in ["tpu", "cuda:", "cuda:-1", "cuda:x"] {
            let err = bad.parse::<Device>().unwrap_err().to_string();
            assert!(err.contains("expected cpu, cuda or cuda:N"), "{err}");
        }
    }
}
