//! # rlhf-reward
//!
//! Reward models learned from human preferences (Bradley–Terry, margin, InstructGPT K-wise and
//! rule-auxiliary losses), their training, normalisation and evaluation, and the `RewardFunction`
//! trait shared by learned and rule-based rewards.
//!
//! Status: not yet implemented; the reward-model issue fills this crate. Nothing is exported yet.
