// CPU shape kernels: concat/split and constant/reflect/replicate padding. See kernels/shape.h
// for the index maps. Everything here is data movement: the loops are organised so that the
// innermost work is a contiguous copy (std::copy_n / std::fill_n) wherever the map allows it.
#include "kernels/shape.h"

#include <algorithm>
#include <vector>

#include "kernels/copy.h"

namespace nabla::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 16;  // elements moved below which threads cost more

// Calls f(i, o, packed_offset, len) for every run: row o of piece i, which sits at
// packed_offset in the packed [outer, sum(lens)] tensor and at o * len in piece i.
template <typename F>
void for_each_run(int64_t n, const int64_t* lens, int64_t outer, F&& f) {
  std::vector<int64_t> off(size_t(n) + 1, 0);
  for (int64_t i = 0; i < n; ++i) off[size_t(i) + 1] = off[size_t(i)] + lens[i];
  const int64_t total = off[size_t(n)], runs = outer * n;
  // One iteration per (row, piece) run; runs are disjoint in both tensors, so no races.
#pragma omp parallel for schedule(static) if (outer * total > kParallelMin)
  for (int64_t r = 0; r < runs; ++r) {
    const int64_t o = r / n, i = r % n;
    f(i, o, o * total + off[size_t(i)], lens[i]);
  }
}

// Index maps of the border modes: which input coordinate output coordinate i (relative to
// the first unpadded element) reads along an axis of n elements.
struct Reflect {
  static int64_t at(int64_t i, int64_t n) { return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i); }
};
struct Replicate {
  static int64_t at(int64_t i, int64_t n) { return i < 0 ? 0 : (i >= n ? n - 1 : i); }
};

template <typename R, typename T>
void pad2d_forward(const T* x, T* y, int64_t P, int64_t H, int64_t W, int64_t top, int64_t bottom,
                   int64_t left, int64_t right) {
  const int64_t Ho = H + top + bottom, Wo = W + left + right;
  // One iteration per output row (p, oh); each reads exactly one input row.
#pragma omp parallel for schedule(static) if (P * Ho * Wo > kParallelMin)
  for (int64_t r = 0; r < P * Ho; ++r) {
    const int64_t p = r / Ho, oh = r % Ho;
    const T* xr = x + (p * H + R::at(oh - top, H)) * W;
    T* yr = y + r * Wo;
    for (int64_t ow = 0; ow < left; ++ow) yr[ow] = xr[R::at(ow - left, W)];
    std::copy_n(xr, W, yr + left);
    for (int64_t ow = left + W; ow < Wo; ++ow) yr[ow] = xr[R::at(ow - left, W)];
  }
}

template <typename R, typename T>
void pad2d_backward(const T* dy, T* dx, int64_t P, int64_t H, int64_t W, int64_t top,
                    int64_t bottom, int64_t left, int64_t right) {
  const int64_t Ho = H + top + bottom, Wo = W + left + right;
  // One iteration per plane: the scatter-add of a plane only touches that plane of dx, so
  // threads never add into the same element.
#pragma omp parallel for schedule(static) if (P * Ho * Wo > kParallelMin)
  for (int64_t p = 0; p < P; ++p) {
    T* dxp = dx + p * H * W;
    std::fill_n(dxp, H * W, T(0));
    for (int64_t oh = 0; oh < Ho; ++oh) {
      T* dxr = dxp + R::at(oh - top, H) * W;
      const T* dyr = dy + (p * Ho + oh) * Wo;
      for (int64_t ow = 0; ow < left; ++ow) dxr[R::at(ow - left, W)] += dyr[ow];
      for (int64_t w = 0; w < W; ++w) dxr[w] += dyr[left + w];
      for (int64_t ow = left + W; ow < Wo; ++ow) dxr[R::at(ow - left, W)] += dyr[ow];
    }
  }
}
}  // namespace

template <typename T>
void concat_forward(int64_t n, const T* const* xs, const int64_t* lens, int64_t outer, T* y) {
  for_each_run(n, lens, outer, [&](int64_t i, int64_t o, int64_t at, int64_t len) {
    std::copy_n(xs[i] + o * len, len, y + at);
  });
}

template <typename T>
void concat_backward(int64_t n, const T* dy, const int64_t* lens, int64_t outer, T* const* dxs) {
  for_each_run(n, lens, outer, [&](int64_t i, int64_t o, int64_t at, int64_t len) {
    if (dxs[i]) std::copy_n(dy + at, len, dxs[i] + o * len);
  });
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
  if (ndim == 0) {
    y[0] = x[0];
    return;
  }
  int64_t out_shape[kMaxDims], in_strides[kMaxDims];
  int64_t acc = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    out_shape[d] = in_shape[d] + lo[d] + hi[d];
    in_strides[d] = acc;
    acc *= in_shape[d];
  }
  const int64_t Wo = out_shape[ndim - 1], Wi = in_shape[ndim - 1], l = lo[ndim - 1];
  int64_t rows = 1;
  for (int d = 0; d < ndim - 1; ++d) rows *= out_shape[d];
  // Output columns [c0, c1) of every row read x; the rest of the row is padding. With a
  // negative lo the copy starts inside the input row (cropping).
  const int64_t c0 = std::clamp<int64_t>(l, 0, Wo);
  const int64_t c1 = std::max(c0, std::clamp<int64_t>(l + Wi, 0, Wo));
  // One iteration per output row (every dim but the last); rows are disjoint in y.
#pragma omp parallel for schedule(static) if (rows * Wo > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    T* yr = y + r * Wo;
    int64_t src = 0, rem = r;
    bool inside = true;
    for (int d = ndim - 2; d >= 0; --d) {
      const int64_t id = rem % out_shape[d] - lo[d];
      rem /= out_shape[d];
      inside = inside && id >= 0 && id < in_shape[d];
      src += id * in_strides[d];
    }
    if (!inside) {
      std::fill_n(yr, Wo, value);
      continue;
    }
    std::fill_n(yr, c0, value);
    std::copy_n(x + src + (c0 - l), c1 - c0, yr + c0);
    std::fill_n(yr + c1, Wo - c1, value);
  }
}

template <typename T>
void pad_constant_backward(int ndim, const int64_t* in_shape, const int64_t* lo, const int64_t* hi,
                           const T* dy, T* dx) {
  // The adjoint of a constant pad is the constant pad of dy by the negated pads: dx[i] reads
  // dy[i + lo], and inputs that the forward cropped away read the padding value 0.
  int64_t out_shape[kMaxDims], nlo[kMaxDims], nhi[kMaxDims];
  for (int d = 0; d < ndim; ++d) {
    out_shape[d] = in_shape[d] + lo[d] + hi[d];
    nlo[d] = -lo[d];
    nhi[d] = -hi[d];
  }
  pad_constant_forward(ndim, out_shape, nlo, nhi, dy, dx, T(0));
}

template <typename T>
void pad_reflect_forward(const T* x, T* y, int64_t P, int64_t H, int64_t W, int64_t top,
                         int64_t bottom, int64_t left, int64_t right) {
  pad2d_forward<Reflect>(x, y, P, H, W, top, bottom, left, right);
}

template <typename T>
void pad_reflect_backward(const T* dy, T* dx, int64_t P, int64_t H, int64_t W, int64_t top,
                          int64_t bottom, int64_t left, int64_t right) {
  pad2d_backward<Reflect>(dy, dx, P, H, W, top, bottom, left, right);
}

template <typename T>
void pad_replicate_forward(const T* x, T* y, int64_t P, int64_t H, int64_t W, int64_t top,
                           int64_t bottom, int64_t left, int64_t right) {
  pad2d_forward<Replicate>(x, y, P, H, W, top, bottom, left, right);
}

template <typename T>
void pad_replicate_backward(const T* dy, T* dx, int64_t P, int64_t H, int64_t W, int64_t top,
                            int64_t bottom, int64_t left, int64_t right) {
  pad2d_backward<Replicate>(dy, dx, P, H, W, top, bottom, left, right);
}

NABLA_SHAPE_INSTANTIATE(float)
NABLA_SHAPE_INSTANTIATE(double)

}  // namespace nabla::cpu
