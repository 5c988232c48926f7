// GEMM: C = alpha * op(A) * op(B) + beta * C, row-major, float and double.
//
//   op(A) [M, K], op(B) [K, N], C [M, N]; see kernels/gemm.h for the transposes and
//   leading dimensions.
//
// Design (Goto / BLIS, written for row-major C so that SIMD vectors run along N):
//
//   for ic in M step MC          A panel  MC x KC, packed once, read from L3
//     for pc in K step KC        K is cut so the slivers below fit their caches
//       pack A[ic.., pc..] into MR-row slivers: Ap[k][MR]
//       for jc in N step NC      B block KC x NC, packed, stays in L2
//         pack B[pc.., jc..] into NR-column slivers: Bp[k][NR]
//         for ir step MR         one A sliver (MR x KC) stays in L1 across the jr loop
//           for jr step NR       B sliver streams from L2
//             micro-kernel: MR x NR tile of C held in registers for all of KC
//
// Micro-kernel: an MR x NR tile of C lives in MR * NV vector registers
// (NR = NV * lanes). Each k loads NV vectors of packed B and broadcasts MR
// scalars of packed A, issuing MR * NV FMAs. With AVX-512 (16 floats or 8
// doubles per zmm) the tile is 8 rows x 3 vectors (8 x 48 floats): 24
// accumulators + 3 B vectors + 1 broadcast of the 32 zmm registers, and 24
// independent FMAs per k, more than the 2 pipes x 4 cycles of latency need.
// 12x2, 14x2, 6x4, 4x4 and 7x4 were measured too and were 2-10% slower on the
// square and CNN shapes. With AVX2 the tile is 6 x 2 vectors of the 16 ymm
// registers; without either, 4 x 2 GCC vectors of 16 bytes.
// Edge tiles keep the packed layout: the kernel is instantiated for every row
// count 1..MR and vector count 1..NV, and the last vector is stored through a
// lane mask, so ragged M and N cost no FMAs beyond filling the last vector.
//
// Block sizes (AMD EPYC Zen 5: L1d 48 KiB, L2 1 MiB per core, L3 32 MiB shared;
// see Blocking<T>): KC = 512 floats keeps the 16 KiB A sliver in L1; NC = 240
// floats keeps the 480 KiB B block in half of L2; MC = 1024 keeps the 2 MiB A
// panel in L3. Halving or doubling any of them measured equal or slower.
//
// Threads: C is cut into a tm x tn grid of blocks, one per OpenMP thread, each
// computed by the serial algorithm above with its own packing buffers, so there
// is no synchronisation inside a GEMM. Each C element is summed in the same
// order whatever the thread count, so results do not depend on it. Problems
// under about 2 MFLOP per thread stay on the calling thread.
#include "kernels/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <utility>

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace nabla::cpu {
namespace {

// ---- SIMD layer: one vector type per element type and ISA ----

#if defined(__AVX512F__)

template <typename T>
struct Simd;

template <>
struct Simd<float> {
  using V = __m512;
  static constexpr int kLanes = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V load(const float* p) { return _mm512_load_ps(p); }
  static V loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
  static __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static V load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void store_n(float* p, V v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
};

template <>
struct Simd<double> {
  using V = __m512d;
  static constexpr int kLanes = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V set1(double x) { return _mm512_set1_pd(x); }
  static V load(const double* p) { return _mm512_load_pd(p); }
  static V loadu(const double* p) { return _mm512_loadu_pd(p); }
  static void storeu(double* p, V v) { _mm512_storeu_pd(p, v); }
  static __mmask8 mask(int n) { return static_cast<__mmask8>((1u << n) - 1u); }
  static V load_n(const double* p, int n) { return _mm512_maskz_loadu_pd(mask(n), p); }
  static void store_n(double* p, V v, int n) { _mm512_mask_storeu_pd(p, mask(n), v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
};

constexpr int kMicroRows = 8;
constexpr int kMicroVecs = 3;

#elif defined(__AVX2__) && defined(__FMA__)

template <typename T>
struct Simd;

template <>
struct Simd<float> {
  using V = __m256;
  static constexpr int kLanes = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V load(const float* p) { return _mm256_load_ps(p); }
  static V loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V load_n(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static void store_n(float* p, V v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
};

template <>
struct Simd<double> {
  using V = __m256d;
  static constexpr int kLanes = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V set1(double x) { return _mm256_set1_pd(x); }
  static V load(const double* p) { return _mm256_load_pd(p); }
  static V loadu(const double* p) { return _mm256_loadu_pd(p); }
  static void storeu(double* p, V v) { _mm256_storeu_pd(p, v); }
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static V load_n(const double* p, int n) { return _mm256_maskload_pd(p, mask(n)); }
  static void store_n(double* p, V v, int n) { _mm256_maskstore_pd(p, mask(n), v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
};

constexpr int kMicroRows = 6;
constexpr int kMicroVecs = 2;

#else

// Portable fallback: GCC vector extensions, 16-byte vectors (SSE2, NEON, ...).
// Without a guaranteed FMA instruction a*b+c may round twice; that is still
// within the tolerance every caller of a GEMM expects.
// (The vector attribute cannot be applied to a dependent type, hence VecOf.)
template <typename T>
struct VecOf;
template <>
struct VecOf<float> {
  typedef float type __attribute__((vector_size(16)));
};
template <>
struct VecOf<double> {
  typedef double type __attribute__((vector_size(16)));
};

template <typename T>
struct Simd {
  using V = typename VecOf<T>::type;
  static constexpr int kLanes = 16 / sizeof(T);
  static V zero() { return V{}; }
  static V set1(T x) { return V{} + x; }
  static V load(const T* p) { return loadu(p); }
  static V loadu(const T* p) {
    V v;
    std::memcpy(&v, p, sizeof(V));
    return v;
  }
  static void storeu(T* p, V v) { std::memcpy(p, &v, sizeof(V)); }
  static V load_n(const T* p, int n) {
    V v{};
    for (int i = 0; i < n; ++i) v[i] = p[i];
    return v;
  }
  static void store_n(T* p, V v, int n) {
    for (int i = 0; i < n; ++i) p[i] = v[i];
  }
  static V fma(V a, V b, V c) { return a * b + c; }
  static V mul(V a, V b) { return a * b; }
};

constexpr int kMicroRows = 4;
constexpr int kMicroVecs = 2;

#endif

// ---- blocking parameters ----

template <typename T>
struct Blocking {
  static constexpr int kLanes = Simd<T>::kLanes;
  static constexpr int kMR = kMicroRows;
  static constexpr int kNV = kMicroVecs;
  static constexpr int kNR = kNV * kLanes;
  // KC: 2 KiB of K per row, so the A sliver (8 x 512 floats, 8 x 256 doubles) is
  // 16 KiB, a third of L1d: it stays resident while B slivers stream past it,
  // and the C tile's loads and stores are amortised over 512 (256) FMA steps.
  static constexpr int64_t kKC = 2048 / sizeof(T);
  // NC: the packed B block KC x NC is at most 512 KiB, half of L2, leaving the
  // other half for the A sliver and the C lines that pass through.
  static constexpr int64_t kNC = (512 * 1024 / (kKC * sizeof(T))) / kNR * kNR;
  // MC: the packed A panel MC x KC is 2 MiB and lives in L3. B is repacked once
  // per MC rows, so MC is large; it only needs to leave L3 room for B's source.
  static constexpr int64_t kMC = 1024 / kMR * kMR;
};

constexpr std::size_t kAlign = 64;

// ---- per-thread packing buffers ----

// One pair of buffers per thread and element type, allocated at the first GEMM
// on that thread at the maximum block size and kept: a GEMM never allocates in
// steady state, and OpenMP threads of the pool keep theirs across calls.
template <typename T>
struct PackBuffers {
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  using Ptr = std::unique_ptr<T[], Free>;
  Ptr a = alloc((Blocking<T>::kMC + Blocking<T>::kMR) * Blocking<T>::kKC);
  Ptr b = alloc(Blocking<T>::kKC * (Blocking<T>::kNC + Blocking<T>::kNR));

  static Ptr alloc(int64_t n) {
    const std::size_t bytes =
        (static_cast<std::size_t>(n) * sizeof(T) + kAlign - 1) / kAlign * kAlign;
    void* p = std::aligned_alloc(kAlign, bytes);
    if (!p) throw std::bad_alloc();
    return Ptr(static_cast<T*>(p));
  }
};

template <typename T>
PackBuffers<T>& pack_buffers() {
  static thread_local PackBuffers<T> buffers;
  return buffers;
}

// ---- packing ----

#if defined(__AVX__)
// Transposes the 8x8 block r[0..7] (r[i] = 8 consecutive k of line i) and stores
// k-row j at d + j * R.
inline void transpose8x8_store(const __m256 (&r)[8], float* d, int R) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  _mm256_storeu_ps(d + 0 * R, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(d + 1 * R, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(d + 2 * R, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(d + 3 * R, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(d + 4 * R, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(d + 5 * R, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(d + 6 * R, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(d + 7 * R, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// The 256-bit register of T (std::conditional_t would drop the vector attributes).
template <typename T>
struct Reg256;
template <>
struct Reg256<float> {
  using type = __m256;
};
template <>
struct Reg256<double> {
  using type = __m256d;
};

// The same for a 4x4 block of doubles.
inline void transpose4x4_store(const __m256d (&r)[4], double* d, int R) {
  const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
  const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
  _mm256_storeu_pd(d + 0 * R, _mm256_permute2f128_pd(t0, t2, 0x20));
  _mm256_storeu_pd(d + 1 * R, _mm256_permute2f128_pd(t1, t3, 0x20));
  _mm256_storeu_pd(d + 2 * R, _mm256_permute2f128_pd(t0, t2, 0x31));
  _mm256_storeu_pd(d + 3 * R, _mm256_permute2f128_pd(t1, t3, 0x31));
}
#endif

// dst[k * R + l] = src[l * ld + k] for l < lines, and 0 for lines <= l < lines_pad,
// for every k < kc: turns rows that run along k into k-major groups of R. Blocks of
// 8 lines x 8 k (float) or 4 x 4 (double) go through an in-register transpose, with
// absent lines read as zero vectors so that a ragged last group and its padding take
// the same path: a scalar transpose would cost as much as the FMAs in the thin GEMMs
// of a CNN (fc1 forward, the im2col products), and a ragged group in the tiny ones.
template <typename T>
void pack_transposed(T* dst, int R, const T* src, int64_t ld, int lines, int lines_pad,
                     int64_t kc) {
  int l0 = 0;
#if defined(__AVX__)
  constexpr int G = sizeof(T) == 4 ? 8 : 4;  // lines per transposed block
  using Reg = typename Reg256<T>::type;
  for (; l0 + G <= lines_pad; l0 += G) {
    const T* s = src + l0 * ld;
    const int valid = std::max(0, std::min(G, lines - l0));
    int64_t k = 0;
    for (; k + G <= kc; k += G) {
      Reg r[G];
      for (int i = 0; i < G; ++i) {
        if constexpr (sizeof(T) == 4)
          r[i] = i < valid ? _mm256_loadu_ps(s + i * ld + k) : _mm256_setzero_ps();
        else
          r[i] = i < valid ? _mm256_loadu_pd(s + i * ld + k) : _mm256_setzero_pd();
      }
      if constexpr (sizeof(T) == 4)
        transpose8x8_store(r, dst + k * R + l0, R);
      else
        transpose4x4_store(r, dst + k * R + l0, R);
    }
    for (; k < kc; ++k)
      for (int i = 0; i < G; ++i) dst[k * R + l0 + i] = i < valid ? s[i * ld + k] : T(0);
  }
#endif
  // Lines left over (fewer than a block, or no AVX): scalar, k outer so the writes
  // stay sequential.
  for (int64_t k = 0; k < kc; ++k)
    for (int l = l0; l < lines_pad; ++l) dst[k * R + l] = l < lines ? src[l * ld + k] : T(0);
}

// Packs op(A)[i0 : i0+mc, p0 : p0+kc] into MR-row slivers, sliver s at Ap + s*kc,
// laid out Ap[k][MR]. The edge micro-kernel never reads rows past M in the last
// sliver; the transposing path fills them with zeros anyway, as that is what
// lets a ragged sliver use the vector transpose.
template <typename T>
void pack_a(bool trans, const T* A, int64_t lda, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
            T* Ap) {
  constexpr int MR = Blocking<T>::kMR;
  for (int64_t s = 0; s < mc; s += MR) {
    const int m = static_cast<int>(std::min<int64_t>(MR, mc - s));
    T* dst = Ap + s * kc;
    if (trans) {
      // A is [K, M]: the m values of one k are contiguous.
      const T* src = A + p0 * lda + i0 + s;
      if (m == MR) {
        for (int64_t k = 0; k < kc; ++k) std::memcpy(dst + k * MR, src + k * lda, sizeof(T) * MR);
      } else {
        for (int64_t k = 0; k < kc; ++k)
          for (int r = 0; r < m; ++r) dst[k * MR + r] = src[k * lda + r];
      }
    } else {
      pack_transposed(dst, MR, A + (i0 + s) * lda + p0, lda, m, MR, kc);
    }
  }
}

// Packs op(B)[p0 : p0+kc, j0 : j0+nc] into NR-column slivers, sliver s at Bp + s*kc,
// laid out Bp[k][NR]. Columns of the last sliver up to the next whole vector are
// zero-filled: the edge kernel loads whole vectors, and although those lanes are
// never stored, zeros keep them finite (no NaN or denormal slowdowns).
template <typename T>
void pack_b(bool trans, const T* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
            T* Bp) {
  using S = Simd<T>;
  constexpr int NR = Blocking<T>::kNR, L = Blocking<T>::kLanes;
  for (int64_t s = 0; s < nc; s += NR) {
    const int w = static_cast<int>(std::min<int64_t>(NR, nc - s));
    const int wpad = (w + L - 1) / L * L;
    T* dst = Bp + s * kc;
    if (trans) {
      pack_transposed(dst, NR, B + (j0 + s) * ldb + p0, ldb, w, wpad, kc);
    } else if (w == NR) {
      // B is [K, N]: a row of the sliver is a contiguous copy.
      const T* src = B + p0 * ldb + j0 + s;
      for (int64_t k = 0; k < kc; ++k) std::memcpy(dst + k * NR, src + k * ldb, sizeof(T) * NR);
    } else {
      // Masked loads read only the w real columns and zero the rest of each vector.
      const T* src = B + p0 * ldb + j0 + s;
      for (int64_t k = 0; k < kc; ++k)
        for (int c = 0; c < w; c += L)
          S::storeu(dst + k * NR + c, S::load_n(src + k * ldb + c, std::min(L, w - c)));
    }
  }
}

// ---- micro-kernel ----

// C[0:M, 0:NV vectors] = alpha * Ap-sliver * Bp-sliver + beta * C, one call per
// tile, on the thread that owns the tile's C block. The tile is held in M x NV
// registers for the whole k loop; each element has a single accumulator summed in
// k order, whatever the tile shape, which is what makes results independent of how
// C is split. The last vector stores only n_last lanes. beta == 0 never reads C.
template <typename T, int M, int NV>
void micro_kernel(int64_t kc, const T* __restrict a, const T* __restrict b, T* __restrict c,
                  int64_t ldc, T alpha, T beta, int n_last) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int MR = Blocking<T>::kMR, NR = Blocking<T>::kNR, L = S::kLanes;
  V acc[M][NV];
#pragma GCC unroll 16
  for (int r = 0; r < M; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = S::zero();

#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    V bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = S::load(b + v * L);
#pragma GCC unroll 16
    for (int r = 0; r < M; ++r) {
      const V av = S::set1(a[r]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] = S::fma(av, bv[v], acc[r][v]);
    }
    a += MR;
    b += NR;
  }

  const V va = S::set1(alpha);
  const V vb = S::set1(beta);
#pragma GCC unroll 16
  for (int r = 0; r < M; ++r) {
    T* cr = c + r * ldc;
#pragma GCC unroll 8
    for (int v = 0; v < NV - 1; ++v) {
      const V out = beta == T(0) ? S::mul(va, acc[r][v])
                                 : S::fma(va, acc[r][v], S::mul(vb, S::loadu(cr + v * L)));
      S::storeu(cr + v * L, out);
    }
    T* cl = cr + (NV - 1) * L;
    const V out = beta == T(0) ? S::mul(va, acc[r][NV - 1])
                               : S::fma(va, acc[r][NV - 1], S::mul(vb, S::load_n(cl, n_last)));
    S::store_n(cl, out, n_last);
  }
}

template <typename T>
using MicroKernel = void (*)(int64_t, const T*, const T*, T*, int64_t, T, T, int);

// kernel_table<T>()[m - 1][nv - 1]: the micro-kernel for an m-row, nv-vector tile.
template <typename T, int... Ms, int... Vs>
constexpr auto make_table(std::integer_sequence<int, Ms...>, std::integer_sequence<int, Vs...>) {
  struct Table {
    MicroKernel<T> k[sizeof...(Ms)][sizeof...(Vs)];
  } t{};
  auto row = [&]<int M>(std::integral_constant<int, M>) {
    ((t.k[M][Vs] = &micro_kernel<T, M + 1, Vs + 1>), ...);
  };
  (row(std::integral_constant<int, Ms>{}), ...);
  return t;
}

template <typename T>
const auto& kernel_table() {
  static constexpr auto table = make_table<T>(std::make_integer_sequence<int, Blocking<T>::kMR>{},
                                              std::make_integer_sequence<int, Blocking<T>::kNV>{});
  return table.k;
}

// ---- drivers ----

// Splits n into ceil(n / max_block) nearly equal blocks, each rounded up to a
// multiple of `unit`, so that a K of 513 does not leave a 1-deep remainder block.
int64_t balanced_block(int64_t n, int64_t max_block, int64_t unit) {
  const int64_t blocks = (n + max_block - 1) / max_block;
  const int64_t size = (n + blocks - 1) / blocks;
  return (size + unit - 1) / unit * unit;
}

// C = beta * C on an M x N block; beta == 0 writes zeros without reading.
template <typename T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  if (beta == T(1)) return;
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0))
      std::fill(c, c + N, T(0));
    else
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
}

// The whole blocked algorithm (see the top of the file), every loop on the calling
// thread. requires M, N, K > 0 and alpha != 0.
template <typename T>
void gemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                 int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  using Bk = Blocking<T>;
  constexpr int MR = Bk::kMR, NR = Bk::kNR, L = Bk::kLanes;
  PackBuffers<T>& buf = pack_buffers<T>();
  const auto& kernels = kernel_table<T>();
  const int64_t KC = balanced_block(K, Bk::kKC, 1);
  const int64_t MC = balanced_block(M, Bk::kMC, MR);
  const int64_t NC = balanced_block(N, Bk::kNC, NR);

  for (int64_t ic = 0; ic < M; ic += MC) {
    const int64_t mc = std::min(MC, M - ic);
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      // Later K blocks accumulate onto what the first one wrote.
      const T beta_k = pc == 0 ? beta : T(1);
      pack_a(ta, A, lda, ic, mc, pc, kc, buf.a.get());
      for (int64_t jc = 0; jc < N; jc += NC) {
        const int64_t nc = std::min(NC, N - jc);
        pack_b(tb, B, ldb, pc, kc, jc, nc, buf.b.get());
        for (int64_t ir = 0; ir < mc; ir += MR) {
          const int m = static_cast<int>(std::min<int64_t>(MR, mc - ir));
          const T* a = buf.a.get() + ir * kc;
          T* c = C + (ic + ir) * ldc + jc;
          for (int64_t jr = 0; jr < nc; jr += NR) {
            const int w = static_cast<int>(std::min<int64_t>(NR, nc - jr));
            const int nv = (w + L - 1) / L;
            kernels[m - 1][nv - 1](kc, a, buf.b.get() + jr * kc, c + jr, ldc, alpha, beta_k,
                                   w - (nv - 1) * L);
          }
        }
      }
    }
  }
}

// Below this many flops per thread (about 8 us of one core), waking the team and
// joining it costs more than the extra thread saves. At 2 MFLOP the conv2 GEMM of
// one sample (7.2 MFLOP) already runs 1.7x faster on two threads.
constexpr double kMinFlopsPerThread = 2e6;

int threads_for(int64_t M, int64_t N, int64_t K) {
  if (omp_in_parallel()) return 1;
  const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * K;
  const int useful = static_cast<int>(std::min<double>(flops / kMinFlopsPerThread, 1 << 20));
  return std::max(1, std::min(omp_get_max_threads(), useful));
}

// The tm x tn thread grid (tm * tn == nt) that minimises one thread's cost: its
// FMAs (rows x cols, rounded to whole micro-tiles) plus its packing, which grows
// with rows + cols and costs roughly 8 FMAs' worth of time per packed element.
template <typename T>
std::pair<int, int> thread_grid(int64_t M, int64_t N, int nt) {
  using Bk = Blocking<T>;
  const int64_t um = (M + Bk::kMR - 1) / Bk::kMR, un = (N + Bk::kLanes - 1) / Bk::kLanes;
  std::pair<int, int> best{1, nt};
  double best_cost = -1;
  for (int tn = 1; tn <= nt; ++tn) {
    if (nt % tn) continue;
    const int tm = nt / tn;
    const double rows = static_cast<double>((um + tm - 1) / tm * Bk::kMR);
    const double cols = static_cast<double>((un + tn - 1) / tn * Bk::kLanes);
    const double cost = rows * cols + 8.0 * (rows + cols);
    if (best_cost < 0 || cost <= best_cost) {
      best_cost = cost;
      best = {tm, tn};
    }
  }
  return best;
}

// Runs gemm_serial on nt threads over a tm x tn grid of C blocks.
template <typename T>
void gemm_parallel(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                   int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, int nt) {
  using Bk = Blocking<T>;
  // Plain variables, not a structured binding: clang 14 cannot capture those in OpenMP regions.
  const std::pair<int, int> grid = thread_grid<T>(M, N, nt);
  const int tm = grid.first, tn = grid.second;
  const int64_t um = (M + Bk::kMR - 1) / Bk::kMR, un = (N + Bk::kLanes - 1) / Bk::kLanes;
  // One thread per C block (t / tn, t % tn); blocks are whole micro-tile rows and
  // whole vectors of columns, so only the last block of each has ragged edges.
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int t = 0; t < nt; ++t) {
    const int bi = t / tn, bj = t % tn;
    const int64_t i0 = std::min(M, um * bi / tm * Bk::kMR);
    const int64_t i1 = std::min(M, um * (bi + 1) / tm * Bk::kMR);
    const int64_t j0 = std::min(N, un * bj / tn * Bk::kLanes);
    const int64_t j1 = std::min(N, un * (bj + 1) / tn * Bk::kLanes);
    if (i1 <= i0 || j1 <= j0) continue;
    const T* a = ta ? A + i0 : A + i0 * lda;
    const T* b = tb ? B + j0 * ldb : B + j0;
    gemm_serial(ta, tb, i1 - i0, j1 - j0, K, alpha, a, lda, b, ldb, beta, C + i0 * ldc + j0, ldc);
  }
}

// gemm with an explicit thread count (1 runs inline, no parallel region).
template <typename T>
void gemm_with_threads(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                       int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, int nt) {
  if (M <= 0 || N <= 0) return;
  // alpha == 0 skips the product as BLAS does, so NaN in A or B does not leak into C.
  if (K <= 0 || alpha == T(0)) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  if (nt > 1)
    gemm_parallel(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, nt);
  else
    gemm_serial(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  gemm_with_threads(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                    threads_for(M, N, K));
}

template <typename T>
void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                  T alpha, const T* A, int64_t lda, int64_t stride_a, const T* B, int64_t ldb,
                  int64_t stride_b, T beta, T* C, int64_t ldc, int64_t stride_c) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  const int nt = threads_for(M, N, K * batch);
  // Splitting the batch needs no synchronisation and keeps each GEMM's packed blocks
  // in one core's caches, but only balances when the batch divides evenly or is
  // long; stride_c == 0 means every product lands in one C, so those run in order.
  if (nt > 1 && stride_c != 0 && (batch % nt == 0 || batch >= 4 * nt)) {
    // One batch entry per loop iteration, entries dealt to threads in contiguous runs.
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t b = 0; b < batch; ++b)
      gemm_with_threads(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b,
                        ldb, beta, C + b * stride_c, ldc, 1);
    return;
  }
  // Entries in order, each GEMM spread over the threads itself.
  for (int64_t b = 0; b < batch; ++b)
    gemm(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta,
         C + b * stride_c, ldc);
}

NABLA_GEMM_INSTANTIATE(float)
NABLA_GEMM_INSTANTIATE(double)

}  // namespace nabla::cpu
