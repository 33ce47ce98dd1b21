//! The byte-level BPE model: a vocabulary of byte strings and a ranked list of merges.
//!
//! Encoding a pre-tokenized piece starts from its bytes and repeatedly merges the adjacent pair
//! with the lowest merge rank (the leftmost one on ties), as Hugging Face's `BPE` model does.

use super::TokenizerError;
use std::collections::HashMap;

/// Pieces longer than this many bytes are merged with a heap instead of repeated scans.
pub const LONG_PIECE: usize = 64;

/// One merge rule: `left` + `right` -> `merged`, applied in rank order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Merge {
    /// Id of the left token.
    pub left: u32,
    /// Id of the right token.
    pub right: u32,
    /// Id of the token the pair becomes.
    pub merged: u32,
}

/// A byte-level BPE vocabulary and merge table (no special tokens; see `BpeTokenizer`).
#[derive(Debug, Clone)]
pub struct BpeModel {
    /// Token id -> its bytes. Ids of special tokens hold their text's bytes too.
    tokens: Vec<Vec<u8>>,
    /// Bytes -> token id, for the whole vocabulary.
    ids: HashMap<Vec<u8>, u32>,
    /// The id of each single byte (byte-level BPE needs all 256): (256,).
    byte_ids: Vec<u32>,
    /// Merges in rank order.
    merges: Vec<Merge>,
    /// (left, right) -> (rank, merged id).
    merge_rank: HashMap<(u32, u32), (u32, u32)>,
}

impl BpeModel {
    /// Builds a model from its vocabulary (id -> bytes) and merges in rank order.
    ///
    /// Fails if a byte has no token, if two ids share bytes, or if a merge names an unknown id
    /// or does not produce the concatenation of its parts.
    pub fn new(tokens: Vec<Vec<u8>>, merges: Vec<Merge>) -> Result<Self, TokenizerError> {
        let mut ids = HashMap::with_capacity(tokens.len());
        for (id, bytes) in tokens.iter().enumerate() {
            if ids.insert(bytes.clone(), id as u32).is_some() {
                return Err(TokenizerError::Invalid(format!(
                    "token id {id} repeats the bytes {bytes:?} of an earlier token"
                )));
            }
        }
        let mut byte_ids = vec![0u32; 256];
        for byte in 0..=255u8 {
            byte_ids[byte as usize] = *ids.get(&vec![byte]).ok_or_else(|| {
                TokenizerError::Invalid(format!(
                    "vocabulary lacks the single byte 0x{byte:02x} that byte-level BPE needs"
                ))
            })?;
        }
        let mut merge_rank = HashMap::with_capacity(merges.len());
        for (rank, merge) in merges.iter().enumerate() {
            let part = |id: u32| {
                tokens.get(id as usize).ok_or_else(|| {
                    TokenizerError::Invalid(format!("merge {rank} names unknown token id {id}"))
                })
            };
            let mut joined = part(merge.left)?.clone();
            joined.extend_from_slice(part(merge.right)?);
            if part(merge.merged)? != &joined {
                return Err(TokenizerError::Invalid(format!(
                    "merge {rank} ({} + {}) does not produce token {}",
                    merge.left, merge.right, merge.merged
                )));
            }
            // A repeated pair keeps its first (lowest) rank, as Hugging Face does.
            merge_rank
                .entry((merge.left, merge.right))
                .or_insert((rank as u32, merge.merged));
        }
        Ok(Self {
            tokens,
            ids,
            byte_ids,
            merges,
            merge_rank,
        })
    }

    /// Number of token ids.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the vocabulary is empty (never true for a valid model).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The bytes of token `id`, if it exists.
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        self.tokens.get(id as usize).map(Vec::as_slice)
    }

    /// The id of the token whose bytes are `bytes`, if any.
    pub fn token_id(&self, bytes: &[u8]) -> Option<u32> {
        self.ids.get(bytes).copied()
    }

    /// The merges in rank order.
    pub fn merges(&self) -> &[Merge] {
        &self.merges
    }

    /// Appends the ids of one pre-tokenized piece to `out`.
    ///
    /// Short pieces use a plain scan per merge (O(n^2), fastest for words); pieces longer than
    /// [`LONG_PIECE`] bytes use a heap (O(n log n)), so a long run without spaces cannot stall.
    /// Both merge the lowest-rank pair first, the leftmost on ties, and give the same ids.
    pub fn encode_piece(&self, piece: &[u8], out: &mut Vec<u32>) {
        let symbols: Vec<u32> = piece.iter().map(|&b| self.byte_ids[b as usize]).collect();
        if symbols.len() > LONG_PIECE {
            out.extend(self.merge_with_heap(symbols));
        } else {
            out.extend(self.merge_by_scan(symbols));
        }
    }

    /// BPE merges by repeated scans: (n,) byte ids -> token ids.
    fn merge_by_scan(&self, mut symbols: Vec<u32>) -> Vec<u32> {
        loop {
            // Lowest-rank adjacent pair, leftmost on ties: (rank, position, merged id).
            let mut best: Option<(u32, usize, u32)> = None;
            for (pos, pair) in symbols.windows(2).enumerate() {
                if let Some(&(rank, merged)) = self.merge_rank.get(&(pair[0], pair[1]))
                    && best.is_none_or(|(best_rank, _, _)| rank < best_rank)
                {
                    best = Some((rank, pos, merged));
                }
            }
            let Some((_, pos, merged)) = best else { break };
            symbols[pos] = merged;
            symbols.remove(pos + 1);
        }
        symbols
    }

    /// BPE merges with a min-heap of (rank, position) over a linked list of symbols.
    fn merge_with_heap(&self, mut symbols: Vec<u32>) -> Vec<u32> {
        use std::cmp::Reverse;
        let n = symbols.len();
        let none = usize::MAX;
        // Links between live positions: (n,) each; a merged-away position is dead.
        let mut next: Vec<usize> = (1..=n).map(|i| if i < n { i } else { none }).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| if i == 0 { none } else { i - 1 }).collect();
        let mut alive = vec![true; n];
        // Entries: (rank, left position, left id, right id); stale ones are skipped on pop.
        let mut heap = std::collections::BinaryHeap::new();
        let push = |heap: &mut std::collections::BinaryHeap<_>,
                    symbols: &[u32],
                    left: usize,
                    right: usize| {
            if let Some(&(rank, _)) = self.merge_rank.get(&(symbols[left], symbols[right])) {
                heap.push(Reverse((rank, left, symbols[left], symbols[right])));
            }
        };
        for i in 0..n.saturating_sub(1) {
            push(&mut heap, &symbols, i, i + 1);
        }
        while let Some(Reverse((_, pos, left, right))) = heap.pop() {
            let after = next[pos];
            if !alive[pos] || after == none || symbols[pos] != left || symbols[after] != right {
                continue;
            }
            let Some(&(_, merged)) = self.merge_rank.get(&(left, right)) else {
                continue;
            };
            symbols[pos] = merged;
            alive[after] = false;
            next[pos] = next[after];
            if next[pos] != none {
                prev[next[pos]] = pos;
                push(&mut heap, &symbols, pos, next[pos]);
            }
            if prev[pos] != none {
                push(&mut heap, &symbols, prev[pos], pos);
            }
        }
        symbols
            .iter()
            .zip(&alive)
            .filter(|(_, a)| **a)
            .map(|(s, _)| *s)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::{BpeTrainerConfig, train_bpe};
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn model() -> &'static BpeModel {
        static MODEL: OnceLock<BpeModel> = OnceLock::new();
        MODEL.get_or_init(|| {
            let text =
                "aaab abab bbba aabb ababab aaaa bbbb abba baab the then there them ".repeat(30);
            let config = BpeTrainerConfig {
                vocab_size: 320,
                min_frequency: 2,
            };
            train_bpe([text.as_str()], &config).unwrap().model().clone()
        })
    }

    proptest! {
        #[test]
        fn heap_and_scan_merges_agree(word in "[abthenr ]{0,200}") {
            let m = model();
            let bytes: Vec<u32> = word.bytes().map(|b| m.byte_ids[b as usize]).collect();
            prop_assert_eq!(m.merge_with_heap(bytes.clone()), m.merge_by_scan(bytes));
        }
    }

    #[test]
    fn a_megabyte_without_spaces_encodes_quickly() {
        let m = model();
        let piece = "ab".repeat(500_000);
        let start = std::time::Instant::now();
        let mut ids = Vec::new();
        m.encode_piece(piece.as_bytes(), &mut ids);
        let decoded: Vec<u8> = ids
            .iter()
            .flat_map(|&id| m.token_bytes(id).unwrap().to_vec())
            .collect();
        assert_eq!(decoded, piece.as_bytes());
        assert!(start.elapsed().as_secs() < 5, "{:?}", start.elapsed());
    }
}
