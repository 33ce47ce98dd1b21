//! Helpers of the tensor-level CUDA tests: the same random inputs as a CPU f32 tensor and a
//! `Device::Cuda(0)` tensor of storage dtype T, and comparisons of a CUDA result with the CPU's.

use rlhf_tensor::cuda::CudaFloat;
use rlhf_tensor::{Device, Tensor};

use super::{check, random};

/// The device under test.
pub const GPU: Device = Device::Cuda(0);

/// True when GPU 0 is usable (else one skip line, or a failure under `RLHF_REQUIRE_GPU=1`);
/// turns on output poisoning, so that an element an op's kernel never writes reads as NaN.
pub fn gpu_ready(test: &str) -> bool {
    let ready = super::gpu(test).is_some();
    if ready {
        rlhf_tensor::cuda::poison_op_outputs(true);
    }
    ready
}

/// One input on both devices: values rounded to T, so both see exactly the same numbers.
pub struct Input {
    /// The values (already representable in T).
    pub values: Vec<f32>,
    /// An f32 CPU tensor of them.
    pub cpu: Tensor,
    /// A CUDA tensor of them in storage dtype T.
    pub gpu: Tensor,
}

/// `dims`-shaped values uniform in [-scale, scale), rounded to T, on both devices.
pub fn input<T: CudaFloat>(seed: u64, dims: &[usize], scale: f32) -> Input {
    let n = dims.iter().product();
    from_values::<T>(random::<T>(seed, n, scale), dims)
}

/// Given values (rounded to T here) on both devices.
pub fn from_values<T: CudaFloat>(values: Vec<f32>, dims: &[usize]) -> Input {
    let values: Vec<f32> = values
        .into_iter()
        .map(|v| T::from_f32(v).to_f32())
        .collect();
    let cpu = Tensor::from_vec(values.clone(), dims, Device::Cpu).expect("cpu tensor");
    let gpu = on_gpu::<T>(&cpu);
    Input { values, cpu, gpu }
}

/// A copy of an f32 CPU tensor on the GPU in storage dtype T.
pub fn on_gpu<T: CudaFloat>(cpu: &Tensor) -> Tensor {
    cpu.to_device(GPU)
        .and_then(|t| t.to_dtype(T::DTYPE))
        .expect("upload")
}

/// Fails unless `gpu` lives on the GPU with `cpu`'s shape and holds `cpu`'s values within
/// `scale` times T's tolerance.
#[track_caller]
pub fn check_tensor<T: CudaFloat>(what: &str, seed: u64, gpu: &Tensor, cpu: &Tensor, scale: f64) {
    assert_eq!(gpu.device(), GPU, "{what}: result not on the GPU");
    assert_eq!(gpu.dims(), cpu.dims(), "{what}: shape");
    let actual = gpu.try_to_vec_f32().expect("download");
    check::<T>(what, seed, &actual, &cpu.to_vec_f32(), scale);
}

/// As [`check_tensor`] for results that are f32 whatever T is (statistics, losses).
#[track_caller]
pub fn check_f32(what: &str, seed: u64, gpu: &Tensor, cpu: &Tensor, scale: f64) {
    assert_eq!(gpu.dtype(), rlhf_tensor::DType::F32, "{what}: dtype");
    check_tensor::<f32>(what, seed, gpu, cpu, scale);
}
