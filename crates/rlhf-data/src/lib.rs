//! # rlhf-data
//!
//! Human-feedback data: records for every kind of feedback, the formats of the field, tokenizers,
//! batching, and the synthetic HHH world with simulated labelers.
//!
//! Parts:
//! - [`records`]: the feedback record types (pairwise, K-way rankings with ties, rule violations,
//!   question answers, Likert ratings, long-format labels) and their invariants.
//!
//! Status: being built (data issue).

pub mod records;
