//! Byte-level BPE training: counts of adjacent pairs over pre-tokenized words, merged greedily.
//!
//! The corpus is split with GPT-2's pre-tokenizer and reduced to distinct words with counts.
//! Each step merges the most frequent adjacent pair (ties broken by the smaller pair of ids, so
//! training is deterministic). Pair counts are updated incrementally: a merge revisits only the
//! words that contain the pair (an index from pair to words), and a max-heap with lazy deletion
//! picks the next pair. Vocabulary layout: `<|endoftext|>` = 0, `<|pad|>` = 1, the 256 bytes in
//! byte order = 2..258, then one token per merge.

use super::bpe::{BpeModel, Merge};
use super::pretokenize::split_gpt2;
use super::trained::BpeTokenizer;
use super::{EOS_TOKEN, PAD_TOKEN, TokenizerError};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Settings of BPE training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BpeTrainerConfig {
    /// Target vocabulary size, special tokens and the 256 bytes included (at least 258).
    pub vocab_size: usize,
    /// A pair seen fewer times than this is never merged (training may stop below `vocab_size`).
    pub min_frequency: u64,
}

impl Default for BpeTrainerConfig {
    fn default() -> Self {
        Self {
            vocab_size: 1024,
            min_frequency: 2,
        }
    }
}

/// The special tokens every trained tokenizer starts with, in id order.
const SPECIALS: [&str; 2] = [EOS_TOKEN, PAD_TOKEN];

/// Trains a byte-level BPE tokenizer on `texts`.
pub fn train_bpe<'a>(
    texts: impl IntoIterator<Item = &'a str>,
    config: &BpeTrainerConfig,
) -> Result<BpeTokenizer, TokenizerError> {
    let base = SPECIALS.len() + 256;
    if config.vocab_size < base {
        return Err(TokenizerError::Invalid(format!(
            "vocab_size {} is below the {base} tokens of the specials and the bytes",
            config.vocab_size
        )));
    }
    let mut tokens: Vec<Vec<u8>> = SPECIALS.iter().map(|s| s.as_bytes().to_vec()).collect();
    tokens.extend((0..=255u8).map(|b| vec![b]));
    let byte_id = |b: u8| (SPECIALS.len() + b as usize) as u32;
    let mut token_index: HashMap<Vec<u8>, u32> = tokens
        .iter()
        .enumerate()
        .map(|(id, t)| (t.clone(), id as u32))
        .collect();

    // Distinct words with counts, sorted so that word indices do not depend on hashing.
    let mut word_counts: HashMap<&str, u64> = HashMap::new();
    for text in texts {
        for piece in split_gpt2(text) {
            *word_counts.entry(piece).or_insert(0) += 1;
        }
    }
    let mut distinct: Vec<(&str, u64)> = word_counts.into_iter().collect();
    distinct.sort_unstable();
    let mut words: Vec<Vec<u32>> = distinct
        .iter()
        .map(|(w, _)| w.bytes().map(byte_id).collect())
        .collect();
    let counts: Vec<u64> = distinct.iter().map(|&(_, c)| c).collect();

    let mut pair_counts: HashMap<(u32, u32), u64> = HashMap::new();
    let mut pair_words: HashMap<(u32, u32), Vec<usize>> = HashMap::new();
    for (index, word) in words.iter().enumerate() {
        for pair in word.windows(2) {
            *pair_counts.entry((pair[0], pair[1])).or_insert(0) += counts[index];
            pair_words
                .entry((pair[0], pair[1]))
                .or_default()
                .push(index);
        }
    }
    // Max-heap on count, then the smaller pair first.
    let mut heap: BinaryHeap<(u64, Reverse<(u32, u32)>)> = pair_counts
        .iter()
        .map(|(&pair, &count)| (count, Reverse(pair)))
        .collect();

    let mut merges = Vec::new();
    while tokens.len() < config.vocab_size {
        let Some((count, Reverse(pair))) = heap.pop() else {
            break;
        };
        if pair_counts.get(&pair) != Some(&count) {
            continue; // stale entry: the count changed and a fresh entry was pushed
        }
        if count < config.min_frequency.max(1) {
            break;
        }
        let mut joined = tokens[pair.0 as usize].clone();
        joined.extend_from_slice(&tokens[pair.1 as usize]);
        // The same bytes can be reached by two different pairs; the token is shared.
        let merged = match token_index.get(&joined) {
            Some(&existing) => existing,
            None => {
                let id = tokens.len() as u32;
                token_index.insert(joined.clone(), id);
                tokens.push(joined);
                id
            }
        };
        merges.push(Merge {
            left: pair.0,
            right: pair.1,
            merged,
        });

        let mut affected = pair_words.remove(&pair).unwrap_or_default();
        affected.sort_unstable();
        affected.dedup();
        let mut delta: HashMap<(u32, u32), i64> = HashMap::new();
        for &index in &affected {
            let word = &mut words[index];
            let weight = counts[index] as i64;
            if !word.windows(2).any(|w| (w[0], w[1]) == pair) {
                continue; // an earlier merge removed the pair from this word
            }
            for w in word.windows(2) {
                *delta.entry((w[0], w[1])).or_insert(0) -= weight;
            }
            *word = merge_word(word, pair, merged);
            for w in word.windows(2) {
                *delta.entry((w[0], w[1])).or_insert(0) += weight;
                if w[0] == merged || w[1] == merged {
                    pair_words.entry((w[0], w[1])).or_default().push(index);
                }
            }
        }
        pair_counts.remove(&pair);
        let mut changed: Vec<((u32, u32), i64)> = delta
            .into_iter()
            .filter(|&(p, d)| d != 0 && p != pair)
            .collect();
        changed.sort_unstable();
        for (changed_pair, change) in changed {
            let entry = pair_counts.entry(changed_pair).or_insert(0);
            *entry = entry.saturating_add_signed(change);
            if *entry == 0 {
                pair_counts.remove(&changed_pair);
            } else {
                heap.push((*entry, Reverse(changed_pair)));
            }
        }
    }
    let model = BpeModel::new(tokens, merges)?;
    BpeTokenizer::new(model, (0..SPECIALS.len() as u32).collect())
}

/// `word` with every non-overlapping occurrence of `pair` (left to right) replaced by `merged`.
fn merge_word(word: &[u32], pair: (u32, u32), merged: u32) -> Vec<u32> {
    let mut out = Vec::with_capacity(word.len());
    let mut i = 0;
    while i < word.len() {
        if i + 1 < word.len() && (word[i], word[i + 1]) == pair {
            out.push(merged);
            i += 2;
        } else {
            out.push(word[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::Tokenizer;

    #[test]
    fn merge_word_is_left_to_right_and_non_overlapping() {
        assert_eq!(merge_word(&[1, 1, 1], (1, 1), 9), vec![9, 1]);
        assert_eq!(merge_word(&[1, 2, 1, 2], (1, 2), 9), vec![9, 9]);
    }

    #[test]
    fn most_frequent_pair_is_merged_first() {
        // " the" x3 and " then" x1: the first merge joins the most frequent pair.
        let corpus = ["a the the the then"];
        let config = BpeTrainerConfig {
            vocab_size: 259,
            min_frequency: 1,
        };
        let tok = train_bpe(corpus.iter().copied(), &config).unwrap();
        let first = tok.model().merges()[0];
        let bytes = |id| tok.model().token_bytes(id).unwrap().to_vec();
        // Pairs " t", "th", "he" each occur 4 times; ties go to the smaller id pair: " " < "h" < "t".
        assert_eq!(
            (bytes(first.left), bytes(first.right)),
            (b" ".to_vec(), b"t".to_vec())
        );
        assert_eq!(tok.vocab_size(), 259);
    }

    #[test]
    fn frequent_words_become_single_tokens() {
        let text = "the cat sat on the mat. the cat sat. ".repeat(20);
        let config = BpeTrainerConfig {
            vocab_size: 300,
            min_frequency: 2,
        };
        let tok = train_bpe([text.as_str()], &config).unwrap();
        assert_eq!(tok.encode(" cat").len(), 1);
        assert_eq!(tok.encode("the cat sat").len(), 3);
        // Training stops when no pair is frequent enough.
        assert!(tok.vocab_size() < 300);
        let ids = tok.encode("zebra!");
        assert_eq!(tok.decode(&ids).unwrap(), "zebra!");
    }

    #[test]
    fn training_is_deterministic() {
        let text = "one two three two three three four four four four";
        let config = BpeTrainerConfig {
            vocab_size: 280,
            min_frequency: 1,
        };
        let a = train_bpe([text], &config).unwrap();
        let b = train_bpe([text], &config).unwrap();
        assert_eq!(a.model().merges(), b.model().merges());
    }

    #[test]
    fn too_small_vocab_is_an_error() {
        let config = BpeTrainerConfig {
            vocab_size: 100,
            min_frequency: 1,
        };
        assert!(train_bpe(["x"], &config).is_err());
    }
}
