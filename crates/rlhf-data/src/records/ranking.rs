//! K-way rankings with ties, and their expansion into pairs grouped per prompt.

use serde::{Deserialize, Serialize};

use super::{FeedbackMeta, InvalidRecord, Pairwise, Prompt};

/// A rater ordered K responses to one prompt from best to worst; tied responses share a tier.
///
/// `tiers[0]` holds the indices (into `responses`) of the best responses, `tiers[1]` the next, and
/// so on; together the tiers hold every index `0..K` exactly once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranking {
    /// Item, rater, time, confidence.
    #[serde(flatten)]
    pub meta: FeedbackMeta,
    /// The conversation all responses answer.
    pub prompt: Prompt,
    /// The K responses, in presentation order.
    pub responses: Vec<String>,
    /// Indices into `responses`, best tier first; a tier of several indices is a tie.
    pub tiers: Vec<Vec<usize>>,
}

/// One comparison implied by a ranking: `responses[better]` beats `responses[worse]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RankedPair {
    /// Index of the preferred response.
    pub better: usize,
    /// Index of the dispreferred response.
    pub worse: usize,
}

/// All comparisons of one ranking, kept together so a reward model scores the K responses once
/// and averages the loss over the pairs of this prompt (InstructGPT, section 3.5).
#[derive(Debug, Clone, PartialEq)]
pub struct PairGroup<'a> {
    /// The ranking's metadata.
    pub meta: &'a FeedbackMeta,
    /// The shared prompt.
    pub prompt: &'a Prompt,
    /// The K responses.
    pub responses: &'a [String],
    /// Every (better, worse) pair across different tiers: C(K,2) minus the tied pairs.
    pub pairs: Vec<RankedPair>,
}

impl Ranking {
    /// A ranking of `responses` into `tiers` (best first); call [`Ranking::validate`] to check.
    pub fn new(
        meta: FeedbackMeta,
        prompt: Prompt,
        responses: Vec<String>,
        tiers: Vec<Vec<usize>>,
    ) -> Self {
        Ranking {
            meta,
            prompt,
            responses,
            tiers,
        }
    }

    /// A ranking from one rank per response (smaller is better, equal ranks tie, gaps allowed),
    /// as OASST writes sibling `rank`s.
    ///
    /// ```
    /// use rlhf_data::records::{FeedbackMeta, Prompt, Ranking};
    /// let r = Ranking::from_ranks(
    ///     FeedbackMeta::new("q1"),
    ///     Prompt::user("Name a prime."),
    ///     vec!["7".into(), "9".into(), "2".into()],
    ///     &[0, 2, 0],
    /// );
    /// assert_eq!(r.tiers, vec![vec![0, 2], vec![1]]);
    /// assert_eq!(r.pair_group().pairs.len(), 2); // C(3,2) = 3 minus one tie
    /// ```
    pub fn from_ranks(
        meta: FeedbackMeta,
        prompt: Prompt,
        responses: Vec<String>,
        ranks: &[u32],
    ) -> Self {
        let mut order: Vec<usize> = (0..ranks.len()).collect();
        order.sort_by_key(|&i| (ranks[i], i));
        let mut tiers: Vec<Vec<usize>> = Vec::new();
        let mut last_rank = None;
        for i in order {
            match tiers.last_mut() {
                Some(tier) if last_rank == Some(ranks[i]) => tier.push(i),
                _ => tiers.push(vec![i]),
            }
            last_rank = Some(ranks[i]);
        }
        Ranking {
            meta,
            prompt,
            responses,
            tiers,
        }
    }

    /// The number of responses K.
    pub fn k(&self) -> usize {
        self.responses.len()
    }

    /// The tier of each response (0 = best), aligned with `responses`; `None` for an index that
    /// no tier mentions (only in an invalid ranking).
    pub fn ranks(&self) -> Vec<Option<usize>> {
        let mut ranks = vec![None; self.responses.len()];
        for (tier_index, tier) in self.tiers.iter().enumerate() {
            for &i in tier {
                if let Some(slot) = ranks.get_mut(i) {
                    *slot = Some(tier_index);
                }
            }
        }
        ranks
    }

    /// Every pair (better, worse) with the two in different tiers, best tiers first.
    pub fn pairs(&self) -> Vec<RankedPair> {
        let mut pairs = Vec::new();
        for (t, tier) in self.tiers.iter().enumerate() {
            for &better in tier {
                for lower in &self.tiers[t + 1..] {
                    pairs.extend(lower.iter().map(|&worse| RankedPair { better, worse }));
                }
            }
        }
        pairs
    }

    /// The ranking's pairs, grouped with its prompt and responses (one InstructGPT batch element).
    pub fn pair_group(&self) -> PairGroup<'_> {
        PairGroup {
            meta: &self.meta,
            prompt: &self.prompt,
            responses: &self.responses,
            pairs: self.pairs(),
        }
    }

    /// The pairs as stand-alone [`Pairwise`] records (item id and rater kept), for flat consumers.
    /// Indices past `responses` (which [`Ranking::validate`] rejects) yield no pair.
    pub fn to_pairwise(&self) -> Vec<Pairwise> {
        self.pairs()
            .into_iter()
            .filter_map(|p| {
                let chosen = self.responses.get(p.better)?;
                let rejected = self.responses.get(p.worse)?;
                Some(Pairwise::new(
                    self.meta.clone(),
                    self.prompt.clone(),
                    chosen.clone(),
                    rejected.clone(),
                ))
            })
            .collect()
    }

    /// Checks: K >= 2, tiers non-empty and a partition of `0..K`, the order not all one tie.
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        self.meta.validate()?;
        let k = self.responses.len();
        if k < 2 {
            return Err(InvalidRecord::new(
                "responses",
                format!("at least 2 responses to rank, got {k}"),
            ));
        }
        let mut seen = vec![false; k];
        for (t, tier) in self.tiers.iter().enumerate() {
            if tier.is_empty() {
                return Err(InvalidRecord::new(
                    format!("tiers[{t}]"),
                    "a non-empty tier",
                ));
            }
            for (j, &i) in tier.iter().enumerate() {
                let field = || format!("tiers[{t}][{j}]");
                match seen.get_mut(i) {
                    None => {
                        return Err(InvalidRecord::new(
                            field(),
                            format!("a response index below K = {k}, got {i}"),
                        ));
                    }
                    Some(true) => {
                        return Err(InvalidRecord::new(
                            field(),
                            format!("each response once, index {i} repeats"),
                        ));
                    }
                    Some(s) => *s = true,
                }
            }
        }
        if let Some(missing) = seen.iter().position(|s| !s) {
            return Err(InvalidRecord::new(
                "tiers",
                format!("every response ranked, index {missing} is missing"),
            ));
        }
        if self.tiers.len() < 2 {
            return Err(InvalidRecord::new(
                "tiers",
                "at least 2 tiers (all responses tied carries no preference)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranking(k: usize, tiers: Vec<Vec<usize>>) -> Ranking {
        let responses = (0..k).map(|i| format!("r{i}")).collect();
        Ranking::new(FeedbackMeta::new("p"), Prompt::user("q"), responses, tiers)
    }

    #[test]
    fn strict_order_gives_k_choose_2_pairs_best_first() {
        let r = ranking(4, vec![vec![2], vec![0], vec![3], vec![1]]);
        assert_eq!(r.validate(), Ok(()));
        let pairs: Vec<(usize, usize)> = r.pairs().iter().map(|p| (p.better, p.worse)).collect();
        assert_eq!(pairs, [(2, 0), (2, 3), (2, 1), (0, 3), (0, 1), (3, 1)]);
        assert_eq!(r.ranks(), [Some(1), Some(3), Some(0), Some(2)]);
        let flat = r.to_pairwise();
        assert_eq!(
            (flat[0].chosen.as_str(), flat[0].rejected.as_str()),
            ("r2", "r0")
        );
    }

    #[test]
    fn ties_drop_their_pairs() {
        let r = ranking(4, vec![vec![0, 1], vec![2, 3]]);
        assert_eq!(r.pair_group().pairs.len(), 4); // 6 - 2 tied pairs
    }

    #[test]
    fn invalid_tiers_name_the_field() {
        assert_eq!(
            ranking(3, vec![vec![0], vec![1, 5], vec![2]])
                .validate()
                .unwrap_err()
                .field,
            "tiers[1][1]"
        );
        assert_eq!(
            ranking(3, vec![vec![0], vec![1, 0], vec![2]])
                .validate()
                .unwrap_err()
                .field,
            "tiers[1][1]"
        );
        assert_eq!(
            ranking(3, vec![vec![0], vec![1]])
                .validate()
                .unwrap_err()
                .field,
            "tiers"
        );
        assert_eq!(
            ranking(3, vec![vec![0], vec![], vec![1, 2]])
                .validate()
                .unwrap_err()
                .field,
            "tiers[1]"
        );
        assert_eq!(
            ranking(2, vec![vec![0, 1]]).validate().unwrap_err().field,
            "tiers"
        );
        assert_eq!(
            ranking(1, vec![vec![0]]).validate().unwrap_err().field,
            "responses"
        );
    }

    #[test]
    fn from_ranks_groups_equal_ranks_with_gaps() {
        let r = Ranking::from_ranks(
            FeedbackMeta::new("p"),
            Prompt::user("q"),
            vec!["a".into(), "b".into(), "c".into(), "d".into()],
            &[3, 0, 3, 1],
        );
        assert_eq!(r.tiers, vec![vec![1], vec![3], vec![0, 2]]);
        assert_eq!(r.validate(), Ok(()));
    }

    proptest::proptest! {
        #[test]
        fn ranks_give_consistent_tiers_and_pairs(ranks in proptest::collection::vec(0u32..5, 2..9)) {
            let responses = (0..ranks.len()).map(|i| i.to_string()).collect();
            let r = Ranking::from_ranks(FeedbackMeta::new("p"), Prompt::user("q"), responses, &ranks);
            // Tiers partition 0..K and follow the ranks.
            let mut seen: Vec<usize> = r.tiers.concat();
            seen.sort_unstable();
            proptest::prop_assert_eq!(seen, (0..ranks.len()).collect::<Vec<_>>());
            let tier_of = r.ranks();
            for i in 0..ranks.len() {
                for j in 0..ranks.len() {
                    proptest::prop_assert_eq!(ranks[i] < ranks[j], tier_of[i] < tier_of[j]);
                }
            }
            // Pairs: C(K,2) minus the tied pairs, each from a better tier to a worse one.
            let k = ranks.len();
            let tied: usize = r.tiers.iter().map(|t| t.len() * (t.len() - 1) / 2).sum();
            let pairs = r.pairs();
            proptest::prop_assert_eq!(pairs.len(), k * (k - 1) / 2 - tied);
            for p in &pairs {
                proptest::prop_assert!(ranks[p.better] < ranks[p.worse]);
            }
            proptest::prop_assert_eq!(r.validate().is_ok(), r.tiers.len() >= 2);
        }
    }
}
