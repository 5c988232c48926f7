// Reduction family on the GPU over one axis of a contiguous tensor seen as [outer, D, inner]
// (kernels/reduce.h gives the contracts):
//
//   sum   y[o, i] = sum_d x[o, d, i]                       (accumulated in double, as the CPU)
//   var   y[o, i] = sum_d (x[o, d, i] - m[o, i])^2 / (D - correction), two passes
//   max   y[o, i] = max_d x[o, d, i], idx[o, i] = first d attaining it, NaN wins
//
// Determinism: no atomics anywhere. Every output is reduced in an order fixed by the shape
// alone (lanes stride over d, then the xor-butterfly warp_sum and block_sum of common.cuh), so
// two runs on the same device give the same bits. The CPU sums in a different (sequential)
// order, so float results may differ from it in the last bit: both sum in double and round once.
//
// Versions: 1 (these).
//   inner == 1 (rows are contiguous):
//     sum_rows_kernel    one block per (row, chunk): threads stride over the chunk, block_sum.
//                        A long row with few rows is split into chunks (a fixed function of
//                        the shape) whose partial sums (double) a second launch of the same
//                        kernel adds in chunk order: two passes, still no atomics.
//     var_rows_kernel    one block per row: block_sum for the mean, then for the squared
//                        deviations (the row is read twice; the second read mostly hits L2).
//     max_rows_kernel    one block per row: (value, index) pairs reduced with a total order.
//   inner > 1 (d strides by inner):
//     sum_cols_kernel    one thread per (o, chunk, i): consecutive threads take consecutive i,
//                        so every load of a warp is one coalesced row segment. Few outputs with
//                        a long D are split into chunks of D; sum_rows_kernel then adds each
//                        output's partial sums (contiguous) in chunk order.
//     var_cols_kernel, max_cols_kernel   one thread per output (o, i), looping over d.
//   var_backward_kernel, max_backward_kernel   one thread per dx element: no scatter, no race.
#include "kernels/cuda/common.cuh"
#include "kernels/reduce.h"

#include <nabla/device.h>

#include <algorithm>
#include <cstdint>

namespace nabla::cuda {

namespace {

constexpr int kMaxRowThreads = 256;
constexpr int64_t kMinRowChunk = 4096;  // elements per block before a row is split
constexpr int64_t kRowTargetBlocks = 1024;
constexpr int64_t kMinColChunk = 64;  // d per thread before a column is split
constexpr int64_t kColTargetThreads = 65536;

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Threads per block for a block that reduces `len` elements: a multiple of 32 (block_sum),
// no wider than the work.
int row_threads(int64_t len) {
  int t = 32;
  while (t < kMaxRowThreads && t < len) t *= 2;
  return t;
}

// The number of chunks a reduced axis of length D is split into, about `want`: every chunk
// non-empty, and a function of the shape only, so that the summation order never changes.
int64_t split(int64_t D, int64_t want) {
  if (D <= 1 || want <= 1) return 1;
  const int64_t len = ceil_div(D, std::min(want, D));
  return ceil_div(D, len);
}

unsigned grid_for(int64_t tasks) {
  return unsigned(std::clamp<int64_t>(tasks, 1, kMaxBlocks));
}

// ---------------------------------------------------------------- sum

// y[task] = sum of row r = task / chunks over [c * len, min(D, (c + 1) * len)), c = task % chunks.
template <typename In, typename Out>
__global__ void sum_rows_kernel(const In* __restrict__ x, Out* __restrict__ y, int64_t rows,
                                int64_t D, int64_t chunks, int64_t len) {
  __shared__ double shared[32];
  // The task loop is uniform over the block, so every thread reaches block_sum's barriers.
  for (int64_t task = blockIdx.x; task < rows * chunks; task += gridDim.x) {
    const int64_t r = task / chunks, c = task % chunks;
    const int64_t begin = c * len, end = begin + len < D ? begin + len : D;
    const In* row = x + r * D;
    double acc = 0;
    for (int64_t d = begin + threadIdx.x; d < end; d += blockDim.x) acc += double(row[d]);
    acc = block_sum(acc, shared);
    if (threadIdx.x == 0) y[task] = Out(acc);
  }
}

// y[(o * inner + i) * chunks + c] = sum over d in chunk c of x[(o * D + d) * inner + i]: with
// chunks == 1 that is y[o, i]; otherwise the partial sums of one output are contiguous, and a
// row reduction adds them.
template <typename In, typename Out>
__global__ void sum_cols_kernel(const In* __restrict__ x, Out* __restrict__ y, int64_t outer,
                                int64_t D, int64_t inner, int64_t chunks, int64_t len) {
  const int64_t total = outer * chunks * inner;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < total;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = k % inner, oc = k / inner;
    const int64_t c = oc % chunks, o = oc / chunks;
    const int64_t begin = c * len, end = begin + len < D ? begin + len : D;
    const In* p = x + o * D * inner + i;
    double acc = 0;
    for (int64_t d = begin; d < end; ++d) acc += double(p[d * inner]);
    y[(o * inner + i) * chunks + c] = Out(acc);
  }
}

template <typename In, typename Out>
void sum_rows(const In* x, Out* y, int64_t rows, int64_t D, int64_t chunks, cudaStream_t s) {
  const int64_t len = ceil_div(D, chunks);
  sum_rows_kernel<In, Out>
      <<<grid_for(rows * chunks), row_threads(len), 0, s>>>(x, y, rows, D, chunks, len);
  CUDA_CHECK_LAUNCH();
}

template <typename In, typename Out>
void sum_cols(const In* x, Out* y, int64_t outer, int64_t D, int64_t inner, int64_t chunks,
              cudaStream_t s) {
  const int64_t len = ceil_div(D, chunks);
  sum_cols_kernel<In, Out>
      <<<blocks_for(outer * chunks * inner), kThreads, 0, s>>>(x, y, outer, D, inner, chunks, len);
  CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------- var

template <typename T>
__global__ void var_rows_kernel(const T* __restrict__ x, T* __restrict__ y, T* __restrict__ mean,
                                int64_t rows, int64_t D, double denom) {
  __shared__ double shared[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {  // uniform over the block
    const T* row = x + r * D;
    double s = 0;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) s += double(row[d]);
    const double m = block_sum(s, shared) / double(D);
    // Two passes: squared deviations from the mean, no E[x^2] - E[x]^2 cancellation.
    double ss = 0;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      const double v = double(row[d]) - m;
      ss += v * v;
    }
    ss = block_sum(ss, shared);
    if (threadIdx.x == 0) {
      y[r] = T(ss / denom);
      if (mean) mean[r] = T(m);
    }
  }
}

template <typename T>
__global__ void var_cols_kernel(const T* __restrict__ x, T* __restrict__ y, T* __restrict__ mean,
                                int64_t outer, int64_t D, int64_t inner, double denom) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < outer * inner;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = k % inner, o = k / inner;
    const T* p = x + o * D * inner + i;
    double m = 0;
    for (int64_t d = 0; d < D; ++d) m += double(p[d * inner]);
    m /= double(D);
    double ss = 0;
    for (int64_t d = 0; d < D; ++d) {
      const double v = double(p[d * inner]) - m;
      ss += v * v;
    }
    y[k] = T(ss / denom);
    if (mean) mean[k] = T(m);
  }
}

template <typename T>
__global__ void var_backward_kernel(const T* __restrict__ x, const T* __restrict__ mean,
                                    const T* __restrict__ dy, T* __restrict__ dx, int64_t n,
                                    int64_t D, int64_t inner, T scale) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = (k / (D * inner)) * inner + k % inner;  // the output (o, i) of element k
    dx[k] = dy[j] * scale * (x[k] - mean[j]);
  }
}

// ---------------------------------------------------------------- max

// A candidate (value, index); index < 0 means none yet.
template <typename T>
struct ArgMax {
  T v;
  int64_t i;
};

// The better of two candidates under a total order: NaN above every number, then larger values,
// then the smaller index. The order is total, so any reduction tree gives the first index
// attaining the maximum (or the first NaN), exactly what the CPU's sequential scan returns.
template <typename T>
__device__ __forceinline__ ArgMax<T> better(ArgMax<T> a, ArgMax<T> b) {
  if (a.i < 0) return b;
  if (b.i < 0) return a;
  const bool an = isnan(a.v), bn = isnan(b.v);
  if (an != bn) return an ? a : b;
  if (!an && a.v != b.v) return a.v > b.v ? a : b;
  return a.i < b.i ? a : b;
}

template <typename T>
__device__ __forceinline__ ArgMax<T> warp_better(ArgMax<T> c) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    ArgMax<T> other;
    other.v = __shfl_xor_sync(0xffffffffu, c.v, o);
    other.i = __shfl_xor_sync(0xffffffffu, c.i, o);
    c = better(c, other);
  }
  return c;
}

template <typename T>
__global__ void max_rows_kernel(const T* __restrict__ x, T* __restrict__ y,
                                int64_t* __restrict__ idx, int64_t rows, int64_t D) {
  __shared__ T sv[32];
  __shared__ int64_t si[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {  // uniform over the block
    const T* row = x + r * D;
    ArgMax<T> c{T(0), -1};
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) c = better(c, ArgMax<T>{row[d], d});
    c = warp_better(c);
    __syncthreads();  // the previous row's reads of sv/si are done
    if (lane == 0) {
      sv[warp] = c.v;
      si[warp] = c.i;
    }
    __syncthreads();
    if (warp == 0) {
      c = lane < warps ? ArgMax<T>{sv[lane], si[lane]} : ArgMax<T>{T(0), -1};
      c = warp_better(c);
      if (lane == 0) {
        y[r] = c.v;
        if (idx) idx[r] = c.i;
      }
    }
  }
}

template <typename T>
__global__ void max_cols_kernel(const T* __restrict__ x, T* __restrict__ y,
                                int64_t* __restrict__ idx, int64_t outer, int64_t D,
                                int64_t inner) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < outer * inner;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = k % inner, o = k / inner;
    const T* p = x + o * D * inner + i;
    // The CPU's scan: ties keep the first index, the first NaN ends it.
    T best = p[0];
    int64_t arg = 0;
    for (int64_t d = 1; d < D && !isnan(best); ++d) {
      const T v = p[d * inner];
      if (v > best || isnan(v)) {
        best = v;
        arg = d;
      }
    }
    y[k] = best;
    if (idx) idx[k] = arg;
  }
}

template <typename T>
__global__ void max_backward_kernel(const T* __restrict__ dy, const int64_t* __restrict__ idx,
                                    T* __restrict__ dx, int64_t n, int64_t D, int64_t inner) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = k % inner, od = k / inner;
    const int64_t d = od % D, j = (od / D) * inner + i;
    dx[k] = idx[j] == d ? dy[j] : T(0);
  }
}

}  // namespace

template <typename T>
void sum_dim(const T* x, T* y, int64_t outer, int64_t D, int64_t inner) {
  if (outer * inner == 0) return;
  const cudaStream_t s = current_stream();
  if (inner == 1) {
    // Split long rows only when there are too few rows to fill the GPU.
    const int64_t chunks = split(D, std::min(ceil_div(D, kMinRowChunk), kRowTargetBlocks / outer));
    if (chunks == 1) {
      sum_rows<T, T>(x, y, outer, D, 1, s);
      return;
    }
    Scratch part(size_t(outer * chunks) * sizeof(double));
    sum_rows<T, double>(x, part.as<double>(), outer, D, chunks, s);
    sum_rows<double, T>(part.as<double>(), y, outer, chunks, 1, s);
    return;
  }
  // Split long columns only when there are too few outputs to fill the GPU.
  const int64_t chunks =
      split(D, std::min(ceil_div(D, kMinColChunk), kColTargetThreads / (outer * inner)));
  if (chunks == 1) {
    sum_cols<T, T>(x, y, outer, D, inner, 1, s);
    return;
  }
  Scratch part(size_t(outer * chunks * inner) * sizeof(double));
  sum_cols<T, double>(x, part.as<double>(), outer, D, inner, chunks, s);
  sum_rows<double, T>(part.as<double>(), y, outer * inner, chunks, 1, s);
}

template <typename T>
void var_dim(const T* x, T* y, T* mean, int64_t outer, int64_t D, int64_t inner,
             int64_t correction) {
  if (outer * inner == 0) return;
  const double denom = double(D - correction);
  const cudaStream_t s = current_stream();
  if (inner == 1) {
    var_rows_kernel<T><<<grid_for(outer), row_threads(D), 0, s>>>(x, y, mean, outer, D, denom);
  } else {
    var_cols_kernel<T>
        <<<blocks_for(outer * inner), kThreads, 0, s>>>(x, y, mean, outer, D, inner, denom);
  }
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void var_dim_backward(const T* x, const T* mean, const T* dy, T* dx, int64_t outer, int64_t D,
                      int64_t inner, int64_t correction) {
  const int64_t n = outer * D * inner;
  if (n == 0) return;
  const T scale = T(2) / T(D - correction);
  var_backward_kernel<T>
      <<<blocks_for(n), kThreads, 0, current_stream()>>>(x, mean, dy, dx, n, D, inner, scale);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void max_dim(const T* x, T* y, int64_t* idx, int64_t outer, int64_t D, int64_t inner) {
  if (outer * inner == 0) return;
  NABLA_CHECK(D > 0, "cuda max_dim: reducing an empty axis (outer ", outer, ", inner ", inner, ")");
  const cudaStream_t s = current_stream();
  if (inner == 1) {
    max_rows_kernel<T><<<grid_for(outer), row_threads(D), 0, s>>>(x, y, idx, outer, D);
  } else {
    max_cols_kernel<T><<<blocks_for(outer * inner), kThreads, 0, s>>>(x, y, idx, outer, D, inner);
  }
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void max_dim_backward(const T* dy, const int64_t* idx, T* dx, int64_t outer, int64_t D,
                      int64_t inner) {
  const int64_t n = outer * D * inner;
  if (n == 0) return;
  max_backward_kernel<T>
      <<<blocks_for(n), kThreads, 0, current_stream()>>>(dy, idx, dx, n, D, inner);
  CUDA_CHECK_LAUNCH();
}

NABLA_REDUCE_INSTANTIATE(float)
NABLA_REDUCE_INSTANTIATE(double)

}  // namespace nabla::cuda
