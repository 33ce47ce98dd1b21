//! Row-wise CUDA kernels (softmax, causal softmax, LayerNorm, cross-entropy, log-prob/entropy)
//! against the crate's CPU reference kernels, for f32 and bf16 storage: fresh random inputs,
//! NaN-poisoned outputs, odd row lengths and pack-aligned ones. Without a GPU each test prints one
//! skip line; `RLHF_REQUIRE_GPU=1` makes that a failure.

mod cuda_support;

use cuda_support::{check, check_with, download, gpu, poisoned, random, upload};
use rlhf_tensor::cuda::{CudaDevice, CudaFloat, cross_entropy, layernorm, logprob, softmax};
use rlhf_tensor::ops;

/// Row counts and lengths: odd lengths take the scalar paths, multiples of 8 the packed ones.
const ROWS: usize = 37;
const COL_CASES: [usize; 2] = [77, 96];

fn softmax_body<T: CudaFloat>(dev: &CudaDevice, seed: u64) {
    for cols in [77usize, 96, 1500] {
        let n = ROWS * cols;
        let x = random::<T>(seed, n, 8.0);
        let g = random::<T>(seed + 1, n, 1.0);
        let cfg = softmax::SoftmaxConfig::new(ROWS, cols).unwrap();
        let dx_in = upload::<T>(dev, &x);
        let dg = upload::<T>(dev, &g);
        let mut expected = vec![0.0f32; n];
        let mut dexpected = vec![0.0f32; n];

        let mut probs = poisoned::<T>(dev, n);
        softmax::softmax_forward(dev, cfg, &dx_in, &mut probs).unwrap();
        ops::softmax::cpu::softmax_rows(&x, cols, &mut expected);
        check::<T>(
            "softmax_forward",
            seed,
            &download(dev, &probs),
            &expected,
            1.0,
        );
        // The backward takes the device's own probabilities, as a caller would.
        let p_used = download(dev, &probs);
        let mut dx = poisoned::<T>(dev, n);
        softmax::softmax_backward(dev, cfg, &dg, &probs, &mut dx).unwrap();
        ops::softmax::cpu::softmax_rows_backward(&g, &p_used, cols, &mut dexpected);
        check::<T>(
            "softmax_backward",
            seed,
            &download(dev, &dx),
            &dexpected,
            1.0,
        );

        let mut logp = poisoned::<T>(dev, n);
        softmax::log_softmax_forward(dev, cfg, &dx_in, &mut logp).unwrap();
        ops::softmax::cpu::log_softmax_rows(&x, cols, &mut expected);
        check::<T>(
            "log_softmax_forward",
            seed,
            &download(dev, &logp),
            &expected,
            1.0,
        );
        let lp_used = download(dev, &logp);
        let mut dx = poisoned::<T>(dev, n);
        softmax::log_softmax_backward(dev, cfg, &dg, &logp, &mut dx).unwrap();
        ops::softmax::cpu::log_softmax_rows_backward(&g, &lp_used, cols, &mut dexpected);
        check::<T>(
            "log_softmax_backward",
            seed,
            &download(dev, &dx),
            &dexpected,
            1.0,
        );
    }
}

#[test]
fn softmax_matches_cpu() {
    let Some(dev) = gpu("softmax_matches_cpu") else {
        return;
    };
    for_each_dtype!(dev, softmax_body);
}

fn causal_softmax_body<T: CudaFloat>(dev: &CudaDevice, seed: u64) {
    // (heads = 3, T = 29) score matrices; reference: mask with -inf, scale, CPU softmax.
    let t = 29;
    let rows = 3 * t;
    let x = random::<T>(seed, rows * t, 4.0);
    let scale = 0.25f32;
    let mut cfg = softmax::SoftmaxConfig::new(rows, t).unwrap();
    cfg.scale = scale;
    cfg.causal = 1;
    let mut masked = x.clone();
    for r in 0..rows {
        for c in 0..t {
            masked[r * t + c] = if c <= r % t {
                x[r * t + c] * scale
            } else {
                f32::NEG_INFINITY
            };
        }
    }
    let mut expected = vec![0.0f32; rows * t];
    ops::softmax::cpu::softmax_rows(&masked, t, &mut expected);
    let mut probs = poisoned::<T>(dev, rows * t);
    softmax::softmax_forward(dev, cfg, &upload::<T>(dev, &x), &mut probs).unwrap();
    check::<T>(
        "causal softmax_forward",
        seed,
        &download(dev, &probs),
        &expected,
        1.0,
    );
    let g = random::<T>(seed + 1, rows * t, 1.0);
    let p_used = download(dev, &probs);
    let mut dexpected = vec![0.0f32; rows * t];
    ops::softmax::cpu::softmax_rows_backward(&g, &p_used, t, &mut dexpected);
    dexpected.iter_mut().for_each(|d| *d *= scale);
    let mut dx = poisoned::<T>(dev, rows * t);
    softmax::softmax_backward(dev, cfg, &upload::<T>(dev, &g), &probs, &mut dx).unwrap();
    check::<T>(
        "causal softmax_backward",
        seed,
        &download(dev, &dx),
        &dexpected,
        1.0,
    );
}

#[test]
fn causal_scaled_softmax_matches_masked_cpu_softmax() {
    let Some(dev) = gpu("causal_scaled_softmax_matches_masked_cpu_softmax") else {
        return;
    };
    for_each_dtype!(dev, causal_softmax_body);
}

fn layernorm_body<T: CudaFloat>(dev: &CudaDevice, seed: u64) {
    for cols in COL_CASES {
        let n = ROWS * cols;
        let eps = 1e-5f32;
        let x = random::<T>(seed, n, 3.0);
        let res = random::<T>(seed + 1, n, 1.0);
        let w = random::<T>(seed + 2, cols, 1.0);
        let b = random::<T>(seed + 3, cols, 1.0);
        let g = random::<T>(seed + 4, n, 1.0);
        let cfg = layernorm::LayerNormConfig::new(ROWS, cols, eps).unwrap();
        let (dx_in, dw, db) = (
            upload::<T>(dev, &x),
            upload::<T>(dev, &w),
            upload::<T>(dev, &b),
        );
        let (mut mean, mut rstd) = (poisoned::<f32>(dev, ROWS), poisoned::<f32>(dev, ROWS));
        let mut out = poisoned::<T>(dev, n);
        let stats = layernorm::LayerNormStats {
            mean: &mut mean,
            rstd: &mut rstd,
        };
        layernorm::layernorm_forward(dev, cfg, &dx_in, &dw, &db, &mut out, stats).unwrap();
        let (mut expected, mut emean, mut erstd) = (vec![0.0; n], vec![0.0; ROWS], vec![0.0; ROWS]);
        ops::layernorm::cpu::layernorm_rows(&x, &w, &b, eps, &mut expected, &mut emean, &mut erstd);
        check::<T>(
            "layernorm_forward",
            seed,
            &download(dev, &out),
            &expected,
            1.0,
        );
        check_with(
            "layernorm mean",
            seed,
            &download(dev, &mean),
            &emean,
            1e-5,
            1e-6,
        );
        check_with(
            "layernorm rstd",
            seed,
            &download(dev, &rstd),
            &erstd,
            1e-5,
            1e-6,
        );

        // Backward into accumulators that already hold values (+= semantics).
        let acc_w = random::<f32>(seed + 5, cols, 1.0);
        let acc_b = random::<f32>(seed + 6, cols, 1.0);
        let (mut dweight, mut dbias) = (dev.upload(&acc_w).unwrap(), dev.upload(&acc_b).unwrap());
        let mut dx = poisoned::<T>(dev, n);
        layernorm::layernorm_backward(
            dev,
            cfg,
            &upload::<T>(dev, &g),
            &dx_in,
            &dw,
            &mean,
            &rstd,
            &mut dx,
            &mut dweight,
            &mut dbias,
        )
        .unwrap();
        let mut edx = vec![0.0f32; n];
        let (egw, egb) =
            ops::layernorm::cpu::layernorm_rows_backward(&g, &x, &w, &emean, &erstd, &mut edx);
        let egw: Vec<f32> = egw.iter().zip(&acc_w).map(|(a, b)| a + b).collect();
        let egb: Vec<f32> = egb.iter().zip(&acc_b).map(|(a, b)| a + b).collect();
        check::<T>(
            "layernorm_backward dx",
            seed,
            &download(dev, &dx),
            &edx,
            2.0,
        );
        // Column sums over 37 rows: tolerance in proportion.
        check::<T>(
            "layernorm_backward dweight",
            seed,
            &download(dev, &dweight),
            &egw,
            10.0,
        );
        check::<T>(
            "layernorm_backward dbias",
            seed,
            &download(dev, &dbias),
            &egb,
            10.0,
        );

        // Fused residual: res_out = x + residual (rounded to T), out = LayerNorm(res_out).
        let sum: Vec<f32> = x
            .iter()
            .zip(&res)
            .map(|(a, r)| T::from_f32(a + r).to_f32())
            .collect();
        ops::layernorm::cpu::layernorm_rows(
            &sum,
            &w,
            &b,
            eps,
            &mut expected,
            &mut emean,
            &mut erstd,
        );
        let (mut res_out, mut out) = (poisoned::<T>(dev, n), poisoned::<T>(dev, n));
        let stats = layernorm::LayerNormStats {
            mean: &mut mean,
            rstd: &mut rstd,
        };
        layernorm::residual_layernorm_forward(
            dev,
            cfg,
            &dx_in,
            &upload::<T>(dev, &res),
            &mut res_out,
            &dw,
            &db,
            &mut out,
            stats,
        )
        .unwrap();
        check::<T>(
            "residual res_out",
            seed,
            &download(dev, &res_out),
            &sum,
            1.0,
        );
        check::<T>(
            "residual layernorm out",
            seed,
            &download(dev, &out),
            &expected,
            1.0,
        );
    }
}

#[test]
fn layernorm_matches_cpu() {
    let Some(dev) = gpu("layernorm_matches_cpu") else {
        return;
    };
    for_each_dtype!(dev, layernorm_body);
}

#[test]
fn layernorm_backward_is_deterministic() {
    let Some(dev) = gpu("layernorm_backward_is_deterministic") else {
        return;
    };
    let seed = cuda_support::fresh_seed();
    let (rows, cols) = (513, 768);
    let x = random::<f32>(seed, rows * cols, 2.0);
    let g = random::<f32>(seed + 1, rows * cols, 1.0);
    let w = random::<f32>(seed + 2, cols, 1.0);
    let cfg = layernorm::LayerNormConfig::new(rows, cols, 1e-5).unwrap();
    let (dx_in, dg, dw) = (
        dev.upload(&x).unwrap(),
        dev.upload(&g).unwrap(),
        dev.upload(&w).unwrap(),
    );
    let (mut mean, mut rstd) = (
        dev.zeros::<f32>(rows).unwrap(),
        dev.zeros::<f32>(rows).unwrap(),
    );
    let mut out = dev.zeros::<f32>(rows * cols).unwrap();
    let stats = layernorm::LayerNormStats {
        mean: &mut mean,
        rstd: &mut rstd,
    };
    layernorm::layernorm_forward(&dev, cfg, &dx_in, &dw, &dw, &mut out, stats).unwrap();
    let run = || {
        let (mut dweight, mut dbias) = (
            dev.zeros::<f32>(cols).unwrap(),
            dev.zeros::<f32>(cols).unwrap(),
        );
        let mut dx = dev.zeros::<f32>(rows * cols).unwrap();
        layernorm::layernorm_backward(
            &dev,
            cfg,
            &dg,
            &dx_in,
            &dw,
            &mean,
            &rstd,
            &mut dx,
            &mut dweight,
            &mut dbias,
        )
        .unwrap();
        (
            dev.download(&dx).unwrap(),
            dev.download(&dweight).unwrap(),
            dev.download(&dbias).unwrap(),
        )
    };
    let first = run();
    let second = run();
    let bits = |v: &Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&first.1),
        bits(&second.1),
        "dweight differs between runs (seed {seed})"
    );
    assert_eq!(
        bits(&first.2),
        bits(&second.2),
        "dbias differs between runs (seed {seed})"
    );
    assert_eq!(
        bits(&first.0),
        bits(&second.0),
        "dx differs between runs (seed {seed})"
    );
}

fn cross_entropy_body<T: CudaFloat>(dev: &CudaDevice, seed: u64) {
    for vocab in [77usize, 96, 2051] {
        let logits = random::<T>(seed, ROWS * vocab, 6.0);
        let ignore = ops::cross_entropy::IGNORE_INDEX;
        let mut targets: Vec<i32> = (0..ROWS)
            .map(|r| ((r * 7919 + seed as usize) % vocab) as i32)
            .collect();
        targets[3] = ignore;
        targets[11] = ignore;
        let resolved: Vec<Option<usize>> = targets
            .iter()
            .map(|&t| (t != ignore).then_some(t as usize))
            .collect();
        let grad_scale = 1.0 / (ROWS - 2) as f32;
        let mut elosses = vec![0.0f32; ROWS];
        let mut egrad = vec![0.0f32; ROWS * vocab];
        ops::cross_entropy::cpu::loss_and_grad_rows(
            &logits,
            vocab,
            &resolved,
            grad_scale,
            &mut elosses,
            &mut egrad,
        );
        let cfg = cross_entropy::CrossEntropyConfig::new(ROWS, vocab, ignore, grad_scale).unwrap();
        let (mut losses, mut dlogits) =
            (poisoned::<f32>(dev, ROWS), poisoned::<T>(dev, ROWS * vocab));
        let dtargets = dev.upload_i32(&targets).unwrap();
        cross_entropy::cross_entropy_forward_backward(
            dev,
            cfg,
            &upload::<T>(dev, &logits),
            &dtargets,
            &mut losses,
            Some(&mut dlogits),
        )
        .unwrap();
        check::<T>(
            "cross_entropy losses",
            seed,
            &download(dev, &losses),
            &elosses,
            1.0,
        );
        // Gradients are ~grad_scale / V: compare relative to that scale.
        let atol = grad_scale as f64 * cuda_support::tolerance::<T>().1;
        check_with(
            "cross_entropy dlogits",
            seed,
            &download(dev, &dlogits),
            &egrad,
            cuda_support::tolerance::<T>().0,
            atol,
        );
    }
    // An out-of-range target that is not the ignore index gives NaN, not an out-of-bounds read.
    let cfg = cross_entropy::CrossEntropyConfig::new(1, 5, -100, 1.0).unwrap();
    let mut losses = dev.zeros::<f32>(1).unwrap();
    let targets = dev.upload_i32(&[5]).unwrap();
    cross_entropy::cross_entropy_forward_backward(
        dev,
        cfg,
        &upload::<T>(dev, &[0.0; 5]),
        &targets,
        &mut losses,
        None,
    )
    .unwrap();
    assert!(
        dev.download(&losses).unwrap()[0].is_nan(),
        "bad target must give NaN"
    );
}

#[test]
fn cross_entropy_matches_cpu() {
    let Some(dev) = gpu("cross_entropy_matches_cpu") else {
        return;
    };
    for_each_dtype!(dev, cross_entropy_body);
}

fn logprob_body<T: CudaFloat>(dev: &CudaDevice, seed: u64) {
    for (vocab, temperature) in [(77usize, 0.7f32), (96, 1.0), (2051, 1.3)] {
        let logits = random::<T>(seed, ROWS * vocab, 5.0);
        let tokens: Vec<usize> = (0..ROWS)
            .map(|r| (r * 104_729 + seed as usize) % vocab)
            .collect();
        let targets: Vec<i32> = tokens.iter().map(|&t| t as i32).collect();
        let inv_t = 1.0 / temperature;
        let (mut elogp, mut eent) = (vec![0.0f32; ROWS], vec![0.0f32; ROWS]);
        ops::logprob::cpu::token_logprobs_rows(
            &logits, vocab, &tokens, inv_t, &mut elogp, &mut eent,
        );
        let cfg = logprob::LogprobConfig::new(ROWS, vocab, -100, temperature).unwrap();
        let dlogits_in = upload::<T>(dev, &logits);
        let dtargets = dev.upload_i32(&targets).unwrap();
        let (mut logp, mut ent, mut lse) = (
            poisoned::<f32>(dev, ROWS),
            poisoned::<f32>(dev, ROWS),
            poisoned::<f32>(dev, ROWS),
        );
        logprob::logprob_entropy_forward(
            dev,
            cfg,
            &dlogits_in,
            &dtargets,
            &mut logp,
            &mut ent,
            &mut lse,
        )
        .unwrap();
        check_with("logprob", seed, &download(dev, &logp), &elogp, 1e-5, 1e-5);
        check_with("entropy", seed, &download(dev, &ent), &eent, 1e-5, 1e-5);

        let g_lp = random::<f32>(seed + 1, ROWS, 1.0);
        let g_h = random::<f32>(seed + 2, ROWS, 1.0);
        let mut egrad = vec![0.0f32; ROWS * vocab];
        ops::logprob::cpu::token_logprobs_rows_backward(
            &logits, vocab, &tokens, inv_t, &g_lp, &g_h, &mut egrad,
        );
        let mut dlogits = poisoned::<T>(dev, ROWS * vocab);
        let (dg_lp, dg_h) = (dev.upload(&g_lp).unwrap(), dev.upload(&g_h).unwrap());
        logprob::logprob_entropy_backward(
            dev,
            cfg,
            &dlogits_in,
            &dtargets,
            &lse,
            &ent,
            Some(&dg_lp),
            Some(&dg_h),
            &mut dlogits,
        )
        .unwrap();
        check::<T>(
            "logprob_entropy_backward",
            seed,
            &download(dev, &dlogits),
            &egrad,
            1.0,
        );
    }
}

#[test]
fn logprob_entropy_matches_cpu() {
    let Some(dev) = gpu("logprob_entropy_matches_cpu") else {
        return;
    };
    for_each_dtype!(dev, logprob_body);
}
