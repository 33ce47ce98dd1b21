//! [`Comparisons`]: pairwise outcomes `left, right, winner` with interned item names.

use serde::{Deserialize, Serialize};

use crate::error::{RatersError, Result};
use crate::intern::Interner;

/// The result of one comparison, from the left item's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The left item won.
    Left,
    /// The right item won.
    Right,
    /// A tie (counted as half a win each in Bradley–Terry).
    Tie,
}

impl Outcome {
    /// The left item's score: 1, 0 or 1/2.
    pub fn left_score(self) -> f64 {
        match self {
            Outcome::Left => 1.0,
            Outcome::Right => 0.0,
            Outcome::Tie => 0.5,
        }
    }
}

/// One comparison between two distinct items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Game {
    /// Left item id.
    pub left: u32,
    /// Right item id.
    pub right: u32,
    /// The outcome.
    pub outcome: Outcome,
    /// Rater id, when the input names one.
    pub rater: Option<u32>,
}

/// A sequence of pairwise comparisons, in input order (the order matters for online Elo).
#[derive(Debug, Clone, Default)]
pub struct Comparisons {
    /// Item names.
    pub items: Interner,
    /// Rater names (empty when the input has no rater column).
    pub raters: Interner,
    /// The comparisons in input order.
    pub games: Vec<Game>,
    /// Group names (e.g. prompts), when the input has a group column.
    pub groups: Interner,
    /// (games) group id of each comparison; empty when ungrouped.
    pub group_of: Vec<u32>,
}

impl Comparisons {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a comparison by item names; errors when an item is compared with itself.
    ///
    /// ```
    /// use rlhf_raters::{Comparisons, Outcome};
    /// let mut c = Comparisons::new();
    /// c.push("a", "b", Outcome::Left, None).unwrap();
    /// assert_eq!(c.games.len(), 1);
    /// ```
    pub fn push(
        &mut self,
        left: &str,
        right: &str,
        outcome: Outcome,
        rater: Option<&str>,
    ) -> Result<()> {
        if left == right {
            return Err(RatersError::Invalid(format!(
                "item `{left}` is compared with itself"
            )));
        }
        let left = self.items.intern(left);
        let right = self.items.intern(right);
        let rater = rater.map(|r| self.raters.intern(r));
        self.games.push(Game {
            left,
            right,
            outcome,
            rater,
        });
        Ok(())
    }

    /// Number of distinct items.
    pub fn n_items(&self) -> usize {
        self.items.len()
    }

    /// One independent set of comparisons per group, in group first-seen order (the whole set,
    /// named `""`, when ungrouped). Items are re-interned within each group.
    pub fn split_by_group(&self) -> Vec<(String, Comparisons)> {
        if self.group_of.is_empty() {
            return vec![(String::new(), self.clone())];
        }
        let mut parts: Vec<Comparisons> =
            (0..self.groups.len()).map(|_| Comparisons::new()).collect();
        for (g, &group) in self.games.iter().zip(&self.group_of) {
            let part = &mut parts[group as usize];
            let left = part.items.intern(self.items.name(g.left));
            let right = part.items.intern(self.items.name(g.right));
            let rater = g.rater.map(|r| part.raters.intern(self.raters.name(r)));
            part.games.push(Game {
                left,
                right,
                outcome: g.outcome,
                rater,
            });
        }
        self.groups.names().iter().cloned().zip(parts).collect()
    }
}
