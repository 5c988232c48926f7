// Softmax family: softmax and log_softmax along one axis, and inverted dropout.
//
// Softmax works on one axis of a contiguous tensor viewed as [outer, D, inner] (so dim 1 of an
// NCHW tensor needs no permute: outer = N, D = C, inner = H*W). For each (o, i):
//
//   m        = max_d x[o, d, i]                       (subtracted so exp never overflows)
//   lse      = m + log sum_d exp(x[o, d, i] - m)
//   softmax      y = exp(x - lse)                     dx = y * (dy - sum_d dy*y)
//   log_softmax  y = x - lse                          dx = dy - exp(y) * sum_d dy
//
// log_softmax is evaluated as (x - m) - log(sum), so a rounded lse never enters the output.
// The sums over d accumulate in double for float inputs (as kernels/reduce.h does). A NaN
// anywhere in a slice makes the whole slice NaN, as in PyTorch.
//
// Dropout (inverted) on n contiguous elements, with the mask drawn from the Philox stream
// (seed, offset) of kernels/random.h: element i uses the i-th uniform U_i of that stream in the
// precision of T (exactly what cpu::uniform<T> would draw), so the mask is reproducible from the
// generator state and the same on every device.
//
//   mask[i] = U_i >= p ? 1 / (1 - p) : 0          y = x * mask        dx = dy * mask
//
// p = 1 keeps nothing (mask all 0, never 0 * inf). The caller advances its generator by
// philox_blocks_float(n) or philox_blocks_double(n) counters.
#pragma once

#include <cstdint>

namespace nabla::cpu {

// requires: x, y [outer, D, inner] contiguous, distinct.
// ensures:  y written (=) with softmax over d; every slice of y sums to 1.
template <typename T>
void softmax_forward(const T* x, T* y, int64_t outer, int64_t D, int64_t inner);

// requires: y the softmax_forward output, dy the gradient of y, all [outer, D, inner].
// ensures:  dx written (=): dx = y * (dy - sum_d dy*y).
template <typename T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t D, int64_t inner);

// requires: x, y [outer, D, inner] contiguous, distinct.
// ensures:  y written (=) with x - logsumexp_d x.
template <typename T>
void log_softmax_forward(const T* x, T* y, int64_t outer, int64_t D, int64_t inner);

// requires: y the log_softmax_forward output, dy the gradient of y, all [outer, D, inner].
// ensures:  dx written (=): dx = dy - exp(y) * sum_d dy.
template <typename T>
void log_softmax_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t D, int64_t inner);

// requires: 0 <= p <= 1; x, mask, y hold n elements; (seed, offset) a Philox stream position.
// ensures:  mask written (=) with 1/(1-p) where U_i >= p and 0 elsewhere; y = x * mask (=).
template <typename T>
void dropout_forward(uint64_t seed, uint64_t offset, const T* x, T* mask, T* y, int64_t n, T p);

// requires: mask from dropout_forward; dy, dx hold n elements.
// ensures:  dx written (=): dx = dy * mask.
template <typename T>
void dropout_backward(const T* mask, const T* dy, T* dx, int64_t n);

}  // namespace nabla::cpu

// CUDA twins (kernels/cuda/softmax.cu), same contracts; every pointer is device memory. The
// dropout mask is the same bits as the CPU's for the same (seed, offset).
namespace nabla::cuda {
template <typename T>
void softmax_forward(const T* x, T* y, int64_t outer, int64_t D, int64_t inner);
template <typename T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t D, int64_t inner);
template <typename T>
void log_softmax_forward(const T* x, T* y, int64_t outer, int64_t D, int64_t inner);
template <typename T>
void log_softmax_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t D, int64_t inner);
template <typename T>
void dropout_forward(uint64_t seed, uint64_t offset, const T* x, T* mask, T* y, int64_t n, T p);
template <typename T>
void dropout_backward(const T* mask, const T* dy, T* dx, int64_t n);
}  // namespace nabla::cuda

// The explicit instantiations, one list for both backends: kernels/cpu/softmax.cpp and
// kernels/cuda/softmax.cu expand it in their namespace for each element type.
#define NABLA_SOFTMAX_INSTANTIATE(T)                                                        \
  template void softmax_forward<T>(const T*, T*, int64_t, int64_t, int64_t);                \
  template void softmax_backward<T>(const T*, const T*, T*, int64_t, int64_t, int64_t);     \
  template void log_softmax_forward<T>(const T*, T*, int64_t, int64_t, int64_t);            \
  template void log_softmax_backward<T>(const T*, const T*, T*, int64_t, int64_t, int64_t); \
  template void dropout_forward<T>(uint64_t, uint64_t, const T*, T*, T*, int64_t, T);       \
  template void dropout_backward<T>(const T*, const T*, T*, int64_t);
