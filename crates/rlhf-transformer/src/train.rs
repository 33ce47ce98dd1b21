//! Language-model training (pretraining on packed text, SFT with a response-only loss): AdamW or
//! SGD, warmup plus decay, global-norm clipping, gradient accumulation, seeded shuffling,
//! periodic validation, checkpoints every N steps and at the end, and exact resume.
//!
//! Determinism: the data order comes from one [`Rng`] (a fresh permutation per epoch) whose
//! state, with the optimizer's moments and the position in the epoch, goes into the checkpoint;
//! resuming replays exactly the steps an uninterrupted run would take.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rlhf_tensor::optim::{AdamW, AdamWConfig, Optimizer, Sgd, SgdConfig, clip_grad_norm};
use rlhf_tensor::{DType, Device, Rng};
use serde::{Deserialize, Serialize};

use crate::data::{Example, lm_batch};
use crate::data_parallel::DataParallel;
use crate::schedule::{Decay, LrSchedule};
use crate::shard::ShardGrads;
use crate::trainer_state::{self, TrainerState};
use crate::{Gpt, GptParams, ModelError, Recompute, Result};

/// Which optimizer updates the weights.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum OptimizerConfig {
    /// AdamW (PyTorch semantics); its `lr` is replaced by the schedule's.
    Adamw(AdamWConfig),
    /// SGD with optional momentum; its `lr` is replaced by the schedule's.
    Sgd(SgdConfig),
}

/// The storage precision of the weights and activations in the forward and backward passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32.
    #[default]
    F32,
    /// Mixed precision (CUDA only): a bf16 copy of the f32 master weights runs the forward and
    /// backward (bf16 activations and gradients, fp32 arithmetic and softmax / loss statistics
    /// inside the kernels, f32 losses); the optimizer updates the f32 master weights with f32
    /// moments from the bf16 gradients, and the bf16 copy is refreshed after each step.
    Bf16,
}

impl std::str::FromStr for Precision {
    type Err = ModelError;

    fn from_str(name: &str) -> Result<Precision> {
        match name.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(ModelError::config(
                "precision",
                format!("unknown precision `{name}`: expected f32 or bf16"),
            )),
        }
    }
}

impl Precision {
    /// The storage dtype of the compute copy.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
        }
    }
}

/// Training hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The optimizer and its settings.
    pub optimizer: OptimizerConfig,
    /// Peak learning rate.
    pub lr: f32,
    /// Linear warmup steps.
    pub warmup_steps: u64,
    /// Decay after warmup.
    pub decay: Decay,
    /// Optimizer steps to take in total.
    pub total_steps: u64,
    /// Sequences per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step (gradient accumulation).
    pub grad_accum_steps: usize,
    /// Examples are truncated to this many tokens.
    pub seq_len: usize,
    /// Clip the global gradient norm to this value (None: no clipping).
    pub max_grad_norm: Option<f32>,
    /// Seed of the data order.
    pub seed: u64,
    /// Validate every this many steps (0: only at the end).
    pub eval_every: u64,
    /// Save a checkpoint every this many steps (0: only at the end).
    pub save_every: u64,
    /// Filler token for padding.
    pub pad_token_id: u32,
    /// Storage precision of the forward and backward (bf16 needs a CUDA device).
    #[serde(default)]
    pub precision: Precision,
    /// Activation recomputation in the forward and backward (same gradients, less memory).
    #[serde(default)]
    pub recompute: Recompute,
}

impl TrainConfig {
    /// AdamW at `lr` with cosine decay, no warmup, clipping at 1, batch 8, no accumulation.
    pub fn new(lr: f32, total_steps: u64, seq_len: usize) -> TrainConfig {
        TrainConfig {
            optimizer: OptimizerConfig::Adamw(AdamWConfig {
                lr,
                ..AdamWConfig::default()
            }),
            lr,
            warmup_steps: 0,
            decay: Decay::Cosine,
            total_steps,
            batch_size: 8,
            grad_accum_steps: 1,
            seq_len,
            max_grad_norm: Some(1.0),
            seed: 0,
            eval_every: 0,
            save_every: 0,
            pad_token_id: 0,
            precision: Precision::F32,
            recompute: Recompute::Off,
        }
    }

    /// Checks sizes and rates.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("total_steps", self.total_steps as usize),
            ("batch_size", self.batch_size),
            ("grad_accum_steps", self.grad_accum_steps),
            ("seq_len", self.seq_len),
        ];
        for (field, v) in positive {
            if v == 0 {
                return Err(ModelError::config(field, "must be > 0"));
            }
        }
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return Err(ModelError::config(
                "lr",
                format!("must be finite and >= 0, got {}", self.lr),
            ));
        }
        if self
            .max_grad_norm
            .is_some_and(|n| !(n > 0.0 && n.is_finite()))
        {
            return Err(ModelError::config(
                "max_grad_norm",
                "must be finite and > 0",
            ));
        }
        Ok(())
    }

    /// The learning-rate schedule these settings describe.
    pub fn schedule(&self) -> LrSchedule {
        LrSchedule {
            peak: self.lr,
            warmup_steps: self.warmup_steps,
            total_steps: self.total_steps,
            decay: self.decay,
        }
    }
}

/// One optimizer step's record.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    /// Steps completed (1-based).
    pub step: u64,
    /// Token-weighted mean training loss of the step.
    pub loss: f32,
    /// Learning rate used.
    pub lr: f32,
    /// Global gradient norm before clipping.
    pub grad_norm: f32,
    /// Tokens scored in the step.
    pub tokens: usize,
    /// Wall time of the step in seconds.
    pub seconds: f64,
}

/// A validation result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalLog {
    /// Steps completed when it ran.
    pub step: u64,
    /// Token-weighted mean loss.
    pub loss: f32,
    /// exp(loss).
    pub perplexity: f32,
    /// Tokens scored.
    pub tokens: usize,
}

/// What [`Trainer::fit`] reports as it goes.
#[derive(Debug, Clone)]
pub enum TrainEvent {
    /// An optimizer step finished.
    Step(StepLog),
    /// A validation pass finished.
    Eval(EvalLog),
    /// A checkpoint was written to this directory.
    Saved(PathBuf),
}

/// Trains a [`Gpt`] on [`Example`]s.
#[derive(Debug, Clone)]
pub struct Trainer {
    /// The model being trained.
    pub model: Gpt,
    /// The settings.
    pub config: TrainConfig,
    pub(crate) optimizer: Optimizer,
    pub(crate) state: TrainerState,
    /// Gradients in the compute precision.
    grads: GptParams,
    /// The extra shards' gradients of data-parallel CPU steps ([`crate::shard`]).
    shard_grads: ShardGrads,
    /// The bf16 copy of the weights that runs the passes under [`Precision::Bf16`].
    compute: Option<Gpt>,
    /// Data parallel over more than one rank (see [`Trainer::set_data_parallel`]).
    parallel: Option<DataParallel>,
}

impl Trainer {
    /// A trainer at step 0.
    pub fn new(model: Gpt, config: TrainConfig) -> Result<Trainer> {
        config.validate()?;
        let optimizer = match config.optimizer {
            OptimizerConfig::Adamw(c) => Optimizer::Adamw(AdamW::new(c)),
            OptimizerConfig::Sgd(c) => Optimizer::Sgd(Sgd::new(c)),
        };
        if config.precision == Precision::Bf16 && model.device() == Device::Cpu {
            return Err(ModelError::config(
                "precision",
                "bf16 needs a CUDA device: the CPU backend computes in f32 (use f32, or --device cuda)",
            ));
        }
        let compute = compute_copy(&model, config.precision)?;
        let grads = compute.as_ref().unwrap_or(&model).params.zeros_like()?;
        let state = TrainerState::fresh(&config);
        Ok(Trainer {
            model,
            config,
            optimizer,
            state,
            grads,
            shard_grads: ShardGrads::default(),
            compute,
            parallel: None,
        })
    }

    /// Trains as one rank of a data-parallel run: this rank takes its slice of every global
    /// batch of `batch_size` examples and the gradients are summed over ranks (see
    /// [`crate::data_parallel`]). A world size of 1 changes nothing.
    pub fn set_data_parallel(&mut self, parallel: DataParallel) -> Result<()> {
        let world = parallel.world_size();
        if world > 1 && self.config.batch_size < world {
            return Err(ModelError::config(
                "batch_size",
                format!(
                    "{} is smaller than the world size {world}: every rank needs at least one \
                     example of each global batch",
                    self.config.batch_size
                ),
            ));
        }
        self.parallel = (world > 1).then_some(parallel);
        Ok(())
    }

    /// Resumes from a checkpoint directory written by [`Trainer::save`] (model, optimizer
    /// moments, step, data order and RNG). `config` must match the saved one except
    /// `total_steps`, `eval_every`, `save_every` and `recompute`.
    pub fn resume(dir: &Path, config: TrainConfig, device: rlhf_tensor::Device) -> Result<Trainer> {
        let model = Gpt::load(dir, device)?;
        let mut trainer = Trainer::new(model, config)?;
        trainer_state::load(&mut trainer, dir)?;
        Ok(trainer)
    }

    /// Optimizer steps completed.
    pub fn step(&self) -> u64 {
        self.state.step
    }

    /// The step losses so far (including those before a resume).
    pub fn history(&self) -> &[StepLog] {
        &self.state.history
    }

    /// Writes the model and the trainer state to `dir`, every file atomically. Under data
    /// parallel every rank must call it (ZeRO-1 gathers the optimizer state) and rank 0 alone
    /// writes.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let gathered = match &self.parallel {
            Some(p) if p.is_zero1() => {
                Some(p.gather_optimizer(&self.optimizer, &self.model.params)?)
            }
            _ => None,
        };
        if self.parallel.as_ref().is_some_and(|p| p.rank() != 0) {
            return Ok(());
        }
        self.model.save(dir)?;
        trainer_state::save(self, gathered.as_ref().unwrap_or(&self.optimizer), dir)
    }

    /// The next `batch_size` examples in the seeded order, starting a new epoch when one ends.
    fn next_examples<'a>(&mut self, data: &'a [Example]) -> Vec<&'a Example> {
        let s = &mut self.state;
        let mut out = Vec::with_capacity(self.config.batch_size);
        while out.len() < self.config.batch_size {
            if s.cursor >= s.order.len() {
                let mut rng = Rng::from_state(&s.rng);
                s.order = (0..data.len()).collect();
                rng.shuffle(&mut s.order);
                s.rng = rng.state();
                s.cursor = 0;
                s.epoch += 1;
            }
            out.push(&data[s.order[s.cursor]]);
            s.cursor += 1;
        }
        out
    }

    /// One optimizer step over `grad_accum_steps` micro-batches.
    pub fn train_step(&mut self, data: &[Example]) -> Result<StepLog> {
        if data.is_empty() {
            return Err(ModelError::Input("no training examples".into()));
        }
        if self.state.order.len() != data.len() && self.state.cursor < self.state.order.len() {
            return Err(ModelError::Input(format!(
                "the saved data order covers {} examples but {} were given",
                self.state.order.len(),
                data.len()
            )));
        }
        let start = Instant::now();
        let pad = self.config.pad_token_id;
        let (seq_len, parallel) = (self.config.seq_len, self.parallel.clone());
        // Each micro-batch as this rank trains on it, with the global batch's token count.
        let batches = (0..self.config.grad_accum_steps)
            .map(|_| {
                let examples = self.next_examples(data);
                match &parallel {
                    Some(p) => p.local_batch(&examples, seq_len, pad),
                    None => lm_batch(&examples, seq_len, pad).map(|b| {
                        let count = b.count;
                        (b, count)
                    }),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let total: usize = batches.iter().map(|(_, global)| global).sum();
        // Gradients are summed over ranks during the last scored micro-batch's backward.
        let reduce_in = parallel
            .as_ref()
            .filter(|p| !p.is_zero1())
            .map(|p| (p, batches.iter().rposition(|(b, _)| b.count > 0)));
        self.grads.fill_zero();
        let mut loss_sum = 0.0f64;
        let model = self.compute.as_ref().unwrap_or(&self.model);
        for (index, (batch, _)) in batches.iter().enumerate().filter(|(_, (b, _))| b.count > 0) {
            let share = batch.count as f32 / total as f32;
            let reduce_here = matches!(reduce_in, Some((_, last)) if last == Some(index));
            if !reduce_here {
                // The plain pass: data-parallel over CPU shards for small models (crate::shard).
                let pass = model.lm_forward_backward_with(
                    &batch.input,
                    &batch.targets,
                    share,
                    self.config.recompute,
                    &mut self.grads,
                    &mut self.shard_grads,
                )?;
                loss_sum += pass.loss_sum;
                continue;
            }
            let fwd = model.forward_with(&batch.input, self.config.recompute)?;
            let out =
                model.lm_loss_scaled(&fwd.hidden, &batch.targets, Some(&mut self.grads), share)?;
            loss_sum += f64::from(out.loss) * batch.count as f64;
            match reduce_in {
                Some((p, last)) if last == Some(index) => p.backward_reduced(
                    &mut self.grads,
                    Some(&mut |grads, hook| {
                        model.backward_with_hook(&fwd, out.dhidden.as_ref(), None, grads, hook)
                    }),
                )?,
                _ => model.backward(&fwd, out.dhidden.as_ref(), None, &mut self.grads)?,
            }
        }
        if let Some((p, None)) = reduce_in {
            p.backward_reduced(&mut self.grads, None)?;
        }
        if let Some(p) = &parallel {
            let mut sum = [loss_sum as f32];
            p.sum_host(&mut sum)?;
            loss_sum = f64::from(sum[0]);
        }
        let lr = self.config.schedule().lr(self.state.step);
        let grad_norm = match parallel.as_ref().filter(|p| p.is_zero1()) {
            Some(p) => p.zero1_step(
                &mut self.model.params,
                &self.grads,
                &mut self.optimizer,
                lr,
                self.config.max_grad_norm,
            )?,
            None => {
                let grad_norm = match self.config.max_grad_norm {
                    Some(max) => clip_grad_norm(&mut self.grads.tensors_mut(), max)?,
                    None => rlhf_tensor::optim::global_grad_norm(&self.grads.tensors())?,
                };
                let grads = self.grads.tensors();
                let mut params = self.model.params.tensors_mut();
                self.optimizer.step_with_lr(&mut params, &grads, lr)?;
                grad_norm
            }
        };
        if self.compute.is_some() {
            self.compute = compute_copy(&self.model, self.config.precision)?;
        }
        self.state.step += 1;
        let log = StepLog {
            step: self.state.step,
            loss: if total == 0 {
                0.0
            } else {
                (loss_sum / total as f64) as f32
            },
            lr,
            grad_norm,
            tokens: total,
            seconds: start.elapsed().as_secs_f64(),
        };
        self.state.history.push(log);
        Ok(log)
    }

    /// Token-weighted mean loss and perplexity over `data` (batches of `batch_size`, no update).
    pub fn evaluate(&self, data: &[Example]) -> Result<EvalLog> {
        let (loss, tokens) = evaluate(
            &self.model,
            data,
            self.config.batch_size,
            self.config.seq_len,
            self.config.pad_token_id,
        )?;
        Ok(EvalLog {
            step: self.state.step,
            loss,
            perplexity: loss.exp(),
            tokens,
        })
    }

    /// Trains until `total_steps`, validating on `validation` every `eval_every` steps and at the
    /// end, saving to `out_dir/checkpoint-{step}` every `save_every` steps and to `out_dir` at the
    /// end; `on_event` sees every step, evaluation and save.
    pub fn fit(
        &mut self,
        train: &[Example],
        validation: &[Example],
        out_dir: Option<&Path>,
        on_event: &mut dyn FnMut(&TrainEvent),
    ) -> Result<()> {
        let c = self.config.clone();
        while self.state.step < c.total_steps {
            let log = self.train_step(train)?;
            on_event(&TrainEvent::Step(log));
            let last = self.state.step == c.total_steps;
            if !validation.is_empty()
                && (last || (c.eval_every > 0 && self.state.step.is_multiple_of(c.eval_every)))
            {
                on_event(&TrainEvent::Eval(self.evaluate(validation)?));
            }
            if let Some(out) = out_dir {
                if c.save_every > 0 && self.state.step.is_multiple_of(c.save_every) && !last {
                    let dir = out.join(format!("checkpoint-{}", self.state.step));
                    self.save(&dir)?;
                    on_event(&TrainEvent::Saved(dir));
                }
                if last {
                    self.save(out)?;
                    on_event(&TrainEvent::Saved(out.to_path_buf()));
                }
            }
        }
        Ok(())
    }
}

/// The copy of `model` that runs the passes: `None` for f32 (the model itself), its weights in
/// bf16 for mixed precision.
fn compute_copy(model: &Gpt, precision: Precision) -> Result<Option<Gpt>> {
    Ok(match precision {
        Precision::F32 => None,
        Precision::Bf16 => Some(Gpt {
            config: model.config.clone(),
            params: model.params.to_dtype(precision.dtype())?,
        }),
    })
}

/// Token-weighted mean next-token loss of `model` over `data`, and the number of tokens scored.
pub fn evaluate(
    model: &Gpt,
    data: &[Example],
    batch_size: usize,
    seq_len: usize,
    pad: u32,
) -> Result<(f32, usize)> {
    let mut sum = 0.0f64;
    let mut count = 0usize;
    for chunk in data.chunks(batch_size.max(1)) {
        let refs: Vec<&Example> = chunk.iter().collect();
        let batch = lm_batch(&refs, seq_len, pad)?;
        if batch.count == 0 {
            continue;
        }
        let fwd = model.forward(&batch.input)?;
        let out = model.lm_loss(&fwd.hidden, &batch.targets, None)?;
        sum += out.losses.iter().map(|&l| f64::from(l)).sum::<f64>();
        count += out.count;
    }
    Ok((
        if count == 0 {
            0.0
        } else {
            (sum / count as f64) as f32
        },
        count,
    ))
}
