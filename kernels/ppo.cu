// PPO's per-token terms, f32 (log-probs, values and advantages are f32 on every device).
// Each kernel writes one row of statistics per token, which the host-side wrapper sums with the
// deterministic column-sum kernel (reduce.cu) into a handful of scalars, and the per-token
// gradient before the 1 / count of the masked mean (applied by the scale kernel once the count
// is known). Masked tokens (mask == 0) write a zero row and a zero gradient; a mask value other
// than 0 or 1 sets the row's last column (`bad`), which the wrapper turns into an error.
//
//   policy: rho = exp(logp - old); l = max(-A rho, -A clip(rho, 1 - eps, 1 + eps));
//           stats (n, 6) = [kept, l, clipped, (logp - old)^2, rho, bad]; grad = -A rho where the
//           unclipped term wins, else 0.
//   value:  Vc = clip(V, V_old - eps_v, V_old + eps_v); l = max((V - R)^2, (Vc - R)^2);
//           stats (n, 4) = [kept, l, clipped, bad]; grad = V - R where unclipped, else 0.
//   kl:     d = clamp(logp - ref, -c, c) (c <= 0: no clamp); k1 = d, k2 = d^2 / 2,
//           k3 = expm1(-d) + d; 0 at masked tokens; bad flags as above (n).
#include "common.cuh"

__device__ __forceinline__ bool mask_is_bad(float m) { return !(m == 0.0f || m == 1.0f); }

extern "C" __global__ void ppo_policy_tokens(long long n, float low, float high,
                                             const float* logp, const float* old_logp,
                                             const float* adv, const float* mask, float* stats,
                                             float* grad) {
  GRID_STRIDE(i, n) {
    const float m = mask[i];
    float* row = stats + i * 6;
    float g = 0.0f;
    if (m == 0.0f || mask_is_bad(m)) {
      row[0] = row[1] = row[2] = row[3] = row[4] = 0.0f;
      row[5] = mask_is_bad(m) ? 1.0f : 0.0f;
    } else {
      const float log_ratio = logp[i] - old_logp[i];
      const float ratio = expf(log_ratio);
      const float unclipped = -adv[i] * ratio;
      const float clipped = -adv[i] * fminf(fmaxf(ratio, low), high);
      const bool clip_wins = clipped > unclipped;
      row[0] = 1.0f;
      row[1] = clip_wins ? clipped : unclipped;
      row[2] = clip_wins ? 1.0f : 0.0f;
      row[3] = log_ratio * log_ratio;
      row[4] = ratio;
      row[5] = 0.0f;
      g = clip_wins ? 0.0f : unclipped;
    }
    grad[i] = g;
  }
}

extern "C" __global__ void ppo_value_tokens(long long n, float eps, const float* values,
                                            const float* old_values, const float* returns,
                                            const float* mask, float* stats, float* grad) {
  GRID_STRIDE(i, n) {
    const float m = mask[i];
    float* row = stats + i * 4;
    float g = 0.0f;
    if (m == 0.0f || mask_is_bad(m)) {
      row[0] = row[1] = row[2] = 0.0f;
      row[3] = mask_is_bad(m) ? 1.0f : 0.0f;
    } else {
      const float error = values[i] - returns[i];
      const float clipped_value = fminf(fmaxf(values[i], old_values[i] - eps), old_values[i] + eps);
      const float clipped_error = clipped_value - returns[i];
      const bool clip_wins = clipped_error * clipped_error > error * error;
      row[0] = 1.0f;
      row[1] = clip_wins ? clipped_error * clipped_error : error * error;
      row[2] = clip_wins ? 1.0f : 0.0f;
      row[3] = 0.0f;
      g = clip_wins ? 0.0f : error;
    }
    grad[i] = g;
  }
}

extern "C" __global__ void ppo_kl_tokens(long long n, int estimator, float clamp,
                                         const float* logp, const float* ref_logp,
                                         const float* mask, float* kl, float* bad) {
  GRID_STRIDE(i, n) {
    const float m = mask[i];
    float value = 0.0f;
    if (m == 1.0f) {
      float d = logp[i] - ref_logp[i];
      if (clamp > 0.0f) d = fminf(fmaxf(d, -clamp), clamp);
      value = estimator == 0 ? d : estimator == 1 ? 0.5f * d * d : expm1f(-d) + d;
    }
    kl[i] = value;
    bad[i] = mask_is_bad(m) ? 1.0f : 0.0f;
  }
}
