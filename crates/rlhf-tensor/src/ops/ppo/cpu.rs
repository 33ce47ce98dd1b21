//! CPU reference of PPO's per-token terms (kernels/ppo.cu): the same f32 arithmetic per token,
//! a statistics row and a raw gradient, which the tensor-level op sums and scales.

/// Whether a mask value is neither 0 nor 1.
fn bad(m: f32) -> bool {
    !(m == 0.0 || m == 1.0)
}

/// One token of the clipped policy loss: its row [kept, term, clipped, log-ratio², ratio, bad]
/// and the gradient d term / d logp (0 where the clipped term wins or the token is masked).
pub fn policy_token(
    logp: f32,
    old_logp: f32,
    advantage: f32,
    mask: f32,
    low: f32,
    high: f32,
) -> ([f32; 6], f32) {
    if mask != 1.0 {
        return ([0.0, 0.0, 0.0, 0.0, 0.0, f32::from(bad(mask))], 0.0);
    }
    let log_ratio = logp - old_logp;
    let ratio = log_ratio.exp();
    let unclipped = -advantage * ratio;
    let clipped = -advantage * ratio.max(low).min(high);
    let clip_wins = clipped > unclipped;
    let term = if clip_wins { clipped } else { unclipped };
    let row = [
        1.0,
        term,
        f32::from(clip_wins),
        log_ratio * log_ratio,
        ratio,
        0.0,
    ];
    (row, if clip_wins { 0.0 } else { unclipped })
}

/// One token of the clipped value loss: its row [kept, term, clipped, bad] and the gradient
/// d (term / 2) / d value (0 where the clipped term wins or the token is masked).
pub fn value_token(value: f32, old_value: f32, ret: f32, mask: f32, eps: f32) -> ([f32; 4], f32) {
    if mask != 1.0 {
        return ([0.0, 0.0, 0.0, f32::from(bad(mask))], 0.0);
    }
    let error = value - ret;
    let clipped_value = value.max(old_value - eps).min(old_value + eps);
    let clipped_error = clipped_value - ret;
    let clip_wins = clipped_error * clipped_error > error * error;
    let term = if clip_wins {
        clipped_error * clipped_error
    } else {
        error * error
    };
    (
        [1.0, term, f32::from(clip_wins), 0.0],
        if clip_wins { 0.0 } else { error },
    )
}

/// One token's KL estimate (estimator 0 = k1, 1 = k2, 2 = k3; log-ratio clamped to
/// [-clamp, clamp] when clamp > 0), 0 unless the mask is 1; and whether the mask value is bad.
pub fn kl_token(logp: f32, ref_logp: f32, mask: f32, estimator: i32, clamp: f32) -> (f32, bool) {
    if mask != 1.0 {
        return (0.0, bad(mask));
    }
    let mut d = logp - ref_logp;
    if clamp > 0.0 {
        d = d.max(-clamp).min(clamp);
    }
    let value = match estimator {
        0 => d,
        1 => 0.5 * d * d,
        _ => (-d).exp_m1() + d,
    };
    (value, false)
}
