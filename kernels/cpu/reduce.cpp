// CPU reductions over [outer, D, inner]; see kernels/reduce.h.
// Threads split the outer*inner output elements; each output is reduced by one thread in
// a fixed order, so results are deterministic for a given thread count and shape.
#include "kernels/reduce.h"

#include <cmath>
#include <vector>

namespace nabla::cpu {

namespace {
template <typename T>
using Acc = double;  // accumulator type for sums (see header)
constexpr int64_t kParallelMin = 1 << 14;
}  // namespace

template <typename T>
void sum_dim(const T* x, T* y, int64_t outer, int64_t D, int64_t inner) {
  if (inner == 1) {
    // One thread per row; the row is contiguous so the inner loop vectorizes.
#pragma omp parallel for schedule(static) if (outer * D > kParallelMin)
    for (int64_t o = 0; o < outer; ++o) {
      const T* row = x + o * D;
      Acc<T> acc = 0;
      for (int64_t d = 0; d < D; ++d) acc += row[d];
      y[o] = T(acc);
    }
    return;
  }
  // One thread per outer slice; the inner run is contiguous, so accumulate rows of `inner`.
#pragma omp parallel for schedule(static) if (outer * D * inner > kParallelMin)
  for (int64_t o = 0; o < outer; ++o) {
    std::vector<Acc<T>> acc(size_t(inner), 0);
    for (int64_t d = 0; d < D; ++d) {
      const T* row = x + (o * D + d) * inner;
      for (int64_t i = 0; i < inner; ++i) acc[size_t(i)] += row[i];
    }
    for (int64_t i = 0; i < inner; ++i) y[o * inner + i] = T(acc[size_t(i)]);
  }
}

template <typename T>
void var_dim(const T* x, T* y, T* mean, int64_t outer, int64_t D, int64_t inner,
             int64_t correction) {
  const double denom = double(D - correction);
  // One thread per output element (o, i); two passes (mean, then squared deviations)
  // avoid the cancellation of the E[x^2] - E[x]^2 formula.
#pragma omp parallel for collapse(2) schedule(static) if (outer * D * inner > kParallelMin)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const T* p = x + o * D * inner + i;
      double m = 0;
      for (int64_t d = 0; d < D; ++d) m += p[d * inner];
      m /= double(D);
      double ss = 0;
      for (int64_t d = 0; d < D; ++d) {
        double v = p[d * inner] - m;
        ss += v * v;
      }
      y[o * inner + i] = T(ss / denom);
      if (mean) mean[o * inner + i] = T(m);
    }
}

template <typename T>
void var_dim_backward(const T* x, const T* mean, const T* dy, T* dx, int64_t outer, int64_t D,
                      int64_t inner, int64_t correction) {
  const T scale = T(2) / T(D - correction);
  // One thread per outer slice; every dx element is written exactly once.
#pragma omp parallel for schedule(static) if (outer * D * inner > kParallelMin)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t d = 0; d < D; ++d)
      for (int64_t i = 0; i < inner; ++i) {
        int64_t k = (o * D + d) * inner + i;
        dx[k] = dy[o * inner + i] * scale * (x[k] - mean[o * inner + i]);
      }
}

template <typename T>
void max_dim(const T* x, T* y, int64_t* idx, int64_t outer, int64_t D, int64_t inner) {
  // One thread per output element; ties keep the first index.
#pragma omp parallel for collapse(2) schedule(static) if (outer * D * inner > kParallelMin)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const T* p = x + o * D * inner + i;
      T best = p[0];
      int64_t arg = 0;
      for (int64_t d = 1; d < D && !std::isnan(best); ++d) {
        T v = p[d * inner];
        if (v > best || std::isnan(v)) {
          best = v;
          arg = d;
        }
      }
      y[o * inner + i] = best;
      if (idx) idx[o * inner + i] = arg;
    }
}

template <typename T>
void max_dim_backward(const T* dy, const int64_t* idx, T* dx, int64_t outer, int64_t D,
                      int64_t inner) {
  // One thread per outer slice: zero it, then place each gradient at its argmax.
#pragma omp parallel for schedule(static) if (outer * D * inner > kParallelMin)
  for (int64_t o = 0; o < outer; ++o) {
    T* p = dx + o * D * inner;
    for (int64_t k = 0; k < D * inner; ++k) p[k] = T(0);
    for (int64_t i = 0; i < inner; ++i) p[idx[o * inner + i] * inner + i] = dy[o * inner + i];
  }
}

NABLA_REDUCE_INSTANTIATE(float)
NABLA_REDUCE_INSTANTIATE(double)

}  // namespace nabla::cpu
