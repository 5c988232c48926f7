// GEMM family on the GPU: C = alpha * op(A) op(B) + beta * C, row-major, float and double.
// kernels/gemm.h gives the contract: transposes, leading dimensions, beta == 0 never reads C,
// alpha == 0 or K == 0 never reads A or B, batched with stride 0 broadcasting an operand.
//
//   op(A) [M, K]  (A [M, K], or A [K, M] when trans_a)
//   op(B) [K, N]  (B [K, N], or B [N, K] when trans_b)
//   C     [M, N]
//
// Kernels and versions. The float kernel is the warptiling level ("kernel 10") of the SGEMM
// optimization ladder (naive -> coalesced -> shared-memory tiles -> 1-D and 2-D register
// blocking -> vectorized loads -> warptiling), plus what a library needs on top: bounds for
// any M, N, K, the transposed operands, alpha/beta, batches and split-K. It is version 1: no
// other version has been measured yet; experiments go to bench/variants/gemm_kernel<N>.cu.
//
//   sgemm_warptile_kernel  float. Shared-memory tiles BM x BK of op(A) and BK x BN of op(B);
//                          each warp owns a WM x WN warp tile of C and walks it in
//                          WMITER x WNITER sub-tiles, each lane holding TM x TN of every
//                          sub-tile in registers (2-D register blocking). Global loads are
//                          float4 where the operand's pointer, leading dimension and batch
//                          stride are 16-byte multiples and all four elements lie inside the
//                          matrix, else element by element with bounds checks (zero outside).
//                          Both tiles sit in shared memory k-major (As[k][m], Bs[k][n]) for
//                          every transpose pair: an operand whose rows run along k (A, or B^T)
//                          is transposed while it is stored, the other is copied as float4.
//                          Configurations: 128x128 block tiles (4 warps of 64x64, 8x4 per lane
//                          and sub-tile) when M and N exceed 64 and there is at least one such
//                          tile per SM, else 64x64 (4 warps of 32x32, 4x4 per lane and
//                          sub-tile). Split-K: a single small C (64x64 tiles for at most half
//                          the SMs) with K >= 512 is cut into up to 16 K chunks of at least
//                          256; each chunk's block writes its partial product into a workspace
//                          and splitk_reduce_kernel adds the partials in a fixed order. There
//                          are no atomics anywhere, so results are deterministic.
//   gemm_tiled_kernel      double (gradient checks): 16x16 shared-memory tiles, one output per
//                          thread; the loads are mapped so that consecutive threads read
//                          consecutive addresses for every transpose pair.
//   splitk_reduce_kernel   C = sum_s partial_s (+ beta * C), s in increasing order.
//   gemm_scale_kernel      alpha == 0 or K == 0: C = beta * C (0 when beta == 0).
//
// Thread mapping:
//   sgemm_warptile_kernel  128 threads (4 warps) per BM x BN tile of C: blockIdx.x the tile
//                          column, blockIdx.y the tile row, blockIdx.z (batch entry, K split);
//                          y and z loop when the grid caps them at 65535
//   gemm_tiled_kernel      16x16 threads per 16x16 tile of C, one thread per element of C;
//                          blockIdx.z over the batch
//   splitk_reduce_kernel, gemm_scale_kernel  one thread per element of C (grid-stride)
//
// Index arithmetic is 64-bit: row * ld can exceed 2^31.
#include <cstdint>

#include <nabla/device.h>

#include "kernels/cuda/common.cuh"
#include "kernels/gemm.h"

namespace nabla::cuda {

namespace {

// Everything a GEMM kernel needs. The z index of the grid is (batch entry b, K split s):
// block (b, s) covers k in [s * k_chunk, min(K, (s + 1) * k_chunk)) and writes
// C + b * stride_c + s * split_stride. Without split-K, splits == 1 and k_chunk == K.
template <typename T>
struct GemmArgs {
  int64_t M, N, K;
  T alpha, beta;
  const T* A;
  int64_t lda, stride_a;
  const T* B;
  int64_t ldb, stride_b;
  T* C;
  int64_t ldc, stride_c;
  int64_t batch, splits, k_chunk, split_stride;
  bool vec_a, vec_b, vec_c;  // float4 access allowed (alignment of pointer, ld and stride)
};

// The warptiling configuration: block tile BM x BN with BK-deep k steps, NT threads in NT / 32
// warps each owning a WM x WN warp tile, walked in WMITER x WNITER sub-tiles of WSUBM x WSUBN,
// of which every lane holds TM x TN.
template <int BM_, int BN_, int BK_, int WM_, int WN_, int WNITER_, int TM_, int TN_, int NT_>
struct WarpTile {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, WM = WM_, WN = WN_, WNITER = WNITER_;
  static constexpr int TM = TM_, TN = TN_, NT = NT_;
  static constexpr int WMITER = (WM * WN) / (32 * TM * TN * WNITER);
  static constexpr int WSUBM = WM / WMITER, WSUBN = WN / WNITER;
  static_assert(NT % 32 == 0 && (BM / WM) * (BN / WN) == NT / 32, "one warp per warp tile");
  static_assert(BM % WM == 0 && BN % WN == 0, "warp tiles cover the block tile");
  static_assert(WMITER >= 1 && WMITER * 32 * TM * TN * WNITER == WM * WN,
                "the lanes' register tiles cover the warp tile");
  static_assert(WM % WMITER == 0 && WN % WNITER == 0, "sub-tiles cover the warp tile");
  static_assert((WSUBM / TM) * (WSUBN / TN) == 32 && WSUBM % TM == 0 && WSUBN % TN == 0,
                "the 32 lanes cover a sub-tile");
  static_assert(TM % 4 == 0 && TN % 4 == 0 && BK % 4 == 0,
                "register tiles and k rows are read as float4");
  // The tile loaders: every thread moves whole float4 groups, the same number per pass.
  static_assert(NT % (BK / 4) == 0 && BM % (NT / (BK / 4)) == 0 && BN % (NT / (BK / 4)) == 0,
                "k-contiguous loads divide evenly");
  static_assert(NT % (BM / 4) == 0 && BK % (NT / (BM / 4)) == 0 && NT % (BN / 4) == 0 &&
                    BK % (NT / (BN / 4)) == 0,
                "row-contiguous loads divide evenly");
};

using LargeTile = WarpTile<128, 128, 16, 64, 64, 4, 8, 4, 128>;
using SmallTile = WarpTile<64, 64, 16, 32, 32, 2, 4, 4, 128>;

constexpr int64_t kMaxGrid = 65535;  // gridDim.y and gridDim.z limits
constexpr int64_t kMaxSplits = 16;
constexpr int64_t kMinSplitK = 256;  // each split gets at least this much K
constexpr int kTile = 16;            // gemm_tiled_kernel

__host__ __device__ constexpr int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Loads the BD x BK tile (d0.., k0..) of one operand into S[k][d] (k-major, BK x BD), zero
// outside d < D and k < kend (kend ends this block's K split, so a split never reads its
// neighbour's k range). kContigK: element (d, k) is X[d * ld + k] (rows along d, contiguous in
// k: A, or B^T); else X[k * ld + d] (contiguous in d: A^T, or B).
template <int BD, int BK, int NT, bool kContigK>
__device__ __forceinline__ void load_tile(const float* __restrict__ X, int64_t ld, int64_t d0,
                                          int64_t D, int64_t k0, int64_t kend, bool vec,
                                          float* __restrict__ S) {
  if constexpr (kContigK) {
    // Each thread reads 4 consecutive k of one row d and scatters them down a column of S.
    constexpr int kVecsPerRow = BK / 4, kRowsPerPass = NT / kVecsPerRow;
    const int r = int(threadIdx.x) / kVecsPerRow, c = (int(threadIdx.x) % kVecsPerRow) * 4;
#pragma unroll
    for (int p = 0; p < BD; p += kRowsPerPass) {
      const int d = p + r;
      const int64_t gd = d0 + d, gk = k0 + c;
      float v[4];
      // gk is a multiple of 4 (k0 is a multiple of BK), so X + gd*ld + gk is 16-byte aligned
      // when X is and ld % 4 == 0: that is what `vec` certifies.
      if (vec && gd < D && gk + 3 < kend) {
        const float4 t = *reinterpret_cast<const float4*>(X + gd * ld + gk);
        v[0] = t.x;
        v[1] = t.y;
        v[2] = t.z;
        v[3] = t.w;
      } else {
#pragma unroll
        for (int i = 0; i < 4; ++i) v[i] = (gd < D && gk + i < kend) ? X[gd * ld + gk + i] : 0.f;
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) S[(c + i) * BD + d] = v[i];
    }
  } else {
    // Each thread reads 4 consecutive d of one k row and stores them as one float4 of S.
    constexpr int kVecsPerRow = BD / 4, kRowsPerPass = NT / kVecsPerRow;
    const int r = int(threadIdx.x) / kVecsPerRow, c = (int(threadIdx.x) % kVecsPerRow) * 4;
#pragma unroll
    for (int p = 0; p < BK; p += kRowsPerPass) {
      const int k = p + r;
      const int64_t gk = k0 + k, gd = d0 + c;
      float4 t;
      if (vec && gk < kend && gd + 3 < D) {  // gd is a multiple of 4: aligned as above
        t = *reinterpret_cast<const float4*>(X + gk * ld + gd);
      } else {
        const bool kin = gk < kend;
        t.x = (kin && gd + 0 < D) ? X[gk * ld + gd + 0] : 0.f;
        t.y = (kin && gd + 1 < D) ? X[gk * ld + gd + 1] : 0.f;
        t.z = (kin && gd + 2 < D) ? X[gk * ld + gd + 2] : 0.f;
        t.w = (kin && gd + 3 < D) ? X[gk * ld + gd + 3] : 0.f;
      }
      *reinterpret_cast<float4*>(S + k * BD + c) = t;  // k * BD + c is a multiple of 4
    }
  }
}

// acc += the products of one BK step, read from the k-major shared tiles. A lane's TM rows
// (and TN columns) of each sub-tile are consecutive in shared memory, so they come in as
// float4; within a warp the 8 lane rows read 8 distinct float4 (each broadcast to the 4 lanes
// of its row): one shared-memory wavefront.
template <class Cfg>
__device__ __forceinline__ void warp_tile_step(
    const float* __restrict__ As, const float* __restrict__ Bs, int wrow, int wcol, int trow,
    int tcol, float (&acc)[Cfg::WMITER * Cfg::TM][Cfg::WNITER * Cfg::TN]) {
  float rm[Cfg::WMITER * Cfg::TM], rn[Cfg::WNITER * Cfg::TN];
#pragma unroll
  for (int k = 0; k < Cfg::BK; ++k) {
#pragma unroll
    for (int wm = 0; wm < Cfg::WMITER; ++wm)
#pragma unroll
      for (int i = 0; i < Cfg::TM; i += 4) {
        const float4 t = *reinterpret_cast<const float4*>(As + k * Cfg::BM + wrow * Cfg::WM +
                                                          wm * Cfg::WSUBM + trow * Cfg::TM + i);
        rm[wm * Cfg::TM + i + 0] = t.x;
        rm[wm * Cfg::TM + i + 1] = t.y;
        rm[wm * Cfg::TM + i + 2] = t.z;
        rm[wm * Cfg::TM + i + 3] = t.w;
      }
#pragma unroll
    for (int wn = 0; wn < Cfg::WNITER; ++wn)
#pragma unroll
      for (int j = 0; j < Cfg::TN; j += 4) {
        const float4 t = *reinterpret_cast<const float4*>(Bs + k * Cfg::BN + wcol * Cfg::WN +
                                                          wn * Cfg::WSUBN + tcol * Cfg::TN + j);
        rn[wn * Cfg::TN + j + 0] = t.x;
        rn[wn * Cfg::TN + j + 1] = t.y;
        rn[wn * Cfg::TN + j + 2] = t.z;
        rn[wn * Cfg::TN + j + 3] = t.w;
      }
#pragma unroll
    for (int i = 0; i < Cfg::WMITER * Cfg::TM; ++i)
#pragma unroll
      for (int j = 0; j < Cfg::WNITER * Cfg::TN; ++j) acc[i][j] += rm[i] * rn[j];
  }
}

// C = alpha * acc + beta * C for this lane's elements inside [M, N]. beta == 0 never reads C
// (it may hold NaN). Columns go out as float4 when C allows it and all four are inside N.
template <class Cfg>
__device__ __forceinline__ void store_tile(
    const float (&acc)[Cfg::WMITER * Cfg::TM][Cfg::WNITER * Cfg::TN], float* __restrict__ C,
    int64_t ldc, int64_t M, int64_t N, int64_t m0, int64_t n0, int wrow, int wcol, int trow,
    int tcol, float alpha, float beta, bool vec_c) {
#pragma unroll
  for (int wm = 0; wm < Cfg::WMITER; ++wm)
#pragma unroll
    for (int i = 0; i < Cfg::TM; ++i) {
      const int64_t m = m0 + wrow * Cfg::WM + wm * Cfg::WSUBM + trow * Cfg::TM + i;
      if (m >= M) continue;
      float* crow = C + m * ldc;
#pragma unroll
      for (int wn = 0; wn < Cfg::WNITER; ++wn)
#pragma unroll
        for (int j = 0; j < Cfg::TN; j += 4) {
          const int64_t n = n0 + wcol * Cfg::WN + wn * Cfg::WSUBN + tcol * Cfg::TN + j;
          const float* a = &acc[wm * Cfg::TM + i][wn * Cfg::TN + j];
          if (vec_c && n + 3 < N) {  // n is a multiple of 4: crow + n is 16-byte aligned
            float4 o;
            if (beta == 0.f) {
              o = make_float4(alpha * a[0], alpha * a[1], alpha * a[2], alpha * a[3]);
            } else {
              o = *reinterpret_cast<const float4*>(crow + n);
              o = make_float4(alpha * a[0] + beta * o.x, alpha * a[1] + beta * o.y,
                              alpha * a[2] + beta * o.z, alpha * a[3] + beta * o.w);
            }
            *reinterpret_cast<float4*>(crow + n) = o;
          } else {
#pragma unroll
            for (int q = 0; q < 4; ++q)
              if (n + q < N)
                crow[n + q] = beta == 0.f ? alpha * a[q] : alpha * a[q] + beta * crow[n + q];
          }
        }
    }
}

// One 128-thread block per BM x BN tile of C; see the file comment.
template <class Cfg, bool kTransA, bool kTransB>
__global__ void __launch_bounds__(Cfg::NT) sgemm_warptile_kernel(const GemmArgs<float> p) {
  __shared__ __align__(16) float As[Cfg::BK * Cfg::BM];
  __shared__ __align__(16) float Bs[Cfg::BK * Cfg::BN];
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const int wrow = warp / (Cfg::BN / Cfg::WN), wcol = warp % (Cfg::BN / Cfg::WN);
  const int trow = lane / (Cfg::WSUBN / Cfg::TN), tcol = lane % (Cfg::WSUBN / Cfg::TN);
  const int64_t tiles_m = ceil_div(p.M, Cfg::BM);
  const int64_t n0 = int64_t(blockIdx.x) * Cfg::BN;
  // The y and z loops are uniform across the block: every thread reaches every __syncthreads.
  for (int64_t z = blockIdx.z; z < p.batch * p.splits; z += gridDim.z) {
    const int64_t b = z / p.splits, s = z % p.splits;
    const float* A = p.A + b * p.stride_a;
    const float* B = p.B + b * p.stride_b;
    float* C = p.C + b * p.stride_c + s * p.split_stride;
    const int64_t kbeg = s * p.k_chunk;
    const int64_t kend = p.K < kbeg + p.k_chunk ? p.K : kbeg + p.k_chunk;
    for (int64_t by = blockIdx.y; by < tiles_m; by += gridDim.y) {
      const int64_t m0 = by * Cfg::BM;
      float acc[Cfg::WMITER * Cfg::TM][Cfg::WNITER * Cfg::TN];
#pragma unroll
      for (int i = 0; i < Cfg::WMITER * Cfg::TM; ++i)
#pragma unroll
        for (int j = 0; j < Cfg::WNITER * Cfg::TN; ++j) acc[i][j] = 0.f;
      for (int64_t k0 = kbeg; k0 < kend; k0 += Cfg::BK) {
        load_tile<Cfg::BM, Cfg::BK, Cfg::NT, !kTransA>(A, p.lda, m0, p.M, k0, kend, p.vec_a, As);
        load_tile<Cfg::BN, Cfg::BK, Cfg::NT, kTransB>(B, p.ldb, n0, p.N, k0, kend, p.vec_b, Bs);
        __syncthreads();  // the tiles are complete before any warp reads them
        warp_tile_step<Cfg>(As, Bs, wrow, wcol, trow, tcol, acc);
        __syncthreads();  // every warp is done reading before the next loads overwrite them
      }
      store_tile<Cfg>(acc, C, p.ldc, p.M, p.N, m0, n0, wrow, wcol, trow, tcol, p.alpha, p.beta,
                      p.vec_c);
    }
  }
}

// One thread per element of a 16x16 tile of C; see the file comment. Shared tiles are k-major
// with one column of padding, so the transposed stores do not all hit one bank.
template <typename T, bool kTransA, bool kTransB>
__global__ void gemm_tiled_kernel(const GemmArgs<T> p) {
  __shared__ T As[kTile][kTile + 1];  // As[k][m]
  __shared__ T Bs[kTile][kTile + 1];  // Bs[k][n]
  const int tx = int(threadIdx.x), ty = int(threadIdx.y);
  const int64_t tiles_m = ceil_div(p.M, kTile);
  const int64_t n0 = int64_t(blockIdx.x) * kTile;
  for (int64_t z = blockIdx.z; z < p.batch * p.splits; z += gridDim.z) {
    const int64_t b = z / p.splits, s = z % p.splits;
    const T* A = p.A + b * p.stride_a;
    const T* B = p.B + b * p.stride_b;
    T* C = p.C + b * p.stride_c + s * p.split_stride;
    const int64_t kbeg = s * p.k_chunk;
    const int64_t kend = p.K < kbeg + p.k_chunk ? p.K : kbeg + p.k_chunk;
    for (int64_t by = blockIdx.y; by < tiles_m; by += gridDim.y) {
      const int64_t m0 = by * kTile;
      T acc = T(0);
      for (int64_t k0 = kbeg; k0 < kend; k0 += kTile) {
        {  // tx runs along the dim the operand is contiguous in: coalesced reads
          const int im = kTransA ? tx : ty, ik = kTransA ? ty : tx;
          const int64_t m = m0 + im, k = k0 + ik;
          As[ik][im] =
              (m < p.M && k < kend) ? (kTransA ? A[k * p.lda + m] : A[m * p.lda + k]) : T(0);
        }
        {
          const int ik = kTransB ? tx : ty, in = kTransB ? ty : tx;
          const int64_t k = k0 + ik, n = n0 + in;
          Bs[ik][in] =
              (k < kend && n < p.N) ? (kTransB ? B[n * p.ldb + k] : B[k * p.ldb + n]) : T(0);
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < kTile; ++k) acc += As[k][ty] * Bs[k][tx];
        __syncthreads();
      }
      const int64_t m = m0 + ty, n = n0 + tx;
      if (m < p.M && n < p.N) {
        T& c = C[m * p.ldc + n];
        c = p.beta == T(0) ? p.alpha * acc : p.alpha * acc + p.beta * c;
      }
    }
  }
}

// The partials of the splits, laid out [splits][M][N], summed in the order s = 0, 1, ...
template <typename T>
__global__ void splitk_reduce_kernel(const T* __restrict__ ws, int64_t splits, int64_t M, int64_t N,
                                     T beta, T* __restrict__ C, int64_t ldc) {
  const int64_t mn = M * N;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < mn;
       i += int64_t(gridDim.x) * blockDim.x) {
    T s = T(0);
    for (int64_t k = 0; k < splits; ++k) s += ws[k * mn + i];
    T& c = C[(i / N) * ldc + i % N];
    c = beta == T(0) ? s : s + beta * c;
  }
}

template <typename T>
__global__ void gemm_scale_kernel(T* C, int64_t ldc, int64_t stride_c, int64_t batch, int64_t M,
                                  int64_t N, T beta) {
  const int64_t mn = M * N, total = batch * mn;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = i / mn, r = i % mn;
    T& c = C[b * stride_c + (r / N) * ldc + r % N];
    c = beta == T(0) ? T(0) : beta * c;  // beta == 0 writes without reading: C may be NaN
  }
}

bool aligned16(const void* ptr) {
  return reinterpret_cast<uintptr_t>(ptr) % 16 == 0;
}

template <class Cfg>
void launch_warptile(const GemmArgs<float>& p, bool ta, bool tb, cudaStream_t stream) {
  const int64_t tiles_n = ceil_div(p.N, Cfg::BN), tiles_m = ceil_div(p.M, Cfg::BM);
  NABLA_CHECK(tiles_n <= INT32_MAX, "cuda gemm: N = ", p.N, " is too large");
  const int64_t zs = p.batch * p.splits;
  const dim3 grid(unsigned(tiles_n), unsigned(tiles_m < kMaxGrid ? tiles_m : kMaxGrid),
                  unsigned(zs < kMaxGrid ? zs : kMaxGrid));
  if (!ta && !tb)
    sgemm_warptile_kernel<Cfg, false, false><<<grid, Cfg::NT, 0, stream>>>(p);
  else if (!ta && tb)
    sgemm_warptile_kernel<Cfg, false, true><<<grid, Cfg::NT, 0, stream>>>(p);
  else if (ta && !tb)
    sgemm_warptile_kernel<Cfg, true, false><<<grid, Cfg::NT, 0, stream>>>(p);
  else
    sgemm_warptile_kernel<Cfg, true, true><<<grid, Cfg::NT, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

void launch(const GemmArgs<float>& p, bool ta, bool tb, cudaStream_t stream) {
  const int64_t sms = sm_count();
  // 128x128 tiles once there is one per SM, unless C is so thin that most of each tile would
  // be bounds-checked zeros.
  if (p.M > SmallTile::BM && p.N > SmallTile::BN &&
      ceil_div(p.M, LargeTile::BM) * ceil_div(p.N, LargeTile::BN) * p.batch >= sms) {
    launch_warptile<LargeTile>(p, ta, tb, stream);
    return;
  }
  // Too few 128x128 tiles to fill the GPU: 64x64 tiles, and for a single small C with a long
  // K, split-K on top (the FashionCNN fc1 forward, 64 x 128 x 3136, is 2 tiles).
  const int64_t blocks = ceil_div(p.M, SmallTile::BM) * ceil_div(p.N, SmallTile::BN) * p.batch;
  int64_t splits = 1;
  if (p.batch == 1 && 2 * blocks <= sms && p.K >= 2 * kMinSplitK) {
    splits = ceil_div(sms, blocks);
    if (splits > p.K / kMinSplitK) splits = p.K / kMinSplitK;
    if (splits > kMaxSplits) splits = kMaxSplits;
  }
  if (splits <= 1) {
    launch_warptile<SmallTile>(p, ta, tb, stream);
    return;
  }
  // k_chunk a multiple of BK keeps every split's k0 a multiple of 4 (float4 alignment);
  // recounting the splits from it leaves none empty.
  const int64_t k_chunk = ceil_div(ceil_div(p.K, splits), SmallTile::BK) * SmallTile::BK;
  splits = ceil_div(p.K, k_chunk);
  const int64_t mn = p.M * p.N;
  Scratch ws(size_t(splits * mn) * sizeof(float));
  float* part = ws.as<float>();
  GemmArgs<float> q = p;
  q.C = part;
  q.ldc = p.N;
  q.stride_c = 0;
  q.beta = 0.f;  // partials are written, never read
  q.splits = splits;
  q.k_chunk = k_chunk;
  q.split_stride = mn;
  q.vec_c = p.N % 4 == 0 && aligned16(part);
  launch_warptile<SmallTile>(q, ta, tb, stream);
  splitk_reduce_kernel<float>
      <<<blocks_for(mn), kThreads, 0, stream>>>(part, splits, p.M, p.N, p.beta, p.C, p.ldc);
  CUDA_CHECK_LAUNCH();
}

void launch(const GemmArgs<double>& p, bool ta, bool tb, cudaStream_t stream) {
  const int64_t tiles_n = ceil_div(p.N, kTile), tiles_m = ceil_div(p.M, kTile);
  NABLA_CHECK(tiles_n <= INT32_MAX, "cuda gemm: N = ", p.N, " is too large");
  const dim3 grid(unsigned(tiles_n), unsigned(tiles_m < kMaxGrid ? tiles_m : kMaxGrid),
                  unsigned(p.batch < kMaxGrid ? p.batch : kMaxGrid));
  const dim3 block(kTile, kTile);
  if (!ta && !tb)
    gemm_tiled_kernel<double, false, false><<<grid, block, 0, stream>>>(p);
  else if (!ta && tb)
    gemm_tiled_kernel<double, false, true><<<grid, block, 0, stream>>>(p);
  else if (ta && !tb)
    gemm_tiled_kernel<double, true, false><<<grid, block, 0, stream>>>(p);
  else
    gemm_tiled_kernel<double, true, true><<<grid, block, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

template <typename T>
void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                  T alpha, const T* A, int64_t lda, int64_t stride_a, const T* B, int64_t ldb,
                  int64_t stride_b, T beta, T* C, int64_t ldc, int64_t stride_c) {
  NABLA_CHECK(batch >= 0 && M >= 0 && N >= 0 && K >= 0, "cuda gemm: negative size (batch ", batch,
              ", M ", M, ", N ", N, ", K ", K, ")");
  if (batch == 0 || M == 0 || N == 0) return;
  NABLA_CHECK(lda >= (trans_a ? M : K) && ldb >= (trans_b ? K : N) && ldc >= N,
              "cuda gemm: leading dimensions lda ", lda, ", ldb ", ldb, ", ldc ", ldc,
              " too small for M ", M, ", N ", N, ", K ", K, (trans_a ? " (A^T" : " (A"),
              (trans_b ? ", B^T)" : ", B)"));
  // Every product lands in one C: in order, as on the CPU (each one reads what the last one
  // wrote when beta != 0, so they cannot run side by side).
  if (batch > 1 && stride_c == 0) {
    for (int64_t b = 0; b < batch; ++b)
      gemm_batched<T>(trans_a, trans_b, 1, M, N, K, alpha, A + b * stride_a, lda, 0,
                      B + b * stride_b, ldb, 0, beta, C, ldc, 0);
    return;
  }
  const cudaStream_t stream = current_stream();
  if (alpha == T(0) || K == 0) {  // A and B are not read
    if (beta == T(1)) return;
    gemm_scale_kernel<T>
        <<<blocks_for(batch * M * N), kThreads, 0, stream>>>(C, ldc, stride_c, batch, M, N, beta);
    CUDA_CHECK_LAUNCH();
    return;
  }
  GemmArgs<T> p{};
  p.M = M;
  p.N = N;
  p.K = K;
  p.alpha = alpha;
  p.beta = beta;
  p.A = A;
  p.lda = lda;
  p.stride_a = batch > 1 ? stride_a : 0;
  p.B = B;
  p.ldb = ldb;
  p.stride_b = batch > 1 ? stride_b : 0;
  p.C = C;
  p.ldc = ldc;
  p.stride_c = batch > 1 ? stride_c : 0;
  p.batch = batch;
  p.splits = 1;
  p.k_chunk = K;
  p.split_stride = 0;
  p.vec_a = aligned16(A) && lda % 4 == 0 && p.stride_a % 4 == 0;
  p.vec_b = aligned16(B) && ldb % 4 == 0 && p.stride_b % 4 == 0;
  p.vec_c = aligned16(C) && ldc % 4 == 0 && p.stride_c % 4 == 0;
  launch(p, trans_a, trans_b, stream);
}

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  gemm_batched<T>(trans_a, trans_b, 1, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0);
}

NABLA_GEMM_INSTANTIATE(float)
NABLA_GEMM_INSTANTIATE(double)

}  // namespace nabla::cuda
