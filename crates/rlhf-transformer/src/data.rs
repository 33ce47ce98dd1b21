//! Training examples for language modelling: packed pretraining windows and SFT examples with a
//! response-only loss, and their batching into right-padded model inputs with next-token targets.

use serde::{Deserialize, Serialize};

use crate::{ModelError, ModelInput, Padding, Result, next_token_targets};

/// One training sequence: tokens and which of them are predicted (scored by the loss).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// Token ids.
    pub tokens: Vec<u32>,
    /// True where the token is a loss target (predicted from the tokens before it).
    pub loss_mask: Vec<bool>,
}

impl Example {
    /// Every token after the first is a target (pretraining).
    pub fn full(tokens: Vec<u32>) -> Example {
        let loss_mask = vec![true; tokens.len()];
        Example { tokens, loss_mask }
    }

    /// A prompt and its response; with `completion_only` only the response tokens are targets
    /// (TRL's completion-only mode), otherwise every token is.
    pub fn sft(prompt: &[u32], response: &[u32], completion_only: bool) -> Example {
        let mut tokens = prompt.to_vec();
        tokens.extend_from_slice(response);
        let mut loss_mask = vec![!completion_only; prompt.len()];
        loss_mask.extend(std::iter::repeat_n(true, response.len()));
        Example { tokens, loss_mask }
    }

    /// Number of positions the loss scores (targets after the first token).
    pub fn target_count(&self) -> usize {
        self.loss_mask.iter().skip(1).filter(|&&m| m).count()
    }
}

/// Cuts a token stream into consecutive windows of `seq_len` tokens (the last, shorter window is
/// kept when it has at least two tokens), each a pretraining example.
pub fn pack(stream: &[u32], seq_len: usize) -> Result<Vec<Example>> {
    if seq_len < 2 {
        return Err(ModelError::config(
            "seq_len",
            format!("must be >= 2 to predict anything, got {seq_len}"),
        ));
    }
    Ok(stream
        .chunks(seq_len)
        .filter(|w| w.len() >= 2)
        .map(|w| Example::full(w.to_vec()))
        .collect())
}

/// A batch ready for the model: the input and its next-token targets.
#[derive(Debug, Clone)]
pub struct LmBatch {
    /// Right-padded tokens, mask and positions.
    pub input: ModelInput,
    /// Next-token targets (B T), `IGNORE_INDEX` where nothing is scored.
    pub targets: Vec<i32>,
    /// Number of scored positions.
    pub count: usize,
}

/// Right-pads examples (truncated to `max_len` tokens) into one batch with targets.
pub fn lm_batch(examples: &[&Example], max_len: usize, pad_id: u32) -> Result<LmBatch> {
    for (i, e) in examples.iter().enumerate() {
        if e.tokens.len() != e.loss_mask.len() || e.tokens.is_empty() {
            return Err(ModelError::Input(format!(
                "example {i}: {} tokens but {} loss-mask flags (need equal, > 0)",
                e.tokens.len(),
                e.loss_mask.len()
            )));
        }
    }
    let seqs: Vec<&[u32]> = examples
        .iter()
        .map(|e| &e.tokens[..e.tokens.len().min(max_len)])
        .collect();
    let input = ModelInput::padded(&seqs, pad_id, Padding::Right)?;
    let t = input.seq_len;
    let mut loss_mask = vec![false; input.batch * t];
    for (row, e) in examples.iter().enumerate() {
        let n = e.tokens.len().min(t);
        loss_mask[row * t..row * t + n].copy_from_slice(&e.loss_mask[..n]);
    }
    let targets = next_token_targets(&input, Some(&loss_mask))?;
    let count = targets
        .iter()
        .filter(|&&x| x != rlhf_tensor::ops::cross_entropy::IGNORE_INDEX)
        .count();
    Ok(LmBatch {
        input,
        targets,
        count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlhf_tensor::ops::cross_entropy::IGNORE_INDEX;

    #[test]
    fn sft_targets_only_the_response() {
        let e = Example::sft(&[10, 11, 12], &[20, 21], true);
        let short = Example::full(vec![1, 2]);
        let b = lm_batch(&[&e, &short], 16, 0).unwrap();
        let i = IGNORE_INDEX;
        assert_eq!(b.targets, vec![i, i, 20, 21, i, 2, i, i, i, i]);
        assert_eq!(b.count, 3);
        assert_eq!(e.target_count(), 2);
    }

    #[test]
    fn packing_cuts_windows() {
        let w = pack(&[1, 2, 3, 4, 5, 6, 7], 3).unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(w[1].tokens, vec![4, 5, 6]);
        assert!(pack(&[1, 2], 1).is_err());
    }
}
