//! Online Elo over comparisons in input order (as in FastChat's `compute_elo`):
//! `E_l = 1 / (1 + base^((R_r - R_l) / scale))`, `R_l += K (S_l - E_l)`,
//! `R_r += K ((1 - S_l) - E_r)`, both from the pre-game ratings; new items start at `initial`.
//! Order-dependent by definition.

use serde::{Deserialize, Serialize};

use crate::pairs::Game;

/// Elo parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EloConfig {
    /// Update step `K`.
    pub k: f64,
    /// Logistic base (10).
    pub base: f64,
    /// Scale (400).
    pub scale: f64,
    /// Rating of an unseen item (1000).
    pub initial: f64,
}

impl Default for EloConfig {
    fn default() -> Self {
        EloConfig {
            k: 4.0,
            base: 10.0,
            scale: 400.0,
            initial: 1000.0,
        }
    }
}

/// Final Elo ratings of `n_items` items after playing `games` in order.
///
/// ```
/// use rlhf_raters::ranking::elo::{elo_ratings, EloConfig};
/// use rlhf_raters::{Game, Outcome};
/// let games = [Game { left: 0, right: 1, outcome: Outcome::Left, rater: None }];
/// let r = elo_ratings(2, games.iter(), &EloConfig { k: 32.0, ..EloConfig::default() });
/// assert!((r[0] - 1016.0).abs() < 1e-9 && (r[1] - 984.0).abs() < 1e-9);
/// ```
pub fn elo_ratings<'a>(
    n_items: usize,
    games: impl IntoIterator<Item = &'a Game>,
    config: &EloConfig,
) -> Vec<f64> {
    let mut rating = vec![config.initial; n_items];
    for g in games {
        let (l, r) = (g.left as usize, g.right as usize);
        let (rl, rr) = (rating[l], rating[r]);
        let expected_left = 1.0 / (1.0 + config.base.powf((rr - rl) / config.scale));
        let expected_right = 1.0 / (1.0 + config.base.powf((rl - rr) / config.scale));
        let score = g.outcome.left_score();
        rating[l] = rl + config.k * (score - expected_left);
        rating[r] = rr + config.k * ((1.0 - score) - expected_right);
    }
    rating
}
