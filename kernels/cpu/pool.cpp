// CPU pooling and upsampling: max/avg pool 2d, global average pool, nearest and bilinear
// upsampling, forward and backward. NCHW, contiguous. Math and shapes: see kernels/pool.h.
//
// Every kernel maps one thread to one (n, c) plane. Backward kernels scatter-add into dx,
// and because a plane of dx is written by exactly one thread in a fixed order, they need
// no atomics and give the same bits on every run.
#include "kernels/pool.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/error.h"

namespace nabla {

namespace cpu {
namespace {

// Below this many elements, forking threads costs more than the loop itself.
constexpr int64_t kMinParallel = 1 << 14;

// Input rows [lo, hi) of the window of output row `o`, clipped to the input: padding is never read.
void window(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t size, int64_t& lo,
            int64_t& hi) {
  const int64_t start = o * stride - pad;
  lo = std::max<int64_t>(start, 0);
  hi = std::min(start + k, size);
}

// Source row/column of each output row/column for align_corners = false, in PyTorch's
// arithmetic: scale in T, src = scale*(i+0.5) - 0.5 clamped below at 0, so float results
// round the same way as PyTorch's float kernel.
template <typename T>
struct Lerp {
  std::vector<int64_t> i0, i1;
  std::vector<T> l0, l1;  // weights of i0 and i1
  Lerp(int64_t in, int64_t out) : i0(out), i1(out), l0(out), l1(out) {
    const T scale = static_cast<T>(in) / static_cast<T>(out);
    for (int64_t i = 0; i < out; ++i) {
      const T src = std::max(scale * (static_cast<T>(i) + T(0.5)) - T(0.5), T(0));
      i0[i] = std::min(static_cast<int64_t>(src), in - 1);
      i1[i] = i0[i] + (i0[i] < in - 1 ? 1 : 0);
      l1[i] = std::clamp(src - static_cast<T>(i0[i]), T(0), T(1));
      l0[i] = T(1) - l1[i];
    }
  }
};

// Source column of each output column for mode='nearest': floor(j*W/OW), exact in integers
// (dst*W stays far below 2^63 for any image that fits in memory).
std::vector<int64_t> nearest_sources(int64_t in, int64_t out) {
  std::vector<int64_t> src(out);
  for (int64_t j = 0; j < out; ++j) src[j] = j * in / out;
  return src;
}

}  // namespace

// PyTorch's rule, kept by every path below: a NaN replaces anything and nothing replaces a NaN
// (v > NaN is false), so NaN propagates to y; otherwise the first maximum in window order wins.
// Written as selects, not branches: on real activations "v > best" is a coin flip, and the
// mispredicted branches cost more than the whole rest of the pass.
template <typename T, typename I>
inline void take_max(T v, I idx, T& best, I& best_idx) {
  const bool take = (v > best) | (v != v);
  best = take ? v : best;
  best_idx = take ? idx : best_idx;
}

template <typename T>
void max_pool2d_forward(const Pool2dParams& p, const T* x, T* y, int64_t* argmax) {
  const int64_t planes = p.N * p.C;
  // The nets' pooling (2x2, stride 2, no padding) has a fixed window: one vectorizable pass per
  // output row.
  const bool k2s2 = p.kh == 2 && p.kw == 2 && p.sh == 2 && p.sw == 2 && p.ph == 0 && p.pw == 0;
  // One thread per (n, c) plane.
#pragma omp parallel for schedule(static) if (planes * p.H * p.W >= kMinParallel)
  for (int64_t nc = 0; nc < planes; ++nc) {
    const T* xp = x + nc * p.H * p.W;
    T* yp = y + nc * p.P * p.Q;
    int64_t* ap = argmax + nc * p.P * p.Q;
    if (k2s2) {
      const int64_t P = p.P, Q = p.Q, W = p.W;  // locals: the stores below cannot alias them
      for (int64_t i = 0; i < P; ++i) {
        const T* x0 = xp + 2 * i * W;
        const T* x1 = x0 + W;
        T* yr = yp + i * Q;
        int64_t* ar = ap + i * Q;
        const int64_t base = 2 * i * W;
#pragma omp simd
        for (int64_t j = 0; j < Q; ++j) {
          const T a = x0[2 * j], b = x0[2 * j + 1], c = x1[2 * j], d = x1[2 * j + 1];
          // The winner as a window offset 0..3.
          const bool tb = (b > a) | (b != b);
          T best = tb ? b : a;
          int64_t off = tb ? 1 : 0;
          const bool tc = (c > best) | (c != c);
          best = tc ? c : best;
          off = tc ? W : off;
          const bool td = (d > best) | (d != d);
          best = td ? d : best;
          off = td ? W + 1 : off;
          yr[j] = best;
          ar[j] = base + 2 * j + off;
        }
      }
      continue;
    }
    for (int64_t i = 0; i < p.P; ++i) {
      int64_t h0, h1;
      window(i, p.sh, p.ph, p.kh, p.H, h0, h1);
      for (int64_t j = 0; j < p.Q; ++j) {
        int64_t w0, w1;
        window(j, p.sw, p.pw, p.kw, p.W, w0, w1);
        // finalize() keeps pad <= k/2, so every window holds at least one real pixel.
        int64_t best_idx = h0 * p.W + w0;
        T best = xp[best_idx];
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) take_max(xp[h * p.W + w], h * p.W + w, best, best_idx);
        yp[i * p.Q + j] = best;
        ap[i * p.Q + j] = best_idx;
      }
    }
  }
}

template <typename T>
void max_pool2d_backward(const Pool2dParams& p, const T* dy, const int64_t* argmax, T* dx) {
  const int64_t planes = p.N * p.C, HW = p.H * p.W, PQ = p.P * p.Q;
  // One thread per (n, c) plane: argmax indexes within the plane, so planes never collide.
#pragma omp parallel for schedule(static) if (planes * HW >= kMinParallel)
  for (int64_t nc = 0; nc < planes; ++nc) {
    T* dxp = dx + nc * HW;
    std::fill(dxp, dxp + HW, T(0));
    for (int64_t i = 0; i < PQ; ++i) dxp[argmax[nc * PQ + i]] += dy[nc * PQ + i];
  }
}

template <typename T>
void avg_pool2d_forward(const Pool2dParams& p, const T* x, T* y) {
  const int64_t planes = p.N * p.C;
  const T inv = T(1) / static_cast<T>(p.kh * p.kw);
  // One thread per (n, c) plane.
#pragma omp parallel for schedule(static) if (planes * p.H * p.W >= kMinParallel)
  for (int64_t nc = 0; nc < planes; ++nc) {
    const T* xp = x + nc * p.H * p.W;
    T* yp = y + nc * p.P * p.Q;
    for (int64_t i = 0; i < p.P; ++i) {
      int64_t h0, h1;
      window(i, p.sh, p.ph, p.kh, p.H, h0, h1);
      for (int64_t j = 0; j < p.Q; ++j) {
        int64_t w0, w1;
        window(j, p.sw, p.pw, p.kw, p.W, w0, w1);
        T acc = 0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) acc += xp[h * p.W + w];
        yp[i * p.Q + j] = acc * inv;
      }
    }
  }
}

template <typename T>
void avg_pool2d_backward(const Pool2dParams& p, const T* dy, T* dx) {
  const int64_t planes = p.N * p.C, HW = p.H * p.W;
  const T inv = T(1) / static_cast<T>(p.kh * p.kw);
  // One thread per (n, c) plane; overlapping windows add into the plane in a fixed order.
#pragma omp parallel for schedule(static) if (planes * HW >= kMinParallel)
  for (int64_t nc = 0; nc < planes; ++nc) {
    T* dxp = dx + nc * HW;
    const T* dyp = dy + nc * p.P * p.Q;
    std::fill(dxp, dxp + HW, T(0));
    for (int64_t i = 0; i < p.P; ++i) {
      int64_t h0, h1;
      window(i, p.sh, p.ph, p.kh, p.H, h0, h1);
      for (int64_t j = 0; j < p.Q; ++j) {
        int64_t w0, w1;
        window(j, p.sw, p.pw, p.kw, p.W, w0, w1);
        const T g = dyp[i * p.Q + j] * inv;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) dxp[h * p.W + w] += g;
      }
    }
  }
}

template <typename T>
void global_avg_pool_forward(int64_t N, int64_t C, int64_t H, int64_t W, const T* x, T* y) {
  const int64_t planes = N * C, HW = H * W;
  // One thread per (n, c) plane, each summing its plane in order.
#pragma omp parallel for schedule(static) if (planes * HW >= kMinParallel)
  for (int64_t nc = 0; nc < planes; ++nc) {
    T acc = 0;
    for (int64_t i = 0; i < HW; ++i) acc += x[nc * HW + i];
    y[nc] = acc / static_cast<T>(HW);
  }
}

template <typename T>
void global_avg_pool_backward(int64_t N, int64_t C, int64_t H, int64_t W, const T* dy, T* dx) {
  const int64_t planes = N * C, HW = H * W;
  // One thread per (n, c) plane.
#pragma omp parallel for schedule(static) if (planes * HW >= kMinParallel)
  for (int64_t nc = 0; nc < planes; ++nc)
    std::fill(dx + nc * HW, dx + (nc + 1) * HW, dy[nc] / static_cast<T>(HW));
}

template <typename T>
void upsample_nearest2d_forward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                const T* x, T* y) {
  const int64_t planes = N * C;
  const std::vector<int64_t> src_w = nearest_sources(W, OW);
  // One thread per (n, c) plane.
#pragma omp parallel for schedule(static) if (planes * OH * OW >= kMinParallel)
  for (int64_t nc = 0; nc < planes; ++nc)
    for (int64_t i = 0; i < OH; ++i) {
      const T* xrow = x + (nc * H + i * H / OH) * W;
      T* yrow = y + (nc * OH + i) * OW;
      for (int64_t j = 0; j < OW; ++j) yrow[j] = xrow[src_w[j]];
    }
}

template <typename T>
void upsample_nearest2d_backward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 const T* dy, T* dx) {
  const int64_t planes = N * C;
  const std::vector<int64_t> src_w = nearest_sources(W, OW);
  // One thread per (n, c) plane: several outputs copy one input, so their gradients add.
#pragma omp parallel for schedule(static) if (planes * OH * OW >= kMinParallel)
  for (int64_t nc = 0; nc < planes; ++nc) {
    std::fill(dx + nc * H * W, dx + (nc + 1) * H * W, T(0));
    for (int64_t i = 0; i < OH; ++i) {
      T* dxrow = dx + (nc * H + i * H / OH) * W;
      const T* dyrow = dy + (nc * OH + i) * OW;
      for (int64_t j = 0; j < OW; ++j) dxrow[src_w[j]] += dyrow[j];
    }
  }
}

template <typename T>
void upsample_bilinear2d_forward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 const T* x, T* y) {
  const int64_t planes = N * C;
  const Lerp<T> lh(H, OH), lw(W, OW);
  // One thread per (n, c) plane.
#pragma omp parallel for schedule(static) if (planes * OH * OW >= kMinParallel)
  for (int64_t nc = 0; nc < planes; ++nc) {
    const T* xp = x + nc * H * W;
    for (int64_t i = 0; i < OH; ++i) {
      const T* r0 = xp + lh.i0[i] * W;
      const T* r1 = xp + lh.i1[i] * W;
      T* yrow = y + (nc * OH + i) * OW;
      for (int64_t j = 0; j < OW; ++j) {
        const int64_t a = lw.i0[j], b = lw.i1[j];
        yrow[j] = lh.l0[i] * (lw.l0[j] * r0[a] + lw.l1[j] * r0[b]) +
                  lh.l1[i] * (lw.l0[j] * r1[a] + lw.l1[j] * r1[b]);
      }
    }
  }
}

template <typename T>
void upsample_bilinear2d_backward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                                  int64_t OW, const T* dy, T* dx) {
  const int64_t planes = N * C;
  const Lerp<T> lh(H, OH), lw(W, OW);
  // One thread per (n, c) plane: the four taps of neighbouring outputs overlap, and only
  // keeping a plane on one thread makes the scatter race-free without atomics.
#pragma omp parallel for schedule(static) if (planes * OH * OW >= kMinParallel)
  for (int64_t nc = 0; nc < planes; ++nc) {
    T* dxp = dx + nc * H * W;
    std::fill(dxp, dxp + H * W, T(0));
    for (int64_t i = 0; i < OH; ++i) {
      T* r0 = dxp + lh.i0[i] * W;
      T* r1 = dxp + lh.i1[i] * W;
      const T* dyrow = dy + (nc * OH + i) * OW;
      for (int64_t j = 0; j < OW; ++j) {
        const int64_t a = lw.i0[j], b = lw.i1[j];
        const T g0 = lh.l0[i] * dyrow[j], g1 = lh.l1[i] * dyrow[j];
        r0[a] += lw.l0[j] * g0;
        r0[b] += lw.l1[j] * g0;
        r1[a] += lw.l0[j] * g1;
        r1[b] += lw.l1[j] * g1;
      }
    }
  }
}

NABLA_POOL_INSTANTIATE(float)
NABLA_POOL_INSTANTIATE(double)

}  // namespace cpu
}  // namespace nabla
