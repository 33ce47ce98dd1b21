//! # rlhf-tensor
//!
//! Being built (foundation issue).
