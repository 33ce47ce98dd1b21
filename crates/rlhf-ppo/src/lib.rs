//! # rlhf-ppo
//!
//! PPO for language models: rollouts, per-token KL penalties and adaptive controllers, GAE,
//! whitening, clipped policy and value losses, PPO-ptx, the trainer and its metrics.
//!
//! Status: not yet implemented; the PPO issue fills this crate. Nothing is exported yet.
