// Next-token sampling on the device: greedy argmax, or temperature sampling with top-k and top-p
// (nucleus) filtering, one block per row, given one uniform u in [0, 1) per row drawn on the host (f64).
// The algorithm is rlhf-tensor's `ops::sampling` (its docs state it); the CPU reference
// (`ops::sampling::cpu`) makes the same decisions, because every decision is an integer
// comparison:
//   s_i = z_i / T, m = max s, w_i = expf(s_i - m) in (0, 1]
//   mass_i = floor(w_i * 2^40) as u64 (exact in f64; sums of masses are exact and order-free)
//   key_i  = (bits(w_i) << 32) | (0xFFFFFFFF - i): descending keys = weight desc, index asc
//   top-k:  keep the k largest keys: the largest key threshold K with count(key >= K) >= k
//   top-p:  over those, M = sum mass; keep key >= P, the largest P with mass(key >= P) >= p * M
//           (the smallest prefix in descending order whose mass reaches p of the kept mass)
//   sample: target = floor(u * M') (M' the kept mass, in f64); the token is the first index i (in
//           index order) whose running kept mass exceeds target
//   logp:   s_tok - m - log(sum w) (sum in f64): under softmax(z / T) before any filtering
// Thresholds are found by bisection over the 64-bit keys with block-wide integer reductions
// (sort-free; at most 64 passes each). Greedy (temperature 0): the first index of the largest
// logit, logp under softmax(z). A NaN logit gives token -1 (the host reports it).
#include "common.cuh"

// Passed by value; mirrors `SampleConfig` in rlhf-tensor's cuda::sampling (repr(C)).
struct SampleConfig {
  long long rows;         // N
  int vocab;              // V
  int top_k;              // 0 or >= V: no top-k
  float inv_temperature;  // 1 / T (1 when greedy)
  float top_p;            // in (0, 1]; 1: no top-p
  int greedy;             // 1: argmax
};

#define SAMPLE_THREADS 256
#define MASS_SCALE 1099511627776.0  // 2^40

__device__ __forceinline__ unsigned long long block_sum_u64(unsigned long long v,
                                                            unsigned long long* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0ull;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ double block_sum_f64(double v, double* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0.0;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// (value, index) argmax, the first index on ties; NaN-free input.
__device__ __forceinline__ void argmax_merge(float& v, int& i, float ov, int oi) {
  if (ov > v || (ov == v && oi < i)) {
    v = ov;
    i = oi;
  }
}

__device__ __forceinline__ int block_argmax(float v, int i, float* sv, int* si) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    argmax_merge(v, i, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, i, o));
  __syncthreads();
  if (lane == 0) {
    sv[warp] = v;
    si[warp] = i;
  }
  __syncthreads();
  if (lane < warps) {
    v = sv[lane];
    i = si[lane];
  } else {
    v = -INFINITY;
    i = 0x7fffffff;
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    argmax_merge(v, i, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, i, o));
  return i;
}

__device__ __forceinline__ unsigned long long sample_key(float w, int i) {
  return ((unsigned long long)__float_as_uint(w) << 32) | (unsigned long long)(0xFFFFFFFFu - (unsigned)i);
}

__device__ __forceinline__ unsigned long long sample_mass(float w) {
  return (unsigned long long)((double)w * MASS_SCALE);
}

// Per-thread pass over the row: with `floor` (keys below are dropped), sums either the count
// (by_mass false) or the mass of kept keys >= threshold.
template <typename T>
__device__ __forceinline__ unsigned long long kept_total(const T* x, int vocab, float inv_t, float m,
                                                         unsigned long long floor_key,
                                                         unsigned long long threshold, bool by_mass,
                                                         unsigned long long* scratch) {
  unsigned long long acc = 0;
  for (int c = threadIdx.x; c < vocab; c += blockDim.x) {
    const float w = expf(to_f32(x[c]) * inv_t - m);
    const unsigned long long key = sample_key(w, c);
    if (key >= floor_key && key >= threshold) acc += by_mass ? sample_mass(w) : 1ull;
  }
  return block_sum_u64(acc, scratch);
}

// The largest threshold K in [lo, hi] with total(K) >= goal, where total is non-increasing in K
// and total(lo) >= goal; bisection with block-uniform control flow.
template <typename T>
__device__ unsigned long long bisect_key(const T* x, int vocab, float inv_t, float m,
                                         unsigned long long floor_key, bool by_mass, double goal,
                                         unsigned long long lo, unsigned long long hi,
                                         unsigned long long* scratch) {
  while (lo < hi) {
    const unsigned long long mid = lo + (hi - lo + 1) / 2;
    const unsigned long long total = kept_total(x, vocab, inv_t, m, floor_key, mid, by_mass, scratch);
    if ((double)total >= goal) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

template <typename T>
__device__ __forceinline__ void sample_rows(const SampleConfig cfg, const T* logits,
                                            const double* uniforms, int* tokens, float* logp) {
  __shared__ unsigned long long scratch_u[32];
  __shared__ double scratch_d[32];
  __shared__ float scratch_v[32];
  __shared__ int scratch_i[32];
  __shared__ unsigned long long chunk_mass[SAMPLE_THREADS];
  for (long long row = blockIdx.x; row < cfg.rows; row += gridDim.x) {
    const T* x = logits + row * cfg.vocab;
    const float inv_t = cfg.inv_temperature;
    // Pass 1: argmax of z (greedy and the max of s = z / T share it: T > 0), NaN count.
    float best = -INFINITY;
    int best_i = 0x7fffffff;
    unsigned long long nans = 0;
    for (int c = threadIdx.x; c < cfg.vocab; c += blockDim.x) {
      const float z = to_f32(x[c]);
      if (z != z) nans += 1;
      else argmax_merge(best, best_i, z, c);
    }
    nans = block_sum_u64(nans, scratch_u);
    const int arg = block_argmax(best, best_i, scratch_v, scratch_i);
    if (nans > 0 || arg >= cfg.vocab) {
      if (threadIdx.x == 0) {
        tokens[row] = -1;
        logp[row] = NAN;
      }
      continue;
    }
    const float m = to_f32(x[arg]) * inv_t;
    // Pass 2: the softmax normaliser in f64.
    double z_sum = 0.0;
    for (int c = threadIdx.x; c < cfg.vocab; c += blockDim.x)
      z_sum += (double)expf(to_f32(x[c]) * inv_t - m);
    z_sum = block_sum_f64(z_sum, scratch_d);
    int token = arg;
    if (!cfg.greedy) {
      const unsigned long long key_hi = sample_key(1.0f, 0);  // the largest possible key
      unsigned long long floor_key = 0;
      if (cfg.top_k > 0 && cfg.top_k < cfg.vocab)
        floor_key = bisect_key(x, cfg.vocab, inv_t, m, 0ull, false, (double)cfg.top_k, 0ull, key_hi,
                               scratch_u);
      if (cfg.top_p < 1.0f) {
        const unsigned long long kept = kept_total(x, cfg.vocab, inv_t, m, floor_key, 0ull, true, scratch_u);
        const double goal = (double)cfg.top_p * (double)kept;
        floor_key = bisect_key(x, cfg.vocab, inv_t, m, floor_key, true, goal, floor_key, key_hi,
                               scratch_u);
      }
      // Inverse CDF in index order: each thread owns a contiguous chunk of indices.
      const int chunk = (cfg.vocab + blockDim.x - 1) / blockDim.x;
      const int c0 = min(cfg.vocab, (int)threadIdx.x * chunk), c1 = min(cfg.vocab, c0 + chunk);
      unsigned long long own = 0;
      for (int c = c0; c < c1; ++c) {
        const float w = expf(to_f32(x[c]) * inv_t - m);
        if (sample_key(w, c) >= floor_key) own += sample_mass(w);
      }
      __syncthreads();
      chunk_mass[threadIdx.x] = own;
      __syncthreads();
      if (threadIdx.x == 0) {
        unsigned long long running = 0;
        for (int t = 0; t < (int)blockDim.x; ++t) {
          const unsigned long long v = chunk_mass[t];
          chunk_mass[t] = running;  // exclusive prefix
          running += v;
        }
        scratch_u[0] = running;
      }
      __syncthreads();
      const unsigned long long total = scratch_u[0];
      const unsigned long long target =
          (unsigned long long)floor(uniforms[row] * (double)total);
      const unsigned long long before = chunk_mass[threadIdx.x];
      __syncthreads();
      if (target >= before && target < before + own) {
        unsigned long long running = before;
        for (int c = c0; c < c1; ++c) {
          const float w = expf(to_f32(x[c]) * inv_t - m);
          if (sample_key(w, c) < floor_key) continue;
          running += sample_mass(w);
          if (running > target) {
            scratch_i[0] = c;
            break;
          }
        }
      }
      __syncthreads();
      token = scratch_i[0];
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      tokens[row] = token;
      logp[row] = (float)((double)(to_f32(x[token]) * inv_t - m) - log(z_sum));
    }
    __syncthreads();
  }
}

#define SAMPLING_KERNELS(T, S)                                                                 \
  extern "C" __global__ void sample_##S(const SampleConfig cfg, const T* logits,              \
                                        const double* uniforms, int* tokens, float* logp) {    \
    sample_rows<T>(cfg, logits, uniforms, tokens, logp);                                       \
  }
FOR_EACH_DTYPE(SAMPLING_KERNELS)
