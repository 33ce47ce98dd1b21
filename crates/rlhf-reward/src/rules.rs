//! The rule-violation auxiliary loss (Sparrow, Glaese et al. 2022): a binary head per rule
//! predicts whether a response breaks that rule, trained with binary cross-entropy beside the
//! preference loss and weighted against it.
//!
//! Per labelled entry, with logit x and label y in [0, 1] (1 = violated; a fraction for
//! aggregated votes): l = max(x, 0) - x y + ln(1 + e^-|x|), the with-logits form that never
//! takes the log of 0; dl/dx = sigmoid(x) - y. The loss is weight * the mean over the labelled
//! entries (a rule a rater did not judge is masked out).

use rlhf_tensor::Float;

use crate::numerics::softplus_and_sigmoid;
use crate::{Result, RewardError, check};

/// The weighted rule-violation loss and its gradient with respect to the logits.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleLoss<T> {
    /// weight * mean binary cross-entropy over the labelled entries.
    pub loss: T,
    /// d loss / d logits; 0 at unlabelled entries. (N, R)
    pub grad_logits: Vec<T>,
    /// The number of labelled entries averaged over.
    pub labelled: usize,
}

/// The rule-violation loss of logits (N, R) against labels (N, R) in [0, 1], with an optional
/// 0/1 mask (N, R) of labelled entries, times `weight` (>= 0).
///
/// ```
/// use rlhf_reward::rule_violation_loss;
/// // Logit 0 against a violation: ln 2; gradient sigmoid(0) - 1 = -0.5, times weight 0.5.
/// let out = rule_violation_loss(&[0.0f64], &[1.0], None, 0.5)?;
/// assert!((out.loss - 0.5 * 2f64.ln()).abs() < 1e-15);
/// assert_eq!(out.grad_logits, vec![-0.25]);
/// # Ok::<(), rlhf_reward::RewardError>(())
/// ```
pub fn rule_violation_loss<T: Float>(
    logits: &[T],
    labels: &[T],
    labelled: Option<&[T]>,
    weight: f64,
) -> Result<RuleLoss<T>> {
    let op = "rule_violation_loss";
    check::len(op, "labels", labels.len(), logits.len())?;
    check::scalar(
        op,
        "weight",
        weight,
        weight >= 0.0 && weight.is_finite(),
        "finite and >= 0",
    )?;
    check::each(
        op,
        "labels",
        labels,
        |y| y >= T::zero() && y <= T::one(),
        "in [0, 1]",
    )?;
    if let Some(mask) = labelled {
        check::len(op, "labelled", mask.len(), logits.len())?;
        check::each(
            op,
            "labelled",
            mask,
            |m| m == T::zero() || m == T::one(),
            "0 or 1",
        )?;
    }
    let mut total = T::zero();
    let mut count = 0usize;
    // Gradients are scaled by weight / count once the count is known.
    let mut grad_logits = vec![T::zero(); logits.len()];
    for (i, g) in grad_logits.iter_mut().enumerate() {
        if labelled.is_some_and(|m| m[i] == T::zero()) {
            continue;
        }
        let (x, y) = (logits[i], labels[i]);
        if !x.is_finite() {
            return Err(RewardError::OutOfRange {
                op,
                field: "logits",
                at: format!(" element {i}"),
                value: check::as_f64(x),
                expected: "finite",
            });
        }
        // max(x, 0) - x y + ln(1 + e^-|x|) = softplus(x) - x y.
        let (value, probability) = softplus_and_sigmoid(x);
        total = total + value - x * y;
        *g = probability - y;
        count += 1;
    }
    if count == 0 {
        return Err(RewardError::Empty {
            op,
            what: "no entry is labelled".into(),
        });
    }
    let scale = T::c(weight) / T::c(count as f64);
    for g in &mut grad_logits {
        *g = *g * scale;
    }
    Ok(RuleLoss {
        loss: total * scale,
        grad_logits,
        labelled: count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rlhf_tensor::testing::{assert_close, numerical_gradient};

    #[test]
    fn rule_loss_by_hand() {
        // Two responses x two rules; entry (1, 0) unlabelled. weight 2.
        // (0,0): x = 2, y = 1: softplus(2) - 2 = ln(1 + e^-2) = 0.12692801104297263; grad s(2)-1.
        // (0,1): x = -1, y = 0: softplus(-1) = 0.31326168751822286; grad s(-1).
        // (1,1): x = 0, y = 0.5 (soft label): ln 2 - 0 = 0.6931471805599453; grad 0.
        // loss = 2 * (0.12692801104297263 + 0.31326168751822286 + 0.6931471805599453) / 3.
        let logits = [2.0, -1.0, 50.0, 0.0];
        let labels = [1.0, 0.0, 0.0, 0.5];
        let mask = [1.0, 1.0, 0.0, 1.0];
        let out = rule_violation_loss(&logits, &labels, Some(&mask), 2.0).unwrap();
        let expected =
            2.0 * (0.12692801104297263 + 0.31326168751822286 + std::f64::consts::LN_2) / 3.0;
        assert_close("loss", &[out.loss], &[expected], 1e-14, 0.0);
        let s2 = 0.8807970779778823; // sigmoid(2)
        let s_1 = 0.2689414213699951; // sigmoid(-1)
        assert_close(
            "grad",
            &out.grad_logits,
            &[2.0 * (s2 - 1.0) / 3.0, 2.0 * s_1 / 3.0, 0.0, 0.0],
            1e-14,
            1e-17,
        );
        assert_eq!(out.labelled, 3);
        // Extreme logits stay finite: x = -500 against y = 1 costs 500.
        assert_eq!(
            rule_violation_loss(&[-500.0], &[1.0], None, 1.0)
                .unwrap()
                .loss,
            500.0
        );
        assert!(rule_violation_loss(&[0.0], &[1.5], None, 1.0).is_err());
        // A NaN logit at an unlabelled entry is ignored; at a labelled one it is refused.
        assert!(rule_violation_loss(&[f64::NAN, 0.0], &[0.0, 1.0], Some(&[0.0, 1.0]), 1.0).is_ok());
        let message = rule_violation_loss(&[0.0, f64::NAN], &[0.0, 1.0], None, 1.0)
            .unwrap_err()
            .to_string();
        assert!(message.contains("`logits` element 1 is NaN"), "{message}");
        assert!(rule_violation_loss(&[0.0], &[1.0], Some(&[0.0]), 1.0).is_err());
        assert!(rule_violation_loss(&[0.0], &[1.0], None, -1.0).is_err());
    }

    proptest! {
        #[test]
        fn gradient_matches_finite_differences(
            entries in prop::collection::vec((-8.0f64..8.0, 0.0f64..=1.0, prop::bool::weighted(0.8)), 1..40),
            weight in 0.0f64..3.0,
        ) {
            let logits: Vec<f64> = entries.iter().map(|e| e.0).collect();
            let labels: Vec<f64> = entries.iter().map(|e| e.1).collect();
            let mask: Vec<f64> = entries.iter().map(|e| if e.2 { 1.0 } else { 0.0 }).collect();
            prop_assume!(mask.contains(&1.0));
            let out = rule_violation_loss(&logits, &labels, Some(&mask), weight).unwrap();
            let numeric = numerical_gradient(|x| rule_violation_loss(x, &labels, Some(&mask), weight).unwrap().loss, &logits, 1e-6);
            assert_close("rule grad", &out.grad_logits, &numeric, 1e-6, 1e-7);
            prop_assert!(out.loss >= 0.0);
        }
    }
}
