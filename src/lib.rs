//! # rlhf
//!
//! Align language models with human feedback, end to end. This facade joins the workspace's crates
//! and hosts the `rlhf` command-line tool:
//!
//! - [`tensor`]: tensors, every GPT op with explicit forward and backward, optimizers;
//! - [`transformer`]: the GPT-2-family decoder, generation, checkpoints, LM training;
//! - [`data`]: feedback records, formats, tokenizers, batching, the synthetic HHH world;
//! - [`reward`]: reward models and their losses;
//! - [`ppo`]: PPO for language models;
//! - [`raters`]: rater-quality statistics, aggregation and pairwise ranking.

pub use rlhf_data as data;
pub use rlhf_ppo as ppo;
pub use rlhf_raters as raters;
pub use rlhf_reward as reward;
pub use rlhf_tensor as tensor;
pub use rlhf_transformer as transformer;

pub mod pipeline;
