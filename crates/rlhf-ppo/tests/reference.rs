//! The PPO math against an independent implementation: values and autograd gradients printed
//! by `scripts/reference.py` (PyTorch, float64) for one (B, T) = (2, 4) rollout whose second
//! response ends after two tokens. Inputs here and there must stay identical.

use rlhf_ppo::{
    KlEstimator, KlSpec, gae, masked_whiten, penalised_rewards, per_token_kl, policy_loss,
    value_loss,
};
use rlhf_tensor::testing::assert_close;

const T: usize = 4;

#[test]
fn one_rollout_matches_pytorch() {
    let logp = [-1.2, -0.7, -2.3, -0.4, -0.9, -1.5, -3.0, -3.0];
    let ref_logp = [-1.0, -0.9, -2.0, -0.6, -1.1, -1.2, -3.0, -3.0];
    let mask = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0];
    let scores = [0.8, -0.3];
    let values = [0.1, 0.3, -0.2, 0.5, 0.0, 0.4, 9.0, 9.0];

    let spec = KlSpec {
        estimator: KlEstimator::K3,
        clamp: None,
    };
    let kl = per_token_kl(&logp, &ref_logp, &mask, spec).unwrap();
    let expected_kl = [
        0.0214027581601699,
        0.018730753077981888,
        0.04985880757600314,
        0.018730753077981888,
        0.018730753077981888,
        0.04985880757600314,
        0.0,
        0.0,
    ];
    assert_close("kl", &kl, &expected_kl, 1e-13, 1e-16);

    let rewards = penalised_rewards(&kl, &scores, &mask, T, 0.05)
        .unwrap()
        .rewards;
    let expected_rewards = [
        -0.001070137908008495,
        -0.0009365376538990945,
        -0.002492940378800157,
        0.7990634623461009,
        -0.0009365376538990945,
        -0.30249294037880015,
        0.0,
        0.0,
    ];
    assert_close("rewards", &rewards, &expected_rewards, 1e-13, 1e-16);

    let out = gae(&rewards, &values, &mask, T, 1.0, 0.95).unwrap();
    let expected_advantages = [
        0.6089498086579085,
        0.4315999437535968,
        0.9816173488499957,
        0.29906346234610093,
        -0.26830483101375924,
        -0.7024929403788002,
        0.0,
        0.0,
    ];
    let expected_returns = [
        0.7089498086579085,
        0.7315999437535967,
        0.7816173488499958,
        0.7990634623461009,
        -0.26830483101375924,
        -0.30249294037880015,
        0.0,
        0.0,
    ];
    assert_close(
        "advantages",
        &out.advantages,
        &expected_advantages,
        1e-13,
        1e-16,
    );
    assert_close("returns", &out.returns, &expected_returns, 1e-13, 1e-16);

    let whitened = masked_whiten(&out.advantages, &mask, true).unwrap();
    let expected_whitened = [
        0.6274305383997852,
        0.33756028024566836,
        1.2365386205481679,
        0.12093545168344985,
        -0.8064021234165861,
        -1.5160627674604852,
        0.0,
        0.0,
    ];
    assert_close("whitened", &whitened, &expected_whitened, 1e-12, 1e-15);

    let steps = [0.3, -0.25, 0.1, 0.05, -0.4, 0.15, 0.0, 0.0];
    let new_logp: Vec<f64> = logp.iter().zip(&steps).map(|(a, b)| a + b).collect();
    let policy = policy_loss(&new_logp, &logp, &whitened, &mask, 0.2).unwrap();
    assert_close(
        "pg_loss",
        &[policy.loss],
        &[-0.01716599799396805],
        1e-12,
        1e-15,
    );
    let expected_pg_grad = [
        0.0,
        -0.04381536843152157,
        -0.22776442041786896,
        -0.021189324146998333,
        0.0,
        0.2935689395601663,
        0.0,
        0.0,
    ];
    assert_close(
        "pg_grad",
        &policy.grad_logp,
        &expected_pg_grad,
        1e-12,
        1e-15,
    );
    assert_close("pg_clipfrac", &[policy.clipfrac], &[1.0 / 3.0], 1e-15, 0.0);

    let moves = [0.5, -0.1, 0.3, -0.05, 0.25, -0.3, 0.0, 0.0];
    let new_values: Vec<f64> = values.iter().zip(&moves).map(|(a, b)| a + b).collect();
    let value = value_loss(&new_values, &values, &out.returns, &mask, 0.2).unwrap();
    assert_close(
        "vf_loss",
        &[value.loss],
        &[0.14197903999593706],
        1e-12,
        1e-15,
    );
    let expected_vf_grad = [
        0.0,
        -0.08859999062559945,
        0.0,
        -0.05817724372435015,
        0.0863841385022932,
        0.0,
        0.0,
        0.0,
    ];
    assert_close(
        "vf_grad",
        &value.grad_values,
        &expected_vf_grad,
        1e-12,
        1e-15,
    );
}
