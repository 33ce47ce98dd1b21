//! Which GEMM runs a product: our kernel ([`super::gemm_ours`]) where a GPU run verified it on
//! that shape and measured it faster than cuBLAS, cuBLAS otherwise. The evidence is the
//! [`VERIFIED`] table (mirrored in docs/gpu.md); `RLHF_GEMM=ours|cublas|auto` overrides it
//! (read once per process; `auto`, the default, uses the table).
//!
//! The table is empty: no GPU has run `kernels/gemm.cu` yet, so `auto` picks cuBLAS for every
//! shape. A row goes in only with the card, the test run that passed and both measured
//! throughputs from one `cuda_bench` run.

use std::sync::OnceLock;

use crate::cuda::matmul::GemmShape;
use crate::{DType, Result, TensorError};

/// The implementation that runs one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GemmBackend {
    /// cuBLAS `gemm_strided_batched` (the baseline).
    Cublas,
    /// `kernels/gemm.cu`.
    Ours,
}

/// What `RLHF_GEMM` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GemmPolicy {
    /// Per shape from [`VERIFIED`] (the default).
    Auto,
    /// Our kernel for every shape.
    Ours,
    /// cuBLAS for every shape.
    Cublas,
}

/// The environment variable that forces a backend.
pub const POLICY_ENV: &str = "RLHF_GEMM";

impl GemmPolicy {
    /// Parses a value of `RLHF_GEMM` (unset is `auto`).
    pub fn parse(value: Option<&str>) -> Result<GemmPolicy> {
        match value.map(str::trim) {
            None | Some("") | Some("auto") => Ok(GemmPolicy::Auto),
            Some("ours") => Ok(GemmPolicy::Ours),
            Some("cublas") => Ok(GemmPolicy::Cublas),
            Some(other) => Err(TensorError::invalid(
                "cuda::gemm",
                format!("{POLICY_ENV}={other:?}: expected `ours`, `cublas` or `auto`"),
            )),
        }
    }

    /// The process's policy, read from `RLHF_GEMM` on first use.
    pub fn current() -> Result<GemmPolicy> {
        static POLICY: OnceLock<std::result::Result<GemmPolicy, String>> = OnceLock::new();
        POLICY
            .get_or_init(|| {
                let value = std::env::var(POLICY_ENV).ok();
                GemmPolicy::parse(value.as_deref()).map_err(|e| e.to_string())
            })
            .clone()
            .map_err(|e| TensorError::invalid("cuda::gemm", e))
    }
}

/// One shape on which our kernel passed its test on a GPU and was timed beside cuBLAS.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verified {
    /// Storage dtype of the operands.
    pub dtype: DType,
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// A stored (K, M).
    pub trans_a: bool,
    /// B stored (N, K).
    pub trans_b: bool,
    /// The card and date of the run (e.g. "H100 SXM, 2027-01-05").
    pub run: &'static str,
    /// Our kernel's median TFLOP/s in that run.
    pub ours_tflops: f64,
    /// cuBLAS's median TFLOP/s in the same run.
    pub cublas_tflops: f64,
}

/// Shapes where ours is verified; `auto` picks ours on those where it was also faster.
/// Empty until a GPU run fills it (BENCHMARKS.md, "Hand-written GEMM").
pub const VERIFIED: &[Verified] = &[];

/// The backend for `shape` in `dtype` under `policy` and `table`.
pub fn choose_with(
    policy: GemmPolicy,
    table: &[Verified],
    shape: &GemmShape,
    dtype: DType,
) -> GemmBackend {
    match policy {
        GemmPolicy::Ours => GemmBackend::Ours,
        GemmPolicy::Cublas => GemmBackend::Cublas,
        GemmPolicy::Auto => {
            let faster = table.iter().any(|v| {
                v.dtype == dtype
                    && (v.m, v.n, v.k) == (shape.m, shape.n, shape.k)
                    && (v.trans_a, v.trans_b) == (shape.trans_a, shape.trans_b)
                    && v.ours_tflops > v.cublas_tflops
            });
            if faster {
                GemmBackend::Ours
            } else {
                GemmBackend::Cublas
            }
        }
    }
}

/// The backend for `shape` in `dtype`: `RLHF_GEMM`, else the [`VERIFIED`] table.
pub fn choose(shape: &GemmShape, dtype: DType) -> Result<GemmBackend> {
    Ok(choose_with(GemmPolicy::current()?, VERIFIED, shape, dtype))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_parses_and_names_the_variable_on_bad_values() {
        assert_eq!(GemmPolicy::parse(None).unwrap(), GemmPolicy::Auto);
        assert_eq!(GemmPolicy::parse(Some("auto")).unwrap(), GemmPolicy::Auto);
        assert_eq!(GemmPolicy::parse(Some("ours")).unwrap(), GemmPolicy::Ours);
        assert_eq!(
            GemmPolicy::parse(Some(" cublas ")).unwrap(),
            GemmPolicy::Cublas
        );
        let err = GemmPolicy::parse(Some("fast")).unwrap_err().to_string();
        assert!(err.contains("RLHF_GEMM") && err.contains("fast"), "{err}");
    }

    #[test]
    fn auto_picks_ours_only_where_verified_and_faster() {
        let shape = GemmShape::new(4096, 2304, 768, false, false);
        // The shipped table is empty: cuBLAS everywhere.
        assert!(VERIFIED.is_empty());
        assert_eq!(
            choose_with(GemmPolicy::Auto, VERIFIED, &shape, DType::BF16),
            GemmBackend::Cublas
        );
        let row = Verified {
            dtype: DType::BF16,
            m: 4096,
            n: 2304,
            k: 768,
            trans_a: false,
            trans_b: false,
            run: "test",
            ours_tflops: 500.0,
            cublas_tflops: 450.0,
        };
        let table = [row];
        assert_eq!(
            choose_with(GemmPolicy::Auto, &table, &shape, DType::BF16),
            GemmBackend::Ours
        );
        // Another dtype, layout or size, or a slower measurement: cuBLAS.
        assert_eq!(
            choose_with(GemmPolicy::Auto, &table, &shape, DType::F32),
            GemmBackend::Cublas
        );
        let nt = GemmShape::new(4096, 2304, 768, false, true);
        assert_eq!(
            choose_with(GemmPolicy::Auto, &table, &nt, DType::BF16),
            GemmBackend::Cublas
        );
        let slower = [Verified {
            ours_tflops: 400.0,
            ..row
        }];
        assert_eq!(
            choose_with(GemmPolicy::Auto, &slower, &shape, DType::BF16),
            GemmBackend::Cublas
        );
        assert_eq!(
            choose_with(GemmPolicy::Ours, &[], &shape, DType::F32),
            GemmBackend::Ours
        );
        assert_eq!(
            choose_with(GemmPolicy::Cublas, &table, &shape, DType::BF16),
            GemmBackend::Cublas
        );
    }
}
