//! The element trait of CPU kernels. Kernels are generic so that the same code runs in f32 for
//! work and in f64 for finite-difference gradient checks.

use std::fmt::Debug;
use std::iter::Sum;

/// A float type a CPU kernel can compute in (f32 or f64).
pub trait Float:
    num_traits::Float + num_traits::FromPrimitive + Sum + Send + Sync + Debug + Default + 'static
{
    /// Converts an f64 constant (e.g. sqrt(2/pi)) to this type.
    fn c(value: f64) -> Self {
        // FromPrimitive from f64 is total for f32 and f64.
        Self::from_f64(value).unwrap_or_else(Self::nan)
    }
}

impl Float for f32 {}
impl Float for f64 {}
