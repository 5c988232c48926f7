// Fused attack steps on the GPU: the L-inf step and the three passes of the L2 step. They
// follow the exact floating-point recipe of kernels/attack.h literally and agree with the CPU
// twins bit for bit (nothing has run on a GPU yet: the parity tests will tell).
//
// How the recipe survives nvcc, which contracts a*b + c into an fma by default:
//   - the products that must stay separate roundings are written __fmul_rn / __dmul_rn, which
//     are never contracted; the fmas of the recipe are __fmaf_rn / __fma_rn; every other
//     operation is a plain add, subtract, comparison or conversion, which contraction cannot
//     touch;
//   - double sqrt and division are IEEE round-to-nearest in CUDA, and double -> float
//     conversions round to nearest: the same as std::sqrt, / and T(double) on the CPU. These
//     kernels must never be built with --use_fast_math: its -ftz=true would flush float
//     denormals, which the CPU keeps.
//
// Kernels (version 1 of each):
//   linf_step_kernel     one thread per element, grid-stride
//   apgd_linf_kernel     one thread per element, grid-stride; the sample's step eta[k / D]
//   l2_sq_norm_kernel    one block per (sample n, chunk c) of kAttackNormChunk elements: the
//                        block stages double(g) of the chunk in shared memory (coalesced),
//                        then thread 0 sums it in index order with fma, which is the recipe's
//                        order exactly; the chunk sums go to a [N, chunks] buffer
//   l2_delta_kernel      the same grid and staging: each thread computes u = fma(a_n, g, x)
//                        for its elements, writes u, and stages double(u - x0); thread 0
//                        sums the chunk as above
//   chunk_total_kernel   one thread per sample: chunk sums added in chunk order from 0 (only
//                        when a sample has more than one chunk; one chunk is its own total,
//                        since 0 + s == s for the non-negative s here)
//   l2_project_kernel    grid (sample, piece): per-sample factor eps/||d|| computed once per
//                        thread, then one thread per element
// The sequential chunk sum is what bit-equality costs: each block's sum is a chain of up to
// 4096 dependent double fmas by one thread, while the other threads wait at the barrier. The
// chunks of all samples run in parallel, so the chain bounds the latency, not the throughput.
#include <algorithm>

#include <nabla/device.h>

#include "kernels/attack.h"
#include "kernels/cuda/common.cuh"

namespace nabla::cuda {

namespace {

constexpr int kAttackThreads = 256;
constexpr int64_t kMaxGridY = 65535;

__device__ __forceinline__ float mul_rn(float a, float b) {
  return __fmul_rn(a, b);
}
__device__ __forceinline__ double mul_rn(double a, double b) {
  return __dmul_rn(a, b);
}
__device__ __forceinline__ float fma_rn(float a, float b, float c) {
  return __fmaf_rn(a, b, c);
}
__device__ __forceinline__ double fma_rn(double a, double b, double c) {
  return __fma_rn(a, b, c);
}

// x and y may alias (the contract allows y == x): no __restrict__ on them. Each element is
// read and written by one thread, so the aliasing is harmless.
template <typename T>
__global__ void linf_step_kernel(const T* x, const T* __restrict__ g, const T* __restrict__ x0,
                                 T* y, int64_t n, T alpha, T eps, T lo, T hi) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    const T gv = g[k];
    const T s = T((gv > T(0)) - (gv < T(0)));  // -1, 0 or 1; 0 for +-0 and NaN
    T t = x[k] + mul_rn(alpha, s);             // alpha*s exact: the add is the only rounding
    const T lower = x0[k] - eps, upper = x0[k] + eps;
    // Selections, not fminf/fmaxf: a NaN t stays NaN, as on the CPU.
    t = t < lower ? lower : t;
    t = t > upper ? upper : t;
    t = t < lo ? lo : t;
    t = t > hi ? hi : t;
    y[k] = t;
  }
}

// y may alias x (not xp): each element is read and written by one thread.
template <typename T>
__global__ void apgd_linf_kernel(const T* x, const T* __restrict__ xp, const T* __restrict__ g,
                                 const T* __restrict__ x0, const T* __restrict__ eta, T* y,
                                 int64_t n, int64_t D, T a, T b, T eps, T lo, T hi) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    const T gv = g[k], xv = x[k];
    const T s = T((gv > T(0)) - (gv < T(0)));
    const T lower = x0[k] - eps, upper = x0[k] + eps;
    T z = xv + mul_rn(eta[k / D], s);  // eta*s exact: the add is the only rounding
    z = z < lower ? lower : z;
    z = z > upper ? upper : z;
    z = z < lo ? lo : z;
    z = z > hi ? hi : z;
    const T d1 = z - xv, d2 = xv - xp[k];
    T t = fma_rn(b, d2, fma_rn(a, d1, xv));
    t = t < lower ? lower : t;
    t = t > upper ? upper : t;
    t = t < lo ? lo : t;
    t = t > hi ? hi : t;
    y[k] = t;
  }
}

// The recipe's chunk sum: acc = fma(v, v, acc) in index order from 0. One thread.
__device__ double chunk_sq_sum(const double* v, int64_t len) {
  double acc = 0;
  for (int64_t i = 0; i < len; ++i) acc = __fma_rn(v[i], v[i], acc);
  return acc;
}

// Grid (N, min(chunks, 65535)); block (n, y) does chunks y, y + gridDim.y, ... of sample n.
// The chunk loop's trip count depends on the block only, so every thread reaches every
// barrier.
template <typename T>
__global__ void l2_sq_norm_kernel(const T* __restrict__ g, int64_t D, int64_t chunks,
                                  double* __restrict__ part) {
  __shared__ double v[kAttackNormChunk];  // 32 KiB
  const int64_t n = blockIdx.x;
  for (int64_t c = blockIdx.y; c < chunks; c += gridDim.y) {
    const int64_t begin = c * kAttackNormChunk;
    const int64_t len = D - begin < kAttackNormChunk ? D - begin : kAttackNormChunk;
    const T* gp = g + n * D + begin;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) v[i] = double(gp[i]);
    __syncthreads();
    if (threadIdx.x == 0) part[n * chunks + c] = chunk_sq_sum(v, len);
    __syncthreads();  // v is refilled for the next chunk
  }
}

// u = fma(a_n, g, x) with a_n = T(alpha / sqrt(gsq[n])) (0 when gsq[n] == 0), and the chunk
// sums of double(T(u - x0))^2. u may alias x or g (not x0): each element is read, then
// written, by one thread, so no __restrict__ on those three.
template <typename T>
__global__ void l2_delta_kernel(const T* x, const T* g, const T* __restrict__ x0,
                                const double* __restrict__ gsq, double alpha, T* u, int64_t D,
                                int64_t chunks, double* __restrict__ part) {
  __shared__ double v[kAttackNormChunk];
  const int64_t n = blockIdx.x;
  const double gs = gsq[n];
  const T a = gs > 0 ? T(alpha / sqrt(gs)) : T(0);
  for (int64_t c = blockIdx.y; c < chunks; c += gridDim.y) {
    const int64_t begin = c * kAttackNormChunk;
    const int64_t len = D - begin < kAttackNormChunk ? D - begin : kAttackNormChunk;
    const int64_t base = n * D + begin;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
      const T ui = fma_rn(a, g[base + i], x[base + i]);
      u[base + i] = ui;
      v[i] = double(T(ui - x0[base + i]));
    }
    __syncthreads();
    if (threadIdx.x == 0) part[n * chunks + c] = chunk_sq_sum(v, len);
    __syncthreads();
  }
}

__global__ void chunk_total_kernel(int64_t N, int64_t chunks, const double* __restrict__ part,
                                   double* __restrict__ out) {
  for (int64_t n = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; n < N;
       n += int64_t(gridDim.x) * blockDim.x) {
    double acc = 0;
    for (int64_t c = 0; c < chunks; ++c) acc += part[n * chunks + c];
    out[n] = acc;
  }
}

// Grid (N, pieces): block (n, y) handles elements y*blockDim + tid, stepping by
// gridDim.y*blockDim, of sample n.
template <typename T>
__global__ void l2_project_kernel(const T* __restrict__ x0, const double* __restrict__ dsq,
                                  double eps, T lo, T hi, T* __restrict__ y, int64_t D) {
  const int64_t n = blockIdx.x;
  const double dn = sqrt(dsq[n]);
  const bool outside = dn > eps;
  const T c = outside ? T(eps / dn) : T(1);
  for (int64_t i = blockIdx.y * int64_t(blockDim.x) + threadIdx.x; i < D;
       i += int64_t(gridDim.y) * blockDim.x) {
    const int64_t k = n * D + i;
    T t = y[k];
    // Inside the ball the step is exactly u: x0 + (u - x0) could differ in the last bit.
    if (outside) t = fma_rn(c, T(t - x0[k]), x0[k]);
    t = t < lo ? lo : t;
    t = t > hi ? hi : t;
    y[k] = t;
  }
}

// The per-sample sums of squares of a chunked pass: `launch(part)` queues the pass writing
// one sum per (sample, chunk) into part [N, chunks]; then the chunk sums are totalled into
// out [N]. With one chunk the pass writes out directly.
template <typename Launch>
void chunked_sums(int64_t N, int64_t chunks, double* out, Launch&& launch) {
  if (chunks == 1) {
    launch(out);
    return;
  }
  // chunks == 0 (D == 0): nothing to launch; every total is 0, as on the CPU.
  Scratch part(sizeof(double) * size_t(std::max<int64_t>(1, N * chunks)));
  if (chunks > 0) launch(part.as<double>());
  chunk_total_kernel<<<blocks_for(N), kThreads, 0, current_stream()>>>(N, chunks, part.as<double>(),
                                                                       out);
  CUDA_CHECK_LAUNCH();
}

dim3 chunk_grid(int64_t N, int64_t chunks) {
  NABLA_CHECK(N <= 2147483647, "cuda attack step: ", N, " samples exceed the grid");
  return dim3(unsigned(N), unsigned(std::min(chunks, kMaxGridY)));
}

}  // namespace

template <typename T>
void attack_step_linf(const T* x, const T* g, const T* x0, T* y, int64_t n, T alpha, T eps, T lo,
                      T hi) {
  if (n == 0) return;
  linf_step_kernel<T>
      <<<blocks_for(n), kThreads, 0, current_stream()>>>(x, g, x0, y, n, alpha, eps, lo, hi);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void attack_step_apgd_linf(const T* x, const T* xp, const T* g, const T* x0, const T* eta, T* y,
                           int64_t N, int64_t D, T a, T b, T eps, T lo, T hi) {
  const int64_t n = N * D;
  if (n == 0) return;
  apgd_linf_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(x, xp, g, x0, eta, y, n, D,
                                                                        a, b, eps, lo, hi);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void attack_l2_sq_norms(const T* g, double* gsq, int64_t N, int64_t D) {
  if (N == 0) return;
  const int64_t chunks = (D + kAttackNormChunk - 1) / kAttackNormChunk;
  chunked_sums(N, chunks, gsq, [&](double* part) {
    l2_sq_norm_kernel<T>
        <<<chunk_grid(N, chunks), kAttackThreads, 0, current_stream()>>>(g, D, chunks, part);
    CUDA_CHECK_LAUNCH();
  });
}

template <typename T>
void attack_step_l2_delta(const T* x, const T* g, const T* x0, const double* gsq, double alpha,
                          T* u, double* dsq, int64_t N, int64_t D) {
  if (N == 0) return;
  const int64_t chunks = (D + kAttackNormChunk - 1) / kAttackNormChunk;
  chunked_sums(N, chunks, dsq, [&](double* part) {
    l2_delta_kernel<T><<<chunk_grid(N, chunks), kAttackThreads, 0, current_stream()>>>(
        x, g, x0, gsq, alpha, u, D, chunks, part);
    CUDA_CHECK_LAUNCH();
  });
}

template <typename T>
void attack_step_l2_project(const T* x0, const double* dsq, double eps, T lo, T hi, T* y, int64_t N,
                            int64_t D) {
  if (N == 0 || D == 0) return;
  const int64_t pieces = std::min<int64_t>((D + kAttackThreads - 1) / kAttackThreads, kMaxGridY);
  NABLA_CHECK(N <= 2147483647, "cuda attack_step_l2_project: ", N, " samples exceed the grid");
  l2_project_kernel<T>
      <<<dim3(unsigned(N), unsigned(pieces)), kAttackThreads, 0, current_stream()>>>(x0, dsq, eps,
                                                                                     lo, hi, y, D);
  CUDA_CHECK_LAUNCH();
}

NABLA_ATTACK_INSTANTIATE(float)
NABLA_ATTACK_INSTANTIATE(double)

}  // namespace nabla::cuda
