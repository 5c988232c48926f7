// Reduction family over one axis of a contiguous tensor viewed as [outer, D, inner]:
//
//   sum   y[o, i] = sum_d x[o, d, i]
//   var   y[o, i] = sum_d (x[o, d, i] - m[o, i])^2 / (D - correction),  m the mean over d
//   max   y[o, i] = max_d x[o, d, i], idx[o, i] = first d attaining it
//
// Whole-tensor reductions use outer = inner = 1. Multi-axis reductions are composed in
// engine/ops/reduce.cpp. Sums accumulate in double for float inputs: a 784*64-element sum
// in float loses digits the gradient checks would notice.
#pragma once

#include <cstdint>

namespace nabla::cpu {

// ensures: y [outer, inner] written (=).
template <typename T>
void sum_dim(const T* x, T* y, int64_t outer, int64_t D, int64_t inner);

// ensures: y [outer, inner] = variance (two-pass), mean [outer, inner] written when non-null.
template <typename T>
void var_dim(const T* x, T* y, T* mean, int64_t outer, int64_t D, int64_t inner,
             int64_t correction);

// requires: mean from var_dim. ensures: dx[o,d,i] = dy[o,i] * 2 (x - mean) / (D - correction) (=).
template <typename T>
void var_dim_backward(const T* x, const T* mean, const T* dy, T* dx, int64_t outer, int64_t D,
                      int64_t inner, int64_t correction);

// ensures: y, idx [outer, inner] written (=); NaN wins (propagates) like PyTorch.
template <typename T>
void max_dim(const T* x, T* y, int64_t* idx, int64_t outer, int64_t D, int64_t inner);

// ensures: dx [outer, D, inner] written (=): dy at the recorded index, 0 elsewhere.
template <typename T>
void max_dim_backward(const T* dy, const int64_t* idx, T* dx, int64_t outer, int64_t D,
                      int64_t inner);

}  // namespace nabla::cpu

// CUDA twins (kernels/cuda/reduce.cu), same contracts; every pointer is device memory. Sums
// accumulate in double too, in a fixed order (no atomics): deterministic, and equal to the
// CPU's up to the rounding of a differently ordered double sum.
namespace nabla::cuda {
template <typename T>
void sum_dim(const T* x, T* y, int64_t outer, int64_t D, int64_t inner);
template <typename T>
void var_dim(const T* x, T* y, T* mean, int64_t outer, int64_t D, int64_t inner,
             int64_t correction);
template <typename T>
void var_dim_backward(const T* x, const T* mean, const T* dy, T* dx, int64_t outer, int64_t D,
                      int64_t inner, int64_t correction);
template <typename T>
void max_dim(const T* x, T* y, int64_t* idx, int64_t outer, int64_t D, int64_t inner);
template <typename T>
void max_dim_backward(const T* dy, const int64_t* idx, T* dx, int64_t outer, int64_t D,
                      int64_t inner);
}  // namespace nabla::cuda

// The explicit instantiations, one list for both backends: kernels/cpu/reduce.cpp and
// kernels/cuda/reduce.cu expand it in their namespace for each element type.
#define NABLA_REDUCE_INSTANTIATE(T)                                                              \
  template void sum_dim<T>(const T*, T*, int64_t, int64_t, int64_t);                             \
  template void var_dim<T>(const T*, T*, T*, int64_t, int64_t, int64_t, int64_t);                \
  template void var_dim_backward<T>(const T*, const T*, const T*, T*, int64_t, int64_t, int64_t, \
                                    int64_t);                                                    \
  template void max_dim<T>(const T*, T*, int64_t*, int64_t, int64_t, int64_t);                   \
  template void max_dim_backward<T>(const T*, const int64_t*, T*, int64_t, int64_t, int64_t);
