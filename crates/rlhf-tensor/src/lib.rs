//! # rlhf-tensor
//!
//! Tensors for RLHF, in the spirit of llm.c: every op is a pair of functions, a forward and an
//! explicit backward, and the caller writes its backward pass out in reverse (no tape).
//!
//! Parts:
//! - [`Tensor`] ([`tensor`]): shape, dtype, device, contiguous row-major storage; on the CPU f32
//!   compute with bf16/f16 storage converted at the edges, on `Device::Cuda(n)` a device buffer
//!   of f32 or bf16 that ops compute on directly (fp32 inside the kernels); host copies
//!   (device-to-host on CUDA), dtype conversion (on the device on CUDA), byte views (CPU).
//! - [`Shape`], [`DType`], [`Device`]: the tensor's metadata (serde-serialisable); devices parse
//!   from `cpu` / `cuda` / `cuda:N` and [`Device::available`] says "no CUDA device found" when
//!   a GPU is missing.
//! - [`TensorError`]: every failure names the op and both shapes.
//! - [`Rng`]: the seeded, checkpointable generator (ChaCha8) behind every random choice.
//! - [`ops`]: matmul, elementwise, reductions (and the neural-network ops), each with backward;
//!   `ops::<family>::cpu` holds generic kernels over [`Float`] (f32 for work, f64 for checks);
//!   each op dispatches on its operands' device (CPU kernels, or the [`cuda`] launch wrappers),
//!   and operands on different devices are an error naming the op and both devices. CPU
//!   matmuls run the `gemm` crate in per-thread bands, and products of at most 32 rows
//!   (decoding) a few-row AVX-512 / AVX2 kernel that streams the weight once (`ops::matmul::skinny`).
//! - neural-network ops in [`ops`]: `embedding` (tokens and positions, scatter-add backward),
//!   `layernorm`, `gelu`, `softmax` (and log-softmax), `cross_entropy` (fused, ignore index),
//!   `logprob` (selected-token log-probs and entropy under a temperature), `attention` (causal,
//!   padding-masked, over GPT-2's packed qkv; on CUDA unfused or, with `RLHF_ATTENTION`, the
//!   fused flash kernels), `kv_attention` (decoding attention over a key/value cache) and
//!   `sampling` (greedy / top-k / top-p next-token choice from host-drawn uniforms, the same
//!   decisions on the CPU and a GPU).
//! - [`optim`]: AdamW and SGD updating parameters in place, global-norm clipping (AdamW, the norm
//!   and the clip also on CUDA, with a fused clipped step; SGD on CUDA too).
//! - [`dist`]: collectives for data parallel over ranks (one process per device): a
//!   [`dist::Communicator`] (world size 1, a TCP ring between CPU processes, or NCCL on GPUs),
//!   all-reduce, reduce-scatter, all-gather, broadcast, barrier; the file rendezvous.
//! - [`host_memory`]: [`host_memory::retain_freed_memory`], which keeps glibc from unmapping
//!   freed buffers (the `rlhf` binary and the benchmarks call it: step-to-step page faults gone).
//! - [`testing`]: finite-difference gradients and tolerance checks for this and other crates.
//! - [`cuda`]: the CUDA backend's kernels (embedded PTX), device registry, GEMM (cuBLAS or our
//!   tensor-core kernel, chosen per shape), typed launch wrappers, and the device storage behind `Device::Cuda(n)` tensors. Detection never
//!   panics: without a GPU, creating a CUDA tensor is an error naming the device.
//!
//! ```
//! use rlhf_tensor::{Device, Tensor, ops::matmul::{matmul, MatmulSpec}};
//! let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], [2, 2], Device::Cpu)?;
//! let eye = Tensor::from_vec(vec![1.0, 0.0, 0.0, 1.0], [2, 2], Device::Cpu)?;
//! let out = matmul(&a, &eye, None, MatmulSpec::NN)?;
//! assert_eq!(out.to_vec_f32(), vec![1.0, 2.0, 3.0, 4.0]);
//! # Ok::<(), rlhf_tensor::TensorError>(())
//! ```
//!
//! The same calls run on a GPU (`Device::Cuda(n)`); without one, creating a CUDA tensor is an
//! error naming the device:
//!
//! ```
//! use rlhf_tensor::{Device, Tensor, ops::gelu::gelu};
//! let device = if rlhf_tensor::cuda::gpu_count() > 0 { Device::Cuda(0) } else { Device::Cpu };
//! let x = Tensor::from_vec(vec![0.0, 1.0], [2], device)?;
//! let y = gelu(&x)?;
//! assert_eq!(y.device(), device);
//! assert!((y.to_vec_f32()[1] - 0.841192).abs() < 1e-5);
//! let missing = Tensor::zeros([2], Device::Cuda(1000)).unwrap_err();
//! assert!(missing.to_string().contains("cuda:1000"));
//! # Ok::<(), rlhf_tensor::TensorError>(())
//! ```

pub mod cuda;
mod device;
pub mod dist;
mod dtype;
mod error;
mod float;
pub mod host_memory;
pub mod ops;
pub mod optim;
mod rng;
mod shape;
pub mod tensor;
pub mod testing;

pub use device::Device;
pub use dtype::DType;
pub use error::{Result, TensorError};
pub use float::Float;
pub use rng::{Rng, RngState};
pub use shape::Shape;
pub use tensor::Tensor;
