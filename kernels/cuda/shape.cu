// Shape family on the GPU: concat / split along one dim and padding (constant, reflect,
// replicate), forward and backward. Index maps and contracts: kernels/shape.h.
//
// Kernels (version 1 of each; nothing has run on a GPU yet):
//   block_copy_kernel        one thread per element of one piece: copies the [outer, len]
//                            piece to or from columns [off, off + len) of the packed
//                            [outer, total] tensor; one launch per piece (concat, split and
//                            both backwards)
//   pad_constant_kernel      one thread per output element: the output index is unravelled
//                            over the padded shape; an inside element reads x, the rest the
//                            value. The backward is the same kernel with the pads negated and
//                            value 0, as on the CPU
//   pad2d_forward_kernel     one thread per output (p, oh, ow): reads x[p, r(oh-top), r(ow-left)]
//   pad2d_backward_kernel    one thread per INPUT (p, ih, iw): gathers the outputs that read it
//                            (along each axis at most three runs: the element itself, its
//                            mirror images or the replicated border), in the CPU's order, so
//                            the sums equal the CPU's bit for bit and need no atomics
// Everything is data movement; indices are 64-bit.
#include "kernels/copy.h"
#include "kernels/cuda/common.cuh"
#include "kernels/shape.h"

namespace nabla::cuda {

namespace {

// dst[o * dst_ld + j] = src[o * src_ld + j] for o < outer, j < len.
template <typename T>
__global__ void block_copy_kernel(const T* __restrict__ src, int64_t src_ld, T* __restrict__ dst,
                                  int64_t dst_ld, int64_t outer, int64_t len) {
  const int64_t n = outer * len;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = k / len, j = k % len;
    dst[o * dst_ld + j] = src[o * src_ld + j];
  }
}

template <typename T>
void launch_block_copy(const T* src, int64_t src_ld, T* dst, int64_t dst_ld, int64_t outer,
                       int64_t len) {
  const int64_t n = outer * len;
  if (n == 0) return;
  block_copy_kernel<T>
      <<<blocks_for(n), kThreads, 0, current_stream()>>>(src, src_ld, dst, dst_ld, outer, len);
  CUDA_CHECK_LAUNCH();
}

// The padded (output) shape, the input shape and the low pads, by value into the kernel.
struct PadShape {
  int ndim;
  int64_t out[kMaxDims], in[kMaxDims], lo[kMaxDims];
};

template <typename T>
__global__ void pad_constant_kernel(PadShape ps, int64_t n, const T* __restrict__ x,
                                    T* __restrict__ y, T value) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    int64_t rem = k, src = 0, stride = 1;
    bool inside = true;
    for (int d = ps.ndim - 1; d >= 0; --d) {
      const int64_t id = rem % ps.out[d] - ps.lo[d];
      rem /= ps.out[d];
      inside = inside && id >= 0 && id < ps.in[d];
      src += id * stride;
      stride *= ps.in[d];
    }
    y[k] = inside ? x[src] : value;  // src is only meaningful (and only read) inside
  }
}

template <typename T>
void launch_pad_constant(int ndim, const int64_t* in_shape, const int64_t* lo, const int64_t* hi,
                         bool negate, const T* x, T* y, T value) {
  NABLA_CHECK(ndim >= 0 && ndim <= kMaxDims, "cuda pad_constant: ", ndim, " dims (at most ",
              kMaxDims, ")");
  PadShape ps{};
  ps.ndim = ndim;
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) {
    const int64_t l = negate ? -lo[d] : lo[d], h = negate ? -hi[d] : hi[d];
    ps.in[d] = in_shape[d];
    ps.lo[d] = l;
    ps.out[d] = in_shape[d] + l + h;
    n *= ps.out[d];
  }
  if (n == 0) return;  // also keeps the kernel from dividing by an empty dim
  pad_constant_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(ps, n, x, y, value);
  CUDA_CHECK_LAUNCH();
}

// Which input index output index o reads along an axis of n elements with `lo` leading pads:
// reflect  r(i) = i < 0 ? -i : (i >= n ? 2(n-1) - i : i),   replicate  clamp(i, 0, n-1),
// with i = o - lo.
template <bool kReflect>
__device__ __forceinline__ int64_t pad_source(int64_t o, int64_t n, int64_t lo) {
  const int64_t i = o - lo;
  if (kReflect) return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i);
  return i < 0 ? 0 : (i >= n ? n - 1 : i);
}

// The output indices along one axis that read input index ih: at most three inclusive runs
// [a, b], in ascending order.
struct Runs {
  int count;
  int64_t a[3], b[3];
};

template <bool kReflect>
__device__ __forceinline__ Runs pad_readers(int64_t ih, int64_t n, int64_t lo, int64_t hi) {
  Runs r;
  if (kReflect) {
    // Pads are < n, so each side mirrors once: the left image of ih is i = -ih (for
    // 1 <= ih <= lo), the right image i = 2(n-1) - ih (for n-1-hi <= ih <= n-2).
    r.count = 0;
    if (ih >= 1 && ih <= lo) {
      r.a[r.count] = r.b[r.count] = lo - ih;
      ++r.count;
    }
    r.a[r.count] = r.b[r.count] = lo + ih;
    ++r.count;
    if (ih <= n - 2 && ih >= n - 1 - hi) {
      r.a[r.count] = r.b[r.count] = lo + 2 * (n - 1) - ih;
      ++r.count;
    }
  } else {
    // The first element is read by every leading pad, the last by every trailing one (both,
    // when n == 1).
    r.count = 1;
    r.a[0] = ih == 0 ? 0 : lo + ih;
    r.b[0] = ih == n - 1 ? lo + n - 1 + hi : lo + ih;
  }
  return r;
}

template <bool kReflect, typename T>
__global__ void pad2d_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n,
                                     int64_t H, int64_t W, int64_t top, int64_t left, int64_t Ho,
                                     int64_t Wo) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ow = k % Wo, t = k / Wo, oh = t % Ho, p = t / Ho;
    y[k] = x[(p * H + pad_source<kReflect>(oh, H, top)) * W + pad_source<kReflect>(ow, W, left)];
  }
}

template <bool kReflect, typename T>
__global__ void pad2d_backward_kernel(const T* __restrict__ dy, T* __restrict__ dx, int64_t n,
                                      int64_t H, int64_t W, int64_t top, int64_t bottom,
                                      int64_t left, int64_t right) {
  const int64_t Ho = H + top + bottom, Wo = W + left + right;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t iw = k % W, t = k / W, ih = t % H, p = t / H;
    const Runs rows = pad_readers<kReflect>(ih, H, top, bottom);
    const Runs cols = pad_readers<kReflect>(iw, W, left, right);
    const T* dyp = dy + p * Ho * Wo;
    T acc = 0;  // rows ascending, then columns ascending: the CPU's order of additions
    for (int a = 0; a < rows.count; ++a)
      for (int64_t oh = rows.a[a]; oh <= rows.b[a]; ++oh)
        for (int b = 0; b < cols.count; ++b)
          for (int64_t ow = cols.a[b]; ow <= cols.b[b]; ++ow) acc += dyp[oh * Wo + ow];
    dx[k] = acc;
  }
}

template <bool kReflect, typename T>
void launch_pad2d_forward(const T* x, T* y, int64_t P, int64_t H, int64_t W, int64_t top,
                          int64_t bottom, int64_t left, int64_t right) {
  const int64_t Ho = H + top + bottom, Wo = W + left + right, n = P * Ho * Wo;
  if (n == 0) return;
  pad2d_forward_kernel<kReflect, T>
      <<<blocks_for(n), kThreads, 0, current_stream()>>>(x, y, n, H, W, top, left, Ho, Wo);
  CUDA_CHECK_LAUNCH();
}

template <bool kReflect, typename T>
void launch_pad2d_backward(const T* dy, T* dx, int64_t P, int64_t H, int64_t W, int64_t top,
                           int64_t bottom, int64_t left, int64_t right) {
  const int64_t n = P * H * W;
  if (n == 0) return;
  pad2d_backward_kernel<kReflect, T>
      <<<blocks_for(n), kThreads, 0, current_stream()>>>(dy, dx, n, H, W, top, bottom, left, right);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

template <typename T>
void concat_forward(int64_t n, const T* const* xs, const int64_t* lens, int64_t outer, T* y) {
  int64_t total = 0;
  for (int64_t i = 0; i < n; ++i) total += lens[i];
  for (int64_t i = 0, off = 0; i < n; off += lens[i], ++i)
    launch_block_copy(xs[i], lens[i], y + off, total, outer, lens[i]);
}

template <typename T>
void concat_backward(int64_t n, const T* dy, const int64_t* lens, int64_t outer, T* const* dxs) {
  int64_t total = 0;
  for (int64_t i = 0; i < n; ++i) total += lens[i];
  for (int64_t i = 0, off = 0; i < n; off += lens[i], ++i)
    if (dxs[i]) launch_block_copy(dy + off, total, dxs[i], lens[i], outer, lens[i]);
}

template <typename T>
void split_forward(int64_t n, const T* x, const int64_t* lens, int64_t outer, T* const* ys) {
  concat_backward(n, x, lens, outer, ys);
}

template <typename T>
void split_backward(int64_t n, const T* const* dys, const int64_t* lens, int64_t outer, T* dx) {
  concat_forward(n, dys, lens, outer, dx);
}

template <typename T>
void pad_constant_forward(int ndim, const int64_t* in_shape, const int64_t* lo, const int64_t* hi,
                          const T* x, T* y, T value) {
  launch_pad_constant(ndim, in_shape, lo, hi, false, x, y, value);
}

template <typename T>
void pad_constant_backward(int ndim, const int64_t* in_shape, const int64_t* lo, const int64_t* hi,
                           const T* dy, T* dx) {
  // dx[i] = dy[i + lo]: a constant pad of dy (shape in + lo + hi) by the negated pads, value 0.
  int64_t out_shape[kMaxDims];
  NABLA_CHECK(ndim >= 0 && ndim <= kMaxDims, "cuda pad_constant_backward: ", ndim,
              " dims (at most ", kMaxDims, ")");
  for (int d = 0; d < ndim; ++d) out_shape[d] = in_shape[d] + lo[d] + hi[d];
  launch_pad_constant(ndim, out_shape, lo, hi, true, dy, dx, T(0));
}

template <typename T>
void pad_reflect_forward(const T* x, T* y, int64_t P, int64_t H, int64_t W, int64_t top,
                         int64_t bottom, int64_t left, int64_t right) {
  launch_pad2d_forward<true>(x, y, P, H, W, top, bottom, left, right);
}

template <typename T>
void pad_reflect_backward(const T* dy, T* dx, int64_t P, int64_t H, int64_t W, int64_t top,
                          int64_t bottom, int64_t left, int64_t right) {
  launch_pad2d_backward<true>(dy, dx, P, H, W, top, bottom, left, right);
}

template <typename T>
void pad_replicate_forward(const T* x, T* y, int64_t P, int64_t H, int64_t W, int64_t top,
                           int64_t bottom, int64_t left, int64_t right) {
  launch_pad2d_forward<false>(x, y, P, H, W, top, bottom, left, right);
}

template <typename T>
void pad_replicate_backward(const T* dy, T* dx, int64_t P, int64_t H, int64_t W, int64_t top,
                            int64_t bottom, int64_t left, int64_t right) {
  launch_pad2d_backward<false>(dy, dx, P, H, W, top, bottom, left, right);
}

NABLA_SHAPE_INSTANTIATE(float)
NABLA_SHAPE_INSTANTIATE(double)

}  // namespace nabla::cuda
