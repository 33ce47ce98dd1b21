// Layout kernels around attention (the GEMMs go through cuBLAS strided-batched calls and the
// causal softmax through softmax.cu; a fused flash attention is a later issue):
// - qkv_to_heads: qkv (B, T, 3, H, D) -> q, k, v each (B, H, T, D);  heads_to_qkv: its inverse
//   (the backward, from dq, dk, dv to dqkv);
// - heads_to_seq: y (B, H, T, D) -> out (B, T, H, D) = (B, T, C);  seq_to_heads: its inverse;
// - mask_scores: the key-padding mask on the scores (B, H, T, T) before the causal softmax:
//   -inf where the key is padding, and the whole row where the query is padding, so that a
//   padded query's probability row is all zeros (softmax.cu gives zeros for an all -inf row) and
//   it passes no gradient, as the CPU kernels do.
// One thread per output element; D is contiguous on both sides, so loads and stores coalesce.
#include "common.cuh"

// Passed by value; mirrors `HeadsConfig` in rlhf-tensor's cuda::attention (repr(C)).
struct HeadsConfig {
  int batch;     // B
  int seq_len;   // T
  int heads;     // H
  int head_dim;  // D
};

// Index of (b, t, h, d) in a (B, T, H, D) buffer and of (b, h, t, d) in (B, H, T, D), from the
// flat (B, H, T, D) index i.
__device__ __forceinline__ void head_indices(const HeadsConfig& cfg, long long i,
                                             long long* seq_index, int* b_out, int* t_out,
                                             int* h_out, int* d_out) {
  const int d = (int)(i % cfg.head_dim);
  long long rest = i / cfg.head_dim;
  const int t = (int)(rest % cfg.seq_len);
  rest /= cfg.seq_len;
  const int h = (int)(rest % cfg.heads);
  const int b = (int)(rest / cfg.heads);
  *seq_index = (((long long)b * cfg.seq_len + t) * cfg.heads + h) * cfg.head_dim + d;
  *b_out = b;
  *t_out = t;
  *h_out = h;
  *d_out = d;
}

#define ATTENTION_KERNELS(T, S)                                                                     \
  /* qkv (B, T, 3, H, D) -> q, k, v (B, H, T, D) */                                                 \
  extern "C" __global__ void qkv_to_heads_##S(HeadsConfig cfg, const T* qkv, T* q, T* k, T* v) {   \
    const long long n = (long long)cfg.batch * cfg.heads * cfg.seq_len * cfg.head_dim;             \
    const long long c = (long long)cfg.heads * cfg.head_dim;                                       \
    GRID_STRIDE(i, n) {                                                                            \
      long long s;                                                                                 \
      int b, t, h, d;                                                                              \
      head_indices(cfg, i, &s, &b, &t, &h, &d);                                                    \
      const long long src = ((long long)b * cfg.seq_len + t) * 3 * c + (long long)h * cfg.head_dim + d; \
      q[i] = qkv[src];                                                                             \
      k[i] = qkv[src + c];                                                                         \
      v[i] = qkv[src + 2 * c];                                                                     \
    }                                                                                              \
  }                                                                                                \
  /* dq, dk, dv (B, H, T, D) -> dqkv (B, T, 3, H, D) */                                             \
  extern "C" __global__ void heads_to_qkv_##S(HeadsConfig cfg, const T* dq, const T* dk,          \
                                              const T* dv, T* dqkv) {                              \
    const long long n = (long long)cfg.batch * cfg.heads * cfg.seq_len * cfg.head_dim;             \
    const long long c = (long long)cfg.heads * cfg.head_dim;                                       \
    GRID_STRIDE(i, n) {                                                                            \
      long long s;                                                                                 \
      int b, t, h, d;                                                                              \
      head_indices(cfg, i, &s, &b, &t, &h, &d);                                                    \
      const long long dst = ((long long)b * cfg.seq_len + t) * 3 * c + (long long)h * cfg.head_dim + d; \
      dqkv[dst] = dq[i];                                                                           \
      dqkv[dst + c] = dk[i];                                                                       \
      dqkv[dst + 2 * c] = dv[i];                                                                   \
    }                                                                                              \
  }                                                                                                \
  /* y (B, H, T, D) -> out (B, T, H, D) */                                                          \
  extern "C" __global__ void heads_to_seq_##S(HeadsConfig cfg, const T* y, T* out) {              \
    const long long n = (long long)cfg.batch * cfg.heads * cfg.seq_len * cfg.head_dim;             \
    GRID_STRIDE(i, n) {                                                                            \
      long long s;                                                                                 \
      int b, t, h, d;                                                                              \
      head_indices(cfg, i, &s, &b, &t, &h, &d);                                                    \
      out[s] = y[i];                                                                               \
    }                                                                                              \
  }                                                                                                \
  /* dout (B, T, H, D) -> dy (B, H, T, D) */                                                        \
  extern "C" __global__ void seq_to_heads_##S(HeadsConfig cfg, const T* dout, T* dy) {            \
    const long long n = (long long)cfg.batch * cfg.heads * cfg.seq_len * cfg.head_dim;             \
    GRID_STRIDE(i, n) {                                                                            \
      long long s;                                                                                 \
      int b, t, h, d;                                                                              \
      head_indices(cfg, i, &s, &b, &t, &h, &d);                                                    \
      dy[i] = dout[s];                                                                             \
    }                                                                                              \
  }                                                                                                \
  /* scores (B, H, T, T): -inf where key_mask[b, j] == 0 or key_mask[b, i] == 0 (B, T) */          \
  extern "C" __global__ void mask_scores_##S(HeadsConfig cfg, const int* key_mask, T* scores) {    \
    const long long t = cfg.seq_len;                                                               \
    const long long n = (long long)cfg.batch * cfg.heads * t * t;                                  \
    GRID_STRIDE(idx, n) {                                                                          \
      const long long j = idx % t;                                                                 \
      const long long i = (idx / t) % t;                                                           \
      const long long b = idx / (t * t * cfg.heads);                                               \
      if (key_mask[b * t + j] == 0 || key_mask[b * t + i] == 0) scores[idx] = from_f32<T>(-INFINITY); \
    }                                                                                              \
  }

FOR_EACH_DTYPE(ATTENTION_KERNELS)
