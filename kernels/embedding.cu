// Token (+ position) embedding, forward and backward.
//
// Forward: out[r, :] = table[ids[r], :] (+ pos[r % seq_len, :] when pos is not null), one 128-bit
// pack per thread when cols allows. An id outside [0, vocab) writes NaN to its row and sets
// *bad = 1, which the host checks.
//
// Backward into fp32 gradient accumulators (+=):
// - embedding_bwd_atomic: one thread per (row, column), atomicAdd (fast, run-to-run order may
//   differ in the last bits);
// - embedding_bwd_sorted: deterministic; the host groups the rows by id (a counting sort), each
//   block column sums one id's rows in a fixed order;
// - position_bwd: dpos[t, c] += sum over b of dout[b * seq_len + t, c], in order of b.
#include "common.cuh"

template <typename T, int W>
__device__ __forceinline__ void embedding_forward(long long rows, int cols, int vocab, int seq_len,
                                                  const int* ids, const T* table, const T* pos,
                                                  T* out, int* bad) {
  const int per_row = cols / W;
  GRID_STRIDE(i, rows * per_row) {
    const long long row = i / per_row;
    const int c = (int)(i % per_row) * W;
    const int id = ids[row];
    float v[W];
    if (id < 0 || id >= vocab) {
#pragma unroll
      for (int k = 0; k < W; ++k) v[k] = NAN;
      if (c == 0) atomicOr(bad, 1);
    } else {
      load_w<T, W>(table + (long long)id * cols + c, v);
      if (pos) {
        float p[W];
        load_w<T, W>(pos + (row % seq_len) * cols + c, p);
#pragma unroll
        for (int k = 0; k < W; ++k) v[k] += p[k];
      }
    }
    store_w<T, W>(out + row * cols + c, v);
  }
}

#define EMBEDDING_KERNELS(T, S)                                                                      \
  /* ids (rows) i32, table (vocab, cols), pos (seq_len, cols) nullable -> out (rows, cols) */        \
  extern "C" __global__ void embedding_fwd_##S(long long rows, int cols, int vocab, int seq_len,   \
                                               const int* ids, const T* table, const T* pos,       \
                                               T* out, int* bad) {                                 \
    constexpr int N = Pack128<T>::N;                                                                \
    if (cols % N == 0 && aligned16(table) && aligned16(out) && (!pos || aligned16(pos)))            \
      embedding_forward<T, N>(rows, cols, vocab, seq_len, ids, table, pos, out, bad);               \
    else                                                                                            \
      embedding_forward<T, 1>(rows, cols, vocab, seq_len, ids, table, pos, out, bad);               \
  }                                                                                                 \
  /* dout (rows, cols) -> dtable (vocab, cols) f32 +=, dpos (seq_len, cols) f32 += (nullable) */     \
  extern "C" __global__ void embedding_bwd_atomic_##S(long long rows, int cols, int vocab,          \
                                                      int seq_len, const int* ids, const T* dout,   \
                                                      float* dtable, float* dpos) {                 \
    GRID_STRIDE(i, rows * cols) {                                                                   \
      const long long row = i / cols;                                                               \
      const int c = (int)(i % cols), id = ids[row];                                                 \
      const float g = to_f32(dout[i]);                                                              \
      if (id >= 0 && id < vocab) atomicAdd(dtable + (long long)id * cols + c, g);                   \
      if (dpos) atomicAdd(dpos + (row % seq_len) * cols + c, g);                                    \
    }                                                                                               \
  }                                                                                                 \
  /* order (rows): row indices grouped by id; seg_start (segments + 1); seg_id (segments);         \
     grid (segments, ceil(cols / blockDim.x)) -> dtable (vocab, cols) f32 += */                     \
  extern "C" __global__ void embedding_bwd_sorted_##S(int cols, const int* order,                  \
                                                      const int* seg_start, const int* seg_id,     \
                                                      const T* dout, float* dtable) {               \
    const int segment = blockIdx.x, c = blockIdx.y * blockDim.x + threadIdx.x;                      \
    if (c >= cols) return;                                                                          \
    float total = 0.0f;                                                                             \
    for (int k = seg_start[segment]; k < seg_start[segment + 1]; ++k)                               \
      total += to_f32(dout[(long long)order[k] * cols + c]);                                        \
    dtable[(long long)seg_id[segment] * cols + c] += total;                                         \
  }                                                                                                 \
  /* dout (batch * seq_len, cols) -> dpos (seq_len, cols) f32 += */                                 \
  extern "C" __global__ void position_bwd_##S(int batch, int seq_len, int cols, const T* dout,     \
                                              float* dpos) {                                        \
    GRID_STRIDE(i, (long long)seq_len * cols) {                                                     \
      float total = 0.0f;                                                                           \
      for (int b = 0; b < batch; ++b) total += to_f32(dout[(long long)b * seq_len * cols + i]);     \
      dpos[i] += total;                                                                             \
    }                                                                                               \
  }

FOR_EACH_DTYPE(EMBEDDING_KERNELS)
