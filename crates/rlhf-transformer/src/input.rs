//! A batch of token ids with its attention mask and position ids, and padding helpers.

use crate::{ModelError, Result};

/// Which side short sequences are padded on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Real tokens first, padding after (training).
    Right,
    /// Padding first, real tokens last (generation prompts).
    Left,
}

/// One (B, T) batch: tokens, which positions are real, and their position ids.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInput {
    /// Token ids, (B, T) row-major; padded positions hold any valid id.
    pub tokens: Vec<u32>,
    /// True at real tokens, false at padding, (B, T).
    pub attention_mask: Vec<bool>,
    /// Position ids, (B, T): the count of real tokens before each position (0 at padding).
    pub position_ids: Vec<u32>,
    /// Number of sequences B.
    pub batch: usize,
    /// Sequence length T.
    pub seq_len: usize,
}

impl ModelInput {
    /// Unpadded sequences of equal length T: mask all true, positions 0..T.
    pub fn dense(tokens: Vec<u32>, batch: usize, seq_len: usize) -> Result<ModelInput> {
        let mask = vec![true; tokens.len()];
        ModelInput::with_mask(tokens, mask, batch, seq_len)
    }

    /// A batch with an explicit attention mask; position ids are derived from the mask.
    pub fn with_mask(
        tokens: Vec<u32>,
        attention_mask: Vec<bool>,
        batch: usize,
        seq_len: usize,
    ) -> Result<ModelInput> {
        let n = batch * seq_len;
        if tokens.len() != n || attention_mask.len() != n || n == 0 {
            return Err(ModelError::Input(format!(
                "{} tokens and {} mask flags for a ({batch}, {seq_len}) batch; expected {n} > 0 of each",
                tokens.len(),
                attention_mask.len()
            )));
        }
        let position_ids = position_ids_from_mask(&attention_mask, seq_len);
        Ok(ModelInput {
            tokens,
            attention_mask,
            position_ids,
            batch,
            seq_len,
        })
    }

    /// Pads sequences of different lengths to the longest with `pad_id` on `side`.
    pub fn padded<S: AsRef<[u32]>>(
        sequences: &[S],
        pad_id: u32,
        side: Padding,
    ) -> Result<ModelInput> {
        let batch = sequences.len();
        let seq_len = sequences
            .iter()
            .map(|s| s.as_ref().len())
            .max()
            .unwrap_or(0);
        if batch == 0 || seq_len == 0 {
            return Err(ModelError::Input(
                "padding needs at least one non-empty sequence".into(),
            ));
        }
        let mut tokens = Vec::with_capacity(batch * seq_len);
        let mut mask = Vec::with_capacity(batch * seq_len);
        for seq in sequences {
            let seq = seq.as_ref();
            let pad = seq_len - seq.len();
            if side == Padding::Left {
                tokens.extend(std::iter::repeat_n(pad_id, pad));
                mask.extend(std::iter::repeat_n(false, pad));
            }
            tokens.extend_from_slice(seq);
            mask.extend(std::iter::repeat_n(true, seq.len()));
            if side == Padding::Right {
                tokens.extend(std::iter::repeat_n(pad_id, pad));
                mask.extend(std::iter::repeat_n(false, pad));
            }
        }
        ModelInput::with_mask(tokens, mask, batch, seq_len)
    }

    /// Whether every position is a real token (no padding anywhere).
    pub fn is_dense(&self) -> bool {
        self.attention_mask.iter().all(|&m| m)
    }
}

/// Position ids from an attention mask (B, T): the number of real tokens before each position in
/// its row, 0 at padding (Hugging Face's `cumsum(mask) - 1` clamped at 0). Left and right padding
/// alike put each sequence's first real token at position 0.
pub fn position_ids_from_mask(mask: &[bool], seq_len: usize) -> Vec<u32> {
    let mut out = Vec::with_capacity(mask.len());
    for row in mask.chunks(seq_len.max(1)) {
        let mut count = 0u32;
        for &real in row {
            out.push(if real { count } else { 0 });
            count += u32::from(real);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_and_right_padding_give_the_same_positions_to_real_tokens() {
        let seqs = [vec![5u32, 6, 7], vec![8]];
        let right = ModelInput::padded(&seqs, 0, Padding::Right).unwrap();
        assert_eq!(right.tokens, vec![5, 6, 7, 8, 0, 0]);
        assert_eq!(right.position_ids, vec![0, 1, 2, 0, 0, 0]);
        let left = ModelInput::padded(&seqs, 0, Padding::Left).unwrap();
        assert_eq!(left.tokens, vec![5, 6, 7, 0, 0, 8]);
        assert_eq!(
            left.attention_mask,
            vec![true, true, true, false, false, true]
        );
        assert_eq!(left.position_ids, vec![0, 1, 2, 0, 0, 0]);
    }

    #[test]
    fn mismatched_lengths_are_refused() {
        assert!(ModelInput::with_mask(vec![1, 2, 3], vec![true; 3], 2, 2).is_err());
    }
}
