// AdamW (decoupled weight decay), exactly as torch.optim.AdamW, on fp32 master weights and fp32
// moments, with the gradient in the storage dtype and the global-norm clip folded in:
//   g = grad * clip_scale           (clip_scale read from device memory; null means 1)
//   p = p * (1 - lr * wd)
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p = p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
// and, when `param_copy` is not null, the updated weight in the storage dtype (a bf16 model).
#include "common.cuh"

// Passed by value; mirrors `AdamWConfig` in rlhf-tensor's cuda::adamw (repr(C)).
struct AdamWConfig {
  long long n;             // number of parameters
  float lr;                // learning rate
  float beta1;             // first-moment decay
  float beta2;             // second-moment decay
  float eps;               // added to the bias-corrected root of v
  float weight_decay;      // decoupled, multiplied by lr
  float bias_correction1;  // 1 - beta1^t
  float bias_correction2;  // 1 - beta2^t
};

// W consecutive fp32 values: float4 loads when W is a multiple of 4 (the caller checked 16-byte
// alignment), else scalar.
template <int W> __device__ __forceinline__ void load_f32(const float* p, float (&out)[W]) {
  if constexpr (W % 4 == 0) {
#pragma unroll
    for (int q = 0; q < W; q += 4) {
      const float4 v = *reinterpret_cast<const float4*>(p + q);
      out[q] = v.x; out[q + 1] = v.y; out[q + 2] = v.z; out[q + 3] = v.w;
    }
  } else {
#pragma unroll
    for (int k = 0; k < W; ++k) out[k] = p[k];
  }
}

template <int W> __device__ __forceinline__ void store_f32(float* p, const float (&in)[W]) {
  if constexpr (W % 4 == 0) {
#pragma unroll
    for (int q = 0; q < W; q += 4)
      *reinterpret_cast<float4*>(p + q) = make_float4(in[q], in[q + 1], in[q + 2], in[q + 3]);
  } else {
#pragma unroll
    for (int k = 0; k < W; ++k) p[k] = in[k];
  }
}

template <typename T, int W>
__device__ __forceinline__ void adamw_pack(const AdamWConfig& cfg, long long i, float* param,
                                           const T* grad, float* m, float* v, float clip,
                                           T* param_copy) {
  const float decay = 1.0f - cfg.lr * cfg.weight_decay;
  const float step_size = cfg.lr / cfg.bias_correction1;
  const float root_bc2 = sqrtf(cfg.bias_correction2);
  float g[W], p[W], mk[W], vk[W];
  load_w<T, W>(grad + i, g);
  load_f32<W>(param + i, p);
  load_f32<W>(m + i, mk);
  load_f32<W>(v + i, vk);
#pragma unroll
  for (int k = 0; k < W; ++k) {
    const float gk = g[k] * clip;
    mk[k] = cfg.beta1 * mk[k] + (1.0f - cfg.beta1) * gk;
    vk[k] = cfg.beta2 * vk[k] + (1.0f - cfg.beta2) * gk * gk;
    p[k] = p[k] * decay - step_size * mk[k] / (sqrtf(vk[k]) / root_bc2 + cfg.eps);
  }
  store_f32<W>(m + i, mk);
  store_f32<W>(v + i, vk);
  store_f32<W>(param + i, p);
  if (param_copy) store_w<T, W>(param_copy + i, p);
}

#define ADAMW_KERNELS(T, S)                                                                         \
  /* param, m, v (n) f32 in place; grad (n); clip_scale (1) f32 nullable; param_copy (n) nullable */ \
  extern "C" __global__ void adamw_##S(AdamWConfig cfg, float* param, const T* grad, float* m,     \
                                       float* v, const float* clip_scale, T* param_copy) {         \
    constexpr int N = Pack128<T>::N;                                                                \
    const float clip = clip_scale ? *clip_scale : 1.0f;                                             \
    const bool packed = aligned16(grad) && aligned16(param) && aligned16(m) && aligned16(v) &&   \
                        (!param_copy || aligned16(param_copy));                                     \
    const long long packs = packed ? cfg.n / N : 0;                                                 \
    GRID_STRIDE(p, packs) adamw_pack<T, N>(cfg, p * N, param, grad, m, v, clip, param_copy);        \
    const long long start = packs * N;                                                              \
    GRID_STRIDE(j, cfg.n - start)                                                                   \
    adamw_pack<T, 1>(cfg, start + j, param, grad, m, v, clip, param_copy);                          \
  }

FOR_EACH_DTYPE(ADAMW_KERNELS)

// SGD with momentum, dampening, Nesterov and (coupled) weight decay, exactly as torch.optim.SGD,
// on fp32 weights and an fp32 momentum buffer, the gradient in the storage dtype:
//   g = grad + wd * p;  buf = first_step ? g : momentum * buf + (1 - dampening) * g
//   d = nesterov ? g + momentum * buf : buf   (d = g when there is no buffer)
//   p = p - lr * d
// Passed by value; mirrors `SgdConfig` in rlhf-tensor's cuda::adamw (repr(C)).
struct SgdConfig {
  long long n;         // number of parameters
  float lr;            // learning rate
  float momentum;      // momentum factor (the buffer is null when it is 0)
  float dampening;     // dampening of the momentum
  float weight_decay;  // L2 penalty added to the gradient
  int nesterov;        // 1: Nesterov momentum
  int first_step;      // 1: the buffer starts as the gradient
};

#define SGD_KERNELS(T, S)                                                                           \
  /* param (n) f32 in place; grad (n); buf (n) f32 in place, nullable */                            \
  extern "C" __global__ void sgd_##S(SgdConfig cfg, float* param, const T* grad, float* buf) {     \
    GRID_STRIDE(i, cfg.n) {                                                                         \
      const float p = param[i];                                                                     \
      float g = to_f32(grad[i]) + cfg.weight_decay * p;                                             \
      if (buf) {                                                                                    \
        const float b = cfg.first_step ? g : cfg.momentum * buf[i] + (1.0f - cfg.dampening) * g;   \
        buf[i] = b;                                                                                 \
        g = cfg.nesterov ? g + cfg.momentum * b : b;                                                \
      }                                                                                             \
      param[i] = p - cfg.lr * g;                                                                    \
    }                                                                                               \
  }

FOR_EACH_DTYPE(SGD_KERNELS)
