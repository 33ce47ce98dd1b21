//! Bradley–Terry maximum likelihood on aggregated pair counts.
//!
//! Model: `P(i beats j) = pi_i / (pi_i + pi_j)`, `theta = ln pi`. A tie counts as half a win for
//! each side. Log-likelihood `L = sum_{i<j} w_ij ln q_ij + (n_ij - w_ij) ln(1 - q_ij)` with
//! `q_ij = sigma(theta_i - theta_j)`. Solver: Newton–Raphson on `theta` with `theta_0` fixed
//! (the model is translation-invariant), a Cholesky solve of the (n-1) x (n-1) information
//! matrix, and step halving whenever `L` would decrease; stops when `max |step| < tolerance`.
//! The MLE exists iff the "beats" graph is strongly connected (Zermelo 1929, Ford 1957); this is
//! checked first. Returned strengths are centred to mean 0 (choix's convention).
//!
//! For bootstrap refits a *chord* mode reuses the full-data Cholesky factor for every step
//! (each step costs `O(pairs + n^2)` instead of `O(n^3)`); if it fails to contract it falls back
//! to Newton.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::pairs::{Game, Outcome};
use crate::ranking::linalg::Cholesky;

/// Comparison counts per unordered pair `i < j` of items.
#[derive(Debug, Clone)]
pub struct PairCounts {
    /// Number of items.
    pub n_items: usize,
    /// The pairs `(i, j)`, `i < j`, that met at least once.
    pub pairs: Vec<(u32, u32)>,
    /// (pairs) wins of `i` over `j`, ties counted 1/2.
    pub wins: Vec<f64>,
    /// (pairs) comparisons between `i` and `j`.
    pub total: Vec<f64>,
}

/// Aggregates games into pair counts, pairs sorted by `(i, j)`.
pub fn pair_counts(n_items: usize, games: &[Game]) -> PairCounts {
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut pc = PairCounts {
        n_items,
        pairs: Vec::new(),
        wins: Vec::new(),
        total: Vec::new(),
    };
    for g in games {
        let (i, j, first_score) = if g.left < g.right {
            (g.left, g.right, g.outcome.left_score())
        } else {
            (g.right, g.left, 1.0 - g.outcome.left_score())
        };
        let slot = *index
            .entry(((i as u64) << 32) | j as u64)
            .or_insert_with(|| {
                pc.pairs.push((i, j));
                pc.wins.push(0.0);
                pc.total.push(0.0);
                pc.pairs.len() - 1
            });
        pc.wins[slot] += first_score;
        pc.total[slot] += 1.0;
    }
    // sorted by (i, j): the gradient then accumulates each item's row in a register
    let mut order: Vec<usize> = (0..pc.pairs.len()).collect();
    order.sort_unstable_by_key(|&s| pc.pairs[s]);
    PairCounts {
        n_items,
        pairs: order.iter().map(|&s| pc.pairs[s]).collect(),
        wins: order.iter().map(|&s| pc.wins[s]).collect(),
        total: order.iter().map(|&s| pc.total[s]).collect(),
    }
}

/// Outcome categories for the multinomial bootstrap: `(pair slot, outcome from i's side)`.
pub fn game_categories(pc_index: &PairCounts, games: &[Game]) -> (Vec<(u32, Outcome)>, Vec<u32>) {
    let slot_of: HashMap<(u32, u32), u32> = pc_index
        .pairs
        .iter()
        .enumerate()
        .map(|(s, &p)| (p, s as u32))
        .collect();
    let mut cat_index: HashMap<(u32, u8), u32> = HashMap::new();
    let mut cats = Vec::new();
    let mut of_game = Vec::with_capacity(games.len());
    for g in games {
        let (i, j, outcome) = if g.left < g.right {
            (g.left, g.right, g.outcome)
        } else {
            let flipped = match g.outcome {
                Outcome::Left => Outcome::Right,
                Outcome::Right => Outcome::Left,
                Outcome::Tie => Outcome::Tie,
            };
            (g.right, g.left, flipped)
        };
        let slot = slot_of[&(i, j)];
        let key = (slot, outcome as u8);
        let id = *cat_index.entry(key).or_insert_with(|| {
            cats.push((slot, outcome));
            cats.len() as u32 - 1
        });
        of_game.push(id);
    }
    (cats, of_game)
}

/// Solver settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BtConfig {
    /// Stop when the largest change of any log-strength is below this.
    pub tolerance: f64,
    /// Newton iterations at most.
    pub max_iterations: usize,
}

impl Default for BtConfig {
    fn default() -> Self {
        BtConfig {
            tolerance: 1e-10,
            max_iterations: 100,
        }
    }
}

/// A Bradley–Terry fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BtFit {
    /// (n_items) natural-log strengths, centred to mean 0.
    pub theta: Vec<f64>,
    /// Log-likelihood at `theta`.
    pub log_likelihood: f64,
    /// Iterations run.
    pub iterations: usize,
    /// Whether the tolerance was reached.
    pub converged: bool,
}

/// Slots of `n - 1` pairs that each have both a win and a loss and together connect every item
/// (union-find over the two-way pairs), if such a spanning tree exists. A bootstrap replicate in
/// which all these pairs keep a win and a loss is strongly connected.
pub fn two_way_spanning_tree(pc: &PairCounts) -> Option<Vec<usize>> {
    let n = pc.n_items;
    let mut parent: Vec<u32> = (0..n as u32).collect();
    fn root(parent: &mut [u32], mut v: u32) -> u32 {
        while parent[v as usize] != v {
            parent[v as usize] = parent[parent[v as usize] as usize];
            v = parent[v as usize];
        }
        v
    }
    let mut tree = Vec::with_capacity(n.saturating_sub(1));
    for (s, &(i, j)) in pc.pairs.iter().enumerate() {
        if pc.wins[s] > 0.0 && pc.total[s] - pc.wins[s] > 0.0 {
            let (a, b) = (root(&mut parent, i), root(&mut parent, j));
            if a != b {
                parent[a as usize] = b;
                tree.push(s);
                if tree.len() + 1 == n {
                    return Some(tree);
                }
            }
        }
    }
    None
}

/// Why the MLE does not exist: `None` when the "beats" graph is strongly connected.
pub fn connectivity_problem(pc: &PairCounts) -> Option<String> {
    let n = pc.n_items;
    if n < 2 {
        return Some("fewer than two items".into());
    }
    // Fast path: pairs with both a win and a loss are two-way edges; if they alone connect
    // every item, the graph is strongly connected.
    if two_way_spanning_tree(pc).is_some() {
        return None;
    }
    // Edge i -> j when i beat j at least half a time. Strongly connected iff every node is
    // reachable from node 0 both forwards and backwards. CSR adjacency, built in two passes.
    let mut edges: Vec<(u32, u32)> = Vec::with_capacity(2 * pc.pairs.len());
    for (s, &(i, j)) in pc.pairs.iter().enumerate() {
        if pc.wins[s] > 0.0 {
            edges.push((i, j));
        }
        if pc.total[s] - pc.wins[s] > 0.0 {
            edges.push((j, i));
        }
    }
    let mut seen = vec![false; n];
    let mut stack = Vec::with_capacity(n);
    let mut offsets = vec![0usize; n + 1];
    let mut targets = vec![0u32; edges.len()];
    for (direction, what) in [
        (0, "beaten, directly or indirectly, by"),
        (1, "able to beat"),
    ] {
        offsets.iter_mut().for_each(|o| *o = 0);
        let end = |e: &(u32, u32)| {
            if direction == 0 {
                (e.0, e.1)
            } else {
                (e.1, e.0)
            }
        };
        for e in &edges {
            offsets[end(e).0 as usize + 1] += 1;
        }
        for v in 0..n {
            offsets[v + 1] += offsets[v];
        }
        let mut fill = offsets.clone();
        for e in &edges {
            let (from, to) = end(e);
            targets[fill[from as usize]] = to;
            fill[from as usize] += 1;
        }
        seen.iter_mut().for_each(|x| *x = false);
        seen[0] = true;
        stack.clear();
        stack.push(0usize);
        while let Some(v) = stack.pop() {
            for &u in &targets[offsets[v]..offsets[v + 1]] {
                if !seen[u as usize] {
                    seen[u as usize] = true;
                    stack.push(u as usize);
                }
            }
        }
        if let Some(u) = seen.iter().position(|s| !s) {
            return Some(format!(
                "comparison graph is not strongly connected (item #{u} is not {what} item #0): the maximum-likelihood strengths are infinite"
            ));
        }
    }
    None
}

/// Gradient (n), information matrix (n-1, n-1 without item 0, if `info`), and the
/// log-likelihood if `want_loglik` (else 0; it costs two logarithms per pair).
fn derivatives(
    pc: &PairCounts,
    theta: &[f64],
    info: Option<&mut Vec<f64>>,
    grad: &mut [f64],
    want_loglik: bool,
) -> f64 {
    let n = pc.n_items;
    let top = theta.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pi: Vec<f64> = theta.iter().map(|t| (t - top).exp()).collect();
    grad.iter_mut().for_each(|g| *g = 0.0);
    let mut loglik = 0.0;
    let m = n - 1;
    let mut info = info;
    if let Some(h) = info.as_deref_mut() {
        h.clear();
        h.resize(m * m, 0.0);
    }
    for (s, &(i, j)) in pc.pairs.iter().enumerate() {
        let (i, j) = (i as usize, j as usize);
        let (w, t) = (pc.wins[s], pc.total[s]);
        if t == 0.0 {
            continue;
        }
        let q = pi[i] / (pi[i] + pi[j]);
        let r = 1.0 - q;
        grad[i] += w - t * q;
        grad[j] += (t - w) - t * r;
        if want_loglik {
            if w > 0.0 {
                loglik += w * q.ln();
            }
            if t - w > 0.0 {
                loglik += (t - w) * r.ln();
            }
        }
        if let Some(h) = info.as_deref_mut() {
            let v = t * q * r;
            if i > 0 {
                h[(i - 1) * m + i - 1] += v;
            }
            if j > 0 {
                h[(j - 1) * m + j - 1] += v;
            }
            if i > 0 && j > 0 {
                h[(i - 1) * m + j - 1] -= v;
                h[(j - 1) * m + i - 1] -= v;
            }
        }
    }
    loglik
}

/// Gradient only (n), the hot loop of chord steps: `d = w_ij - n_ij q_ij`, `g_i += d`, `g_j -= d`.
fn gradient(pc: &PairCounts, theta: &[f64], pi: &mut Vec<f64>, grad: &mut [f64]) {
    let top = theta.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    pi.clear();
    pi.extend(theta.iter().map(|t| (t - top).exp()));
    grad.iter_mut().for_each(|g| *g = 0.0);
    // runs of equal `i` (pairs are sorted) accumulate in `row`, so only `grad[j]` is updated
    // in memory, and no two consecutive updates hit the same entry
    let (mut current, mut row) = (usize::MAX, 0.0);
    for ((&(i, j), &w), &t) in pc.pairs.iter().zip(&pc.wins).zip(&pc.total) {
        let (i, j) = (i as usize, j as usize);
        if i != current {
            if current != usize::MAX {
                grad[current] += row;
            }
            current = i;
            row = 0.0;
        }
        let (pi_i, pi_j) = (pi[i], pi[j]);
        let d = w - t * pi_i / (pi_i + pi_j);
        row += d;
        grad[j] -= d;
    }
    if current != usize::MAX {
        grad[current] += row;
    }
}

/// The information matrix (without item 0) at `theta`, factored.
pub fn information_factor(pc: &PairCounts, theta: &[f64]) -> Option<Cholesky> {
    let mut h = Vec::new();
    let mut g = vec![0.0; pc.n_items];
    derivatives(pc, theta, Some(&mut h), &mut g, false);
    Cholesky::factor(h, pc.n_items - 1)
}

/// Fits the MLE from `start` (zeros if `None`); `chord` reuses a fixed factor for every step.
/// Errors (with the reason) when the MLE does not exist.
pub fn fit(
    pc: &PairCounts,
    config: &BtConfig,
    start: Option<&[f64]>,
    chord: Option<&Cholesky>,
) -> Result<BtFit, String> {
    let (mut theta, iterations, converged) = solve(pc, config, start, chord)?;
    let mut grad = vec![0.0; pc.n_items];
    let loglik = derivatives(pc, &theta, None, &mut grad, true);
    let mean = theta.iter().sum::<f64>() / theta.len() as f64;
    theta.iter_mut().for_each(|t| *t -= mean);
    Ok(BtFit {
        theta,
        log_likelihood: loglik,
        iterations,
        converged,
    })
}

/// The solver behind [`fit`]: `(theta with theta_0 = 0, iterations, converged)`.
pub fn solve(
    pc: &PairCounts,
    config: &BtConfig,
    start: Option<&[f64]>,
    chord: Option<&Cholesky>,
) -> Result<(Vec<f64>, usize, bool), String> {
    if let Some(problem) = connectivity_problem(pc) {
        return Err(problem);
    }
    solve_connected(pc, config, start, chord)
}

/// [`solve`] for counts already known to be strongly connected (e.g. a bootstrap replicate that
/// keeps the full data's [`two_way_spanning_tree`]).
pub fn solve_connected(
    pc: &PairCounts,
    config: &BtConfig,
    start: Option<&[f64]>,
    chord: Option<&Cholesky>,
) -> Result<(Vec<f64>, usize, bool), String> {
    let n = pc.n_items;
    let mut theta: Vec<f64> = match start {
        Some(s) => s.iter().map(|t| t - s[0]).collect(),
        None => vec![0.0; n],
    };
    let mut grad = vec![0.0; n];
    let mut info = Vec::new();
    let mut step = vec![0.0; n - 1];
    let mut pi_scratch = Vec::with_capacity(n);
    let mut iterations = 0;
    let mut converged = false;
    let mut use_chord = chord.is_some();
    let mut last_grad_norm = f64::INFINITY;
    let mut loglik = if use_chord {
        0.0
    } else {
        derivatives(pc, &theta, None, &mut grad, true)
    };
    while iterations < config.max_iterations {
        iterations += 1;
        let factor_owned;
        let factor = match (use_chord, chord) {
            (true, Some(c)) => {
                gradient(pc, &theta, &mut pi_scratch, &mut grad);
                c
            }
            _ => {
                derivatives(pc, &theta, Some(&mut info), &mut grad, false);
                factor_owned = Cholesky::factor(std::mem::take(&mut info), n - 1)
                    .ok_or_else(|| "information matrix is singular".to_string())?;
                &factor_owned
            }
        };
        let grad_norm = grad[1..].iter().map(|g| g.abs()).fold(0.0, f64::max);
        if use_chord && (grad_norm > 0.5 * last_grad_norm && iterations > 3 || iterations > 40) {
            use_chord = false; // not contracting: switch to Newton from here
            last_grad_norm = f64::INFINITY;
            loglik = derivatives(pc, &theta, None, &mut grad, true);
            continue;
        }
        last_grad_norm = grad_norm;
        step.copy_from_slice(&grad[1..]);
        factor.solve(&mut step);
        let max_step = step.iter().map(|s| s.abs()).fold(0.0, f64::max);
        if use_chord {
            for (t, s) in theta[1..].iter_mut().zip(&step) {
                *t += s;
            }
        } else {
            // Newton with step halving on the log-likelihood.
            let mut scale = 1.0;
            loop {
                let trial: Vec<f64> = std::iter::once(0.0)
                    .chain(theta[1..].iter().zip(&step).map(|(t, s)| t + scale * s))
                    .collect();
                let trial_ll = derivatives(pc, &trial, None, &mut grad, true);
                if trial_ll >= loglik - 1e-12 * loglik.abs().max(1.0) || scale < 1e-6 {
                    theta = trial;
                    loglik = trial_ll;
                    break;
                }
                scale *= 0.5;
            }
        }
        if max_step < config.tolerance {
            converged = true;
            break;
        }
    }
    Ok((theta, iterations, converged))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[((u32, u32), f64, f64)]) -> PairCounts {
        PairCounts {
            n_items: 3,
            pairs: pairs.iter().map(|p| p.0).collect(),
            wins: pairs.iter().map(|p| p.1).collect(),
            total: pairs.iter().map(|p| p.2).collect(),
        }
    }

    #[test]
    fn connectivity_fast_path_and_full_check_agree() {
        // a one-way cycle 0 > 1 > 2 > 0: strongly connected, but no two-way pair
        let cycle = counts(&[((0, 1), 1.0, 1.0), ((1, 2), 1.0, 1.0), ((0, 2), 0.0, 1.0)]);
        assert!(two_way_spanning_tree(&cycle).is_none());
        assert!(connectivity_problem(&cycle).is_none());
        // 0 beats everyone: not strongly connected
        let dominant = counts(&[((0, 1), 2.0, 2.0), ((1, 2), 1.0, 2.0), ((0, 2), 1.0, 1.0)]);
        assert!(
            connectivity_problem(&dominant)
                .unwrap()
                .contains("not strongly connected")
        );
        assert!(fit(&dominant, &BtConfig::default(), None, None).is_err());
        // two-way pairs spanning all items
        let mixed = counts(&[((0, 1), 1.0, 2.0), ((1, 2), 0.5, 1.0), ((0, 2), 1.0, 1.0)]);
        assert_eq!(two_way_spanning_tree(&mixed).unwrap().len(), 2);
        let f = fit(&mixed, &BtConfig::default(), None, None).unwrap();
        assert!(f.converged && f.theta.iter().all(|t| t.is_finite()));
    }
}
