//! The optimizers through the `Tensor` API on `Device::Cuda(0)` against the CPU: AdamW and SGD
//! steps (f32 parameters, f32 or bf16 gradients, moments and momentum kept on the device), the
//! global gradient norm, `clip_grad_norm`, and the fused `AdamW::step_clipped` whose clip scale never leaves the
//! device. Fresh random inputs, odd sizes. Without a GPU each test prints one skip line;
//! `RLHF_REQUIRE_GPU=1` makes that a failure.

mod cuda_support;

use cuda_support::tensors::{check_tensor, gpu_ready, input};
use cuda_support::{check_with, fresh_seed};
use half::bf16;
use rlhf_tensor::cuda::CudaFloat;
use rlhf_tensor::optim::{AdamW, AdamWConfig, Sgd, SgdConfig, clip_grad_norm, global_grad_norm};
use rlhf_tensor::{DType, Device, Tensor, TensorError};

const SHAPES: [&[usize]; 3] = [&[37, 77], &[77], &[5, 3, 96]];

/// Parameters (f32 on both devices) and per-step gradients in storage T.
struct Problem {
    params_cpu: Vec<Tensor>,
    params_gpu: Vec<Tensor>,
    /// Steps of (cpu f32 grads, gpu T grads), the values rounded to T.
    grads: Vec<(Vec<Tensor>, Vec<Tensor>)>,
}

fn problem<T: CudaFloat>(seed: u64, steps: usize, grad_scale: f32) -> Problem {
    let params: Vec<_> = SHAPES
        .iter()
        .enumerate()
        .map(|(i, dims)| input::<f32>(seed + i as u64, dims, 1.0))
        .collect();
    let grads = (0..steps)
        .map(|s| {
            SHAPES
                .iter()
                .enumerate()
                .map(|(i, dims)| {
                    input::<T>(seed + 100 * (s as u64 + 1) + i as u64, dims, grad_scale)
                })
                .map(|g| (g.cpu, g.gpu))
                .unzip()
        })
        .collect();
    Problem {
        params_cpu: params.iter().map(|p| p.cpu.clone()).collect(),
        params_gpu: params.into_iter().map(|p| p.gpu).collect(),
        grads,
    }
}

fn config() -> AdamWConfig {
    AdamWConfig {
        lr: 3e-2,
        weight_decay: 0.1,
        ..AdamWConfig::default()
    }
}

fn adamw_body<T: CudaFloat>(seed: u64) {
    let mut p = problem::<T>(seed, 3, 1.0);
    let (mut opt_cpu, mut opt_gpu) = (AdamW::new(config()), AdamW::new(config()));
    for (step, (g_cpu, g_gpu)) in p.grads.iter().enumerate() {
        let lr = 3e-2 * (1.0 - 0.2 * step as f32);
        let mut pc: Vec<&mut Tensor> = p.params_cpu.iter_mut().collect();
        opt_cpu
            .step_with_lr(&mut pc, &g_cpu.iter().collect::<Vec<_>>(), lr)
            .unwrap();
        let mut pg: Vec<&mut Tensor> = p.params_gpu.iter_mut().collect();
        opt_gpu
            .step_with_lr(&mut pg, &g_gpu.iter().collect::<Vec<_>>(), lr)
            .unwrap();
        for (i, (g, c)) in p.params_gpu.iter().zip(&p.params_cpu).enumerate() {
            assert_eq!(g.dtype(), DType::F32);
            // f32 parameters whatever the gradient's storage: f32 tolerance.
            check_tensor::<f32>(&format!("adamw step {step} param {i}"), seed, g, c, 4.0);
        }
    }
    for (i, (g, c)) in opt_gpu
        .exp_avg_sq
        .iter()
        .zip(&opt_cpu.exp_avg_sq)
        .enumerate()
    {
        assert_eq!(g.dtype(), DType::F32);
        check_tensor::<f32>(&format!("adamw exp_avg_sq {i}"), seed, g, c, 4.0);
    }
    for (i, (g, c)) in opt_gpu.exp_avg.iter().zip(&opt_cpu.exp_avg).enumerate() {
        check_tensor::<f32>(&format!("adamw exp_avg {i}"), seed, g, c, 4.0);
    }
    assert_eq!(opt_gpu.step, 3);
}

#[test]
fn adamw_steps_match_the_cpu() {
    if !gpu_ready("adamw_steps_match_the_cpu") {
        return;
    }
    adamw_body::<f32>(fresh_seed());
    adamw_body::<bf16>(fresh_seed());
}

fn clip_body<T: CudaFloat>(seed: u64) {
    // Gradients of norm about 40: a max_norm of 1 clips, 1e4 does not.
    let p = problem::<T>(seed, 1, 2.0);
    let (g_cpu, g_gpu) = &p.grads[0];
    let norm_cpu = global_grad_norm(&g_cpu.iter().collect::<Vec<_>>()).unwrap();
    let norm_gpu = global_grad_norm(&g_gpu.iter().collect::<Vec<_>>()).unwrap();
    check_with(
        "global_grad_norm",
        seed,
        &[norm_gpu],
        &[norm_cpu],
        1e-5,
        0.0,
    );
    for max_norm in [1.0f32, 1e4] {
        let (mut c, mut g) = (g_cpu.clone(), g_gpu.clone());
        let before_c = clip_grad_norm(&mut c.iter_mut().collect::<Vec<_>>(), max_norm).unwrap();
        let before_g = clip_grad_norm(&mut g.iter_mut().collect::<Vec<_>>(), max_norm).unwrap();
        check_with(
            "clip_grad_norm norm",
            seed,
            &[before_g],
            &[before_c],
            1e-5,
            0.0,
        );
        for (i, (gt, ct)) in g.iter().zip(&c).enumerate() {
            assert_eq!(gt.dtype(), T::DTYPE);
            check_tensor::<T>(
                &format!("clipped grad {i} at {max_norm}"),
                seed,
                gt,
                ct,
                1.0,
            );
        }
    }
    // The fused step equals clip_grad_norm then step, and leaves the gradients alone.
    for max_norm in [1.0f32, 1e4] {
        let mut p = problem::<T>(seed, 1, 2.0);
        let (g_cpu, g_gpu) = p.grads.pop().unwrap();
        let (mut opt_cpu, mut opt_gpu) = (AdamW::new(config()), AdamW::new(config()));
        let mut clipped = g_cpu.clone();
        let norm_c = clip_grad_norm(&mut clipped.iter_mut().collect::<Vec<_>>(), max_norm).unwrap();
        let mut pc: Vec<&mut Tensor> = p.params_cpu.iter_mut().collect();
        opt_cpu
            .step(&mut pc, &clipped.iter().collect::<Vec<_>>())
            .unwrap();
        let untouched = g_gpu.clone();
        let mut pg: Vec<&mut Tensor> = p.params_gpu.iter_mut().collect();
        let views: Vec<&Tensor> = g_gpu.iter().collect();
        let norm_g = opt_gpu
            .step_clipped(&mut pg, &views, 3e-2, max_norm)
            .unwrap();
        check_with("step_clipped norm", seed, &[norm_g], &[norm_c], 1e-4, 0.0);
        assert_eq!(
            g_gpu, untouched,
            "step_clipped must not change the gradients"
        );
        for (i, (g, c)) in p.params_gpu.iter().zip(&p.params_cpu).enumerate() {
            check_tensor::<f32>(
                &format!("step_clipped param {i} at {max_norm}"),
                seed,
                g,
                c,
                4.0,
            );
        }
    }
}

#[test]
fn gradient_norm_and_clipping_match_the_cpu() {
    if !gpu_ready("gradient_norm_and_clipping_match_the_cpu") {
        return;
    }
    clip_body::<f32>(fresh_seed());
    clip_body::<bf16>(fresh_seed());
}

fn sgd_body<T: CudaFloat>(seed: u64) {
    let variants = [
        SgdConfig {
            lr: 0.1,
            weight_decay: 0.05,
            ..SgdConfig::default()
        },
        SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.1,
            weight_decay: 0.05,
            nesterov: false,
        },
        SgdConfig {
            lr: 0.05,
            momentum: 0.8,
            nesterov: true,
            ..SgdConfig::default()
        },
    ];
    for (v, config) in variants.into_iter().enumerate() {
        let mut p = problem::<T>(seed + v as u64, 3, 1.0);
        let (mut opt_cpu, mut opt_gpu) = (Sgd::new(config), Sgd::new(config));
        for (step, (g_cpu, g_gpu)) in p.grads.iter().enumerate() {
            let mut pc: Vec<&mut Tensor> = p.params_cpu.iter_mut().collect();
            opt_cpu
                .step(&mut pc, &g_cpu.iter().collect::<Vec<_>>())
                .unwrap();
            let mut pg: Vec<&mut Tensor> = p.params_gpu.iter_mut().collect();
            opt_gpu
                .step(&mut pg, &g_gpu.iter().collect::<Vec<_>>())
                .unwrap();
            for (i, (g, c)) in p.params_gpu.iter().zip(&p.params_cpu).enumerate() {
                let what = format!("sgd {config:?} step {step} param {i}");
                check_tensor::<f32>(&what, seed, g, c, 2.0);
            }
        }
        for (g, c) in opt_gpu
            .momentum_buffers
            .iter()
            .zip(&opt_cpu.momentum_buffers)
        {
            assert_eq!(g.dtype(), DType::F32);
            check_tensor::<f32>("sgd momentum buffer", seed, g, c, 2.0);
        }
    }
}

#[test]
fn sgd_steps_match_the_cpu() {
    if !gpu_ready("sgd_steps_match_the_cpu") {
        return;
    }
    sgd_body::<f32>(fresh_seed());
    sgd_body::<bf16>(fresh_seed());
}

#[test]
fn optimizer_errors_are_typed() {
    if !gpu_ready("optimizer_errors_are_typed") {
        return;
    }
    let seed = fresh_seed();
    // bf16 parameters: AdamW keeps fp32 master weights only as f32 parameters.
    let mut p = input::<bf16>(seed, &[7, 5], 1.0).gpu;
    let g = input::<bf16>(seed + 1, &[7, 5], 1.0).gpu;
    let err = AdamW::new(config()).step(&mut [&mut p], &[&g]).unwrap_err();
    assert!(matches!(err, TensorError::DTypeMismatch { .. }), "{err}");
    // Parameters and gradients on different devices.
    let mut q = input::<f32>(seed, &[7, 5], 1.0).gpu;
    let host = Tensor::zeros([7, 5], Device::Cpu).unwrap();
    let err = AdamW::new(config())
        .step(&mut [&mut q], &[&host])
        .unwrap_err();
    assert!(matches!(err, TensorError::DeviceMismatch { .. }), "{err}");
    let g32 = input::<f32>(seed + 2, &[7, 5], 1.0).gpu;
    let mut half = input::<bf16>(seed, &[7, 5], 1.0).gpu;
    let err = Sgd::new(SgdConfig::default())
        .step(&mut [&mut half], &[&g32])
        .unwrap_err();
    assert!(matches!(err, TensorError::DTypeMismatch { .. }), "{err}");
    assert!(
        AdamW::new(config())
            .step_clipped(&mut [&mut q], &[&g32], 1e-3, 0.0)
            .is_err()
    );
}
