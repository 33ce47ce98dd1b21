//! # rlhf-data
//!
//! Human-feedback data: records for every kind of feedback, the formats of the field, tokenizers,
//! batching, and the synthetic HHH world with simulated labelers.
//!
//! Status: being built (data issue).
