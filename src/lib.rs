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
//! - [`raters`]: rater-quality statistics, aggregation and pairwise ranking;
//! - [`pipeline`]: the RLHF pipeline as one typed function per stage over a run directory
//!   (what `rlhf run` and the per-stage commands call).
//!
//! The pipeline on the micro preset (a tiny world and model; the default preset is the same
//! code at full size):
//!
//! ```
//! use rlhf::pipeline::{self, Policy, Preset, Progress, RunConfig, RunContext, RunDir};
//! let dir = std::env::temp_dir().join(format!("rlhf-facade-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let config = RunConfig::preset(Preset::Micro)?;
//! let ctx = RunContext::new(config, RunDir::create(&dir)?, Progress::new(true))?;
//! let world = pipeline::world(&ctx)?; // 1: the synthetic HHH world
//! let base = pipeline::pretrain(&ctx, &world)?; // 2: tokenizer + base model
//! let sft = pipeline::sft(&ctx, &base, None)?; // 3: SFT on the demonstrations
//! let labels = pipeline::label(&ctx, &world, &base, &sft)?; // 4: K samples, simulated labelers
//! let rated = pipeline::raters(&ctx, &world, &labels)?; // 5: screening, preference dataset
//! assert!(!rated.report.kept.is_empty() && !rated.preferences.is_empty());
//! assert!(!labels.sft_references().is_empty()); // what a reward model is normalised on
//! // 6-7: the reward model and PPO train on `rated.preferences` from `sft.model_dir`.
//! let policies = [
//!     Policy::new("base", base.model_dir.clone()),
//!     Policy::new("sft", sft.model_dir.clone()),
//! ];
//! let evals = pipeline::evaluate(&ctx, &world, &base, &policies, false)?; // 8
//! assert_eq!(evals[1].kl_to_sft, 0.0);
//! assert!(evals.iter().all(|e| (0.0..=1.0).contains(&e.total)));
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), pipeline::PipelineError>(())
//! ```

pub use rlhf_data as data;
pub use rlhf_ppo as ppo;
pub use rlhf_raters as raters;
pub use rlhf_reward as reward;
pub use rlhf_tensor as tensor;
pub use rlhf_transformer as transformer;

pub mod pipeline;
