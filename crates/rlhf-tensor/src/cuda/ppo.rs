//! PPO's per-token terms on device buffers (kernels/ppo.cu, f32): the clipped policy and value
//! losses' statistics rows and raw gradients, and the per-token KL estimators.

use cudarc::driver::{CudaSlice, PushKernelArg};

use super::device::CudaDevice;
use super::launch::{check_len, flat_config, launched};
use super::registry::KernelModule;
use crate::Result;

/// Columns of a policy statistics row: kept, term, clipped, log-ratio², ratio, bad mask.
pub const POLICY_STATS: usize = 6;
/// Columns of a value statistics row: kept, term, clipped, bad mask.
pub const VALUE_STATS: usize = 4;

/// The four (n) inputs of a per-token PPO term.
pub struct TokenInputs<'a> {
    /// New log-probs or values.
    pub new: &'a CudaSlice<f32>,
    /// The rollout's log-probs or values.
    pub old: &'a CudaSlice<f32>,
    /// Advantages (policy) or returns (value).
    pub target: &'a CudaSlice<f32>,
    /// 1 at kept tokens, 0 elsewhere.
    pub mask: &'a CudaSlice<f32>,
}

impl TokenInputs<'_> {
    fn check(&self, op: &'static str) -> Result<usize> {
        let n = self.new.len();
        check_len(op, "old", self.old.len(), n)?;
        check_len(op, "target", self.target.len(), n)?;
        check_len(op, "mask", self.mask.len(), n)?;
        Ok(n)
    }
}

/// Policy statistics rows `stats` (n, 6) and raw gradients `grad` (n) for clip range
/// [`low`, `high`] of the ratio.
pub fn policy_tokens(
    dev: &CudaDevice,
    x: TokenInputs<'_>,
    low: f32,
    high: f32,
    stats: &mut CudaSlice<f32>,
    grad: &mut CudaSlice<f32>,
) -> Result<()> {
    let op = "cuda::ppo::policy_tokens";
    let n = x.check(op)?;
    check_len(op, "stats", stats.len(), n * POLICY_STATS)?;
    check_len(op, "grad", grad.len(), n)?;
    let f = dev.function(KernelModule::Ppo, "ppo_policy_tokens")?;
    let n_i = n as i64;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&n_i)
        .arg(&low)
        .arg(&high)
        .arg(x.new)
        .arg(x.old)
        .arg(x.target)
        .arg(x.mask)
        .arg(stats)
        .arg(grad);
    // SAFETY: the four inputs and grad hold n floats, stats n * 6 (checked above).
    launched(op, unsafe { args.launch(flat_config(dev, n)) })
}

/// Value statistics rows `stats` (n, 4) and raw gradients `grad` (n) for clip range `eps`.
pub fn value_tokens(
    dev: &CudaDevice,
    x: TokenInputs<'_>,
    eps: f32,
    stats: &mut CudaSlice<f32>,
    grad: &mut CudaSlice<f32>,
) -> Result<()> {
    let op = "cuda::ppo::value_tokens";
    let n = x.check(op)?;
    check_len(op, "stats", stats.len(), n * VALUE_STATS)?;
    check_len(op, "grad", grad.len(), n)?;
    let f = dev.function(KernelModule::Ppo, "ppo_value_tokens")?;
    let n_i = n as i64;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&n_i)
        .arg(&eps)
        .arg(x.new)
        .arg(x.old)
        .arg(x.target)
        .arg(x.mask)
        .arg(stats)
        .arg(grad);
    // SAFETY: the four inputs and grad hold n floats, stats n * 4 (checked above).
    launched(op, unsafe { args.launch(flat_config(dev, n)) })
}

/// Per-token KL `kl` (n) with estimator 0 (k1), 1 (k2) or 2 (k3) and the log-ratio clamped to
/// [-clamp, clamp] when clamp > 0; `bad` (n) flags mask values other than 0 and 1.
#[allow(clippy::too_many_arguments)]
pub fn kl_tokens(
    dev: &CudaDevice,
    logp: &CudaSlice<f32>,
    ref_logp: &CudaSlice<f32>,
    mask: &CudaSlice<f32>,
    estimator: i32,
    clamp: f32,
    kl: &mut CudaSlice<f32>,
    bad: &mut CudaSlice<f32>,
) -> Result<()> {
    let op = "cuda::ppo::kl_tokens";
    let n = logp.len();
    check_len(op, "ref_logp", ref_logp.len(), n)?;
    check_len(op, "mask", mask.len(), n)?;
    check_len(op, "kl", kl.len(), n)?;
    check_len(op, "bad", bad.len(), n)?;
    let f = dev.function(KernelModule::Ppo, "ppo_kl_tokens")?;
    let n_i = n as i64;
    let mut args = dev.stream().launch_builder(&f);
    args.arg(&n_i)
        .arg(&estimator)
        .arg(&clamp)
        .arg(logp)
        .arg(ref_logp)
        .arg(mask)
        .arg(kl)
        .arg(bad);
    // SAFETY: every buffer holds n floats (checked above).
    launched(op, unsafe { args.launch(flat_config(dev, n)) })
}
