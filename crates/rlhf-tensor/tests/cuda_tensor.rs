//! The `Tensor` API on `Device::Cuda(0)` against the same calls on the CPU: creation, host
//! copies, dtype conversion on the device, in-place updates, device and dtype errors, and every
//! op of `ops` forward and backward, for f32 and bf16 storage. Fresh random inputs every run
//! (the seed is printed on failure), odd shapes, op outputs poisoned with NaN
//! (`cuda::poison_op_outputs`), tolerances as the kernel tests (f32 about 1e-5, bf16 about 1e-2,
//! scaled by sqrt of the reduction length where one sums). AdamW and the norm clip are in
//! cuda_tensor_optim.rs. Without a GPU each test prints one skip line; `RLHF_REQUIRE_GPU=1`
//! makes that a failure.

mod cuda_support;

use cuda_support::tensors::{GPU, check_f32, check_tensor, from_values, gpu_ready, input, on_gpu};
use cuda_support::{check, check_with, fresh_seed};
use half::bf16;
use rlhf_tensor::cuda::CudaFloat;
use rlhf_tensor::ops::attention::{attention, attention_backward};
use rlhf_tensor::ops::cross_entropy::{IGNORE_INDEX, cross_entropy, cross_entropy_losses};
use rlhf_tensor::ops::elementwise::{add, add_bias, add_bias_backward, mul, mul_backward, scale};
use rlhf_tensor::ops::embedding::{TokenIds, embedding, embedding_backward};
use rlhf_tensor::ops::gelu::{gelu, gelu_backward};
use rlhf_tensor::ops::layernorm::{layernorm, layernorm_backward};
use rlhf_tensor::ops::logprob::{token_logprobs, token_logprobs_backward};
use rlhf_tensor::ops::matmul::{MatmulSpec, matmul, matmul_backward};
use rlhf_tensor::ops::reduce::{
    masked_mean, masked_mean_backward, max, max_backward, mean, mean_backward, sum, sum_backward,
};
use rlhf_tensor::ops::softmax::{log_softmax, log_softmax_backward, softmax, softmax_backward};
use rlhf_tensor::{DType, Device, Rng, Tensor, TensorError};

/// Runs a generic body for f32 and bf16 storage, each with a fresh seed.
macro_rules! both_dtypes {
    ($test:literal, $body:ident) => {{
        if !gpu_ready($test) {
            return;
        }
        $body::<f32>(fresh_seed());
        $body::<bf16>(fresh_seed());
    }};
}

/// Uniform ids in [0, limit) from a seed.
fn ids(seed: u64, n: usize, limit: usize) -> Vec<u32> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| ((rng.uniform_f64() * limit as f64) as usize).min(limit - 1) as u32)
        .collect()
}

#[test]
fn creation_copies_and_conversions_match_the_cpu() {
    if !gpu_ready("creation_copies_and_conversions_match_the_cpu") {
        return;
    }
    let seed = fresh_seed();
    let dims = [7usize, 13];
    let x = input::<f32>(seed, &dims, 3.0);
    // Host round trip and metadata.
    assert_eq!(x.gpu.device(), GPU);
    assert!(x.gpu.is_cuda() && !x.cpu.is_cuda());
    assert_eq!(x.gpu.dtype(), DType::F32);
    assert_eq!(x.gpu.to_vec_f32(), x.values);
    assert_eq!(x.gpu.to_device(Device::Cpu).unwrap(), x.cpu);
    assert_eq!(x.gpu.to_le_bytes(), x.cpu.to_le_bytes());
    // bf16 on the device rounds exactly as the host (nearest even), both ways.
    let b_gpu = x.gpu.to_dtype(DType::BF16).unwrap();
    let b_cpu = x.cpu.to_dtype(DType::BF16).unwrap();
    assert_eq!(b_gpu.dtype(), DType::BF16);
    assert_eq!(b_gpu.to_le_bytes(), b_cpu.to_le_bytes(), "seed {seed}");
    assert_eq!(
        b_gpu.to_dtype(DType::F32).unwrap().to_vec_f32(),
        b_cpu.to_vec_f32()
    );
    let host_bf16: Vec<bf16> = x.values.iter().map(|&v| bf16::from_f32(v)).collect();
    let direct = Tensor::from_bf16(host_bf16, dims, GPU).unwrap();
    assert_eq!(direct, b_gpu);
    // Constructors.
    assert_eq!(
        Tensor::zeros(dims, GPU).unwrap().to_vec_f32(),
        vec![0.0; 91]
    );
    assert_eq!(
        Tensor::full(dims, -2.5, GPU).unwrap().to_vec_f32(),
        vec![-2.5; 91]
    );
    let r_cpu = Tensor::randn(dims, 0.5, &mut Rng::new(seed), Device::Cpu).unwrap();
    let r_gpu = Tensor::randn(dims, 0.5, &mut Rng::new(seed), GPU).unwrap();
    assert_eq!(r_gpu.to_vec_f32(), r_cpu.to_vec_f32());
    let bytes = x.cpu.to_le_bytes();
    let from_bytes = Tensor::from_le_bytes(&bytes, DType::F32, dims, GPU).unwrap();
    assert_eq!(from_bytes, x.gpu);
    // zeros_like keeps the dtype on CUDA; clones are device copies.
    assert_eq!(b_gpu.zeros_like().unwrap().dtype(), DType::BF16);
    let copy = x.gpu.try_clone().unwrap();
    assert_eq!(copy, x.gpu);
    assert_eq!(x.gpu.clone(), x.gpu);
    assert!(x.gpu.to_scalar().is_err());
    let one = Tensor::from_vec(vec![4.25], [], GPU).unwrap();
    assert_eq!(one.to_scalar().unwrap(), 4.25);
    let reshaped = x.gpu.clone().reshape([13, 7]).unwrap();
    assert_eq!(reshaped.dims(), &[13, 7]);
    assert_eq!(reshaped.to_vec_f32(), x.values);
}

fn in_place_body<T: CudaFloat>(seed: u64) {
    let dims = [37usize, 77];
    let x = input::<T>(seed, &dims, 2.0);
    let y = input::<T>(seed + 1, &dims, 2.0);
    let mut acc_gpu = x.gpu.clone();
    let mut acc_cpu = x.cpu.clone();
    acc_gpu.add_assign(&y.gpu).unwrap();
    acc_cpu.add_assign(&y.cpu).unwrap();
    check_tensor::<T>("add_assign", seed, &acc_gpu, &acc_cpu, 1.0);
    acc_gpu.copy_from(&y.gpu).unwrap();
    assert_eq!(acc_gpu.to_vec_f32(), y.values);
    acc_gpu.fill_zero();
    assert_eq!(acc_gpu.dtype(), T::DTYPE);
    assert!(acc_gpu.to_vec_f32().iter().all(|&v| v == 0.0));
}

fn rows_body<T: CudaFloat>(seed: u64) {
    let x = input::<T>(seed, &[3, 13, 77], 1.0);
    let chunk_g = x.gpu.rows(5, 29).unwrap();
    let chunk_c = x.cpu.rows(5, 29).unwrap();
    assert_eq!(chunk_g.dtype(), T::DTYPE);
    check_tensor::<T>("rows", seed, &chunk_g, &chunk_c, 0.0);
    // Reassemble the whole view chunk by chunk on the device.
    let mut whole = x.gpu.zeros_like().unwrap().reshape([39, 77]).unwrap();
    for (start, end) in [(0, 5), (5, 29), (29, 39)] {
        whole
            .set_rows(start, &x.gpu.rows(start, end).unwrap())
            .unwrap();
    }
    assert_eq!(whole.to_vec_f32(), x.values, "seed {seed}");
    assert!(x.gpu.rows(30, 40).is_err());
    assert!(whole.set_rows(0, &x.cpu.rows(0, 1).unwrap()).is_err());
}

#[test]
fn rows_and_set_rows_match_the_cpu() {
    both_dtypes!("rows_and_set_rows_match_the_cpu", rows_body);
}

#[test]
fn add_assign_copy_from_and_fill_zero_match_the_cpu() {
    both_dtypes!(
        "add_assign_copy_from_and_fill_zero_match_the_cpu",
        in_place_body
    );
}

#[test]
fn device_and_dtype_errors_name_the_op_and_both_sides() {
    if !gpu_ready("device_and_dtype_errors_name_the_op_and_both_sides") {
        return;
    }
    let a = Tensor::full([4, 3], 1.0, Device::Cpu).unwrap();
    let b = a.to_device(GPU).unwrap();
    let message = add(&a, &b).unwrap_err().to_string();
    assert!(
        message.contains("add") && message.contains("cpu") && message.contains("cuda:0"),
        "{message}"
    );
    let message = matmul(
        &b,
        &a.clone().reshape([3, 4]).unwrap(),
        None,
        MatmulSpec::NN,
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.contains("matmul") && message.contains("cpu"),
        "{message}"
    );
    let mut acc = b.clone();
    assert!(matches!(
        acc.add_assign(&a),
        Err(TensorError::DeviceMismatch { .. })
    ));
    // Mixed storage dtypes on the device: a dtype error naming the op.
    let half = b.to_dtype(DType::BF16).unwrap();
    match mul(&b, &half) {
        Err(TensorError::DTypeMismatch { op, .. }) => assert_eq!(op, "mul"),
        other => panic!("expected a dtype mismatch, got {other:?}"),
    }
    // Host views do not exist on the device; f16 has no CUDA kernels.
    assert!(matches!(
        b.as_f32_slice(),
        Err(TensorError::Unsupported { device: GPU, .. })
    ));
    let f16 = a.to_dtype(DType::F16).unwrap();
    let message = f16.to_device(GPU).unwrap_err().to_string();
    assert!(message.contains("f16"), "{message}");
    assert!(b.to_dtype(DType::F16).is_err());
    assert!(Tensor::zeros([0], GPU).is_err());
}

fn elementwise_body<T: CudaFloat>(seed: u64) {
    let dims = [5usize, 37, 77];
    let a = input::<T>(seed, &dims, 2.0);
    let b = input::<T>(seed + 1, &dims, 2.0);
    let bias = input::<T>(seed + 2, &[77], 1.0);
    let pairs = [
        ("add", add(&a.gpu, &b.gpu), add(&a.cpu, &b.cpu)),
        ("mul", mul(&a.gpu, &b.gpu), mul(&a.cpu, &b.cpu)),
        ("scale", scale(&a.gpu, -0.37), scale(&a.cpu, -0.37)),
        (
            "add_bias",
            add_bias(&a.gpu, &bias.gpu),
            add_bias(&a.cpu, &bias.cpu),
        ),
    ];
    for (what, gpu, cpu) in pairs {
        let gpu = gpu.unwrap();
        assert_eq!(gpu.dtype(), T::DTYPE, "{what}");
        check_tensor::<T>(what, seed, &gpu, &cpu.unwrap(), 1.0);
    }
    let (da_g, db_g) = mul_backward(&b.gpu, &a.gpu, &bias_free(&a.gpu)).unwrap();
    let (da_c, db_c) = mul_backward(&b.cpu, &a.cpu, &bias_free(&a.cpu)).unwrap();
    check_tensor::<T>("mul_backward da", seed, &da_g, &da_c, 1.0);
    check_tensor::<T>("mul_backward db", seed, &db_g, &db_c, 1.0);
    // Column sums over 185 rows.
    let dbias_g = add_bias_backward(&a.gpu).unwrap();
    let dbias_c = add_bias_backward(&a.cpu).unwrap();
    check_tensor::<T>("add_bias_backward", seed, &dbias_g, &dbias_c, 185f64.sqrt());
}

/// A second operand for mul_backward: x * 0.5 + 0.25, computed on x's own device.
fn bias_free(x: &Tensor) -> Tensor {
    let half = scale(x, 0.5).unwrap();
    let quarter = Tensor::full(x.dims(), 0.25, x.device())
        .unwrap()
        .to_dtype(x.dtype())
        .unwrap();
    add(&half, &quarter).unwrap()
}

#[test]
fn elementwise_ops_match_the_cpu() {
    both_dtypes!("elementwise_ops_match_the_cpu", elementwise_body);
}

fn reduce_body<T: CudaFloat>(seed: u64) {
    let dims = [37usize, 77];
    let n = 37 * 77;
    let x = input::<T>(seed, &dims, 2.0);
    let mask_values: Vec<f32> = cuda_support::random::<f32>(seed + 1, n, 1.0)
        .iter()
        .map(|&v| (v > -0.2) as u8 as f32)
        .collect();
    let mask = from_values::<T>(mask_values, &dims);
    let dout = Tensor::from_vec(vec![1.75], [], GPU).unwrap();
    let dout_cpu = Tensor::from_vec(vec![1.75], [], Device::Cpu).unwrap();
    // Sums of n values: fp32 partial sums in another order than the CPU's.
    for (what, gpu, cpu) in [
        ("sum", sum(&x.gpu), sum(&x.cpu)),
        ("mean", mean(&x.gpu), mean(&x.cpu)),
        (
            "masked_mean",
            masked_mean(&x.gpu, &mask.gpu),
            masked_mean(&x.cpu, &mask.cpu),
        ),
    ] {
        let (gpu, cpu) = (gpu.unwrap(), cpu.unwrap());
        assert_eq!(gpu.device(), GPU, "{what}");
        let (g, c) = (gpu.to_scalar().unwrap(), cpu.to_scalar().unwrap());
        check_with(what, seed, &[g], &[c], 1e-4, 1e-3);
    }
    let m = max(&x.gpu).unwrap();
    assert_eq!(
        m.to_scalar().unwrap(),
        max(&x.cpu).unwrap().to_scalar().unwrap()
    );
    for (what, gpu, cpu) in [
        (
            "sum_backward",
            sum_backward(&dout, &x.gpu),
            sum_backward(&dout_cpu, &x.cpu),
        ),
        (
            "mean_backward",
            mean_backward(&dout, &x.gpu),
            mean_backward(&dout_cpu, &x.cpu),
        ),
        (
            "max_backward",
            max_backward(&dout, &x.gpu),
            max_backward(&dout_cpu, &x.cpu),
        ),
        (
            "masked_mean_backward",
            masked_mean_backward(&dout, &x.gpu, &mask.gpu),
            masked_mean_backward(&dout_cpu, &x.cpu, &mask.cpu),
        ),
    ] {
        let gpu = gpu.unwrap();
        assert_eq!(gpu.dtype(), T::DTYPE, "{what}");
        check_tensor::<T>(what, seed, &gpu, &cpu.unwrap(), 1.0);
    }
    let none = Tensor::zeros(dims, GPU)
        .unwrap()
        .to_dtype(T::DTYPE)
        .unwrap();
    assert!(masked_mean(&x.gpu, &none).is_err());
}

#[test]
fn reductions_match_the_cpu() {
    both_dtypes!("reductions_match_the_cpu", reduce_body);
}

fn matmul_body<T: CudaFloat>(seed: u64) {
    let (batch, m, k, n) = (3usize, 37usize, 29usize, 45usize);
    // (a dims, b dims, spec, bias): shared weights (folded and, under a transposed a, looped)
    // and batched operands, every transpose combination.
    let cases: [(Vec<usize>, Vec<usize>, MatmulSpec, bool); 7] = [
        (vec![batch, m, k], vec![k, n], MatmulSpec::NN, true),
        (vec![batch, m, k], vec![n, k], MatmulSpec::NT, true),
        (vec![batch, k, m], vec![k, n], MatmulSpec::TN, false),
        (
            vec![batch, k, m],
            vec![n, k],
            MatmulSpec {
                transpose_a: true,
                transpose_b: true,
            },
            true,
        ),
        (vec![batch, m, k], vec![batch, k, n], MatmulSpec::NN, false),
        (
            vec![batch, k, m],
            vec![batch, n, k],
            MatmulSpec {
                transpose_a: true,
                transpose_b: true,
            },
            true,
        ),
        (vec![batch, k, m], vec![batch, k, n], MatmulSpec::TN, true),
    ];
    for (i, (a_dims, b_dims, spec, has_bias)) in cases.into_iter().enumerate() {
        let s = seed + 10 * i as u64;
        let a = input::<T>(s, &a_dims, 1.0);
        let b = input::<T>(s + 1, &b_dims, 1.0);
        let bias = input::<T>(s + 2, &[n], 1.0);
        let (bias_g, bias_c) = if has_bias {
            (Some(&bias.gpu), Some(&bias.cpu))
        } else {
            (None, None)
        };
        let what = format!("matmul {a_dims:?} x {b_dims:?} {spec:?}");
        let out_g = matmul(&a.gpu, &b.gpu, bias_g, spec).unwrap();
        let out_c = matmul(&a.cpu, &b.cpu, bias_c, spec).unwrap();
        check_tensor::<T>(&what, s, &out_g, &out_c, (k as f64).sqrt());
        let dout = input::<T>(s + 3, out_c.dims(), 1.0);
        let g = matmul_backward(&dout.gpu, &a.gpu, &b.gpu, has_bias, spec).unwrap();
        let c = matmul_backward(&dout.cpu, &a.cpu, &b.cpu, has_bias, spec).unwrap();
        check_tensor::<T>(&format!("{what} da"), s, &g.da, &c.da, (n as f64).sqrt());
        // db sums over the batch too when b is shared.
        let db_len = if b_dims.len() == 2 { batch * m } else { m };
        check_tensor::<T>(
            &format!("{what} db"),
            s,
            &g.db,
            &c.db,
            (db_len as f64).sqrt(),
        );
        assert_eq!(g.dbias.is_some(), has_bias);
        if let (Some(gb), Some(cb)) = (&g.dbias, &c.dbias) {
            let rows = (batch * m) as f64;
            check_tensor::<T>(&format!("{what} dbias"), s, gb, cb, rows.sqrt());
        }
    }
}

#[test]
fn matmul_forward_and_backward_match_the_cpu() {
    both_dtypes!("matmul_forward_and_backward_match_the_cpu", matmul_body);
}

fn embedding_body<T: CudaFloat>(seed: u64) {
    let (vocab, positions, cols, batch, seq) = (53usize, 40usize, 77usize, 3usize, 13usize);
    let wte = input::<T>(seed, &[vocab, cols], 1.0);
    let wpe = input::<T>(seed + 1, &[positions, cols], 1.0);
    let tokens = ids(seed + 2, batch * seq, vocab);
    // Left-padded style positions: each row starts at a different offset.
    let pos: Vec<u32> = (0..batch * seq)
        .map(|i| ((i % seq) + 3 * (i / seq)) as u32)
        .collect();
    for explicit in [false, true] {
        let mut id = TokenIds::new(&tokens, batch, seq);
        if explicit {
            id = id.with_positions(&pos);
        }
        let what = format!("embedding (explicit positions: {explicit})");
        let out_g = embedding(&wte.gpu, Some(&wpe.gpu), id).unwrap();
        let out_c = embedding(&wte.cpu, Some(&wpe.cpu), id).unwrap();
        check_tensor::<T>(&what, seed, &out_g, &out_c, 1.0);
        let no_pos_g = embedding(&wte.gpu, None, TokenIds::new(&tokens, batch, seq)).unwrap();
        let no_pos_c = embedding(&wte.cpu, None, TokenIds::new(&tokens, batch, seq)).unwrap();
        check_tensor::<T>("embedding without wpe", seed, &no_pos_g, &no_pos_c, 1.0);

        // The backward adds into existing gradients (a tied head's share, say).
        let dout = input::<T>(seed + 3, &[batch, seq, cols], 1.0);
        let prior_wte = input::<T>(seed + 4, &[vocab, cols], 0.5);
        let prior_wpe = input::<T>(seed + 5, &[positions, cols], 0.5);
        let (mut dwte_g, mut dwpe_g) = (prior_wte.gpu.clone(), prior_wpe.gpu.clone());
        let (mut dwte_c, mut dwpe_c) = (prior_wte.cpu.clone(), prior_wpe.cpu.clone());
        embedding_backward(&dout.gpu, id, &mut dwte_g, Some(&mut dwpe_g)).unwrap();
        embedding_backward(&dout.cpu, id, &mut dwte_c, Some(&mut dwpe_c)).unwrap();
        // A row gathers at most batch * seq contributions.
        let scale = ((batch * seq) as f64).sqrt();
        check_tensor::<T>(&format!("{what} dwte"), seed, &dwte_g, &dwte_c, scale);
        check_tensor::<T>(&format!("{what} dwpe"), seed, &dwpe_g, &dwpe_c, scale);
    }
    let bad = vec![vocab as u32; batch * seq];
    let message = embedding(&wte.gpu, None, TokenIds::new(&bad, batch, seq))
        .unwrap_err()
        .to_string();
    assert!(message.contains("out of range"), "{message}");
}

#[test]
fn embedding_forward_and_backward_match_the_cpu() {
    both_dtypes!(
        "embedding_forward_and_backward_match_the_cpu",
        embedding_body
    );
}

fn layernorm_body<T: CudaFloat>(seed: u64) {
    for cols in [77usize, 96] {
        let dims = [5usize, 7, cols];
        let x = from_values::<T>(
            cuda_support::random::<f32>(seed, 35 * cols, 2.0)
                .iter()
                .map(|v| v + 0.5)
                .collect(),
            &dims,
        );
        let gamma = input::<T>(seed + 1, &[cols], 1.5);
        let beta = input::<T>(seed + 2, &[cols], 1.0);
        let (out_g, cache_g) = layernorm(&x.gpu, &gamma.gpu, &beta.gpu, 1e-5).unwrap();
        let (out_c, cache_c) = layernorm(&x.cpu, &gamma.cpu, &beta.cpu, 1e-5).unwrap();
        check_tensor::<T>("layernorm out", seed, &out_g, &out_c, 2.0);
        check_f32("layernorm mean", seed, &cache_g.mean, &cache_c.mean, 2.0);
        check_f32("layernorm rstd", seed, &cache_g.rstd, &cache_c.rstd, 2.0);
        let dout = input::<T>(seed + 3, &dims, 1.0);
        let g = layernorm_backward(&dout.gpu, &x.gpu, &gamma.gpu, &cache_g).unwrap();
        let c = layernorm_backward(&dout.cpu, &x.cpu, &gamma.cpu, &cache_c).unwrap();
        check_tensor::<T>("layernorm dx", seed, &g.dx, &c.dx, 4.0);
        check_tensor::<T>("layernorm dgamma", seed, &g.dgamma, &c.dgamma, 35f64.sqrt());
        check_tensor::<T>("layernorm dbeta", seed, &g.dbeta, &c.dbeta, 35f64.sqrt());
    }
}

#[test]
fn layernorm_forward_and_backward_match_the_cpu() {
    both_dtypes!(
        "layernorm_forward_and_backward_match_the_cpu",
        layernorm_body
    );
}

fn gelu_body<T: CudaFloat>(seed: u64) {
    let dims = [37usize, 77];
    let x = input::<T>(seed, &dims, 4.0);
    let dout = input::<T>(seed + 1, &dims, 1.0);
    check_tensor::<T>(
        "gelu",
        seed,
        &gelu(&x.gpu).unwrap(),
        &gelu(&x.cpu).unwrap(),
        1.0,
    );
    check_tensor::<T>(
        "gelu_backward",
        seed,
        &gelu_backward(&dout.gpu, &x.gpu).unwrap(),
        &gelu_backward(&dout.cpu, &x.cpu).unwrap(),
        1.0,
    );
}

#[test]
fn gelu_forward_and_backward_match_the_cpu() {
    both_dtypes!("gelu_forward_and_backward_match_the_cpu", gelu_body);
}

fn softmax_body<T: CudaFloat>(seed: u64) {
    let (rows, cols) = (37usize, 77usize);
    let mut values = cuda_support::random::<f32>(seed, rows * cols, 5.0);
    // Masked entries, and one row masked entirely (zeros under softmax, -inf under log-softmax).
    for r in 0..rows {
        values[r * cols + (r * 7) % cols] = f32::NEG_INFINITY;
    }
    values[3 * cols..4 * cols].fill(f32::NEG_INFINITY);
    let x = from_values::<T>(values, &[rows, cols]);
    let dout = input::<T>(seed + 1, &[rows, cols], 1.0);
    let p_g = softmax(&x.gpu).unwrap();
    let p_c = softmax(&x.cpu).unwrap();
    check_tensor::<T>("softmax", seed, &p_g, &p_c, 1.0);
    check_tensor::<T>(
        "softmax_backward",
        seed,
        &softmax_backward(&dout.gpu, &p_g).unwrap(),
        &softmax_backward(&dout.cpu, &p_c).unwrap(),
        2.0,
    );
    let l_g = log_softmax(&x.gpu).unwrap();
    let l_c = log_softmax(&x.cpu).unwrap();
    // -inf compares equal to -inf; every finite entry within tolerance.
    let (lg, lc) = (l_g.to_vec_f32(), l_c.to_vec_f32());
    for (i, (g, c)) in lg.iter().zip(&lc).enumerate() {
        if c.is_infinite() {
            assert_eq!(g, c, "log_softmax element {i} (seed {seed})");
        }
    }
    let finite = |v: &[f32]| -> Vec<f32> { v.iter().map(|x| x.max(-1e30)).collect() };
    check::<T>("log_softmax", seed, &finite(&lg), &finite(&lc), 2.0);
    check_tensor::<T>(
        "log_softmax_backward",
        seed,
        &log_softmax_backward(&dout.gpu, &l_g).unwrap(),
        &log_softmax_backward(&dout.cpu, &l_c).unwrap(),
        (cols as f64).sqrt(),
    );
}

#[test]
fn softmax_and_log_softmax_match_the_cpu() {
    both_dtypes!("softmax_and_log_softmax_match_the_cpu", softmax_body);
}

fn cross_entropy_body<T: CudaFloat>(seed: u64) {
    let (batch, seq, vocab) = (4usize, 9usize, 77usize);
    let logits = input::<T>(seed, &[batch, seq, vocab], 4.0);
    let mut targets: Vec<i32> = ids(seed + 1, batch * seq, vocab)
        .into_iter()
        .map(|t| t as i32)
        .collect();
    for i in (0..targets.len()).step_by(5) {
        targets[i] = IGNORE_INDEX;
    }
    let g = cross_entropy(&logits.gpu, &targets, IGNORE_INDEX).unwrap();
    let c = cross_entropy(&logits.cpu, &targets, IGNORE_INDEX).unwrap();
    assert_eq!(g.count, c.count);
    check_with("cross_entropy loss", seed, &[g.loss], &[c.loss], 1e-5, 1e-5);
    check_f32("cross_entropy losses", seed, &g.losses, &c.losses, 2.0);
    check_tensor::<T>("cross_entropy dlogits", seed, &g.dlogits, &c.dlogits, 1.0);
    let lg = cross_entropy_losses(&logits.gpu, &targets, IGNORE_INDEX).unwrap();
    check_f32("cross_entropy_losses", seed, &lg, &c.losses, 2.0);
    // Bad targets are refused on the host, before any launch.
    let mut bad = targets.clone();
    bad[1] = vocab as i32;
    assert!(cross_entropy(&logits.gpu, &bad, IGNORE_INDEX).is_err());
}

#[test]
fn cross_entropy_matches_the_cpu() {
    both_dtypes!("cross_entropy_matches_the_cpu", cross_entropy_body);
}

fn logprob_body<T: CudaFloat>(seed: u64) {
    let (rows, vocab, temperature) = (36usize, 77usize, 0.7f32);
    let logits = input::<T>(seed, &[4, 9, vocab], 4.0);
    let tokens = ids(seed + 1, rows, vocab);
    let g = token_logprobs(&logits.gpu, &tokens, temperature).unwrap();
    let c = token_logprobs(&logits.cpu, &tokens, temperature).unwrap();
    check_f32("logp", seed, &g.logp, &c.logp, 2.0);
    check_f32("entropy", seed, &g.entropy, &c.entropy, 2.0);
    let d_logp = input::<f32>(seed + 2, &[rows], 1.0);
    let d_entropy = input::<T>(seed + 3, &[rows], 1.0);
    for (what, with_entropy) in [("d_logp only", false), ("d_logp and d_entropy", true)] {
        let (de_g, de_c) = if with_entropy {
            (Some(&d_entropy.gpu), Some(&d_entropy.cpu))
        } else {
            (None, None)
        };
        let dg =
            token_logprobs_backward(&logits.gpu, &tokens, temperature, Some(&d_logp.gpu), de_g)
                .unwrap();
        let dc =
            token_logprobs_backward(&logits.cpu, &tokens, temperature, Some(&d_logp.cpu), de_c)
                .unwrap();
        check_tensor::<T>(&format!("dlogits ({what})"), seed, &dg, &dc, 2.0);
    }
}

#[test]
fn token_logprobs_and_entropy_match_the_cpu() {
    both_dtypes!("token_logprobs_and_entropy_match_the_cpu", logprob_body);
}

fn attention_body<T: CudaFloat>(seed: u64) {
    let (batch, seq, heads, head_dim) = (3usize, 19usize, 3usize, 16usize);
    let c = heads * head_dim;
    let qkv = input::<T>(seed, &[batch, seq, 3 * c], 1.0);
    let dout = input::<T>(seed + 1, &[batch, seq, c], 1.0);
    // Row 0 dense, row 1 left-padded by 5, row 2 right-padded after 11 real tokens.
    let mask: Vec<bool> = (0..batch * seq)
        .map(|i| match i / seq {
            1 => i % seq >= 5,
            2 => i % seq < 11,
            _ => true,
        })
        .collect();
    for padding in [None, Some(mask.as_slice())] {
        let what = format!("attention (mask: {})", padding.is_some());
        let (out_g, cache_g) = attention(&qkv.gpu, heads, padding).unwrap();
        let (out_c, cache_c) = attention(&qkv.cpu, heads, padding).unwrap();
        check_tensor::<T>(
            &format!("{what} probs"),
            seed,
            &cache_g.att,
            &cache_c.att,
            2.0,
        );
        check_tensor::<T>(&format!("{what} out"), seed, &out_g, &out_c, 2.0);
        let dq_g = attention_backward(&dout.gpu, &qkv.gpu, &cache_g).unwrap();
        let dq_c = attention_backward(&dout.cpu, &qkv.cpu, &cache_c).unwrap();
        check_tensor::<T>(&format!("{what} dqkv"), seed, &dq_g, &dq_c, 3.0);
        if padding.is_some() {
            // A padded query outputs exactly 0 and passes no gradient.
            let out = out_g.to_vec_f32();
            let dq = dq_g.to_vec_f32();
            for (i, _) in mask.iter().enumerate().filter(|(_, real)| !**real) {
                assert!(out[i * c..(i + 1) * c].iter().all(|&v| v == 0.0), "{what}");
                assert!(
                    dq[i * 3 * c..(i + 1) * 3 * c].iter().all(|&v| v == 0.0),
                    "{what}"
                );
            }
        }
    }
    let short = vec![true; batch * seq - 1];
    assert!(attention(&qkv.gpu, heads, Some(&short)).is_err());
}

#[test]
fn attention_with_and_without_padding_matches_the_cpu() {
    both_dtypes!(
        "attention_with_and_without_padding_matches_the_cpu",
        attention_body
    );
}

#[test]
fn bf16_results_stay_bf16_and_gpu_tensors_compare_on_values() {
    if !gpu_ready("bf16_results_stay_bf16_and_gpu_tensors_compare_on_values") {
        return;
    }
    let seed = fresh_seed();
    let x = input::<bf16>(seed, &[9, 33], 1.0);
    let y = gelu(&x.gpu).unwrap();
    assert_eq!(y.dtype(), DType::BF16);
    assert_eq!(
        on_gpu::<bf16>(
            &y.to_device(Device::Cpu)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap()
        ),
        y
    );
    assert_ne!(y, x.gpu);
}
