//! The byte-level BPE model: a vocabulary of byte strings and a ranked list of merges.
//!
//! Encoding a pre-tokenized piece starts from its bytes and repeatedly merges the adjacent pair
//! with the lowest merge rank (the leftmost one on ties), as Hugging Face's `BPE` model does.

use super::TokenizerError;
use std::collections::HashMap;

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
    pub fn encode_piece(&self, piece: &[u8], out: &mut Vec<u32>) {
        let mut symbols: Vec<u32> = piece.iter().map(|&b| self.byte_ids[b as usize]).collect();
        loop {
            // Lowest-rank adjacent pair, leftmost on ties: (rank, position, merged id).
            let mut best: Option<(u32, usize, u32)> = None;
            for (pos, pair) in symbols.windows(2).enumerate() {
                if let Some(&(rank, merged)) = self.merge_rank.get(&(pair[0], pair[1])) {
                    if best.is_none_or(|(best_rank, _, _)| rank < best_rank) {
                        best = Some((rank, pos, merged));
                    }
                }
            }
            let Some((_, pos, merged)) = best else { break };
            symbols[pos] = merged;
            symbols.remove(pos + 1);
        }
        out.extend_from_slice(&symbols);
    }
}
