// GELU with the tanh approximation (GPT-2's "gelu_new"):
//   y = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
//   dy/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
// Flat kernels over (n) elements, one 128-bit pack per thread when aligned, scalar tail.
#include "common.cuh"
#include "gelu.cuh"

template <typename T>
__device__ __forceinline__ void gelu_forward(long long n, const T* x, T* out) {
  constexpr int N = Pack128<T>::N;
  const long long packs = aligned16(x) && aligned16(out) ? n / N : 0;
  GRID_STRIDE(p, packs) {
    float v[N];
    load_w<T, N>(x + p * N, v);
#pragma unroll
    for (int k = 0; k < N; ++k) v[k] = gelu(v[k]);
    store_w<T, N>(out + p * N, v);
  }
  const long long start = packs * N;
  GRID_STRIDE(j, n - start) out[start + j] = from_f32<T>(gelu(to_f32(x[start + j])));
}

// dx = dout * gelu'(x); dx may alias dout.
template <typename T>
__device__ __forceinline__ void gelu_backward(long long n, const T* dout, const T* x, T* dx) {
  constexpr int N = Pack128<T>::N;
  const long long packs = aligned16(dout) && aligned16(x) && aligned16(dx) ? n / N : 0;
  GRID_STRIDE(p, packs) {
    float g[N], v[N];
    load_w<T, N>(dout + p * N, g);
    load_w<T, N>(x + p * N, v);
#pragma unroll
    for (int k = 0; k < N; ++k) g[k] *= gelu_grad(v[k]);
    store_w<T, N>(dx + p * N, g);
  }
  const long long start = packs * N;
  GRID_STRIDE(j, n - start) {
    const long long i = start + j;
    dx[i] = from_f32<T>(to_f32(dout[i]) * gelu_grad(to_f32(x[i])));
  }
}

#define GELU_KERNELS(T, S)                                                                        \
  /* x (n) -> out (n) */                                                                           \
  extern "C" __global__ void gelu_fwd_##S(long long n, const T* x, T* out) {                     \
    gelu_forward<T>(n, x, out);                                                                   \
  }                                                                                               \
  /* dout, x (n) -> dx (n) */                                                                      \
  extern "C" __global__ void gelu_bwd_##S(long long n, const T* dout, const T* x, T* dx) {       \
    gelu_backward<T>(n, dout, x, dx);                                                             \
  }

FOR_EACH_DTYPE(GELU_KERNELS)
