//! # rlhf-transformer
//!
//! A GPT-2-family decoder written only against the `rlhf-tensor` API (it never matches on the
//! device): explicit forward and backward, KV-cache generation, Hugging Face GPT-2 checkpoints,
//! pretraining and supervised fine-tuning.
//!
//! Parts:
//! - [`GptConfig`] ([`config`]): hyper-parameters with HF `GPT2Config` keys.
//! - [`GptParams`] ([`params`]): one struct of named tensors per block (HF names, Conv1D
//!   `[in, out]` layout), the scalar heads; the same structs hold gradients.
//! - [`ModelInput`] ([`input`]): tokens, attention mask, position ids from the mask; left/right
//!   padding.
//! - [`Gpt`] ([`model`]): forward keeping activations, backward block by block in reverse.
//! - [`Recompute`] ([`recompute`]): optional activation recomputation (LayerNorm and GELU
//!   outputs dropped by the forward, rebuilt by the backward) and [`Forward::activation_bytes`].
//! - [`heads`]: the tied LM head, chunked fused cross-entropy and selected log-prob/entropy paths
//!   that never hold (B, T, V) logits.
//! - [`checkpoint`]: HF GPT-2 directories (`config.json` + `model.safetensors`), atomic writes
//!   ([`files`]).
//! - [`KvCache`] ([`kv_cache`]), [`Sampling`] ([`sampling`]) and [`Gpt::generate`] ([`generate`]):
//!   batched left-padded generation, greedy/temperature/top-k/top-p, seeded, EOS per sequence.
//! - [`Trainer`] ([`train`], [`data`], [`schedule`], [`trainer_state`]): pretraining on packed
//!   text and SFT with a response-only loss; AdamW/SGD, warmup + decay, clipping, accumulation,
//!   validation, checkpoints and exact resume; f32 or bf16 mixed [`Precision`].
//! - [`DataParallel`] ([`data_parallel`]): one rank of a data-parallel run: its slice of every
//!   global batch, gradients summed over ranks in ~25 MB buckets overlapped with the backward
//!   ([`Gpt::backward_with_hook`]), optional ZeRO-1 optimizer-state sharding.
//! - [`shard`]: data-parallel CPU passes for small models ([`Gpt::lm_forward_backward`],
//!   [`run_shards`]): a batch cut into shards of whole sequences, one thread each, gradients
//!   summed; the shard count never depends on the thread count, so results are reproducible.
//!
//! Every path runs on any device: build or load a model on `Device::Cuda(n)` (or move it with
//! [`Gpt::to_device`]) and the forward, backward, chunked heads, KV-cache generation (cache,
//! logits and sampling on the device), training and checkpoints run there; only scalars,
//! per-position losses / log-probs, sampled tokens and the finished mask cross to the host.
//! [`Precision::Bf16`] trains with bf16 weights and activations from f32 master weights.
//!
//! ```
//! use rlhf_tensor::{Device, Rng};
//! use rlhf_transformer::{Gpt, GptConfig, ModelInput, next_token_targets};
//! let model = Gpt::new(GptConfig::new(16, 8, 8, 1, 2), 0, &mut Rng::new(0), Device::Cpu)?;
//! let input = ModelInput::dense(vec![1, 2, 3, 4], 1, 4)?;
//! let targets = next_token_targets(&input, None)?;
//! let fwd = model.forward(&input)?;
//! let mut grads = model.params.zeros_like()?;
//! let loss = model.lm_loss(&fwd.hidden, &targets, Some(&mut grads))?;
//! model.backward(&fwd, loss.dhidden.as_ref(), None, &mut grads)?;
//! assert_eq!(loss.count, 3);
//! # Ok::<(), rlhf_transformer::ModelError>(())
//! ```

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod data_parallel;
mod error;
pub mod files;
pub mod generate;
pub mod heads;
pub mod input;
pub mod kv_cache;
pub mod model;
pub mod params;
pub mod recompute;
pub mod sampling;
pub mod schedule;
pub mod shard;
pub mod train;
pub mod trainer_state;

pub use config::GptConfig;
pub use data::{Example, LmBatch, lm_batch, pack};
pub use data_parallel::DataParallel;
pub use error::{ModelError, Result};
pub use generate::{Generation, GenerationConfig};
pub use heads::{LmLoss, LogProbs, next_token_targets};
pub use input::{ModelInput, Padding, position_ids_from_mask};
pub use kv_cache::KvCache;
pub use model::{Forward, Gpt};
pub use params::{BlockParams, GptParams, ScalarHeads};
pub use recompute::Recompute;
pub use sampling::Sampling;
pub use schedule::{Decay, LrSchedule};
pub use shard::{LmPass, ShardGrads, run_shards, shard_count, shard_rows};
pub use train::{EvalLog, OptimizerConfig, Precision, StepLog, TrainConfig, TrainEvent, Trainer};

#[cfg(test)]
mod data_parallel_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod recompute_tests;
#[cfg(test)]
mod train_tests;
