// CPU bilinear upsampling with align_corners = true, forward and backward (math: kernels/resize.h).
// One thread per (n, c) plane; the taps of every output row and column are computed once.
#include "kernels/resize.h"

#include <algorithm>
#include <vector>

namespace nabla {
namespace cpu {

namespace {

constexpr int64_t kMinParallel = 1 << 14;

// Taps of every output index along one axis: src = i * (in - 1) / (out - 1) with the scale in T.
template <typename T>
struct AlignedTaps {
  std::vector<int64_t> i0, i1;
  std::vector<T> l0, l1;  // weights of i0 and i1
  AlignedTaps(int64_t in, int64_t out) : i0(out), i1(out), l0(out), l1(out) {
    const T scale = out > 1 ? static_cast<T>(in - 1) / static_cast<T>(out - 1) : T(0);
    for (int64_t i = 0; i < out; ++i) {
      const T src = scale * static_cast<T>(i);
      i0[i] = std::min(static_cast<int64_t>(src), in - 1);
      i1[i] = i0[i] + (i0[i] < in - 1 ? 1 : 0);
      l1[i] = std::clamp(src - static_cast<T>(i0[i]), T(0), T(1));
      l0[i] = T(1) - l1[i];
    }
  }
};

}  // namespace

template <typename T>
void upsample_bilinear2d_aligned_forward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                                         int64_t OW, const T* x, T* y) {
  const int64_t planes = N * C;
  const AlignedTaps<T> th(H, OH), tw(W, OW);
  // One thread per (n, c) plane.
#pragma omp parallel for schedule(static) if (planes * OH * OW >= kMinParallel)
  for (int64_t nc = 0; nc < planes; ++nc) {
    const T* xp = x + nc * H * W;
    for (int64_t i = 0; i < OH; ++i) {
      const T* r0 = xp + th.i0[i] * W;
      const T* r1 = xp + th.i1[i] * W;
      T* yrow = y + (nc * OH + i) * OW;
      for (int64_t j = 0; j < OW; ++j) {
        const int64_t a = tw.i0[j], b = tw.i1[j];
        yrow[j] = th.l0[i] * (tw.l0[j] * r0[a] + tw.l1[j] * r0[b]) +
                  th.l1[i] * (tw.l0[j] * r1[a] + tw.l1[j] * r1[b]);
      }
    }
  }
}

template <typename T>
void upsample_bilinear2d_aligned_backward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                                          int64_t OW, const T* dy, T* dx) {
  const int64_t planes = N * C;
  const AlignedTaps<T> th(H, OH), tw(W, OW);
  // One thread per (n, c) plane: neighbouring outputs share input pixels, and keeping a plane on
  // one thread makes the scatter race-free without atomics.
#pragma omp parallel for schedule(static) if (planes * OH * OW >= kMinParallel)
  for (int64_t nc = 0; nc < planes; ++nc) {
    T* dxp = dx + nc * H * W;
    std::fill(dxp, dxp + H * W, T(0));
    for (int64_t i = 0; i < OH; ++i) {
      T* r0 = dxp + th.i0[i] * W;
      T* r1 = dxp + th.i1[i] * W;
      const T* dyrow = dy + (nc * OH + i) * OW;
      for (int64_t j = 0; j < OW; ++j) {
        const int64_t a = tw.i0[j], b = tw.i1[j];
        const T g0 = th.l0[i] * dyrow[j], g1 = th.l1[i] * dyrow[j];
        r0[a] += tw.l0[j] * g0;
        r0[b] += tw.l1[j] * g0;
        r1[a] += tw.l0[j] * g1;
        r1[b] += tw.l1[j] * g1;
      }
    }
  }
}

NABLA_RESIZE_INSTANTIATE(float)
NABLA_RESIZE_INSTANTIATE(double)

}  // namespace cpu
}  // namespace nabla
