// CPU normalization kernels (batch_norm2d, instance_norm2d); see kernels/norm.h for the math.
//
// Reductions run one thread per group, each summing its M elements in a fixed order
// (o, then i) in double, so results do not depend on the thread count. Elementwise passes run
// one thread per (o, g) plane of `inner` contiguous elements, with the per-group coefficients
// hoisted out of the inner loop so that it vectorizes.
#include "kernels/norm.h"

#include <cmath>

namespace nabla::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 14;  // below this many elements, threads cost more

// y = w * (x - mean) * invstd + b over every plane, with w = 1 and b = 0 when absent.
template <typename T>
void affine_apply(const NormGroups& s, const T* x, const T* mean, const T* invstd, const T* weight,
                  const T* bias, T* y) {
  const int64_t G = s.groups, inner = s.inner;
  // One thread per (o, g) plane; planes are disjoint, so every y element is written once.
#pragma omp parallel for collapse(2) schedule(static) if (s.outer * G * inner > kParallelMin)
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t g = 0; g < G; ++g) {
      const int64_t c = g % s.channels;
      const T scale = (weight ? weight[c] : T(1)) * invstd[g];
      const T shift = bias ? bias[c] : T(0);
      const T m = mean[g];
      const T* xp = x + (o * G + g) * inner;
      T* yp = y + (o * G + g) * inner;
      for (int64_t i = 0; i < inner; ++i) yp[i] = (xp[i] - m) * scale + shift;
    }
}
}  // namespace

template <typename T>
void norm_forward_train(const NormGroups& s, const T* x, const T* weight, const T* bias, double eps,
                        double momentum, T* y, T* mean, T* invstd, T* running_mean,
                        T* running_var) {
  const int64_t G = s.groups, inner = s.inner, M = s.group_size();
  // One thread per group. Two passes (mean, then squared deviations) avoid the cancellation
  // of E[x^2] - E[x]^2, which is large when |mean| >> std (e.g. images in [0, 1]).
#pragma omp parallel for schedule(static) if (s.outer * G * inner > kParallelMin)
  for (int64_t g = 0; g < G; ++g) {
    double sum = 0;
    for (int64_t o = 0; o < s.outer; ++o) {
      const T* xp = x + (o * G + g) * inner;
      for (int64_t i = 0; i < inner; ++i) sum += xp[i];
    }
    const double m = sum / double(M);
    double ss = 0;
    for (int64_t o = 0; o < s.outer; ++o) {
      const T* xp = x + (o * G + g) * inner;
      for (int64_t i = 0; i < inner; ++i) {
        const double d = double(xp[i]) - m;
        ss += d * d;
      }
    }
    const double var = ss / double(M);
    mean[g] = T(m);
    invstd[g] = T(1.0 / std::sqrt(var + eps));
    if (running_mean) {
      // PyTorch's update, with the unbiased variance for running_var.
      const double unbiased = ss / double(M - 1);
      running_mean[g] = T(momentum * m + (1.0 - momentum) * double(running_mean[g]));
      running_var[g] = T(momentum * unbiased + (1.0 - momentum) * double(running_var[g]));
    }
  }
  affine_apply(s, x, mean, invstd, weight, bias, y);
}

template <typename T>
void norm_forward_eval(const NormGroups& s, const T* x, const T* mean, const T* var,
                       const T* weight, const T* bias, double eps, T* y, T* invstd) {
  // G values only: not worth threads.
  for (int64_t g = 0; g < s.groups; ++g) invstd[g] = T(1.0 / std::sqrt(double(var[g]) + eps));
  affine_apply(s, x, mean, invstd, weight, bias, y);
}

template <typename T>
void norm_backward_reduce(const NormGroups& s, const T* x, const T* mean, const T* invstd,
                          const T* dy, double* sum_dy, double* sum_dy_xhat) {
  const int64_t G = s.groups, inner = s.inner;
  // One thread per group, summing in a fixed order (deterministic, no atomics).
#pragma omp parallel for schedule(static) if (s.outer * G * inner > kParallelMin)
  for (int64_t g = 0; g < G; ++g) {
    const double m = mean[g], is = invstd[g];
    double a = 0, b = 0;
    for (int64_t o = 0; o < s.outer; ++o) {
      const T* xp = x + (o * G + g) * inner;
      const T* dp = dy + (o * G + g) * inner;
      if (sum_dy_xhat) {
        for (int64_t i = 0; i < inner; ++i) {
          a += dp[i];
          b += double(dp[i]) * ((double(xp[i]) - m) * is);
        }
      } else {
        for (int64_t i = 0; i < inner; ++i) a += dp[i];
      }
    }
    sum_dy[g] = a;
    if (sum_dy_xhat) sum_dy_xhat[g] = b;
  }
}

template <typename T>
void norm_backward_input(const NormGroups& s, const T* x, const T* mean, const T* invstd,
                         const T* weight, const T* dy, const double* sum_dy,
                         const double* sum_dy_xhat, T* dx) {
  const int64_t G = s.groups, inner = s.inner;
  const double M = double(s.group_size());
  const bool batch_stats = sum_dy != nullptr;
  // One thread per (o, g) plane; every dx element is written exactly once.
#pragma omp parallel for collapse(2) schedule(static) if (s.outer * G * inner > kParallelMin)
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t g = 0; g < G; ++g) {
      const int64_t c = g % s.channels;
      const T k = (weight ? weight[c] : T(1)) * invstd[g];
      const T* dp = dy + (o * G + g) * inner;
      T* dxp = dx + (o * G + g) * inner;
      if (!batch_stats) {
        for (int64_t i = 0; i < inner; ++i) dxp[i] = dp[i] * k;
        continue;
      }
      // dx = k * (dy - Sdy/M - xhat * Sdyx/M): the 1/M is folded into the group constants.
      const T a = T(sum_dy[g] / M), b = T(sum_dy_xhat[g] / M);
      const T m = mean[g], is = invstd[g];
      const T* xp = x + (o * G + g) * inner;
      for (int64_t i = 0; i < inner; ++i) dxp[i] = k * (dp[i] - a - (xp[i] - m) * is * b);
    }
}

template <typename T>
void norm_backward_weight(const NormGroups& s, const double* sum_dy, const double* sum_dy_xhat,
                          T* dweight, T* dbias) {
  // C outputs, each a sum of G/C group sums in group order: too small for threads.
  for (int64_t c = 0; c < s.channels; ++c) {
    double w = 0, b = 0;
    for (int64_t g = c; g < s.groups; g += s.channels) {
      if (dweight) w += sum_dy_xhat[g];
      b += sum_dy[g];
    }
    if (dweight) dweight[c] = T(w);
    if (dbias) dbias[c] = T(b);
  }
}

NABLA_NORM_INSTANTIATE(float)
NABLA_NORM_INSTANTIATE(double)

}  // namespace nabla::cpu
