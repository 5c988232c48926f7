// Softmax family on the GPU: softmax and log_softmax along one axis of a contiguous tensor seen
// as [outer, D, inner], and inverted dropout (kernels/softmax.h gives the math and contracts).
//
//   m = max_d x,  s = sum_d exp(x - m) (double)    softmax y = exp(x - m) / s
//                                                  log_softmax y = (x - m) - log s
//   softmax backward      dx = y * (dy - sum_d dy*y)     (the sum in double)
//   log_softmax backward  dx = dy - exp(y) * sum_d dy    (the sum in double)
//
// Each forward is one fused kernel (max, sum of exponentials, normalize) and each backward one
// fused kernel (the sum over d, then the elementwise rule): no intermediate tensor.
// The order of operations and the double accumulators follow the CPU kernel; exp and log come
// from the CUDA math library (within 2 ulp of glibc's), so results agree to rounding.
// Sums use the fixed-order warp/block reductions of common.cuh: deterministic, no atomics.
//
// Versions: 1 (these).
//   softmax_rows_kernel, softmax_rows_backward_kernel   (inner == 1)  one block per row o:
//       threads stride over d, block_max / block_sum combine; the row is read three times
//       (max, sum, write) and stays in L1/L2 between the reads.
//   softmax_cols_kernel, softmax_cols_backward_kernel   (inner > 1)  one thread per (o, i),
//       looping over d; consecutive threads take consecutive i, so every load is coalesced
//       (dim 1 of NCHW: a thread per pixel, looping over the channels).
//   dropout_forward_kernel   one thread per Philox block (4 floats or 2 doubles): the block's
//       counter gives exactly the uniforms cpu::dropout_forward draws, so the mask is the same
//       bits on every device.
//   dropout_backward_kernel  one thread per element.
#include "kernels/cuda/common.cuh"
#include "kernels/random.h"
#include "kernels/softmax.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace nabla::cuda {

namespace {

constexpr int kMaxRowThreads = 256;

int row_threads(int64_t len) {
  int t = 32;
  while (t < kMaxRowThreads && t < len) t *= 2;
  return t;
}

unsigned grid_for(int64_t tasks) {
  return unsigned(std::clamp<int64_t>(tasks, 1, kMaxBlocks));
}

// Max over a block (blockDim.x a multiple of 32), valid in every thread; as block_sum, it
// contains __syncthreads and must be called by every thread of the block.
template <typename T>
__device__ T block_max(T v, T* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();  // shared may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < warps ? shared[lane] : T(-INFINITY);
  return warp_max(v);
}

template <typename T, bool kLog>
__global__ void softmax_rows_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows,
                                    int64_t D) {
  __shared__ T smax[32];
  __shared__ double ssum[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {  // uniform over the block
    const T* xr = x + r * D;
    T* yr = y + r * D;
    T m = T(-INFINITY);
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) m = xr[d] > m ? xr[d] : m;
    m = block_max(m, smax);
    // x - m <= 0: every exp lies in (0, 1] and s >= 1, so neither overflow nor log(0).
    // A NaN anywhere makes s NaN and with it the whole row, as on the CPU.
    double s = 0;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) s += double(std::exp(xr[d] - m));
    s = block_sum(s, ssum);
    if (kLog) {
      // (x - m) - log s, never x - (m + log s): see kernels/cpu/softmax.cpp.
      const T log_s = T(std::log(s));
      for (int64_t d = threadIdx.x; d < D; d += blockDim.x) yr[d] = (xr[d] - m) - log_s;
    } else {
      for (int64_t d = threadIdx.x; d < D; d += blockDim.x)
        yr[d] = T(double(std::exp(xr[d] - m)) / s);
    }
  }
}

template <typename T, bool kLog>
__global__ void softmax_cols_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t outer,
                                    int64_t D, int64_t inner) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < outer * inner;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = k % inner, o = k / inner;
    const T* xp = x + o * D * inner + i;
    T* yp = y + o * D * inner + i;
    T m = xp[0];
    for (int64_t d = 1; d < D; ++d) m = xp[d * inner] > m ? xp[d * inner] : m;
    double s = 0;
    for (int64_t d = 0; d < D; ++d) s += double(std::exp(xp[d * inner] - m));
    if (kLog) {
      const T log_s = T(std::log(s));
      for (int64_t d = 0; d < D; ++d) yp[d * inner] = (xp[d * inner] - m) - log_s;
    } else {
      for (int64_t d = 0; d < D; ++d) yp[d * inner] = T(double(std::exp(xp[d * inner] - m)) / s);
    }
  }
}

// softmax:     dx = y * (dy - sum_d dy*y)
// log_softmax: dx = dy - exp(y) * sum_d dy
template <typename T, bool kLog>
__global__ void softmax_rows_backward_kernel(const T* __restrict__ y, const T* __restrict__ dy,
                                             T* __restrict__ dx, int64_t rows, int64_t D) {
  __shared__ double ssum[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {  // uniform over the block
    const T *yr = y + r * D, *gr = dy + r * D;
    T* dr = dx + r * D;
    double acc = 0;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x)
      acc += kLog ? double(gr[d]) : double(gr[d]) * double(yr[d]);
    const T dot = T(block_sum(acc, ssum));
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x)
      dr[d] = kLog ? gr[d] - std::exp(yr[d]) * dot : yr[d] * (gr[d] - dot);
  }
}

template <typename T, bool kLog>
__global__ void softmax_cols_backward_kernel(const T* __restrict__ y, const T* __restrict__ dy,
                                             T* __restrict__ dx, int64_t outer, int64_t D,
                                             int64_t inner) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < outer * inner;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = k % inner, o = k / inner, base = o * D * inner + i;
    double acc = 0;
    for (int64_t d = 0; d < D; ++d) {
      const int64_t e = base + d * inner;
      acc += kLog ? double(dy[e]) : double(dy[e]) * double(y[e]);
    }
    const T dot = T(acc);
    for (int64_t d = 0; d < D; ++d) {
      const int64_t e = base + d * inner;
      dx[e] = kLog ? dy[e] - std::exp(y[e]) * dot : y[e] * (dy[e] - dot);
    }
  }
}

template <typename T, bool kLog>
void softmax_forward_impl(const T* x, T* y, int64_t outer, int64_t D, int64_t inner) {
  if (outer * D * inner == 0) return;
  const cudaStream_t s = current_stream();
  if (inner == 1)
    softmax_rows_kernel<T, kLog><<<grid_for(outer), row_threads(D), 0, s>>>(x, y, outer, D);
  else
    softmax_cols_kernel<T, kLog>
        <<<blocks_for(outer * inner), kThreads, 0, s>>>(x, y, outer, D, inner);
  CUDA_CHECK_LAUNCH();
}

template <typename T, bool kLog>
void softmax_backward_impl(const T* y, const T* dy, T* dx, int64_t outer, int64_t D,
                           int64_t inner) {
  if (outer * D * inner == 0) return;
  const cudaStream_t s = current_stream();
  if (inner == 1)
    softmax_rows_backward_kernel<T, kLog>
        <<<grid_for(outer), row_threads(D), 0, s>>>(y, dy, dx, outer, D);
  else
    softmax_cols_backward_kernel<T, kLog>
        <<<blocks_for(outer * inner), kThreads, 0, s>>>(y, dy, dx, outer, D, inner);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
__global__ void dropout_forward_kernel(uint64_t seed, uint64_t offset, const T* __restrict__ x,
                                       T* __restrict__ mask, T* __restrict__ y, int64_t n, T p,
                                       T scale) {
  constexpr int64_t kPer = kPhiloxPerBlock<T>;
  const int64_t blocks = (n + kPer - 1) / kPer;
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < blocks;
       b += int64_t(gridDim.x) * blockDim.x) {
    T us[kPer];
    philox_uniforms<T>(seed, offset, b, us);
#pragma unroll
    for (int64_t k = 0; k < kPer; ++k) {
      const int64_t i = b * kPer + k;
      if (i < n) {
        const T m = us[k] >= p ? scale : T(0);
        mask[i] = m;
        y[i] = x[i] * m;
      }
    }
  }
}

template <typename T>
__global__ void dropout_backward_kernel(const T* __restrict__ mask, const T* __restrict__ dy,
                                        T* __restrict__ dx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = dy[i] * mask[i];
}

}  // namespace

template <typename T>
void softmax_forward(const T* x, T* y, int64_t outer, int64_t D, int64_t inner) {
  softmax_forward_impl<T, false>(x, y, outer, D, inner);
}

template <typename T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t D, int64_t inner) {
  softmax_backward_impl<T, false>(y, dy, dx, outer, D, inner);
}

template <typename T>
void log_softmax_forward(const T* x, T* y, int64_t outer, int64_t D, int64_t inner) {
  softmax_forward_impl<T, true>(x, y, outer, D, inner);
}

template <typename T>
void log_softmax_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t D, int64_t inner) {
  softmax_backward_impl<T, true>(y, dy, dx, outer, D, inner);
}

template <typename T>
void dropout_forward(uint64_t seed, uint64_t offset, const T* x, T* mask, T* y, int64_t n, T p) {
  if (n == 0) return;
  // The CPU kernel's expression, evaluated on the host: the same scale bits.
  const T scale = p < T(1) ? T(1) / (T(1) - p) : T(0);
  const int64_t blocks = (n + kPhiloxPerBlock<T> - 1) / kPhiloxPerBlock<T>;
  dropout_forward_kernel<T><<<blocks_for(blocks), kThreads, 0, current_stream()>>>(
      seed, offset, x, mask, y, n, p, scale);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void dropout_backward(const T* mask, const T* dy, T* dx, int64_t n) {
  if (n == 0) return;
  dropout_backward_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(mask, dy, dx, n);
  CUDA_CHECK_LAUNCH();
}

NABLA_SOFTMAX_INSTANTIATE(float)
NABLA_SOFTMAX_INSTANTIATE(double)

}  // namespace nabla::cuda
