//! The transformer's device-generic paths on `Device::Cuda(0)` against the CPU, on a tiny GPT-2
//! built from the same seed on both devices: the chunked LM loss and its gradients (through the
//! whole backward), selected-token log-probs and entropies with their backward, KV-cache
//! generation (greedy and sampled: the same tokens), and a few AdamW training steps (the same
//! loss curve). f32 storage; tolerances allow for cuBLAS and the CPU GEMM summing in different
//! orders. Without a GPU each test prints one skip line; `RLHF_REQUIRE_GPU=1` fails them.

mod common;

use common::{GPU, close, close_values, fresh_seed, gpu_ready, random_tokens};
use rlhf_tensor::{DType, Device, Rng, Tensor};
use rlhf_transformer::{
    Example, GenerationConfig, Gpt, GptConfig, ModelInput, Padding, Precision, Sampling,
    TrainConfig, Trainer, next_token_targets, pack,
};

/// The same tiny model on the CPU and the GPU (weights drawn on the host from `seed`), with
/// weights larger than GPT-2's init so that greedy decoding changes token along the way.
fn models(seed: u64) -> (Gpt, Gpt) {
    let config = GptConfig::new(37, 32, 32, 2, 4);
    let mut rng = Rng::new(seed);
    let mut cpu = Gpt::new(config, 0, &mut rng, Device::Cpu).unwrap();
    for (_, t) in cpu.params.named_mut() {
        if t.dims().len() == 2 {
            *t = Tensor::randn(t.dims(), 0.3, &mut rng, Device::Cpu).unwrap();
        }
    }
    let gpu = cpu.to_device(GPU).unwrap();
    assert_eq!(gpu.device(), GPU);
    (cpu, gpu)
}

#[test]
fn lm_loss_and_its_gradients_match_the_cpu() {
    if !gpu_ready("lm_loss_and_its_gradients_match_the_cpu") {
        return;
    }
    let seed = fresh_seed();
    let (cpu, gpu) = models(seed);
    let sequences = random_tokens(seed, &[13, 9, 11], 37);
    let input = ModelInput::padded(&sequences, 0, Padding::Left).unwrap();
    let targets = next_token_targets(&input, None).unwrap();
    let (fwd_c, fwd_g) = (cpu.forward(&input).unwrap(), gpu.forward(&input).unwrap());
    close(
        "logits",
        seed,
        &gpu.logits(&fwd_g.hidden).unwrap(),
        &cpu.logits(&fwd_c.hidden).unwrap(),
        1e-4,
        1e-5,
    );
    let mut grads_c = cpu.params.zeros_like().unwrap();
    let mut grads_g = gpu.params.zeros_like().unwrap();
    let loss_c = cpu
        .lm_loss(&fwd_c.hidden, &targets, Some(&mut grads_c))
        .unwrap();
    let loss_g = gpu
        .lm_loss(&fwd_g.hidden, &targets, Some(&mut grads_g))
        .unwrap();
    assert_eq!(loss_g.count, loss_c.count);
    assert!(
        (loss_g.loss - loss_c.loss).abs() <= 1e-4 * loss_c.loss.abs(),
        "loss {} on the GPU, {} on the CPU (seed {seed})",
        loss_g.loss,
        loss_c.loss
    );
    close_values(
        "per-position losses",
        seed,
        &loss_g.losses,
        &loss_c.losses,
        1e-4,
        1e-5,
    );
    let (dh_c, dh_g) = (loss_c.dhidden.unwrap(), loss_g.dhidden.unwrap());
    close("dhidden", seed, &dh_g, &dh_c, 1e-3, 1e-4);
    cpu.backward(&fwd_c, Some(&dh_c), None, &mut grads_c)
        .unwrap();
    gpu.backward(&fwd_g, Some(&dh_g), None, &mut grads_g)
        .unwrap();
    for ((name, g), (_, c)) in grads_g.named().into_iter().zip(grads_c.named()) {
        close(&format!("d{name}"), seed, g, c, 1e-3, 1e-4);
    }
    // Without gradients: the same loss.
    let eval = gpu.lm_loss(&fwd_g.hidden, &targets, None).unwrap();
    assert!((eval.loss - loss_g.loss).abs() <= 1e-6 * loss_g.loss.abs());
}

#[test]
fn token_logprobs_and_their_backward_match_the_cpu() {
    if !gpu_ready("token_logprobs_and_their_backward_match_the_cpu") {
        return;
    }
    let seed = fresh_seed();
    let (cpu, gpu) = models(seed);
    let sequences = random_tokens(seed, &[10, 7], 37);
    let input = ModelInput::padded(&sequences, 0, Padding::Right).unwrap();
    let (fwd_c, fwd_g) = (cpu.forward(&input).unwrap(), gpu.forward(&input).unwrap());
    let temperature = 0.7;
    let lp_c = cpu
        .token_logprobs(&fwd_c.hidden, &input.tokens, temperature)
        .unwrap();
    let lp_g = gpu
        .token_logprobs(&fwd_g.hidden, &input.tokens, temperature)
        .unwrap();
    close_values("logp", seed, &lp_g.logp, &lp_c.logp, 1e-4, 1e-5);
    close_values("entropy", seed, &lp_g.entropy, &lp_c.entropy, 1e-4, 1e-5);
    let mut rng = Rng::new(seed ^ 1);
    let n = input.tokens.len();
    let d_logp: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
    let d_entropy: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
    let mut grads_c = cpu.params.zeros_like().unwrap();
    let mut grads_g = gpu.params.zeros_like().unwrap();
    let dh_c = cpu
        .token_logprobs_backward(
            &fwd_c.hidden,
            &input.tokens,
            temperature,
            Some(&d_logp),
            Some(&d_entropy),
            &mut grads_c,
        )
        .unwrap();
    let dh_g = gpu
        .token_logprobs_backward(
            &fwd_g.hidden,
            &input.tokens,
            temperature,
            Some(&d_logp),
            Some(&d_entropy),
            &mut grads_g,
        )
        .unwrap();
    close("dhidden", seed, &dh_g, &dh_c, 1e-3, 1e-4);
    close("dwte", seed, &grads_g.wte, &grads_c.wte, 1e-3, 1e-4);
}

#[test]
fn kv_cache_generation_picks_the_cpu_tokens() {
    if !gpu_ready("kv_cache_generation_picks_the_cpu_tokens") {
        return;
    }
    let seed = fresh_seed();
    let (cpu, gpu) = models(seed);
    let prompts = random_tokens(seed, &[5, 1, 3, 8], 37);
    for sampling in [
        Sampling::greedy(),
        Sampling {
            temperature: 1.1,
            top_k: 9,
            top_p: 0.9,
        },
    ] {
        let config = GenerationConfig {
            max_new_tokens: 12,
            sampling,
            eos_token_id: Some(3),
            pad_token_id: 0,
            seed,
        };
        let out_c = cpu.generate(&prompts, &config).unwrap();
        let out_g = gpu.generate(&prompts, &config).unwrap();
        // Sampled tokens agree unless a draw lands within an ulp of exp of a boundary (~1e-7).
        assert_eq!(out_g.tokens, out_c.tokens, "{sampling:?} (seed {seed})");
        assert_eq!(out_g.mask, out_c.mask);
        assert_eq!(out_g.finished, out_c.finished);
        close_values(
            "generated log-probs",
            seed,
            &out_g.logprobs,
            &out_c.logprobs,
            1e-4,
            1e-5,
        );
    }
}

/// Packed windows of a structured token stream, and a 6-step AdamW config with accumulation.
fn training_setup(seed: u64) -> (Vec<Example>, TrainConfig) {
    let stream: Vec<u32> = (0..600u32).map(|i| (i * 7 % 13 + i / 13) % 37).collect();
    let data: Vec<Example> = pack(&stream, 16).unwrap();
    let mut config = TrainConfig::new(1e-2, 6, 16);
    config.batch_size = 4;
    config.grad_accum_steps = 2;
    config.seed = seed;
    (data, config)
}

#[test]
fn a_few_training_steps_follow_the_cpu_loss_curve() {
    if !gpu_ready("a_few_training_steps_follow_the_cpu_loss_curve") {
        return;
    }
    let seed = fresh_seed();
    let (cpu, gpu) = models(seed);
    let (data, config) = training_setup(seed);
    let mut on_cpu = Trainer::new(cpu, config.clone()).unwrap();
    let mut on_gpu = Trainer::new(gpu, config).unwrap();
    on_cpu.fit(&data, &data[..4], None, &mut |_| {}).unwrap();
    on_gpu.fit(&data, &data[..4], None, &mut |_| {}).unwrap();
    let losses = |t: &Trainer| t.history().iter().map(|s| s.loss).collect::<Vec<_>>();
    close_values(
        "loss curve",
        seed,
        &losses(&on_gpu),
        &losses(&on_cpu),
        1e-3,
        0.0,
    );
    assert_eq!(on_gpu.model.device(), GPU);
    let (pc, pg) = (&on_cpu.model.params, &on_gpu.model.params);
    for ((name, g), (_, c)) in pg.named().into_iter().zip(pc.named()) {
        close(&format!("trained {name}"), seed, g, c, 1e-3, 1e-4);
    }
    // Saving from the GPU and loading back onto it keeps the weights.
    let dir = std::env::temp_dir().join(format!("rlhf-cuda-ckpt-{}", std::process::id()));
    on_gpu.model.save(&dir).unwrap();
    let back = Gpt::load(&dir, GPU).unwrap();
    assert_eq!(back.device(), GPU);
    assert_eq!(back.params.wte.to_vec_f32(), pg.wte.to_vec_f32());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bf16_mixed_precision_follows_the_f32_loss_curve() {
    if !gpu_ready("bf16_mixed_precision_follows_the_f32_loss_curve") {
        return;
    }
    let seed = fresh_seed();
    let (cpu, gpu) = models(seed);
    let (data, config) = training_setup(seed);
    let mut mixed = config.clone();
    mixed.precision = Precision::Bf16;
    let mut on_cpu = Trainer::new(cpu, config).unwrap();
    let mut on_gpu = Trainer::new(gpu, mixed).unwrap();
    on_cpu.fit(&data, &[], None, &mut |_| {}).unwrap();
    on_gpu.fit(&data, &[], None, &mut |_| {}).unwrap();
    let losses = |t: &Trainer| t.history().iter().map(|s| s.loss).collect::<Vec<_>>();
    // bf16 keeps 8 bits of mantissa: the curves agree to about 1e-2 relative.
    close_values(
        "bf16 loss curve",
        seed,
        &losses(&on_gpu),
        &losses(&on_cpu),
        3e-2,
        0.0,
    );
    // The master weights stay f32 and moved.
    assert!(
        on_gpu
            .model
            .params
            .tensors()
            .iter()
            .all(|t| t.dtype() == DType::F32)
    );
    let (first, last) = (losses(&on_gpu)[0], *losses(&on_gpu).last().unwrap());
    assert!(
        last < first,
        "bf16 training did not lower the loss: {first} -> {last}"
    );
}
