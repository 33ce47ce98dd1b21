//! Pairwise ranking. Parts:
//! - [`elo`]: online Elo in input order;
//! - [`bradley_terry`]: Bradley–Terry MLE (Newton, ties as half wins, strong-connectivity check);
//! - [`linalg`]: the Cholesky solver it uses.
//!
//! Both are reported as a [`Ranking`]: ratings on the Elo scale, optional seeded bootstrap
//! percentile intervals, and ranks by interval overlap
//! (`rank = 1 + number of items whose lower bound exceeds this item's upper bound`).

pub mod bradley_terry;
pub mod elo;
pub mod linalg;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::agreement::bootstrap::{BootstrapSpec, percentile_interval};
use crate::error::{RatersError, Result};
use crate::pairs::{Comparisons, Game, Outcome};
use crate::rng::Rng;
use bradley_terry::{
    BtConfig, PairCounts, fit, game_categories, information_factor, pair_counts, solve,
    solve_connected, two_way_spanning_tree,
};
use elo::{EloConfig, elo_ratings};

/// Where the Elo-scale ratings of a Bradley–Terry fit are pinned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    /// The mean log-strength maps to this rating (1000 by default).
    Mean(f64),
    /// The named item gets this rating.
    Item(String, f64),
}

impl Default for Anchor {
    fn default() -> Self {
        Anchor::Mean(1000.0)
    }
}

/// One ranked item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatedItem {
    /// Item name.
    pub item: String,
    /// Rating on the Elo scale.
    pub rating: f64,
    /// Bradley–Terry natural-log strength, centred to mean 0 (absent for Elo).
    pub log_strength: Option<f64>,
    /// Lower bootstrap bound of the rating.
    pub lower: Option<f64>,
    /// Upper bootstrap bound of the rating.
    pub upper: Option<f64>,
    /// Rank: by interval overlap with intervals, else `1 + items rated strictly higher`.
    pub rank: usize,
    /// Comparisons played.
    pub games: u64,
    /// Wins.
    pub wins: u64,
    /// Ties.
    pub ties: u64,
}

/// Bootstrap bookkeeping of a ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankingBootstrap {
    /// Settings used.
    pub spec: BootstrapSpec,
    /// Replicates whose fit was undefined (e.g. disconnected resample), reported, not hidden.
    pub undefined_replicates: usize,
}

/// The result of a ranking method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranking {
    /// `elo` or `bradley_terry`.
    pub method: String,
    /// Items sorted by rating, best first.
    pub items: Vec<RatedItem>,
    /// Bradley–Terry log-likelihood.
    pub log_likelihood: Option<f64>,
    /// Solver iterations (Bradley–Terry).
    pub iterations: Option<usize>,
    /// Whether the solver converged (Bradley–Terry).
    pub converged: Option<bool>,
    /// Bootstrap settings and failures, when intervals were computed.
    pub bootstrap: Option<RankingBootstrap>,
}

/// Per-item `(games, wins, ties)`.
fn records(n: usize, games: &[Game]) -> Vec<(u64, u64, u64)> {
    let mut r = vec![(0, 0, 0); n];
    for g in games {
        r[g.left as usize].0 += 1;
        r[g.right as usize].0 += 1;
        match g.outcome {
            Outcome::Left => r[g.left as usize].1 += 1,
            Outcome::Right => r[g.right as usize].1 += 1,
            Outcome::Tie => {
                r[g.left as usize].2 += 1;
                r[g.right as usize].2 += 1;
            }
        }
    }
    r
}

/// Ranks by interval overlap (or by rating without intervals).
pub fn overlap_ranks(rating: &[f64], lower: &[Option<f64>], upper: &[Option<f64>]) -> Vec<usize> {
    (0..rating.len())
        .map(|i| match upper[i] {
            Some(up) => 1 + lower.iter().filter(|l| l.is_some_and(|l| l > up)).count(),
            None => 1 + rating.iter().filter(|&&r| r > rating[i]).count(),
        })
        .collect()
}

fn assemble(
    c: &Comparisons,
    method: &str,
    rating: Vec<f64>,
    theta: Option<Vec<f64>>,
    samples: Option<(Vec<Vec<Option<f64>>>, BootstrapSpec)>,
) -> Ranking {
    let n = c.n_items();
    let (mut lower, mut upper) = (vec![None; n], vec![None; n]);
    let mut bootstrap = None;
    if let Some((samples, spec)) = samples {
        let undefined = samples.iter().filter(|s| s[0].is_none()).count();
        for i in 0..n {
            let column: Vec<Option<f64>> = samples.iter().map(|s| s[i]).collect();
            let iv = percentile_interval(&column, spec.confidence);
            lower[i] = iv.lower;
            upper[i] = iv.upper;
        }
        bootstrap = Some(RankingBootstrap {
            spec,
            undefined_replicates: undefined,
        });
    }
    let ranks = overlap_ranks(&rating, &lower, &upper);
    let rec = records(n, &c.games);
    let mut items: Vec<RatedItem> = (0..n)
        .map(|i| RatedItem {
            item: c.items.name(i as u32).to_string(),
            rating: rating[i],
            log_strength: theta.as_ref().map(|t| t[i]),
            lower: lower[i],
            upper: upper[i],
            rank: ranks[i],
            games: rec[i].0,
            wins: rec[i].1,
            ties: rec[i].2,
        })
        .collect();
    items.sort_by(|a, b| {
        b.rating
            .total_cmp(&a.rating)
            .then_with(|| a.item.cmp(&b.item))
    });
    Ranking {
        method: method.into(),
        items,
        log_likelihood: None,
        iterations: None,
        converged: None,
        bootstrap,
    }
}

/// Online Elo ratings, with optional bootstrap intervals (games resampled with replacement and
/// replayed in the drawn order, as in the Chatbot Arena notebooks).
pub fn rank_elo(c: &Comparisons, config: &EloConfig, bootstrap: Option<BootstrapSpec>) -> Ranking {
    let n = c.n_items();
    let rating = elo_ratings(n, &c.games, config);
    let samples = bootstrap.map(|spec| {
        let s: Vec<Vec<Option<f64>>> = (0..spec.replicates)
            .into_par_iter()
            .map(|r| {
                let mut rng = Rng::stream(spec.seed, r as u64);
                let m = c.games.len() as u64;
                let draws = (0..m).map(|_| &c.games[rng.below(m) as usize]);
                elo_ratings(n, draws, config)
                    .into_iter()
                    .map(Some)
                    .collect()
            })
            .collect();
        (s, spec)
    });
    assemble(c, "elo", rating, None, samples)
}

/// Elo-scale ratings `anchor + scale / ln(base) * (theta - theta_anchor)` (base 10, scale 400).
pub fn elo_scale(c: &Comparisons, theta: &[f64], anchor: &Anchor) -> Result<Vec<f64>> {
    let per_nat = 400.0 / std::f64::consts::LN_10;
    let (reference, value) = match anchor {
        Anchor::Mean(v) => (theta.iter().sum::<f64>() / theta.len() as f64, *v),
        Anchor::Item(name, v) => {
            let id = c.items.get(name).ok_or_else(|| {
                RatersError::Invalid(format!("anchor item `{name}` is not in the comparisons"))
            })?;
            (theta[id as usize], *v)
        }
    };
    Ok(theta
        .iter()
        .map(|t| value + per_nat * (t - reference))
        .collect())
}

/// Bradley–Terry MLE ratings (Elo scale), with optional multinomial bootstrap intervals.
///
/// ```
/// use rlhf_raters::{Comparisons, Outcome};
/// use rlhf_raters::ranking::{rank_bradley_terry, Anchor, bradley_terry::BtConfig};
/// let mut c = Comparisons::new();
/// for (l, r, o) in [("a", "b", Outcome::Left), ("a", "b", Outcome::Left), ("b", "a", Outcome::Left)] {
///     c.push(l, r, o, None).unwrap();
/// }
/// let ranking = rank_bradley_terry(&c, &BtConfig::default(), &Anchor::default(), None).unwrap();
/// assert_eq!(ranking.items[0].item, "a");
/// // a wins 2 of 3: theta_a - theta_b = ln 2
/// let gap = ranking.items[0].log_strength.unwrap() - ranking.items[1].log_strength.unwrap();
/// assert!((gap - 2f64.ln()).abs() < 1e-9);
/// ```
pub fn rank_bradley_terry(
    c: &Comparisons,
    config: &BtConfig,
    anchor: &Anchor,
    bootstrap: Option<BootstrapSpec>,
) -> Result<Ranking> {
    let pc = pair_counts(c.n_items(), &c.games);
    let full = fit(&pc, config, None, None).map_err(RatersError::Invalid)?;
    let rating = elo_scale(c, &full.theta, anchor)?;
    let samples = match bootstrap {
        Some(spec) => Some((
            bootstrap_bt(c, &pc, &full.theta, config, anchor, spec)?,
            spec,
        )),
        None => None,
    };
    let mut ranking = assemble(
        c,
        "bradley_terry",
        rating,
        Some(full.theta.clone()),
        samples,
    );
    ranking.log_likelihood = Some(full.log_likelihood);
    ranking.iterations = Some(full.iterations);
    ranking.converged = Some(full.converged);
    Ok(ranking)
}

/// Bootstrap replicates of the Elo-scale ratings: comparisons resampled multinomially (as
/// counts over distinct pair outcomes), each refit warm-started from the full fit.
pub fn bootstrap_bt(
    c: &Comparisons,
    pc: &PairCounts,
    theta: &[f64],
    config: &BtConfig,
    anchor: &Anchor,
    spec: BootstrapSpec,
) -> Result<Vec<Vec<Option<f64>>>> {
    let (cats, of_game) = game_categories(pc, &c.games);
    // each game packed as (pair slot << 2 | 2 x left score): one read per draw, then two
    // increments in small integer arrays (pairs x 4 bytes, cache-resident)
    let packed: Vec<u32> = of_game
        .iter()
        .map(|&g| {
            let (slot, outcome) = cats[g as usize];
            (slot << 2) | (2.0 * outcome.left_score()) as u32
        })
        .collect();
    let chord = information_factor(pc, theta);
    let tree = two_way_spanning_tree(pc);
    let n_games = u32::try_from(packed.len())
        .ok()
        .filter(|_| pc.pairs.len() < (1 << 30))
        .ok_or_else(|| {
            RatersError::Invalid(
                "bootstrap supports fewer than 2^32 comparisons and 2^30 pairs".into(),
            )
        })?;
    (0..spec.replicates)
        .into_par_iter()
        .map(|r| {
            let mut rng = Rng::stream(spec.seed, r as u64);
            let mut total = vec![0u32; pc.pairs.len()];
            let mut twice_wins = vec![0u32; pc.pairs.len()];
            let mut draw = |index: u32| {
                let g = packed[index as usize];
                total[(g >> 2) as usize] += 1;
                twice_wins[(g >> 2) as usize] += g & 3;
            };
            for _ in 0..n_games / 2 {
                let (a, b) = rng.below_pair(n_games);
                draw(a);
                draw(b);
            }
            if n_games % 2 == 1 {
                draw(rng.below_pair(n_games).0);
            }
            let rep = PairCounts {
                n_items: pc.n_items,
                pairs: pc.pairs.clone(),
                wins: twice_wins.iter().map(|&w| f64::from(w) / 2.0).collect(),
                total: total.iter().map(|&t| f64::from(t)).collect(),
            };
            // the full data's two-way spanning tree surviving proves strong connectivity cheaply
            let connected = tree.as_ref().is_some_and(|t| {
                t.iter()
                    .all(|&s| rep.wins[s] > 0.0 && rep.wins[s] < rep.total[s])
            });
            let solved = if connected {
                solve_connected(&rep, config, Some(theta), chord.as_ref())
            } else {
                solve(&rep, config, Some(theta), chord.as_ref())
            };
            match solved {
                Ok((t, _, _)) => Ok(elo_scale(c, &t, anchor)?.into_iter().map(Some).collect()),
                Err(_) => Ok(vec![None; pc.n_items]),
            }
        })
        .collect()
}
