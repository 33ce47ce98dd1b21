//! Padding: [`PaddedBatch`] and the SFT, reward-model and PPO-prompt batches built on it.

use super::BatchError;

/// Which side padding goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadSide {
    /// Tokens first, padding after (SFT, reward model).
    Right,
    /// Padding first, tokens after (prompts for generation).
    Left,
}

/// Padded sequences with masks, row-major `(B, T)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaddedBatch {
    /// Number of rows `B`.
    pub batch_size: usize,
    /// Row length `T` (the longest row).
    pub seq_len: usize,
    /// Which side the padding is on.
    pub side: PadSide,
    /// Token ids, padding = the pad id: (B, T).
    pub input_ids: Vec<u32>,
    /// True on real tokens: (B, T).
    pub attention_mask: Vec<bool>,
    /// Position of each real token counted from the row's first real token, 0 on padding: (B, T).
    pub position_ids: Vec<u32>,
    /// Real tokens per row: (B,).
    pub lengths: Vec<usize>,
}

impl PaddedBatch {
    /// The ids of row `b`: (T,).
    pub fn row(&self, b: usize) -> &[u32] {
        &self.input_ids[b * self.seq_len..(b + 1) * self.seq_len]
    }

    /// Column of row `b`'s last real token (where a reward head reads), `None` for an empty row.
    pub fn last_token_index(&self, b: usize) -> Option<usize> {
        match (self.lengths[b], self.side) {
            (0, _) => None,
            (len, PadSide::Right) => Some(len - 1),
            (_, PadSide::Left) => Some(self.seq_len - 1),
        }
    }

    /// Column where row `b`'s real tokens start.
    pub fn first_token_index(&self, b: usize) -> usize {
        match self.side {
            PadSide::Right => 0,
            PadSide::Left => self.seq_len - self.lengths[b],
        }
    }
}

/// Pads `sequences` to a common length on `side` with `pad_id`.
///
/// With `max_len`, longer sequences are truncated: right-padded rows keep their start,
/// left-padded rows (prompts) keep their end, the part next to what is generated.
pub fn pad_batch<S: AsRef<[u32]>>(
    sequences: &[S],
    side: PadSide,
    pad_id: u32,
    max_len: Option<usize>,
) -> Result<PaddedBatch, BatchError> {
    if max_len == Some(0) {
        return Err(BatchError::ZeroMaxLen);
    }
    let kept: Vec<&[u32]> = sequences
        .iter()
        .map(|s| {
            let s = s.as_ref();
            let keep = max_len.map_or(s.len(), |m| s.len().min(m));
            match side {
                PadSide::Right => &s[..keep],
                PadSide::Left => &s[s.len() - keep..],
            }
        })
        .collect();
    let batch_size = kept.len();
    let seq_len = kept.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut input_ids = vec![pad_id; batch_size * seq_len]; // (B, T)
    let mut attention_mask = vec![false; batch_size * seq_len]; // (B, T)
    let mut position_ids = vec![0u32; batch_size * seq_len]; // (B, T)
    for (b, tokens) in kept.iter().enumerate() {
        let start = b * seq_len
            + match side {
                PadSide::Right => 0,
                PadSide::Left => seq_len - tokens.len(),
            };
        for (offset, &token) in tokens.iter().enumerate() {
            input_ids[start + offset] = token;
            attention_mask[start + offset] = true;
            position_ids[start + offset] = offset as u32;
        }
    }
    let lengths = kept.iter().map(|s| s.len()).collect();
    Ok(PaddedBatch {
        batch_size,
        seq_len,
        side,
        input_ids,
        attention_mask,
        position_ids,
        lengths,
    })
}

/// Prompts for generation (PPO rollouts): left padding, truncated to their last `max_len` tokens.
pub fn prompt_batch<S: AsRef<[u32]>>(
    prompts: &[S],
    pad_id: u32,
    max_len: Option<usize>,
) -> Result<PaddedBatch, BatchError> {
    pad_batch(prompts, PadSide::Left, pad_id, max_len)
}

/// An SFT batch: prompt + response rows, right-padded, with a response-only loss mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftBatch {
    /// The padded prompt + response (+ EOS) rows.
    pub batch: PaddedBatch,
    /// True where the token is part of the response (EOS included): (B, T). The logits at column
    /// `t - 1` are trained to predict the token at `t` wherever `loss_mask[b, t]`; column 0 is
    /// never a target.
    pub loss_mask: Vec<bool>,
}

/// Builds an SFT batch from `(prompt, response)` token pairs.
///
/// `eos_id`, when given, is appended to every response so the model learns to stop. With
/// `max_len`, rows keep their start (prompt first); a prompt that leaves no response token
/// within `max_len` is an error rather than a row with nothing to learn.
pub fn sft_batch<P: AsRef<[u32]>, R: AsRef<[u32]>>(
    examples: &[(P, R)],
    pad_id: u32,
    eos_id: Option<u32>,
    max_len: Option<usize>,
) -> Result<SftBatch, BatchError> {
    let mut rows = Vec::with_capacity(examples.len());
    let mut prompt_lens = Vec::with_capacity(examples.len());
    for (index, (prompt, response)) in examples.iter().enumerate() {
        let (prompt, response) = (prompt.as_ref(), response.as_ref());
        let mut row = Vec::with_capacity(prompt.len() + response.len() + 1);
        row.extend_from_slice(prompt);
        row.extend_from_slice(response);
        row.extend(eos_id);
        if let Some(max_len) = max_len
            && prompt.len() >= max_len
            && row.len() > prompt.len()
        {
            return Err(BatchError::NoResponseLeft { index, max_len });
        }
        prompt_lens.push(prompt.len());
        rows.push(row);
    }
    let batch = pad_batch(&rows, PadSide::Right, pad_id, max_len)?;
    let mut loss_mask = vec![false; batch.input_ids.len()]; // (B, T)
    for (b, &prompt_len) in prompt_lens.iter().enumerate() {
        for t in prompt_len.max(1)..batch.lengths[b] {
            loss_mask[b * batch.seq_len + t] = true;
        }
    }
    Ok(SftBatch { batch, loss_mask })
}

/// A reward-model batch of preference pairs: rows `0..P` are the chosen sequences, rows `P..2P`
/// the rejected ones, in the same order; right-padded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardPairBatch {
    /// The padded rows: (2P, T).
    pub batch: PaddedBatch,
    /// Number of pairs `P`.
    pub num_pairs: usize,
}

impl RewardPairBatch {
    /// Row indices of pair `i`: (chosen row, rejected row).
    pub fn pair_rows(&self, i: usize) -> (usize, usize) {
        (i, self.num_pairs + i)
    }
}

/// Builds a reward-model batch from `(prompt, chosen response, rejected response)` token triples.
pub fn reward_pair_batch<P: AsRef<[u32]>, C: AsRef<[u32]>, R: AsRef<[u32]>>(
    pairs: &[(P, C, R)],
    pad_id: u32,
    max_len: Option<usize>,
) -> Result<RewardPairBatch, BatchError> {
    let join = |prompt: &[u32], response: &[u32]| [prompt, response].concat();
    let mut rows: Vec<Vec<u32>> = pairs
        .iter()
        .map(|(p, c, _)| join(p.as_ref(), c.as_ref()))
        .collect();
    rows.extend(pairs.iter().map(|(p, _, r)| join(p.as_ref(), r.as_ref())));
    let batch = pad_batch(&rows, PadSide::Right, pad_id, max_len)?;
    Ok(RewardPairBatch {
        batch,
        num_pairs: pairs.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_padding_masks_and_positions() {
        let b = pad_batch(&[vec![1, 2], vec![3, 4, 5]], PadSide::Right, 9, None).unwrap();
        assert_eq!((b.batch_size, b.seq_len), (2, 3));
        assert_eq!(b.input_ids, vec![1, 2, 9, 3, 4, 5]);
        assert_eq!(b.attention_mask, vec![true, true, false, true, true, true]);
        assert_eq!(b.position_ids, vec![0, 1, 0, 0, 1, 2]);
        assert_eq!(b.last_token_index(0), Some(1));
        assert_eq!(b.last_token_index(1), Some(2));
        assert_eq!(b.row(1), &[3, 4, 5]);
    }

    #[test]
    fn left_padding_positions_start_at_the_first_real_token() {
        let b = prompt_batch(&[vec![1], vec![2, 3, 4]], 0, None).unwrap();
        assert_eq!(b.input_ids, vec![0, 0, 1, 2, 3, 4]);
        assert_eq!(b.position_ids, vec![0, 0, 0, 0, 1, 2]);
        assert_eq!(b.first_token_index(0), 2);
        assert_eq!(b.last_token_index(0), Some(2));
    }

    #[test]
    fn truncation_keeps_the_start_on_the_right_and_the_end_on_the_left() {
        let r = pad_batch(&[vec![1, 2, 3, 4]], PadSide::Right, 0, Some(2)).unwrap();
        assert_eq!(r.input_ids, vec![1, 2]);
        let l = pad_batch(&[vec![1, 2, 3, 4]], PadSide::Left, 0, Some(2)).unwrap();
        assert_eq!(l.input_ids, vec![3, 4]);
        assert_eq!(
            pad_batch(&[vec![1]], PadSide::Left, 0, Some(0)),
            Err(BatchError::ZeroMaxLen)
        );
    }

    #[test]
    fn empty_inputs_give_empty_batches() {
        let none: [Vec<u32>; 0] = [];
        let b = pad_batch(&none, PadSide::Right, 0, None).unwrap();
        assert_eq!((b.batch_size, b.seq_len), (0, 0));
        let b = pad_batch(&[Vec::<u32>::new()], PadSide::Right, 0, None).unwrap();
        assert_eq!(b.last_token_index(0), None);
    }

    #[test]
    fn sft_loss_mask_covers_only_the_response_and_eos() {
        let examples = [(vec![10, 11, 12], vec![20, 21]), (vec![10], vec![22])];
        let s = sft_batch(&examples, 0, Some(99), None).unwrap();
        assert_eq!(
            s.batch.input_ids,
            vec![10, 11, 12, 20, 21, 99, 10, 22, 99, 0, 0, 0]
        );
        let expected = [
            false, false, false, true, true, true, false, true, true, false, false, false,
        ];
        assert_eq!(s.loss_mask, expected);
    }

    #[test]
    fn sft_truncation_cuts_the_response_and_rejects_a_prompt_that_fills_the_row() {
        let s = sft_batch(&[(vec![1, 2], vec![3, 4, 5])], 0, None, Some(3)).unwrap();
        assert_eq!(s.batch.input_ids, vec![1, 2, 3]);
        assert_eq!(s.loss_mask, vec![false, false, true]);
        let err = sft_batch(&[(vec![1, 2, 3], vec![4])], 0, None, Some(3)).unwrap_err();
        assert_eq!(
            err,
            BatchError::NoResponseLeft {
                index: 0,
                max_len: 3
            }
        );
    }

    #[test]
    fn reward_pairs_put_chosen_rows_first() {
        let pairs = [
            (vec![1], vec![2, 3], vec![4]),
            (vec![5], vec![6], vec![7, 8, 9]),
        ];
        let r = reward_pair_batch(&pairs, 0, None).unwrap();
        assert_eq!(r.batch.batch_size, 4);
        assert_eq!(r.pair_rows(1), (1, 3));
        assert_eq!(r.batch.row(0), &[1, 2, 3, 0]);
        assert_eq!(r.batch.row(2), &[1, 4, 0, 0]);
        assert_eq!(r.batch.row(3), &[5, 7, 8, 9]);
        assert_eq!(r.batch.last_token_index(2), Some(1));
    }

    proptest::proptest! {
        #[test]
        fn padding_keeps_every_token_and_its_position(
            seqs in proptest::collection::vec(proptest::collection::vec(1u32..50, 0..12), 0..8),
            left in proptest::bool::ANY,
        ) {
            let side = if left { PadSide::Left } else { PadSide::Right };
            let b = pad_batch(&seqs, side, 0, None).unwrap();
            for (row, seq) in seqs.iter().enumerate() {
                let cols = b.first_token_index(row)..b.first_token_index(row) + seq.len();
                let span = row * b.seq_len;
                let real: Vec<u32> = (0..b.seq_len)
                    .filter(|&t| b.attention_mask[span + t])
                    .map(|t| b.input_ids[span + t])
                    .collect();
                proptest::prop_assert_eq!(&real, seq);
                for (k, t) in cols.enumerate() {
                    proptest::prop_assert!(b.attention_mask[span + t]);
                    proptest::prop_assert_eq!(b.position_ids[span + t], k as u32);
                }
            }
        }
    }
}
