// Bilinear upsampling with align_corners = true on the GPU, forward and backward. NCHW,
// contiguous; math and contracts in kernels/resize.h.
//
// Kernels (version 1; not yet run on a GPU when written, checked by tests/test_cuda_resize.cpp):
//   aligned_forward_kernel    one thread per output (n,c,i,j): the CPU's taps computed in place,
//                             in the same T arithmetic
//   aligned_backward_kernel   one thread per input (n,c,h,w): a gather over the outputs that read
//                             it. Those are the rows i whose first tap i0(i) is h-1 or h (and
//                             likewise columns); i0 is non-decreasing in i, so a binary search
//                             finds the first and a walk the rest. No atomics, so the result is
//                             the same on every run.
#include "kernels/cuda/common.cuh"
#include "kernels/resize.h"

namespace nabla::cuda {

namespace {

#define NABLA_GRID_STRIDE(k, n)                                             \
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < (n); \
       k += int64_t(gridDim.x) * blockDim.x)

template <typename T>
struct AlignedTap {
  int64_t i0, i1;
  T l0, l1;  // weights of i0 and i1
};

// The taps of output index i along an axis: kernels/cpu/resize.cpp's AlignedTaps for one i.
template <typename T>
__device__ __forceinline__ AlignedTap<T> aligned_tap(int64_t i, int64_t in, int64_t out) {
  const T scale = out > 1 ? T(in - 1) / T(out - 1) : T(0);
  const T src = scale * T(i);
  AlignedTap<T> t;
  t.i0 = int64_t(src);
  t.i0 = t.i0 < in - 1 ? t.i0 : in - 1;
  t.i1 = t.i0 + (t.i0 < in - 1 ? 1 : 0);
  T l1 = src - T(t.i0);
  l1 = l1 < T(0) ? T(0) : (l1 > T(1) ? T(1) : l1);
  t.l1 = l1;
  t.l0 = T(1) - l1;
  return t;
}

// The weight with which a tap reads input index h (0 if it does not). At the last input
// i0 == i1 and both weights count.
template <typename T>
__device__ __forceinline__ T aligned_weight(const AlignedTap<T>& t, int64_t h) {
  return (t.i0 == h ? t.l0 : T(0)) + (t.i1 == h ? t.l1 : T(0));
}

// The first output index whose first tap is >= h (out when there is none).
template <typename T>
__device__ int64_t first_aligned_tap_at_least(int64_t h, int64_t in, int64_t out) {
  int64_t lo = 0, hi = out;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (aligned_tap<T>(mid, in, out).i0 < h)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

template <typename T>
__global__ void aligned_forward_kernel(int64_t n, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                       const T* __restrict__ x, T* __restrict__ y) {
  NABLA_GRID_STRIDE(k, n) {
    const int64_t j = k % OW, t = k / OW, i = t % OH, nc = t / OH;
    const AlignedTap<T> th = aligned_tap<T>(i, H, OH), tw = aligned_tap<T>(j, W, OW);
    const T* r0 = x + (nc * H + th.i0) * W;
    const T* r1 = x + (nc * H + th.i1) * W;
    y[k] = th.l0 * (tw.l0 * r0[tw.i0] + tw.l1 * r0[tw.i1]) +
           th.l1 * (tw.l0 * r1[tw.i0] + tw.l1 * r1[tw.i1]);
  }
}

template <typename T>
__global__ void aligned_backward_kernel(int64_t n, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                        const T* __restrict__ dy, T* __restrict__ dx) {
  NABLA_GRID_STRIDE(k, n) {
    const int64_t w = k % W, t = k / W, h = t % H, nc = t / H;
    const int64_t jb = first_aligned_tap_at_least<T>(w - 1, W, OW);
    const T* dyp = dy + nc * OH * OW;
    T acc = 0;
    for (int64_t i = first_aligned_tap_at_least<T>(h - 1, H, OH); i < OH; ++i) {
      const AlignedTap<T> th = aligned_tap<T>(i, H, OH);
      if (th.i0 > h) break;
      const T wh = aligned_weight(th, h);
      for (int64_t j = jb; j < OW; ++j) {
        const AlignedTap<T> tw = aligned_tap<T>(j, W, OW);
        if (tw.i0 > w) break;
        acc += aligned_weight(tw, w) * (wh * dyp[i * OW + j]);  // the CPU's l_w * (l_h * dy)
      }
    }
    dx[k] = acc;
  }
}

#undef NABLA_GRID_STRIDE

}  // namespace

template <typename T>
void upsample_bilinear2d_aligned_forward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                                         int64_t OW, const T* x, T* y) {
  const int64_t n = N * C * OH * OW;
  if (n == 0) return;
  aligned_forward_kernel<T>
      <<<blocks_for(n), kThreads, 0, current_stream()>>>(n, H, W, OH, OW, x, y);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void upsample_bilinear2d_aligned_backward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                                          int64_t OW, const T* dy, T* dx) {
  const int64_t n = N * C * H * W;
  if (n == 0) return;
  aligned_backward_kernel<T>
      <<<blocks_for(n), kThreads, 0, current_stream()>>>(n, H, W, OH, OW, dy, dx);
  CUDA_CHECK_LAUNCH();
}

NABLA_RESIZE_INSTANTIATE(float)
NABLA_RESIZE_INSTANTIATE(double)

}  // namespace nabla::cuda
