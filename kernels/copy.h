// Copy family: strided gather into contiguous memory, dtype conversion, fill, and the
// scatter that undoes a gather (used by the backward of narrow/slice/pad/expand views).
//
//   strided_copy: dst[i] = src[offset(i)], i row-major over `shape`, offset from src strides.
//   A stride of 0 repeats an element, so strided_copy also materialises broadcasts.
#pragma once

#include <cstdint>

namespace nabla {
constexpr int kMaxDims = 8;
}

namespace nabla::cpu {

// requires: ndim <= kMaxDims; src valid at every strided offset; dst holds prod(shape).
// ensures:  dst written (=) in row-major order.
template <typename T>
void strided_copy(int ndim, const int64_t* shape, const T* src, const int64_t* src_strides, T* dst);

// requires: dst valid at every strided offset of `shape`; offsets distinct (no overlap).
// ensures:  dst[offset(i)] = src[i] (=) for each row-major i; other elements untouched.
template <typename T>
void strided_scatter(int ndim, const int64_t* shape, const T* src, T* dst,
                     const int64_t* dst_strides);

// ensures: dst[i] = static_cast<D>(src[i]) for i < n.
template <typename S, typename D>
void convert(const S* src, D* dst, int64_t n);

// ensures: dst[i] = value for i < n.
template <typename T>
void fill(T* dst, int64_t n, T value);

}  // namespace nabla::cpu

// CUDA twins (kernels/cuda/copy.cu), same contracts; shape and stride arrays are host memory,
// the element pointers device memory.
namespace nabla::cuda {
template <typename T>
void strided_copy(int ndim, const int64_t* shape, const T* src, const int64_t* src_strides, T* dst);
template <typename T>
void strided_scatter(int ndim, const int64_t* shape, const T* src, T* dst,
                     const int64_t* dst_strides);
template <typename S, typename D>
void convert(const S* src, D* dst, int64_t n);
template <typename T>
void fill(T* dst, int64_t n, T value);
}  // namespace nabla::cuda

// The explicit instantiations, one list for both backends: kernels/cpu/copy.cpp and
// kernels/cuda/copy.cu expand it in their namespace for each element type.
#define NABLA_COPY_INSTANTIATE(T)                                                      \
  template void strided_copy<T>(int, const int64_t*, const T*, const int64_t*, T*);    \
  template void strided_scatter<T>(int, const int64_t*, const T*, T*, const int64_t*); \
  template void fill<T>(T*, int64_t, T);                                               \
  template void convert<T, float>(const T*, float*, int64_t);                          \
  template void convert<T, double>(const T*, double*, int64_t);                        \
  template void convert<T, int64_t>(const T*, int64_t*, int64_t);
