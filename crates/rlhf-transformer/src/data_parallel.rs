//! Data-parallel LM training over the ranks of a [`Communicator`] (one process per device, as
//! PyTorch DDP and llm.c): every rank holds the whole model, trains on its slice of each global
//! batch, and the gradients are summed over ranks before clipping and the optimizer, so every
//! rank takes the same step.
//!
//! - Batches: rank r trains on [`shard_range`]`(B, N, r)` of every micro-batch of B examples,
//!   and every rank weighs its tokens by the global batch's token count (which it computes
//!   from the whole batch, without communication). The sum over ranks of these gradients is
//!   the gradient of the single-process run with the same global batch (for equal token counts
//!   this is DDP's mean over ranks).
//! - Buckets: the gradients are grouped in backward order (ln_f and the last block, then each
//!   block down to block 0, then the embeddings) into flat ~25 MB buckets ([`BucketPlan`]). On
//!   the last micro-batch of a step the backward reports each finished block
//!   ([`Gpt::backward_with_hook`]); a bucket whose gradients are final is reduced while the
//!   backward goes on: on the TCP backend by a communication thread, on NCCL enqueued on the
//!   device stream. Global-norm clipping then sees the summed gradients (the same on every
//!   rank).
//! - ZeRO-1 ([`DataParallel::zero1`]): the parameters are viewed as one flat buffer padded to a
//!   multiple of N; the gradients are reduce-scattered, each rank updates its 1/N of the
//!   parameters with its 1/N of the optimizer state, and an all-gather rebuilds the weights.
//!   The clipping norm is the square root of the all-reduced sum of the shards' squares.
//!   Checkpoints stay the single-process format: the state is all-gathered
//!   ([`DataParallel::gather_optimizer`]) and rank 0 writes it; a resumed run re-shards it.
//!
//! With world size 1 nothing here runs: the trainer's single-process path is taken call for
//! call, so its numbers are bit-identical.

use std::ops::Range;
use std::sync::{Arc, mpsc};

use rlhf_tensor::dist::flat::{flat_like, read_at, write_at};
use rlhf_tensor::dist::{BucketPlan, Communicator, DEFAULT_BUCKET_BYTES, DistError, shard_range};
use rlhf_tensor::optim::{AdamW, Optimizer, Sgd, global_grad_norm};
use rlhf_tensor::{DType, Tensor};

use crate::data::{Example, LmBatch, lm_batch};
use crate::{GptParams, ModelError, Result};

/// A data-parallel setting for the trainer: the communicator and the options.
#[derive(Debug, Clone)]
pub struct DataParallel {
    comm: Arc<Communicator>,
    zero1: bool,
    bucket_bytes: usize,
}

/// The backward a step runs, given the per-block hook to call.
pub(crate) type HookedBackward<'a> = &'a mut dyn FnMut(
    &mut GptParams,
    &mut dyn FnMut(usize, &GptParams) -> Result<()>,
) -> Result<()>;

impl DataParallel {
    /// Gradients all-reduced in ~25 MB buckets, no optimizer sharding.
    pub fn new(comm: Communicator) -> DataParallel {
        DataParallel {
            comm: Arc::new(comm),
            zero1: false,
            bucket_bytes: DEFAULT_BUCKET_BYTES,
        }
    }

    /// With ZeRO-1 optimizer-state sharding on or off.
    pub fn zero1(mut self, on: bool) -> DataParallel {
        self.zero1 = on;
        self
    }

    /// With buckets of about `bytes` bytes (at least one tensor each).
    pub fn bucket_bytes(mut self, bytes: usize) -> DataParallel {
        self.bucket_bytes = bytes.max(1);
        self
    }

    /// The communicator.
    pub fn communicator(&self) -> &Communicator {
        &self.comm
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.comm.rank()
    }

    /// Number of ranks.
    pub fn world_size(&self) -> usize {
        self.comm.world_size()
    }

    /// Whether ZeRO-1 is on.
    pub fn is_zero1(&self) -> bool {
        self.zero1
    }

    /// The examples of a global batch of `n` that this rank trains on.
    pub fn local_range(&self, n: usize) -> Range<usize> {
        shard_range(n, self.world_size(), self.rank())
    }

    /// This rank's batch of the global batch `examples`, and the global batch's scored-token
    /// count (the weight every rank divides by).
    pub(crate) fn local_batch(
        &self,
        examples: &[&Example],
        seq_len: usize,
        pad: u32,
    ) -> Result<(LmBatch, usize)> {
        let global = lm_batch(examples, seq_len, pad)?.count;
        let local = lm_batch(&examples[self.local_range(examples.len())], seq_len, pad)?;
        Ok((local, global))
    }

    /// Sums host scalars over ranks (losses, counts).
    pub(crate) fn sum_host(&self, values: &mut [f32]) -> Result<()> {
        Ok(self.comm.all_reduce_sum_host(values)?)
    }

    /// Runs `backward` (the last micro-batch's) and sums the gradients over ranks, bucket by
    /// bucket as the backward finishes them. `backward: None` reduces `grads` as they are (a
    /// rank whose share of the step scored no token still takes part).
    pub(crate) fn backward_reduced(
        &self,
        grads: &mut GptParams,
        backward: Option<HookedBackward<'_>>,
    ) -> Result<()> {
        let n_layer = grads.blocks.len();
        let units = backward_units(grads);
        let sizes: Vec<usize> = grads.tensors().iter().map(|t| t.numel()).collect();
        let elem_bytes = if grads.wte.dtype() == DType::BF16 {
            2
        } else {
            4
        };
        let plan = BucketPlan::new(&units, &sizes, elem_bytes, self.bucket_bytes)?;
        let comm = &*self.comm;
        let threaded = matches!(comm, Communicator::Tcp(_));
        let mut reduced: Vec<Option<Tensor>> = vec![None; plan.buckets.len()];
        std::thread::scope(|scope| -> Result<()> {
            let (to_comm, jobs) = mpsc::channel::<(usize, Tensor)>();
            let (to_main, results) = mpsc::channel::<(usize, rlhf_tensor::dist::Result<Tensor>)>();
            // The communication thread: all-reduces buckets in the order they arrive.
            let worker = threaded.then(|| {
                scope.spawn(move || {
                    for (index, mut flat) in jobs {
                        let result = comm.all_reduce_sum(&mut flat).map(|_| flat);
                        let failed = result.is_err();
                        if to_main.send((index, result)).is_err() || failed {
                            break;
                        }
                    }
                })
            });
            let mut launched = 0usize;
            let mut launch = |ready_units: usize, g: &GptParams| -> Result<()> {
                while launched < plan.buckets.len()
                    && plan.buckets[launched].last_unit < ready_units
                {
                    let mut flat = plan.pack(launched, &g.tensors())?;
                    if threaded {
                        // A closed channel means the thread stopped on an error, reported below.
                        let _ = to_comm.send((launched, flat));
                    } else {
                        comm.all_reduce_sum(&mut flat)?;
                        reduced[launched] = Some(flat);
                    }
                    launched += 1;
                }
                Ok(())
            };
            if let Some(backward) = backward {
                backward(grads, &mut |block, g| launch(n_layer - block, g))?;
            }
            launch(units.len(), grads)?;
            drop(to_comm);
            if let Some(worker) = worker {
                for (index, result) in results.iter() {
                    reduced[index] = Some(result?);
                }
                worker.join().map_err(|_| {
                    DistError::invalid("backward_reduced", "the communication thread panicked")
                })?;
            }
            Ok(())
        })?;
        let mut tensors = grads.tensors_mut();
        for (index, flat) in reduced.iter().enumerate() {
            let flat = flat.as_ref().ok_or_else(|| {
                DistError::invalid(
                    "backward_reduced",
                    format!("bucket {index} came back from no all-reduce"),
                )
            })?;
            plan.unpack(index, flat, &mut tensors)?;
        }
        Ok(())
    }

    /// One ZeRO-1 step: reduce-scatter `grads`, clip by the global norm, update this rank's
    /// shard of `params` with its shard of `optimizer`'s state, all-gather the parameters.
    /// Returns the global gradient norm before clipping.
    pub(crate) fn zero1_step(
        &self,
        params: &mut GptParams,
        grads: &GptParams,
        optimizer: &mut Optimizer,
        lr: f32,
        max_grad_norm: Option<f32>,
    ) -> Result<f32> {
        let layout = FlatLayout::of(params, self.world_size());
        let mine = layout.shard(self.rank());
        self.shard_optimizer(optimizer, params)?;
        let flat_grads = layout.pack(&grads.tensors())?;
        let mut grad_shard = flat_like(&flat_grads, mine.len())?;
        self.comm.reduce_scatter_sum(&flat_grads, &mut grad_shard)?;
        let shard_norm = global_grad_norm(&[&grad_shard])?;
        let mut squares = [shard_norm * shard_norm];
        self.comm.all_reduce_sum_host(&mut squares)?;
        let norm = squares[0].sqrt();
        if let Some(max) = max_grad_norm {
            let coefficient = max / (norm + 1e-6);
            if coefficient < 1.0 {
                grad_shard = rlhf_tensor::ops::elementwise::scale(&grad_shard, coefficient)?;
            }
        }
        let mut flat_params = layout.pack(&params.tensors())?;
        let mut param_shard = flat_like(&flat_params, mine.len())?;
        read_at(&flat_params, mine.start, &mut param_shard)?;
        optimizer.step_with_lr(&mut [&mut param_shard], &[&grad_shard], lr)?;
        self.comm.all_gather(&param_shard, &mut flat_params)?;
        layout.unpack(&flat_params, &mut params.tensors_mut())?;
        Ok(norm)
    }

    /// The full, per-parameter optimizer a single-process run would hold, from ZeRO-1's shards
    /// (a collective: every rank calls it; rank 0 writes the checkpoint).
    pub fn gather_optimizer(&self, optimizer: &Optimizer, params: &GptParams) -> Result<Optimizer> {
        let layout = FlatLayout::of(params, self.world_size());
        let gather = |shards: &[Tensor]| -> Result<Vec<Tensor>> {
            let Some(shard) = shards.first() else {
                return Ok(Vec::new());
            };
            let mut flat = flat_like(shard, layout.padded)?;
            self.comm.all_gather(shard, &mut flat)?;
            let mut full: Vec<Tensor> = params
                .tensors()
                .iter()
                .map(|p| {
                    flat_like(shard, p.numel())?
                        .reshape(p.shape().clone())
                        .map_err(ModelError::from)
                })
                .collect::<Result<_>>()?;
            layout.unpack(&flat, &mut full.iter_mut().collect::<Vec<_>>())?;
            Ok(full)
        };
        Ok(match optimizer {
            Optimizer::Adamw(o) => Optimizer::Adamw(AdamW {
                config: o.config,
                step: o.step,
                exp_avg: gather(&o.exp_avg)?,
                exp_avg_sq: gather(&o.exp_avg_sq)?,
            }),
            Optimizer::Sgd(o) => Optimizer::Sgd(Sgd {
                config: o.config,
                step: o.step,
                momentum_buffers: gather(&o.momentum_buffers)?,
            }),
        })
    }

    /// Turns a per-parameter optimizer state (a fresh run has none; a resumed run has the
    /// checkpoint's) into this rank's shard; a state already sharded is left alone.
    fn shard_optimizer(&self, optimizer: &mut Optimizer, params: &GptParams) -> Result<()> {
        let layout = FlatLayout::of(params, self.world_size());
        let mine = layout.shard(self.rank());
        let shard = |state: &mut Vec<Tensor>| -> Result<()> {
            if state.is_empty() || (state.len() == 1 && state[0].numel() == mine.len()) {
                return Ok(());
            }
            if state.len() != layout.sizes.len() {
                return Err(ModelError::config(
                    "optimizer",
                    format!(
                        "the state holds {} tensors, the model {} parameters",
                        state.len(),
                        layout.sizes.len()
                    ),
                ));
            }
            let flat = layout.pack(&state.iter().collect::<Vec<_>>())?;
            let mut part = flat_like(&flat, mine.len())?;
            read_at(&flat, mine.start, &mut part)?;
            *state = vec![part];
            Ok(())
        };
        match optimizer {
            Optimizer::Adamw(o) => {
                shard(&mut o.exp_avg)?;
                shard(&mut o.exp_avg_sq)
            }
            Optimizer::Sgd(o) => shard(&mut o.momentum_buffers),
        }
    }
}

/// The parameters as one flat buffer, padded to a multiple of the world size so every rank's
/// chunk has the same length (what NCCL's reduce-scatter and all-gather take).
struct FlatLayout {
    sizes: Vec<usize>,
    padded: usize,
    world_size: usize,
}

impl FlatLayout {
    fn of(params: &GptParams, world_size: usize) -> FlatLayout {
        let sizes: Vec<usize> = params.tensors().iter().map(|t| t.numel()).collect();
        let total: usize = sizes.iter().sum();
        FlatLayout {
            padded: total.div_ceil(world_size) * world_size,
            sizes,
            world_size,
        }
    }

    fn shard(&self, rank: usize) -> Range<usize> {
        shard_range(self.padded, self.world_size, rank)
    }

    /// `tensors` end to end in a padded flat buffer.
    fn pack(&self, tensors: &[&Tensor]) -> Result<Tensor> {
        let mut flat = flat_like(tensors[0], self.padded)?;
        let mut offset = 0;
        for t in tensors {
            write_at(&mut flat, offset, t)?;
            offset += t.numel();
        }
        Ok(flat)
    }

    /// The inverse of [`FlatLayout::pack`].
    fn unpack(&self, flat: &Tensor, tensors: &mut [&mut Tensor]) -> Result<()> {
        let mut offset = 0;
        for t in tensors.iter_mut() {
            read_at(flat, offset, t)?;
            offset += t.numel();
        }
        Ok(())
    }
}

/// The parameters (indices in [`GptParams::named`] order) grouped in the order the backward
/// finishes their gradients: ln_f and the scalar heads with the last block, each block down to
/// block 0, then the embeddings.
fn backward_units(params: &GptParams) -> Vec<Vec<usize>> {
    let per_block = 12;
    let n_layer = params.blocks.len();
    let n = params.named().len();
    let head_start = 2 + per_block * n_layer;
    let block = |i: usize| (2 + per_block * i..2 + per_block * (i + 1)).collect::<Vec<_>>();
    let mut units: Vec<Vec<usize>> = Vec::with_capacity(n_layer + 1);
    let mut first: Vec<usize> = (head_start..n).collect();
    if n_layer == 0 {
        first.extend([0, 1]);
        return vec![first];
    }
    first.extend(block(n_layer - 1));
    units.push(first);
    units.extend((0..n_layer - 1).rev().map(block));
    units.push(vec![0, 1]);
    units
}
