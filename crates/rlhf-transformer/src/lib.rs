//! # rlhf-transformer
//!
//! A GPT-2-family decoder written against the `rlhf-tensor` API: explicit forward and backward,
//! KV-cache generation, Hugging Face GPT-2 checkpoints, pretraining and supervised fine-tuning.
//!
//! Status: not yet implemented; the transformer issue fills this crate. Nothing is exported yet.
