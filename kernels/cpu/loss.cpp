// CPU loss kernels; see kernels/loss.h for the math and the layout.
// Class-index kernels split [N, C, S] into tasks of one sample n and a block of up to kBlock
// positions s: for each class c the block is a contiguous run, and each task owns its outputs.
// Elementwise kernels are one element per iteration. No kernel reduces across threads, so
// results do not depend on the thread count.
#include "kernels/loss.h"

#include <algorithm>
#include <cmath>
#include <limits>

// As in elementwise.cpp: clang 14 has no vector std::exp/std::log without a vector math library,
// so it reports the `omp simd` loops below as failed transformations and keeps them scalar.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

namespace nabla::cpu {

namespace {
constexpr int64_t kBlock = 64;             // positions s per task
constexpr int64_t kParallelMin = 1 << 14;  // below this, threads cost more than they save
constexpr int64_t kNoBad = std::numeric_limits<int64_t>::max();

template <typename F>
void map(int64_t n, F&& f) {
  // One element per iteration, split across threads in static chunks.
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) f(i);
}

template <typename T>
T weight_of(const T* weight, int64_t c) {
  return weight ? weight[c] : T(1);
}

// softplus(-x) = log(1 + exp(-x)), written so that exp only sees -|x| <= 0.
template <typename T>
T softplus_neg(T x) {
  return std::max(-x, T(0)) + std::log1p(std::exp(-std::abs(x)));
}

// sigmoid(-x) = 1 / (1 + exp(x)), split by sign so exp never overflows.
template <typename T>
T sigmoid_neg(T x) {
  if (x >= 0) {
    T e = std::exp(-x);
    return e / (T(1) + e);
  }
  return T(1) / (T(1) + std::exp(x));
}
}  // namespace

template <typename T>
int64_t cross_entropy_forward(const T* x, const int64_t* target, const T* weight, T* loss, T* wt,
                              double* lse, int64_t N, int64_t C, int64_t S, int64_t ignore_index) {
  const int64_t blocks = (S + kBlock - 1) / kBlock;
  int64_t first_bad = kNoBad;
  // One thread per task (n, block of up to kBlock positions s); the min-reduction keeps the
  // first invalid position whatever the thread split.
#pragma omp parallel for schedule(static) reduction(min : first_bad) if (N * C * S > kParallelMin)
  for (int64_t task = 0; task < N * blocks; ++task) {
    const int64_t n = task / blocks, s0 = (task % blocks) * kBlock;
    const int64_t w = std::min(kBlock, S - s0);
    const T* xp = x + n * C * S + s0;
    T m[kBlock];
    double sum[kBlock] = {};
    for (int64_t j = 0; j < w; ++j) m[j] = xp[j];
    for (int64_t c = 1; c < C; ++c)
      for (int64_t j = 0; j < w; ++j) m[j] = std::max(m[j], xp[c * S + j]);
    // x - m <= 0: every exp lies in (0, 1] and the sum is at least 1, so log(sum) is finite.
    for (int64_t c = 0; c < C; ++c)
      for (int64_t j = 0; j < w; ++j) sum[j] += std::exp(xp[c * S + j] - m[j]);
    for (int64_t j = 0; j < w; ++j) {
      const int64_t p = n * S + s0 + j, t = target[p];
      const bool valid = t != ignore_index && t >= 0 && t < C;
      if (t != ignore_index && !valid) first_bad = std::min(first_bad, p);
      const double log_sum = std::log(sum[j]);
      // (m - x_t) + log(sum) rather than lse - x_t: for a confident prediction x_t = m and the
      // loss is the small log(sum), which m + log(sum) would round away for large logits.
      const T wc = valid ? weight_of(weight, t) : T(0);
      loss[p] = valid ? T(double(wc) * ((double(m[j]) - double(xp[t * S + j])) + log_sum)) : T(0);
      if (wt) wt[p] = wc;
      if (lse) lse[p] = valid ? double(m[j]) + log_sum : 0.0;
    }
  }
  return first_bad == kNoBad ? -1 : first_bad;
}

template <typename T>
void cross_entropy_backward(const T* x, const int64_t* target, const T* weight, const double* lse,
                            const T* dy, int64_t dy_stride, T* dx, int64_t N, int64_t C, int64_t S,
                            int64_t ignore_index) {
  const int64_t blocks = (S + kBlock - 1) / kBlock;
  // One thread per task (n, block of up to kBlock positions s); each dx element written once.
#pragma omp parallel for schedule(static) if (N * C * S > kParallelMin)
  for (int64_t task = 0; task < N * blocks; ++task) {
    const int64_t n = task / blocks, s0 = (task % blocks) * kBlock;
    const int64_t w = std::min(kBlock, S - s0);
    const T* xp = x + n * C * S + s0;
    T* dp = dx + n * C * S + s0;
    int64_t t[kBlock];
    T coef[kBlock];
    for (int64_t j = 0; j < w; ++j) {
      const int64_t p = n * S + s0 + j;
      t[j] = target[p];
      coef[j] = t[j] == ignore_index ? T(0) : weight_of(weight, t[j]) * dy[p * dy_stride];
    }
    for (int64_t c = 0; c < C; ++c)
      for (int64_t j = 0; j < w; ++j) {
        const int64_t p = n * S + s0 + j;
        if (t[j] == ignore_index) {
          // Ignored logits may be anything (even inf); the gradient is 0, not 0 * NaN.
          dp[c * S + j] = T(0);
          continue;
        }
        // The exponent is formed in double (see header), the exp itself in T.
        const T prob = std::exp(T(double(xp[c * S + j]) - lse[p]));
        dp[c * S + j] = coef[j] * (prob - T(c == t[j] ? 1 : 0));
      }
  }
}

template <typename T>
int64_t nll_loss_forward(const T* x, const int64_t* target, const T* weight, T* loss, T* wt,
                         int64_t N, int64_t C, int64_t S, int64_t ignore_index) {
  int64_t first_bad = kNoBad;
  // One thread per position p = (n, s): it reads the one log-probability of its target.
#pragma omp parallel for schedule(static) reduction(min : first_bad) if (N * S > kParallelMin)
  for (int64_t p = 0; p < N * S; ++p) {
    const int64_t n = p / S, s = p % S, t = target[p];
    const bool valid = t != ignore_index && t >= 0 && t < C;
    if (t != ignore_index && !valid) first_bad = std::min(first_bad, p);
    const T wc = valid ? weight_of(weight, t) : T(0);
    loss[p] = valid ? -wc * x[(n * C + t) * S + s] : T(0);
    if (wt) wt[p] = wc;
  }
  return first_bad == kNoBad ? -1 : first_bad;
}

template <typename T>
void nll_loss_backward(const int64_t* target, const T* weight, const T* dy, int64_t dy_stride,
                       T* dx, int64_t N, int64_t C, int64_t S, int64_t ignore_index) {
  // One thread per (n, c) row of S positions; each dx element written once.
#pragma omp parallel for collapse(2) schedule(static) if (N * C * S > kParallelMin)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t p = n * S + s, t = target[p];
        const bool hit = t == c && t != ignore_index;
        dx[(n * C + c) * S + s] = hit ? -weight_of(weight, c) * dy[p * dy_stride] : T(0);
      }
}

template <typename T>
void bce_with_logits_forward(const T* x, const T* t, const T* pos_weight, T* loss, int64_t n) {
  map(n, [&](int64_t i) {
    const T l = T(1) + (weight_of(pos_weight, i) - T(1)) * t[i];
    loss[i] = (T(1) - t[i]) * x[i] + l * softplus_neg(x[i]);
  });
}

template <typename T>
void bce_with_logits_backward(const T* x, const T* t, const T* pos_weight, const T* dy,
                              int64_t dy_stride, T* dx, T* dt, T* dpos_weight, int64_t n) {
  if (dx)
    map(n, [&](int64_t i) {
      const T l = T(1) + (weight_of(pos_weight, i) - T(1)) * t[i];
      dx[i] = dy[i * dy_stride] * ((T(1) - t[i]) - l * sigmoid_neg(x[i]));
    });
  if (dt)
    map(n, [&](int64_t i) {
      dt[i] = dy[i * dy_stride] * (-x[i] + (weight_of(pos_weight, i) - T(1)) * softplus_neg(x[i]));
    });
  if (dpos_weight)
    map(n, [&](int64_t i) { dpos_weight[i] = dy[i * dy_stride] * t[i] * softplus_neg(x[i]); });
}

template <typename T>
void mse_loss_forward(const T* x, const T* t, T* loss, int64_t n) {
  map(n, [&](int64_t i) {
    const T d = x[i] - t[i];
    loss[i] = d * d;
  });
}

template <typename T>
void mse_loss_backward(const T* x, const T* t, const T* dy, int64_t dy_stride, T* dx, T* dt,
                       int64_t n) {
  if (dx) map(n, [&](int64_t i) { dx[i] = T(2) * (x[i] - t[i]) * dy[i * dy_stride]; });
  if (dt) map(n, [&](int64_t i) { dt[i] = T(-2) * (x[i] - t[i]) * dy[i * dy_stride]; });
}

template <typename T>
void l1_loss_forward(const T* x, const T* t, T* loss, int64_t n) {
  map(n, [&](int64_t i) { loss[i] = std::abs(x[i] - t[i]); });
}

template <typename T>
void l1_loss_backward(const T* x, const T* t, const T* dy, int64_t dy_stride, T* dx, T* dt,
                      int64_t n) {
  // sign(x - t) with sign(0) = 0, as PyTorch's subgradient choice.
  auto sign = [&](int64_t i) { return T((x[i] > t[i]) - (x[i] < t[i])); };
  if (dx) map(n, [&](int64_t i) { dx[i] = sign(i) * dy[i * dy_stride]; });
  if (dt) map(n, [&](int64_t i) { dt[i] = -sign(i) * dy[i * dy_stride]; });
}

NABLA_LOSS_INSTANTIATE(float)
NABLA_LOSS_INSTANTIATE(double)

}  // namespace nabla::cpu
