// JSMA (Papernot, McDaniel, Jha, Fredrikson, Celik, Swami 2016, "The limitations of deep
// learning in adversarial settings"): the saliency-map attack over pixel pairs, increasing
// features. The math is in attack.h.
//
// The saliency map is built from two input gradients of the logits per iteration, both from
// nabla::grad with the graph retained: dZ_t/dx (grad output one-hot at t) and d(sum_j Z_j)/dx
// (grad output ones); b = the second minus the first. The pair search is on the host.
#include <algorithm>
#include <cmath>
#include <limits>

#include <nabla/attack/attack.h>
#include <nabla/autograd.h>
#include <nabla/ops.h>

#include "detail.h"

namespace nabla::attack {

using namespace detail;

Result jsma(const Model& model, const Tensor& x, const Tensor& y, const Options& opt) {
  const char* name = "jsma";
  NABLA_CHECK(opt.objective.kind() == Objective::Kind::Classification &&
                  opt.target_mode != TargetMode::None,
              name, ": needs a targeted classification objective (target mode given, random ",
              "or least-likely), got objective '", opt.objective.name(), "', target mode '",
              target_mode_name(opt.target_mode), "'");
  NABLA_CHECK(opt.jsma_gamma > 0 && opt.jsma_gamma <= 1, name,
              ": jsma_gamma must be in (0, 1], got ", opt.jsma_gamma);
  Generator gen(opt.seed);
  const Run run = prepare(name, model, x, y, opt, gen, true);
  const int64_t N = run.N, K = run.K, D = run.x0.numel() / N;
  const int64_t budget = int64_t(std::floor(opt.jsma_gamma * double(D)));
  std::vector<double> cur = run.x0.to(Device::cpu()).to(DType::Float64).to_vector<double>();
  std::vector<std::vector<int64_t>> domain(static_cast<size_t>(N));
  std::vector<int64_t> changed(static_cast<size_t>(N), 0), iters(static_cast<size_t>(N), 0);
  std::vector<bool> active(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    active[size_t(n)] = !run.clean_success[size_t(n)];
    for (int64_t i = 0; i < D; ++i)
      if (cur[size_t(n * D + i)] < 1) domain[size_t(n)].push_back(i);
  }
  const auto make_x = [&] {
    return from_vector<double>(cur, run.x0.shape()).to(run.x0.dtype()).to(run.x0.device());
  };
  std::vector<double> onehot(size_t(N * K), 0);
  for (int64_t n = 0; n < N; ++n) onehot[size_t(n * K + run.target[size_t(n)])] = 1;
  while (true) {
    for (int64_t n = 0; n < N; ++n)
      if (changed[size_t(n)] + 2 > budget || domain[size_t(n)].size() < 2)
        active[size_t(n)] = false;
    if (std::none_of(active.begin(), active.end(), [](bool a) { return a; })) break;
    Tensor xl = make_x();
    xl.set_requires_grad(true);
    const Tensor out = checked_output(run, model(xl), xl);
    const std::vector<bool> ok = successes(run, out);
    for (int64_t n = 0; n < N; ++n)
      if (ok[size_t(n)]) active[size_t(n)] = false;
    if (std::none_of(active.begin(), active.end(), [](bool a) { return a; })) break;
    const Tensor go_t = from_vector<double>(onehot, {N, K}).to(out.dtype()).to(out.device());
    const std::vector<double> a =
        grad({out}, {xl}, {go_t}, true)[0].to(Device::cpu()).to(DType::Float64).to_vector<double>();
    const std::vector<double> all = grad({out}, {xl}, {ones_like(out)}, false)[0]
                                        .to(Device::cpu())
                                        .to(DType::Float64)
                                        .to_vector<double>();
    for (int64_t n = 0; n < N; ++n) {
      if (!active[size_t(n)]) continue;
      ++iters[size_t(n)];
      const std::vector<int64_t>& G = domain[size_t(n)];
      const double* an = a.data() + n * D;
      const double* sn = all.data() + n * D;
      double best = 0;
      size_t bp = 0, bq = 0;
      bool found = false;
      for (size_t p = 0; p < G.size(); ++p) {
        const double ap = an[G[p]], bpv = sn[G[p]] - an[G[p]];
        for (size_t q = p + 1; q < G.size(); ++q) {
          const double A = ap + an[G[q]], B = bpv + sn[G[q]] - an[G[q]];
          if (A > 0 && B < 0 && A * -B > best) {
            best = A * -B;
            bp = p;
            bq = q;
            found = true;
          }
        }
      }
      if (!found) {
        active[size_t(n)] = false;
        continue;
      }
      const int64_t ip = G[bp], iq = G[bq];
      cur[size_t(n * D + ip)] = 1;
      cur[size_t(n * D + iq)] = 1;
      changed[size_t(n)] += 2;
      std::vector<int64_t>& Gm = domain[size_t(n)];
      Gm.erase(Gm.begin() + int64_t(bq));  // bq > bp: erase the later one first
      Gm.erase(Gm.begin() + int64_t(bp));
    }
  }
  Result res = finish(run, model, make_x());
  res.queries = iters;
  return res;
}

}  // namespace nabla::attack
