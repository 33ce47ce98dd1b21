//! Whole-model checks: gradients against finite differences (LM loss, selected log-probs, a scalar
//! head) on a tiny config with padding, and padding invariance.

use rlhf_tensor::testing::assert_close;
use rlhf_tensor::{Device, Rng, Tensor};

use crate::{Gpt, GptConfig, GptParams, ModelInput, Padding, next_token_targets};

/// A tiny model with large random weights everywhere (so that every gradient is far from zero).
pub(crate) fn tiny_model(n_heads_scalar: usize) -> Gpt {
    let config = GptConfig::new(11, 8, 8, 2, 2);
    let mut rng = Rng::new(7);
    let mut model = Gpt::new(config, n_heads_scalar, &mut rng, Device::Cpu).unwrap();
    for (name, t) in model.params.named_mut() {
        let noise = Tensor::randn(t.dims(), 0.3, &mut rng, Device::Cpu).unwrap();
        if name.contains("ln_") {
            t.add_assign(&noise).unwrap(); // scale stays near 1
        } else {
            *t = noise;
        }
    }
    model
}

pub(crate) fn padded_input() -> ModelInput {
    ModelInput::padded(&[vec![1u32, 4, 2, 9, 3], vec![5, 7, 10]], 0, Padding::Right).unwrap()
}

/// Compares `grads` with central differences of `loss` on a spread of entries of every tensor.
pub(crate) fn check_gradients(model: &Gpt, grads: &GptParams, loss: impl Fn(&Gpt) -> f64) {
    let h = 5e-3f32;
    let names: Vec<String> = model.params.named().into_iter().map(|(n, _)| n).collect();
    for (k, name) in names.iter().enumerate() {
        let numel = model.params.named()[k].1.numel();
        let probes: Vec<usize> = (0..numel).step_by((numel / 5).max(1)).take(6).collect();
        let analytic: Vec<f64> = probes
            .iter()
            .map(|&i| f64::from(grads.named()[k].1.to_vec_f32()[i]))
            .collect();
        let numeric: Vec<f64> = probes
            .iter()
            .map(|&i| {
                let mut probe = model.clone();
                let mut at = |delta: f32| {
                    let mut named = probe.params.named_mut();
                    let slice = named[k].1.as_f32_slice_mut().unwrap();
                    slice[i] += delta;
                    drop(named);
                    loss(&probe)
                };
                let up = at(h);
                let down = at(-2.0 * h);
                (up - down) / (2.0 * f64::from(h))
            })
            .collect();
        assert_close(name, &analytic, &numeric, 3e-2, 2e-3);
    }
}

#[test]
fn lm_loss_gradient_matches_finite_differences() {
    let model = tiny_model(0);
    let input = padded_input();
    let targets = next_token_targets(&input, None).unwrap();
    let loss = |m: &Gpt| {
        let fwd = m.forward(&input).unwrap();
        f64::from(m.lm_loss(&fwd.hidden, &targets, None).unwrap().loss)
    };
    let fwd = model.forward(&input).unwrap();
    let mut grads = model.params.zeros_like().unwrap();
    let out = model
        .lm_loss(&fwd.hidden, &targets, Some(&mut grads))
        .unwrap();
    assert_eq!(out.count, 4 + 2);
    model
        .backward(&fwd, out.dhidden.as_ref(), None, &mut grads)
        .unwrap();
    check_gradients(&model, &grads, loss);
}

#[test]
fn selected_logprob_and_entropy_gradient_matches_finite_differences() {
    let model = tiny_model(0);
    let input = padded_input();
    let n = input.tokens.len();
    let w_logp: Vec<f32> = (0..n).map(|i| ((i * 7) % 5) as f32 * 0.3 - 0.5).collect();
    let w_ent: Vec<f32> = (0..n).map(|i| ((i * 3) % 4) as f32 * 0.2 - 0.3).collect();
    let temperature = 0.7;
    let loss = |m: &Gpt| {
        let fwd = m.forward(&input).unwrap();
        let lp = m
            .token_logprobs(&fwd.hidden, &input.tokens, temperature)
            .unwrap();
        (0..n)
            .map(|i| f64::from(w_logp[i] * lp.logp[i] + w_ent[i] * lp.entropy[i]))
            .sum()
    };
    let fwd = model.forward(&input).unwrap();
    let mut grads = model.params.zeros_like().unwrap();
    let dh = model
        .token_logprobs_backward(
            &fwd.hidden,
            &input.tokens,
            temperature,
            Some(&w_logp),
            Some(&w_ent),
            &mut grads,
        )
        .unwrap();
    model.backward(&fwd, Some(&dh), None, &mut grads).unwrap();
    check_gradients(&model, &grads, loss);
}

#[test]
fn scalar_head_gradient_matches_finite_differences() {
    let model = tiny_model(2);
    let input = padded_input();
    let n = input.tokens.len() * 2;
    let w: Vec<f32> = (0..n).map(|i| ((i * 5) % 7) as f32 * 0.25 - 0.7).collect();
    let loss = |m: &Gpt| {
        let s = m.forward(&input).unwrap().scalars.unwrap().to_vec_f32();
        s.iter().zip(&w).map(|(a, b)| f64::from(a * b)).sum()
    };
    let fwd = model.forward(&input).unwrap();
    let mut grads = model.params.zeros_like().unwrap();
    let ds = Tensor::from_vec(w.clone(), [2, 5, 2], Device::Cpu).unwrap();
    model.backward(&fwd, None, Some(&ds), &mut grads).unwrap();
    check_gradients(&model, &grads, loss);
}

#[test]
fn padding_on_either_side_leaves_real_positions_unchanged() {
    let model = tiny_model(1);
    let seq = vec![3u32, 8, 1];
    let alone = model
        .forward(&ModelInput::dense(seq.clone(), 1, 3).unwrap())
        .unwrap();
    let alone_logits = model.logits(&alone.hidden).unwrap().to_vec_f32();
    let alone_scalar = alone.scalars.unwrap().to_vec_f32();
    for side in [Padding::Left, Padding::Right] {
        let batch = ModelInput::padded(&[vec![2u32, 2, 6, 5, 9], seq.clone()], 0, side).unwrap();
        let fwd = model.forward(&batch).unwrap();
        let logits = model.logits(&fwd.hidden).unwrap().to_vec_f32();
        let scalars = fwd.scalars.unwrap().to_vec_f32();
        let offset = if side == Padding::Left { 2 } else { 0 };
        let v = 11;
        let got: Vec<f64> = logits[(5 + offset) * v..(5 + offset + 3) * v]
            .iter()
            .map(|&x| f64::from(x))
            .collect();
        let want: Vec<f64> = alone_logits.iter().map(|&x| f64::from(x)).collect();
        assert_close("logits under padding", &got, &want, 1e-5, 1e-5);
        let got_s: Vec<f64> = scalars[5 + offset..8 + offset]
            .iter()
            .map(|&x| f64::from(x))
            .collect();
        let want_s: Vec<f64> = alone_scalar.iter().map(|&x| f64::from(x)).collect();
        assert_close("scalars under padding", &got_s, &want_s, 1e-5, 1e-5);
    }
}

#[test]
fn fused_logprobs_equal_log_softmax_of_full_logits() {
    let model = tiny_model(0);
    let input = padded_input();
    let fwd = model.forward(&input).unwrap();
    let logits = model.logits(&fwd.hidden).unwrap().to_vec_f32();
    let lp = model
        .token_logprobs(&fwd.hidden, &input.tokens, 1.0)
        .unwrap();
    for (row, &tok) in input.tokens.iter().enumerate() {
        let z = &logits[row * 11..(row + 1) * 11];
        let max = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let lse = max + z.iter().map(|x| (x - max).exp()).sum::<f32>().ln();
        assert!((lp.logp[row] - (z[tok as usize] - lse)).abs() < 1e-5);
    }
}

#[test]
fn out_of_range_ids_are_errors_not_panics() {
    let model = tiny_model(0);
    assert!(
        model
            .forward(&ModelInput::dense(vec![11], 1, 1).unwrap())
            .is_err()
    );
    assert!(
        model
            .forward(&ModelInput::dense(vec![1; 9], 1, 9).unwrap())
            .is_err()
    );
}

#[test]
fn chunked_heads_equal_one_chunk() {
    use crate::heads::test_chunk_rows;
    let model = tiny_model(0);
    let input = padded_input();
    let targets = next_token_targets(&input, None).unwrap();
    let fwd = model.forward(&input).unwrap();
    let run = |chunk: Option<usize>| {
        test_chunk_rows::set(chunk);
        let mut grads = model.params.zeros_like().unwrap();
        let ce = model
            .lm_loss(&fwd.hidden, &targets, Some(&mut grads))
            .unwrap();
        let lp = model
            .token_logprobs(&fwd.hidden, &input.tokens, 0.8)
            .unwrap();
        let w: Vec<f32> = (0..input.tokens.len())
            .map(|i| i as f32 * 0.1 - 0.4)
            .collect();
        let dh = model
            .token_logprobs_backward(
                &fwd.hidden,
                &input.tokens,
                0.8,
                Some(&w),
                Some(&w),
                &mut grads,
            )
            .unwrap();
        test_chunk_rows::set(None);
        let mut all = vec![ce.loss];
        all.extend(ce.dhidden.unwrap().to_vec_f32());
        all.extend(lp.logp);
        all.extend(lp.entropy);
        all.extend(dh.to_vec_f32());
        all.extend(grads.wte.to_vec_f32());
        all.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>()
    };
    let whole = run(None);
    for chunk in [1, 3, 4] {
        assert_close(
            &format!("chunks of {chunk} rows"),
            &run(Some(chunk)),
            &whole,
            1e-5,
            1e-6,
        );
    }
}

#[test]
fn device_and_dtype_copies_keep_every_tensor_in_place() {
    let model = tiny_model(1);
    let same = model.to_device(Device::Cpu).unwrap();
    assert_eq!(same, model);
    let half = model.params.to_dtype(rlhf_tensor::DType::BF16).unwrap();
    for ((name, h), (_, f)) in half.named().into_iter().zip(model.params.named()) {
        assert_eq!(h.dtype(), rlhf_tensor::DType::BF16, "{name}");
        assert_eq!(h.dims(), f.dims(), "{name}");
        for (a, b) in h.to_vec_f32().iter().zip(f.to_vec_f32()) {
            assert!((a - b).abs() <= b.abs() / 128.0, "{name}: {a} vs {b}");
        }
    }
    let back = half.to_dtype(rlhf_tensor::DType::F32).unwrap();
    assert_eq!(back.named().len(), model.params.named().len());
    // A GPU that is not there is an error naming it, never a panic.
    let far = Device::Cuda(rlhf_tensor::cuda::gpu_count() + 7);
    let err = model.to_device(far).unwrap_err().to_string();
    assert!(err.contains(&far.to_string()), "{err}");
}

/// The LM loss on the scored rows only (gathered, then scattered back) equals the head run on
/// every row: the same loss, per-position losses, head gradient and hidden gradient, with a
/// response-only mask that leaves whole stretches (and the padding) unscored.
#[test]
fn lm_loss_on_scored_rows_equals_the_head_on_every_row() {
    use rlhf_tensor::ops::cross_entropy::{IGNORE_INDEX, cross_entropy};
    let model = tiny_model(0);
    let input = padded_input();
    let mask = [
        false, false, true, true, true, // first sequence: loss on its last three tokens
        false, false, true, false, false, // second: one token, then padding
    ];
    let targets = next_token_targets(&input, Some(&mask)).unwrap();
    assert!(targets.iter().filter(|&&t| t != IGNORE_INDEX).count() < targets.len());
    let fwd = model.forward(&input).unwrap();
    let mut grads = model.params.zeros_like().unwrap();
    let out = model
        .lm_loss(&fwd.hidden, &targets, Some(&mut grads))
        .unwrap();

    let rows = targets.len();
    let c = model.config.n_embd;
    let flat = fwd.hidden.clone().reshape([rows, c]).unwrap();
    let ce = cross_entropy(&model.logits(&flat).unwrap(), &targets, IGNORE_INDEX).unwrap();
    let mut want_grads = model.params.zeros_like().unwrap();
    let want_dh = model
        .logits_backward(&ce.dlogits, &flat, &mut want_grads)
        .unwrap();
    let want_losses = ce.losses.to_vec_f32();
    let want_loss = want_losses.iter().sum::<f32>() / out.count as f32;
    assert_eq!(out.count, 3 + 1);
    assert!(
        (out.loss - want_loss).abs() < 1e-5,
        "{} vs {want_loss}",
        out.loss
    );
    let close = |name: &str, a: Vec<f32>, b: Vec<f32>| {
        let a: Vec<f64> = a.into_iter().map(f64::from).collect();
        let b: Vec<f64> = b.into_iter().map(f64::from).collect();
        assert_close(name, &a, &b, 1e-5, 1e-6);
    };
    close("losses", out.losses.clone(), want_losses);
    close("wte", grads.wte.to_vec_f32(), want_grads.wte.to_vec_f32());
    close(
        "dhidden",
        out.dhidden.unwrap().to_vec_f32(),
        want_dh.to_vec_f32(),
    );
}
