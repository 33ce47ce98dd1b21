//! PPO with rollouts split across ranks (docs/multi-gpu.md, "PPO: rollouts split across
//! ranks"): every rank draws the same global batch of prompts, takes its slice, samples with its
//! own stream, and everything global is reduced here: the advantage whitening's statistics, the
//! reported metrics (and so the mean KL of the KL controller), the "skip this update" decision
//! and the policy and critic gradients, so every rank keeps identical weights.

use std::ops::Range;

use rlhf_tensor::dist::{Communicator, shard_range};
use rlhf_transformer::GptParams;

use crate::metrics::PpoMetrics;
use crate::stats::WHITEN_EPS;
use crate::train_error::{TrainError, TrainResult};

fn comm_err(what: &str, e: impl std::fmt::Display) -> TrainError {
    TrainError::Input(format!("data parallel ({what}): {e}"))
}

/// Sums `values` over all ranks.
pub(crate) fn sum(comm: &Communicator, what: &str, values: &mut [f32]) -> TrainResult<()> {
    comm.all_reduce_sum_host(values)
        .map_err(|e| comm_err(what, e))
}

/// This rank's rows of a global batch of `n` rows.
pub(crate) fn local_rows(comm: &Communicator, n: usize) -> Range<usize> {
    shard_range(n, comm.world_size(), comm.rank())
}

/// Whether any rank says `flag`.
pub(crate) fn any(comm: &Communicator, what: &str, flag: bool) -> TrainResult<bool> {
    let mut v = [f32::from(u8::from(flag))];
    sum(comm, what, &mut v)?;
    Ok(v[0] > 0.0)
}

/// The advantages (B_local, R) whitened with the mean and unbiased variance of the kept
/// positions of every rank (TRL's `masked_whiten`, mean shifted), in two passes: the global
/// mean, then the global sum of squared deviations.
pub(crate) fn whiten_global(
    comm: &Communicator,
    raw: &[f32],
    mask: &[f32],
) -> TrainResult<Vec<f32>> {
    let kept_of = |f: &dyn Fn(f32) -> f64| -> f64 {
        raw.iter()
            .zip(mask)
            .filter(|(_, m)| **m != 0.0)
            .map(|(&x, _)| f(x))
            .sum()
    };
    let count = mask.iter().filter(|&&m| m != 0.0).count();
    let mut first = [kept_of(&|x| f64::from(x)) as f32, count as f32];
    sum(comm, "advantage mean", &mut first)?;
    let total = f64::from(first[1]);
    if total < 2.0 {
        return Err(TrainError::Input(format!(
            "advantage whitening over all ranks needs 2 kept response tokens, got {total}"
        )));
    }
    let mean = f64::from(first[0]) / total;
    let mut second = [kept_of(&|x| (f64::from(x) - mean).powi(2)) as f32];
    sum(comm, "advantage variance", &mut second)?;
    let variance = f64::from(second[0]) / (total - 1.0);
    let inv_std = 1.0 / (variance + WHITEN_EPS).sqrt();
    Ok(raw
        .iter()
        .zip(mask)
        .map(|(&x, &m)| {
            if m == 0.0 {
                0.0
            } else {
                ((f64::from(x) - mean) * inv_std) as f32
            }
        })
        .collect())
}

/// The step's metrics over every rank: per-sequence means weighted by each rank's
/// `local_rows`, minibatch averages as the mean over ranks, `num_eos_tokens` summed.
/// `var_explained` stays this rank's (a ratio of variances; not reduced).
pub(crate) fn reduce_metrics(
    comm: &Communicator,
    metrics: &mut PpoMetrics,
    local_rows: usize,
    global_rows: usize,
) -> TrainResult<()> {
    let w = local_rows as f64 / global_rows as f64;
    let ranks = comm.world_size() as f64;
    let had_ptx = metrics.ptx_loss.is_some();
    let m = &mut *metrics;
    let per_row: [&mut f64; 6] = [
        &mut m.kl,
        &mut m.entropy,
        &mut m.scores,
        &mut m.rlhf_reward,
        &mut m.non_score_reward,
        &mut m.response_length,
    ];
    let per_rank: [&mut f64; 8] = [
        &mut m.approxkl_avg,
        &mut m.policy_clipfrac_avg,
        &mut m.entropy_avg,
        &mut m.policy_loss_avg,
        &mut m.value_loss_avg,
        &mut m.value_clipfrac_avg,
        &mut m.ratio,
        m.ptx_loss.get_or_insert(0.0),
    ];
    let mut values: Vec<f32> = per_row
        .iter()
        .map(|v| (**v * w) as f32)
        .chain(per_rank.iter().map(|v| (**v / ranks) as f32))
        .collect();
    values.push(m.num_eos_tokens as f32);
    sum(comm, "metrics", &mut values)?;
    for (dst, v) in per_row.into_iter().chain(per_rank).zip(&values) {
        *dst = f64::from(*v);
    }
    m.num_eos_tokens = values[values.len() - 1].round() as usize;
    if !had_ptx {
        m.ptx_loss = None;
    }
    Ok(())
}

/// Sums every gradient tensor over the ranks (each rank's part already weighted so the sum is
/// the gradient of the global minibatch).
pub(crate) fn sum_grads(comm: &Communicator, grads: &mut GptParams) -> TrainResult<()> {
    for t in grads.tensors_mut() {
        comm.all_reduce_sum(t)
            .map_err(|e| comm_err("gradients", e))?;
    }
    Ok(())
}
