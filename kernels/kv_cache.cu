// Incremental decoding attention over a key/value cache (rlhf-tensor's `ops::kv_attention`).
//   kv_append:    qkv (B, n, 3C) -> keys, values (B, H, cap, D) at positions start..start+n
//   kv_attention: each new query i (position start + i) attends over cached positions
//                 0..=start+i whose mask is 1, scale 1/sqrt(D); out (B, n, C), 0 for a query
//                 with nothing visible (a padded query before any real token).
// One block per (row, query, head) for the attention: the scores live in shared memory (one f32
// per visible position), softmax statistics in fp32, then each thread accumulates some of the D
// output features over the visible positions. Storage T (f32 or bf16), fp32 math; the mask is
// f32 (B, cap), 1 = a real token.
#include "common.cuh"

// Passed by value; mirrors `KvConfig` in rlhf-tensor's cuda::kv_cache (repr(C)).
struct KvConfig {
  int batch;     // B
  int new_len;   // n, new positions this step
  int heads;     // H
  int head_dim;  // D
  int capacity;  // cap, positions the cache holds
  int start;     // positions cached before this step
};

template <typename T>
__device__ __forceinline__ void kv_append(const KvConfig cfg, const T* qkv, T* keys, T* values) {
  const int c = cfg.heads * cfg.head_dim;
  const long long total = (long long)cfg.batch * cfg.new_len * c;
  GRID_STRIDE(e, total) {
    const int ch = (int)(e % c);
    const long long bi = e / c;  // b * n + i
    const int i = (int)(bi % cfg.new_len), b = (int)(bi / cfg.new_len);
    const int head = ch / cfg.head_dim, d = ch % cfg.head_dim;
    const long long dst =
        (((long long)b * cfg.heads + head) * cfg.capacity + cfg.start + i) * cfg.head_dim + d;
    keys[dst] = qkv[bi * 3 * c + c + ch];
    values[dst] = qkv[bi * 3 * c + 2 * c + ch];
  }
}

template <typename T>
__device__ __forceinline__ void kv_attend(const KvConfig cfg, const T* qkv, const T* keys,
                                          const T* values, const float* mask, T* out) {
  extern __shared__ float shared[];  // q (D) then scores (start + n)
  __shared__ float scratch[32];
  const int c = cfg.heads * cfg.head_dim, d_len = cfg.head_dim;
  float* q = shared;
  float* scores = shared + d_len;
  const float scale = rsqrtf((float)d_len);
  const long long items = (long long)cfg.batch * cfg.new_len * cfg.heads;
  for (long long item = blockIdx.x; item < items; item += gridDim.x) {
    const int head = (int)(item % cfg.heads);
    const long long bi = item / cfg.heads;  // b * n + i
    const int i = (int)(bi % cfg.new_len), b = (int)(bi / cfg.new_len);
    const int visible = cfg.start + i + 1;
    const T* k_head = keys + ((long long)b * cfg.heads + head) * cfg.capacity * d_len;
    const T* v_head = values + ((long long)b * cfg.heads + head) * cfg.capacity * d_len;
    const float* row_mask = mask + (long long)b * cfg.capacity;
    __syncthreads();
    for (int d = threadIdx.x; d < d_len; d += blockDim.x) q[d] = to_f32(qkv[bi * 3 * c + head * d_len + d]);
    __syncthreads();
    float local_max = -INFINITY;
    for (int j = threadIdx.x; j < visible; j += blockDim.x) {
      float s = -INFINITY;
      if (row_mask[j] != 0.0f) {
        float dot = 0.0f;
        for (int d = 0; d < d_len; ++d) dot += q[d] * to_f32(k_head[(long long)j * d_len + d]);
        s = dot * scale;
      }
      scores[j] = s;
      local_max = fmaxf(local_max, s);
    }
    const float max = block_max(local_max, scratch);
    T* o = out + bi * c + head * d_len;
    if (max == -INFINITY) {
      for (int d = threadIdx.x; d < d_len; d += blockDim.x) o[d] = from_f32<T>(0.0f);
      continue;
    }
    float local_sum = 0.0f;
    for (int j = threadIdx.x; j < visible; j += blockDim.x) {
      const float p = scores[j] == -INFINITY ? 0.0f : expf(scores[j] - max);
      scores[j] = p;
      local_sum += p;
    }
    const float total = block_sum(local_sum, scratch);
    __syncthreads();  // every score is final
    for (int d = threadIdx.x; d < d_len; d += blockDim.x) {
      float acc = 0.0f;
      for (int j = 0; j < visible; ++j)
        if (scores[j] > 0.0f) acc += scores[j] / total * to_f32(v_head[(long long)j * d_len + d]);
      o[d] = from_f32<T>(acc);
    }
  }
}

#define KV_KERNELS(T, S)                                                                        \
  extern "C" __global__ void kv_append_##S(const KvConfig cfg, const T* qkv, T* keys,           \
                                           T* values) {                                        \
    kv_append<T>(cfg, qkv, keys, values);                                                       \
  }                                                                                            \
  extern "C" __global__ void kv_attention_##S(const KvConfig cfg, const T* qkv, const T* keys,  \
                                              const T* values, const float* mask, T* out) {     \
    kv_attend<T>(cfg, qkv, keys, values, mask, out);                                            \
  }
FOR_EACH_DTYPE(KV_KERNELS)
