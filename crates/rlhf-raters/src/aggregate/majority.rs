//! Majority vote. Posteriors are vote shares; the label is the most voted category, a tie going
//! to the first tied category in domain order (numeric order for numbers, else lexical); gold
//! items take their gold label. Rater skill: share of the rater's labels equal to the result.

use crate::aggregate::Aggregation;
use crate::labels::{Gold, LabelSet};

/// Majority vote with the deterministic tie rule above.
pub fn majority_vote(set: &LabelSet, gold: Option<&Gold>) -> Aggregation {
    let k = set.n_categories();
    let n = set.n_items();
    let mut posteriors = vec![0.0; n * k]; // (n_items, K)
    for i in 0..n {
        let (_, labels) = set.item(i);
        let row = &mut posteriors[i * k..(i + 1) * k];
        match gold.and_then(|g| g.get(i as u32)) {
            Some(truth) => row[truth as usize] = 1.0,
            None => {
                for &l in labels {
                    row[l as usize] += 1.0 / labels.len() as f64;
                }
            }
        }
    }
    let labels = super::argmax_rows(&posteriors, k);
    let mut agree = vec![0.0; set.n_raters()];
    let mut total = vec![0.0; set.n_raters()];
    for (i, &chosen) in labels.iter().enumerate() {
        let (raters, given) = set.item(i);
        for (&r, &l) in raters.iter().zip(given) {
            total[r as usize] += 1.0;
            agree[r as usize] += f64::from(u8::from(l == chosen));
        }
    }
    let mut priors = vec![0.0; k];
    for &l in &labels {
        priors[l as usize] += 1.0 / n as f64;
    }
    Aggregation {
        method: "majority".into(),
        k,
        posteriors,
        labels,
        rater_skill: agree
            .iter()
            .zip(&total)
            .map(|(a, t)| if *t > 0.0 { a / t } else { 0.0 })
            .collect(),
        skill_meaning: "share of the rater's labels equal to the majority label".into(),
        confusion: None,
        item_difficulty: None,
        class_priors: priors,
        log_likelihood: None,
        iterations: 0,
        converged: true,
    }
}
