//! Reward-model training: comparisons in a seeded order (a fresh permutation per epoch),
//! `batch_size` comparisons per optimizer step (every response forwarded once), the
//! transformer's AdamW or SGD with warmup and decay, global-norm clipping, validation after
//! every epoch, checkpoints every `save_every` steps, at every epoch's end and at the end, and
//! exact resume: the data order, its RNG, the optimizer moments and the step go into the
//! checkpoint ([`crate::train_state`]), so a resumed run takes the steps an uninterrupted one
//! would, bit for bit. [`RewardTrainer::set_trunk_training`] adds the auxiliary LM loss and the
//! trunk's learning-rate scale ([`crate::trunk`]); they are saved with the state.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rlhf_tensor::optim::{AdamW, AdamWConfig, Optimizer, Sgd, clip_grad_norm, global_grad_norm};
use rlhf_tensor::{Device, Rng};
use rlhf_transformer::{Decay, GptParams, LrSchedule, OptimizerConfig, ShardGrads};
use serde::{Deserialize, Serialize};

use crate::batch::{Comparison, RewardBatch};
use crate::eval::{EvalReport, evaluate};
use crate::model::RewardModel;
use crate::objective::{ObjectiveConfig, objective_step_with_trunk};
use crate::train_state::{self, TrainerState};
use crate::trunk::{TrunkTraining, scale_trunk_step, trunk_snapshot};
use crate::{Result, RewardError};

/// Reward-model training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardTrainConfig {
    /// The loss.
    pub objective: ObjectiveConfig,
    /// The optimizer; its `lr` is replaced by the schedule's.
    pub optimizer: OptimizerConfig,
    /// Peak learning rate.
    pub lr: f32,
    /// Linear warmup steps.
    pub warmup_steps: u64,
    /// Decay after warmup.
    pub decay: Decay,
    /// Passes over the training comparisons (InstructGPT trains one, to avoid overfitting).
    pub epochs: usize,
    /// Comparisons per optimizer step.
    pub batch_size: usize,
    /// Comparisons per forward when evaluating.
    pub eval_batch_size: usize,
    /// Clip the global gradient norm to this (None: no clipping).
    pub max_grad_norm: Option<f32>,
    /// Seed of the data order.
    pub seed: u64,
    /// Save a checkpoint every this many steps (0: only at epoch ends and the end).
    pub save_every: u64,
}

impl Default for RewardTrainConfig {
    fn default() -> Self {
        RewardTrainConfig {
            objective: ObjectiveConfig::default(),
            optimizer: OptimizerConfig::Adamw(AdamWConfig {
                weight_decay: 0.0,
                ..AdamWConfig::default()
            }),
            lr: 1e-4,
            warmup_steps: 0,
            decay: Decay::Cosine,
            epochs: 1,
            batch_size: 16,
            eval_batch_size: 16,
            max_grad_norm: Some(1.0),
            seed: 0,
            save_every: 0,
        }
    }
}

impl RewardTrainConfig {
    /// Checks sizes and rates.
    pub fn validate(&self) -> Result<()> {
        self.objective.validate()?;
        for (field, v) in [
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("eval_batch_size", self.eval_batch_size),
        ] {
            if v == 0 {
                return Err(RewardError::config(field, "must be at least 1"));
            }
        }
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return Err(RewardError::config(
                "lr",
                format!("{}: expected a finite rate >= 0", self.lr),
            ));
        }
        if self
            .max_grad_norm
            .is_some_and(|n| !(n.is_finite() && n > 0.0))
        {
            return Err(RewardError::config(
                "max_grad_norm",
                "expected a finite norm > 0",
            ));
        }
        Ok(())
    }

    /// Optimizer steps in one epoch over `examples` comparisons.
    pub fn steps_per_epoch(&self, examples: usize) -> u64 {
        examples.div_ceil(self.batch_size) as u64
    }

    /// The schedule over `epochs` passes of `examples` comparisons.
    pub fn schedule(&self, examples: usize) -> LrSchedule {
        LrSchedule {
            peak: self.lr,
            warmup_steps: self.warmup_steps,
            total_steps: self.steps_per_epoch(examples) * self.epochs as u64,
            decay: self.decay,
        }
    }
}

/// One optimizer step's record.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RewardStepLog {
    /// Steps completed (1-based).
    pub step: u64,
    /// The epoch (0-based) the step belongs to.
    pub epoch: u64,
    /// The objective.
    pub loss: f32,
    /// Its preference part.
    pub preference: f32,
    /// Its weighted rule part.
    pub rules: f32,
    /// Its weighted auxiliary LM part (0 when off).
    #[serde(default)]
    pub lm: f32,
    /// Share of the batch's pairs ordered right before the update.
    pub accuracy: f32,
    /// Pairs in the batch.
    pub pairs: usize,
    /// Learning rate used.
    pub lr: f32,
    /// Global gradient norm before clipping.
    pub grad_norm: f32,
    /// Wall time of the step in seconds.
    pub seconds: f64,
}

/// What [`RewardTrainer::fit`] reports as it goes.
#[derive(Debug, Clone)]
pub enum RewardEvent {
    /// An optimizer step finished.
    Step(RewardStepLog),
    /// An epoch ended and the validation set was scored.
    Eval {
        /// The epoch that ended (1-based count of epochs done).
        epoch: u64,
        /// The report.
        report: Box<EvalReport>,
    },
    /// A checkpoint was written to this directory.
    Saved(PathBuf),
}

/// Trains a [`RewardModel`] on [`Comparison`]s.
#[derive(Debug, Clone)]
pub struct RewardTrainer {
    /// The model being trained.
    pub model: RewardModel,
    /// The settings.
    pub config: RewardTrainConfig,
    /// Show an indicatif progress bar in [`RewardTrainer::fit`].
    pub progress: bool,
    pub(crate) optimizer: Optimizer,
    pub(crate) state: TrainerState,
    grads: GptParams,
    /// The extra shards' gradients of data-parallel CPU steps.
    shard_grads: ShardGrads,
}

impl RewardTrainer {
    /// A trainer at step 0.
    pub fn new(model: RewardModel, config: RewardTrainConfig) -> Result<RewardTrainer> {
        config.validate()?;
        let optimizer = match config.optimizer {
            OptimizerConfig::Adamw(c) => Optimizer::Adamw(AdamW::new(c)),
            OptimizerConfig::Sgd(c) => Optimizer::Sgd(Sgd::new(c)),
        };
        let grads = model.gpt.params.zeros_like()?;
        let state = TrainerState::fresh(&config);
        Ok(RewardTrainer {
            model,
            config,
            progress: false,
            optimizer,
            state,
            grads,
            shard_grads: ShardGrads::default(),
        })
    }

    /// Resumes from a checkpoint written by [`RewardTrainer::save`]; `config` must equal the
    /// saved one except `epochs` and `save_every`.
    pub fn resume(dir: &Path, config: RewardTrainConfig, device: Device) -> Result<RewardTrainer> {
        let model = RewardModel::load(dir, device)?;
        let mut trainer = RewardTrainer::new(model, config)?;
        train_state::load(&mut trainer, dir)?;
        Ok(trainer)
    }

    /// Sets the trunk options ([`crate::trunk`]); before the first step only, or to the values
    /// a resumed run was started with.
    pub fn set_trunk_training(&mut self, trunk: TrunkTraining) -> Result<()> {
        trunk.validate()?;
        if self.state.step > 0 && trunk != self.state.trunk {
            return Err(RewardError::config(
                "trunk",
                format!(
                    "the run was started with {:?}; it cannot change after step 0",
                    self.state.trunk
                ),
            ));
        }
        self.state.trunk = trunk;
        Ok(())
    }

    /// The trunk options in use.
    pub fn trunk_training(&self) -> TrunkTraining {
        self.state.trunk
    }

    /// Optimizer steps completed.
    pub fn step(&self) -> u64 {
        self.state.step
    }

    /// Every step's record so far (including those before a resume).
    pub fn history(&self) -> &[RewardStepLog] {
        &self.state.history
    }

    /// Writes the model and the trainer state to `dir`, every file atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.model.save(dir)?;
        train_state::save(self, dir)
    }

    /// The next batch of the seeded order: up to `batch_size` comparisons, never crossing the
    /// end of an epoch; a new permutation starts each epoch.
    fn next_batch<'a>(&mut self, data: &'a [Comparison]) -> Vec<&'a Comparison> {
        let s = &mut self.state;
        if s.cursor >= s.order.len() {
            let mut rng = Rng::from_state(&s.rng);
            s.order = (0..data.len()).collect();
            rng.shuffle(&mut s.order);
            s.rng = rng.state();
            s.cursor = 0;
        }
        let end = (s.cursor + self.config.batch_size).min(s.order.len());
        let batch = s.order[s.cursor..end].iter().map(|&i| &data[i]).collect();
        s.cursor = end;
        batch
    }

    /// One optimizer step on the next batch of `train`.
    pub fn train_step(&mut self, train: &[Comparison]) -> Result<RewardStepLog> {
        if train.is_empty() {
            return Err(RewardError::Empty {
                op: "RewardTrainer::train_step",
                what: "no training comparisons".into(),
            });
        }
        if self.state.examples != 0 && self.state.examples != train.len() {
            return Err(RewardError::Input(format!(
                "the run was started on {} training comparisons, {} given",
                self.state.examples,
                train.len()
            )));
        }
        self.state.examples = train.len();
        let start = Instant::now();
        let epoch = self.state.step / self.config.steps_per_epoch(train.len());
        let comparisons = self.next_batch(train);
        let batch = RewardBatch::new(&comparisons, self.model.n_rules())?;
        self.grads.fill_zero();
        let objective = &self.config.objective;
        let trunk = self.state.trunk;
        let (value, rewards) = objective_step_with_trunk(
            &self.model,
            objective,
            &trunk,
            &batch,
            &mut self.grads,
            &mut self.shard_grads,
            1.0,
        )?;
        let right: f32 = batch
            .pairs()
            .iter()
            .map(|p| match rewards[p.0].partial_cmp(&rewards[p.1]) {
                Some(std::cmp::Ordering::Greater) => 1.0,
                Some(std::cmp::Ordering::Equal) => 0.5,
                _ => 0.0,
            })
            .sum();
        let grad_norm = match self.config.max_grad_norm {
            Some(max) => clip_grad_norm(&mut self.grads.tensors_mut(), max)?,
            None => global_grad_norm(&self.grads.tensors())?,
        };
        let lr = self.config.schedule(train.len()).lr(self.state.step);
        let before = (trunk.trunk_lr_scale != 1.0).then(|| trunk_snapshot(&self.model.gpt.params));
        let grads = self.grads.tensors();
        let mut params = self.model.gpt.params.tensors_mut();
        self.optimizer.step_with_lr(&mut params, &grads, lr)?;
        if let Some(before) = before {
            scale_trunk_step(&mut self.model.gpt.params, &before, trunk.trunk_lr_scale)?;
        }
        self.state.step += 1;
        let log = RewardStepLog {
            step: self.state.step,
            epoch,
            loss: value.loss,
            preference: value.preference,
            rules: value.rules,
            lm: value.lm,
            accuracy: if value.pairs == 0 {
                0.0
            } else {
                right / value.pairs as f32
            },
            pairs: value.pairs,
            lr,
            grad_norm,
            seconds: start.elapsed().as_secs_f64(),
        };
        self.state.history.push(log);
        Ok(log)
    }

    /// Scores `data` with the current model.
    pub fn evaluate(&self, data: &[Comparison]) -> Result<EvalReport> {
        evaluate(
            &self.model,
            data,
            &self.config.objective,
            self.config.eval_batch_size,
        )
    }

    /// Trains for `epochs` passes over `train`, scoring `validation` (when not empty) at every
    /// epoch's end; with `out_dir`, saves `out_dir/checkpoint-{step}` every `save_every` steps
    /// and at every epoch's end but the last, and the final model and state to `out_dir`.
    pub fn fit(
        &mut self,
        train: &[Comparison],
        validation: &[Comparison],
        out_dir: Option<&Path>,
        on_event: &mut dyn FnMut(&RewardEvent),
    ) -> Result<()> {
        let per_epoch = self.config.steps_per_epoch(train.len());
        let total = per_epoch * self.config.epochs as u64;
        let bar = if self.progress {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "reward model {bar:30} {pos}/{len} steps {msg} [{elapsed_precise}<{eta_precise}]",
            ) {
                bar.set_style(style);
            }
            bar
        } else {
            ProgressBar::hidden()
        };
        bar.set_position(self.state.step);
        let started = Instant::now();
        let mut pairs_seen = 0usize;
        while self.state.step < total {
            let log = self.train_step(train)?;
            pairs_seen += log.pairs;
            let rate = pairs_seen as f64 / started.elapsed().as_secs_f64().max(1e-9);
            bar.set_position(log.step);
            bar.set_message(format!(
                "loss {:.4} acc {:.2} {rate:.0} pairs/s",
                log.loss, log.accuracy
            ));
            on_event(&RewardEvent::Step(log));
            let last = self.state.step == total;
            let epoch_end = self.state.step.is_multiple_of(per_epoch);
            if epoch_end && !validation.is_empty() {
                let report = self.evaluate(validation)?;
                bar.println(format!(
                    "epoch {}: validation accuracy {:.4}, loss {:.4}",
                    self.state.step / per_epoch,
                    report.overall.accuracy,
                    report.loss
                ));
                self.state.validation.push(report.clone());
                on_event(&RewardEvent::Eval {
                    epoch: self.state.step / per_epoch,
                    report: Box::new(report),
                });
            }
            if let Some(out) = out_dir {
                let periodic = self.config.save_every > 0
                    && self.state.step.is_multiple_of(self.config.save_every);
                if (periodic || epoch_end) && !last {
                    let dir = out.join(format!("checkpoint-{}", self.state.step));
                    self.save(&dir)?;
                    on_event(&RewardEvent::Saved(dir));
                }
                if last {
                    self.save(out)?;
                    on_event(&RewardEvent::Saved(out.to_path_buf()));
                }
            }
        }
        bar.finish_and_clear();
        Ok(())
    }

    /// The validation reports of every epoch so far.
    pub fn validation_history(&self) -> &[EvalReport] {
        &self.state.validation
    }
}
