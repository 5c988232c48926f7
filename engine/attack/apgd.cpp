// APGD and APGD-T (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an
// ensemble of diverse parameter-free attacks") and the DLR loss. The math is in attack.h.
//
// One loop (run_apgd) serves both: per iteration it takes the loss values and g = dL/dx at the
// current iterate with nabla::grad on a fresh leaf (no weight gradient), keeps the best point
// per sample, takes the momentum step (L-inf: the fused kernel attack_step_apgd_linf; L2: the
// normalised gradient step, then the fused L2 projection attack_step_l2 with a zero gradient),
// and at each checkpoint halves the step size of the samples that meet condition (1) or (2)
// and moves them back to their best point. The per-sample state (eta, loss values, counts)
// lives on the host: it is N numbers, and the decisions are per sample.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>

#include <nabla/attack/attack.h>
#include <nabla/autograd.h>
#include <nabla/ops.h>

#include "detail.h"

namespace nabla::attack {

using namespace detail;

namespace {

// Per-sample loss [N] of an output, differentiable in it.
using LossFn = std::function<Tensor(const Run&, const Tensor& out)>;

// The samples of t (rows) given by keep, as a [N, 1, ..., 1] where-mask.
Tensor mask_of(const std::vector<bool>& keep, const Tensor& like) {
  return sample_mask(keep, like);
}

bool any(const std::vector<bool>& v) {
  return std::any_of(v.begin(), v.end(), [](bool b) { return b; });
}

// DLR coefficient rows: out . A_n is the numerator's z_y - z_other, out . B_n the denominator.
void dlr_coefficients(const std::vector<double>& z, int64_t N, int64_t K,
                      const std::vector<int64_t>& y, const std::vector<int64_t>* t,
                      std::vector<double>& A, std::vector<double>& B) {
  A.assign(size_t(N * K), 0);
  B.assign(size_t(N * K), 0);
  std::vector<int64_t> order(static_cast<size_t>(K));
  for (int64_t n = 0; n < N; ++n) {
    const double* zn = z.data() + n * K;
    std::iota(order.begin(), order.end(), 0);
    // Decreasing logit; ties by the lower class index, so the order is deterministic.
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return zn[a] > zn[b]; });
    double* an = A.data() + n * K;
    double* bn = B.data() + n * K;
    const int64_t yn = y[size_t(n)];
    an[yn] += 1;
    if (t) {
      an[(*t)[size_t(n)]] -= 1;
      bn[order[0]] += 1;
      bn[order[2]] -= 0.5;
      bn[order[3]] -= 0.5;
    } else {
      an[order[0] == yn ? order[1] : order[0]] -= 1;
      bn[order[0]] += 1;
      bn[order[2]] -= 1;
    }
  }
}

// l_n = -(out . A_n) / (out . B_n + 1e-12), the coefficient rows taken at out's values (the
// sort is piecewise constant, so the gradient is that of the selected logits).
Tensor dlr_from(const Tensor& out, const std::vector<int64_t>& y, const std::vector<int64_t>* t) {
  const int64_t N = out.size(0), K = out.size(1);
  const std::vector<double> z = out.detach().to(Device::cpu()).contiguous().to_vector<double>();
  std::vector<double> A, B;
  dlr_coefficients(z, N, K, y, t, A, B);
  const Tensor a = from_vector<double>(A, {N, K}).to(out.dtype()).to(out.device());
  const Tensor b = from_vector<double>(B, {N, K}).to(out.dtype()).to(out.device());
  const Tensor num = sum(mul(out, a), {1});
  const Tensor den = add(sum(mul(out, b), {1}), 1e-12);
  return neg(div(num, den));
}

struct Eval {
  std::vector<double> f;  // loss per sample
  std::vector<bool> ok;   // success per sample
  Tensor g;               // dL/dx
};

Eval evaluate(const Run& run, const Model& model, const Tensor& x, const LossFn& loss) {
  Tensor xl = x.detach();
  xl.set_requires_grad(true);
  Tensor out = checked_output(run, model(xl), xl);
  Eval e;
  e.ok = successes(run, out);
  Tensor l = loss(run, out);
  NABLA_CHECK(l.requires_grad(), run.name,
              ": the loss does not depend on x (does the model use engine ops on its input?)");
  e.f = l.detach().to(Device::cpu()).to(DType::Float64).to_vector<double>();
  e.g = grad({sum(l)}, {xl})[0];
  return e;
}

// The per-sample state of one APGD run over the whole batch.
struct State {
  std::vector<bool> done;  // fooled at some iterate (x_adv holds the first such iterate)
  Tensor x_adv;            // first successful iterate per sample, else undefined rows
  std::vector<int64_t> queries;
  std::vector<double> eta;  // the last restart's step sizes
  Tensor best;              // x_max of the last restart for the samples never fooled
};

// One APGD run from `start` for the samples with !st.done; updates st.
void run_apgd(const Run& run, const Model& model, const Tensor& start, const LossFn& loss,
              const Options& opt, State& st) {
  const size_t N = size_t(run.N);
  const double eps = opt.eps;
  std::vector<bool> active(N);
  for (size_t n = 0; n < N; ++n) active[n] = !st.done[n];
  const auto record = [&](const Tensor& x, const std::vector<bool>& ok) {
    std::vector<bool> fresh(N, false);
    for (size_t n = 0; n < N; ++n) {
      if (active[n]) ++st.queries[n];
      fresh[n] = active[n] && ok[n] && !st.done[n];
    }
    if (!any(fresh)) return;
    st.x_adv = where(mask_of(fresh, x), x, st.x_adv);
    for (size_t n = 0; n < N; ++n) {
      if (!fresh[n]) continue;
      st.done[n] = true;
      if (opt.early_stop) active[n] = false;
    }
  };

  Tensor x = start, xp = start;
  Eval e = evaluate(run, model, x, loss);
  record(x, e.ok);
  Tensor g = e.g, best = x, gbest = g;
  std::vector<double> f = e.f, fbest = e.f;
  std::vector<double> eta(N, 2 * eps);
  std::vector<double> eta_ck = eta, fbest_ck = fbest;
  std::vector<int> incr(N, 0);
  const std::vector<int> ck = apgd_checkpoints(opt.steps);
  size_t j = 0;
  int last_w = 0;
  for (int k = 0; k < opt.steps && any(active); ++k) {
    Tensor next;
    {
      NoGradGuard ng;
      const double a = k == 0 ? 1.0 : opt.apgd_momentum;
      const Tensor eta_t = from_vector<double>(eta, {run.N}).to(x.dtype()).to(x.device());
      if (opt.norm == Norm::Linf) {
        next = attack_step_apgd_linf(x, xp, g, run.x0, eta_t, a, eps);
      } else {
        // z = P2(x + eta g / ||g||), then the momentum combination, projected again. The
        // projections are the fused L2 step with a zero gradient.
        Shape rs(size_t(x.dim()), 1);
        rs[0] = run.N;
        const Tensor gn = clamp(sqrt(sum(mul(g, g), sample_dims_of(g), true)), 1e-12,
                                std::numeric_limits<double>::infinity());
        const Tensor zero = zeros_like(x);
        const Tensor z =
            attack_step_l2(add(x, mul(div(g, gn), eta_t.reshape(rs))), zero, run.x0, 0, eps);
        const Tensor t = add(add(x, mul(sub(z, x), a)), mul(sub(x, xp), 1 - a));
        next = attack_step_l2(t, zero, run.x0, 0, eps);
      }
      next = where(mask_of(active, x), next, x);
    }
    xp = x;
    x = next;
    e = evaluate(run, model, x, loss);
    record(x, e.ok);
    g = e.g;
    std::vector<bool> improved(N, false);
    for (size_t n = 0; n < N; ++n) {
      incr[n] += e.f[n] > f[n];
      f[n] = e.f[n];
      if (f[n] > fbest[n]) {
        fbest[n] = f[n];
        improved[n] = true;
      }
    }
    if (any(improved)) {
      NoGradGuard ng;
      const Tensor m = mask_of(improved, x);
      best = where(m, x, best);
      gbest = where(m, g, gbest);
    }
    if (j < ck.size() && k + 1 == ck[j]) {
      const int w = ck[j];
      std::vector<bool> halve(N, false);
      for (size_t n = 0; n < N; ++n) {
        const bool c1 = double(incr[n]) < opt.apgd_rho * double(w - last_w);
        const bool c2 = eta[n] == eta_ck[n] && fbest[n] == fbest_ck[n];
        halve[n] = c1 || c2;
        eta_ck[n] = eta[n];
        fbest_ck[n] = fbest[n];
        incr[n] = 0;
        if (halve[n]) {
          eta[n] /= 2;
          f[n] = fbest[n];
        }
      }
      if (any(halve)) {
        NoGradGuard ng;
        const Tensor m = mask_of(halve, x);
        x = where(m, best, x);
        g = where(m, gbest, g);
      }
      last_w = w;
      ++j;
    }
  }
  st.eta = eta;
  // Samples never fooled keep this restart's best point (the last restart wins, as in PGD).
  std::vector<bool> open(N);
  for (size_t n = 0; n < N; ++n) open[n] = !st.done[n];
  st.best = st.best.defined() ? where(mask_of(open, best), best, st.best) : best;
}

void check_apgd(const char* name, const Options& opt) {
  NABLA_CHECK(opt.apgd_rho >= 0 && opt.apgd_rho <= 1, name, ": rho must be in [0, 1], got ",
              opt.apgd_rho);
  NABLA_CHECK(opt.apgd_momentum >= 0 && opt.apgd_momentum <= 1, name,
              ": the momentum alpha must be in [0, 1], got ", opt.apgd_momentum);
}

// APGD with restarts over the batch; loss_for(restart) gives the loss of each restart.
Result apgd_restarts(const Run& run, const Model& model, const Options& opt, Generator& gen,
                     const std::function<LossFn(int)>& loss_for, int runs) {
  State st;
  st.done = run.clean_success;
  st.queries.assign(size_t(run.N), 0);
  st.x_adv = run.x0;
  for (int r = 0;
       r < runs && !std::all_of(st.done.begin(), st.done.end(), [](bool b) { return b; }); ++r) {
    const Tensor start =
        opt.norm == Norm::Linf ? linf_start(run, opt.eps, gen) : l2_start(run, opt.eps, gen);
    run_apgd(run, model, start, loss_for(r), opt, st);
  }
  if (!st.best.defined()) st.best = run.x0;
  Tensor x_final;
  {
    NoGradGuard ng;
    x_final = where(mask_of(st.done, st.x_adv), st.x_adv, st.best);
  }
  Result res = finish(run, model, x_final);
  res.queries = st.queries;
  res.step_size = st.eta.empty() ? std::vector<double>(size_t(run.N), 2 * opt.eps) : st.eta;
  return res;
}

}  // namespace

std::vector<int> apgd_checkpoints(int steps) {
  std::vector<int> w;
  double p_prev = 0, p = 0.22;
  while (true) {
    const int wj = int(std::ceil(p * steps - 1e-9));
    if (wj > steps) break;
    if (wj >= 1 && (w.empty() || wj > w.back())) w.push_back(wj);
    const double p_next = p + std::max(p - p_prev - 0.03, 0.06);
    p_prev = p;
    p = p_next;
  }
  return w;
}

Tensor dlr_loss(const Tensor& logits, const Tensor& y, const Tensor& target) {
  NABLA_CHECK(logits.defined() && is_floating(logits.dtype()) && logits.dim() == 2,
              "dlr_loss: ", "logits must be floating [N, K], got ",
              logits.defined() ? logits.str() : std::string("undefined"));
  const int64_t N = logits.size(0), K = logits.size(1);
  NABLA_CHECK(K >= (target.defined() ? 4 : 3), "dlr_loss: needs K >= ", target.defined() ? 4 : 3,
              " classes, got logits ", logits.str());
  NABLA_CHECK(y.defined() && y.dtype() == DType::Int64 && y.shape() == Shape{N},
              "dlr_loss: y must be int64 [", N, "] for logits ", logits.str(), ", got ",
              y.defined() ? y.str() : std::string("undefined"));
  NABLA_CHECK(!target.defined() || (target.dtype() == DType::Int64 && target.shape() == Shape{N}),
              "dlr_loss: target must be int64 [", N, "] for logits ", logits.str(), ", got ",
              target.defined() ? target.str() : std::string("undefined"));
  const std::vector<int64_t> yv = y.to(Device::cpu()).contiguous().to_vector<int64_t>();
  std::vector<int64_t> tv;
  if (target.defined()) tv = target.to(Device::cpu()).contiguous().to_vector<int64_t>();
  for (int64_t n = 0; n < N; ++n) {
    NABLA_CHECK(yv[size_t(n)] >= 0 && yv[size_t(n)] < K, "dlr_loss: y[", n, "] = ", yv[size_t(n)],
                " is outside [0, ", K, ") for logits ", logits.str());
    if (!tv.empty())
      NABLA_CHECK(tv[size_t(n)] >= 0 && tv[size_t(n)] < K, "dlr_loss: target[", n,
                  "] = ", tv[size_t(n)], " is outside [0, ", K, ") for logits ", logits.str());
  }
  return dlr_from(logits, yv, tv.empty() ? nullptr : &tv);
}

Result apgd(const Model& model, const Tensor& x, const Tensor& y, const Options& opt) {
  const char* name = "apgd";
  check_apgd(name, opt);
  Generator gen(opt.seed);
  const Run run = prepare(name, model, x, y, opt, gen, true);
  LossFn loss = [](const Run& r, const Tensor& out) { return sample_losses(r, out); };
  if (opt.apgd_loss == ApgdLoss::DLR) {
    NABLA_CHECK(run.classification() && !run.targeted && run.K >= 3, name,
                ": the DLR loss needs an untargeted classification objective with K >= 3 ",
                "classes, got objective '", run.objective.name(), "' with output ",
                shape_str(run.out_shape), run.targeted ? " (targeted)" : "");
    loss = [](const Run& r, const Tensor& out) { return dlr_from(out, r.y_host, nullptr); };
  }
  return apgd_restarts(
      run, model, opt, gen, [&](int) { return loss; }, opt.restarts);
}

Result apgd_targeted(const Model& model, const Tensor& x, const Tensor& y, const Options& opt) {
  const char* name = "apgd_targeted";
  check_apgd(name, opt);
  NABLA_CHECK(opt.objective.kind() == Objective::Kind::Classification &&
                  opt.target_mode == TargetMode::None,
              name, ": needs the untargeted classification objective (it picks its own targets), ",
              "got objective '", opt.objective.name(), "', target mode '",
              target_mode_name(opt.target_mode), "'");
  NABLA_CHECK(opt.target_classes >= 1, name, ": target_classes must be >= 1, got ",
              opt.target_classes);
  Generator gen(opt.seed);
  const Run run = prepare(name, model, x, y, opt, gen, true);
  NABLA_CHECK(run.K >= 4, name, ": the targeted DLR loss needs K >= 4 classes, got output ",
              shape_str(run.out_shape));
  // Targets: the classes ranked 2, 3, ... by the clean logits (rank 1 is the prediction).
  const Tensor clean = forward(run, model, run.x0);
  const std::vector<double> z = clean.to(Device::cpu()).contiguous().to_vector<double>();
  const int64_t N = run.N, K = run.K;
  const int runs = int(std::min<int64_t>(opt.target_classes, K - 1));
  std::vector<std::vector<int64_t>> targets(static_cast<size_t>(runs),
                                            std::vector<int64_t>(static_cast<size_t>(N)));
  std::vector<int64_t> order(static_cast<size_t>(K));
  for (int64_t n = 0; n < N; ++n) {
    std::iota(order.begin(), order.end(), 0);
    const double* zn = z.data() + n * K;
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return zn[a] > zn[b]; });
    for (int r = 0; r < runs; ++r) targets[size_t(r)][size_t(n)] = order[size_t(r + 1)];
  }
  Options o = opt;
  o.restarts = 1;
  // Every target class gets opt.restarts runs, each on the samples still robust.
  const int total = runs * std::max(1, opt.restarts);
  return apgd_restarts(
      run, model, o, gen,
      [&](int r) -> LossFn {
        const std::vector<int64_t>* t = &targets[size_t(r / std::max(1, opt.restarts))];
        return [t](const Run& rr, const Tensor& out) { return dlr_from(out, rr.y_host, t); };
      },
      total);
}

}  // namespace nabla::attack
