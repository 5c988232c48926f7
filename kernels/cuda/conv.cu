// conv2d on the GPU as implicit GEMM: forward, backward-input, backward-weight and the bias
// gradient (kernels/conv.h gives the contracts). NCHW, contiguous; float and double.
//
//   x [N, C, H, W], w [K, C/g, R, S], y [N, K, P, Q]; per group g, Cg = C/g, Kg = K/g:
//   forward          y[(n,p,q), k]   = sum_{(c,r,s)} x[n, c, h, w] w[k, c, r, s]
//                    with h = p*sh - ph + r*dh, w = q*sw - pw + s*dw (0 outside x)
//                    GEMM  M = N*P*Q  x  Ncol = Kg,  reduction L = Cg*R*S
//   backward-input   dx[(n,h,w), c]  = sum_{(k,r,s)} dy[n, k, p, q] w[k, c, r, s]
//                    with p = (h + ph - r*dh) / sh, q = (w + pw - s*dw) / sw: a term exists
//                    only where both divisions are exact and land inside dy
//                    GEMM  M = N*H*W  x  Ncol = Cg,  reduction L = Kg*R*S
//   backward-weight  dw[(c,r,s), k] += sum_{(n,p,q)} x[n, c, h, w] dy[n, k, p, q]
//                    with h, w as in forward
//                    GEMM  M = Cg*R*S  x  Ncol = Kg,  reduction L = N*P*Q
//   bias gradient    db[k] += sum_{n,p,q} dy[n, k, p, q]
//
// No im2col buffer exists in global memory: the "A" operand of each GEMM is gathered from x or
// dy while a block loads its shared-memory tile (taps in the padding read 0). Backward-input
// is the gather form of the transposed problem: each dx element is one GEMM output, written
// once, so it needs neither atomics nor a zero-fill. conv_transpose2d reuses these three
// (engine/ops/conv.cpp); P and Q may be below what finalize() gives, which the bounds checks on
// p < P and q < Q handle.
//
// Kernels (version 1, the only one so far):
//   conv_gemm_kernel   one block of 256 threads per BM x BN output tile, per group and per
//                      reduction split (blockIdx.z = split * groups + g); thread t owns the
//                      TM x TN outputs at rows t%16 + 16*ii, columns t/16 + 16*jj (TM = BM/16,
//                      TN = BN/16). BM = 128; BN = 16 or 32 when the GEMM has at
//                      most that many columns, else 64. Tiles of depth 16 go through shared memory;
//                      the next tile is fetched into registers while the current one is multiplied.
//   split_sum_kernel   one thread per output element (grid-stride): sums the per-split
//                      partial results in split order, then writes (=, + bias) or adds (+=).
//   bias_grad_kernel   one block per output channel k: each thread sums a fixed strided
//                      subset of dy[:, k], then a fixed-order block reduction; db[k] += total.
// Reduction splits: when the output tiles alone cannot fill the GPU (small outputs, long
// reductions: backward-weight above all), the reduction is split over blockIdx.z. The splits
// are combined by atomicAdd into dw (backward-weight, default mode) or, for forward and
// backward-input and whenever nabla::deterministic() is on, through a partial buffer summed by
// split_sum_kernel in a fixed order: same device, same inputs, same bits.
//
// Index arithmetic that addresses tensors is 64-bit; only tile-local indices are int.
#include <algorithm>
#include <climits>

#include <nabla/device.h>

#include "kernels/conv.h"
#include "kernels/cuda/common.cuh"

namespace nabla::cuda {

namespace {

constexpr int kGemmThreads = 256;  // 16 x 16 threads per GEMM block
constexpr int kBL = 16;            // reduction depth of one shared-memory tile
// A split gets at least this many tiles of depth kBL: shorter ones spend more time loading
// and writing partials than multiplying.
constexpr int64_t kMinTilesPerSplit = 4;
// Upper bound on the partial buffer of a split reduction (bytes).
constexpr int64_t kMaxPartialBytes = int64_t(256) << 20;

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// The conv sizes as the kernels read them, with the products they use precomputed.
struct Geometry {
  int64_t N, C, H, W, K, R, S, P, Q;
  int64_t sh, sw, ph, pw, dh, dw;
  int64_t Cg, Kg, RS, PQ, HW;
};

Geometry geometry(const Conv2dParams& p) {
  Geometry d;
  d.N = p.N, d.C = p.C, d.H = p.H, d.W = p.W, d.K = p.K, d.R = p.R, d.S = p.S;
  d.P = p.P, d.Q = p.Q;
  d.sh = p.stride_h, d.sw = p.stride_w, d.ph = p.pad_h, d.pw = p.pad_w;
  d.dh = p.dil_h, d.dw = p.dil_w;
  d.Cg = p.C / p.groups, d.Kg = p.K / p.groups;
  d.RS = p.R * p.S, d.PQ = p.P * p.Q, d.HW = p.H * p.W;
  return d;
}

// Each GEMM below is C[i, j] = sum_l A(i, l) B(l, j) for one group g, described by:
//   a_row(g, i) -> ARow   what a thread needs about row i of A, computed once per kernel
//   a_l(l)      -> ALIdx  the part of A's address that depends on l, once per l
//   a(row, li)  -> T      A(i, l), 0 for taps in the padding
//   b_col, b_l, b         the same for column j of B
//   out_row(i) + out_col(g, j)   offset of C[i, j] in the output tensor
// Rows and columns passed in are always valid (the kernel clamps out-of-range ones to 0).

// forward: A = im2col(x) [(n,p,q), (c,r,s)], B = w_g^T [(c,r,s), k], C = y.
template <typename T>
struct ForwardGemm {
  Geometry d;
  const T* x;
  const T* w;

  struct ARow {
    const T* x;      // x[n, g*Cg]
    int64_t h0, w0;  // top-left input pixel of the window of (p, q)
  };
  struct ALIdx {
    int64_t c, rh, sw;  // channel offset c*H*W and tap offsets r*dh, s*dw
  };
  struct BCol {
    const T* w;  // w[g*Kg + k]
  };

  __device__ __forceinline__ ARow a_row(int64_t g, int64_t i) const {
    const int64_t n = i / d.PQ, pq = i - n * d.PQ, p = pq / d.Q, q = pq - p * d.Q;
    return {x + (n * d.C + g * d.Cg) * d.HW, p * d.sh - d.ph, q * d.sw - d.pw};
  }
  __device__ __forceinline__ ALIdx a_l(int64_t l) const {
    const int64_t c = l / d.RS, rs = l - c * d.RS, r = rs / d.S, s = rs - r * d.S;
    return {c * d.HW, r * d.dh, s * d.dw};
  }
  __device__ __forceinline__ T a(const ARow& row, const ALIdx& li) const {
    const int64_t h = row.h0 + li.rh, v = row.w0 + li.sw;
    return h >= 0 && h < d.H && v >= 0 && v < d.W ? row.x[li.c + h * d.W + v] : T(0);
  }
  __device__ __forceinline__ BCol b_col(int64_t g, int64_t j) const {
    return {w + (g * d.Kg + j) * d.Cg * d.RS};
  }
  __device__ __forceinline__ int64_t b_l(int64_t l) const { return l; }
  __device__ __forceinline__ T b(const BCol& col, int64_t off) const { return col.w[off]; }
  __device__ __forceinline__ int64_t out_row(int64_t i) const {
    const int64_t n = i / d.PQ;
    return n * d.K * d.PQ + (i - n * d.PQ);
  }
  __device__ __forceinline__ int64_t out_col(int64_t g, int64_t j) const {
    return (g * d.Kg + j) * d.PQ;
  }
};

// backward-input: A = dy gathered [(n,h,w), (k,r,s)], B = w_g as [(k,r,s), c], C = dx.
template <typename T>
struct BackwardInputGemm {
  Geometry d;
  const T* dy;
  const T* w;

  struct ARow {
    const T* dy;     // dy[n, g*Kg]
    int64_t hp, wp;  // h + pad_h, w + pad_w
  };
  struct ALIdx {
    int64_t k, rh, sw;  // channel offset k*P*Q and tap offsets r*dh, s*dw
  };
  struct BCol {
    const T* w;  // w[g*Kg, c]
  };

  __device__ __forceinline__ ARow a_row(int64_t g, int64_t i) const {
    const int64_t n = i / d.HW, hw = i - n * d.HW, h = hw / d.W, v = hw - h * d.W;
    return {dy + (n * d.K + g * d.Kg) * d.PQ, h + d.ph, v + d.pw};
  }
  __device__ __forceinline__ ALIdx a_l(int64_t l) const {
    const int64_t k = l / d.RS, rs = l - k * d.RS, r = rs / d.S, s = rs - r * d.S;
    return {k * d.PQ, r * d.dh, s * d.dw};
  }
  // The output (p, q) whose window puts tap (r, s) on input (h, w): p*sh = h + ph - r*dh.
  // Negative numerators are rejected before dividing (C++ division truncates toward zero).
  __device__ __forceinline__ T a(const ARow& row, const ALIdx& li) const {
    const int64_t th = row.hp - li.rh, tw = row.wp - li.sw;
    if (th < 0 || tw < 0) return T(0);
    const int64_t p = th / d.sh, q = tw / d.sw;
    if (p * d.sh != th || q * d.sw != tw || p >= d.P || q >= d.Q) return T(0);
    return row.dy[li.k + p * d.Q + q];
  }
  __device__ __forceinline__ BCol b_col(int64_t g, int64_t j) const {
    return {w + (g * d.Kg * d.Cg + j) * d.RS};
  }
  __device__ __forceinline__ int64_t b_l(int64_t l) const {
    const int64_t k = l / d.RS;
    return k * d.Cg * d.RS + (l - k * d.RS);
  }
  __device__ __forceinline__ T b(const BCol& col, int64_t off) const { return col.w[off]; }
  __device__ __forceinline__ int64_t out_row(int64_t i) const {
    const int64_t n = i / d.HW;
    return n * d.C * d.HW + (i - n * d.HW);
  }
  __device__ __forceinline__ int64_t out_col(int64_t g, int64_t j) const {
    return (g * d.Cg + j) * d.HW;
  }
};

// backward-weight: A = im2col(x)^T [(c,r,s), (n,p,q)], B = dy as [(n,p,q), k], C = dw^T
// (row i = (c,r,s) is contiguous in dw, so the stores of a warp coalesce).
template <typename T>
struct BackwardWeightGemm {
  Geometry d;
  const T* x;
  const T* dy;

  struct ARow {
    const T* x;      // x[0, g*Cg + c]
    int64_t rh, sw;  // r*dh - ph, s*dw - pw
  };
  struct ALIdx {
    int64_t n, h0, w0;  // sample offset n*C*H*W, p*sh, q*sw
  };
  struct BCol {
    const T* dy;  // dy[0, g*Kg + k]
  };

  __device__ __forceinline__ ARow a_row(int64_t g, int64_t i) const {
    const int64_t c = i / d.RS, rs = i - c * d.RS, r = rs / d.S, s = rs - r * d.S;
    return {x + (g * d.Cg + c) * d.HW, r * d.dh - d.ph, s * d.dw - d.pw};
  }
  __device__ __forceinline__ ALIdx a_l(int64_t l) const {
    const int64_t n = l / d.PQ, pq = l - n * d.PQ, p = pq / d.Q, q = pq - p * d.Q;
    return {n * d.C * d.HW, p * d.sh, q * d.sw};
  }
  __device__ __forceinline__ T a(const ARow& row, const ALIdx& li) const {
    const int64_t h = li.h0 + row.rh, v = li.w0 + row.sw;
    return h >= 0 && h < d.H && v >= 0 && v < d.W ? row.x[li.n + h * d.W + v] : T(0);
  }
  __device__ __forceinline__ BCol b_col(int64_t g, int64_t j) const {
    return {dy + (g * d.Kg + j) * d.PQ};
  }
  __device__ __forceinline__ int64_t b_l(int64_t l) const {
    const int64_t n = l / d.PQ;
    return n * d.K * d.PQ + (l - n * d.PQ);
  }
  __device__ __forceinline__ T b(const BCol& col, int64_t off) const { return col.dy[off]; }
  __device__ __forceinline__ int64_t out_row(int64_t i) const { return i; }
  __device__ __forceinline__ int64_t out_col(int64_t g, int64_t j) const {
    return (g * d.Kg + j) * d.Cg * d.RS;
  }
};

// What the GEMM does with its results.
enum class Store : int {
  kAssign,      // out = acc + bias (bias may be null)
  kAccumulate,  // out += acc: only one block per output element (no split)
  kAtomic,      // atomicAdd(out, acc): splits of backward-weight, non-deterministic mode
  kPartial,     // part[split][g][j][i] = acc, summed afterwards by split_sum_kernel
};

template <typename T>
struct Epilogue {
  T* out;
  const T* bias;  // [groups * Ncol], indexed g * Ncol + j
  T* part;
  Store mode;
};

// kARowFast: consecutive threads load consecutive rows of A (rows adjacent in memory:
// forward and backward-input, whose rows are output pixels); otherwise they load consecutive
// reduction indices (backward-weight, whose reduction runs over pixels). B is always loaded
// along the reduction index, which is where w and dy are contiguous.
template <typename T, int BM, int BN, bool kARowFast, typename Gemm>
__global__ void __launch_bounds__(kGemmThreads)
    conv_gemm_kernel(Gemm gm, int64_t M, int64_t Ncol, int64_t L, int64_t l_chunk, int64_t groups,
                     Epilogue<T> ep) {
  constexpr int TM = BM / 16, TN = BN / 16;
  constexpr int kALoads = BM * kBL / kGemmThreads, kBLoads = BN * kBL / kGemmThreads;
  static_assert(BM % 16 == 0 && BN % 16 == 0 && kGemmThreads % BM == 0, "tile shape");
  constexpr int kARows = kARowFast ? 1 : kALoads;
  // One padding column: loads along the reduction index store a column of the tile, 16
  // threads at a stride of BM (or BN) words, which without the pad would hit one bank.
  __shared__ T As[kBL][BM + 1];
  __shared__ T Bs[kBL][BN + 1];

  const int t = threadIdx.x, tm = t % 16, tn = t / 16;
  const int64_t g = blockIdx.z % groups, split = blockIdx.z / groups;
  const int64_t i0 = int64_t(blockIdx.x) * BM, j0 = int64_t(blockIdx.y) * BN;
  const int64_t l_begin = split * l_chunk;
  const int64_t l_end = L < l_begin + l_chunk ? L : l_begin + l_chunk;

  // Rows of A and columns of B this thread loads: fixed for the whole reduction.
  typename Gemm::ARow arow[kARows];
  bool arow_ok[kARows];
#pragma unroll
  for (int v = 0; v < kARows; ++v) {
    const int64_t i = i0 + (kARowFast ? t % BM : t / kBL + 16 * v);
    arow_ok[v] = i < M;
    arow[v] = gm.a_row(g, arow_ok[v] ? i : 0);
  }
  typename Gemm::BCol bcol[kBLoads];
  bool bcol_ok[kBLoads];
#pragma unroll
  for (int v = 0; v < kBLoads; ++v) {
    const int64_t j = j0 + t / kBL + 16 * v;
    bcol_ok[v] = j < Ncol;
    bcol[v] = gm.b_col(g, bcol_ok[v] ? j : 0);
  }

  // Global -> registers for the tile starting at l0 (zeros past l_end and past M / Ncol).
  T a_reg[kALoads], b_reg[kBLoads];
  auto load = [&](int64_t l0) {
    if constexpr (kARowFast) {
#pragma unroll
      for (int u = 0; u < kALoads; ++u) {
        const int64_t l = l0 + t / BM + (kGemmThreads / BM) * u;
        a_reg[u] = arow_ok[0] && l < l_end ? gm.a(arow[0], gm.a_l(l)) : T(0);
      }
    } else {
      const int64_t l = l0 + t % kBL;
      const auto li = gm.a_l(l);
#pragma unroll
      for (int u = 0; u < kALoads; ++u)
        a_reg[u] = arow_ok[u] && l < l_end ? gm.a(arow[u], li) : T(0);
    }
    const int64_t l = l0 + t % kBL;
    const int64_t off = gm.b_l(l);
#pragma unroll
    for (int u = 0; u < kBLoads; ++u)
      b_reg[u] = bcol_ok[u] && l < l_end ? gm.b(bcol[u], off) : T(0);
  };
  // Registers -> shared, in the [l][i] / [l][j] layout the multiply reads.
  auto store = [&] {
    if constexpr (kARowFast) {
#pragma unroll
      for (int u = 0; u < kALoads; ++u) As[t / BM + (kGemmThreads / BM) * u][t % BM] = a_reg[u];
    } else {
#pragma unroll
      for (int u = 0; u < kALoads; ++u) As[t % kBL][t / kBL + 16 * u] = a_reg[u];
    }
#pragma unroll
    for (int u = 0; u < kBLoads; ++u) Bs[t % kBL][t / kBL + 16 * u] = b_reg[u];
  };

  T acc[TM][TN];
#pragma unroll
  for (int ii = 0; ii < TM; ++ii)
#pragma unroll
    for (int jj = 0; jj < TN; ++jj) acc[ii][jj] = T(0);

  // l_begin and l_end are the same for the whole block, so every thread takes the same trip
  // count and reaches both barriers.
  load(l_begin);
  for (int64_t l0 = l_begin; l0 < l_end; l0 += kBL) {
    store();
    __syncthreads();
    // The next tile's global loads are in flight while this one is multiplied.
    if (l0 + kBL < l_end) load(l0 + kBL);
#pragma unroll
    for (int kk = 0; kk < kBL; ++kk) {
      T a[TM], b[TN];
#pragma unroll
      for (int ii = 0; ii < TM; ++ii) a[ii] = As[kk][tm + 16 * ii];
#pragma unroll
      for (int jj = 0; jj < TN; ++jj) b[jj] = Bs[kk][tn + 16 * jj];
#pragma unroll
      for (int ii = 0; ii < TM; ++ii)
#pragma unroll
        for (int jj = 0; jj < TN; ++jj) acc[ii][jj] += a[ii] * b[jj];
    }
    // Nobody may overwrite the tiles (next store()) while a slower thread still reads them.
    __syncthreads();
  }

  int64_t col_off[TN];
  bool col_ok[TN];
#pragma unroll
  for (int jj = 0; jj < TN; ++jj) {
    const int64_t j = j0 + tn + 16 * jj;
    col_ok[jj] = j < Ncol;
    col_off[jj] = col_ok[jj] ? gm.out_col(g, j) : 0;
  }
#pragma unroll
  for (int ii = 0; ii < TM; ++ii) {
    const int64_t i = i0 + tm + 16 * ii;
    if (i >= M) continue;
    if (ep.mode == Store::kPartial) {
      // Layout [split][g][j][i]: consecutive threads (consecutive i) write consecutive words.
      T* part = ep.part + (split * groups + g) * Ncol * M + i;
#pragma unroll
      for (int jj = 0; jj < TN; ++jj)
        if (col_ok[jj]) part[(j0 + tn + 16 * jj) * M] = acc[ii][jj];
      continue;
    }
    const int64_t row_off = gm.out_row(i);
#pragma unroll
    for (int jj = 0; jj < TN; ++jj) {
      if (!col_ok[jj]) continue;
      T* o = ep.out + row_off + col_off[jj];
      if (ep.mode == Store::kAssign)
        *o = acc[ii][jj] + (ep.bias ? ep.bias[g * Ncol + j0 + tn + 16 * jj] : T(0));
      else if (ep.mode == Store::kAccumulate)
        *o += acc[ii][jj];
      else
        atomicAdd(o, acc[ii][jj]);
    }
  }
}

// requires: ep.part holds splits * groups * Ncol * M partial results of conv_gemm_kernel.
// ensures:  every output element = (kAssign, + bias) or += (kAccumulate) the sum of its
//           partials, added in split order: the result does not depend on scheduling.
template <typename T, typename Gemm>
__global__ void split_sum_kernel(Gemm gm, int64_t M, int64_t Ncol, int64_t groups, int64_t splits,
                                 Epilogue<T> ep) {
  const int64_t total = groups * Ncol * M;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    T acc = T(0);
    for (int64_t s = 0; s < splits; ++s) acc += ep.part[s * total + e];
    const int64_t i = e % M, gj = e / M, j = gj % Ncol, g = gj / Ncol;
    T* o = ep.out + gm.out_row(i) + gm.out_col(g, j);
    if (ep.mode == Store::kAccumulate)
      *o += acc;
    else
      *o = acc + (ep.bias ? ep.bias[gj] : T(0));
  }
}

// One block per channel k. Each thread's subset and the block_sum order are fixed, so the
// result is deterministic; only thread 0 touches db[k], so no atomics.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    bias_grad_kernel(const T* __restrict__ dy, T* __restrict__ db, int64_t N, int64_t K,
                     int64_t PQ) {
  __shared__ T shared[32];
  const int64_t k = blockIdx.x;
  T acc = T(0);
  for (int64_t n = 0; n < N; ++n) {
    const T* d = dy + (n * K + k) * PQ;
    for (int64_t i = threadIdx.x; i < PQ; i += blockDim.x) acc += d[i];
  }
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) db[k] += acc;
}

// How many pieces to cut the reduction into: enough blocks for about two per SM, but each
// piece at least kMinTilesPerSplit tiles deep, grid.z within its limit, and (when the pieces
// go through a partial buffer) that buffer within kMaxPartialBytes.
int64_t plan_splits(int64_t tiles, int64_t l_tiles, int64_t groups, int64_t out_elems,
                    size_t elem_size, bool partials) {
  const int64_t target = 2 * int64_t(sm_count());
  if (tiles >= target) return 1;
  int64_t s = ceil_div(target, tiles);
  s = std::min(s, l_tiles / kMinTilesPerSplit);
  s = std::min(s, 65535 / groups);
  if (partials) s = std::min(s, kMaxPartialBytes / (out_elems * int64_t(elem_size)));
  return std::max<int64_t>(s, 1);
}

// requires: M, Ncol, L >= 1; ep.mode kAssign or kAccumulate; atomic_ok only for kAccumulate.
// ensures:  the GEMM described by gm stored into ep.out as ep.mode says, queued on the
//           current stream.
template <int BM, int BN, bool kARowFast, typename T, typename Gemm>
void run_gemm(const char* op, const Gemm& gm, int64_t M, int64_t Ncol, int64_t L, int64_t groups,
              Epilogue<T> ep, bool atomic_ok) {
  const int64_t row_tiles = ceil_div(M, BM), col_tiles = ceil_div(Ncol, BN);
  NABLA_CHECK(row_tiles <= INT_MAX && col_tiles <= 65535 && groups <= 65535, op, ": GEMM of ", M,
              " x ", Ncol, " in ", groups,
              " groups exceeds the CUDA grid (at most 65535 column tiles of ", BN,
              " and 65535 groups)");
  const int64_t l_tiles = ceil_div(L, kBL), out_elems = groups * Ncol * M;
  const bool atomic = atomic_ok && !deterministic();
  int64_t splits =
      plan_splits(row_tiles * col_tiles * groups, l_tiles, groups, out_elems, sizeof(T), !atomic);
  // Whole tiles per split; recount so that no split is empty.
  const int64_t chunk_tiles = ceil_div(l_tiles, splits);
  splits = ceil_div(l_tiles, chunk_tiles);
  const int64_t l_chunk = chunk_tiles * kBL;
  const dim3 grid(unsigned(row_tiles), unsigned(col_tiles), unsigned(splits * groups));
  cudaStream_t stream = current_stream();

  if (splits == 1 || atomic) {
    Epilogue<T> e = ep;
    if (splits > 1) e.mode = Store::kAtomic;
    conv_gemm_kernel<T, BM, BN, kARowFast>
        <<<grid, kGemmThreads, 0, stream>>>(gm, M, Ncol, L, l_chunk, groups, e);
    CUDA_CHECK_LAUNCH();
    return;
  }
  Scratch part(size_t(splits * out_elems) * sizeof(T));
  Epilogue<T> e = ep;
  e.mode = Store::kPartial;
  e.part = part.as<T>();
  conv_gemm_kernel<T, BM, BN, kARowFast>
      <<<grid, kGemmThreads, 0, stream>>>(gm, M, Ncol, L, l_chunk, groups, e);
  CUDA_CHECK_LAUNCH();
  ep.part = part.as<T>();
  split_sum_kernel<T>
      <<<blocks_for(out_elems), kThreads, 0, stream>>>(gm, M, Ncol, groups, splits, ep);
  CUDA_CHECK_LAUNCH();
}

// Picks the tile width from the number of GEMM columns (output channels per group, often 1
// for depthwise and 32 for small layers), so that narrow GEMMs do not compute mostly padding.
template <bool kARowFast, typename T, typename Gemm>
void run(const char* op, const Gemm& gm, int64_t M, int64_t Ncol, int64_t L, int64_t groups,
         Epilogue<T> ep, bool atomic_ok) {
  if (Ncol <= 16)
    run_gemm<128, 16, kARowFast>(op, gm, M, Ncol, L, groups, ep, atomic_ok);
  else if (Ncol <= 32)
    run_gemm<128, 32, kARowFast>(op, gm, M, Ncol, L, groups, ep, atomic_ok);
  else
    run_gemm<128, 64, kARowFast>(op, gm, M, Ncol, L, groups, ep, atomic_ok);
}

}  // namespace

template <typename T>
void conv2d_forward(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  const Geometry d = geometry(p);
  const int64_t M = p.N * d.PQ;
  if (M == 0) return;
  run<true>("cuda conv2d_forward", ForwardGemm<T>{d, x, w}, M, d.Kg, d.Cg * d.RS, p.groups,
            Epilogue<T>{y, bias, nullptr, Store::kAssign}, false);
}

template <typename T>
void conv2d_backward_input(const Conv2dParams& p, const T* dy, const T* w, T* dx) {
  const Geometry d = geometry(p);
  const int64_t M = p.N * d.HW;
  if (M == 0) return;
  run<true>("cuda conv2d_backward_input", BackwardInputGemm<T>{d, dy, w}, M, d.Cg, d.Kg * d.RS,
            p.groups, Epilogue<T>{dx, nullptr, nullptr, Store::kAssign}, false);
}

template <typename T>
void conv2d_backward_weight(const Conv2dParams& p, const T* x, const T* dy, T* dw, T* db) {
  const Geometry d = geometry(p);
  const int64_t L = p.N * d.PQ;
  if (L == 0) return;  // nothing to add
  run<false>("cuda conv2d_backward_weight", BackwardWeightGemm<T>{d, x, dy}, d.Cg * d.RS, d.Kg, L,
             p.groups, Epilogue<T>{dw, nullptr, nullptr, Store::kAccumulate}, true);
  if (db) {
    NABLA_CHECK(p.K <= INT_MAX, "cuda conv2d_backward_weight: ", p.K, " channels");
    bias_grad_kernel<T><<<unsigned(p.K), kThreads, 0, current_stream()>>>(dy, db, p.N, p.K, d.PQ);
    CUDA_CHECK_LAUNCH();
  }
}

NABLA_CONV_INSTANTIATE(float)
NABLA_CONV_INSTANTIATE(double)

}  // namespace nabla::cuda
