//! Batch metrics of a reward model on preference pairs: pairwise accuracy, mean margin and the
//! expected calibration error (ECE) of the Bradley–Terry probability sigmoid(r_c - r_r).
//!
//! Outcomes say, per pair, whether the `chosen` response really is the better one (against
//! ground truth, or another rater); without them every outcome is "yes", as for labelled
//! training data. A tie r_c = r_r counts as half right.
//!
//! ECE: the probabilities fall into `bins` equal-width bins over [0, 1] (the last one closed;
//! [`DEFAULT_ECE_BINS`] = 10); ECE = sum over bins of (n_b / N) |mean p_b - mean outcome_b|.

use rlhf_tensor::Float;
use serde::{Deserialize, Serialize};

use crate::numerics::sigmoid;
use crate::pairwise::check_pairs;
use crate::{Result, check};

/// The number of equal-width bins the ECE uses unless told otherwise.
pub const DEFAULT_ECE_BINS: usize = 10;

/// One bin of a reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// The bin's lower edge.
    pub lower: f64,
    /// The bin's upper edge.
    pub upper: f64,
    /// How many probabilities fell into it.
    pub count: usize,
    /// Their mean (the model's confidence); 0 for an empty bin.
    pub mean_probability: f64,
    /// The share of positive outcomes among them; 0 for an empty bin.
    pub outcome_rate: f64,
}

/// Pairwise accuracy, margin and calibration of a batch of pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairwiseMetrics {
    /// Share of pairs ordered as the outcome says (ties count 1/2).
    pub accuracy: f64,
    /// Mean of r_c - r_r.
    pub mean_margin: f64,
    /// Expected calibration error of sigmoid(r_c - r_r) against the outcomes.
    pub ece: f64,
    /// The number of pairs.
    pub pairs: usize,
    /// The reliability diagram behind the ECE.
    pub bins: Vec<CalibrationBin>,
}

/// Metrics of N pairs of chosen (N) and rejected (N) rewards, against `outcomes` (N; true when
/// chosen really is better; all true when absent), with `bins` calibration bins.
///
/// ```
/// use rlhf_reward::{pairwise_metrics, DEFAULT_ECE_BINS};
/// let m = pairwise_metrics(&[2.0f64, 0.0], &[1.0, 1.0], None, DEFAULT_ECE_BINS)?;
/// assert_eq!((m.accuracy, m.mean_margin), (0.5, 0.0));
/// # Ok::<(), rlhf_reward::RewardError>(())
/// ```
pub fn pairwise_metrics<T: Float>(
    chosen: &[T],
    rejected: &[T],
    outcomes: Option<&[bool]>,
    bins: usize,
) -> Result<PairwiseMetrics> {
    let op = "pairwise_metrics";
    let n = check_pairs(op, chosen, rejected)?;
    if let Some(outcomes) = outcomes {
        check::len(op, "outcomes", outcomes.len(), n)?;
    }
    let outcome = |i: usize| outcomes.is_none_or(|o| o[i]);
    let margins: Vec<f64> = chosen
        .iter()
        .zip(rejected)
        .map(|(&c, &r)| check::as_f64(c - r))
        .collect();
    let correct: f64 = margins
        .iter()
        .enumerate()
        .map(|(i, &m)| match (m > 0.0, m < 0.0) {
            (false, false) => 0.5,
            (better, _) => f64::from(u8::from(better == outcome(i))),
        })
        .sum();
    let probabilities: Vec<f64> = margins.iter().map(|&m| sigmoid(m)).collect();
    let labels: Vec<bool> = (0..n).map(outcome).collect();
    let reliability = calibration_bins(&probabilities, &labels, bins)?;
    Ok(PairwiseMetrics {
        accuracy: correct / n as f64,
        mean_margin: margins.iter().sum::<f64>() / n as f64,
        ece: ece_of(&reliability, n),
        pairs: n,
        bins: reliability,
    })
}

/// The expected calibration error of probabilities (N, in [0, 1]) against outcomes (N) with
/// `bins` equal-width bins.
pub fn expected_calibration_error(
    probabilities: &[f64],
    outcomes: &[bool],
    bins: usize,
) -> Result<f64> {
    let reliability = calibration_bins(probabilities, outcomes, bins)?;
    Ok(ece_of(&reliability, probabilities.len()))
}

/// The reliability diagram: probabilities (N, in [0, 1]) binned into `bins` equal-width bins
/// with each bin's mean probability and outcome rate.
pub fn calibration_bins(
    probabilities: &[f64],
    outcomes: &[bool],
    bins: usize,
) -> Result<Vec<CalibrationBin>> {
    let op = "calibration_bins";
    check::len(op, "outcomes", outcomes.len(), probabilities.len())?;
    check::scalar(op, "bins", bins as f64, bins > 0, "at least 1")?;
    check::each(
        op,
        "probabilities",
        probabilities,
        |p| (0.0..=1.0).contains(&p),
        "in [0, 1]",
    )?;
    let mut sums = vec![(0usize, 0.0f64, 0usize); bins];
    for (&p, &o) in probabilities.iter().zip(outcomes) {
        // p = 1 belongs to the last bin; p is checked to lie in [0, 1] above.
        let b = ((p * bins as f64) as usize).min(bins - 1);
        sums[b].0 += 1;
        sums[b].1 += p;
        sums[b].2 += usize::from(o);
    }
    Ok(sums
        .iter()
        .enumerate()
        .map(|(b, &(count, p_sum, positives))| {
            let per = |x: f64| if count == 0 { 0.0 } else { x / count as f64 };
            CalibrationBin {
                lower: b as f64 / bins as f64,
                upper: (b + 1) as f64 / bins as f64,
                count,
                mean_probability: per(p_sum),
                outcome_rate: per(positives as f64),
            }
        })
        .collect())
}

fn ece_of(bins: &[CalibrationBin], n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    bins.iter()
        .map(|b| b.count as f64 / n as f64 * (b.mean_probability - b.outcome_rate).abs())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn metrics_by_hand() {
        // Margins: ln 3 (p = 0.75), 0 (p = 0.5, a tie), -ln 3 (p = 0.25), ln 9 (p = 0.9).
        // Outcomes all true: correct 1 + 0.5 + 0 + 1 = 2.5 of 4 = 0.625.
        // mean margin (ln 3 - ln 3 + 0 + ln 9) / 4 = ln 9 / 4.
        // Bins of 0.1: p .25 -> bin 2, .5 -> bin 5, .75 -> bin 7, .9 -> bin 9: each alone, outcome 1.
        // ECE = (0.75 + 0.5 + 0.25 + 0.1) / 4 = 1.6 / 4 = 0.4.
        let l3 = 3f64.ln();
        let chosen = [l3, 0.0, 0.0, 9f64.ln()];
        let rejected = [0.0, 0.0, l3, 0.0];
        let m = pairwise_metrics(&chosen, &rejected, None, 10).unwrap();
        assert_eq!(m.accuracy, 0.625);
        assert!((m.mean_margin - 9f64.ln() / 4.0).abs() < 1e-15);
        assert!((m.ece - 0.4).abs() < 1e-12, "{}", m.ece);
        assert_eq!(
            m.bins.iter().map(|b| b.count).collect::<Vec<_>>(),
            vec![0, 0, 1, 0, 0, 1, 0, 1, 0, 1]
        );
        // With outcomes [true, true, false, false]: pair 3 (margin -ln 3) is now right, pair 4 wrong.
        // Correct 1 + 0.5 + 1 + 0 = 2.5 -> 0.625; ECE (0.25 + 0.5 + 0.25 + 0.9) / 4 = 0.475.
        let m =
            pairwise_metrics(&chosen, &rejected, Some(&[true, true, false, false]), 10).unwrap();
        assert_eq!(m.accuracy, 0.625);
        assert!((m.ece - 0.475).abs() < 1e-12, "{}", m.ece);
        // Two bins: [0.25 (false), 0.5? no: 0.5 goes to bin 1] -> bin 0: {0.25, out 0};
        // bin 1: {0.5 t, 0.75 t, 0.9 f}: mean p 2.15/3, rate 2/3 -> |0.716667 - 0.666667| = 0.05.
        // ECE = 1/4 * 0.25 + 3/4 * 0.05 = 0.0625 + 0.0375 = 0.1.
        let ece =
            expected_calibration_error(&[0.75, 0.5, 0.25, 0.9], &[true, true, false, false], 2)
                .unwrap();
        assert!((ece - 0.1).abs() < 1e-12, "{ece}");
        assert!(expected_calibration_error(&[1.5], &[true], 10).is_err());
        assert!(expected_calibration_error(&[0.5], &[true], 0).is_err());
        assert!(pairwise_metrics(&[1.0], &[0.0], Some(&[]), 10).is_err());
    }

    proptest! {
        #[test]
        fn ece_is_a_weighted_mean_gap_in_zero_one(
            items in prop::collection::vec((0.0f64..=1.0, any::<bool>()), 1..100),
            bins in 1usize..20,
        ) {
            let p: Vec<f64> = items.iter().map(|x| x.0).collect();
            let o: Vec<bool> = items.iter().map(|x| x.1).collect();
            let ece = expected_calibration_error(&p, &o, bins).unwrap();
            prop_assert!((0.0..=1.0).contains(&ece));
            // One bin: |mean p - mean outcome|.
            let one = expected_calibration_error(&p, &o, 1).unwrap();
            let n = p.len() as f64;
            let gap = (p.iter().sum::<f64>() / n - o.iter().filter(|&&x| x).count() as f64 / n).abs();
            prop_assert!((one - gap).abs() < 1e-12);
            let counts: usize = calibration_bins(&p, &o, bins).unwrap().iter().map(|b| b.count).sum();
            prop_assert_eq!(counts, p.len());
        }
    }
}
