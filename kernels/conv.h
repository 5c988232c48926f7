// Conv family: conv2d forward, backward-input, backward-weight; NCHW, contiguous.
//
//   x [N, C, H, W], w [K, C/groups, R, S], y [N, K, P, Q]
//   P = (H + 2*pad_h - dil_h*(R-1) - 1) / stride_h + 1   (Q likewise)
//   y[n,k,p,q] = b[k] + sum_{c in group(k), r, s} x[n, c, p*sh - ph + r*dh, q*sw - pw + s*dw] *
//   w[k, c', r, s]
//
// conv_transpose2d is NOT a separate kernel: its forward is conv2d_backward_input,
// its backward-input is conv2d_forward, its backward-weight is conv2d_backward_weight
// with x and dy exchanged (see engine/ops/conv.cpp). Every computation is written once.
//
// CPU path: im2col (or col2im) per sample and group, then GEMM (kernels/gemm.h).
// CUDA path: implicit GEMM, the im2col gather done while loading shared-memory tiles.
#pragma once

#include <cstdint>

namespace nabla {

struct Conv2dParams {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input
  int64_t K = 0, R = 0, S = 0;         // output channels, kernel height and width
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
  int64_t groups = 1;
  int64_t P = 0, Q = 0;  // output height and width: call finalize()

  // ensures: P and Q computed from the rest. Throws nabla::Error, naming conv2d and every
  // size, if a size is not positive, a stride or dilation is < 1, a padding is < 0, C or K
  // is not divisible by groups, or the dilated kernel is larger than the padded input.
  // P and Q may be lowered afterwards (never raised): the kernels bounds-check every tap, and
  // conv_transpose2d with stride <= output_padding < dilation needs P = its input height.
  void finalize();
};

namespace cpu {

// requires: p finalized; x [N,C,H,W], w [K,C/g,R,S], bias [K] or nullptr, y [N,K,P,Q].
// ensures:  y written (=), never read.
template <typename T>
void conv2d_forward(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y);

// requires: dy [N,K,P,Q], w [K,C/g,R,S], dx [N,C,H,W].
// ensures:  dx = d(sum y*dy)/dx written (=), never read.
template <typename T>
void conv2d_backward_input(const Conv2dParams& p, const T* dy, const T* w, T* dx);

// requires: x [N,C,H,W], dy [N,K,P,Q], dw [K,C/g,R,S], db [K] or nullptr.
// ensures:  dw += d(sum y*dy)/dw and db += sum_{n,p,q} dy (accumulate).
template <typename T>
void conv2d_backward_weight(const Conv2dParams& p, const T* x, const T* dy, T* dw, T* db);

}  // namespace cpu

// CUDA twins (kernels/cuda/conv.cu), same contracts; every pointer is device memory of the
// current device, and the work is queued on the current stream. backward_weight uses atomics
// across reduction splits unless nabla::deterministic() is on (then a fixed-order reduction).
namespace cuda {
template <typename T>
void conv2d_forward(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y);
template <typename T>
void conv2d_backward_input(const Conv2dParams& p, const T* dy, const T* w, T* dx);
template <typename T>
void conv2d_backward_weight(const Conv2dParams& p, const T* x, const T* dy, T* dw, T* db);
}  // namespace cuda

}  // namespace nabla

// The explicit instantiations, one list for both backends: kernels/cpu/conv.cpp and
// kernels/cuda/conv.cu expand it in their namespace for each element type.
#define NABLA_CONV_INSTANTIATE(T)                                                         \
  template void conv2d_forward<T>(const Conv2dParams&, const T*, const T*, const T*, T*); \
  template void conv2d_backward_input<T>(const Conv2dParams&, const T*, const T*, T*);    \
  template void conv2d_backward_weight<T>(const Conv2dParams&, const T*, const T*, T*, T*);
