//! The reward losses against an independent implementation: values and autograd gradients
//! printed by `scripts/reference.py` (PyTorch, float64: TRL's RewardTrainer loss with margins
//! and centering, an itertools K-wise loss, `binary_cross_entropy_with_logits`).

use rlhf_reward::{bradley_terry_loss, centering_loss, kwise_loss_batch, rule_violation_loss};
use rlhf_tensor::testing::assert_close;

#[test]
fn bradley_terry_with_margin_and_centering_matches_pytorch() {
    let chosen = [1.3, -0.2, 0.7, 2.5, -1.0];
    let rejected = [0.4, 0.1, 0.9, -3.0, -1.5];
    let margins = [0.5, 0.0, 1.0, 2.0, 0.25];
    let mut loss = bradley_terry_loss(&chosen, &rejected, Some(&margins)).unwrap();
    loss.add(&centering_loss(&chosen, &rejected, 0.01).unwrap())
        .unwrap();
    assert_close("loss", &[loss.loss], &[0.7111885604715951], 1e-13, 0.0);
    let expected_chosen = [
        -0.0734624679775096,
        -0.11528850336233179,
        -0.14730495669980356,
        -0.007862446150271263,
        -0.09756469982284037,
    ];
    let expected_rejected = [
        0.0870624679775096,
        0.1144885033623318,
        0.16010495669980354,
        0.0038624461502712636,
        0.07756469982284038,
    ];
    assert_close(
        "d chosen",
        &loss.grad_chosen,
        &expected_chosen,
        1e-12,
        1e-16,
    );
    assert_close(
        "d rejected",
        &loss.grad_rejected,
        &expected_rejected,
        1e-12,
        1e-16,
    );
}

#[test]
fn kwise_with_ties_matches_pytorch() {
    // Prompt 0: K = 4, ranks [0, 2, 1, 2] (responses 1 and 3 tie: 5 pairs).
    // Prompt 1: K = 3, ranks [2, 0, 1] (3 pairs).
    let rewards = [0.2, -0.4, 1.1, 0.3, 1.5, 0.5, -0.7];
    let out = kwise_loss_batch(&rewards, &[0, 2, 1, 2, 2, 0, 1], &[4, 3]).unwrap();
    assert_eq!(out.pairs, 8);
    assert_close("loss", &[out.loss], &[0.9464931553596991], 1e-13, 0.0);
    let expected = [
        -0.15902723838781485,
        0.05367692175805608,
        0.021849845994626013,
        0.08350047063513276,
        0.2718846815850533,
        -0.16042229918849787,
        -0.11146238239655541,
    ];
    assert_close("grad", &out.grad, &expected, 1e-12, 1e-16);
}

#[test]
fn rule_loss_matches_pytorch() {
    let logits = [2.0, -1.0, 0.3, -0.5, 4.0, 0.0];
    let labels = [1.0, 0.0, 0.0, 1.0, 1.0, 0.25];
    let labelled = [1.0, 1.0, 0.0, 1.0, 1.0, 1.0];
    let out = rule_violation_loss(&logits, &labels, Some(&labelled), 0.7).unwrap();
    assert_close("loss", &[out.loss], &[0.29757893077066805], 1e-13, 0.0);
    let expected = [
        -0.016688409083096475,
        0.03765179899179931,
        0.0,
        -0.08714430636825964,
        -0.0025180693946928166,
        0.034999999999999996,
    ];
    assert_close("grad", &out.grad_logits, &expected, 1e-12, 1e-16);
}
