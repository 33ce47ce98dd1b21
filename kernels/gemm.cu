// Row-major GEMM with a fused epilogue, batched over blockIdx.z:
//   pre = alpha * op(A) op(B) + beta * C + bias     (bias (N), broadcast over rows; optional)
//   C   = gelu ? gelu_tanh(pre) : pre                (pre also written to `pre` when non-null)
// A is stored (M, K) or, transposed, (K, M); B is stored (K, N) or, transposed, (N, K); each with
// its own row stride (lda, ldb) and batch stride (0: shared by the batch).
//
// Two families, one extern "C" kernel per (input, output, layout):
// - gemm_bf16_{bf16,f32}_{nn,nt,tn,tt}: tensor cores, mma.sync.m16n8k16 bf16 -> fp32 (sm_80+).
//   Block tile 128x128x32, 256 threads = 8 warps as 2 (M) x 4 (N), warp tile 64x32 = 4x4 mma
//   tiles of 16x8, 64 fp32 accumulators per thread. Global -> shared by cp.async (16 B, zero
//   fill past the edges) in a 3-stage ring (3 x 16 KiB = 48 KiB static shared memory); shared ->
//   registers by ldmatrix (.trans for operands whose contiguous dimension is M or N). Shared
//   tiles are XOR-swizzled in 16-byte chunks so that the 8 row addresses of every ldmatrix
//   phase and of every cp.async quarter-warp hit 8 different bank groups. When an operand's
//   pointer, row stride or batch stride is not a multiple of 8 elements (16 B), that operand is
//   loaded by predicated scalar loads instead (same shared layout, no async overlap).
//   Blocks walk the tile grid in groups of 8 M-tiles (L2 reuse of the B panel).
// - gemm_f32_f32_{nn,nt,tn,tt}: exact fp32 on CUDA cores, register-tiled: block tile
//   128x128x8, 256 threads, 8x8 outputs per thread (rows ty + 16 i, columns tx + 16 j).
//
// The index math of both (swizzle, load slots, ldmatrix lanes, fragment ownership, tile order)
// is mirrored line for line in crates/rlhf-tensor/src/cuda/gemm/tiling.rs, where a CPU test
// emulates the whole tensor-core kernel and checks it against a reference product.
#include "common.cuh"
#include "gelu.cuh"

// Mirrored in crates/rlhf-tensor/src/cuda/gemm/mod.rs (GemmParams), field for field.
struct GemmParams {
  long long stride_a, stride_b, stride_c;  // elements between batch entries (0: shared)
  int m, n, k;
  int lda, ldb, ldc;  // row strides of A and B as stored, and of C (elements)
  float alpha, beta;  // beta == 0: C is not read (it may hold NaN)
  int gelu;           // 1: tanh-GELU epilogue
  int a_vec, b_vec;   // 1: 16-byte cp.async loads are legal for A / B
};

// ---- tensor-core epilogue ----------------------------------------------------------------
template <typename T> struct Pair;
template <> struct Pair<float> {
  typedef float2 type;
  static __device__ __forceinline__ float2 make(float x, float y) { return make_float2(x, y); }
};
template <> struct Pair<bf16> {
  typedef __nv_bfloat162 type;
  static __device__ __forceinline__ __nv_bfloat162 make(float x, float y) {
    return __floats2bfloat162_rn(x, y);
  }
};

// Writes v0 (and v1 when `two`) at p: one paired store when `paired`.
template <typename TOut>
__device__ __forceinline__ void put_two(TOut* p, float v0, float v1, bool two, bool paired) {
  if (paired) {
    *reinterpret_cast<typename Pair<TOut>::type*>(p) = Pair<TOut>::make(v0, v1);
  } else {
    p[0] = from_f32<TOut>(v0);
    if (two) p[1] = from_f32<TOut>(v1);
  }
}

// The epilogue of output columns col, col + 1 of one row (the second only when `two`) at
// c = C + row * ldc + col (likewise pre, bias + col) of the tensor-core kernels: one
// out-of-line call per pair, which keeps the PTX small (inlined, each thread's 32 pairs made
// gemm.ptx 5 MB, embedded in every binary); a call costs little next to the main loop.
template <typename TOut>
__device__ __noinline__ void epilogue_two(TOut* c, TOut* pre, const bf16* bias, float alpha,
                                          float beta, int act, float a0, float a1, bool two,
                                          bool paired) {
  float v0 = alpha * a0, v1 = alpha * a1;
  if (beta != 0.0f) {
    v0 += beta * to_f32(c[0]);
    if (two) v1 += beta * to_f32(c[1]);
  }
  if (bias != nullptr) {
    v0 += to_f32(bias[0]);
    if (two) v1 += to_f32(bias[1]);
  }
  if (act) {
    if (pre != nullptr) put_two<TOut>(pre, v0, v1, two, paired);
    v0 = gelu(v0);
    v1 = gelu(v1);
  }
  put_two<TOut>(c, v0, v1, two, paired);
}

// ---- tensor-core family --------------------------------------------------------------------
namespace tc {
constexpr int BM = 128, BN = 128, BK = 32, STAGES = 3, THREADS = 256;
constexpr int WARPS_N = 4, WM = 64, WN = 32;
constexpr int MI = WM / 16;  // mma tiles per warp along M
constexpr int NI = WN / 8;   // mma tiles per warp along N
constexpr int GROUP_M = 8;
constexpr int TILE = BM * BK;  // elements of one operand tile (BN * BK is the same)
static_assert(BM == BN, "the loaders assume square block tiles");

// A tile stored as in global memory. "K-major": 128 rows (M or N) x 32 k, 4 chunks of 8 per row,
// chunk ^= (row >> 1) & 3. "O-major": 32 rows (k) x 128 (M or N), 16 chunks per row,
// chunk ^= row & 7. Offsets in elements.
__device__ __forceinline__ int kmajor_offset(int row, int chunk) {
  return row * BK + ((chunk ^ ((row >> 1) & 3)) << 3);
}
__device__ __forceinline__ int omajor_offset(int row, int chunk) {
  return row * BM + ((chunk ^ (row & 7)) << 3);
}

// Grouped tile order: GROUP_M consecutive M-tiles share each N-tile before moving on.
__device__ __forceinline__ void tile_coords(int pid, int tiles_m, int tiles_n, int& tm, int& tn) {
  const int per_group = GROUP_M * tiles_n;
  const int group = pid / per_group;
  const int first_m = group * GROUP_M;
  const int rows = min(tiles_m - first_m, GROUP_M);
  const int in_group = pid - group * per_group;
  tm = first_m + in_group % rows;
  tn = in_group / rows;
}

__device__ __forceinline__ void cp_async16(bf16* smem, const bf16* gmem, bool valid) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
  const int bytes = valid ? 16 : 0;  // 0: nothing is read, the 16 bytes are zero-filled
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// One operand tile (o0.., k0..) of a matrix stored with row stride ld: K-major when the
// stored rows run over o (element (o, k) at o * ld + k), O-major when they run over k
// (element (o, k) at k * ld + o). `extent_o` is M or N. Slot idx (0..511) of the 512 16-byte
// chunks: K-major row idx >> 2, chunk idx & 3; O-major row idx >> 4, chunk idx & 15.
template <bool KMAJOR>
__device__ __forceinline__ void load_tile(bf16* tile, const bf16* g, int ld, int extent_o, int K,
                                          int o0, int k0, bool vec) {
#pragma unroll
  for (int j = 0; j < TILE / 8 / THREADS; ++j) {
    const int idx = threadIdx.x + j * THREADS;
    int o, k, off;
    if constexpr (KMAJOR) {
      const int row = idx >> 2, chunk = idx & 3;
      o = o0 + row;
      k = k0 + chunk * 8;
      off = kmajor_offset(row, chunk);
    } else {
      const int row = idx >> 4, chunk = idx & 15;
      o = o0 + chunk * 8;
      k = k0 + row;
      off = omajor_offset(row, chunk);
    }
    // Element (o, k) of the chunk's first element; the chunk runs along the stored row.
    const long long at = KMAJOR ? (long long)o * ld + k : (long long)k * ld + o;
    if (vec) {
      // vec: extent along the row and ld are multiples of 8, so a chunk is all in or all out.
      const bool valid = o < extent_o && k < K;
      cp_async16(tile + off, valid ? g + at : g, valid);
    } else {
      alignas(16) bf16 v[8];
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const int oe = KMAJOR ? o : o + e, ke = KMAJOR ? k + e : k;
        v[e] = (oe < extent_o && ke < K) ? g[at + e] : __float2bfloat16_rn(0.0f);
      }
      *reinterpret_cast<int4*>(tile + off) = *reinterpret_cast<const int4*>(v);
    }
  }
}

__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const bf16* p) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], const bf16* p) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

// Four 8x8 matrices of the operand at (o0.., kk..): matrix i = lane >> 3 covers rows
// o0 + o_off .. +8 and k kk + k_off .. +8; lane supplies that matrix's row lane & 7. The
// register order comes out as the mma fragment wants it: for A (o_off = (i & 1) * 8,
// k_off = (i >> 1) * 8) a0..a3 of one 16x16 tile; for B (o_off = (i >> 1) * 8,
// k_off = (i & 1) * 8) b0, b1 of two 16x8 tiles.
template <bool KMAJOR>
__device__ __forceinline__ void load_frag(unsigned (&r)[4], const bf16* tile, int o0, int kk,
                                          int o_off, int k_off) {
  const int lane_row = threadIdx.x & 7;
  if constexpr (KMAJOR) {
    ldmatrix_x4(r, tile + kmajor_offset(o0 + o_off + lane_row, (kk + k_off) >> 3));
  } else {
    ldmatrix_x4_trans(r, tile + omajor_offset(kk + k_off + lane_row, (o0 + o_off) >> 3));
  }
}

__device__ __forceinline__ void mma_bf16(float (&d)[4], const unsigned (&a)[4], unsigned b0,
                                         unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <typename TOut>
__device__ __forceinline__ void store_two(const GemmParams& p, TOut* C, TOut* pre,
                                          const bf16* bias, int row, int col, float a0, float a1,
                                          bool pairs) {
  if (row >= p.m || col >= p.n) return;
  const bool two = col + 1 < p.n;
  const long long at = (long long)row * p.ldc + col;
  epilogue_two<TOut>(C + at, pre != nullptr ? pre + at : nullptr,
                     bias != nullptr ? bias + col : nullptr, p.alpha, p.beta, p.gelu, a0, a1, two,
                     pairs && two);
}

template <typename TOut, bool TA, bool TB>
__device__ __forceinline__ void gemm(const GemmParams& p, const bf16* A, const bf16* B, TOut* C,
                                     const bf16* bias, TOut* pre) {
  // [stage][0: A, 1: B][tile]
  __shared__ __align__(128) bf16 smem[STAGES][2][TILE];
  constexpr bool A_KMAJOR = !TA;  // A (M, K): rows run over m
  constexpr bool B_KMAJOR = TB;   // B^T stored (N, K): rows run over n
  const int tiles_m = (p.m + BM - 1) / BM, tiles_n = (p.n + BN - 1) / BN;
  int tm, tn;
  tile_coords(blockIdx.x, tiles_m, tiles_n, tm, tn);
  const long long z = blockIdx.z;
  A += z * p.stride_a;
  B += z * p.stride_b;
  C += z * p.stride_c;
  if (pre != nullptr) pre += z * p.stride_c;
  const int m0 = tm * BM, n0 = tn * BN;
  const bool a_vec = p.a_vec != 0, b_vec = p.b_vec != 0;
  const int k_tiles = (p.k + BK - 1) / BK;

  auto load_stage = [&](int stage, int kt) {
    load_tile<A_KMAJOR>(smem[stage][0], A, p.lda, p.m, p.k, m0, kt * BK, a_vec);
    load_tile<B_KMAJOR>(smem[stage][1], B, p.ldb, p.n, p.k, n0, kt * BK, b_vec);
  };

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int wm = (warp / WARPS_N) * WM, wn = (warp % WARPS_N) * WN;
  const int mat = lane >> 3;  // which of ldmatrix's four 8x8 matrices this lane addresses

  float acc[MI][NI][4];
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < NI; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

#pragma unroll 1
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < k_tiles) load_stage(s, s);
    cp_async_commit();
  }
  for (int kt = 0; kt < k_tiles; ++kt) {
    // Tile kt has landed (at most STAGES - 2 newer groups pending), and every warp is done with
    // the stage the prefetch below overwrites (it held tile kt - 1).
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    const int next = kt + STAGES - 1;
    if (next < k_tiles) load_stage(next % STAGES, next);
    cp_async_commit();

    const bf16* As = smem[kt % STAGES][0];
    const bf16* Bs = smem[kt % STAGES][1];
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      unsigned af[MI][4], bfr[NI / 2][4];
#pragma unroll
      for (int i = 0; i < MI; ++i)
        load_frag<A_KMAJOR>(af[i], As, wm + i * 16, kk, (mat & 1) * 8, (mat >> 1) * 8);
#pragma unroll
      for (int j = 0; j < NI / 2; ++j)
        load_frag<B_KMAJOR>(bfr[j], Bs, wn + j * 16, kk, (mat >> 1) * 8, (mat & 1) * 8);
#pragma unroll
      for (int i = 0; i < MI; ++i)
#pragma unroll
        for (int j = 0; j < NI; ++j)
          mma_bf16(acc[i][j], af[i], bfr[j >> 1][(j & 1) * 2], bfr[j >> 1][(j & 1) * 2 + 1]);
    }
  }
  cp_async_wait<0>();

  // Accumulator (i, j, e): row g + (e >> 1) * 8, column 2 t + (e & 1) of mma tile (i, j),
  // g = lane >> 2, t = lane & 3.
  const bool pairs = (p.ldc % 2 == 0) && (p.stride_c % 2 == 0) &&
                     (reinterpret_cast<uintptr_t>(C) % (2 * sizeof(TOut)) == 0) &&
                     (pre == nullptr || reinterpret_cast<uintptr_t>(pre) % (2 * sizeof(TOut)) == 0);
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < NI; ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = m0 + wm + i * 16 + g + h * 8;
        const int col = n0 + wn + j * 8 + 2 * t;
        store_two<TOut>(p, C, pre, bias, row, col, acc[i][j][2 * h], acc[i][j][2 * h + 1], pairs);
      }
}
}  // namespace tc

// ---- fp32 family (CUDA cores) ----------------------------------------------------------------
namespace simt {
// Out of line: inlined at each of a thread's 64 outputs it dominated the kernel's PTX.
__device__ __noinline__ float gelu_call(float x) { return gelu(x); }

constexpr int BM = 128, BN = 128, BK = 8, THREADS = 256, PAD = 4;

template <typename TOut, bool TA, bool TB>
__device__ __forceinline__ void gemm(const GemmParams& p, const float* A, const float* B, TOut* C,
                                     const float* bias, TOut* pre) {
  __shared__ float As[BK][BM + PAD];  // As[k][m]
  __shared__ float Bs[BK][BN + PAD];  // Bs[k][n]
  const int tiles_m = (p.m + BM - 1) / BM, tiles_n = (p.n + BN - 1) / BN;
  int tm, tn;
  tc::tile_coords(blockIdx.x, tiles_m, tiles_n, tm, tn);
  const long long z = blockIdx.z;
  A += z * p.stride_a;
  B += z * p.stride_b;
  C += z * p.stride_c;
  if (pre != nullptr) pre += z * p.stride_c;
  const int m0 = tm * BM, n0 = tn * BN;
  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;

  float acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;

  for (int k0 = 0; k0 < p.k; k0 += BK) {
    // 1024 elements of each operand, 4 per thread; consecutive threads walk the stored row.
#pragma unroll
    for (int r = 0; r < BM * BK / THREADS; ++r) {
      const int idx = threadIdx.x + r * THREADS;
      const int am = TA ? idx & (BM - 1) : idx >> 3, ak = TA ? idx >> 7 : idx & 7;
      const int gm = m0 + am, gk = k0 + ak;
      As[ak][am] = (gm < p.m && gk < p.k)
                       ? A[TA ? (long long)gk * p.lda + gm : (long long)gm * p.lda + gk]
                       : 0.0f;
      const int bn = TB ? idx >> 3 : idx & (BN - 1), bk = TB ? idx & 7 : idx >> 7;
      const int gn = n0 + bn, gk2 = k0 + bk;
      Bs[bk][bn] = (gn < p.n && gk2 < p.k)
                       ? B[TB ? (long long)gn * p.ldb + gk2 : (long long)gk2 * p.ldb + gn]
                       : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      float a[8], b[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) a[i] = As[k][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 8; ++j) b[j] = Bs[k][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int row = m0 + ty + 16 * i, col = n0 + tx + 16 * j;
      if (row < p.m && col < p.n) {
        const long long at = (long long)row * p.ldc + col;
        float v = p.alpha * acc[i][j];
        if (p.beta != 0.0f) v += p.beta * to_f32(C[at]);
        if (bias != nullptr) v += bias[col];
        if (p.gelu) {
          if (pre != nullptr) pre[at] = from_f32<TOut>(v);
          v = gelu_call(v);
        }
        C[at] = from_f32<TOut>(v);
      }
    }
}
}  // namespace simt

// extern "C" entry points: gemm_<in>_<out>_<layout>, layout n/t for A then B.
#define GEMM_TC(TOUT, OS, TA, TB, L)                                                           \
  extern "C" __global__ void __launch_bounds__(tc::THREADS, 2)                                 \
      gemm_bf16_##OS##_##L(GemmParams p, const bf16* a, const bf16* b, TOUT* c,                \
                           const bf16* bias, TOUT* pre) {                                      \
    tc::gemm<TOUT, TA, TB>(p, a, b, c, bias, pre);                                             \
  }
#define GEMM_SIMT(TOUT, OS, TA, TB, L)                                                         \
  extern "C" __global__ void __launch_bounds__(simt::THREADS, 2)                               \
      gemm_f32_##OS##_##L(GemmParams p, const float* a, const float* b, TOUT* c,               \
                          const float* bias, TOUT* pre) {                                      \
    simt::gemm<TOUT, TA, TB>(p, a, b, c, bias, pre);                                           \
  }
#define GEMM_LAYOUTS(FAMILY, TOUT, OS)  \
  FAMILY(TOUT, OS, false, false, nn)    \
  FAMILY(TOUT, OS, false, true, nt)     \
  FAMILY(TOUT, OS, true, false, tn)     \
  FAMILY(TOUT, OS, true, true, tt)

GEMM_LAYOUTS(GEMM_TC, bf16, bf16)
GEMM_LAYOUTS(GEMM_TC, float, f32)
GEMM_LAYOUTS(GEMM_SIMT, float, f32)
