//! The CUDA backend: hand-written kernels (kernels/*.cu, compiled ahead of time to PTX by
//! `cargo xtask kernels` and embedded) and cuBLAS, driven through cudarc on raw device buffers
//! (`CudaSlice<f32>` / `CudaSlice<bf16>`). `Device::Cuda(n)` tensors hold such a buffer
//! (`storage`), and every op of [`crate::ops`] and [`crate::optim`] dispatches to the typed
//! wrappers here when its operands live on a GPU.
//!
//! It builds everywhere: cudarc loads the driver and cuBLAS at run time (`dynamic-loading`), and
//! [`gpu_count`] detects a GPU without ever panicking, so a machine with no CUDA at all compiles,
//! links and tests this module (the GPU tests then skip, or fail under `RLHF_REQUIRE_GPU=1`).
//!
//! Parts:
//! - [`detect`]: [`gpu_count`], [`cublas_available`], [`gpu_required`];
//! - [`CudaDevice`] ([`device`]): context and stream per ordinal, modules loaded on first use
//!   from the [`registry`], the cuBLAS handle, host <-> device copies;
//! - [`CudaFloat`] ([`dtype`]): the storage dtypes (f32, bf16), their kernel-name suffixes and
//!   their cuBLAS GEMM;
//! - `storage` (crate-private): the device buffer behind a `Tensor`, host copies, on-device dtype
//!   conversion, and the dtype dispatch the ops use; [`poison_op_outputs`] (tests) makes op
//!   outputs start as NaN;
//! - one module per kernel family: [`elementwise`], [`embedding`], [`layernorm`], [`gelu`],
//!   [`softmax`], [`cross_entropy`], [`logprob`], [`reduce`], [`adamw`], [`attention`] (with the
//!   key-padding mask), [`flash_attention`] (the fused causal attention, FA2 style; compiled,
//!   not run), [`sampling`] (greedy / top-k / top-p next-token sampling), [`kv_cache`]
//!   (decoding attention over a key/value cache) and [`matmul`] (the GEMM dispatch point:
//!   cuBLAS strided-batched GEMM, row-major, or [`gemm`], our tensor-core / fp32 GEMM with a
//!   fused bias and GELU epilogue, chosen per shape by [`gemm::chooser`]).
//!
//! Every kernel computes in fp32 whatever the storage dtype. Launches are asynchronous on the
//! device's stream; [`CudaDevice::download`] and [`CudaDevice::synchronize`] wait.
//!
//! ```
//! use rlhf_tensor::cuda::{CudaDevice, elementwise, gpu_count};
//! if gpu_count() > 0 {
//!     let dev = CudaDevice::get(0)?;
//!     let a = dev.upload(&[1.0f32, 2.0, 3.0])?;
//!     let b = dev.upload(&[0.5f32, 0.5, 0.5])?;
//!     let mut out = dev.zeros::<f32>(3)?;
//!     elementwise::add(&dev, &a, &b, &mut out)?;
//!     assert_eq!(dev.download(&out)?, vec![1.5, 2.5, 3.5]);
//! }
//! # Ok::<(), rlhf_tensor::TensorError>(())
//! ```

pub mod adamw;
pub mod attention;
pub mod cross_entropy;
pub mod detect;
pub mod device;
pub mod dtype;
pub mod elementwise;
pub mod embedding;
pub mod flash_attention;
pub mod gelu;
pub mod gemm;
pub mod kv_cache;
mod launch;
pub mod layernorm;
pub mod logprob;
pub mod matmul;
pub mod ppo;
pub mod reduce;
pub mod registry;
pub mod sampling;
pub mod softmax;
pub(crate) mod storage;

pub use cudarc::driver::CudaSlice;
pub use detect::{cublas_available, gpu_available, gpu_count, gpu_required};
pub use device::CudaDevice;
pub use dtype::CudaFloat;
pub use registry::KernelModule;
pub use storage::poison_op_outputs;
