//! The decoding ops on CUDA against the CPU: next-token sampling (`ops::sampling`: greedy,
//! temperature, top-k, top-p; the same tokens for the same logits and uniforms, log-probs within
//! f32 tolerance) and the KV-cache attention (`ops::kv_attention`: appending a step's keys and
//! values, attention of the new queries over the cached real positions). f32 and bf16 storage
//! (inputs rounded to bf16 on both sides, so both devices see the same numbers); odd sizes
//! (a vocabulary of 1001, 37 rows). Without a GPU each test prints one skip line.

mod cuda_support;

use cuda_support::tensors::{GPU, check_tensor, from_values, gpu_ready, input};
use cuda_support::{check_with, fresh_seed};
use half::bf16;
use rlhf_tensor::cuda::CudaFloat;
use rlhf_tensor::ops::kv_attention::{kv_append, kv_attention};
use rlhf_tensor::ops::sampling::{SampleSpec, sample};
use rlhf_tensor::{Device, Rng, Tensor};

macro_rules! both_dtypes {
    ($test:literal, $body:ident) => {{
        if !gpu_ready($test) {
            return;
        }
        $body::<f32>(fresh_seed());
        $body::<bf16>(fresh_seed());
    }};
}

fn sampling_body<T: CudaFloat>(seed: u64) {
    let (rows, vocab) = (37, 1001);
    let mut rng = Rng::new(seed);
    // Logits with ties (rounded to halves in some rows) and a -inf column.
    let mut values: Vec<f32> = (0..rows * vocab).map(|_| rng.normal() * 3.0).collect();
    for (i, v) in values.iter_mut().enumerate() {
        if (i / vocab) % 3 == 0 {
            *v = (*v * 2.0).round() / 2.0;
        }
        if i % vocab == 17 {
            *v = f32::NEG_INFINITY;
        }
    }
    let logits = from_values::<T>(values, &[rows, vocab]);
    let specs = [
        SampleSpec::greedy(),
        SampleSpec {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
        },
        SampleSpec {
            temperature: 0.7,
            top_k: 50,
            top_p: 1.0,
        },
        SampleSpec {
            temperature: 1.3,
            top_k: 0,
            top_p: 0.9,
        },
        SampleSpec {
            temperature: 1.0,
            top_k: 40,
            top_p: 0.5,
        },
        SampleSpec {
            temperature: 2.0,
            top_k: 1,
            top_p: 0.3,
        },
    ];
    for spec in specs {
        let uniforms: Vec<f64> = (0..rows).map(|_| rng.uniform_f64()).collect();
        let on_gpu = sample(&logits.gpu, spec, &uniforms).unwrap();
        let on_cpu = sample(&logits.cpu, spec, &uniforms).unwrap();
        assert_eq!(
            on_gpu.tokens,
            on_cpu.tokens,
            "{spec:?} {} (seed {seed})",
            T::SUFFIX
        );
        check_with(
            "sampled log-probs",
            seed,
            &on_gpu.logp,
            &on_cpu.logp,
            1e-5,
            1e-5,
        );
    }
    // A NaN row is an error naming it, as on the CPU.
    let mut bad = logits.values.clone();
    bad[5 * vocab + 3] = f32::NAN;
    let bad = from_values::<T>(bad, &[rows, vocab]);
    let err = sample(&bad.gpu, SampleSpec::greedy(), &vec![0.5; rows]).unwrap_err();
    assert!(err.to_string().contains("row 5"), "{err}");
}

#[test]
fn sampling_picks_the_cpu_tokens() {
    both_dtypes!("sampling_picks_the_cpu_tokens", sampling_body);
}

fn kv_body<T: CudaFloat>(seed: u64) {
    let (b, h, d, cap) = (3, 4, 16, 29);
    let c = h * d;
    let zeros = |device: Device| {
        Tensor::zeros([b, h, cap, d], device)
            .and_then(|t| t.to_dtype(T::DTYPE))
            .unwrap()
    };
    let (mut kg, mut vg) = (zeros(GPU), zeros(GPU));
    let host = || Tensor::zeros([b, h, cap, d], Device::Cpu).unwrap();
    let (mut kc, mut vc) = (host(), host());
    let mut mask = vec![0.0f32; b * cap];
    let mut start = 0;
    // A prompt step of 11 positions (row 1 left-padded by 4), then single-token steps.
    for (step, n) in [11usize, 1, 1, 1, 1].into_iter().enumerate() {
        for row in 0..b {
            for i in 0..n {
                let padded = row == 1 && step == 0 && i < 4;
                mask[row * cap + start + i] = if padded { 0.0 } else { 1.0 };
            }
        }
        let qkv = input::<T>(seed + step as u64, &[b, n, 3 * c], 1.0);
        kv_append(&mut kg, &mut vg, &qkv.gpu, h, start).unwrap();
        kv_append(&mut kc, &mut vc, &qkv.cpu, h, start).unwrap();
        let mask_g = Tensor::from_slice(&mask, [b, cap], GPU).unwrap();
        let mask_c = Tensor::from_slice(&mask, [b, cap], Device::Cpu).unwrap();
        let out_g = kv_attention(&qkv.gpu, &kg, &vg, &mask_g, h, start).unwrap();
        let out_c = kv_attention(&qkv.cpu, &kc, &vc, &mask_c, h, start).unwrap();
        check_tensor::<T>(
            &format!("kv attention step {step}"),
            seed,
            &out_g,
            &out_c,
            4.0,
        );
        start += n;
    }
    check_tensor::<T>("cached keys", seed, &kg, &kc, 0.0);
    check_tensor::<T>("cached values", seed, &vg, &vc, 0.0);
    // Past the capacity is an error, as on the CPU.
    let qkv = input::<T>(seed, &[b, cap, 3 * c], 1.0);
    assert!(kv_append(&mut kg, &mut vg, &qkv.gpu, h, 1).is_err());
}

#[test]
fn kv_cache_attention_matches_the_cpu() {
    both_dtypes!("kv_cache_attention_matches_the_cpu", kv_body);
}
