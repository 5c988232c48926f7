// Carlini-Wagner L2 (Carlini & Wagner 2017, "Towards evaluating the robustness of neural
// networks"). The math is in attack.h.
//
// The variable is w (x' = (tanh(w) + 1) / 2), a fresh leaf at every step: nabla::grad(L, {w})
// is the only gradient taken, so no weight gradient runs. Adam's moments and the binary search
// over c are per sample; the class that f6 compares against (the best other class) is chosen on
// the host at each step, which is the subgradient of the max.
#include <algorithm>
#include <cmath>
#include <limits>

#include <nabla/attack/attack.h>
#include <nabla/autograd.h>
#include <nabla/ops.h>

#include "detail.h"

namespace nabla::attack {

using namespace detail;

Result carlini_wagner(const Model& model, const Tensor& x, const Tensor& y, const Options& opt) {
  const char* name = "carlini_wagner";
  NABLA_CHECK(opt.objective.kind() == Objective::Kind::Classification, name,
              ": needs a classification objective, got '", opt.objective.name(), "'");
  NABLA_CHECK(opt.cw_search >= 1 && opt.cw_c > 0 && opt.cw_lr > 0 && opt.cw_kappa >= 0, name,
              ": needs cw_search >= 1, cw_c > 0, cw_lr > 0, cw_kappa >= 0, got ", opt.cw_search,
              ", ", opt.cw_c, ", ", opt.cw_lr, ", ", opt.cw_kappa);
  Generator gen(opt.seed);
  const Run run = prepare(name, model, x, y, opt, gen, true);
  const int64_t N = run.N, K = run.K;
  const Tensor& x0 = run.x0;
  const DType dt = x0.dtype();
  const Device dev = x0.device();
  const std::vector<int64_t> dims = sample_dims_of(x0);
  Shape rs(size_t(x0.dim()), 1);
  rs[0] = N;

  // w_0 = atanh((2 x0 - 1)(1 - 1e-6)), on the host in double.
  std::vector<double> w0 = x0.to(Device::cpu()).to(DType::Float64).to_vector<double>();
  for (double& v : w0) v = std::atanh((2 * v - 1) * (1 - 1e-6));
  const Tensor w_start = from_vector<double>(w0, x0.shape()).to(dt).to(dev);

  std::vector<double> c(size_t(N), opt.cw_c), lower(size_t(N), 0),
      upper(size_t(N), std::numeric_limits<double>::infinity());
  std::vector<double> best_l2(size_t(N), std::numeric_limits<double>::infinity());
  std::vector<int64_t> evals(size_t(N), 0);
  Tensor best = x0;
  const double b1 = 0.9, b2 = 0.999;
  for (int b = 0; b < opt.cw_search; ++b) {
    Tensor w = w_start, m = zeros_like(w_start), v = zeros_like(w_start);
    const Tensor cn = from_vector<double>(c, {N}).to(dt).to(dev);
    std::vector<bool> found(size_t(N), false);
    for (int it = 0; it < opt.steps; ++it) {
      Tensor wl = w.detach();
      wl.set_requires_grad(true);
      const Tensor xp = mul(add(tanh(wl), 1.0), 0.5);
      const Tensor out = checked_output(run, model(xp), xp);
      const std::vector<double> z =
          out.detach().to(Device::cpu()).to(DType::Float64).to_vector<double>();
      // Coefficients of the margin: z_y - z_other (untargeted), z_other - z_t (targeted).
      std::vector<double> a(size_t(N * K), 0);
      for (int64_t n = 0; n < N; ++n) {
        const int64_t cls = run.targeted ? run.target[size_t(n)] : run.y_host[size_t(n)];
        int64_t other = -1;
        for (int64_t k = 0; k < K; ++k)
          if (k != cls && (other < 0 || z[size_t(n * K + k)] > z[size_t(n * K + other)])) other = k;
        a[size_t(n * K + cls)] += run.targeted ? -1 : 1;
        a[size_t(n * K + other)] += run.targeted ? 1 : -1;
      }
      const Tensor margin =
          sum(mul(out, from_vector<double>(a, {N, K}).to(dt).to(dev)), {1});  // [N]
      const Tensor f6 = clamp(margin, -opt.cw_kappa, std::numeric_limits<double>::infinity());
      const Tensor d = sub(xp, x0);
      const Tensor dist = sum(mul(d, d), dims);  // [N]
      const Tensor loss = sum(add(dist, mul(cn, f6)));
      const Tensor g = grad({loss}, {wl})[0];
      // Bookkeeping at x' (before the step): success and its L2 distance.
      const std::vector<bool> ok = successes(run, out);
      const std::vector<double> dv =
          dist.detach().to(Device::cpu()).to(DType::Float64).to_vector<double>();
      const std::vector<double> mv =
          margin.detach().to(Device::cpu()).to(DType::Float64).to_vector<double>();
      std::vector<bool> better(size_t(N), false);
      for (int64_t n = 0; n < N; ++n) {
        ++evals[size_t(n)];
        // Success with the confidence asked for: the margin at most -kappa.
        const bool s = ok[size_t(n)] && mv[size_t(n)] <= -opt.cw_kappa;
        if (!s) continue;
        found[size_t(n)] = true;
        const double l2 = std::sqrt(dv[size_t(n)]);
        if (l2 < best_l2[size_t(n)]) {
          best_l2[size_t(n)] = l2;
          better[size_t(n)] = true;
        }
      }
      {
        NoGradGuard ng;
        if (std::any_of(better.begin(), better.end(), [](bool q) { return q; }))
          best = where(sample_mask(better, best), xp.detach(), best);
        // Adam on w, bias-corrected.
        m = add(mul(m, b1), mul(g, 1 - b1));
        v = add(mul(v, b2), mul(mul(g, g), 1 - b2));
        const double c1 = 1 - std::pow(b1, it + 1), c2 = 1 - std::pow(b2, it + 1);
        w = sub(w, mul(div(div(m, c1), add(sqrt(div(v, c2)), 1e-8)), opt.cw_lr));
      }
    }
    for (int64_t n = 0; n < N; ++n) {
      const size_t i = size_t(n);
      if (found[i]) {
        upper[i] = std::min(upper[i], c[i]);
        c[i] = (lower[i] + upper[i]) / 2;
      } else {
        lower[i] = std::max(lower[i], c[i]);
        c[i] = std::isfinite(upper[i]) ? (lower[i] + upper[i]) / 2 : c[i] * 10;
      }
    }
  }
  Result res = finish(run, model, best);
  res.queries = evals;
  return res;
}

}  // namespace nabla::attack
