//! CUDA detection, and the flat kernels (elementwise, conversions, GELU, reductions, AdamW,
//! embedding) against the crate's CPU reference kernels (`ops::<family>::cpu`, f32), for f32 and
//! bf16 storage: fresh random inputs each run, outputs poisoned with NaN before the launch, sizes
//! that are not multiples of the block or pack width (and some that are, for the 128-bit paths).
//! Row-wise kernels are in cuda_row_ops.rs, GEMM and attention in cuda_gemm.rs. Without a GPU each
//! test prints one skip line; `RLHF_REQUIRE_GPU=1` makes that a failure (the detection test runs
//! everywhere).

mod cuda_support;

use cuda_support::{check, check_with, download, gpu, poisoned, random, upload};
use rlhf_tensor::cuda::{
    self, CudaDevice, CudaFloat, adamw, elementwise, embedding, gelu, reduce, softmax,
};
use rlhf_tensor::ops;
use rlhf_tensor::{Device, TensorError};

/// Row counts and lengths: odd lengths take the scalar paths, multiples of 8 the packed ones.
const ROWS: usize = 37;
const COL_CASES: [usize; 2] = [77, 96];

#[test]
fn detection_never_panics_without_or_with_a_gpu() {
    let count = cuda::gpu_count();
    assert_eq!(count, cuda::gpu_count(), "detection is cached and stable");
    let _ = cuda::cublas_available();
    // One past the last device is never usable and must be a typed error, not a panic.
    match CudaDevice::get(count) {
        Err(TensorError::Unsupported { device, .. }) => assert_eq!(device, Device::Cuda(count)),
        other => panic!("expected Unsupported for cuda:{count}, got {other:?}"),
    }
    if count == 0 {
        assert!(
            !cuda::gpu_required(),
            "RLHF_REQUIRE_GPU=1 but no CUDA GPU is usable"
        );
    }
}

fn elementwise_body<T: CudaFloat>(dev: &CudaDevice, seed: u64) {
    for cols in COL_CASES {
        let n = ROWS * cols;
        let a = random::<T>(seed, n, 2.0);
        let b = random::<T>(seed + 1, n, 2.0);
        let (da, db) = (upload::<T>(dev, &a), upload::<T>(dev, &b));
        let mut out = poisoned::<T>(dev, n);
        elementwise::add(dev, &da, &db, &mut out).unwrap();
        let mut expected = vec![0.0f32; n];
        ops::elementwise::cpu::zip_map(&mut expected, &a, &b, |x, y| x + y);
        check::<T>("add", seed, &download(dev, &out), &expected, 1.0);

        let mut out = poisoned::<T>(dev, n);
        elementwise::mul(dev, &da, &db, &mut out).unwrap();
        ops::elementwise::cpu::zip_map(&mut expected, &a, &b, |x, y| x * y);
        check::<T>("mul", seed, &download(dev, &out), &expected, 1.0);

        let mut out = poisoned::<T>(dev, n);
        elementwise::scale(dev, &da, -0.37, &mut out).unwrap();
        ops::elementwise::cpu::map(&mut expected, &a, |x| -0.37 * x);
        check::<T>("scale", seed, &download(dev, &out), &expected, 1.0);
        let mut in_place = upload::<T>(dev, &a);
        elementwise::scale_in_place(dev, &mut in_place, -0.37).unwrap();
        check::<T>(
            "scale_in_place",
            seed,
            &download(dev, &in_place),
            &expected,
            1.0,
        );

        let bias = random::<T>(seed + 2, cols, 1.0);
        let mut out = poisoned::<T>(dev, n);
        elementwise::add_bias_rows(dev, &da, &upload::<T>(dev, &bias), &mut out).unwrap();
        ops::elementwise::cpu::add_bias_rows(&mut expected, &a, &bias);
        check::<T>("add_bias_rows", seed, &download(dev, &out), &expected, 1.0);
    }
}

#[test]
fn elementwise_matches_cpu() {
    let Some(dev) = gpu("elementwise_matches_cpu") else {
        return;
    };
    for_each_dtype!(dev, elementwise_body);
}

#[test]
fn bf16_conversions_round_to_nearest_even() {
    let Some(dev) = gpu("bf16_conversions_round_to_nearest_even") else {
        return;
    };
    let seed = cuda_support::fresh_seed();
    let mut values = random::<f32>(seed, 1001, 1e3);
    values.extend([0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, 3.4e38, 1e-40]);
    let x = dev.upload(&values).unwrap();
    let mut half_out = poisoned::<half::bf16>(&dev, values.len());
    elementwise::f32_to_bf16(&dev, &x, &mut half_out).unwrap();
    let got = dev.download(&half_out).unwrap();
    for (i, (&g, &v)) in got.iter().zip(&values).enumerate() {
        assert_eq!(
            g.to_bits(),
            half::bf16::from_f32(v).to_bits(),
            "element {i} ({v}), seed {seed}"
        );
    }
    let mut back = poisoned::<f32>(&dev, values.len());
    elementwise::bf16_to_f32(&dev, &half_out, &mut back).unwrap();
    let expected: Vec<f32> = got.iter().map(|h| h.to_f32()).collect();
    assert_eq!(dev.download(&back).unwrap(), expected, "seed {seed}");
}

fn gelu_body<T: CudaFloat>(dev: &CudaDevice, seed: u64) {
    let n = ROWS * 77;
    let x = random::<T>(seed, n, 6.0);
    let g = random::<T>(seed + 1, n, 1.0);
    let dx_in = upload::<T>(dev, &x);
    let mut out = poisoned::<T>(dev, n);
    gelu::gelu_forward(dev, &dx_in, &mut out).unwrap();
    let mut expected = vec![0.0f32; n];
    ops::gelu::cpu::gelu(&x, &mut expected);
    check::<T>("gelu_forward", seed, &download(dev, &out), &expected, 1.0);
    let mut dx = poisoned::<T>(dev, n);
    gelu::gelu_backward(dev, &upload::<T>(dev, &g), &dx_in, &mut dx).unwrap();
    ops::gelu::cpu::gelu_backward(&g, &x, &mut expected);
    check::<T>("gelu_backward", seed, &download(dev, &dx), &expected, 1.0);
}

#[test]
fn gelu_matches_cpu() {
    let Some(dev) = gpu("gelu_matches_cpu") else {
        return;
    };
    for_each_dtype!(dev, gelu_body);
}

fn reduce_body<T: CudaFloat>(dev: &CudaDevice, seed: u64) {
    for n in [1usize, 1001, 300_007] {
        let x = random::<T>(seed, n, 1.0);
        let mask: Vec<f32> = random::<T>(seed + 1, n, 1.0)
            .iter()
            .map(|&m| (m > 0.0) as u8 as f32)
            .collect();
        let dx = upload::<T>(dev, &x);
        let abs_sum: f64 = x.iter().map(|v| v.abs() as f64).sum();
        let tol = 1e-5 * abs_sum.max(1.0);
        let got = reduce::sum(dev, &dx).unwrap();
        let expected = ops::reduce::cpu::sum(&x);
        assert!(
            ((got - expected) as f64).abs() <= tol,
            "sum [{}] n={n}: {got} vs {expected}, seed {seed}",
            T::SUFFIX
        );
        let got = reduce::sum_of_squares(dev, &dx).unwrap();
        let expected = rlhf_tensor::optim::cpu::sum_of_squares(&x);
        assert!(
            (got as f64 - expected).abs() <= 1e-5 * expected.max(1.0),
            "sum_of_squares [{}] n={n}: {got} vs {expected}, seed {seed}",
            T::SUFFIX
        );
        let (s, c) = reduce::masked_sum(dev, &dx, &upload::<T>(dev, &mask)).unwrap();
        let (es, ec) = ops::reduce::cpu::masked_sum(&x, &mask);
        assert!(
            ((s - es) as f64).abs() <= tol && c == ec,
            "masked_sum [{}] n={n}: ({s}, {c}) vs ({es}, {ec}), seed {seed}",
            T::SUFFIX
        );
    }
    for cols in COL_CASES {
        let rows = 1001;
        let x = random::<T>(seed + 2, rows * cols, 1.0);
        let expected = ops::elementwise::cpu::sum_rows(&x, cols);
        let mut out = poisoned::<f32>(dev, cols);
        reduce::sum_rows(dev, &upload::<T>(dev, &x), cols, &mut out, false).unwrap();
        check_with(
            "sum_rows",
            seed,
            &download(dev, &out),
            &expected,
            1e-5,
            1e-4,
        );
    }
}

#[test]
fn reductions_match_cpu() {
    let Some(dev) = gpu("reductions_match_cpu") else {
        return;
    };
    for_each_dtype!(dev, reduce_body);
}

fn adamw_body<T: CudaFloat>(dev: &CudaDevice, seed: u64) {
    let sizes = [1usize, 1003, 4096];
    let config = rlhf_tensor::optim::AdamWConfig {
        lr: 3e-3,
        weight_decay: 0.1,
        ..Default::default()
    };
    let grads: Vec<Vec<f32>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| random::<T>(seed + i as u64, n, 3.0))
        .collect();
    let dgrads: Vec<_> = grads.iter().map(|g| upload::<T>(dev, g)).collect();
    let refs: Vec<_> = dgrads.iter().collect();
    let max_norm = 1.0f32;
    let norm_clip = reduce::global_norm_clip(dev, &refs, max_norm).unwrap();
    let host = dev.download(&norm_clip).unwrap();
    let total: f64 = grads
        .iter()
        .map(|g| rlhf_tensor::optim::cpu::sum_of_squares(g))
        .sum();
    let enorm = total.sqrt() as f32;
    let escale = (max_norm / (enorm + 1e-6)).min(1.0);
    check_with("global norm", seed, &host[..1], &[enorm], 1e-5, 0.0);
    check_with("clip scale", seed, &host[1..], &[escale], 1e-5, 0.0);
    for (i, (g, dg)) in grads.iter().zip(&dgrads).enumerate() {
        let n = g.len();
        let (mut p, mut m, mut v) = (
            random::<f32>(seed + 10 + i as u64, n, 1.0),
            random::<f32>(seed + 20 + i as u64, n, 0.1),
            random::<f32>(seed + 30, n, 0.01),
        );
        v.iter_mut().for_each(|x| *x = x.abs());
        let (mut dp, mut dm, mut dv) = (
            dev.upload(&p).unwrap(),
            dev.upload(&m).unwrap(),
            dev.upload(&v).unwrap(),
        );
        let step = 7;
        let cfg = adamw::AdamWConfig::for_step(&config, config.lr, step, n);
        let mut copy = poisoned::<T>(dev, n);
        adamw::adamw_step(
            dev,
            cfg,
            &mut dp,
            dg,
            &mut dm,
            &mut dv,
            Some(&norm_clip.slice(1..2)),
            Some(&mut copy),
        )
        .unwrap();
        let clipped: Vec<f32> = g.iter().map(|x| x * host[1]).collect();
        let s = rlhf_tensor::optim::cpu::AdamWStep {
            lr: cfg.lr,
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            eps: cfg.eps,
            weight_decay: cfg.weight_decay,
            bias_correction1: cfg.bias_correction1,
            bias_correction2: cfg.bias_correction2,
        };
        rlhf_tensor::optim::cpu::adamw_update(&mut p, &clipped, &mut m, &mut v, s);
        check_with(
            "adamw param",
            seed,
            &dev.download(&dp).unwrap(),
            &p,
            1e-5,
            1e-6,
        );
        check_with("adamw m", seed, &dev.download(&dm).unwrap(), &m, 1e-5, 1e-7);
        check_with("adamw v", seed, &dev.download(&dv).unwrap(), &v, 1e-5, 1e-9);
        check::<T>("adamw param copy", seed, &download(dev, &copy), &p, 1.0);
    }
}

#[test]
fn adamw_with_global_norm_clip_matches_cpu() {
    let Some(dev) = gpu("adamw_with_global_norm_clip_matches_cpu") else {
        return;
    };
    for_each_dtype!(dev, adamw_body);
}

fn embedding_body<T: CudaFloat>(dev: &CudaDevice, seed: u64) {
    for cols in COL_CASES {
        let (vocab, seq_len, batch) = (53usize, 13usize, 3usize);
        let rows = batch * seq_len;
        let shape = embedding::EmbeddingShape {
            rows,
            cols,
            vocab,
            seq_len,
        };
        let wte = random::<T>(seed, vocab * cols, 1.0);
        let wpe = random::<T>(seed + 1, seq_len * cols, 1.0);
        // Repeated ids, so the backward really accumulates.
        let ids: Vec<i32> = (0..rows)
            .map(|r| ((r * r + seed as usize) % 17) as i32)
            .collect();
        let tokens: Vec<usize> = ids.iter().map(|&i| i as usize).collect();
        let positions: Vec<usize> = (0..rows).map(|r| r % seq_len).collect();
        let mut expected = vec![0.0f32; rows * cols];
        ops::embedding::cpu::embedding_rows(
            &wte,
            Some(&wpe),
            &tokens,
            &positions,
            cols,
            &mut expected,
        );
        let dids = dev.upload_i32(&ids).unwrap();
        let (dwte, dwpe) = (upload::<T>(dev, &wte), upload::<T>(dev, &wpe));
        let mut out = poisoned::<T>(dev, rows * cols);
        embedding::embedding_forward(dev, shape, &dids, &dwte, Some(&dwpe), &mut out).unwrap();
        check::<T>(
            "embedding_forward",
            seed,
            &download(dev, &out),
            &expected,
            1.0,
        );

        let dout = random::<T>(seed + 2, rows * cols, 1.0);
        let mut etable = vec![0.0f32; vocab * cols];
        ops::embedding::cpu::scatter_add_rows(&dout, &tokens, cols, &mut etable);
        let mut epos = vec![0.0f32; seq_len * cols];
        ops::embedding::cpu::scatter_add_rows(&dout, &positions, cols, &mut epos);
        let ddout = upload::<T>(dev, &dout);
        for deterministic in [false, true] {
            let mut dtable = dev.zeros::<f32>(vocab * cols).unwrap();
            let mut dpos = dev.zeros::<f32>(seq_len * cols).unwrap();
            if deterministic {
                embedding::embedding_backward_deterministic(
                    dev,
                    shape,
                    &ids,
                    &ddout,
                    &mut dtable,
                    Some(&mut dpos),
                )
                .unwrap();
            } else {
                embedding::embedding_backward_atomic(
                    dev,
                    shape,
                    &dids,
                    &ddout,
                    &mut dtable,
                    Some(&mut dpos),
                )
                .unwrap();
            }
            check_with(
                &format!("embedding dtable (deterministic {deterministic})"),
                seed,
                &dev.download(&dtable).unwrap(),
                &etable,
                1e-5,
                1e-5,
            );
            check_with(
                &format!("embedding dpos (deterministic {deterministic})"),
                seed,
                &dev.download(&dpos).unwrap(),
                &epos,
                1e-5,
                1e-5,
            );
        }
    }
    let shape = embedding::EmbeddingShape {
        rows: 2,
        cols: 8,
        vocab: 4,
        seq_len: 2,
    };
    let mut out = dev.zeros::<T>(16).unwrap();
    let err = embedding::embedding_forward(
        dev,
        shape,
        &dev.upload_i32(&[1, 4]).unwrap(),
        &upload::<T>(dev, &[0.5; 32]),
        None,
        &mut out,
    );
    assert!(
        err.is_err(),
        "an id equal to the vocabulary size must be an error"
    );
}

#[test]
fn embedding_matches_cpu() {
    let Some(dev) = gpu("embedding_matches_cpu") else {
        return;
    };
    for_each_dtype!(dev, embedding_body);
}

#[test]
fn launch_wrappers_reject_wrong_lengths_before_launching() {
    let Some(dev) = gpu("launch_wrappers_reject_wrong_lengths_before_launching") else {
        return;
    };
    let a = dev.upload(&[1.0f32; 10]).unwrap();
    let b = dev.upload(&[1.0f32; 9]).unwrap();
    let mut out = dev.zeros::<f32>(10).unwrap();
    let invalid =
        |r: Result<(), TensorError>| matches!(r, Err(TensorError::InvalidArgument { .. }));
    assert!(invalid(elementwise::add(&dev, &a, &b, &mut out)));
    let cfg = softmax::SoftmaxConfig::new(3, 4).unwrap();
    assert!(invalid(softmax::softmax_forward(&dev, cfg, &a, &mut out)));
}
