//! Aggregation of labels into one label per item, with rater skill. Parts:
//! - [`majority`]: majority vote (ties go to the first category in domain order);
//! - [`em`]: Dawid–Skene (full confusion matrices), one-coin Dawid–Skene, and MACE, one EM
//!   engine over per-rater emission tables;
//! - [`glad`]: GLAD (rater expertise x item difficulty).
//!
//! Every method returns an [`Aggregation`]: item posteriors, chosen labels (argmax, ties to the
//! first category), rater skills, and the EM diagnostics.

pub mod em;
pub mod glad;
pub mod majority;

use serde::{Deserialize, Serialize};

use crate::labels::LabelSet;

/// Settings shared by the iterative methods.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EmConfig {
    /// Iterations at most.
    pub max_iterations: usize,
    /// Stop when the log-likelihood per label improves by less than this.
    pub tolerance: f64,
    /// Additive (Laplace) smoothing of every estimated count.
    pub smoothing: f64,
    /// Clamp items with gold labels to their gold class.
    pub clamp_gold: bool,
}

impl Default for EmConfig {
    fn default() -> Self {
        EmConfig {
            max_iterations: 100,
            tolerance: 1e-5,
            smoothing: 0.01,
            clamp_gold: true,
        }
    }
}

/// The result of an aggregation method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregation {
    /// Method name (`majority`, `dawid_skene`, `one_coin`, `glad`, `mace`).
    pub method: String,
    /// Number of categories `K`.
    pub k: usize,
    /// (n_items, K) posterior probability of each class, row-major.
    pub posteriors: Vec<f64>,
    /// (n_items) chosen category ids.
    pub labels: Vec<u32>,
    /// (n_raters) one skill number per rater; its meaning is given by `skill_meaning`.
    pub rater_skill: Vec<f64>,
    /// What `rater_skill` measures for this method.
    pub skill_meaning: String,
    /// (n_raters, K, K) confusion matrices `P(label = l | truth = k)` (Dawid–Skene only).
    pub confusion: Option<Vec<f64>>,
    /// (n_items) item difficulty `beta` (GLAD only; larger = easier).
    pub item_difficulty: Option<Vec<f64>>,
    /// (K) class priors.
    pub class_priors: Vec<f64>,
    /// Final log-likelihood (EM methods).
    pub log_likelihood: Option<f64>,
    /// Iterations run.
    pub iterations: usize,
    /// Whether the tolerance was reached.
    pub converged: bool,
}

impl Aggregation {
    /// The posterior row of `item` (K).
    pub fn posterior(&self, item: usize) -> &[f64] {
        &self.posteriors[item * self.k..(item + 1) * self.k]
    }
}

/// Argmax of each posterior row; ties go to the lowest category id.
pub(crate) fn argmax_rows(posteriors: &[f64], k: usize) -> Vec<u32> {
    posteriors
        .chunks(k)
        .map(|row| {
            let mut best = 0;
            for c in 1..k {
                if row[c] > row[best] {
                    best = c;
                }
            }
            best as u32
        })
        .collect()
}

/// Aggregation method selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Majority vote.
    Majority,
    /// Dawid–Skene.
    DawidSkene,
    /// One-coin Dawid–Skene.
    OneCoin,
    /// GLAD.
    Glad,
    /// MACE.
    Mace,
}

/// Runs `method` on `set` (with optional gold clamping).
///
/// ```
/// use rlhf_raters::{LabelSet, aggregate::{aggregate, EmConfig, Method}};
/// let set = LabelSet::from_matrix(&[
///     vec![Some("x"), Some("x"), Some("y")],
///     vec![Some("y"), Some("y"), Some("y")],
/// ]).unwrap();
/// let a = aggregate(&set, None, Method::DawidSkene, &EmConfig::default()).unwrap();
/// assert_eq!(a.labels, vec![0, 1]);
/// ```
pub fn aggregate(
    set: &LabelSet,
    gold: Option<&crate::labels::Gold>,
    method: Method,
    config: &EmConfig,
) -> crate::error::Result<Aggregation> {
    if set.n_categories() < 2 {
        return Err(crate::error::RatersError::Invalid(
            "aggregation needs at least two categories".into(),
        ));
    }
    let gold = if config.clamp_gold { gold } else { None };
    Ok(match method {
        Method::Majority => majority::majority_vote(set, gold),
        Method::DawidSkene => em::run(set, gold, em::Model::DawidSkene, config),
        Method::OneCoin => em::run(set, gold, em::Model::OneCoin, config),
        Method::Mace => em::run(set, gold, em::Model::Mace, config),
        Method::Glad => glad::glad(set, gold, config),
    })
}
