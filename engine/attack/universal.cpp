// Universal adversarial perturbations: one v for a whole data set. Classification after
// Moosavi-Dezfooli, Fawzi, Fawzi, Frossard 2017 ("Universal adversarial perturbations",
// Algorithm 1, with DeepFool as the inner attack); any other objective, segmentation included,
// by stochastic sign-gradient ascent on the batch-summed loss after Metzen, Kumar, Brox,
// Fischer 2017 ("Universal adversarial perturbations against semantic image segmentation").
// The contract is in attack.h.
#include <algorithm>
#include <cmath>
#include <numeric>

#include <nabla/attack/attack.h>
#include <nabla/autograd.h>
#include <nabla/ops.h>

#include "detail.h"

namespace nabla::attack {

using namespace detail;

namespace {

// P_eps in the norm of opt, on a host vector.
void project(std::vector<double>& v, const Options& opt) {
  if (opt.norm == Norm::Linf) {
    for (double& e : v) e = std::min(opt.eps, std::max(-opt.eps, e));
    return;
  }
  double s = 0;
  for (double e : v) s += e * e;
  s = std::sqrt(s);
  if (s > opt.eps)
    for (double& e : v) e *= opt.eps / s;
}

}  // namespace

Universal universal_perturbation(const Model& model, const Tensor& x, const Tensor& y,
                                 const Options& opt, int passes, int64_t batch, Device dev) {
  const char* name = "universal_perturbation";
  NABLA_CHECK(x.defined() && x.dim() == 4 && y.defined() && y.dim() >= 1 && y.size(0) == x.size(0),
              name, ": needs images x [N, C, H, W] and labels with N rows, got x ",
              x.defined() ? x.str() : std::string("undefined"), " and y ",
              y.defined() ? y.str() : std::string("undefined"));
  NABLA_CHECK(passes >= 1 && batch >= 1, name, ": passes and batch must be >= 1, got ", passes,
              " and ", batch);
  NABLA_CHECK(opt.eps >= 0, name, ": eps must be >= 0, got ", opt.eps);
  const int64_t N = x.size(0), D = x.numel() / N;
  const bool cls = opt.objective.kind() == Objective::Kind::Classification &&
                   opt.target_mode == TargetMode::None;
  NABLA_CHECK(cls || opt.norm == Norm::Linf, name, ": the sign-gradient variant (objective '",
              opt.objective.name(), "') is L-inf only");
  Shape vs = x.shape();
  vs[0] = 1;
  std::vector<double> v(static_cast<size_t>(D), 0);
  const auto v_tensor = [&](Device d) { return from_vector<double>(v, vs).to(x.dtype()).to(d); };
  // The clean predictions (classification) and the evaluation on clip(x + v).
  const auto predict = [&](const Tensor& xb) {
    NoGradGuard ng;
    return argmax(model(xb.to(dev)), 1).to(Device::cpu()).to_vector<int64_t>();
  };
  std::vector<int64_t> clean_pred;
  if (cls)
    for (int64_t lo = 0; lo < N; lo += batch) {
      const std::vector<int64_t> p = predict(x.slice(lo, std::min(N, lo + batch)).contiguous());
      clean_pred.insert(clean_pred.end(), p.begin(), p.end());
    }
  Universal u;
  const auto evaluate = [&] {
    const Tensor vt = v_tensor(dev);
    double fooled = 0, score = 0;
    Generator g(opt.seed);
    for (int64_t lo = 0; lo < N; lo += batch) {
      const int64_t hi = std::min(N, lo + batch);
      Tensor xb = clamp(add(x.slice(lo, hi).contiguous().to(dev), vt), 0, 1);
      Tensor yb = y.slice(lo, hi).contiguous().to(dev);
      Tensor out;
      {
        NoGradGuard ng;
        out = model(xb);
      }
      for (double s : opt.objective.score(out, yb)) score += s;
      if (cls) {
        const std::vector<int64_t> p =
            argmax(out.detach(), 1).to(Device::cpu()).to_vector<int64_t>();
        for (int64_t k = 0; k < hi - lo; ++k) fooled += p[size_t(k)] != clean_pred[size_t(lo + k)];
      } else {
        Options o = opt;
        o.eps = 0;
        const Run r = prepare(name, model, xb, yb, o, g, false);
        for (bool b : r.clean_success) fooled += b;
      }
    }
    u.fooling = fooled / double(N);
    u.score = score / double(N);
  };

  Generator gen(opt.seed);
  for (int pass = 0; pass < passes; ++pass) {
    u.passes = pass + 1;
    if (cls) {
      // Algorithm 1: visit the samples in a shuffled order; a sample that v does not fool yet
      // gets its DeepFool step from x_i + v, and v moves by it, projected.
      std::vector<int64_t> order(static_cast<size_t>(N));
      std::iota(order.begin(), order.end(), 0);
      const std::vector<double> keys =
          rand({N}, DType::Float64, Device::cpu(), &gen).to_vector<double>();
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return keys[size_t(a)] < keys[size_t(b)]; });
      for (int64_t i : order) {
        const Tensor xi = clamp(add(x.slice(i, i + 1).contiguous(), v_tensor(Device::cpu())), 0, 1);
        const int64_t p = predict(xi)[0];
        if (p != clean_pred[size_t(i)]) continue;
        const Options& o = opt;
        const Tensor label = from_vector<int64_t>({clean_pred[size_t(i)]}, {1});
        const Result r = deepfool(model, xi.to(dev), label.to(dev), o);
        if (!r.success[0]) continue;
        const std::vector<double> xa =
            r.x_adv.to(Device::cpu()).to(DType::Float64).to_vector<double>();
        const std::vector<double> xv = xi.to(DType::Float64).to_vector<double>();
        for (int64_t k = 0; k < D; ++k) v[size_t(k)] += xa[size_t(k)] - xv[size_t(k)];
        project(v, opt);
      }
    } else {
      for (int64_t lo = 0; lo < N; lo += batch) {
        const int64_t hi = std::min(N, lo + batch);
        Tensor vl = v_tensor(dev);
        vl.set_requires_grad(true);
        Tensor xb = clamp(add(x.slice(lo, hi).contiguous().to(dev), vl), 0, 1);
        Tensor yb = y.slice(lo, hi).contiguous().to(dev);
        const Run r =
            prepare(name, model, x.slice(lo, hi).contiguous().to(dev), yb, opt, gen, true);
        const Tensor loss = total_loss(r, checked_output(r, model(xb), xb));
        const Tensor g = grad({loss}, {vl})[0];
        Tensor next;
        {
          NoGradGuard ng;
          // The fused L-inf step in v-space: centre 0, box [-eps, eps].
          next = attack_step_linf(vl.detach(), g, zeros_like(g), opt.alpha, opt.eps, -opt.eps,
                                  opt.eps);
        }
        v = next.to(Device::cpu()).to(DType::Float64).to_vector<double>();
      }
    }
    evaluate();
    if (cls && u.fooling >= 1 - opt.uap_delta) break;
  }
  u.v = from_vector<double>(v, vs).to(x.dtype());
  return u;
}

}  // namespace nabla::attack
