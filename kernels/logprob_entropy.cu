// Selected log-probabilities and entropies of the policy under a sampling temperature, the PPO
// quantities: with z = logits / temperature,
//   logp    = z[target] - logsumexp(z)
//   entropy = -sum p log p = logsumexp(z) - sum(p * z)
// The forward makes one online pass per row keeping (max, sum of exp, sum of exp * z), and saves
// logsumexp for the backward. The backward is one pass:
//   dz_j = dlogp * (1[j = target] - p_j) - dentropy * p_j * (log p_j + entropy)
//   dlogits_j = dz_j / temperature
// One block per row. `ignore_index` rows give logp 0 and no log-prob gradient (their entropy is
// still computed); a target outside [0, V) that is not the ignore index gives NaN.
#include "common.cuh"

// Passed by value; mirrors `LogprobConfig` in rlhf-tensor's cuda::logprob (repr(C)).
struct LogprobConfig {
  long long rows;         // N
  int vocab;              // V
  int ignore_index;       // e.g. -100
  float inv_temperature;  // 1 / temperature
};

// Online (max m, s = sum exp(z - m), t = sum exp(z - m) * z).
struct MaxSumDot {
  float m, s, t;
};

__device__ __forceinline__ MaxSumDot msd_merge(MaxSumDot a, MaxSumDot b) {
  const float m = fmaxf(a.m, b.m);
  if (m == -INFINITY) return {m, 0.0f, 0.0f};
  const float fa = a.s == 0.0f ? 0.0f : expf(a.m - m), fb = b.s == 0.0f ? 0.0f : expf(b.m - m);
  return {m, a.s * fa + b.s * fb, a.t * fa + b.t * fb};
}

__device__ __forceinline__ MaxSumDot msd_shfl(MaxSumDot v, int offset) {
  return {__shfl_xor_sync(0xffffffffu, v.m, offset), __shfl_xor_sync(0xffffffffu, v.s, offset),
          __shfl_xor_sync(0xffffffffu, v.t, offset)};
}

__device__ __forceinline__ MaxSumDot block_msd(MaxSumDot v, float (*scratch)[32]) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = msd_merge(v, msd_shfl(v, o));
  __syncthreads();
  if (lane == 0) {
    scratch[0][warp] = v.m;
    scratch[1][warp] = v.s;
    scratch[2][warp] = v.t;
  }
  __syncthreads();
  v = lane < warps ? MaxSumDot{scratch[0][lane], scratch[1][lane], scratch[2][lane]}
                   : MaxSumDot{-INFINITY, 0.0f, 0.0f};
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = msd_merge(v, msd_shfl(v, o));
  return v;
}

template <typename T>
__device__ __forceinline__ void logprob_forward(const LogprobConfig cfg, const T* logits,
                                                const int* targets, float* logp, float* entropy,
                                                float* lse) {
  __shared__ float scratch[3][32];
  for (long long row = blockIdx.x; row < cfg.rows; row += gridDim.x) {
    const T* x = logits + row * cfg.vocab;
    MaxSumDot acc = {-INFINITY, 0.0f, 0.0f};
    for (int c = threadIdx.x; c < cfg.vocab; c += blockDim.x) {
      const float z = to_f32(x[c]) * cfg.inv_temperature;
      if (z == -INFINITY) continue;  // p = 0 and p * z = 0: a masked class adds nothing
      acc = msd_merge(acc, MaxSumDot{z, 1.0f, z});
    }
    acc = block_msd(acc, scratch);
    if (threadIdx.x == 0) {
      const float log_z = acc.m + logf(acc.s);
      const int target = targets[row];
      float lp;
      if (target == cfg.ignore_index) lp = 0.0f;
      else if (target < 0 || target >= cfg.vocab) lp = NAN;
      else lp = to_f32(x[target]) * cfg.inv_temperature - log_z;
      logp[row] = lp;
      entropy[row] = log_z - acc.t / acc.s;
      lse[row] = log_z;
    }
  }
}

template <typename T>
__device__ __forceinline__ void logprob_backward(const LogprobConfig cfg, const T* logits,
                                                 const int* targets, const float* lse,
                                                 const float* entropy, const float* dlogp,
                                                 const float* dentropy, T* dlogits) {
  for (long long row = blockIdx.x; row < cfg.rows; row += gridDim.x) {
    const long long base = row * cfg.vocab;
    const int target = targets[row];
    const bool ignored = target == cfg.ignore_index;
    const bool valid = target >= 0 && target < cfg.vocab;
    const float g_lp = dlogp && !ignored ? dlogp[row] : 0.0f;
    const float g_h = dentropy ? dentropy[row] : 0.0f;
    const float log_z = lse[row], h = entropy[row];
    for (int c = threadIdx.x; c < cfg.vocab; c += blockDim.x) {
      const float log_p = to_f32(logits[base + c]) * cfg.inv_temperature - log_z;
      const float p = expf(log_p);
      // p = 0 (a masked class) contributes no entropy gradient; avoids 0 * -inf.
      float dz = p == 0.0f ? 0.0f : -g_h * p * (log_p + h);
      if (g_lp != 0.0f) dz += g_lp * ((c == target ? 1.0f : 0.0f) - p);
      if (!ignored && !valid && dlogp) dz = NAN;
      dlogits[base + c] = from_f32<T>(dz * cfg.inv_temperature);
    }
  }
}

#define LOGPROB_KERNELS(T, S)                                                                     \
  /* logits (N, V), targets (N) -> logp, entropy, lse (N) f32 */                                   \
  extern "C" __global__ void logprob_entropy_fwd_##S(LogprobConfig cfg, const T* logits,        \
                                                     const int* targets, float* logp,           \
                                                     float* entropy, float* lse) {              \
    logprob_forward<T>(cfg, logits, targets, logp, entropy, lse);                                 \
  }                                                                                               \
  /* logits (N, V), targets, lse, entropy, dlogp?, dentropy? (N) -> dlogits (N, V) */              \
  extern "C" __global__ void logprob_entropy_bwd_##S(                                             \
      LogprobConfig cfg, const T* logits, const int* targets, const float* lse,                   \
      const float* entropy, const float* dlogp, const float* dentropy, T* dlogits) {              \
    logprob_backward<T>(cfg, logits, targets, lse, entropy, dlogp, dentropy, dlogits);            \
  }

FOR_EACH_DTYPE(LOGPROB_KERNELS)
