//! Activation recomputation: the same gradients bit for bit, finite differences still agree,
//! the bytes it saves, and training with it.

use rlhf_tensor::{Device, Rng};

use crate::model_tests::{check_gradients, padded_input, tiny_model};
use crate::{
    Example, Gpt, GptConfig, GptParams, Recompute, TrainConfig, Trainer, next_token_targets, pack,
};

/// Gradients of the LM loss plus a scalar head's sum, under `recompute`.
fn gradients(model: &Gpt, recompute: Recompute) -> GptParams {
    let input = padded_input();
    let targets = next_token_targets(&input, None).unwrap();
    let fwd = model.forward_with(&input, recompute).unwrap();
    let mut grads = model.params.zeros_like().unwrap();
    let out = model
        .lm_loss(&fwd.hidden, &targets, Some(&mut grads))
        .unwrap();
    let scalars = fwd.scalars.as_ref().unwrap();
    let dscalars = rlhf_tensor::Tensor::full(scalars.dims(), 1.0, Device::Cpu).unwrap();
    model
        .backward(&fwd, out.dhidden.as_ref(), Some(&dscalars), &mut grads)
        .unwrap();
    grads
}

#[test]
fn recomputed_gradients_are_bit_identical() {
    let model = tiny_model(1);
    let kept = gradients(&model, Recompute::Off);
    let recomputed = gradients(&model, Recompute::Activations);
    for ((name, a), (_, b)) in kept.named().into_iter().zip(recomputed.named()) {
        let (a, b) = (a.to_vec_f32(), b.to_vec_f32());
        assert!(a.iter().any(|&v| v != 0.0), "{name} has no gradient");
        let same = a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "{name}: gradients differ under recomputation");
    }
}

#[test]
fn recomputed_lm_gradient_matches_finite_differences() {
    let model = tiny_model(0);
    let input = padded_input();
    let targets = next_token_targets(&input, None).unwrap();
    let loss = |m: &Gpt| {
        let fwd = m.forward(&input).unwrap();
        f64::from(m.lm_loss(&fwd.hidden, &targets, None).unwrap().loss)
    };
    let fwd = model.forward_with(&input, Recompute::Activations).unwrap();
    let mut grads = model.params.zeros_like().unwrap();
    let out = model
        .lm_loss(&fwd.hidden, &targets, Some(&mut grads))
        .unwrap();
    model
        .backward(&fwd, out.dhidden.as_ref(), None, &mut grads)
        .unwrap();
    check_gradients(&model, &grads, loss);
}

#[test]
fn recomputation_drops_six_c_values_per_token_and_block() {
    // C 8, F 32 (4 C), 3 layers, 2 heads; batch 2 x 5, f32 on the CPU (unfused attention).
    let config = GptConfig::new(11, 8, 8, 3, 2);
    let model = Gpt::new(config, 0, &mut Rng::new(3), Device::Cpu).unwrap();
    let input = padded_input();
    let kept = model.forward(&input).unwrap().activation_bytes();
    let dropped = model
        .forward_with(&input, Recompute::Activations)
        .unwrap()
        .activation_bytes();
    let (b, t, c, f, h, l) = (2, 5, 8, 32, 2, 3);
    // Per block: input, ln_1, qkv (3C), att_out, residual_mid, ln_2, fc (F), gelu (F) values per
    // token, 2 x 2 LayerNorm statistics per token, probabilities (H, T, T) per sequence.
    let per_block = b * t * (c + c + 3 * c + c + c + c + f + f + 4) + b * h * t * t;
    // Final residual, ln_f statistics, hidden states.
    let tail = b * t * (c + 2 + c);
    assert_eq!(kept, 4 * (l * per_block + tail));
    assert_eq!(kept - dropped, 4 * l * b * t * (2 * c + f));
}

#[test]
fn training_with_recomputation_follows_the_same_curve() {
    let stream: Vec<u32> = (0..200u32).map(|i| (i * 5 % 7 + i / 9) % 12).collect();
    let data: Vec<Example> = pack(&stream, 10).unwrap();
    let tiny = || {
        Gpt::new(
            GptConfig::new(12, 16, 16, 2, 2),
            0,
            &mut Rng::new(5),
            Device::Cpu,
        )
        .unwrap()
    };
    let mut config = TrainConfig::new(1e-2, 3, 10);
    config.batch_size = 4;
    let mut plain = Trainer::new(tiny(), config.clone()).unwrap();
    config.recompute = Recompute::Activations;
    let mut recomputing = Trainer::new(tiny(), config).unwrap();
    for _ in 0..3 {
        let a = plain.train_step(&data).unwrap();
        let b = recomputing.train_step(&data).unwrap();
        assert_eq!(a.loss.to_bits(), b.loss.to_bits());
        assert_eq!(a.grad_norm.to_bits(), b.grad_norm.to_bits());
    }
    assert_eq!(plain.model, recomputing.model);
}
