//! The full PPO loss (clipped policy loss + vf_coef x clipped value loss - entropy bonus +
//! PPO-ptx) through a tiny model, against central finite differences of the loss in every
//! parameter tensor, for both critic layouts.

mod common;

use common::*;
use rlhf_ppo::loss::{Grads, ppo_micro_batch, ptx_micro_batch};
use rlhf_ppo::loss_device::ppo_micro_batch_on_device;
use rlhf_ppo::rollout::{self, Rollout, RolloutModels};
use rlhf_ppo::{CriticKind, PpoConfig, compute_advantages};
use rlhf_tensor::Rng;
use rlhf_tensor::testing::assert_close;
use rlhf_transformer::{Example, Gpt};

const ROWS: [usize; 3] = [0, 2, 3];

fn config() -> PpoConfig {
    PpoConfig {
        response_length: 5,
        temperature: 0.8,
        vf_coef: 0.7,
        entropy_coef: 0.05,
        ptx_coef: 0.3,
        ptx_seq_len: 8,
        ..PpoConfig::default()
    }
}

/// A rollout of the tiny model whose "old" log-probs and values are moved off the current ones:
/// ratios exp(+-0.05) inside the clip range and exp(-0.6) outside it; values +-0.05 inside
/// the value clip range and +0.5 outside it (away from every kink of the losses).
fn rollout(policy: &Gpt, critic: Option<&Gpt>) -> Rollout {
    let prompts = prompts();
    let picked: Vec<_> = prompts.iter().take(4).collect();
    let models = RolloutModels {
        policy,
        reference: policy,
        critic,
    };
    let spec = rlhf_ppo::SampleSpec {
        response_length: 5,
        temperature: 0.8,
        stop_token_id: EOS,
        pad_token_id: PAD,
        chunk_rows: 4,
    };
    let mut reward = good_token_reward();
    let mut out = rollout::collect(
        &models,
        &picked,
        reward.as_mut(),
        &|t: &[u32]| Ok(decode(t)),
        &spec,
        None,
        &mut Rng::new(3),
    )
    .unwrap();
    for (i, lp) in out.logp.iter_mut().enumerate() {
        *lp += [0.05, -0.05, -0.6][i % 3];
    }
    for (i, v) in out.values.iter_mut().enumerate() {
        *v += [-0.05, 0.5, 0.05][i % 3];
    }
    out
}

fn total_loss(
    policy: &Gpt,
    critic: Option<&Gpt>,
    data: &(Rollout, rlhf_ppo::Advantages),
    ptx: &[&Example],
) -> f64 {
    let mut pg = policy.params.zeros_like().unwrap();
    let mut cg = critic.map(|c| c.params.zeros_like().unwrap());
    let grads = Grads {
        policy: &mut pg,
        critic: cg.as_mut(),
    };
    let loss = ppo_micro_batch(
        policy,
        critic,
        &data.0,
        &data.1,
        &ROWS,
        &config(),
        1.0,
        grads,
    )
    .unwrap();
    let (_, ptx_term) = ptx_micro_batch(policy, ptx, &config(), PAD, 1.0, &mut pg).unwrap();
    loss.total + ptx_term
}

fn check(model: &Gpt, grads: &rlhf_transformer::GptParams, loss: impl Fn(&Gpt) -> f64, what: &str) {
    let h = 5e-3f32;
    let names: Vec<String> = model.params.named().into_iter().map(|(n, _)| n).collect();
    for (k, name) in names.iter().enumerate() {
        let numel = model.params.named()[k].1.numel();
        let probes: Vec<usize> = (0..numel).step_by((numel / 4).max(1)).take(4).collect();
        let analytic: Vec<f64> = probes
            .iter()
            .map(|&i| f64::from(grads.named()[k].1.to_vec_f32()[i]))
            .collect();
        let numeric: Vec<f64> = probes
            .iter()
            .map(|&i| {
                let mut probe = model.clone();
                let mut at = |delta: f32| {
                    probe.params.named_mut()[k].1.as_f32_slice_mut().unwrap()[i] += delta;
                    loss(&probe)
                };
                let up = at(h);
                let down = at(-2.0 * h);
                (up - down) / (2.0 * f64::from(h))
            })
            .collect();
        assert_close(&format!("{what} {name}"), &analytic, &numeric, 3e-2, 3e-3);
    }
}

#[test]
fn full_ppo_loss_gradient_matches_finite_differences() {
    let ptx_data: Vec<Example> = ptx_data().into_iter().take(2).collect();
    let ptx: Vec<&Example> = ptx_data.iter().collect();
    for kind in [CriticKind::Separate, CriticKind::Shared] {
        let mut policy = tiny_model(11, 0.3);
        let critic = match kind {
            CriticKind::Separate => {
                let mut c = tiny_model(12, 0.3);
                c.params.score = tiny_model(13, 0.3).params.score.or_else(|| {
                    let mut rng = Rng::new(4);
                    Some(rlhf_transformer::ScalarHeads {
                        weight: rlhf_tensor::Tensor::randn(
                            [1, 8],
                            0.3,
                            &mut rng,
                            rlhf_tensor::Device::Cpu,
                        )
                        .unwrap(),
                        bias: rlhf_tensor::Tensor::randn(
                            [1],
                            0.3,
                            &mut rng,
                            rlhf_tensor::Device::Cpu,
                        )
                        .unwrap(),
                    })
                });
                Some(c)
            }
            CriticKind::Shared => {
                let mut rng = Rng::new(4);
                policy.params.score = Some(rlhf_transformer::ScalarHeads {
                    weight: rlhf_tensor::Tensor::randn(
                        [1, 8],
                        0.3,
                        &mut rng,
                        rlhf_tensor::Device::Cpu,
                    )
                    .unwrap(),
                    bias: rlhf_tensor::Tensor::randn([1], 0.3, &mut rng, rlhf_tensor::Device::Cpu)
                        .unwrap(),
                });
                None
            }
        };
        let out = rollout(&policy, critic.as_ref());
        let r = out.sequences.response_len;
        let mut adv = compute_advantages(
            &out.logp,
            &out.ref_logp,
            &out.values,
            &out.scores,
            &out.mask,
            r,
            0.05,
            &config(),
        )
        .unwrap();
        // Where the old value is 0.5 above the current one, put the return 1 below the current
        // one, so that the clipped value error is the larger one there.
        for (i, ret) in adv.returns.iter_mut().enumerate() {
            if i % 3 == 1 {
                *ret = out.values[i] - 1.5;
            }
        }
        let data = (out, adv);
        // Analytic gradients.
        let mut pg = policy.params.zeros_like().unwrap();
        let mut cg = critic.as_ref().map(|c| c.params.zeros_like().unwrap());
        let grads = Grads {
            policy: &mut pg,
            critic: cg.as_mut(),
        };
        let loss = ppo_micro_batch(
            &policy,
            critic.as_ref(),
            &data.0,
            &data.1,
            &ROWS,
            &config(),
            1.0,
            grads,
        )
        .unwrap();
        ptx_micro_batch(&policy, &ptx, &config(), PAD, 1.0, &mut pg).unwrap();
        assert!(
            loss.policy.clipfrac > 0.0 && loss.policy.clipfrac < 1.0,
            "both policy branches: {}",
            loss.policy.clipfrac
        );
        assert!(
            loss.value.clipfrac > 0.0 && loss.value.clipfrac < 1.0,
            "both value branches: {}",
            loss.value.clipfrac
        );
        check(
            &policy,
            &pg,
            |p| total_loss(p, critic.as_ref(), &data, &ptx),
            &format!("{kind:?} policy"),
        );
        if let (Some(c), Some(g)) = (&critic, &cg) {
            check(
                c,
                g,
                |c| total_loss(&policy, Some(c), &data, &ptx),
                "critic",
            );
        }
    }
}

/// The device path (per-token values, losses and gradients on the models' device; what a GPU
/// runs) against the host path, both on the CPU: the same losses and gradients to f32 rounding.
#[test]
fn device_path_equals_host_path() {
    let policy = tiny_model(11, 0.3);
    let mut critic = tiny_model(12, 0.3);
    let mut rng = Rng::new(4);
    critic.params.score = Some(rlhf_transformer::ScalarHeads {
        weight: rlhf_tensor::Tensor::randn([1, 8], 0.3, &mut rng, rlhf_tensor::Device::Cpu)
            .unwrap(),
        bias: rlhf_tensor::Tensor::randn([1], 0.3, &mut rng, rlhf_tensor::Device::Cpu).unwrap(),
    });
    let out = rollout(&policy, Some(&critic));
    let r = out.sequences.response_len;
    let adv = compute_advantages(
        &out.logp,
        &out.ref_logp,
        &out.values,
        &out.scores,
        &out.mask,
        r,
        0.05,
        &config(),
    )
    .unwrap();
    let run = |device_path: bool| {
        let mut pg = policy.params.zeros_like().unwrap();
        let mut cg = critic.params.zeros_like().unwrap();
        let grads = Grads {
            policy: &mut pg,
            critic: Some(&mut cg),
        };
        let f = if device_path {
            ppo_micro_batch_on_device
        } else {
            ppo_micro_batch
        };
        let loss = f(
            &policy,
            Some(&critic),
            &out,
            &adv,
            &ROWS,
            &config(),
            0.5,
            grads,
        )
        .unwrap();
        (loss, pg, cg)
    };
    let (host, host_pg, host_cg) = run(false);
    let (device, device_pg, device_cg) = run(true);
    let stats = |l: &rlhf_ppo::loss::MicroLoss| {
        [
            f64::from(l.policy.loss),
            f64::from(l.policy.clipfrac),
            f64::from(l.policy.approxkl),
            f64::from(l.value.loss),
            f64::from(l.value.clipfrac),
            f64::from(l.entropy_mean),
            l.total,
        ]
    };
    assert_close("losses", &stats(&device), &stats(&host), 1e-5, 1e-6);
    for (a, b) in [(&device_pg, &host_pg), (&device_cg, &host_cg)] {
        for ((name, x), (_, y)) in a.named().into_iter().zip(b.named()) {
            let (x, y): (Vec<f64>, Vec<f64>) = (
                x.to_vec_f32().iter().map(|&v| f64::from(v)).collect(),
                y.to_vec_f32().iter().map(|&v| f64::from(v)).collect(),
            );
            assert_close(&format!("grad {name}"), &x, &y, 1e-4, 1e-6);
        }
    }
}
