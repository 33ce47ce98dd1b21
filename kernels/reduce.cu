// Reductions, all deterministic (a fixed grid gives a fixed summation order, no atomics):
// - reduce_partial: per-block partial sums of x, x^2, or (x * mask, mask), then reduce_final;
// - global_norm_finalize: sqrt of the summed squares of every gradient and the clip scale,
//   written on the device so AdamW can read it without a host round trip;
// - sum_cols_partial / sum_leading_f32: column sums of (rows, cols), e.g. the bias gradient.
#include "common.cuh"

#define REDUCE_SUM 0
#define REDUCE_SUM_SQUARES 1
#define REDUCE_MASKED_SUM 2

// partials[2 * block + 0] = sum over the block's elements of x (or x^2, or x * mask);
// partials[2 * block + 1] = sum of mask (REDUCE_MASKED_SUM only, else 0).
template <typename T>
__device__ __forceinline__ void reduce_partial(long long n, const T* x, const T* mask, int mode,
                                               float* partials) {
  __shared__ float scratch[32];
  constexpr int N = Pack128<T>::N;
  float acc = 0.0f, count = 0.0f;
  const bool packed = aligned16(x) && (mode != REDUCE_MASKED_SUM || aligned16(mask));
  const long long packs = packed ? n / N : 0;
  GRID_STRIDE(p, packs) {
    float v[N], m[N];
    load_w<T, N>(x + p * N, v);
    if (mode == REDUCE_MASKED_SUM) load_w<T, N>(mask + p * N, m);
#pragma unroll
    for (int k = 0; k < N; ++k) {
      if (mode == REDUCE_SUM) acc += v[k];
      else if (mode == REDUCE_SUM_SQUARES) acc += v[k] * v[k];
      else {
        acc += v[k] * m[k];
        count += m[k];
      }
    }
  }
  const long long start = packs * N;
  GRID_STRIDE(j, n - start) {
    const float v = to_f32(x[start + j]);
    if (mode == REDUCE_SUM) acc += v;
    else if (mode == REDUCE_SUM_SQUARES) acc += v * v;
    else {
      const float m = to_f32(mask[start + j]);
      acc += v * m;
      count += m;
    }
  }
  acc = block_sum(acc, scratch);
  count = block_sum(count, scratch);
  if (threadIdx.x == 0) {
    partials[2 * blockIdx.x] = acc;
    partials[2 * blockIdx.x + 1] = count;
  }
}

// Column sums of rows [blockIdx.y * chunk, +chunk) for columns blockIdx.x * 32 + threadIdx.x;
// block (32, 8): eight row lanes per column, combined in a fixed order.
template <typename T>
__device__ __forceinline__ void sum_cols_partial(long long rows, int cols, long long chunk,
                                                 const T* x, float* partials) {
  __shared__ float lanes[8][33];
  const int c = blockIdx.x * 32 + threadIdx.x;
  const long long first = (long long)blockIdx.y * chunk;
  const long long last = min(rows, first + chunk);
  float acc = 0.0f;
  if (c < cols)
    for (long long r = first + threadIdx.y; r < last; r += 8) acc += to_f32(x[r * cols + c]);
  lanes[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float total = 0.0f;
#pragma unroll
    for (int k = 0; k < 8; ++k) total += lanes[k][threadIdx.x];
    partials[(long long)blockIdx.y * cols + c] = total;
  }
}

#define REDUCE_KERNELS(T, S)                                                                   \
  /* x (n), mask (n, nullable) -> partials (2 * gridDim.x) f32 */                               \
  extern "C" __global__ void reduce_partial_##S(long long n, const T* x, const T* mask, int mode, \
                                                float* partials) {                             \
    reduce_partial<T>(n, x, mask, mode, partials);                                             \
  }                                                                                            \
  /* x (rows, cols) -> partials (gridDim.y, cols) f32: column sums over each row chunk */       \
  extern "C" __global__ void sum_cols_partial_##S(long long rows, int cols, long long chunk,     \
                                                  const T* x, float* partials) {               \
    sum_cols_partial<T>(rows, cols, chunk, x, partials);                                       \
  }

FOR_EACH_DTYPE(REDUCE_KERNELS)

// out[0] = sum of partials[2 * i], out[1] = sum of partials[2 * i + 1], i < count; one block.
extern "C" __global__ void reduce_final(int count, const float* partials, float* out) {
  __shared__ float scratch[32];
  float a = 0.0f, b = 0.0f;
  for (int i = threadIdx.x; i < count; i += blockDim.x) {
    a += partials[2 * i];
    b += partials[2 * i + 1];
  }
  a = block_sum(a, scratch);
  b = block_sum(b, scratch);
  if (threadIdx.x == 0) {
    out[0] = a;
    out[1] = b;
  }
}

// From `count` partial pairs of squared sums (reduce_partial in REDUCE_SUM_SQUARES mode, one
// launch per gradient tensor into consecutive slots): out[0] = the global L2 norm, out[1] = the
// clip scale, max_norm / (norm + 1e-6) when that is below 1, else 1 (as
// torch.nn.utils.clip_grad_norm_); max_norm <= 0 disables clipping. One block.
extern "C" __global__ void global_norm_finalize(int count, const float* partials, float max_norm,
                                                float* out) {
  __shared__ float scratch[32];
  float a = 0.0f;
  for (int i = threadIdx.x; i < count; i += blockDim.x) a += partials[2 * i];
  a = block_sum(a, scratch);
  if (threadIdx.x == 0) {
    const float norm = sqrtf(a);
    const float coefficient = max_norm / (norm + 1e-6f);
    out[0] = norm;
    out[1] = max_norm > 0.0f && coefficient < 1.0f ? coefficient : 1.0f;
  }
}

// out[c] (+)= sum over k < chunks of partials[k * cols + c]; in order, so deterministic.
extern "C" __global__ void sum_leading_f32(int chunks, int cols, const float* partials, float* out,
                                           int accumulate) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float total = 0.0f;
  for (int k = 0; k < chunks; ++k) total += partials[(long long)k * cols + c];
  out[c] = accumulate ? out[c] + total : total;
}
