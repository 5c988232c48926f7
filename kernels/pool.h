// Pooling and upsampling family: NCHW, contiguous; every op works plane by plane (n, c).
//
//   max_pool2d     x [N,C,H,W] -> y [N,C,P,Q]   y[p,q] = max over the window, padding is -inf
//                  (never chosen); argmax[p,q] = h*W + w, the flat index in the H*W plane.
//                  P = (H + 2*ph - kh) / sh + 1 (floor; Q likewise).
//   avg_pool2d     x [N,C,H,W] -> y [N,C,P,Q]   y[p,q] = sum over the window / (kh*kw).
//                  count_include_pad = true (PyTorch's default): padded zeros count in the
//                  divisor. Without ceil_mode no window passes the padded border, so the
//                  divisor is always kh*kw.
//   global_avg_pool  x [N,C,H,W] -> y [N,C]     y[n,c] = mean over H*W.
//   upsample_nearest2d   x [N,C,H,W] -> y [N,C,OH,OW]  y[i,j] = x[floor(i*H/OH), floor(j*W/OW)]
//                  (PyTorch's mode='nearest'; here the index is computed exactly in integers).
//   upsample_bilinear2d  x [N,C,H,W] -> y [N,C,OH,OW], align_corners = false as in PyTorch:
//                  src = max(0, (i + 0.5) * H/OH - 0.5), h0 = floor(src), h1 = min(h0+1, H-1),
//                  l = src - h0; y = (1-l)*x[h0] + l*x[h1] along each axis, rows then columns.
//
// Backward of each op is the adjoint of its forward: gradients scatter to the inputs that were
// read, adding up where windows overlap or several outputs read one input. Input gradients are
// written (=): they are zeroed first, never read.
#pragma once

#include <cstdint>

namespace nabla {

struct Pool2dParams {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
  int64_t P = 0, Q = 0;  // output height and width: call finalize()

  // requires: op names the caller for the message ("max_pool2d", "avg_pool2d").
  // ensures:  P = (H + 2*ph - kh)/sh + 1 and Q likewise. Throws nabla::Error naming op and
  //           every size if a size is not positive, a stride < 1, a padding < 0 or more than
  //           half the kernel (as PyTorch requires), or the output would be empty.
  void finalize(const char* op);
};

namespace cpu {

// requires: p finalized; x [N,C,H,W]; y and argmax [N,C,P,Q].
// ensures:  y and argmax written (=). NaN propagates (a NaN wins the window, like PyTorch);
//           on ties the first maximum in row-major window order wins.
template <typename T>
void max_pool2d_forward(const Pool2dParams& p, const T* x, T* y, int64_t* argmax);

// requires: p finalized; dy [N,C,P,Q]; argmax from max_pool2d_forward; dx [N,C,H,W].
// ensures:  dx written (=): dx[h*W+w] = sum of dy over the outputs whose argmax is h*W+w.
template <typename T>
void max_pool2d_backward(const Pool2dParams& p, const T* dy, const int64_t* argmax, T* dx);

// requires: p finalized; x [N,C,H,W]; y [N,C,P,Q].
// ensures:  y written (=), divisor kh*kw (count_include_pad = true).
template <typename T>
void avg_pool2d_forward(const Pool2dParams& p, const T* x, T* y);

// requires: p finalized; dy [N,C,P,Q]; dx [N,C,H,W].
// ensures:  dx written (=): each dy/(kh*kw) added to every in-bounds pixel of its window.
template <typename T>
void avg_pool2d_backward(const Pool2dParams& p, const T* dy, T* dx);

// requires: N, C >= 0, H, W >= 1; x [N,C,H,W]; y [N,C].
// ensures:  y written (=) with the mean of each plane.
template <typename T>
void global_avg_pool_forward(int64_t N, int64_t C, int64_t H, int64_t W, const T* x, T* y);

// requires: as global_avg_pool_forward; dy [N,C]; dx [N,C,H,W].
// ensures:  dx written (=): dx[n,c,h,w] = dy[n,c] / (H*W).
template <typename T>
void global_avg_pool_backward(int64_t N, int64_t C, int64_t H, int64_t W, const T* dy, T* dx);

// requires: N, C >= 0; H, W, OH, OW >= 1; x [N,C,H,W]; y [N,C,OH,OW].
// ensures:  y written (=), y[i,j] = x[i*H/OH, j*W/OW] (integer division).
template <typename T>
void upsample_nearest2d_forward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                const T* x, T* y);

// requires: as upsample_nearest2d_forward; dy [N,C,OH,OW]; dx [N,C,H,W].
// ensures:  dx written (=): each input pixel gets the sum of dy over the outputs that copy it.
template <typename T>
void upsample_nearest2d_backward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 const T* dy, T* dx);

// requires: N, C >= 0; H, W, OH, OW >= 1; x [N,C,H,W]; y [N,C,OH,OW].
// ensures:  y written (=) by bilinear interpolation, align_corners = false (see header).
template <typename T>
void upsample_bilinear2d_forward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 const T* x, T* y);

// requires: as upsample_bilinear2d_forward; dy [N,C,OH,OW]; dx [N,C,H,W].
// ensures:  dx written (=): each dy scattered to its four source pixels with the forward's
//           weights. Deterministic: a plane is summed by one thread in a fixed order.
template <typename T>
void upsample_bilinear2d_backward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                                  int64_t OW, const T* dy, T* dx);

}  // namespace cpu

// CUDA twins (kernels/cuda/pool.cu), same contracts; every array is device memory, the
// parameters host memory. The backward kernels gather instead of scattering: no atomics.
namespace cuda {
template <typename T>
void max_pool2d_forward(const Pool2dParams& p, const T* x, T* y, int64_t* argmax);
template <typename T>
void max_pool2d_backward(const Pool2dParams& p, const T* dy, const int64_t* argmax, T* dx);
template <typename T>
void avg_pool2d_forward(const Pool2dParams& p, const T* x, T* y);
template <typename T>
void avg_pool2d_backward(const Pool2dParams& p, const T* dy, T* dx);
template <typename T>
void global_avg_pool_forward(int64_t N, int64_t C, int64_t H, int64_t W, const T* x, T* y);
template <typename T>
void global_avg_pool_backward(int64_t N, int64_t C, int64_t H, int64_t W, const T* dy, T* dx);
template <typename T>
void upsample_nearest2d_forward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                const T* x, T* y);
template <typename T>
void upsample_nearest2d_backward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 const T* dy, T* dx);
template <typename T>
void upsample_bilinear2d_forward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 const T* x, T* y);
template <typename T>
void upsample_bilinear2d_backward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                                  int64_t OW, const T* dy, T* dx);
}  // namespace cuda
}  // namespace nabla

// The explicit instantiations, one list for both backends: kernels/cpu/pool.cpp and
// kernels/cuda/pool.cu expand it in their namespace for each element type.
#define NABLA_POOL_INSTANTIATE(T)                                                              \
  template void max_pool2d_forward<T>(const Pool2dParams&, const T*, T*, int64_t*);            \
  template void max_pool2d_backward<T>(const Pool2dParams&, const T*, const int64_t*, T*);     \
  template void avg_pool2d_forward<T>(const Pool2dParams&, const T*, T*);                      \
  template void avg_pool2d_backward<T>(const Pool2dParams&, const T*, T*);                     \
  template void global_avg_pool_forward<T>(int64_t, int64_t, int64_t, int64_t, const T*, T*);  \
  template void global_avg_pool_backward<T>(int64_t, int64_t, int64_t, int64_t, const T*, T*); \
  template void upsample_nearest2d_forward<T>(int64_t, int64_t, int64_t, int64_t, int64_t,     \
                                              int64_t, const T*, T*);                          \
  template void upsample_nearest2d_backward<T>(int64_t, int64_t, int64_t, int64_t, int64_t,    \
                                               int64_t, const T*, T*);                         \
  template void upsample_bilinear2d_forward<T>(int64_t, int64_t, int64_t, int64_t, int64_t,    \
                                               int64_t, const T*, T*);                         \
  template void upsample_bilinear2d_backward<T>(int64_t, int64_t, int64_t, int64_t, int64_t,   \
                                                int64_t, const T*, T*);
