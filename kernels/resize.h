// Resize family: bilinear upsampling with align_corners = true (PyTorch's
// nn.Upsample(scale_factor, mode="bilinear", align_corners=True), the decoder of U-Net with
// bilinear=True). NCHW, contiguous; planes (n, c) are independent. The align_corners = false
// variant and nearest upsampling are in kernels/pool.h.
//
//   upsample_bilinear2d_aligned   x [N,C,H,W] -> y [N,C,OH,OW]. Along each axis the corners of
//                  input and output coincide: output index i reads the source position
//                    src = i * (in - 1) / (out - 1)      (0 when out == 1)
//                  h0 = floor(src), h1 = min(h0 + 1, in - 1), l = src - h0, and
//                    y[i, j] = (1-l_i) ((1-l_j) x[h0, w0] + l_j x[h0, w1])
//                            +    l_i  ((1-l_j) x[h1, w0] + l_j x[h1, w1])
//                  The scale (in - 1) / (out - 1) is computed in T, as PyTorch does, so float
//                  results round like PyTorch's float kernel.
//
// Backward is the adjoint of the forward: each dy spreads to the four pixels it was read from
// with the same weights. Input gradients are written (=), never read.
#pragma once

#include <cstdint>

namespace nabla {
namespace cpu {

// requires: N, C >= 0; H, W, OH, OW >= 1; x [N,C,H,W]; y [N,C,OH,OW].
// ensures:  y written (=) as in the header comment.
template <typename T>
void upsample_bilinear2d_aligned_forward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                                         int64_t OW, const T* x, T* y);

// requires: as upsample_bilinear2d_aligned_forward; dy [N,C,OH,OW]; dx [N,C,H,W].
// ensures:  dx written (=): dx[h, w] = sum over the outputs (i, j) reading (h, w) of
//           weight(i, j -> h, w) * dy[i, j]. Deterministic: a plane is summed by one thread in
//           output order.
template <typename T>
void upsample_bilinear2d_aligned_backward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                                          int64_t OW, const T* dy, T* dx);

}  // namespace cpu

// CUDA twins (kernels/cuda/resize.cu), same contracts; arrays in device memory. The backward
// kernel gathers (one thread per input pixel): no atomics.
namespace cuda {
template <typename T>
void upsample_bilinear2d_aligned_forward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                                         int64_t OW, const T* x, T* y);
template <typename T>
void upsample_bilinear2d_aligned_backward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                                          int64_t OW, const T* dy, T* dx);
}  // namespace cuda
}  // namespace nabla

// The explicit instantiations, one list for both backends: kernels/cpu/resize.cpp and
// kernels/cuda/resize.cu expand it in their namespace for each element type.
#define NABLA_RESIZE_INSTANTIATE(T)                                                         \
  template void upsample_bilinear2d_aligned_forward<T>(int64_t, int64_t, int64_t, int64_t,  \
                                                       int64_t, int64_t, const T*, T*);     \
  template void upsample_bilinear2d_aligned_backward<T>(int64_t, int64_t, int64_t, int64_t, \
                                                        int64_t, int64_t, const T*, T*);
