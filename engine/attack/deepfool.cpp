// DeepFool (Moosavi-Dezfooli, Fawzi, Frossard 2016), L2 and L-inf. The math is in attack.h.
//
// Per iteration: one forward pass at x_i (a fresh leaf), then one input-gradient backward per
// class (grad of sum_n f_k(x_i)_n with the graph retained), so each sample gets the Jacobian
// rows grad f_k(x_i); the linearised step is chosen on the host, per sample.
#include <algorithm>
#include <cmath>
#include <limits>

#include <nabla/attack/attack.h>
#include <nabla/autograd.h>
#include <nabla/ops.h>

#include "detail.h"

namespace nabla::attack {

using namespace detail;

Result deepfool(const Model& model, const Tensor& x, const Tensor& y, const Options& opt) {
  const char* name = "deepfool";
  NABLA_CHECK(opt.objective.kind() == Objective::Kind::Classification &&
                  opt.target_mode == TargetMode::None,
              name, ": needs the untargeted classification objective, got objective '",
              opt.objective.name(), "', target mode '", target_mode_name(opt.target_mode), "'");
  NABLA_CHECK(opt.overshoot >= 0, name, ": overshoot must be >= 0, got ", opt.overshoot);
  Generator gen(opt.seed);
  const Run run = prepare(name, model, x, y, opt, gen, true);
  const int64_t N = run.N, K = run.K, D = run.x0.numel() / N;
  NABLA_CHECK(K >= 2, name, ": needs K >= 2 classes, got output ", shape_str(run.out_shape));
  const bool l2 = opt.norm == Norm::L2;
  const std::vector<double> x0 = run.x0.to(Device::cpu()).to(DType::Float64).to_vector<double>();
  std::vector<double> r(size_t(N * D), 0), cur = x0;
  std::vector<bool> active(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) active[size_t(n)] = !run.clean_success[size_t(n)];
  std::vector<int64_t> iters(size_t(N), 0);
  const auto make_x = [&](const std::vector<double>& v) {
    return from_vector<double>(v, run.x0.shape()).to(run.x0.dtype()).to(run.x0.device());
  };
  for (int it = 0; it < opt.steps; ++it) {
    if (std::none_of(active.begin(), active.end(), [](bool a) { return a; })) break;
    Tensor xl = make_x(cur);
    xl.set_requires_grad(true);
    const Tensor out = checked_output(run, model(xl), xl);
    const std::vector<bool> ok = successes(run, out);
    for (int64_t n = 0; n < N; ++n)
      if (ok[size_t(n)]) active[size_t(n)] = false;
    if (std::none_of(active.begin(), active.end(), [](bool a) { return a; })) break;
    const std::vector<double> z =
        out.detach().to(Device::cpu()).to(DType::Float64).to_vector<double>();
    // J[k] = grad of f_k at x_i for every sample: [K][N * D].
    std::vector<std::vector<double>> J(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k) {
      std::vector<double> e(size_t(N * K), 0);
      for (int64_t n = 0; n < N; ++n) e[size_t(n * K + k)] = 1;
      const Tensor go = from_vector<double>(e, {N, K}).to(out.dtype()).to(out.device());
      J[size_t(k)] =
          grad({out}, {xl}, {go}, true)[0].to(Device::cpu()).to(DType::Float64).to_vector<double>();
    }
    for (int64_t n = 0; n < N; ++n) {
      if (!active[size_t(n)]) continue;
      ++iters[size_t(n)];
      const int64_t yn = run.y_host[size_t(n)];
      double best = std::numeric_limits<double>::infinity(), best_f = 0, best_norm = 0;
      int64_t l = -1;
      for (int64_t k = 0; k < K; ++k) {
        if (k == yn) continue;
        double nrm = 0;
        for (int64_t i = 0; i < D; ++i) {
          const double w = J[size_t(k)][size_t(n * D + i)] - J[size_t(yn)][size_t(n * D + i)];
          nrm += l2 ? w * w : std::abs(w);
        }
        if (l2) nrm = std::sqrt(nrm);
        if (!(nrm > 0)) continue;
        const double f = std::abs(z[size_t(n * K + k)] - z[size_t(n * K + yn)]);
        if (f / nrm < best) {
          best = f / nrm;
          best_f = f;
          best_norm = nrm;
          l = k;
        }
      }
      if (l < 0) {  // no class moves: the gradient vanished, nothing to step along
        active[size_t(n)] = false;
        continue;
      }
      for (int64_t i = 0; i < D; ++i) {
        const size_t e = size_t(n * D + i);
        const double w = J[size_t(l)][e] - J[size_t(yn)][e];
        r[e] += l2 ? (best_f / best_norm + kDeepFoolPad) / best_norm * w
                   : (best_f / best_norm + kDeepFoolPad) * double((w > 0) - (w < 0));
        cur[e] = std::min(1.0, std::max(0.0, x0[e] + (1 + opt.overshoot) * r[e]));
      }
    }
  }
  Result res = finish(run, model, make_x(cur));
  res.queries = iters;
  return res;
}

}  // namespace nabla::attack
