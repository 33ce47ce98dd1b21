//! Element types. Computation is f32; bf16 and f16 are storage formats converted at the edges.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The element type of a tensor's storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// 32-bit IEEE float: the compute type of every op.
    F32,
    /// bfloat16 storage (8-bit exponent, 7-bit mantissa).
    BF16,
    /// IEEE half-precision storage.
    F16,
}

impl DType {
    /// Bytes per element.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::BF16 | DType::F16 => 2,
        }
    }

    /// The safetensors / PyTorch name: "F32", "BF16", "F16".
    pub fn safetensors_name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::BF16 => "BF16",
            DType::F16 => "F16",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            DType::F32 => "f32",
            DType::BF16 => "bf16",
            DType::F16 => "f16",
        };
        f.write_str(name)
    }
}
