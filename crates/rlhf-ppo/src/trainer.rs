//! [`PpoTrainer`]: the policy, its frozen reference, the critic and their optimisers; one
//! [`PpoTrainer::train_step`] is a rollout followed by `num_ppo_epochs` passes of shuffled
//! minibatches (gradient accumulation, global-norm clipping, a non-finite guard), the KL
//! controller's update and one [`StepRecord`] of TRL-named metrics.
//!
//! Determinism: one [`Rng`] drives the prompt order, the sampling seeds, the minibatch order and
//! the pretraining order; its state, the data cursors, the controller and both optimisers are
//! in the checkpoint ([`crate::checkpoint`]), so a resumed run repeats an uninterrupted one bit
//! for bit on the CPU.

use std::path::Path;
use std::time::Instant;

use rlhf_reward::RewardFunction;
use rlhf_tensor::dist::Communicator;
use rlhf_tensor::optim::{AdamW, AdamWConfig, clip_grad_norm, global_grad_norm};
use rlhf_tensor::{Rng, RngState, Tensor};
use rlhf_transformer::{Example, Gpt, GptParams, LrSchedule, ScalarHeads};
use serde::{Deserialize, Serialize};

use crate::loss::{Grads, ppo_micro_batch, ptx_micro_batch};
use crate::rollout::{self, Decode, PpoPrompt, RolloutModels, SampleSpec, Timing};
use crate::sequences::check_fits;
use crate::train_error::{TrainError, TrainResult};
use crate::{CriticKind, KlController, MinibatchStats, PpoConfig, PpoMetrics, rollout_metrics};

/// Everything a PPO run starts from.
pub struct PpoSetup {
    /// The settings.
    pub config: PpoConfig,
    /// The SFT model: the policy's starting point and (unless `reference` is set) the frozen
    /// reference.
    pub policy: Gpt,
    /// A different frozen reference, if any.
    pub reference: Option<Gpt>,
    /// The model the separate critic starts from (typically the reward model: its trunk and its
    /// first scalar head, or a zero head when it has none). `None`: the SFT trunk with a zero
    /// value head. Must be `None` when `config.critic` is `shared`.
    pub critic_init: Option<Gpt>,
    /// The reward function PPO maximises.
    pub reward: Box<dyn RewardFunction>,
    /// Response tokens to text for the reward function.
    pub decode: Box<Decode>,
    /// The RL prompts.
    pub prompts: Vec<PpoPrompt>,
    /// Pretraining sequences for PPO-ptx (used when `config.ptx_coef > 0`).
    pub ptx_data: Vec<Example>,
    /// The token that ends a response when `config.stop_token_id` is not set (the EOS).
    pub eos_token_id: u32,
    /// The padding token.
    pub pad_token_id: u32,
}

/// One PPO step's record: a line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// PPO steps completed (1-based).
    pub step: u64,
    /// Episodes seen so far.
    pub episodes: u64,
    /// The TRL-named metrics.
    #[serde(flatten)]
    pub metrics: PpoMetrics,
    /// The policy's learning rate in this step.
    pub lr: f64,
    /// Optimiser updates skipped in this step for a non-finite loss or gradient.
    pub skipped_updates: u64,
    /// Seconds per part of the step.
    #[serde(flatten)]
    pub timing: Timing,
    /// Response tokens generated per second of the whole step.
    #[serde(rename = "tokens/s")]
    pub tokens_per_second: f64,
}

/// What [`PpoTrainer::fit`] reports as it goes.
#[derive(Debug, Clone)]
pub enum PpoEvent {
    /// A PPO step finished.
    Step(StepRecord),
    /// An update (or a whole step) was skipped: a non-finite loss, gradient or score.
    Skipped {
        /// The PPO step (1-based) it happened in.
        step: u64,
        /// What was non-finite.
        reason: String,
    },
    /// A checkpoint was written to this directory.
    Saved(std::path::PathBuf),
}

/// Where a run stands: everything but the tensors (see [`crate::checkpoint`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PpoState {
    /// PPO steps completed.
    pub step: u64,
    /// Episodes seen.
    pub episodes: u64,
    /// The KL controller.
    pub controller: KlController,
    /// The generator of every random choice.
    pub rng: RngState,
    /// The current pass's prompt order and the position in it.
    pub prompt_order: Vec<usize>,
    /// Next index into `prompt_order`.
    pub prompt_cursor: usize,
    /// The current pass's pretraining order and the position in it.
    pub ptx_order: Vec<usize>,
    /// Next index into `ptx_order`.
    pub ptx_cursor: usize,
    /// Updates skipped so far.
    pub skipped_updates: u64,
    /// A fingerprint of the reference weights, so a resume against another model is refused.
    pub reference_fingerprint: u64,
    /// The settings of the run.
    pub config: PpoConfig,
    /// Every step's record.
    pub history: Vec<StepRecord>,
}

/// The PPO trainer; see the module docs.
pub struct PpoTrainer {
    pub(crate) config: PpoConfig,
    pub(crate) policy: Gpt,
    pub(crate) reference: Gpt,
    pub(crate) critic: Option<Gpt>,
    pub(crate) policy_opt: AdamW,
    pub(crate) critic_opt: Option<AdamW>,
    policy_grads: GptParams,
    critic_grads: Option<GptParams>,
    reward: Box<dyn RewardFunction>,
    decode: Box<Decode>,
    prompts: Vec<PpoPrompt>,
    ptx_data: Vec<Example>,
    stop_token_id: u32,
    pad_token_id: u32,
    pub(crate) state: PpoState,
    /// The other ranks when rollouts are split across processes (`dist.rs`).
    dist: Option<Communicator>,
}

/// FNV-1a over the weights' bytes: equal models give equal fingerprints.
pub fn fingerprint(model: &Gpt) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for tensor in model.params.tensors() {
        for byte in tensor.to_le_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// `model` with exactly one zero-initialised scalar head (an existing single head is kept).
fn with_value_head(mut model: Gpt, what: &str) -> TrainResult<Gpt> {
    match model.params.n_scalar_heads() {
        0 => {
            let device = model.device();
            let c = model.config.n_embd;
            model.params.score = Some(ScalarHeads {
                weight: Tensor::zeros([1, c], device)?,
                bias: Tensor::zeros([1], device)?,
            });
            Ok(model)
        }
        1 => Ok(model),
        k => Err(TrainError::Input(format!(
            "{what} has {k} scalar heads; a value head needs a model with 0 or 1"
        ))),
    }
}

fn adamw(config: &PpoConfig, lr: f64) -> AdamW {
    AdamW::new(AdamWConfig {
        lr: lr as f32,
        eps: config.adam_epsilon as f32,
        weight_decay: config.weight_decay as f32,
        ..AdamWConfig::default()
    })
}

impl PpoTrainer {
    /// A trainer at step 0: validates the config and the prompts against the models.
    pub fn new(setup: PpoSetup) -> TrainResult<PpoTrainer> {
        let PpoSetup {
            config,
            policy,
            reference,
            critic_init,
            reward,
            decode,
            prompts,
            ptx_data,
            eos_token_id,
            pad_token_id,
        } = setup;
        config.validate()?;
        let reference = reference.unwrap_or_else(|| policy.clone());
        if reference.config.vocab_size != policy.config.vocab_size {
            return Err(TrainError::Input(format!(
                "the reference's vocabulary ({}) differs from the policy's ({})",
                reference.config.vocab_size, policy.config.vocab_size
            )));
        }
        let (policy, critic) = match (config.critic, critic_init) {
            (CriticKind::Shared, Some(_)) => {
                return Err(TrainError::config(
                    "critic",
                    "`shared` puts the value head on the policy; a critic model to start from was also given (use `separate`)",
                ));
            }
            (CriticKind::Shared, None) => (with_value_head(policy, "the policy")?, None),
            (CriticKind::Separate, Some(init)) => {
                let critic = with_value_head(init, "the critic's initial model")?;
                (policy, Some(critic))
            }
            (CriticKind::Separate, None) => {
                let mut trunk = policy.clone();
                trunk.params.score = None;
                (policy, Some(with_value_head(trunk, "the SFT model")?))
            }
        };
        if prompts.is_empty() {
            return Err(TrainError::Input("no prompts to train on".into()));
        }
        let vocab = policy.config.vocab_size;
        let longest = prompts.iter().map(|p| p.tokens.len()).max().unwrap_or(0);
        for (i, p) in prompts.iter().enumerate() {
            if p.tokens.is_empty() {
                return Err(TrainError::Input(format!("prompt {i} has no tokens")));
            }
            if let Some(&bad) = p.tokens.iter().find(|&&t| t as usize >= vocab) {
                return Err(TrainError::Input(format!(
                    "prompt {i}: token id {bad} is outside the policy's vocabulary ({vocab})"
                )));
            }
        }
        for (model, what) in [(&policy, "policy"), (&reference, "reference")]
            .into_iter()
            .chain(critic.iter().map(|c| (c, "critic")))
        {
            check_fits(model, what, longest, config.response_length)?;
            if model.config.vocab_size < vocab {
                return Err(TrainError::Input(format!(
                    "the {what}'s vocabulary ({}) is smaller than the policy's ({vocab})",
                    model.config.vocab_size
                )));
            }
        }
        let stop_token_id = config.stop_token_id.unwrap_or(eos_token_id);
        for (field, id) in [
            ("stop_token_id", stop_token_id),
            ("pad_token_id", pad_token_id),
        ] {
            if id as usize >= vocab {
                return Err(TrainError::config(
                    field,
                    format!("token id {id} is outside the policy's vocabulary ({vocab})"),
                ));
            }
        }
        if config.ptx_coef > 0.0 && config.ptx_seq_len > policy.config.n_positions {
            return Err(TrainError::config(
                "ptx_seq_len",
                format!(
                    "{} exceeds the policy's n_positions = {}",
                    config.ptx_seq_len, policy.config.n_positions
                ),
            ));
        }
        if config.ptx_coef > 0.0 && ptx_data.is_empty() {
            return Err(TrainError::config(
                "ptx_coef",
                format!("{} > 0 needs pretraining data", config.ptx_coef),
            ));
        }
        let policy_grads = policy.params.zeros_like()?;
        let critic_grads = critic.as_ref().map(|c| c.params.zeros_like()).transpose()?;
        let controller = if config.adap_kl_ctrl {
            KlController::adaptive(config.kl_coef, config.target, config.horizon)?
        } else {
            KlController::fixed(config.kl_coef)?
        };
        let state = PpoState {
            step: 0,
            episodes: 0,
            controller,
            rng: Rng::new(config.seed).state(),
            prompt_order: Vec::new(),
            prompt_cursor: 0,
            ptx_order: Vec::new(),
            ptx_cursor: 0,
            skipped_updates: 0,
            reference_fingerprint: fingerprint(&reference),
            config: config.clone(),
            history: Vec::new(),
        };
        Ok(PpoTrainer {
            policy_opt: adamw(&config, config.learning_rate),
            critic_opt: critic.as_ref().map(|_| adamw(&config, config.critic_lr())),
            config,
            policy,
            reference,
            critic,
            policy_grads,
            critic_grads,
            reward,
            decode,
            prompts,
            ptx_data,
            stop_token_id,
            pad_token_id,
            state,
            dist: None,
        })
    }

    /// Makes this trainer one rank of a data-parallel run: it rolls out its slice of every
    /// global batch with its own sampler stream, and the whitening statistics, metrics, KL and
    /// gradients are reduced over `comm` (see `dist.rs`). Every rank must be built from
    /// the same setup.
    pub fn set_data_parallel(&mut self, comm: Communicator) -> TrainResult<()> {
        let world = comm.world_size();
        let batch = self.config.batch_size();
        if batch < world {
            return Err(TrainError::Config {
                field: "batch_size",
                reason: format!(
                    "the global batch of {batch} prompts is smaller than the {world} ranks"
                ),
            });
        }
        if self.config.whiten_rewards && world > 1 {
            return Err(TrainError::Config {
                field: "whiten_rewards",
                reason: "not supported with rollouts split across ranks (set it to false)".into(),
            });
        }
        self.dist = Some(comm);
        Ok(())
    }

    /// The settings.
    pub fn config(&self) -> &PpoConfig {
        &self.config
    }

    /// PPO steps completed.
    pub fn step(&self) -> u64 {
        self.state.step
    }

    /// PPO steps of the whole run.
    pub fn total_steps(&self) -> u64 {
        self.config.total_steps(self.prompts.len())
    }

    /// Every step's record so far (including those before a resume).
    pub fn history(&self) -> &[StepRecord] {
        &self.state.history
    }

    /// The current KL coefficient.
    pub fn kl_coef(&self) -> f64 {
        self.state.controller.kl_coef()
    }

    /// The policy as a language model (a shared value head removed).
    pub fn policy(&self) -> Gpt {
        let mut policy = self.policy.clone();
        policy.params.score = None;
        policy
    }

    /// The policy as trained, with its value head when the critic is shared.
    pub fn policy_with_heads(&self) -> &Gpt {
        &self.policy
    }

    /// The frozen reference.
    pub fn reference(&self) -> &Gpt {
        &self.reference
    }

    /// The separate critic, if there is one.
    pub fn critic(&self) -> Option<&Gpt> {
        self.critic.as_ref()
    }

    /// The sampling settings of rollouts.
    pub fn sample_spec(&self) -> SampleSpec {
        SampleSpec {
            response_length: self.config.response_length,
            temperature: self.config.temperature as f32,
            stop_token_id: self.stop_token_id,
            pad_token_id: self.pad_token_id,
            chunk_rows: self.config.local_rollout_forward_batch_size,
        }
    }

    /// The next `n` indices of a seeded order over `len` items, reshuffled at each pass.
    fn next_indices(
        rng: &mut Rng,
        order: &mut Vec<usize>,
        cursor: &mut usize,
        len: usize,
        n: usize,
    ) -> Vec<usize> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            if *cursor >= order.len() {
                *order = (0..len).collect();
                rng.shuffle(order);
                *cursor = 0;
            }
            out.push(order[*cursor]);
            *cursor += 1;
        }
        out
    }

    /// One PPO step: rollout, advantages, `num_ppo_epochs` x `num_mini_batches` updates, the KL
    /// controller; `on_event` hears of skipped updates. Returns the step's record, or `None`
    /// when the rollout itself was unusable (a non-finite score) and the step was skipped.
    pub fn train_step(
        &mut self,
        on_event: &mut dyn FnMut(&PpoEvent),
    ) -> TrainResult<Option<StepRecord>> {
        let started = Instant::now();
        let config = self.config.clone();
        let batch_size = config.batch_size();
        let mut rng = Rng::from_state(&self.state.rng);
        let rows = Self::next_indices(
            &mut rng,
            &mut self.state.prompt_order,
            &mut self.state.prompt_cursor,
            self.prompts.len(),
            batch_size,
        );
        let local = match &self.dist {
            Some(comm) => crate::dist::local_rows(comm, batch_size),
            None => 0..batch_size,
        };
        let prompts: Vec<&PpoPrompt> = rows[local.clone()]
            .iter()
            .map(|&i| &self.prompts[i])
            .collect();
        // One sampler stream per rank and step; a single process samples from `rng` itself.
        let mut rank_rng = self
            .dist
            .as_ref()
            .map(|comm| rng.fork(1 + (self.state.step << 16) + comm.rank() as u64));
        let kl_coef = self.state.controller.kl_coef();
        let spec = self.sample_spec();
        let models = RolloutModels {
            policy: &self.policy,
            reference: &self.reference,
            critic: self.critic.as_ref(),
        };
        let rollout = rollout::collect(
            &models,
            &prompts,
            self.reward.as_mut(),
            self.decode.as_ref(),
            &spec,
            config.missing_eos_penalty,
            rank_rng.as_mut().unwrap_or(&mut rng),
        )?;
        let step = self.state.step + 1;
        let bad_score = rollout.scores.iter().position(|s| !s.is_finite());
        let bad_score = match &self.dist {
            Some(comm) => crate::dist::any(comm, "scores", bad_score.is_some())?
                .then(|| bad_score.unwrap_or(usize::MAX)),
            None => bad_score,
        };
        if let Some(bad) = bad_score {
            let score = rollout.scores.get(bad).copied().unwrap_or(f32::NAN);
            let reason = format!(
                "episode {bad} of the rollout (this rank's slice; usize::MAX: another rank's) scored {score}; the step's updates are skipped"
            );
            self.skip(step, reason, on_event)?;
            self.finish_step(rng, batch_size);
            return Ok(None);
        }
        let r = rollout.sequences.response_len;
        let mut adv = rollout::compute_advantages(
            &rollout.logp,
            &rollout.ref_logp,
            &rollout.values,
            &rollout.scores,
            &rollout.mask,
            r,
            kl_coef,
            &config,
        )?;
        let mut metrics = rollout_metrics(
            &adv.kl,
            &rollout.logp,
            &adv.non_score_reward,
            &rollout.scores,
            &rollout.values,
            &adv.returns,
            &rollout.mask,
            r,
            kl_coef,
        )?;
        metrics.num_eos_tokens = rollout.sequences.finished.iter().filter(|&&f| f).count();
        if let Some(comm) = &self.dist {
            adv.advantages = crate::dist::whiten_global(comm, &adv.raw_advantages, &rollout.mask)?;
        }

        let train_clock = Instant::now();
        let total_steps = self.total_steps();
        // Hugging Face's schedules: the peak at step 0, peak (1 - s / N) at step s for `linear`
        // (LrSchedule reaches 0 at its last step, so step s reads its step s - 1).
        let step_lr = |peak: f64| match self.state.step {
            0 => peak as f32,
            s => LrSchedule {
                peak: peak as f32,
                warmup_steps: 0,
                total_steps,
                decay: config.lr_scheduler_type,
            }
            .lr(s - 1),
        };
        let lr = step_lr(config.learning_rate);
        let critic_lr = step_lr(config.critic_lr());
        let mut stats = MinibatchStats::default();
        let mut skipped = 0u64;
        let accum = config.gradient_accumulation_steps;
        for _epoch in 0..config.num_ppo_epochs {
            let mut order: Vec<usize> = (0..batch_size).collect();
            rng.shuffle(&mut order);
            for minibatch in order.chunks(config.mini_batch_size()) {
                let micro_batches = self.local_micro_batches(minibatch, &local, &rollout.mask)?;
                self.policy_grads.fill_zero();
                if let Some(g) = self.critic_grads.as_mut() {
                    g.fill_zero();
                }
                let mut problem: Option<String> = None;
                let mut pending = MinibatchStats::default();
                for (micro_rows, share) in &micro_batches {
                    // A rank may hold none of a micro-batch's rows; it still draws its
                    // pretraining rows so the shared generator stays in step.
                    let grads = Grads {
                        policy: &mut self.policy_grads,
                        critic: self.critic_grads.as_mut(),
                    };
                    if !micro_rows.is_empty() {
                        let loss = ppo_micro_batch(
                            &self.policy,
                            self.critic.as_ref(),
                            &rollout,
                            &adv,
                            micro_rows,
                            &config,
                            share / accum as f32,
                            grads,
                        )?;
                        if !loss.total.is_finite() && problem.is_none() {
                            problem = Some(format!(
                                "loss {} (policy {}, value {})",
                                loss.total, loss.policy.loss, loss.value.loss
                            ));
                        }
                        pending.push(&loss.policy, &loss.value, loss.entropy_mean);
                    }
                    if config.ptx_coef > 0.0 {
                        let picks = Self::next_indices(
                            &mut rng,
                            &mut self.state.ptx_order,
                            &mut self.state.ptx_cursor,
                            self.ptx_data.len(),
                            config.ptx_batch_size,
                        );
                        let examples: Vec<&Example> =
                            picks.iter().map(|&i| &self.ptx_data[i]).collect();
                        let (ptx_loss, _) = ptx_micro_batch(
                            &self.policy,
                            &examples,
                            &config,
                            self.pad_token_id,
                            1.0 / (accum * self.world_size()) as f32,
                            &mut self.policy_grads,
                        )?;
                        if !ptx_loss.is_finite() && problem.is_none() {
                            problem = Some(format!("pretraining loss {ptx_loss}"));
                        }
                        pending.push_ptx(ptx_loss);
                    }
                }
                if let Some(comm) = &self.dist {
                    if crate::dist::any(comm, "loss check", problem.is_some())? {
                        problem.get_or_insert_with(|| "another rank's loss was not finite".into());
                    } else {
                        crate::dist::sum_grads(comm, &mut self.policy_grads)?;
                        if let Some(g) = self.critic_grads.as_mut() {
                            crate::dist::sum_grads(comm, g)?;
                        }
                    }
                }
                if problem.is_none() {
                    problem = self.clip_gradients()?;
                }
                match problem {
                    Some(reason) => {
                        skipped += 1;
                        self.skip(step, reason, on_event)?;
                    }
                    None => {
                        self.apply(lr, critic_lr)?;
                        stats.merge(&pending);
                    }
                }
            }
        }
        stats.write_into(&mut metrics);
        if let Some(comm) = &self.dist {
            crate::dist::reduce_metrics(comm, &mut metrics, local.len(), batch_size)?;
        }
        let mut timing = rollout.timing;
        timing.training = train_clock.elapsed().as_secs_f64();
        self.state.controller.update(metrics.kl, batch_size)?;
        self.finish_step(rng, batch_size);
        let generated: f64 = rollout.mask.iter().map(|&m| f64::from(m)).sum();
        let record = StepRecord {
            step: self.state.step,
            episodes: self.state.episodes,
            metrics,
            lr: f64::from(lr),
            skipped_updates: skipped,
            timing,
            tokens_per_second: generated / started.elapsed().as_secs_f64().max(1e-9),
        };
        self.state.history.push(record.clone());
        Ok(Some(record))
    }

    /// The ranks in this run (1 without data parallel).
    pub fn world_size(&self) -> usize {
        self.dist.as_ref().map_or(1, Communicator::world_size)
    }

    /// This process's rank (0 without data parallel).
    pub fn rank(&self) -> usize {
        self.dist.as_ref().map_or(0, Communicator::rank)
    }

    /// A minibatch's micro-batches of global rows as this rank's local rollout rows, each with
    /// its share of the micro-batch's loss: 1 for a single process; with data parallel, this
    /// rank's kept response tokens over all ranks' (the losses are masked means), so the
    /// gradients summed over ranks are the single-process gradient of the micro-batch.
    fn local_micro_batches(
        &self,
        minibatch: &[usize],
        local: &std::ops::Range<usize>,
        mask: &[f32],
    ) -> TrainResult<Vec<(Vec<usize>, f32)>> {
        let micro = self.config.per_device_train_batch_size;
        let Some(comm) = &self.dist else {
            return Ok(minibatch.chunks(micro).map(|c| (c.to_vec(), 1.0)).collect());
        };
        let r = mask.len() / local.len().max(1);
        let mut out = Vec::new();
        let mut kept = Vec::new();
        for chunk in minibatch.chunks(micro) {
            let rows: Vec<usize> = chunk
                .iter()
                .filter(|g| local.contains(g))
                .map(|g| g - local.start)
                .collect();
            let tokens: f32 = rows
                .iter()
                .flat_map(|&row| &mask[row * r..(row + 1) * r])
                .sum();
            kept.push(tokens);
            out.push(rows);
        }
        let mut totals = kept.clone();
        crate::dist::sum(comm, "micro-batch token counts", &mut totals)?;
        Ok(out
            .into_iter()
            .zip(kept.iter().zip(&totals))
            .map(|(rows, (&k, &t))| (rows, if t > 0.0 { k / t } else { 0.0 }))
            .collect())
    }

    /// Clips each model's gradient to `max_grad_norm`; returns what was non-finite, if anything.
    fn clip_gradients(&mut self) -> TrainResult<Option<String>> {
        let max = self.config.max_grad_norm as f32;
        let buffers = std::iter::once(("policy", &mut self.policy_grads))
            .chain(self.critic_grads.as_mut().map(|g| ("critic", g)));
        for (what, grads) in buffers {
            let norm = global_grad_norm(&grads.tensors())?;
            if !norm.is_finite() {
                return Ok(Some(format!("{what} gradient norm {norm}")));
            }
            if max > 0.0 {
                clip_grad_norm(&mut grads.tensors_mut(), max)?;
            }
        }
        Ok(None)
    }

    /// One optimiser step of each model.
    fn apply(&mut self, lr: f32, critic_lr: f32) -> TrainResult<()> {
        self.policy_opt.step_with_lr(
            &mut self.policy.params.tensors_mut(),
            &self.policy_grads.tensors(),
            lr,
        )?;
        if let (Some(critic), Some(opt), Some(grads)) = (
            self.critic.as_mut(),
            self.critic_opt.as_mut(),
            self.critic_grads.as_ref(),
        ) {
            opt.step_with_lr(
                &mut critic.params.tensors_mut(),
                &grads.tensors(),
                critic_lr,
            )?;
        }
        Ok(())
    }

    /// Counts a skipped update, reports it, and stops once `max_skipped_updates` is reached.
    fn skip(
        &mut self,
        step: u64,
        reason: String,
        on_event: &mut dyn FnMut(&PpoEvent),
    ) -> TrainResult<()> {
        self.state.skipped_updates += 1;
        on_event(&PpoEvent::Skipped {
            step,
            reason: reason.clone(),
        });
        let limit = self.config.max_skipped_updates;
        if self.state.skipped_updates >= limit {
            return Err(TrainError::NonFinite {
                step,
                skipped: self.state.skipped_updates,
                limit,
                last: reason,
            });
        }
        Ok(())
    }

    fn finish_step(&mut self, rng: Rng, batch_size: usize) {
        self.state.rng = rng.state();
        self.state.step += 1;
        self.state.episodes += batch_size as u64;
    }

    /// Trains until [`PpoTrainer::total_steps`]: with `out_dir`, appends each record to
    /// `metrics.jsonl`, checkpoints every `save_steps` and at the end, and writes the final
    /// policy to `out_dir/policy` (and the critic to `out_dir/critic`).
    pub fn fit(
        &mut self,
        out_dir: Option<&Path>,
        on_event: &mut dyn FnMut(&PpoEvent),
    ) -> TrainResult<()> {
        let total = self.total_steps();
        if let Some(dir) = out_dir {
            crate::checkpoint::rewrite_metrics(dir, &self.state.history)?;
        }
        while self.state.step < total {
            let record = self.train_step(on_event)?;
            if let Some(record) = record {
                if let Some(dir) = out_dir {
                    crate::checkpoint::append_metrics(dir, &record)?;
                }
                on_event(&PpoEvent::Step(record));
            }
            let last = self.state.step == total;
            let every = self.config.save_steps;
            if let Some(dir) = out_dir
                && (last || (every > 0 && self.state.step.is_multiple_of(every)))
            {
                let saved = self.save(dir)?;
                on_event(&PpoEvent::Saved(saved));
            }
        }
        if let Some(dir) = out_dir {
            self.save_final(dir)?;
        }
        Ok(())
    }

    /// Writes a checkpoint under `dir` (see [`crate::checkpoint`]); returns its directory.
    pub fn save(&self, dir: &Path) -> TrainResult<std::path::PathBuf> {
        crate::checkpoint::save(self, dir)
    }

    /// Writes the policy (as a language model) to `dir/policy` and the critic to `dir/critic`.
    pub fn save_final(&self, dir: &Path) -> TrainResult<()> {
        self.policy().save(&dir.join("policy"))?;
        if let Some(critic) = &self.critic {
            critic.save(&dir.join("critic"))?;
        }
        Ok(())
    }

    /// A trainer built from `setup` and restored from the latest checkpoint under `dir`.
    pub fn resume(setup: PpoSetup, dir: &Path) -> TrainResult<PpoTrainer> {
        let mut trainer = PpoTrainer::new(setup)?;
        crate::checkpoint::load(&mut trainer, dir)?;
        Ok(trainer)
    }
}
