// Fused cross-entropy: per row, the loss -log softmax(logits)[target] and (optionally) the
// gradient dlogits = grad_scale * (softmax(logits) - onehot(target)), in two passes over the row
// (online max / sum of exp, then the write). One block per row.
//
// Targets are int32 class ids; `ignore_index` rows give loss 0 and a zero gradient row. A target
// outside [0, V) that is not the ignore index gives NaN (loss and gradient row), so a bad id is
// visible rather than silently read out of bounds. dlogits may alias logits (in place).
#include "common.cuh"

// Passed by value; mirrors `CrossEntropyConfig` in rlhf-tensor's cuda::cross_entropy (repr(C)).
struct CrossEntropyConfig {
  long long rows;    // N
  int vocab;         // V
  int ignore_index;  // e.g. -100
  float grad_scale;  // 1 / (number of scored rows) for a mean loss
};

template <typename T>
__device__ __forceinline__ void cross_entropy_rows(const CrossEntropyConfig cfg, const T* logits,
                                                   const int* targets, float* losses, T* dlogits) {
  __shared__ float scratch_m[32], scratch_s[32];
  for (long long row = blockIdx.x; row < cfg.rows; row += gridDim.x) {
    const long long base = row * cfg.vocab;
    const int target = targets[row];
    if (target == cfg.ignore_index) {
      if (threadIdx.x == 0) losses[row] = 0.0f;
      if (dlogits)
        for (int c = threadIdx.x; c < cfg.vocab; c += blockDim.x) dlogits[base + c] = from_f32<T>(0.0f);
      continue;
    }
    const bool valid = target >= 0 && target < cfg.vocab;
    // Read before any thread of the block can overwrite the row (in-place dlogits): the block
    // reduction below synchronises.
    const float target_logit = valid ? to_f32(logits[base + target]) : NAN;
    MaxSum acc = {-INFINITY, 0.0f};
    for (int c = threadIdx.x; c < cfg.vocab; c += blockDim.x) acc = maxsum_add(acc, to_f32(logits[base + c]));
    acc = block_maxsum(acc, scratch_m, scratch_s);
    if (threadIdx.x == 0) losses[row] = logf(acc.s) + acc.m - target_logit;
    if (dlogits) {
      const float inv_sum = 1.0f / acc.s;
      for (int c = threadIdx.x; c < cfg.vocab; c += blockDim.x) {
        const float p = expf(to_f32(logits[base + c]) - acc.m) * inv_sum;
        const float g = valid ? cfg.grad_scale * (p - (c == target ? 1.0f : 0.0f)) : NAN;
        dlogits[base + c] = from_f32<T>(g);
      }
    }
    __syncthreads();  // the next row's reads must not race this row's in-place writes
  }
}

#define CROSS_ENTROPY_KERNELS(T, S)                                                                   \
  /* logits (N, V), targets (N) -> losses (N) f32, dlogits (N, V) (nullable) */                       \
  extern "C" __global__ void cross_entropy_fwd_bwd_##S(CrossEntropyConfig cfg, const T* logits,    \
                                                       const int* targets, float* losses,          \
                                                       T* dlogits) {                                \
    cross_entropy_rows<T>(cfg, logits, targets, losses, dlogits);                                   \
  }

FOR_EACH_DTYPE(CROSS_ENTROPY_KERNELS)
