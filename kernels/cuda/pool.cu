// Pooling and upsampling on the GPU: max/avg pool 2d, global average pool, nearest and
// bilinear (align_corners = false) upsampling, forward and backward. NCHW, contiguous; the
// math, shapes and contracts are in kernels/pool.h.
//
// Kernels (version 1 of each; nothing has run on a GPU yet). Every forward maps one thread
// to one output element; every backward is a gather: one thread per INPUT element sums the
// gradients of the outputs that read it, so there are no atomics and no races, and the result
// is the same on every run whether or not nabla::deterministic() is set.
//   max_pool_forward_kernel      one thread per output (n,c,p,q): the window in row-major
//                                order with the CPU's select (NaN wins, first maximum on ties):
//                                y and argmax equal the CPU's bit for bit
//   max_pool_backward_kernel     one thread per input (n,c,h,w): the windows that contain it,
//                                adding dy where argmax points here, in output order (the
//                                CPU's order, so the same bits)
//   avg_pool_forward_kernel      one thread per output: the clipped window summed in
//                                row-major order, times 1/(kh*kw)
//   avg_pool_backward_kernel     one thread per input: dy * 1/(kh*kw) of every window holding it
//   global_avg_forward_kernel    one warp per (n,c) plane: strided sum, warp_sum tree
//   global_avg_backward_kernel   one thread per input: dy / (H*W)
//   nearest_forward_kernel       one thread per output: integer source index
//   nearest_backward_kernel      one thread per input: the output rows i with i*H/OH = h form
//                                the range [ceil(h*OH/H), ceil((h+1)*OH/H)), columns likewise
//   bilinear_forward_kernel      one thread per output: the CPU's Lerp taps computed in place
//   bilinear_backward_kernel     one thread per input: the outputs reading row h are those whose
//                                first tap is h-1 or h; taps are monotone in the output index,
//                                so a binary search finds the first, and a walk the rest
#include <nabla/device.h>

#include "kernels/cuda/common.cuh"
#include "kernels/pool.h"

namespace nabla::cuda {

namespace {

__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) {
  return a < b ? a : b;
}
__device__ __forceinline__ int64_t max64(int64_t a, int64_t b) {
  return a > b ? a : b;
}

#define NABLA_GRID_STRIDE(k, n)                                             \
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < (n); \
       k += int64_t(gridDim.x) * blockDim.x)

// Outputs o in [lo, hi] (empty when lo > hi) whose window [o*s - pad, o*s - pad + k) holds
// input row h: o*s <= h + pad < o*s + k.
__device__ __forceinline__ void windows_holding(int64_t h, int64_t s, int64_t pad, int64_t k,
                                                int64_t P, int64_t& lo, int64_t& hi) {
  const int64_t a = h + pad;  // >= 0
  lo = a < k ? 0 : (a - k) / s + 1;
  hi = min64(a / s, P - 1);
}

template <typename T>
__global__ void max_pool_forward_kernel(Pool2dParams p, int64_t n, const T* __restrict__ x,
                                        T* __restrict__ y, int64_t* __restrict__ argmax) {
  NABLA_GRID_STRIDE(k, n) {
    const int64_t q = k % p.Q, t = k / p.Q, i = t % p.P, nc = t / p.P;
    const int64_t h0 = max64(i * p.sh - p.ph, 0), h1 = min64(i * p.sh - p.ph + p.kh, p.H);
    const int64_t w0 = max64(q * p.sw - p.pw, 0), w1 = min64(q * p.sw - p.pw + p.kw, p.W);
    const T* xp = x + nc * p.H * p.W;
    // finalize() keeps pad <= k/2, so the clipped window is never empty.
    int64_t best_idx = h0 * p.W + w0;
    T best = xp[best_idx];
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) {
        const T v = xp[h * p.W + w];
        if ((v > best) | (v != v)) {  // NaN replaces anything; nothing replaces a NaN
          best = v;
          best_idx = h * p.W + w;
        }
      }
    y[k] = best;
    argmax[k] = best_idx;
  }
}

template <typename T>
__global__ void max_pool_backward_kernel(Pool2dParams p, int64_t n, const T* __restrict__ dy,
                                         const int64_t* __restrict__ argmax, T* __restrict__ dx) {
  NABLA_GRID_STRIDE(k, n) {
    const int64_t w = k % p.W, t = k / p.W, h = t % p.H, nc = t / p.H;
    int64_t i0, i1, j0, j1;
    windows_holding(h, p.sh, p.ph, p.kh, p.P, i0, i1);
    windows_holding(w, p.sw, p.pw, p.kw, p.Q, j0, j1);
    const int64_t self = h * p.W + w, base = nc * p.P * p.Q;
    T acc = 0;
    for (int64_t i = i0; i <= i1; ++i)
      for (int64_t j = j0; j <= j1; ++j) {
        const int64_t o = base + i * p.Q + j;
        if (argmax[o] == self) acc += dy[o];
      }
    dx[k] = acc;
  }
}

template <typename T>
__global__ void avg_pool_forward_kernel(Pool2dParams p, int64_t n, T inv, const T* __restrict__ x,
                                        T* __restrict__ y) {
  NABLA_GRID_STRIDE(k, n) {
    const int64_t q = k % p.Q, t = k / p.Q, i = t % p.P, nc = t / p.P;
    const int64_t h0 = max64(i * p.sh - p.ph, 0), h1 = min64(i * p.sh - p.ph + p.kh, p.H);
    const int64_t w0 = max64(q * p.sw - p.pw, 0), w1 = min64(q * p.sw - p.pw + p.kw, p.W);
    const T* xp = x + nc * p.H * p.W;
    T acc = 0;
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) acc += xp[h * p.W + w];
    y[k] = acc * inv;  // padded zeros count in the divisor (count_include_pad)
  }
}

template <typename T>
__global__ void avg_pool_backward_kernel(Pool2dParams p, int64_t n, T inv, const T* __restrict__ dy,
                                         T* __restrict__ dx) {
  NABLA_GRID_STRIDE(k, n) {
    const int64_t w = k % p.W, t = k / p.W, h = t % p.H, nc = t / p.H;
    int64_t i0, i1, j0, j1;
    windows_holding(h, p.sh, p.ph, p.kh, p.P, i0, i1);
    windows_holding(w, p.sw, p.pw, p.kw, p.Q, j0, j1);
    const T* dyp = dy + nc * p.P * p.Q;
    T acc = 0;
    for (int64_t i = i0; i <= i1; ++i)
      for (int64_t j = j0; j <= j1; ++j) acc += dyp[i * p.Q + j] * inv;
    dx[k] = acc;
  }
}

// blockDim.x is a multiple of 32, so a warp never straddles two planes and the loop bound is
// the same for its 32 lanes (warp_sum needs all of them).
template <typename T>
__global__ void global_avg_forward_kernel(int64_t planes, int64_t HW, const T* __restrict__ x,
                                          T* __restrict__ y) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (int64_t(gridDim.x) * blockDim.x) >> 5;
  for (int64_t nc = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5; nc < planes;
       nc += warps) {
    const T* xp = x + nc * HW;
    T acc = 0;
    for (int64_t i = lane; i < HW; i += 32) acc += xp[i];
    acc = warp_sum(acc);
    if (lane == 0) y[nc] = acc / T(HW);
  }
}

template <typename T>
__global__ void global_avg_backward_kernel(int64_t n, int64_t HW, const T* __restrict__ dy,
                                           T* __restrict__ dx) {
  NABLA_GRID_STRIDE(k, n) {
    dx[k] = dy[k / HW] / T(HW);
  }
}

template <typename T>
__global__ void nearest_forward_kernel(int64_t n, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                       const T* __restrict__ x, T* __restrict__ y) {
  NABLA_GRID_STRIDE(k, n) {
    const int64_t j = k % OW, t = k / OW, i = t % OH, nc = t / OH;
    y[k] = x[(nc * H + i * H / OH) * W + j * W / OW];
  }
}

// First output index whose source floor(i*in/out) reaches `h`: ceil(h*out/in).
__device__ __forceinline__ int64_t nearest_first(int64_t h, int64_t in, int64_t out) {
  return (h * out + in - 1) / in;
}

template <typename T>
__global__ void nearest_backward_kernel(int64_t n, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                        const T* __restrict__ dy, T* __restrict__ dx) {
  NABLA_GRID_STRIDE(k, n) {
    const int64_t w = k % W, t = k / W, h = t % H, nc = t / H;
    const int64_t i0 = nearest_first(h, H, OH), i1 = nearest_first(h + 1, H, OH);
    const int64_t j0 = nearest_first(w, W, OW), j1 = nearest_first(w + 1, W, OW);
    const T* dyp = dy + nc * OH * OW;
    T acc = 0;  // rows then columns ascending: the CPU's order of additions
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j = j0; j < j1; ++j) acc += dyp[i * OW + j];
    dx[k] = acc;
  }
}

// One output index's taps along an axis: the CPU's Lerp (kernels/cpu/pool.cpp) for one i, in
// the same T arithmetic, so that float results round as PyTorch's float kernel does.
template <typename T>
struct Tap {
  int64_t i0, i1;
  T l0, l1;  // weights of i0 and i1
};

template <typename T>
__device__ __forceinline__ Tap<T> lerp_tap(int64_t i, int64_t in, int64_t out) {
  const T scale = T(in) / T(out);
  T src = scale * (T(i) + T(0.5)) - T(0.5);
  src = src < T(0) ? T(0) : src;
  Tap<T> t;
  t.i0 = min64(int64_t(src), in - 1);
  t.i1 = t.i0 + (t.i0 < in - 1 ? 1 : 0);
  T l1 = src - T(t.i0);
  l1 = l1 < T(0) ? T(0) : (l1 > T(1) ? T(1) : l1);
  t.l1 = l1;
  t.l0 = T(1) - l1;
  return t;
}

// The weight with which output index i reads input index h along an axis (0 if it does not).
// When i0 == i1 (the last input) both taps read h and both weights count.
template <typename T>
__device__ __forceinline__ T tap_weight(const Tap<T>& t, int64_t h) {
  return (t.i0 == h ? t.l0 : T(0)) + (t.i1 == h ? t.l1 : T(0));
}

// The first output index whose first tap i0 is >= h. i0 is non-decreasing in the output index
// (each step of lerp_tap is monotone, rounding included), so binary search is exact.
template <typename T>
__device__ int64_t first_tap_at_least(int64_t h, int64_t in, int64_t out) {
  int64_t lo = 0, hi = out;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (lerp_tap<T>(mid, in, out).i0 < h)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

template <typename T>
__global__ void bilinear_forward_kernel(int64_t n, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                        const T* __restrict__ x, T* __restrict__ y) {
  NABLA_GRID_STRIDE(k, n) {
    const int64_t j = k % OW, t = k / OW, i = t % OH, nc = t / OH;
    const Tap<T> th = lerp_tap<T>(i, H, OH), tw = lerp_tap<T>(j, W, OW);
    const T* r0 = x + (nc * H + th.i0) * W;
    const T* r1 = x + (nc * H + th.i1) * W;
    y[k] = th.l0 * (tw.l0 * r0[tw.i0] + tw.l1 * r0[tw.i1]) +
           th.l1 * (tw.l0 * r1[tw.i0] + tw.l1 * r1[tw.i1]);
  }
}

// The outputs reading input (h, w) are rows i with i0(i) in {h-1, h} (i1 = i0 + 1 except at
// the last row) and likewise columns: contiguous ranges, found by binary search and walked.
template <typename T>
__global__ void bilinear_backward_kernel(int64_t n, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                         const T* __restrict__ dy, T* __restrict__ dx) {
  NABLA_GRID_STRIDE(k, n) {
    const int64_t w = k % W, t = k / W, h = t % H, nc = t / H;
    const int64_t jb = first_tap_at_least<T>(w - 1, W, OW);
    const T* dyp = dy + nc * OH * OW;
    T acc = 0;
    for (int64_t i = first_tap_at_least<T>(h - 1, H, OH); i < OH; ++i) {
      const Tap<T> th = lerp_tap<T>(i, H, OH);
      if (th.i0 > h) break;
      const T wh = tap_weight(th, h);
      for (int64_t j = jb; j < OW; ++j) {
        const Tap<T> tw = lerp_tap<T>(j, W, OW);
        if (tw.i0 > w) break;
        acc += tap_weight(tw, w) * (wh * dyp[i * OW + j]);  // the CPU's l_w * (l_h * dy)
      }
    }
    dx[k] = acc;
  }
}

#undef NABLA_GRID_STRIDE

}  // namespace

template <typename T>
void max_pool2d_forward(const Pool2dParams& p, const T* x, T* y, int64_t* argmax) {
  const int64_t n = p.N * p.C * p.P * p.Q;
  if (n == 0) return;
  max_pool_forward_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(p, n, x, y, argmax);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void max_pool2d_backward(const Pool2dParams& p, const T* dy, const int64_t* argmax, T* dx) {
  const int64_t n = p.N * p.C * p.H * p.W;
  if (n == 0) return;
  max_pool_backward_kernel<T>
      <<<blocks_for(n), kThreads, 0, current_stream()>>>(p, n, dy, argmax, dx);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void avg_pool2d_forward(const Pool2dParams& p, const T* x, T* y) {
  const int64_t n = p.N * p.C * p.P * p.Q;
  if (n == 0) return;
  const T inv = T(1) / static_cast<T>(p.kh * p.kw);
  avg_pool_forward_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(p, n, inv, x, y);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void avg_pool2d_backward(const Pool2dParams& p, const T* dy, T* dx) {
  const int64_t n = p.N * p.C * p.H * p.W;
  if (n == 0) return;
  const T inv = T(1) / static_cast<T>(p.kh * p.kw);
  avg_pool_backward_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(p, n, inv, dy, dx);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void global_avg_pool_forward(int64_t N, int64_t C, int64_t H, int64_t W, const T* x, T* y) {
  const int64_t planes = N * C;
  if (planes == 0) return;
  constexpr int kWarpsPerBlock = kThreads / 32;
  global_avg_forward_kernel<T>
      <<<blocks_for(planes, kWarpsPerBlock), kThreads, 0, current_stream()>>>(planes, H * W, x, y);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void global_avg_pool_backward(int64_t N, int64_t C, int64_t H, int64_t W, const T* dy, T* dx) {
  const int64_t n = N * C * H * W;
  if (n == 0) return;
  global_avg_backward_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(n, H * W, dy, dx);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void upsample_nearest2d_forward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                const T* x, T* y) {
  const int64_t n = N * C * OH * OW;
  if (n == 0) return;
  nearest_forward_kernel<T>
      <<<blocks_for(n), kThreads, 0, current_stream()>>>(n, H, W, OH, OW, x, y);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void upsample_nearest2d_backward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 const T* dy, T* dx) {
  const int64_t n = N * C * H * W;
  if (n == 0) return;
  nearest_backward_kernel<T>
      <<<blocks_for(n), kThreads, 0, current_stream()>>>(n, H, W, OH, OW, dy, dx);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void upsample_bilinear2d_forward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 const T* x, T* y) {
  const int64_t n = N * C * OH * OW;
  if (n == 0) return;
  bilinear_forward_kernel<T>
      <<<blocks_for(n), kThreads, 0, current_stream()>>>(n, H, W, OH, OW, x, y);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void upsample_bilinear2d_backward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                                  int64_t OW, const T* dy, T* dx) {
  const int64_t n = N * C * H * W;
  if (n == 0) return;
  bilinear_backward_kernel<T>
      <<<blocks_for(n), kThreads, 0, current_stream()>>>(n, H, W, OH, OW, dy, dx);
  CUDA_CHECK_LAUNCH();
}

NABLA_POOL_INSTANTIATE(float)
NABLA_POOL_INSTANTIATE(double)

}  // namespace nabla::cuda
