//! The PPO pieces composed with rlhf-tensor's log-prob op, end to end on a 4-armed bandit: the
//! policy is one row of logits, each PPO iteration samples a batch of arms, whitens the scores
//! into advantages and takes `num_ppo_epochs` clipped-loss gradient steps through
//! `token_logprobs_backward`. The chained gradient (clipped loss plus entropy bonus) is checked
//! against finite differences, and
//! training must put most of the probability on the best arm.

use rlhf_ppo::{entropy_bonus, policy_loss, tensors, whiten};
use rlhf_tensor::ops::logprob::{token_logprobs, token_logprobs_backward};
use rlhf_tensor::testing::{assert_close, numerical_gradient};
use rlhf_tensor::{Device, Rng, Tensor};

const ARMS: usize = 4;
const PAYOFF: [f64; ARMS] = [0.0, 1.0, 0.2, -0.5];
const ENTROPY_COEF: f64 = 0.1;

/// The batch's logits (N, ARMS): the policy's one row repeated.
fn batch_logits(params: &[f32], n: usize) -> Tensor {
    let data = (0..n).flat_map(|_| params.iter().copied()).collect();
    Tensor::from_vec(data, [n, ARMS], Device::Cpu).unwrap()
}

fn softmax(params: &[f32]) -> Vec<f64> {
    let max = params.iter().fold(f32::MIN, |a, &b| a.max(b)) as f64;
    let e: Vec<f64> = params.iter().map(|&p| (p as f64 - max).exp()).collect();
    let total: f64 = e.iter().sum();
    e.iter().map(|x| x / total).collect()
}

fn sample(probabilities: &[f64], rng: &mut Rng) -> u32 {
    let u = rng.uniform_f64();
    let mut acc = 0.0;
    for (arm, p) in probabilities.iter().enumerate() {
        acc += p;
        if u < acc {
            return arm as u32;
        }
    }
    (ARMS - 1) as u32
}

#[test]
fn chained_gradient_matches_finite_differences() {
    // loss(params) = policy_loss(logp) + entropy_bonus(entropy), both from
    // token_logprobs(batch_logits(params)); in f64 by hand-rolled
    // log-softmax for the finite differences, f32 through the ops for the analytic side.
    let params = [0.3f32, -0.2, 0.5, 0.1];
    let tokens = [1u32, 2, 1, 0, 3, 2];
    let old = [-1.5f64, -1.0, -1.2, -1.6, -1.4, -0.9];
    let advantages = [1.0f64, -0.5, 0.8, -1.2, 0.3, 0.6];
    let mask = [1.0f64; 6];
    let loss_of = |p: &[f64]| {
        let max = p.iter().fold(f64::MIN, |a, &b| a.max(b));
        let lse = max + p.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
        let logp: Vec<f64> = tokens.iter().map(|&t| p[t as usize] - lse).collect();
        // Entropy of the policy at every row (the same distribution), -sum p log p.
        let entropy: f64 = -p.iter().map(|x| (x - lse).exp() * (x - lse)).sum::<f64>();
        let entropies = vec![entropy; tokens.len()];
        policy_loss(&logp, &old, &advantages, &mask, 0.2)
            .unwrap()
            .loss
            + entropy_bonus(&entropies, &mask, ENTROPY_COEF).unwrap().loss
    };
    let p64: Vec<f64> = params.iter().map(|&x| x as f64).collect();
    let numeric = numerical_gradient(loss_of, &p64, 1e-6);

    let logits = batch_logits(&params, tokens.len());
    let out = token_logprobs(&logits, &tokens, 1.0).unwrap();
    let as_tensor = |x: &[f64]| {
        let data = x.iter().map(|&v| v as f32).collect();
        Tensor::from_vec(data, [1, x.len()], Device::Cpu).unwrap()
    };
    let logp = out.logp.reshape([1, tokens.len()]).unwrap();
    let loss = tensors::policy_loss(
        &logp,
        &as_tensor(&old),
        &as_tensor(&advantages),
        &as_tensor(&mask),
        0.2,
    )
    .unwrap();
    let d_logp = loss.grad.reshape([tokens.len()]).unwrap();
    let entropy = out.entropy.reshape([1, tokens.len()]).unwrap();
    let bonus = tensors::entropy_bonus(&entropy, &as_tensor(&mask), ENTROPY_COEF).unwrap();
    let d_entropy = bonus.grad.reshape([tokens.len()]).unwrap();
    let dlogits =
        token_logprobs_backward(&logits, &tokens, 1.0, Some(&d_logp), Some(&d_entropy)).unwrap();
    // Parameters are shared by every row: their gradient sums the rows.
    let rows = dlogits.to_vec_f32();
    let analytic: Vec<f64> = (0..ARMS)
        .map(|a| rows.chunks(ARMS).map(|row| row[a] as f64).sum())
        .collect();
    assert_close("d loss / d params", &analytic, &numeric, 1e-3, 1e-5);
}

#[test]
fn ppo_learns_the_best_arm() {
    let (batch, epochs, learning_rate) = (64, 4, 0.5f32);
    let mut params = [0.0f32; ARMS];
    let mut rng = Rng::new(7);
    for _ in 0..40 {
        let probabilities = softmax(&params);
        let tokens: Vec<u32> = (0..batch)
            .map(|_| sample(&probabilities, &mut rng))
            .collect();
        let old: Vec<f64> = tokens
            .iter()
            .map(|&t| probabilities[t as usize].ln())
            .collect();
        let scores: Vec<f64> = tokens.iter().map(|&t| PAYOFF[t as usize]).collect();
        let advantages = whiten(&scores, true).unwrap();
        let mask = vec![1.0; batch];
        for _ in 0..epochs {
            let logits = batch_logits(&params, batch);
            let logp = token_logprobs(&logits, &tokens, 1.0).unwrap().logp;
            let logp: Vec<f64> = logp.to_vec_f32().iter().map(|&x| x as f64).collect();
            let loss = policy_loss(&logp, &old, &advantages, &mask, 0.2).unwrap();
            assert!((0.0..=1.0).contains(&loss.clipfrac));
            let d_logp: Vec<f32> = loss.grad_logp.iter().map(|&g| g as f32).collect();
            let d_logp = Tensor::from_vec(d_logp, [batch], Device::Cpu).unwrap();
            let dlogits =
                token_logprobs_backward(&logits, &tokens, 1.0, Some(&d_logp), None).unwrap();
            for (a, param) in params.iter_mut().enumerate() {
                let grad: f32 = dlogits.to_vec_f32().chunks(ARMS).map(|row| row[a]).sum();
                *param -= learning_rate * grad;
            }
        }
    }
    let probabilities = softmax(&params);
    assert!(
        probabilities[1] > 0.9,
        "best arm has probability {probabilities:?}"
    );
}
