// CPU optimizer updates; kernels/optim.h gives the update rules and the exact floating-point
// recipe that these loops follow (and that the CUDA twins will follow).
#include "kernels/optim.h"

#include <cmath>
#include <type_traits>

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

namespace {

// The Adam loop for one choice of the two per-call branches, so that the loop body has no control
// flow and vectorizes (with them inside, GCC kept it scalar: "control flow in loop"). Per element
// the arithmetic is the same fma/sqrt/div sequence either way, so results are bit-identical.
//   kCoupled  L2 weight decay added to the gradient (weight_decay != 0, not decoupled); decoupled
//             decay is a multiplication by `shrink` (1 when off, which leaves x unchanged)
//   kSmallW   the form of the lerp of m toward d that ATen picks for |1 - beta1| < 0.5
template <typename T, bool kCoupled, bool kSmallW>
void adam_loop(T* p, const T* g, T* m, T* v, int64_t n, T shrink, T wd, T w, T beta2,
               T one_minus_beta2, T bc2_sqrt, T eps, T neg_step_size) {
  // One element per iteration, static chunks across threads; omp simd asserts that p, g, m and v
  // do not overlap, which the compiler cannot prove.
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const T x = p[i] * shrink;
    const T d = kCoupled ? std::fma(p[i], wd, g[i]) : g[i];
    const T diff = d - m[i];
    const T mi = kSmallW ? std::fma(w, diff, m[i]) : std::fma(w - T(1), diff, d);
    const T vi = std::fma(one_minus_beta2 * d, d, v[i] * beta2);
    const T denom = std::sqrt(vi) / bc2_sqrt + eps;
    m[i] = mi;
    v[i] = vi;
    p[i] = x + (neg_step_size * mi) / denom;
  }
}

}  // namespace

template <typename T>
void adam_step(T* p, const T* g, T* m, T* v, int64_t n, const AdamStepArgs& a) {
  // Bias corrections in double, once per parameter, exactly as torch.optim computes them.
  const double t = double(a.step);
  const double bias_correction1 = 1 - std::pow(a.beta1, t);
  const double bias_correction2 = 1 - std::pow(a.beta2, t);
  const T neg_step_size = T(-(a.lr / bias_correction1));
  const T bc2_sqrt = T(std::sqrt(bias_correction2));
  const T w = T(1 - a.beta1);
  const bool small_w = std::abs(w) < T(0.5);  // ATen's lerp picks the better-conditioned form
  const T beta2 = T(a.beta2), one_minus_beta2 = T(1 - a.beta2), eps = T(a.eps);
  // 1 - lr*wd as one fma, written out so that it does not depend on -ffp-contract (the CUDA
  // twin computes the same fma).
  const bool decay = a.weight_decay != 0, decoupled = a.decoupled_weight_decay;
  const T wd = T(a.weight_decay);
  const T shrink = decay && decoupled ? T(std::fma(-a.lr, a.weight_decay, 1.0)) : T(1);
  const bool coupled = decay && !decoupled;
  auto run = [&](auto coupled_tag, auto small_w_tag) {
    adam_loop<T, decltype(coupled_tag)::value, decltype(small_w_tag)::value>(
        p, g, m, v, n, shrink, wd, w, beta2, one_minus_beta2, bc2_sqrt, eps, neg_step_size);
  };
  using Yes = std::true_type;
  using No = std::false_type;
  if (coupled)
    small_w ? run(Yes{}, Yes{}) : run(Yes{}, No{});
  else
    small_w ? run(No{}, Yes{}) : run(No{}, No{});
}

NABLA_OPTIM_INSTANTIATE(float)
NABLA_OPTIM_INSTANTIATE(double)

}  // namespace nabla::cpu
