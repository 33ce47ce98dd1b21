// Elementwise kernels: add, mul, scale, bias-row broadcast, and bf16 <-> f32 conversion.
// Flat kernels process one 128-bit pack per thread when every pointer is 16-byte aligned and a
// scalar tail after it; `out` may alias an input (no __restrict__ here).
#include "common.cuh"

// out[i] = op(a[i], b[i]) for i in [0, n).
template <typename T, typename Op>
__device__ __forceinline__ void binary_kernel(long long n, const T* a, const T* b, T* out, Op op) {
  constexpr int N = Pack128<T>::N;
  const bool packed = aligned16(a) && aligned16(b) && aligned16(out);
  const long long packs = packed ? n / N : 0;
  GRID_STRIDE(p, packs) {
    Pack128<T> x = load128(a + p * N), y = load128(b + p * N), z;
#pragma unroll
    for (int k = 0; k < N; ++k) z.v[k] = from_f32<T>(op(to_f32(x.v[k]), to_f32(y.v[k])));
    store128(out + p * N, z);
  }
  const long long start = packs * N;
  GRID_STRIDE(j, n - start) {
    const long long i = start + j;
    out[i] = from_f32<T>(op(to_f32(a[i]), to_f32(b[i])));
  }
}

struct AddOp {
  __device__ float operator()(float x, float y) const { return x + y; }
};
struct MulOp {
  __device__ float operator()(float x, float y) const { return x * y; }
};

#define ELEMENTWISE_KERNELS(T, S)                                                                  \
  /* out = a + b, all (n) */                                                                        \
  extern "C" __global__ void add_##S(long long n, const T* a, const T* b, T* out) {                \
    binary_kernel(n, a, b, out, AddOp());                                                          \
  }                                                                                                \
  /* out = a * b, all (n) */                                                                        \
  extern "C" __global__ void mul_##S(long long n, const T* a, const T* b, T* out) {                \
    binary_kernel(n, a, b, out, MulOp());                                                          \
  }                                                                                                \
  /* out = alpha * x, (n); out may be x */                                                          \
  extern "C" __global__ void scale_##S(long long n, const T* x, float alpha, T* out) {             \
    constexpr int N = Pack128<T>::N;                                                               \
    const long long packs = aligned16(x) && aligned16(out) ? n / N : 0;                            \
    GRID_STRIDE(p, packs) {                                                                        \
      Pack128<T> v = load128(x + p * N);                                                           \
      _Pragma("unroll") for (int k = 0; k < N; ++k) v.v[k] = from_f32<T>(alpha * to_f32(v.v[k]));  \
      store128(out + p * N, v);                                                                    \
    }                                                                                              \
    const long long start = packs * N;                                                             \
    GRID_STRIDE(j, n - start) out[start + j] = from_f32<T>(alpha * to_f32(x[start + j]));          \
  }                                                                                                \
  /* out[r, c] = x[r, c] + bias[c]; x, out (rows, cols), bias (cols) */                             \
  extern "C" __global__ void add_bias_rows_##S(long long rows, int cols, const T* x, const T* bias, \
                                               T* out) {                                           \
    constexpr int N = Pack128<T>::N;                                                               \
    if (cols % N == 0 && aligned16(x) && aligned16(bias) && aligned16(out)) {                      \
      const int packs_per_row = cols / N;                                                          \
      GRID_STRIDE(p, rows * packs_per_row) {                                                       \
        const int c = (int)(p % packs_per_row) * N;                                                \
        Pack128<T> v = load128(x + p * N), b = load128(bias + c);                                  \
        _Pragma("unroll") for (int k = 0; k < N; ++k) v.v[k] =                                     \
            from_f32<T>(to_f32(v.v[k]) + to_f32(b.v[k]));                                          \
        store128(out + p * N, v);                                                                  \
      }                                                                                            \
    } else {                                                                                       \
      GRID_STRIDE(i, rows * cols) out[i] = from_f32<T>(to_f32(x[i]) + to_f32(bias[i % cols]));     \
    }                                                                                              \
  }

FOR_EACH_DTYPE(ELEMENTWISE_KERNELS)

// bf16 -> f32, (n). Exact.
extern "C" __global__ void bf16_to_f32(long long n, const bf16* in, float* out) {
  GRID_STRIDE(i, n) out[i] = __bfloat162float(in[i]);
}

// f32 -> bf16 with round-to-nearest-even, (n). NaN stays NaN, overflow gives inf.
extern "C" __global__ void f32_to_bf16(long long n, const float* in, bf16* out) {
  GRID_STRIDE(i, n) out[i] = __float2bfloat16_rn(in[i]);
}

// Fills (n) with a value: used to poison buffers in tests and to zero accumulators.
#define FILL_KERNEL(T, S)                                                    \
  extern "C" __global__ void fill_##S(long long n, float value, T* out) { \
    const T v = from_f32<T>(value);                                          \
    GRID_STRIDE(i, n) out[i] = v;                                            \
  }
FOR_EACH_DTYPE(FILL_KERNEL)
