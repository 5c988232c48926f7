// Copy family on the GPU: strided gather, strided scatter, dtype conversion, fill
// (kernels/copy.h gives the contracts).
//
//   strided_copy_kernel     one thread per destination element i (grid-stride): i is unravelled
//                           row-major over `shape` and the source offset summed from the strides
//   strided_scatter_kernel  the same mapping, writing dst[offset(i)] = src[i]
//   convert_kernel, fill_kernel  one thread per element
// Versions: 1 (these). The index arithmetic is 64-bit: tensors above 2^31 elements work.
#include "kernels/copy.h"
#include "kernels/cuda/common.cuh"

namespace nabla::cuda {

namespace {

struct Layout {
  int ndim;
  int64_t shape[kMaxDims];
  int64_t strides[kMaxDims];
};

Layout make_layout(int ndim, const int64_t* shape, const int64_t* strides) {
  NABLA_CHECK(ndim >= 0 && ndim <= kMaxDims, "cuda strided copy: ", ndim, " dims (at most ",
              kMaxDims, ")");
  Layout l{};
  l.ndim = ndim;
  for (int d = 0; d < ndim; ++d) {
    l.shape[d] = shape[d];
    l.strides[d] = strides[d];
  }
  return l;
}

int64_t numel_of(int ndim, const int64_t* shape) {
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) n *= shape[d];
  return n;
}

__device__ __forceinline__ int64_t strided_offset(const Layout& l, int64_t i) {
  int64_t off = 0;
  for (int d = l.ndim - 1; d >= 0; --d) {
    const int64_t idx = i % l.shape[d];
    i /= l.shape[d];
    off += idx * l.strides[d];
  }
  return off;
}

template <typename T>
__global__ void strided_copy_kernel(Layout l, int64_t n, const T* __restrict__ src,
                                    T* __restrict__ dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = src[strided_offset(l, i)];
}

template <typename T>
__global__ void strided_scatter_kernel(Layout l, int64_t n, const T* __restrict__ src,
                                       T* __restrict__ dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[strided_offset(l, i)] = src[i];
}

template <typename S, typename D>
__global__ void convert_kernel(const S* __restrict__ src, D* __restrict__ dst, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = static_cast<D>(src[i]);
}

template <typename T>
__global__ void fill_kernel(T* __restrict__ dst, int64_t n, T value) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = value;
}

}  // namespace

template <typename T>
void strided_copy(int ndim, const int64_t* shape, const T* src, const int64_t* src_strides,
                  T* dst) {
  const int64_t n = numel_of(ndim, shape);
  if (n == 0) return;
  strided_copy_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(
      make_layout(ndim, shape, src_strides), n, src, dst);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void strided_scatter(int ndim, const int64_t* shape, const T* src, T* dst,
                     const int64_t* dst_strides) {
  const int64_t n = numel_of(ndim, shape);
  if (n == 0) return;
  strided_scatter_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(
      make_layout(ndim, shape, dst_strides), n, src, dst);
  CUDA_CHECK_LAUNCH();
}

template <typename S, typename D>
void convert(const S* src, D* dst, int64_t n) {
  if (n == 0) return;
  convert_kernel<S, D><<<blocks_for(n), kThreads, 0, current_stream()>>>(src, dst, n);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void fill(T* dst, int64_t n, T value) {
  if (n == 0) return;
  fill_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(dst, n, value);
  CUDA_CHECK_LAUNCH();
}

NABLA_COPY_INSTANTIATE(float)
NABLA_COPY_INSTANTIATE(double)
NABLA_COPY_INSTANTIATE(int64_t)

}  // namespace nabla::cuda
