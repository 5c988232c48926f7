// Fused attack steps: argument checks and dispatch to kernels/attack.h. Nothing is recorded:
// inputs are detached, so the result never has a grad_fn.
#include <nabla/ops/attack_step.h>

#include <nabla/dispatch.h>
#include <nabla/ops/common.h>

#include "kernels/attack.h"

namespace nabla {

using namespace ops_detail;

namespace {

void check_step_args(const char* op, const Tensor& x, const Tensor& g, const Tensor& x0,
                     double alpha, double eps, double lo, double hi) {
  check_same(op, {&x, &g, &x0});
  NABLA_CHECK(x.shape() == g.shape() && x.shape() == x0.shape(), op,
              ": x, g and x0 must have the same shape, got x ", x.str(), ", g ", g.str(), ", x0 ",
              x0.str());
  // v >= 0 is false for NaN, so NaN is refused too.
  NABLA_CHECK(alpha >= 0, op, ": alpha must be >= 0, got ", alpha, " for x ", x.str());
  NABLA_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps, " for x ", x.str());
  NABLA_CHECK(lo <= hi, op, ": lo ", lo, " > hi ", hi, " for x ", x.str());
}

}  // namespace

Tensor attack_step_linf(const Tensor& x, const Tensor& g, const Tensor& x0, double alpha,
                        double eps, double lo, double hi) {
  const char* op = "attack_step_linf";
  check_step_args(op, x, g, x0, alpha, eps, lo, hi);
  Tensor xc = x.detach().contiguous(), gc = g.detach().contiguous();
  Tensor x0c = x0.detach().contiguous();
  Tensor y = new_like(xc, xc.shape());
  dispatch_floating(xc, op, [&](auto t) {
    using T = decltype(t);
    // The scalars are rounded to T here, once (the recipe in kernels/attack.h).
    const auto step = NABLA_KERNEL(xc.device(), attack_step_linf<T>);
    step(xc.data<T>(), gc.data<T>(), x0c.data<T>(), y.data<T>(), xc.numel(), T(alpha), T(eps),
         T(lo), T(hi));
  });
  count_kernel("attack_step_linf");
  return y;
}

Tensor attack_step_apgd_linf(const Tensor& x, const Tensor& xp, const Tensor& g, const Tensor& x0,
                             const Tensor& eta, double a, double eps, double lo, double hi) {
  const char* op = "attack_step_apgd_linf";
  check_step_args(op, x, g, x0, 0, eps, lo, hi);
  check_same(op, {&x, &xp});
  NABLA_CHECK(xp.shape() == x.shape(), op, ": xp must be shaped like x ", x.str(), ", got ",
              xp.str());
  NABLA_CHECK(x.dim() >= 1, op, ": x needs a batch dim, got x ", x.str());
  NABLA_CHECK(a >= 0 && a <= 1, op, ": the momentum weight a must be in [0, 1], got ", a, " for x ",
              x.str());
  const int64_t N = x.size(0), D = N > 0 ? x.numel() / N : 0;
  NABLA_CHECK(eta.defined() && is_floating(eta.dtype()) && eta.shape() == Shape{N} &&
                  eta.device() == x.device(),
              op, ": eta must be a floating [", N, "] tensor on x's device, for x ", x.str(),
              ", got ", eta.defined() ? eta.str() : std::string("an undefined tensor"));
  Tensor xc = x.detach().contiguous(), pc = xp.detach().contiguous(), gc = g.detach().contiguous();
  Tensor x0c = x0.detach().contiguous(), ec = eta.detach().to(x.dtype()).contiguous();
  for (double e : ec.to(Device::cpu()).to_vector<double>())
    NABLA_CHECK(e >= 0, op, ": every step size eta_n must be >= 0, got ", e, " for x ", x.str());
  Tensor y = new_like(xc, xc.shape());
  dispatch_floating(xc, op, [&](auto t) {
    using T = decltype(t);
    const auto step = NABLA_KERNEL(xc.device(), attack_step_apgd_linf<T>);
    step(xc.data<T>(), pc.data<T>(), gc.data<T>(), x0c.data<T>(), ec.data<T>(), y.data<T>(), N, D,
         T(a), T(1 - a), T(eps), T(lo), T(hi));
  });
  count_kernel("attack_step_apgd_linf");
  return y;
}

Tensor attack_step_l2(const Tensor& x, const Tensor& g, const Tensor& x0, double alpha, double eps,
                      double lo, double hi) {
  const char* op = "attack_step_l2";
  check_step_args(op, x, g, x0, alpha, eps, lo, hi);
  NABLA_CHECK(x.dim() >= 1, op, ": x needs a batch dim, got x ", x.str());
  Tensor xc = x.detach().contiguous(), gc = g.detach().contiguous();
  Tensor x0c = x0.detach().contiguous();
  const int64_t N = xc.size(0), D = N > 0 ? xc.numel() / N : 0;
  Tensor y = new_like(xc, xc.shape());
  // Per-sample squared norms of g and of the step, in double whatever T is.
  Tensor gsq = empty({N}, DType::Float64, xc.device());
  Tensor dsq = empty({N}, DType::Float64, xc.device());
  dispatch_floating(xc, op, [&](auto t) {
    using T = decltype(t);
    const auto sq_norms = NABLA_KERNEL(xc.device(), attack_l2_sq_norms<T>);
    sq_norms(gc.data<T>(), gsq.data<double>(), N, D);
    count_kernel("attack_l2_sq_norms");
    const auto delta = NABLA_KERNEL(xc.device(), attack_step_l2_delta<T>);
    delta(xc.data<T>(), gc.data<T>(), x0c.data<T>(), gsq.data<double>(), alpha, y.data<T>(),
          dsq.data<double>(), N, D);
    count_kernel("attack_step_l2_delta");
    const auto project = NABLA_KERNEL(xc.device(), attack_step_l2_project<T>);
    project(x0c.data<T>(), dsq.data<double>(), eps, T(lo), T(hi), y.data<T>(), N, D);
    count_kernel("attack_step_l2_project");
  });
  return y;
}

}  // namespace nabla
