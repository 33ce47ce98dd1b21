// Row softmax and log-softmax of (x * scale), forward and backward, with an optional causal mask
// for attention scores. One block per row (the host picks a block of 32..1024 threads for the
// row length); the forward finds (max, sum of exp) in one online pass, then writes.
//
// Causal: rows are (..., T, T) score matrices; row r may see columns 0..=(r % T), the rest are
// masked (probability 0, log-probability -inf, gradient 0). A row that is entirely -inf gives
// zeros under softmax and -inf under log-softmax (never NaN), as the CPU kernels do.
#include "common.cuh"

// Passed by value; mirrors `SoftmaxConfig` in rlhf-tensor's cuda::softmax (repr(C)).
struct SoftmaxConfig {
  long long rows;  // N
  int cols;        // V (or T for attention)
  float scale;     // multiplies x before the softmax (1 / sqrt(head_dim) for attention)
  int causal;      // 1: row r sees columns 0..=(r % cols)
};

__device__ __forceinline__ int visible_cols(const SoftmaxConfig& cfg, long long row) {
  return cfg.causal ? (int)(row % cfg.cols) + 1 : cfg.cols;
}

template <typename T, bool LOG>
__device__ __forceinline__ void softmax_forward(const SoftmaxConfig cfg, const T* x, T* out) {
  __shared__ float scratch_m[32], scratch_s[32];
  for (long long row = blockIdx.x; row < cfg.rows; row += gridDim.x) {
    const T* in = x + row * cfg.cols;
    T* dst = out + row * cfg.cols;
    const int visible = visible_cols(cfg, row);
    MaxSum acc = {-INFINITY, 0.0f};
    for (int c = threadIdx.x; c < visible; c += blockDim.x) acc = maxsum_add(acc, to_f32(in[c]) * cfg.scale);
    acc = block_maxsum(acc, scratch_m, scratch_s);
    const float log_sum = logf(acc.s);
    for (int c = threadIdx.x; c < cfg.cols; c += blockDim.x) {
      float y;
      if (c >= visible || acc.m == -INFINITY) {
        y = LOG ? -INFINITY : 0.0f;
      } else {
        const float z = to_f32(in[c]) * cfg.scale - acc.m;
        y = LOG ? z - log_sum : expf(z) / acc.s;
      }
      dst[c] = from_f32<T>(y);
    }
  }
}

// softmax:     dx = scale * p * (dout - sum(dout * p))
// log-softmax: dx = scale * (dout - exp(logp) * sum(dout))
template <typename T, bool LOG>
__device__ __forceinline__ void softmax_backward(const SoftmaxConfig cfg, const T* dout, const T* y,
                                                 T* dx) {
  __shared__ float scratch[32];
  for (long long row = blockIdx.x; row < cfg.rows; row += gridDim.x) {
    const long long base = row * cfg.cols;
    const int visible = visible_cols(cfg, row);
    float partial = 0.0f;
    for (int c = threadIdx.x; c < visible; c += blockDim.x) {
      const float g = to_f32(dout[base + c]);
      partial += LOG ? g : g * to_f32(y[base + c]);
    }
    const float total = block_sum(partial, scratch);
    for (int c = threadIdx.x; c < cfg.cols; c += blockDim.x) {
      float d = 0.0f;
      if (c < visible) {
        const float g = to_f32(dout[base + c]), v = to_f32(y[base + c]);
        d = LOG ? g - expf(v) * total : v * (g - total);
      }
      dx[base + c] = from_f32<T>(d * cfg.scale);
    }
  }
}

#define SOFTMAX_KERNELS(T, S)                                                                      \
  /* x (N, V) -> softmax(x * scale) (N, V) */                                                       \
  extern "C" __global__ void softmax_fwd_##S(SoftmaxConfig cfg, const T* x, T* out) {             \
    softmax_forward<T, false>(cfg, x, out);                                                        \
  }                                                                                                \
  /* x (N, V) -> log_softmax(x * scale) (N, V) */                                                   \
  extern "C" __global__ void log_softmax_fwd_##S(SoftmaxConfig cfg, const T* x, T* out) {         \
    softmax_forward<T, true>(cfg, x, out);                                                         \
  }                                                                                                \
  /* dout, probs (N, V) -> dx (N, V) */                                                             \
  extern "C" __global__ void softmax_bwd_##S(SoftmaxConfig cfg, const T* dout, const T* probs,    \
                                             T* dx) {                                              \
    softmax_backward<T, false>(cfg, dout, probs, dx);                                              \
  }                                                                                                \
  /* dout, logp (N, V) -> dx (N, V) */                                                              \
  extern "C" __global__ void log_softmax_bwd_##S(SoftmaxConfig cfg, const T* dout, const T* logp, \
                                                 T* dx) {                                          \
    softmax_backward<T, true>(cfg, dout, logp, dx);                                                \
  }

FOR_EACH_DTYPE(SOFTMAX_KERNELS)
