//! # rlhf-data
//!
//! Human-feedback data: records for every kind of feedback, the formats of the field, tokenizers,
//! batching, and the synthetic HHH world with simulated labelers.
//!
//! Parts:
//! - [`records`]: the feedback record types (pairwise, K-way rankings with ties, rule violations,
//!   question answers, Likert ratings, long-format labels) and their invariants.
//! - [`formats`]: HH-RLHF, TRL, OpenAssistant trees, `item,rater,label` tables and our native
//!   JSONL, read as streams (gzip transparent, format detected) and written atomically.
//! - [`validate`]: fail-fast or skip policies over a reader, duplicate reports.
//! - [`stats`]: dataset statistics (counts by kind, prompts, K distribution, lengths).
//! - [`error`]: [`DataError`], naming file, line, field and what was expected.
//! - [`tokenizer`]: GPT-2 (`r50k_base`) and trained byte-level BPE tokenizers, Hugging Face
//!   `tokenizer.json`, one [`tokenizer::Tokenizer`] trait.
//! - [`batching`]: padding (right for SFT / reward model, left for PPO prompts), masks, position
//!   ids, SFT loss masks, seeded shuffling, hash-based train / validation / test splits.
//! - [`world`]: the synthetic HHH world: seeded facts, corpus, demonstrations, prompts,
//!   ground-truth scorers and rules, simulated labelers and gold labels.
//!
//! Status: being built (data issue).

pub mod batching;
pub mod error;
pub mod formats;
pub mod records;
pub mod stats;
pub mod tokenizer;
pub mod validate;
pub mod world;

pub use error::DataError;
