// LayerNorm over the last axis (biased variance, as PyTorch), forward keeping mean and rstd for
// the backward; a fused residual-add + LayerNorm forward; a deterministic backward.
//
// Forward: one warp per row, three passes over the row (mean, centred variance, normalise; the
// re-reads hit L1/L2), 128-bit accesses when cols is a multiple of the pack width.
// Backward: each block owns a contiguous chunk of rows; per row one block reduction gives
// mean(dxhat) and mean(dxhat * xhat); every column belongs to exactly one thread, which keeps the
// block's dweight / dbias partial sums in shared memory, so no atomics and a fixed summation
// order. Partials (2, blocks, cols) are then summed over blocks by `sum_leading_f32` (reduce.cu).
#include "common.cuh"

// Passed by value; mirrors `LayerNormConfig` in rlhf-tensor's cuda::layernorm (repr(C)).
struct LayerNormConfig {
  long long rows;  // N
  int cols;        // C
  float eps;       // added to the variance
};

// One row of LayerNorm by one warp. `residual` may be null; when it is not, the row is
// x + residual, which is also written to `res_out`.
template <typename T, int W>
__device__ __forceinline__ void layernorm_row(const LayerNormConfig cfg, const T* x, const T* residual,
                                              T* res_out, const T* weight, const T* bias, T* out,
                                              float* mean_out, float* rstd_out, long long row,
                                              int lane) {
  const long long base = row * cfg.cols;
  const T* src = residual ? res_out + base : x + base;
  float sum = 0.0f;
  for (int c = lane * W; c < cfg.cols; c += 32 * W) {
    float a[W];
    load_w<T, W>(x + base + c, a);
    if (residual) {
      float r[W];
      load_w<T, W>(residual + base + c, r);
#pragma unroll
      for (int k = 0; k < W; ++k) a[k] += r[k];
      store_w<T, W>(res_out + base + c, a);
      // Re-read what was stored so the statistics see the rounded (storage-dtype) values.
      load_w<T, W>(res_out + base + c, a);
    }
#pragma unroll
    for (int k = 0; k < W; ++k) sum += a[k];
  }
  const float mean = warp_sum(sum) / cfg.cols;
  float sq = 0.0f;
  for (int c = lane * W; c < cfg.cols; c += 32 * W) {
    float a[W];
    load_w<T, W>(src + c, a);
#pragma unroll
    for (int k = 0; k < W; ++k) sq += (a[k] - mean) * (a[k] - mean);
  }
  const float rstd = 1.0f / sqrtf(warp_sum(sq) / cfg.cols + cfg.eps);
  for (int c = lane * W; c < cfg.cols; c += 32 * W) {
    float a[W], w[W], b[W];
    load_w<T, W>(src + c, a);
    load_w<T, W>(weight + c, w);
    load_w<T, W>(bias + c, b);
#pragma unroll
    for (int k = 0; k < W; ++k) a[k] = (a[k] - mean) * rstd * w[k] + b[k];
    store_w<T, W>(out + base + c, a);
  }
  if (lane == 0) {
    mean_out[row] = mean;
    rstd_out[row] = rstd;
  }
}

template <typename T>
__device__ __forceinline__ void layernorm_forward(const LayerNormConfig cfg, const T* x,
                                                  const T* residual, T* res_out, const T* weight,
                                                  const T* bias, T* out, float* mean,
                                                  float* rstd) {
  constexpr int N = Pack128<T>::N;
  const int lane = threadIdx.x & 31;
  const long long warps = (long long)gridDim.x * (blockDim.x >> 5);
  const bool packed = cfg.cols % N == 0 && aligned16(x) && aligned16(weight) && aligned16(bias) &&
                      aligned16(out) && (!residual || (aligned16(residual) && aligned16(res_out)));
  for (long long row = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
       row < cfg.rows; row += warps) {
    if (packed)
      layernorm_row<T, N>(cfg, x, residual, res_out, weight, bias, out, mean, rstd, row, lane);
    else
      layernorm_row<T, 1>(cfg, x, residual, res_out, weight, bias, out, mean, rstd, row, lane);
  }
}

// Backward over the block's rows. dx is written (not accumulated); partials is (2, gridDim.x,
// cols): dweight partials first, then dbias partials. Dynamic shared memory: 2 * cols floats.
template <typename T, int W>
__device__ __forceinline__ void layernorm_backward_body(const LayerNormConfig cfg, const T* dout,
                                                        const T* x, const T* weight,
                                                        const float* mean, const float* rstd,
                                                        T* dx, float* partials) {
  extern __shared__ float shared[];
  __shared__ float scratch[2][32];
  float* dweight = shared;         // (cols)
  float* dbias = shared + cfg.cols;  // (cols)
  for (int c = threadIdx.x; c < 2 * cfg.cols; c += blockDim.x) shared[c] = 0.0f;
  // Every column is touched by the same thread below (c = threadIdx.x * W + k + j * blockDim.x
  // * W), and the zeroing above may be by another thread, hence this barrier.
  __syncthreads();
  const long long per_block = (cfg.rows + gridDim.x - 1) / gridDim.x;
  const long long first = (long long)blockIdx.x * per_block;
  const long long last = min(cfg.rows, first + per_block);
  for (long long row = first; row < last; ++row) {
    const long long base = row * cfg.cols;
    const float mu = mean[row], rs = rstd[row];
    float sum_dxhat = 0.0f, sum_dxhat_xhat = 0.0f;
    for (int c = threadIdx.x * W; c < cfg.cols; c += blockDim.x * W) {
      float g[W], a[W], w[W];
      load_w<T, W>(dout + base + c, g);
      load_w<T, W>(x + base + c, a);
      load_w<T, W>(weight + c, w);
#pragma unroll
      for (int k = 0; k < W; ++k) {
        const float xhat = (a[k] - mu) * rs, dxhat = g[k] * w[k];
        sum_dxhat += dxhat;
        sum_dxhat_xhat += dxhat * xhat;
        dweight[c + k] += g[k] * xhat;
        dbias[c + k] += g[k];
      }
    }
    const float mean_dxhat = block_sum(sum_dxhat, scratch[0]) / cfg.cols;
    const float mean_dxhat_xhat = block_sum(sum_dxhat_xhat, scratch[1]) / cfg.cols;
    for (int c = threadIdx.x * W; c < cfg.cols; c += blockDim.x * W) {
      float g[W], a[W], w[W], d[W];
      load_w<T, W>(dout + base + c, g);
      load_w<T, W>(x + base + c, a);
      load_w<T, W>(weight + c, w);
#pragma unroll
      for (int k = 0; k < W; ++k) {
        const float xhat = (a[k] - mu) * rs;
        d[k] = rs * (g[k] * w[k] - mean_dxhat - xhat * mean_dxhat_xhat);
      }
      store_w<T, W>(dx + base + c, d);
    }
  }
  __syncthreads();
  const long long plane = (long long)gridDim.x * cfg.cols;
  for (int c = threadIdx.x; c < cfg.cols; c += blockDim.x) {
    partials[(long long)blockIdx.x * cfg.cols + c] = dweight[c];
    partials[plane + (long long)blockIdx.x * cfg.cols + c] = dbias[c];
  }
}

#define LAYERNORM_KERNELS(T, S)                                                                    \
  /* x (N, C), weight/bias (C) -> out (N, C), mean/rstd (N) f32 */                                  \
  extern "C" __global__ void layernorm_fwd_##S(LayerNormConfig cfg, const T* x, const T* weight,   \
                                               const T* bias, T* out, float* mean, float* rstd) {  \
    layernorm_forward<T>(cfg, x, nullptr, nullptr, weight, bias, out, mean, rstd);                 \
  }                                                                                                \
  /* res_out = x + residual (N, C); out = LayerNorm(res_out) */                                     \
  extern "C" __global__ void residual_layernorm_fwd_##S(                                           \
      LayerNormConfig cfg, const T* x, const T* residual, T* res_out, const T* weight,             \
      const T* bias, T* out, float* mean, float* rstd) {                                           \
    layernorm_forward<T>(cfg, x, residual, res_out, weight, bias, out, mean, rstd);                \
  }                                                                                                \
  /* dout, x (N, C), weight (C), mean/rstd (N) -> dx (N, C); partials (2, grid, C) f32 */           \
  extern "C" __global__ void layernorm_bwd_##S(LayerNormConfig cfg, const T* dout, const T* x,     \
                                               const T* weight, const float* mean,                 \
                                               const float* rstd, T* dx, float* partials) {        \
    constexpr int N = Pack128<T>::N;                                                               \
    if (cfg.cols % N == 0 && aligned16(dout) && aligned16(x) && aligned16(weight) &&               \
        aligned16(dx))                                                                             \
      layernorm_backward_body<T, N>(cfg, dout, x, weight, mean, rstd, dx, partials);               \
    else                                                                                           \
      layernorm_backward_body<T, 1>(cfg, dout, x, weight, mean, rstd, dx, partials);               \
  }

FOR_EACH_DTYPE(LAYERNORM_KERNELS)
