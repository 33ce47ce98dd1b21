//! A tiny GPT-2 on `Device::Cuda(0)` against the same model on the CPU, through the unchanged
//! model code (it only calls `rlhf_tensor::ops`): identical initial weights (sampled on the host),
//! then forward on a left-padded batch, the tied LM head with cross-entropy, the scalar head, the
//! full backward, and the global gradient norm of a clipped AdamW step. f32 storage; tolerances
//! allow for cuBLAS and the CPU GEMM summing in different orders through two layers. The chunked
//! heads, generation and training are in `cuda_heads_generate.rs`. Without a GPU the test prints one skip line; `RLHF_REQUIRE_GPU=1` makes that a failure.

use rlhf_tensor::ops::cross_entropy::{IGNORE_INDEX, cross_entropy};
use rlhf_tensor::optim::{AdamW, AdamWConfig};
use rlhf_tensor::testing::random_values;
use rlhf_tensor::{Device, Rng, Tensor};
use rlhf_transformer::{Gpt, GptConfig, GptParams, ModelInput, Padding, next_token_targets};

mod common;

use common::{GPU, close, fresh_seed, gpu_ready, random_tokens};

#[test]
fn tiny_gpt2_forward_and_backward_match_the_cpu() {
    if !gpu_ready("tiny_gpt2_forward_and_backward_match_the_cpu") {
        return;
    }
    let seed = fresh_seed();
    let config = GptConfig::new(37, 24, 32, 2, 4);
    let cpu = Gpt::new(config.clone(), 1, &mut Rng::new(seed), Device::Cpu).unwrap();
    let gpu = Gpt::new(config.clone(), 1, &mut Rng::new(seed), GPU).unwrap();
    assert_eq!(gpu.device(), GPU);
    for ((name, g), (_, c)) in gpu.params.named().into_iter().zip(cpu.params.named()) {
        assert_eq!(
            g.to_vec_f32(),
            c.to_vec_f32(),
            "initial {name} (seed {seed})"
        );
    }

    // Three sequences of different lengths, left-padded with token 0.
    let sequences = random_tokens(seed, &[13, 9, 11], config.vocab_size);
    let input = ModelInput::padded(&sequences, 0, Padding::Left).unwrap();
    let (b, t) = (input.batch, input.seq_len);
    let fwd_g = gpu.forward(&input).unwrap();
    let fwd_c = cpu.forward(&input).unwrap();
    close("hidden", seed, &fwd_g.hidden, &fwd_c.hidden, 1e-4, 1e-5);
    let (sg, sc) = (
        fwd_g.scalars.as_ref().unwrap(),
        fwd_c.scalars.as_ref().unwrap(),
    );
    close("scalar head", seed, sg, sc, 1e-4, 1e-5);

    // Tied LM head and cross-entropy on the whole (B, T, V) logits.
    let targets = next_token_targets(&input, None).unwrap();
    assert!(targets.iter().any(|&t| t != IGNORE_INDEX));
    let logits_g = gpu.logits(&fwd_g.hidden).unwrap();
    let logits_c = cpu.logits(&fwd_c.hidden).unwrap();
    close("logits", seed, &logits_g, &logits_c, 1e-4, 1e-5);
    let ce_g = cross_entropy(&logits_g, &targets, IGNORE_INDEX).unwrap();
    let ce_c = cross_entropy(&logits_c, &targets, IGNORE_INDEX).unwrap();
    assert!(
        (ce_g.loss - ce_c.loss).abs() <= 1e-4 * ce_c.loss.abs(),
        "loss {} on the GPU, {} on the CPU (seed {seed})",
        ce_g.loss,
        ce_c.loss
    );

    // Backward from the LM head and a random scalar-head gradient.
    let ds: Vec<f32> = random_values(seed + 1, b * t)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let ds_c = Tensor::from_vec(ds, [b, t, 1], Device::Cpu).unwrap();
    let ds_g = ds_c.to_device(GPU).unwrap();
    let mut grads_g = gpu.params.zeros_like().unwrap();
    let mut grads_c = cpu.params.zeros_like().unwrap();
    let dh_g = gpu
        .logits_backward(&ce_g.dlogits, &fwd_g.hidden, &mut grads_g)
        .unwrap();
    let dh_c = cpu
        .logits_backward(&ce_c.dlogits, &fwd_c.hidden, &mut grads_c)
        .unwrap();
    close("dhidden", seed, &dh_g, &dh_c, 1e-3, 1e-4);
    gpu.backward(&fwd_g, Some(&dh_g), Some(&ds_g), &mut grads_g)
        .unwrap();
    cpu.backward(&fwd_c, Some(&dh_c), Some(&ds_c), &mut grads_c)
        .unwrap();
    for ((name, g), (_, c)) in grads_g.named().into_iter().zip(grads_c.named()) {
        close(&format!("gradient of {name}"), seed, g, c, 1e-3, 1e-4);
    }

    // A clipped AdamW step: the norm is reduced on the device, the clip applied there.
    let norm = |model: &Gpt, grads: &GptParams| {
        let mut params = model.params.clone();
        let mut opt = AdamW::new(AdamWConfig::default());
        opt.step_clipped(&mut params.tensors_mut(), &grads.tensors(), 1e-3, 1.0)
            .unwrap()
    };
    let (ng, nc) = (norm(&gpu, &grads_g), norm(&cpu, &grads_c));
    assert!(
        (ng - nc).abs() <= 1e-3 * nc,
        "gradient norm {ng} on the GPU, {nc} on the CPU (seed {seed})"
    );
}
