//! The index math of `kernels/gemm.cu`, mirrored on the CPU expression for expression: tile
//! sizes, the swizzled shared-memory layouts, which thread loads which 16-byte chunk, which
//! shared-memory row each lane hands to `ldmatrix`, which output element each accumulator
//! register holds, and the grouped tile order. Nothing here runs on a GPU; the test
//! `tests/gemm_ours/` (in the `cuda_gemm` test binary) emulates the whole kernel with these functions (plus the PTX ISA's
//! definitions of `ldmatrix` and `mma.m16n8k16` fragments) and checks it against a reference
//! product, and checks that every shared-memory access phase is free of bank conflicts. Change
//! one side, change the other.

/// Tensor-core kernel: block tile rows (M).
pub const BM: usize = 128;
/// Block tile columns (N).
pub const BN: usize = 128;
/// K per pipeline stage.
pub const BK: usize = 32;
/// Shared-memory ring depth of the cp.async pipeline.
pub const STAGES: usize = 3;
/// Threads per block (8 warps).
pub const THREADS: usize = 256;
/// Warps along N (2 along M).
pub const WARPS_N: usize = 4;
/// Warp tile rows.
pub const WM: usize = 64;
/// Warp tile columns.
pub const WN: usize = 32;
/// mma tiles (16 rows) per warp along M.
pub const MI: usize = WM / 16;
/// mma tiles (8 columns) per warp along N.
pub const NI: usize = WN / 8;
/// M-tiles per group of the block order.
pub const GROUP_M: usize = 8;
/// Elements of one operand tile in shared memory (BM x BK = BN x BK).
pub const TILE: usize = BM * BK;
/// Static shared memory of the tensor-core kernel, bytes (STAGES x 2 operands x TILE bf16).
pub const SHARED_BYTES: usize = STAGES * 2 * TILE * 2;

/// The fp32 (CUDA-core) kernel's block tile (square) and K step.
pub const SIMT_BM: usize = 128;
/// K per step of the fp32 kernel.
pub const SIMT_BK: usize = 8;

/// Offset (elements) of 16-byte `chunk` of `row` in a K-major tile: 128 rows (M or N) of 32 k,
/// 4 chunks per row, chunk XOR `(row >> 1) & 3`.
pub fn kmajor_offset(row: usize, chunk: usize) -> usize {
    row * BK + ((chunk ^ ((row >> 1) & 3)) << 3)
}

/// Offset (elements) of `chunk` of `row` in an O-major tile: 32 rows (k) of 128 (M or N),
/// 16 chunks per row, chunk XOR `row & 7`.
pub fn omajor_offset(row: usize, chunk: usize) -> usize {
    row * BM + ((chunk ^ (row & 7)) << 3)
}

/// The (M-tile, N-tile) of linear block `pid`: GROUP_M consecutive M-tiles share each N-tile.
pub fn tile_coords(pid: usize, tiles_m: usize, tiles_n: usize) -> (usize, usize) {
    let per_group = GROUP_M * tiles_n;
    let group = pid / per_group;
    let first_m = group * GROUP_M;
    let rows = (tiles_m - first_m).min(GROUP_M);
    let in_group = pid - group * per_group;
    (first_m + in_group % rows, in_group / rows)
}

/// Load slots per thread per operand tile (512 chunks of 8 elements over 256 threads).
pub const LOADS_PER_THREAD: usize = TILE / 8 / THREADS;

/// Slot `idx = thread + j * THREADS` of `load_tile`: (shared offset of the chunk, its first
/// element's o and k within the tile). K-major: the chunk runs along k; O-major: along o.
pub fn load_slot(kmajor: bool, idx: usize) -> (usize, usize, usize) {
    if kmajor {
        let (row, chunk) = (idx >> 2, idx & 3);
        (kmajor_offset(row, chunk), row, chunk * 8)
    } else {
        let (row, chunk) = (idx >> 4, idx & 15);
        (omajor_offset(row, chunk), chunk * 8, row)
    }
}

/// Which operand a fragment is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    /// A: one 16x16 tile per ldmatrix.x4 (a0..a3).
    A,
    /// B: two 16x8 tiles per ldmatrix.x4 (b0, b1 of each).
    B,
}

/// (o_off, k_off) of the 8x8 matrix that `lane` addresses in an ldmatrix.x4 for `operand`.
pub fn frag_offsets(operand: Operand, lane: usize) -> (usize, usize) {
    let mat = lane >> 3;
    match operand {
        Operand::A => ((mat & 1) * 8, (mat >> 1) * 8),
        Operand::B => ((mat >> 1) * 8, (mat & 1) * 8),
    }
}

/// The shared offset `lane` hands to ldmatrix for the fragment at (o0, kk) of a tile, and
/// whether the load is `.trans` (O-major tiles).
pub fn ldmatrix_lane_offset(
    kmajor: bool,
    operand: Operand,
    o0: usize,
    kk: usize,
    lane: usize,
) -> (usize, bool) {
    let (o_off, k_off) = frag_offsets(operand, lane);
    let lane_row = lane & 7;
    if kmajor {
        (
            kmajor_offset(o0 + o_off + lane_row, (kk + k_off) >> 3),
            false,
        )
    } else {
        (
            omajor_offset(kk + k_off + lane_row, (o0 + o_off) >> 3),
            true,
        )
    }
}

/// (row, column) of warp `warp`'s tile within the block tile.
pub fn warp_origin(warp: usize) -> (usize, usize) {
    ((warp / WARPS_N) * WM, (warp % WARPS_N) * WN)
}

/// Block-tile (row, column) of accumulator register `e` (0..4) of mma tile (i, j) in `lane` of
/// `warp`: row g + (e >> 1) * 8, column 2 t + (e & 1), g = lane >> 2, t = lane & 3.
pub fn acc_coords(warp: usize, lane: usize, i: usize, j: usize, e: usize) -> (usize, usize) {
    let (wm, wn) = warp_origin(warp);
    let (g, t) = (lane >> 2, lane & 3);
    (wm + i * 16 + g + (e >> 1) * 8, wn + j * 8 + 2 * t + (e & 1))
}

/// The fp32 kernel's load slot `idx` (0..1024) of an operand tile: (o, k) within the tile;
/// `o_contiguous` when the stored rows run over o (transposed A, plain B).
pub fn simt_load_slot(o_contiguous: bool, idx: usize) -> (usize, usize) {
    if o_contiguous {
        (idx & (SIMT_BM - 1), idx >> 7)
    } else {
        (idx >> 3, idx & 7)
    }
}

/// The fp32 kernel's output (row, column) within the block tile for thread `thread`, register
/// (i, j): rows ty + 16 i, columns tx + 16 j.
pub fn simt_coords(thread: usize, i: usize, j: usize) -> (usize, usize) {
    let (tx, ty) = (thread & 15, thread >> 4);
    (ty + 16 * i, tx + 16 * j)
}
