//! Data-parallel passes on the CPU: a batch split into shards of whole sequences, each shard's
//! forward and backward on its own thread with every op inside it single-threaded, and the
//! shards' gradients summed at the end.
//!
//! Why: at the tiny model's width (C = 128) one op's work is too small to split well across
//! threads: per-op parallelism spends its time handing work over and waiting at the end of every
//! op, and two K = 128 GEMM bands reach only 1.4x one thread (BENCHMARKS.md). A shard runs the
//! whole model on its rows with no hand-offs, so the threads meet once per pass.
//!
//! Determinism: [`shard_count`] depends only on the model's width, the device and the batch,
//! never on how many threads there are; with fewer threads than shards the shards run one after
//! another, with the same sums in the same order. The same seed and config give bit-identical
//! results on any machine.

use std::ops::Range;
use std::sync::OnceLock;

use rlhf_tensor::Device;

use crate::{Gpt, GptParams, ModelInput, Recompute, Result};

/// Shards of a CPU batch.
pub const SHARDS: usize = 2;

/// Models wider than this keep per-op parallelism: their GEMMs split well across threads (GPT-2
/// small's step sharded in two took 1.36-1.42 s against 1.25-1.34 s unsharded, 2026-12-03) and
/// a second gradient buffer would cost memory.
pub const SHARD_MAX_EMBD: usize = 256;

/// How many shards a batch of `batch` sequences runs in on `device` for a model of width
/// `n_embd`: [`SHARDS`] on the CPU for models up to [`SHARD_MAX_EMBD`] wide, else 1.
pub fn shard_count(n_embd: usize, device: Device, batch: usize) -> usize {
    if device == Device::Cpu && n_embd <= SHARD_MAX_EMBD {
        batch.clamp(1, SHARDS)
    } else {
        1
    }
}

/// `batch` rows cut into `shards` contiguous ranges whose sizes differ by at most one.
pub fn shard_rows(batch: usize, shards: usize) -> Vec<Range<usize>> {
    let shards = shards.clamp(1, batch.max(1));
    (0..shards)
        .map(|s| (s * batch / shards)..((s + 1) * batch / shards))
        .collect()
}

/// Runs `f(shard, state)` for every state, shard `s` with `states[s]`: each on its own thread
/// inside a one-thread rayon pool (so every op it calls runs sequentially) when the current pool
/// has a thread per shard, else one after another on the calling thread. Results in shard order.
pub fn run_shards<S: Send, T: Send>(states: Vec<S>, f: impl Fn(usize, S) -> T + Sync) -> Vec<T> {
    let n = states.len();
    if n <= 1 || rayon::current_num_threads() < n {
        return states
            .into_iter()
            .enumerate()
            .map(|(s, state)| f(s, state))
            .collect();
    }
    let pools = single_thread_pools(n);
    let f = &f;
    std::thread::scope(|scope| {
        let mut states = states.into_iter().enumerate();
        let (_, first) = states.next().expect("n > 1 states");
        let handles: Vec<_> = states
            .map(|(s, state)| {
                let pool = &pools[s];
                scope.spawn(move || pool.install(|| f(s, state)))
            })
            .collect();
        let mut out = vec![pools[0].install(|| f(0, first))];
        out.extend(
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
        );
        out
    })
}

/// `n` one-thread rayon pools, built once and kept for the process.
fn single_thread_pools(n: usize) -> &'static [rayon::ThreadPool] {
    static POOLS: OnceLock<Vec<rayon::ThreadPool>> = OnceLock::new();
    let pools = POOLS.get_or_init(|| {
        (0..SHARDS.max(rayon::current_num_threads()))
            .map(|i| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .thread_name(move |_| format!("rlhf-shard-{i}"))
                    .build()
                    .expect("a one-thread rayon pool")
            })
            .collect()
    });
    &pools[..n.min(pools.len())]
}

/// Rows `range` of a batch: tokens, mask and positions of those sequences.
pub fn input_rows(input: &ModelInput, range: Range<usize>) -> ModelInput {
    let t = input.seq_len;
    let span = range.start * t..range.end * t;
    ModelInput {
        tokens: input.tokens[span.clone()].to_vec(),
        attention_mask: input.attention_mask[span.clone()].to_vec(),
        position_ids: input.position_ids[span].to_vec(),
        batch: range.len(),
        seq_len: t,
    }
}

/// Extra gradient buffers for the shards beyond the first, kept between steps.
#[derive(Debug, Clone, Default)]
pub struct ShardGrads {
    buffers: Vec<GptParams>,
}

impl ShardGrads {
    /// `grads` and `shards - 1` zeroed buffers shaped like it (allocated on first use).
    pub fn split<'a>(
        &'a mut self,
        grads: &'a mut GptParams,
        shards: usize,
    ) -> Result<Vec<&'a mut GptParams>> {
        while self.buffers.len() < shards.saturating_sub(1) {
            self.buffers.push(grads.zeros_like()?);
        }
        let mut out = vec![grads];
        for buffer in &mut self.buffers[..shards.saturating_sub(1)] {
            buffer.fill_zero();
            out.push(buffer);
        }
        Ok(out)
    }

    /// Adds the first `shards - 1` buffers into `grads`, in shard order.
    pub fn reduce(&self, grads: &mut GptParams, shards: usize) -> Result<()> {
        for buffer in &self.buffers[..shards.saturating_sub(1)] {
            grads.add_assign(buffer)?;
        }
        Ok(())
    }
}

/// What [`Gpt::lm_forward_backward`] returns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LmPass {
    /// Sum of the scored tokens' losses.
    pub loss_sum: f64,
    /// Tokens scored.
    pub count: usize,
}

impl Gpt {
    /// Forward, next-token loss and backward of one micro-batch (`targets` (B T), see
    /// [`crate::next_token_targets`]), adding the gradient of the token-mean loss times
    /// `grad_scale` into `grads`; data-parallel over [`shard_count`] shards, `scratch` holding
    /// the extra shards' gradients between calls.
    pub fn lm_forward_backward(
        &self,
        input: &ModelInput,
        targets: &[i32],
        grad_scale: f32,
        grads: &mut GptParams,
        scratch: &mut ShardGrads,
    ) -> Result<LmPass> {
        self.lm_forward_backward_with(input, targets, grad_scale, Recompute::Off, grads, scratch)
    }

    /// [`Gpt::lm_forward_backward`] with a choice of activation [`Recompute`] (bit-identical
    /// gradients either way).
    pub fn lm_forward_backward_with(
        &self,
        input: &ModelInput,
        targets: &[i32],
        grad_scale: f32,
        recompute: Recompute,
        grads: &mut GptParams,
        scratch: &mut ShardGrads,
    ) -> Result<LmPass> {
        let count = targets
            .iter()
            .filter(|&&t| t != rlhf_tensor::ops::cross_entropy::IGNORE_INDEX)
            .count();
        let shards = shard_count(self.config.n_embd, self.device(), input.batch);
        if shards == 1 {
            return self.lm_pass(input, targets, grad_scale, count, recompute, grads);
        }
        let t = input.seq_len;
        let ranges = shard_rows(input.batch, shards);
        let states = scratch.split(grads, ranges.len())?;
        let passes = run_shards(states, |s, g| {
            let rows = ranges[s].clone();
            let sub = input_rows(input, rows.clone());
            self.lm_pass(
                &sub,
                &targets[rows.start * t..rows.end * t],
                grad_scale,
                count,
                recompute,
                g,
            )
        });
        scratch.reduce(grads, ranges.len())?;
        let mut total = LmPass {
            loss_sum: 0.0,
            count: 0,
        };
        for pass in passes {
            let pass = pass?;
            total.loss_sum += pass.loss_sum;
            total.count += pass.count;
        }
        Ok(total)
    }

    /// One shard's pass: its token-mean loss's gradient weighted by its share of `of_count`.
    fn lm_pass(
        &self,
        input: &ModelInput,
        targets: &[i32],
        grad_scale: f32,
        of_count: usize,
        recompute: Recompute,
        grads: &mut GptParams,
    ) -> Result<LmPass> {
        let fwd = self.forward_with(input, recompute)?;
        let mine = targets
            .iter()
            .filter(|&&t| t != rlhf_tensor::ops::cross_entropy::IGNORE_INDEX)
            .count();
        if mine == 0 {
            return Ok(LmPass {
                loss_sum: 0.0,
                count: 0,
            });
        }
        let share = grad_scale * mine as f32 / of_count as f32;
        let out = self.lm_loss_scaled(&fwd.hidden, targets, Some(grads), share)?;
        self.backward(&fwd, out.dhidden.as_ref(), None, grads)?;
        Ok(LmPass {
            loss_sum: f64::from(out.loss) * out.count as f64,
            count: out.count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GptConfig, next_token_targets};
    use rlhf_tensor::Rng;

    #[test]
    fn rows_are_cut_evenly_and_cover_the_batch() {
        assert_eq!(shard_rows(5, 2), vec![0..2, 2..5]);
        assert_eq!(shard_rows(1, 2), vec![0..1]);
        assert_eq!(shard_rows(4, 1), vec![0..4]);
        assert_eq!(shard_count(128, Device::Cpu, 16), 2);
        assert_eq!(shard_count(768, Device::Cpu, 16), 1);
        assert_eq!(shard_count(128, Device::Cpu, 1), 1);
    }

    /// The sharded pass equals the whole batch's pass (loss and every gradient, to rounding),
    /// and gives bit-identical results on one thread and on two.
    #[test]
    fn sharded_pass_matches_the_whole_batch_on_any_thread_count() {
        let model = Gpt::new(
            GptConfig::new(23, 16, 16, 2, 2),
            0,
            &mut Rng::new(3),
            Device::Cpu,
        )
        .unwrap();
        let mut rng = Rng::new(4);
        let tokens: Vec<u32> = (0..5 * 9).map(|_| rng.below(23) as u32).collect();
        let mask: Vec<bool> = (0..5 * 9).map(|i| i % 9 < 9 - (i / 9) % 3).collect();
        let input = ModelInput::with_mask(tokens, mask, 5, 9).unwrap();
        let targets = next_token_targets(&input, None).unwrap();

        let mut whole = model.params.zeros_like().unwrap();
        let fwd = model.forward(&input).unwrap();
        let out = model
            .lm_loss_scaled(&fwd.hidden, &targets, Some(&mut whole), 0.5)
            .unwrap();
        model
            .backward(&fwd, out.dhidden.as_ref(), None, &mut whole)
            .unwrap();

        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut grads = model.params.zeros_like().unwrap();
                let mut scratch = ShardGrads::default();
                let pass = model
                    .lm_forward_backward(&input, &targets, 0.5, &mut grads, &mut scratch)
                    .unwrap();
                (pass, grads)
            })
        };
        let (one, g1) = run(1);
        let (two, g2) = run(2);
        assert_eq!(one, two);
        for ((name, a), (_, b)) in g1.named().into_iter().zip(g2.named()) {
            assert_eq!(a.to_vec_f32(), b.to_vec_f32(), "{name}: 1 vs 2 threads");
        }
        assert_eq!(one.count, out.count);
        let mean = (one.loss_sum / one.count as f64) as f32;
        assert!((mean - out.loss).abs() < 1e-5, "{mean} vs {}", out.loss);
        for ((name, a), (_, b)) in g1.named().into_iter().zip(whole.named()) {
            for (x, y) in a.to_vec_f32().iter().zip(b.to_vec_f32()) {
                assert!((x - y).abs() < 1e-5 * (1.0 + y.abs()), "{name}: {x} vs {y}");
            }
        }
    }
}
