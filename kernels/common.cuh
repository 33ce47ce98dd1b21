// Shared device helpers for every kernel family: dtype conversion (all math is fp32), 128-bit
// packed loads and stores, warp and block reductions, and the macro that instantiates one
// `extern "C"` kernel per storage dtype (names end in _f32 or _bf16).
#pragma once

#include <cuda_bf16.h>
#include <stdint.h>

typedef __nv_bfloat16 bf16;

// ---- dtype conversion: storage T <-> fp32 compute -------------------------------------------
__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(bf16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ bf16 from_f32<bf16>(float x) { return __float2bfloat16_rn(x); }

// ---- 128-bit packs: 4 f32 or 8 bf16 per load --------------------------------------------------
template <typename T> struct alignas(16) Pack128 {
  static constexpr int N = 16 / sizeof(T);
  T v[16 / sizeof(T)];
};

template <typename T> __device__ __forceinline__ Pack128<T> load128(const T* p) {
  int4 raw = *reinterpret_cast<const int4*>(p);
  Pack128<T> out;
  memcpy(&out, &raw, 16);
  return out;
}

template <typename T> __device__ __forceinline__ void store128(T* p, const Pack128<T>& x) {
  int4 raw;
  memcpy(&raw, &x, 16);
  *reinterpret_cast<int4*>(p) = raw;
}

// W consecutive elements as fp32: one 128-bit load when W is the pack width, else a scalar load.
// Row kernels pick W = Pack128<T>::N when the row length and pointers allow it, else W = 1.
template <typename T, int W>
__device__ __forceinline__ void load_w(const T* p, float (&out)[W]) {
  if constexpr (W == 1) {
    out[0] = to_f32(*p);
  } else {
    static_assert(W == Pack128<T>::N, "W must be 1 or the pack width");
    const Pack128<T> v = load128(p);
#pragma unroll
    for (int k = 0; k < W; ++k) out[k] = to_f32(v.v[k]);
  }
}

template <typename T, int W>
__device__ __forceinline__ void store_w(T* p, const float (&in)[W]) {
  if constexpr (W == 1) {
    *p = from_f32<T>(in[0]);
  } else {
    static_assert(W == Pack128<T>::N, "W must be 1 or the pack width");
    Pack128<T> v;
#pragma unroll
    for (int k = 0; k < W; ++k) v.v[k] = from_f32<T>(in[k]);
    store128(p, v);
  }
}

// True when every pointer is 16-byte aligned, so packed access is legal from element 0.
__device__ __forceinline__ bool aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15) == 0;
}

// ---- reductions --------------------------------------------------------------------------------
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the
// result. `scratch` holds 32 floats of shared memory; the call synchronises the block.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0.0f;
  return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : -INFINITY;
  return warp_max(v);
}

// Online (max, sum of exp(x - max)) pair, merged without overflow: the softmax normaliser in
// one pass over a row.
struct MaxSum {
  float m, s;
};

__device__ __forceinline__ MaxSum maxsum_merge(MaxSum a, MaxSum b) {
  const float m = fmaxf(a.m, b.m);
  if (m == -INFINITY) return {m, 0.0f};
  return {m, a.s * expf(a.m - m) + b.s * expf(b.m - m)};
}

__device__ __forceinline__ MaxSum maxsum_add(MaxSum a, float x) {
  if (x > a.m) {
    const float s = (a.m == -INFINITY ? 0.0f : a.s * expf(a.m - x)) + 1.0f;
    return {x, s};
  }
  return {a.m, a.s + (x == -INFINITY ? 0.0f : expf(x - a.m))};
}

__device__ __forceinline__ MaxSum block_maxsum(MaxSum v, float* scratch_m, float* scratch_s) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    MaxSum other = {__shfl_xor_sync(0xffffffffu, v.m, o), __shfl_xor_sync(0xffffffffu, v.s, o)};
    v = maxsum_merge(v, other);
  }
  __syncthreads();
  if (lane == 0) {
    scratch_m[warp] = v.m;
    scratch_s[warp] = v.s;
  }
  __syncthreads();
  v = lane < warps ? MaxSum{scratch_m[lane], scratch_s[lane]} : MaxSum{-INFINITY, 0.0f};
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    MaxSum other = {__shfl_xor_sync(0xffffffffu, v.m, o), __shfl_xor_sync(0xffffffffu, v.s, o)};
    v = maxsum_merge(v, other);
  }
  return v;
}

// Grid-stride loop over [0, n).
#define GRID_STRIDE(i, n)                                                              \
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n); \
       i += (long long)blockDim.x * gridDim.x)

// Instantiates MACRO(T, suffix) for every storage dtype: f32 and bf16.
#define FOR_EACH_DTYPE(MACRO) \
  MACRO(float, f32)           \
  MACRO(bf16, bf16)
