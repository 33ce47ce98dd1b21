//! Batching token sequences for training: padding with attention masks and position ids,
//! response-only SFT loss masks, reward-model pair batches, seeded shuffling and deterministic
//! train / validation / test splits.
//!
//! Outputs are plain row-major `Vec`s of shape `(B, T)` (this crate does not depend on tensors).
//! Conventions, as in Hugging Face / TRL:
//! - SFT and reward-model batches are padded on the right, PPO prompts on the left (so that
//!   generation continues every row at the same column).
//! - `attention_mask[b, t]` is true on real tokens.
//! - `position_ids` count real tokens only: 0 at the first real token of the row (also with left
//!   padding), and 0 on padding.
//!
//! Parts: [`pad`] (padding and the batch kinds), [`shuffle`] (seeded permutations and minibatches),
//! [`split`] (hash-based splits).
//!
//! ```
//! use rlhf_data::batching::{PadSide, pad_batch};
//! let batch = pad_batch(&[vec![5, 6, 7], vec![8]], PadSide::Left, 0, None)?;
//! assert_eq!(batch.input_ids, vec![5, 6, 7, 0, 0, 8]);
//! assert_eq!(batch.position_ids, vec![0, 1, 2, 0, 0, 0]);
//! assert_eq!(batch.attention_mask, vec![true, true, true, false, false, true]);
//! # Ok::<(), rlhf_data::batching::BatchError>(())
//! ```

pub mod pad;
pub mod shuffle;
pub mod split;

pub use pad::{
    PadSide, PaddedBatch, RewardPairBatch, SftBatch, pad_batch, prompt_batch, reward_pair_batch,
    sft_batch,
};
pub use shuffle::{minibatches, shuffled_indices};
pub use split::{Split, SplitFractions, fnv1a_64, split_of};

/// Errors of batching and splitting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BatchError {
    /// A batch size of zero was asked for.
    #[error("batch size must be at least 1")]
    ZeroBatchSize,
    /// A maximum length of zero was asked for.
    #[error("max_len must be at least 1")]
    ZeroMaxLen,
    /// SFT example `index` leaves no response token within `max_len`.
    #[error(
        "example {index}: the prompt fills max_len {max_len}, leaving no response token to train on"
    )]
    NoResponseLeft {
        /// Index of the example in the batch.
        index: usize,
        /// The maximum length.
        max_len: usize,
    },
    /// Split fractions are negative, not finite, or add up to more than 1.
    #[error(
        "split fractions must be finite, >= 0 and add up to at most 1 (validation {validation}, test {test})"
    )]
    BadFractions {
        /// The validation fraction.
        validation: f64,
        /// The test fraction.
        test: f64,
    },
}
