// CPU optimizer updates; kernels/optim.h gives the update rules and the exact floating-point
// recipe that these loops follow (and that the CUDA twins will follow).
#include "kernels/optim.h"

#include <cmath>

namespace nabla::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // below this, threads cost more than they save
}  // namespace

template <typename T>
void sgd_step(T* p, const T* g, T* buf, int64_t n, const SgdStepArgs& a) {
  // Scalars rounded to T once, as ATen does with a Python scalar argument.
  const T wd = T(a.weight_decay), mu = T(a.momentum), keep = T(1 - a.dampening);
  const T neg_lr = T(-a.lr);
  const bool decay = a.weight_decay != 0, momentum = a.momentum != 0;
  // One element per iteration, static chunks across threads.
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    T d = g[i];
    if (decay) d = std::fma(p[i], wd, d);
    if (momentum) {
      const T b = a.first ? d : std::fma(d, keep, buf[i] * mu);
      buf[i] = b;
      d = a.nesterov ? std::fma(b, mu, d) : b;
    }
    p[i] = std::fma(d, neg_lr, p[i]);
  }
}

template <typename T>
void adam_step(T* p, const T* g, T* m, T* v, int64_t n, const AdamStepArgs& a) {
  // Bias corrections in double, once per parameter, exactly as torch.optim computes them.
  const double t = double(a.step);
  const double bias_correction1 = 1 - std::pow(a.beta1, t);
  const double bias_correction2 = 1 - std::pow(a.beta2, t);
  const T neg_step_size = T(-(a.lr / bias_correction1));
  const T bc2_sqrt = T(std::sqrt(bias_correction2));
  const T w = T(1 - a.beta1), w_minus_1 = w - T(1);
  const bool small_w = std::abs(w) < T(0.5);  // ATen's lerp picks the better-conditioned form
  const T beta2 = T(a.beta2), one_minus_beta2 = T(1 - a.beta2), eps = T(a.eps);
  // 1 - lr*wd as one fma, written out so that it does not depend on -ffp-contract (the CUDA
  // twin computes the same fma).
  const T wd = T(a.weight_decay), shrink = T(std::fma(-a.lr, a.weight_decay, 1.0));
  const bool decay = a.weight_decay != 0, decoupled = a.decoupled_weight_decay;
  // One element per iteration, static chunks across threads.
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    T x = p[i], d = g[i];
    if (decay) {
      if (decoupled)
        x = x * shrink;
      else
        d = std::fma(x, wd, d);
    }
    const T diff = d - m[i];
    const T mi = small_w ? std::fma(w, diff, m[i]) : std::fma(w_minus_1, diff, d);
    const T vi = std::fma(one_minus_beta2 * d, d, v[i] * beta2);
    const T denom = std::sqrt(vi) / bc2_sqrt + eps;
    m[i] = mi;
    v[i] = vi;
    p[i] = x + (neg_step_size * mi) / denom;
  }
}

NABLA_OPTIM_INSTANTIATE(float)
NABLA_OPTIM_INSTANTIATE(double)

}  // namespace nabla::cpu
