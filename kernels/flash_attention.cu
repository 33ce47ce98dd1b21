// Fused causal self-attention, flash-attention-2 style (Dao 2023), forward and backward, with the
// key-padding mask. No (T, T) matrix ever reaches device memory: scores live in registers and
// one (Br, Bc) tile of shared memory at a time.
//
// Layout (what GPT-2's c_attn gives and c_proj takes, so no head split/merge pass is needed):
//   qkv  (B, T, 3, H, D)  q = part 0, k = part 1, v = part 2   (storage T: f32 or bf16)
//   out  (B, T, H, D)  = (B, T, C)
//   lse  (B, H, T) f32: logsumexp of the row's scaled scores, +inf for a padded query
//   key_mask (B, T) i32, 0 = padding, or null
//   dout (B, T, C), dqkv (B, T, 3C); delta (B, H, T) f32; dq_acc (B, H, T, D) f32
// Semantics are those of ops::attention::cpu: query i attends to keys j <= i whose mask is set;
// a padded query outputs 0 and passes no gradient; scores are q.k / sqrt(D) (cfg.scale).
//
// Math is fp32 throughout (SIMT FMAs from fp32 shared-memory tiles; bf16 is widened on load),
// so both storage dtypes run the same code. A tensor-core (mma.sync) variant is future work.
//
// Forward, one block of 256 threads per (query tile of FWD_BR = 64 rows, b, h); the 16 x 16
// threads own rows ty + 16 r (r < 4) and key columns tx + 16 j (j < 4) of each (64, 64) score
// tile, and output columns tx + 16 c (c < D / 16). Per key tile of FWD_BC = 64 keys (only tiles
// with a key <= the tile's last query are visited): K into shared memory, S = Q K^T * scale in
// registers, masking, the row max over the tile by shuffles among the 16 threads of a row, the
// online softmax update (running max m, running sum l, O rescaled by exp(m_old - m_new)), P into
// shared memory, V into the same buffer as K, O += P V. Finally O /= l and lse = m + log(l).
// Shared memory (f32): Q (64, D+1) + K|V (64, D+1) + P (64, 64); the +1 padding keeps the
// column-wise reads of K conflict-free.
//
// Backward (FA2): flash_bwd_prep computes delta = rowsum(dO * O) per (b, h, i) and zeroes dq_acc;
// flash_bwd, one block per (key tile of BWD_BC = 64 keys, b, h), keeps K_j, V_j in shared memory
// and dK_j, dV_j in registers, and loops over the query tiles of BWD_BR = 32 rows that can see
// the tile (queries >= its first key): it recomputes P = exp(S * scale - lse) from the saved
// logsumexp, dV += P^T dO, dP = dO V^T, dS = P * (dP - delta), dK += scale * dS^T Q, and adds
// its share of dQ = scale * dS K into dq_acc with fp32 atomicAdd (FA2's choice: no second pass
// over K, V). flash_bwd_dq then writes dq_acc into the q part of dqkv in the storage dtype.
// dK and dV are owned by one block each and written directly into dqkv.
#include "common.cuh"

// Passed by value; mirrors `FlashConfig` in rlhf-tensor's cuda::flash_attention (repr(C)).
struct FlashConfig {
  int batch;     // B
  int seq_len;   // T
  int heads;     // H
  int head_dim;  // D (must equal the kernel's template D; checked by the wrapper)
  float scale;   // 1 / sqrt(D)
};

constexpr int FLASH_THREADS = 256;  // 16 x 16
constexpr int FWD_BR = 64, FWD_BC = 64;
constexpr int BWD_BR = 32, BWD_BC = 64;

// Shared-memory floats of each kernel; the wrapper computes the same figures
// (cuda::flash_attention::{forward,backward}_shared_bytes).
template <int D> __host__ __device__ constexpr int fwd_smem_floats() {
  return FWD_BR * (D + 1) + FWD_BC * (D + 1) + FWD_BR * FWD_BC;
}
template <int D> __host__ __device__ constexpr int bwd_smem_floats() {
  return 2 * BWD_BC * (D + 1) + 2 * BWD_BR * (D + 1) + 2 * BWD_BR * BWD_BC;
}

__device__ __forceinline__ unsigned dynamic_smem_bytes() {
  unsigned bytes;
  asm volatile("mov.u32 %0, %%dynamic_smem_size;" : "=r"(bytes));
  return bytes;
}

// Max over the 16 threads of one row (lanes differing in bits 0..3 of the lane id).
__device__ __forceinline__ float row16_max(float v) {
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ float row16_sum(float v) {
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Rows [row0, row0 + ROWS) of a (T, *) matrix whose row t starts at src + t * stride, D columns,
// into dst (ROWS, LD) as fp32; rows >= T become 0. Consecutive threads read consecutive columns.
template <typename T, int D, int ROWS, int LD>
__device__ __forceinline__ void load_rows(float* dst, const T* __restrict__ src, long long stride,
                                          int row0, int seq_len) {
  for (int idx = threadIdx.x; idx < ROWS * D; idx += FLASH_THREADS) {
    const int r = idx / D, c = idx % D;
    const int t = row0 + r;
    dst[r * LD + c] = t < seq_len ? to_f32(src[(long long)t * stride + c]) : 0.0f;
  }
}

__device__ __forceinline__ bool token_real(const int* __restrict__ key_mask, int b, int t,
                                           int seq_len) {
  return t < seq_len && (key_mask == nullptr || key_mask[(long long)b * seq_len + t] != 0);
}

template <typename T, int D>
__device__ __forceinline__ void flash_fwd(const FlashConfig cfg, const T* __restrict__ qkv,
                                          const int* __restrict__ key_mask, T* __restrict__ out,
                                          float* __restrict__ lse) {
  constexpr int LD = D + 1, RI = FWD_BR / 16, CJ = FWD_BC / 16, DC = D / 16;
  extern __shared__ float smem[];
  if (dynamic_smem_bytes() < fwd_smem_floats<D>() * sizeof(float)) return;  // outputs stay unwritten
  float* sQ = smem;                  // (BR, LD)
  float* sKV = sQ + FWD_BR * LD;     // (BC, LD): K, then V
  float* sP = sKV + FWD_BC * LD;     // (BR, BC)
  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
  const int seq_len = cfg.seq_len, H = cfg.heads;
  const int bh = blockIdx.y, b = bh / H, h = bh % H;
  // Heaviest (last) query tiles first: causal work grows with the tile index.
  const int q0 = (gridDim.x - 1 - blockIdx.x) * FWD_BR;
  const long long stride = 3LL * H * D;
  const T* q_base = qkv + (long long)b * seq_len * stride + (long long)h * D;
  const T* k_base = q_base + (long long)H * D;
  const T* v_base = k_base + (long long)H * D;

  load_rows<T, D, FWD_BR, LD>(sQ, q_base, stride, q0, seq_len);

  bool q_ok[RI];
  float m[RI], l[RI], acc[RI][DC];
#pragma unroll
  for (int r = 0; r < RI; ++r) {
    q_ok[r] = token_real(key_mask, b, q0 + ty + 16 * r, seq_len);
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int c = 0; c < DC; ++c) acc[r][c] = 0.0f;
  }

  const int kv_end = min(seq_len, q0 + FWD_BR);  // causal: no key beyond the tile's last query
  for (int k0 = 0; k0 < kv_end; k0 += FWD_BC) {
    __syncthreads();  // the previous tile's P V is done with sKV and sP
    load_rows<T, D, FWD_BC, LD>(sKV, k_base, stride, k0, seq_len);
    __syncthreads();

    float s[RI][CJ];
#pragma unroll
    for (int r = 0; r < RI; ++r)
#pragma unroll
      for (int j = 0; j < CJ; ++j) s[r][j] = 0.0f;
#pragma unroll 8
    for (int kk = 0; kk < D; ++kk) {
      float a[RI], bk[CJ];
#pragma unroll
      for (int r = 0; r < RI; ++r) a[r] = sQ[(ty + 16 * r) * LD + kk];
#pragma unroll
      for (int j = 0; j < CJ; ++j) bk[j] = sKV[(tx + 16 * j) * LD + kk];
#pragma unroll
      for (int r = 0; r < RI; ++r)
#pragma unroll
        for (int j = 0; j < CJ; ++j) s[r][j] = fmaf(a[r], bk[j], s[r][j]);
    }

    bool k_ok[CJ];
#pragma unroll
    for (int j = 0; j < CJ; ++j) k_ok[j] = token_real(key_mask, b, k0 + tx + 16 * j, seq_len);

#pragma unroll
    for (int r = 0; r < RI; ++r) {
      const int i = q0 + ty + 16 * r;
      float tile_max = -INFINITY;
#pragma unroll
      for (int j = 0; j < CJ; ++j) {
        const int key = k0 + tx + 16 * j;
        s[r][j] = (q_ok[r] && k_ok[j] && key <= i) ? s[r][j] * cfg.scale : -INFINITY;
        tile_max = fmaxf(tile_max, s[r][j]);
      }
      tile_max = row16_max(tile_max);
      const float m_new = fmaxf(m[r], tile_max);
      // A row with no allowed key so far keeps m = -inf; subtracting 0 then gives exp(-inf) = 0
      // instead of exp(-inf + inf) = NaN.
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;
      const float alpha = expf(m[r] - m_use);
      float row_sum = 0.0f;
#pragma unroll
      for (int j = 0; j < CJ; ++j) {
        const float p = expf(s[r][j] - m_use);
        row_sum += p;
        sP[(ty + 16 * r) * FWD_BC + tx + 16 * j] = p;
      }
      l[r] = l[r] * alpha + row16_sum(row_sum);
      m[r] = m_new;
#pragma unroll
      for (int c = 0; c < DC; ++c) acc[r][c] *= alpha;
    }
    __syncthreads();  // every thread is done reading K from sKV; P is complete
    load_rows<T, D, FWD_BC, LD>(sKV, v_base, stride, k0, seq_len);
    __syncthreads();
#pragma unroll 4
    for (int j = 0; j < FWD_BC; ++j) {
      float p[RI], vv[DC];
#pragma unroll
      for (int r = 0; r < RI; ++r) p[r] = sP[(ty + 16 * r) * FWD_BC + j];
#pragma unroll
      for (int c = 0; c < DC; ++c) vv[c] = sKV[j * LD + tx + 16 * c];
#pragma unroll
      for (int r = 0; r < RI; ++r)
#pragma unroll
        for (int c = 0; c < DC; ++c) acc[r][c] = fmaf(p[r], vv[c], acc[r][c]);
    }
  }

#pragma unroll
  for (int r = 0; r < RI; ++r) {
    const int i = q0 + ty + 16 * r;
    if (i >= seq_len) continue;
    const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;  // padded query: output 0
    T* o = out + ((long long)b * seq_len + i) * H * D + (long long)h * D;
#pragma unroll
    for (int c = 0; c < DC; ++c) o[tx + 16 * c] = from_f32<T>(acc[r][c] * inv);
    if (tx == 0) lse[(long long)bh * seq_len + i] = l[r] > 0.0f ? m[r] + logf(l[r]) : INFINITY;
  }
}

// delta[b, h, i] = sum_d dout[b, i, h, d] * out[b, i, h, d] (fp32), and dq_acc[b, h, i, :] = 0.
// One warp per (b, h, i) row, grid-stride over rows.
template <typename T>
__device__ __forceinline__ void flash_bwd_prep(const FlashConfig cfg, const T* __restrict__ out,
                                               const T* __restrict__ dout,
                                               float* __restrict__ delta,
                                               float* __restrict__ dq_acc) {
  const int lane = threadIdx.x & 31;
  const long long warps = (long long)gridDim.x * (blockDim.x >> 5);
  const long long rows = (long long)cfg.batch * cfg.heads * cfg.seq_len;
  const int D = cfg.head_dim, H = cfg.heads, seq_len = cfg.seq_len;
  for (long long row = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); row < rows;
       row += warps) {
    const int i = (int)(row % seq_len);
    const long long bh = row / seq_len;
    const int h = (int)(bh % H);
    const long long b = bh / H;
    const long long at = ((b * seq_len + i) * H + h) * D;
    float sum = 0.0f;
    for (int d = lane; d < D; d += 32) {
      sum = fmaf(to_f32(dout[at + d]), to_f32(out[at + d]), sum);
      dq_acc[row * D + d] = 0.0f;
    }
    sum = warp_sum(sum);
    if (lane == 0) delta[row] = sum;
  }
}

template <typename T, int D>
__device__ __forceinline__ void flash_bwd(const FlashConfig cfg, const T* __restrict__ qkv,
                                          const int* __restrict__ key_mask,
                                          const T* __restrict__ dout,
                                          const float* __restrict__ lse,
                                          const float* __restrict__ delta,
                                          float* __restrict__ dq_acc, T* __restrict__ dqkv) {
  constexpr int LD = D + 1, RI = BWD_BR / 16, CJ = BWD_BC / 16, DC = D / 16;
  extern __shared__ float smem[];
  if (dynamic_smem_bytes() < bwd_smem_floats<D>() * sizeof(float)) return;  // outputs stay unwritten
  float* sK = smem;                 // (BC, LD)
  float* sV = sK + BWD_BC * LD;     // (BC, LD)
  float* sQ = sV + BWD_BC * LD;     // (BR, LD)
  float* sdO = sQ + BWD_BR * LD;    // (BR, LD)
  float* sP = sdO + BWD_BR * LD;    // (BR, BC)
  float* sdS = sP + BWD_BR * BWD_BC;  // (BR, BC)
  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
  const int seq_len = cfg.seq_len, H = cfg.heads;
  const int bh = blockIdx.y, b = bh / H, h = bh % H;
  const int k0 = blockIdx.x * BWD_BC;  // the first key tiles see the most queries: launched first
  const long long stride = 3LL * H * D;
  const long long part = (long long)H * D;
  const T* q_base = qkv + (long long)b * seq_len * stride + (long long)h * D;
  const T* do_base = dout + (long long)b * seq_len * part + (long long)h * D;
  const float* lse_bh = lse + (long long)bh * seq_len;
  const float* delta_bh = delta + (long long)bh * seq_len;
  float* dq_bh = dq_acc + (long long)bh * seq_len * D;

  load_rows<T, D, BWD_BC, LD>(sK, q_base + part, stride, k0, seq_len);
  load_rows<T, D, BWD_BC, LD>(sV, q_base + 2 * part, stride, k0, seq_len);

  // This thread's keys (rows of dK, dV): k0 + ty + 16 i; its score columns: k0 + tx + 16 j.
  constexpr int KI = BWD_BC / 16;
  float dk[KI][DC], dv[KI][DC];
#pragma unroll
  for (int i = 0; i < KI; ++i)
#pragma unroll
    for (int c = 0; c < DC; ++c) dk[i][c] = dv[i][c] = 0.0f;
  bool k_ok[CJ];
#pragma unroll
  for (int j = 0; j < CJ; ++j) k_ok[j] = token_real(key_mask, b, k0 + tx + 16 * j, seq_len);

  // Causal: query tiles ending before k0 see none of these keys.
  for (int q0 = (k0 / BWD_BR) * BWD_BR; q0 < seq_len; q0 += BWD_BR) {
    __syncthreads();  // the previous tile is done with sQ, sdO, sP, sdS (and sK, sV are loaded)
    load_rows<T, D, BWD_BR, LD>(sQ, q_base, stride, q0, seq_len);
    load_rows<T, D, BWD_BR, LD>(sdO, do_base, part, q0, seq_len);
    __syncthreads();

    float s[RI][CJ], dp[RI][CJ];
#pragma unroll
    for (int r = 0; r < RI; ++r)
#pragma unroll
      for (int j = 0; j < CJ; ++j) s[r][j] = dp[r][j] = 0.0f;
#pragma unroll 4
    for (int kk = 0; kk < D; ++kk) {
      float a[RI], g[RI], bk[CJ], bv[CJ];
#pragma unroll
      for (int r = 0; r < RI; ++r) {
        a[r] = sQ[(ty + 16 * r) * LD + kk];
        g[r] = sdO[(ty + 16 * r) * LD + kk];
      }
#pragma unroll
      for (int j = 0; j < CJ; ++j) {
        bk[j] = sK[(tx + 16 * j) * LD + kk];
        bv[j] = sV[(tx + 16 * j) * LD + kk];
      }
#pragma unroll
      for (int r = 0; r < RI; ++r)
#pragma unroll
        for (int j = 0; j < CJ; ++j) {
          s[r][j] = fmaf(a[r], bk[j], s[r][j]);
          dp[r][j] = fmaf(g[r], bv[j], dp[r][j]);
        }
    }
#pragma unroll
    for (int r = 0; r < RI; ++r) {
      const int i = q0 + ty + 16 * r;
      const bool q_ok = token_real(key_mask, b, i, seq_len);
      const float lse_i = q_ok ? lse_bh[i] : INFINITY;
      const float delta_i = q_ok ? delta_bh[i] : 0.0f;
#pragma unroll
      for (int j = 0; j < CJ; ++j) {
        const int key = k0 + tx + 16 * j;
        const bool ok = q_ok && k_ok[j] && key <= i;
        const float p = ok ? expf(s[r][j] * cfg.scale - lse_i) : 0.0f;
        sP[(ty + 16 * r) * BWD_BC + tx + 16 * j] = p;
        sdS[(ty + 16 * r) * BWD_BC + tx + 16 * j] = p * (dp[r][j] - delta_i);
      }
    }
    __syncthreads();

    // dV[key] += sum_q P[q, key] dO[q];  dK[key] += sum_q dS[q, key] Q[q] (scaled at the end).
#pragma unroll 2
    for (int q = 0; q < BWD_BR; ++q) {
      float p[KI], ds[KI], g[DC], qv[DC];
#pragma unroll
      for (int i = 0; i < KI; ++i) {
        p[i] = sP[q * BWD_BC + ty + 16 * i];
        ds[i] = sdS[q * BWD_BC + ty + 16 * i];
      }
#pragma unroll
      for (int c = 0; c < DC; ++c) {
        g[c] = sdO[q * LD + tx + 16 * c];
        qv[c] = sQ[q * LD + tx + 16 * c];
      }
#pragma unroll
      for (int i = 0; i < KI; ++i)
#pragma unroll
        for (int c = 0; c < DC; ++c) {
          dv[i][c] = fmaf(p[i], g[c], dv[i][c]);
          dk[i][c] = fmaf(ds[i], qv[c], dk[i][c]);
        }
    }
    // dQ[q] += scale * sum_key dS[q, key] K[key], added into dq_acc (other key tiles add theirs).
#pragma unroll
    for (int r = 0; r < RI; ++r) {
      const int i = q0 + ty + 16 * r;
      if (!token_real(key_mask, b, i, seq_len)) continue;  // a padded query's dS row is all 0
      float dq[DC];
#pragma unroll
      for (int c = 0; c < DC; ++c) dq[c] = 0.0f;
#pragma unroll 4
      for (int key = 0; key < BWD_BC; ++key) {
        const float ds = sdS[(ty + 16 * r) * BWD_BC + key];
#pragma unroll
        for (int c = 0; c < DC; ++c) dq[c] = fmaf(ds, sK[key * LD + tx + 16 * c], dq[c]);
      }
#pragma unroll
      for (int c = 0; c < DC; ++c) atomicAdd(dq_bh + (long long)i * D + tx + 16 * c, dq[c] * cfg.scale);
    }
  }

#pragma unroll
  for (int i = 0; i < KI; ++i) {
    const int key = k0 + ty + 16 * i;
    if (key >= seq_len) continue;
    T* row = dqkv + ((long long)b * seq_len + key) * stride + (long long)h * D;
#pragma unroll
    for (int c = 0; c < DC; ++c) {
      row[part + tx + 16 * c] = from_f32<T>(dk[i][c] * cfg.scale);
      row[2 * part + tx + 16 * c] = from_f32<T>(dv[i][c]);
    }
  }
}

// dqkv[b, t, 0, h, d] = dq_acc[b, h, t, d], rounded to the storage dtype.
template <typename T>
__device__ __forceinline__ void flash_bwd_dq(const FlashConfig cfg, const float* __restrict__ dq_acc,
                                             T* __restrict__ dqkv) {
  const int D = cfg.head_dim, H = cfg.heads, seq_len = cfg.seq_len;
  const long long n = (long long)cfg.batch * H * seq_len * D;
  GRID_STRIDE(idx, n) {
    const int d = (int)(idx % D);
    long long rest = idx / D;
    const int t = (int)(rest % seq_len);
    rest /= seq_len;
    const int h = (int)(rest % H);
    const long long b = rest / H;
    dqkv[((b * seq_len + t) * 3 * H + h) * D + d] = from_f32<T>(dq_acc[idx]);
  }
}

#define FLASH_HEAD_KERNELS(T, S, D)                                                                 \
  extern "C" __global__ void __launch_bounds__(FLASH_THREADS)                                      \
      flash_fwd_d##D##_##S(FlashConfig cfg, const T* qkv, const int* key_mask, T* out, float* lse) { \
    flash_fwd<T, D>(cfg, qkv, key_mask, out, lse);                                                 \
  }                                                                                                \
  extern "C" __global__ void __launch_bounds__(FLASH_THREADS, 1)                                   \
      flash_bwd_d##D##_##S(FlashConfig cfg, const T* qkv, const int* key_mask, const T* dout,     \
                           const float* lse, const float* delta, float* dq_acc, T* dqkv) {        \
    flash_bwd<T, D>(cfg, qkv, key_mask, dout, lse, delta, dq_acc, dqkv);                           \
  }

#define FLASH_KERNELS(T, S)                                                                         \
  FLASH_HEAD_KERNELS(T, S, 64)                                                                     \
  FLASH_HEAD_KERNELS(T, S, 128)                                                                    \
  extern "C" __global__ void flash_bwd_prep_##S(FlashConfig cfg, const T* out, const T* dout,     \
                                                float* delta, float* dq_acc) {                     \
    flash_bwd_prep<T>(cfg, out, dout, delta, dq_acc);                                              \
  }                                                                                                \
  extern "C" __global__ void flash_bwd_dq_##S(FlashConfig cfg, const float* dq_acc, T* dqkv) {    \
    flash_bwd_dq<T>(cfg, dq_acc, dqkv);                                                            \
  }

FOR_EACH_DTYPE(FLASH_KERNELS)

// ---- tensor-core forward (bf16 storage only) --------------------------------------------------
// Same algorithm and semantics as flash_fwd, with the two products on tensor cores:
// mma.sync.m16n8k16 (bf16 inputs, fp32 accumulation). One block of 4 warps per (query tile of
// TC_BR = 64 rows, b, h); warp w owns rows 16 w .. 16 w + 15, keeps its Q fragments in
// registers for the whole loop, and per key tile of TC_BC = 64 computes S (16 x 64) = Q K^T
// into fp32 accumulators, applies the mask and the online softmax on the accumulators (a row is
// spread over the 4 lanes of a quad: shfl_xor 1, 2), converts P to bf16 A fragments in registers
// (the accumulator layout of two n8 tiles is the A layout of one k16 step) and adds P V into the
// O accumulators. Fragment layouts (PTX ISA, m16n8k16, g = lane / 4, t = lane % 4):
//   A (16 x 16, row-major): a0 = (g, 2t..2t+1), a1 = (g+8, 2t..), a2 = (g, 2t+8..), a3 = (g+8, 2t+8..)
//   B (16 x 8, k x n):      b0 = (k 2t..2t+1, n g), b1 = (k 2t+8..2t+9, n g)
//   C (16 x 8, fp32):       c0, c1 = (g, 2t..2t+1), c2, c3 = (g+8, 2t..2t+1)
// Shared memory (bf16): Q (64, D+8), K (64, D+8), V transposed (D, 64+8); the +8 padding makes
// every 32-bit fragment load of a warp hit 32 distinct banks. Fragments are loaded with plain
// 32-bit shared loads (no ldmatrix, no cp.async pipelining yet).
constexpr int TC_THREADS = 128, TC_BR = 64, TC_BC = 64;

template <int D> __host__ __device__ constexpr int tc_fwd_smem_bytes() {
  return 2 * (TC_BR * (D + 8) + TC_BC * (D + 8) + D * (TC_BC + 8));
}

__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                          uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two consecutive bf16 of shared memory as one 32-bit fragment register (the lower index in the
// low half).
__device__ __forceinline__ uint32_t ld_pair(const bf16* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}

__device__ __forceinline__ uint32_t pack_pair(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x = lo (low half), .y = hi
  return *reinterpret_cast<const uint32_t*>(&v);
}

template <int D>
__device__ __forceinline__ void flash_fwd_tc(const FlashConfig cfg, const bf16* __restrict__ qkv,
                                             const int* __restrict__ key_mask,
                                             bf16* __restrict__ out, float* __restrict__ lse) {
  constexpr int LDQ = D + 8, LDV = TC_BC + 8, KD = D / 16, NT = TC_BC / 8, ND = D / 8;
  extern __shared__ float smem[];
  if (dynamic_smem_bytes() < tc_fwd_smem_bytes<D>()) return;  // outputs stay unwritten
  bf16* sQ = reinterpret_cast<bf16*>(smem);  // (BR, LDQ)
  bf16* sK = sQ + TC_BR * LDQ;               // (BC, LDQ)
  bf16* sVt = sK + TC_BC * LDQ;              // (D, LDV): V transposed
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int seq_len = cfg.seq_len, H = cfg.heads;
  const int bh = blockIdx.y, b = bh / H, h = bh % H;
  const int q0 = (gridDim.x - 1 - blockIdx.x) * TC_BR;
  const long long stride = 3LL * H * D;
  const bf16* q_base = qkv + (long long)b * seq_len * stride + (long long)h * D;
  const bf16* k_base = q_base + (long long)H * D;
  const bf16* v_base = k_base + (long long)H * D;
  const bf16 zero = __float2bfloat16_rn(0.0f);

  for (int idx = threadIdx.x; idx < TC_BR * D; idx += TC_THREADS) {
    const int r = idx / D, c = idx % D;
    sQ[r * LDQ + c] = q0 + r < seq_len ? q_base[(long long)(q0 + r) * stride + c] : zero;
  }
  __syncthreads();
  const int rq = warp * 16 + g;  // this lane's rows in the tile: rq and rq + 8
  uint32_t qa[KD][4];
#pragma unroll
  for (int kc = 0; kc < KD; ++kc) {
    qa[kc][0] = ld_pair(sQ + rq * LDQ + kc * 16 + 2 * t);
    qa[kc][1] = ld_pair(sQ + (rq + 8) * LDQ + kc * 16 + 2 * t);
    qa[kc][2] = ld_pair(sQ + rq * LDQ + kc * 16 + 2 * t + 8);
    qa[kc][3] = ld_pair(sQ + (rq + 8) * LDQ + kc * 16 + 2 * t + 8);
  }
  const int rows[2] = {q0 + rq, q0 + rq + 8};
  bool q_ok[2];
  float m[2], l[2], o[ND][4];
#pragma unroll
  for (int x = 0; x < 2; ++x) {
    q_ok[x] = token_real(key_mask, b, rows[x], seq_len);
    m[x] = -INFINITY;
    l[x] = 0.0f;
  }
#pragma unroll
  for (int n = 0; n < ND; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[n][e] = 0.0f;

  const int kv_end = min(seq_len, q0 + TC_BR);
  for (int k0 = 0; k0 < kv_end; k0 += TC_BC) {
    __syncthreads();  // every warp is done with the previous sK, sVt
    for (int idx = threadIdx.x; idx < TC_BC * D; idx += TC_THREADS) {
      const int r = idx / D, c = idx % D;
      const bool in = k0 + r < seq_len;
      sK[r * LDQ + c] = in ? k_base[(long long)(k0 + r) * stride + c] : zero;
      sVt[c * LDV + r] = in ? v_base[(long long)(k0 + r) * stride + c] : zero;
    }
    __syncthreads();

    // S (16 x 64) = Q K^T: B[k = d][n = key] = K[key][d], so b0, b1 are pairs along a K row.
    float s[NT][4];
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[j][e] = 0.0f;
#pragma unroll
    for (int kc = 0; kc < KD; ++kc)
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const bf16* krow = sK + (j * 8 + g) * LDQ + kc * 16 + 2 * t;
        mma_16816(s[j], qa[kc], ld_pair(krow), ld_pair(krow + 8));
      }

    // Mask, scale, online softmax; s[j][e] is row rows[e >> 1], key k0 + 8 j + 2 t + (e & 1).
    float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int x = e >> 1, key = k0 + 8 * j + 2 * t + (e & 1);
        const bool ok = q_ok[x] && key <= rows[x] && token_real(key_mask, b, key, seq_len);
        s[j][e] = ok ? s[j][e] * cfg.scale : -INFINITY;
        tile_max[x] = fmaxf(tile_max[x], s[j][e]);
      }
    float m_use[2], alpha[2], row_sum[2] = {0.0f, 0.0f};
#pragma unroll
    for (int x = 0; x < 2; ++x) {
      tile_max[x] = fmaxf(tile_max[x], __shfl_xor_sync(0xffffffffu, tile_max[x], 1));
      tile_max[x] = fmaxf(tile_max[x], __shfl_xor_sync(0xffffffffu, tile_max[x], 2));
      const float m_new = fmaxf(m[x], tile_max[x]);
      m_use[x] = m_new == -INFINITY ? 0.0f : m_new;  // no exp(-inf + inf)
      alpha[x] = expf(m[x] - m_use[x]);
      m[x] = m_new;
    }
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[j][e] = expf(s[j][e] - m_use[e >> 1]);
        row_sum[e >> 1] += s[j][e];
      }
#pragma unroll
    for (int x = 0; x < 2; ++x) {
      row_sum[x] += __shfl_xor_sync(0xffffffffu, row_sum[x], 1);
      row_sum[x] += __shfl_xor_sync(0xffffffffu, row_sum[x], 2);
      l[x] = l[x] * alpha[x] + row_sum[x];
    }
#pragma unroll
    for (int n = 0; n < ND; ++n) {
      o[n][0] *= alpha[0];
      o[n][1] *= alpha[0];
      o[n][2] *= alpha[1];
      o[n][3] *= alpha[1];
    }

    // O += P V: the C layout of S tiles 2 kc and 2 kc + 1 is the A layout of keys 16 kc ..
    // 16 kc + 15; B[k = key][n = d] = Vt[d][key], pairs along a Vt row.
#pragma unroll
    for (int kc = 0; kc < TC_BC / 16; ++kc) {
      const uint32_t pa[4] = {
          pack_pair(s[2 * kc][0], s[2 * kc][1]), pack_pair(s[2 * kc][2], s[2 * kc][3]),
          pack_pair(s[2 * kc + 1][0], s[2 * kc + 1][1]), pack_pair(s[2 * kc + 1][2], s[2 * kc + 1][3])};
#pragma unroll
      for (int n = 0; n < ND; ++n) {
        const bf16* vrow = sVt + (n * 8 + g) * LDV + kc * 16 + 2 * t;
        mma_16816(o[n], pa, ld_pair(vrow), ld_pair(vrow + 8));
      }
    }
  }

#pragma unroll
  for (int x = 0; x < 2; ++x) {
    const int i = rows[x];
    if (i >= seq_len) continue;
    const float inv = l[x] > 0.0f ? 1.0f / l[x] : 0.0f;
    bf16* orow = out + ((long long)b * seq_len + i) * H * D + (long long)h * D;
#pragma unroll
    for (int n = 0; n < ND; ++n) {
      orow[n * 8 + 2 * t] = from_f32<bf16>(o[n][2 * x] * inv);
      orow[n * 8 + 2 * t + 1] = from_f32<bf16>(o[n][2 * x + 1] * inv);
    }
    if (t == 0) lse[(long long)bh * seq_len + i] = l[x] > 0.0f ? m[x] + logf(l[x]) : INFINITY;
  }
}

#define FLASH_TC_KERNEL(D)                                                                          \
  extern "C" __global__ void __launch_bounds__(TC_THREADS)                                         \
      flash_fwd_tc_d##D##_bf16(FlashConfig cfg, const bf16* qkv, const int* key_mask, bf16* out,  \
                               float* lse) {                                                       \
    flash_fwd_tc<D>(cfg, qkv, key_mask, out, lse);                                                 \
  }

FLASH_TC_KERNEL(64)
FLASH_TC_KERNEL(128)
