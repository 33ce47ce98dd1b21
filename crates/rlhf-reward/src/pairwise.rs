//! Pairwise preference losses over a batch of (chosen, rejected) reward pairs, averaged over
//! the pairs, with gradients with respect to both rewards.
//!
//! - Bradley–Terry: -log sigmoid(r_c - r_r) = softplus(-(r_c - r_r)).
//! - With a margin (Llama 2): -log sigmoid(r_c - r_r - m), m per pair from the data; a larger m
//!   asks for a wider gap between clearly separated responses.
//! - Centering (TRL's `center_rewards_coefficient`): c * mean((r_c + r_r)²), which keeps the
//!   rewards' scale anchored near 0 since the preference loss only sees differences.
//!
//! With d = r_c - r_r - m and n pairs: dL/dr_c = -sigmoid(-d) / n and dL/dr_r = +sigmoid(-d) / n.

use rlhf_tensor::Float;

use crate::numerics::softplus_and_sigmoid;
use crate::{Result, RewardError, check};

/// A loss over pairs and its gradient with respect to the chosen and rejected rewards.
#[derive(Debug, Clone, PartialEq)]
pub struct PairwiseLoss<T> {
    /// The loss, averaged over the pairs.
    pub loss: T,
    /// d loss / d r_chosen. (N)
    pub grad_chosen: Vec<T>,
    /// d loss / d r_rejected. (N)
    pub grad_rejected: Vec<T>,
}

impl<T: Float> PairwiseLoss<T> {
    /// Adds another loss over the same pairs (e.g. the centering term) to this one.
    pub fn add(&mut self, other: &PairwiseLoss<T>) -> Result<()> {
        let op = "PairwiseLoss::add";
        check::len(
            op,
            "other.grad_chosen",
            other.grad_chosen.len(),
            self.grad_chosen.len(),
        )?;
        check::len(
            op,
            "other.grad_rejected",
            other.grad_rejected.len(),
            self.grad_rejected.len(),
        )?;
        self.loss = self.loss + other.loss;
        for (g, &o) in self.grad_chosen.iter_mut().zip(&other.grad_chosen) {
            *g = *g + o;
        }
        for (g, &o) in self.grad_rejected.iter_mut().zip(&other.grad_rejected) {
            *g = *g + o;
        }
        Ok(())
    }
}

/// The Bradley–Terry loss mean(-log sigmoid(r_c - r_r - m)) over N pairs of chosen (N) and
/// rejected (N) rewards, with per-pair margins (N) when given (Llama 2), none otherwise.
///
/// ```
/// use rlhf_reward::bradley_terry_loss;
/// // Equal rewards: -log sigmoid(0) = ln 2, and the gradient pushes them apart by 1/2 each.
/// let out = bradley_terry_loss(&[1.0f64], &[1.0], None)?;
/// assert!((out.loss - 2f64.ln()).abs() < 1e-15);
/// assert_eq!((out.grad_chosen[0], out.grad_rejected[0]), (-0.5, 0.5));
/// # Ok::<(), rlhf_reward::RewardError>(())
/// ```
pub fn bradley_terry_loss<T: Float>(
    chosen: &[T],
    rejected: &[T],
    margins: Option<&[T]>,
) -> Result<PairwiseLoss<T>> {
    let op = "bradley_terry_loss";
    let n = check_pairs(op, chosen, rejected)?;
    if let Some(margins) = margins {
        check::len(op, "margins", margins.len(), n)?;
        check::each(op, "margins", margins, |m| m.is_finite(), "finite")?;
    }
    let inv_n = T::one() / T::c(n as f64);
    let mut loss = T::zero();
    let mut grad_chosen = Vec::with_capacity(n);
    for i in 0..n {
        let margin = margins.map_or(T::zero(), |m| m[i]);
        let d = chosen[i] - rejected[i] - margin;
        // -log sigmoid(d) = softplus(-d); its derivative in d is -sigmoid(-d).
        let (value, slope) = softplus_and_sigmoid(-d);
        loss = loss + value;
        grad_chosen.push(-slope * inv_n);
    }
    let grad_rejected = grad_chosen.iter().map(|&g| -g).collect();
    Ok(PairwiseLoss {
        loss: loss * inv_n,
        grad_chosen,
        grad_rejected,
    })
}

/// The centering term coef * mean((r_c + r_r)²) over N pairs (coef >= 0), with gradient
/// 2 coef (r_c + r_r) / N with respect to each reward of a pair.
pub fn centering_loss<T: Float>(
    chosen: &[T],
    rejected: &[T],
    coef: f64,
) -> Result<PairwiseLoss<T>> {
    let op = "centering_loss";
    let n = check_pairs(op, chosen, rejected)?;
    check::scalar(
        op,
        "coef",
        coef,
        coef >= 0.0 && coef.is_finite(),
        "finite and >= 0",
    )?;
    let (coef, inv_n) = (T::c(coef), T::one() / T::c(n as f64));
    let sums: Vec<T> = chosen.iter().zip(rejected).map(|(&c, &r)| c + r).collect();
    let loss = coef * sums.iter().map(|&s| s * s).sum::<T>() * inv_n;
    let grad: Vec<T> = sums.iter().map(|&s| T::c(2.0) * coef * s * inv_n).collect();
    Ok(PairwiseLoss {
        loss,
        grad_chosen: grad.clone(),
        grad_rejected: grad,
    })
}

/// Checks a batch of pairs: equal lengths, at least one pair, finite rewards. Returns N.
pub(crate) fn check_pairs<T: Float>(
    op: &'static str,
    chosen: &[T],
    rejected: &[T],
) -> Result<usize> {
    check::len(op, "rejected", rejected.len(), chosen.len())?;
    if chosen.is_empty() {
        return Err(RewardError::Empty {
            op,
            what: "the batch holds no pair".into(),
        });
    }
    check::each(op, "chosen", chosen, |r| r.is_finite(), "a finite reward")?;
    check::each(
        op,
        "rejected",
        rejected,
        |r| r.is_finite(),
        "a finite reward",
    )?;
    Ok(chosen.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rlhf_tensor::testing::{assert_close, numerical_gradient};

    #[test]
    fn bradley_terry_by_hand() {
        // Pair 1: d = 2 - 1 = 1: softplus(-1) = ln(1 + e^-1) = 0.31326168751822286;
        //         sigmoid(-1) = 0.2689414213699951.
        // Pair 2: d = 0 - 3 = -3: softplus(3) = 3.048587351573742; sigmoid(3) = 0.9525741268224334.
        // Mean loss (0.31326168751822286 + 3.048587351573742) / 2 = 1.6809245195459824.
        let out = bradley_terry_loss(&[2.0, 0.0], &[1.0, 3.0], None).unwrap();
        assert_close("loss", &[out.loss], &[1.6809245195459824], 1e-14, 0.0);
        assert_close(
            "dc",
            &out.grad_chosen,
            &[-0.2689414213699951 / 2.0, -0.9525741268224334 / 2.0],
            1e-14,
            0.0,
        );
        assert_close(
            "dr",
            &out.grad_rejected,
            &[0.2689414213699951 / 2.0, 0.9525741268224334 / 2.0],
            1e-14,
            0.0,
        );
        // Margin 1 on pair 1 makes d = 0: softplus(0) = ln 2, sigmoid(0) = 1/2.
        let out = bradley_terry_loss(&[2.0], &[1.0], Some(&[1.0])).unwrap();
        assert_close(
            "margin",
            &[out.loss, out.grad_chosen[0]],
            &[2f64.ln(), -0.5],
            1e-15,
            0.0,
        );
        // A huge gap stays finite: d = -800, loss = 800 exactly, gradient -1.
        let out = bradley_terry_loss(&[-400.0], &[400.0], None).unwrap();
        assert_eq!((out.loss, out.grad_chosen[0]), (800.0, -1.0));
    }

    #[test]
    fn centering_by_hand_and_combined() {
        // Sums 3 and -1: coef 0.01 * (9 + 1) / 2 = 0.05; gradients 2*0.01*3/2 = 0.03, -0.01.
        let c = centering_loss(&[2.0, 0.0], &[1.0, -1.0], 0.01).unwrap();
        assert_close("center", &[c.loss], &[0.05], 1e-15, 0.0);
        assert_close("dc", &c.grad_chosen, &[0.03, -0.01], 1e-15, 0.0);
        assert_eq!(c.grad_chosen, c.grad_rejected);
        let mut total = bradley_terry_loss(&[2.0, 0.0], &[1.0, -1.0], None).unwrap();
        let bt = total.clone();
        total.add(&c).unwrap();
        assert_close("sum", &[total.loss], &[bt.loss + 0.05], 1e-15, 0.0);
        assert!(centering_loss(&[1.0], &[1.0], -0.1).is_err());
    }

    #[test]
    fn bad_batches_are_errors() {
        assert!(bradley_terry_loss::<f64>(&[], &[], None).is_err());
        assert!(bradley_terry_loss(&[1.0], &[1.0, 2.0], None).is_err());
        assert!(bradley_terry_loss(&[1.0], &[2.0], Some(&[])).is_err());
        let message = bradley_terry_loss(&[1.0, f64::NAN], &[0.0, 0.0], None)
            .unwrap_err()
            .to_string();
        assert!(message.contains("`chosen` element 1 is NaN"), "{message}");
    }

    proptest! {
        #[test]
        fn gradients_match_finite_differences(
            pairs in prop::collection::vec((-6.0f64..6.0, -6.0f64..6.0, 0.0f64..2.0), 1..32),
            with_margin in any::<bool>(),
            coef in 0.0f64..0.1,
        ) {
            let chosen: Vec<f64> = pairs.iter().map(|p| p.0).collect();
            let rejected: Vec<f64> = pairs.iter().map(|p| p.1).collect();
            let margins: Vec<f64> = pairs.iter().map(|p| p.2).collect();
            let margins = with_margin.then_some(margins.as_slice());
            let total = |c: &[f64], r: &[f64]| {
                let mut l = bradley_terry_loss(c, r, margins).unwrap();
                l.add(&centering_loss(c, r, coef).unwrap()).unwrap();
                l
            };
            let out = total(&chosen, &rejected);
            let num_c = numerical_gradient(|c| total(c, &rejected).loss, &chosen, 1e-6);
            let num_r = numerical_gradient(|r| total(&chosen, r).loss, &rejected, 1e-6);
            assert_close("d chosen", &out.grad_chosen, &num_c, 1e-6, 1e-7);
            assert_close("d rejected", &out.grad_rejected, &num_r, 1e-6, 1e-7);
            prop_assert!(out.loss >= 0.0);
        }
    }
}
