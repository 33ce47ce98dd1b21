//! # rlhf-data
//!
//! Human-feedback data: records for every kind of feedback, the formats of the field, tokenizers,
//! batching, and the synthetic HHH world with simulated labelers.
//!
//! Parts:
//! - [`records`]: the feedback record types (pairwise, K-way rankings with ties, rule violations,
//!   question answers, Likert ratings, long-format labels) and their invariants.
//! - [`tokenizer`]: GPT-2 (`r50k_base`) and trained byte-level BPE tokenizers, Hugging Face
//!   `tokenizer.json`, one [`tokenizer::Tokenizer`] trait.
//! - [`batching`]: padding (right for SFT / reward model, left for PPO prompts), masks, position
//!   ids, SFT loss masks, seeded shuffling, hash-based train / validation / test splits.
//!
//! Status: being built (data issue).

pub mod batching;
pub mod records;
pub mod tokenizer;
