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
