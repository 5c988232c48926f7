// CPU softmax, log_softmax and dropout; see kernels/softmax.h for the math.
// The softmax kernels split [outer, D, inner] into tasks of one outer slice and a block of up
// to kBlock inner positions; each task owns its outputs, so no two threads write one element
// and every sum is taken in a fixed order (deterministic for any thread count).
#include "kernels/softmax.h"

#include <algorithm>
#include <cmath>

#include "kernels/random.h"

namespace nabla::cpu {

namespace {
constexpr int64_t kBlock = 64;             // inner positions per task
constexpr int64_t kParallelMin = 1 << 14;  // below this, threads cost more than they save
using Acc = double;                        // accumulator of the sums over d (see header)

// Calls f(base, w) for every task: the slice starting at element `base` with w inner positions;
// element (d, j) of the task is at base + d * inner + j.
template <typename F>
void for_each_block(int64_t outer, int64_t D, int64_t inner, F&& f) {
  if (outer == 0 || D == 0 || inner == 0) return;
  const int64_t blocks = (inner + kBlock - 1) / kBlock;
  // One thread per task (o, block of inner positions). For each d the block is a contiguous
  // run, so the d loop streams through memory; with inner == 1 a task is one contiguous row.
#pragma omp parallel for schedule(static) if (outer * D * inner > kParallelMin)
  for (int64_t t = 0; t < outer * blocks; ++t) {
    const int64_t o = t / blocks, i0 = (t % blocks) * kBlock;
    f(o * D * inner + i0, std::min(kBlock, inner - i0));
  }
}

// m[j] = max_d p[d * inner + j]. A NaN may or may not win here; it reaches the output anyway
// through exp(NaN - m) in the sum.
template <typename T>
void block_max(const T* p, T* m, int64_t D, int64_t inner, int64_t w) {
  for (int64_t j = 0; j < w; ++j) m[j] = p[j];
  for (int64_t d = 1; d < D; ++d)
    for (int64_t j = 0; j < w; ++j) m[j] = std::max(m[j], p[d * inner + j]);
}
}  // namespace

template <typename T>
void softmax_forward(const T* x, T* y, int64_t outer, int64_t D, int64_t inner) {
  for_each_block(outer, D, inner, [&](int64_t base, int64_t w) {
    const T* xp = x + base;
    T* yp = y + base;
    T m[kBlock];
    Acc s[kBlock] = {};
    block_max(xp, m, D, inner, w);
    // x - m <= 0, so every exp lies in (0, 1] and the sum is at least 1: no overflow, and
    // the division is safe.
    for (int64_t d = 0; d < D; ++d)
      for (int64_t j = 0; j < w; ++j) {
        T e = std::exp(xp[d * inner + j] - m[j]);
        yp[d * inner + j] = e;
        s[j] += e;
      }
    for (int64_t d = 0; d < D; ++d)
      for (int64_t j = 0; j < w; ++j) yp[d * inner + j] = T(yp[d * inner + j] / s[j]);
  });
}

template <typename T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t D, int64_t inner) {
  for_each_block(outer, D, inner, [&](int64_t base, int64_t w) {
    const T *yp = y + base, *gp = dy + base;
    T* dp = dx + base;
    Acc dot[kBlock] = {};
    for (int64_t d = 0; d < D; ++d)
      for (int64_t j = 0; j < w; ++j) dot[j] += Acc(gp[d * inner + j]) * yp[d * inner + j];
    for (int64_t d = 0; d < D; ++d)
      for (int64_t j = 0; j < w; ++j) {
        int64_t k = d * inner + j;
        dp[k] = yp[k] * (gp[k] - T(dot[j]));
      }
  });
}

template <typename T>
void log_softmax_forward(const T* x, T* y, int64_t outer, int64_t D, int64_t inner) {
  for_each_block(outer, D, inner, [&](int64_t base, int64_t w) {
    const T* xp = x + base;
    T* yp = y + base;
    T m[kBlock];
    Acc s[kBlock] = {};
    block_max(xp, m, D, inner, w);
    for (int64_t d = 0; d < D; ++d)
      for (int64_t j = 0; j < w; ++j) s[j] += std::exp(xp[d * inner + j] - m[j]);
    // y = (x - m) - log(s), never x - (m + log s): for large logits m + log(s) would round to
    // an ulp of m (0.001 at 1e4 in float) and that error would land in every output. s >= 1,
    // so log never sees 0, and logits far below the max stay exact where log(softmax) would
    // underflow to -inf.
    T log_s[kBlock];
    for (int64_t j = 0; j < w; ++j) log_s[j] = T(std::log(s[j]));
    for (int64_t d = 0; d < D; ++d)
      for (int64_t j = 0; j < w; ++j) yp[d * inner + j] = (xp[d * inner + j] - m[j]) - log_s[j];
  });
}

template <typename T>
void log_softmax_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t D, int64_t inner) {
  for_each_block(outer, D, inner, [&](int64_t base, int64_t w) {
    const T *yp = y + base, *gp = dy + base;
    T* dp = dx + base;
    Acc gs[kBlock] = {};
    for (int64_t d = 0; d < D; ++d)
      for (int64_t j = 0; j < w; ++j) gs[j] += gp[d * inner + j];
    for (int64_t d = 0; d < D; ++d)
      for (int64_t j = 0; j < w; ++j) {
        int64_t k = d * inner + j;
        dp[k] = gp[k] - std::exp(yp[k]) * T(gs[j]);
      }
  });
}

template <typename T>
void dropout_forward(uint64_t seed, uint64_t offset, const T* x, T* mask, T* y, int64_t n, T p) {
  constexpr int64_t kPer = kPhiloxPerBlock<T>;
  const T scale = p < T(1) ? T(1) / (T(1) - p) : T(0);
  const int64_t blocks = (n + kPer - 1) / kPer;
  // One thread per Philox block (kPer elements): each block is its own counter, so the mask
  // does not depend on how the blocks are split across threads.
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t b = 0; b < blocks; ++b) {
    T us[kPer];
    philox_uniforms<T>(seed, offset, b, us);
    for (int64_t k = 0; k < kPer && b * kPer + k < n; ++k) {
      const int64_t i = b * kPer + k;
      const T u = us[k];
      mask[i] = u >= p ? scale : T(0);
      y[i] = x[i] * mask[i];
    }
  }
}

template <typename T>
void dropout_backward(const T* mask, const T* dy, T* dx, int64_t n) {
  // One element per iteration.
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * mask[i];
}

NABLA_SOFTMAX_INSTANTIATE(float)
NABLA_SOFTMAX_INSTANTIATE(double)

}  // namespace nabla::cpu
