//! The losses drive learning: per-item scores fitted by gradient descent on Bradley–Terry
//! comparisons sampled from known utilities recover the utilities' order, and the fitted
//! probabilities sigmoid(s_i - s_j) are calibrated on fresh comparisons (small ECE), while a
//! deliberately overconfident copy (scores times 4) is not.

use rlhf_reward::{bradley_terry_loss, pairwise_metrics};
use rlhf_tensor::Rng;

const ITEMS: usize = 12;

fn utility(item: usize) -> f64 {
    item as f64 * 0.3 - 1.5
}

/// Comparisons (winner, loser) drawn with P(i beats j) = sigmoid(u_i - u_j).
fn comparisons(n: usize, rng: &mut Rng) -> Vec<(usize, usize)> {
    (0..n)
        .map(|_| {
            let i = rng.below(ITEMS);
            let j = (i + 1 + rng.below(ITEMS - 1)) % ITEMS;
            let p = 1.0 / (1.0 + (utility(j) - utility(i)).exp());
            if rng.uniform_f64() < p {
                (i, j)
            } else {
                (j, i)
            }
        })
        .collect()
}

#[test]
fn fitted_scores_rank_and_calibrate() {
    let mut rng = Rng::new(11);
    let train = comparisons(6_000, &mut rng);
    let mut scores = vec![0.0f64; ITEMS];
    for _ in 0..400 {
        let chosen: Vec<f64> = train.iter().map(|&(w, _)| scores[w]).collect();
        let rejected: Vec<f64> = train.iter().map(|&(_, l)| scores[l]).collect();
        let loss = bradley_terry_loss(&chosen, &rejected, None).unwrap();
        let mut grad = vec![0.0; ITEMS];
        for (p, &(w, l)) in train.iter().enumerate() {
            grad[w] += loss.grad_chosen[p];
            grad[l] += loss.grad_rejected[p];
        }
        for (s, g) in scores.iter_mut().zip(&grad) {
            *s -= 20.0 * g;
        }
    }
    // The order of the fitted scores is the order of the utilities.
    let mut order: Vec<usize> = (0..ITEMS).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    assert_eq!(order, (0..ITEMS).collect::<Vec<_>>(), "scores {scores:?}");

    // Fresh comparisons, presented as (first, second) with the outcome "first won".
    let test = comparisons(20_000, &mut rng);
    let first: Vec<f64> = test.iter().map(|&(w, l)| scores[w.min(l)]).collect();
    let second: Vec<f64> = test.iter().map(|&(w, l)| scores[w.max(l)]).collect();
    let outcomes: Vec<bool> = test.iter().map(|&(w, l)| w < l).collect();
    let fitted = pairwise_metrics(&first, &second, Some(&outcomes), 10).unwrap();
    assert!(fitted.ece < 0.03, "fitted ECE {}", fitted.ece);
    let loud: (Vec<f64>, Vec<f64>) = (
        first.iter().map(|s| 4.0 * s).collect(),
        second.iter().map(|s| 4.0 * s).collect(),
    );
    let overconfident = pairwise_metrics(&loud.0, &loud.1, Some(&outcomes), 10).unwrap();
    assert!(
        overconfident.ece > 0.1,
        "overconfident ECE {}",
        overconfident.ece
    );
    // Same order, so the same accuracy.
    assert_eq!(fitted.accuracy, overconfident.accuracy);
}
