// The gradient attacks (FGSM, BIM, PGD L-inf/L2, MI-FGSM, the targeted L2 attack), the noise
// control, target selection and the shared bookkeeping. The math is in attack.h.
//
// One loop (iterate) serves every gradient attack: per step it takes g = dL/dx with
// nabla::grad on a fresh leaf, freezes the samples that already succeed, and applies the fused
// step. Frozen samples are kept with `where`, so they stay bit for bit where they were.
#include <nabla/attack/attack.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include <nabla/autograd.h>
#include <nabla/ops.h>

#include "detail.h"

namespace nabla::attack {

namespace detail {

namespace {

// Checks f(x)'s output: [N, K] logits on x's device.
Tensor checked_logits(const Run& run, const Tensor& logits, const Tensor& x) {
  NABLA_CHECK(logits.defined() && logits.dim() == 2 && logits.size(0) == x.size(0), run.name,
              ": the model must map x ", x.str(), " to logits [N, K] with N = ", x.size(0),
              ", got ", logits.defined() ? logits.str() : std::string("an undefined tensor"));
  NABLA_CHECK(logits.device() == x.device(), run.name, ": the model returned logits ", logits.str(),
              " for x ", x.str(), " on another device");
  return logits;
}

std::vector<int64_t> argmax_host(const Tensor& logits) {
  return argmax(logits.detach(), 1).to(Device::cpu()).to_vector<int64_t>();
}

Tensor choose_targets_from(const char* name, const Tensor& logits, const std::vector<int64_t>& y,
                           TargetMode mode, int64_t cls, Generator& gen) {
  const int64_t N = logits.size(0), K = logits.size(1);
  std::vector<int64_t> t(static_cast<size_t>(N));
  switch (mode) {
    case TargetMode::None:
      throw Error(nabla::detail::concat(name, ": target mode 'none' has no targets"));
    case TargetMode::Given:
      NABLA_CHECK(cls >= 0 && cls < K, name, ": target class ", cls, " is outside [0, ", K,
                  ") for logits ", logits.str());
      std::fill(t.begin(), t.end(), cls);
      break;
    case TargetMode::Random: {
      NABLA_CHECK(K >= 2, name, ": a random target needs at least 2 classes, logits ",
                  logits.str());
      // y + 1 + U{0..K-2} mod K is uniform over the K - 1 classes other than y.
      std::vector<int64_t> r = randint(0, K - 1, {N}, &gen).to_vector<int64_t>();
      for (int64_t n = 0; n < N; ++n) t[size_t(n)] = (y[size_t(n)] + 1 + r[size_t(n)]) % K;
      break;
    }
    case TargetMode::LeastLikely:
      t = argmax_host(neg(logits.detach()));
      break;
  }
  return from_vector<int64_t>(t, {N});
}

}  // namespace

Run prepare(const char* name, const Model& model, const Tensor& x, const Tensor& y,
            const Options& opt, Generator& gen, bool needs_grad) {
  Run run;
  run.name = name;
  NABLA_CHECK(bool(model), name, ": the model is empty");
  NABLA_CHECK(x.defined() && y.defined(), name, ": x and y must be defined");
  NABLA_CHECK(is_floating(x.dtype()) && x.dim() >= 2 && x.size(0) >= 1, name,
              ": x must be a floating batch [N, ...] with N >= 1, got ", x.str());
  NABLA_CHECK(y.dtype() == DType::Int64 && y.shape() == Shape{x.size(0)}, name,
              ": y must be int64 [", x.size(0), "] (one label per sample of x ", x.str(), "), got ",
              y.str());
  NABLA_CHECK(opt.eps >= 0 && std::isfinite(opt.eps), name, ": eps must be finite and >= 0, got ",
              opt.eps);
  NABLA_CHECK(opt.alpha >= 0 && std::isfinite(opt.alpha), name,
              ": alpha must be finite and >= 0, got ", opt.alpha);
  NABLA_CHECK(opt.steps >= 1, name, ": steps must be >= 1, got ", opt.steps);
  NABLA_CHECK(opt.restarts >= 1, name, ": restarts must be >= 1, got ", opt.restarts);
  NABLA_CHECK(opt.momentum >= 0, name, ": momentum must be >= 0, got ", opt.momentum);
  NABLA_CHECK(opt.lambda >= 0, name, ": lambda must be >= 0, got ", opt.lambda);
  NABLA_CHECK(!needs_grad || grad_enabled(), name,
              ": needs the input gradient, but grad mode is off (called under NoGradGuard)");
  run.x0 = x.detach().contiguous();
  run.N = x.size(0);
  {
    // Pixel space: the projection clips to [0, 1], which only makes sense when x starts there.
    NoGradGuard ng;
    const double lo = -max(neg(run.x0)).item<double>(), hi = max(run.x0).item<double>();
    NABLA_CHECK(lo >= 0 && hi <= 1, name, ": x ", x.str(), " must lie in [0, 1], found [", lo, ", ",
                hi, "]");
  }
  run.y = y.to(Device::cpu()).to_vector<int64_t>();
  Tensor logits;
  {
    NoGradGuard ng;
    logits = checked_logits(run, model(run.x0), run.x0);
  }
  run.K = logits.size(1);
  for (int64_t n = 0; n < run.N; ++n)
    NABLA_CHECK(run.y[size_t(n)] >= 0 && run.y[size_t(n)] < run.K, name, ": label y[", n,
                "] = ", run.y[size_t(n)], " is outside [0, ", run.K, ") for logits ", logits.str());
  run.clean_pred = argmax_host(logits);
  run.targeted = opt.target_mode != TargetMode::None;
  if (run.targeted) {
    run.target_cpu =
        choose_targets_from(name, logits, run.y, opt.target_mode, opt.target_class, gen);
    run.target = run.target_cpu.to_vector<int64_t>();
    run.labels = run.target_cpu.to(x.device());
  } else {
    run.labels = from_vector<int64_t>(run.y, {run.N}).to(x.device());
  }
  return run;
}

std::vector<int64_t> predict(const Run& run, const Model& model, const Tensor& x) {
  NoGradGuard ng;
  return argmax_host(checked_logits(run, model(x), x));
}

std::vector<bool> successes(const Run& run, const std::vector<int64_t>& pred) {
  std::vector<bool> s(size_t(run.N));
  for (size_t n = 0; n < s.size(); ++n)
    s[n] = run.targeted ? pred[n] == run.target[n] : pred[n] != run.y[n];
  return s;
}

Tensor sample_mask(const std::vector<bool>& keep, const Tensor& like) {
  std::vector<double> m(keep.size());
  for (size_t n = 0; n < keep.size(); ++n) m[n] = keep[n] ? 1 : 0;
  Shape s(size_t(like.dim()), 1);
  s[0] = like.size(0);
  return from_vector<double>(m, s).to(like.dtype()).to(like.device());
}

Result finish(const Run& run, const Model& model, const Tensor& x_adv) {
  Result r;
  r.x_adv = x_adv.detach();
  const std::vector<int64_t> pred = predict(run, model, r.x_adv);
  r.pred = from_vector<int64_t>(pred, {run.N});
  r.target = run.target_cpu;
  r.success = successes(run, pred);
  const std::vector<double> a = r.x_adv.to(Device::cpu()).to_vector<double>();
  const std::vector<double> b = run.x0.to(Device::cpu()).to_vector<double>();
  const size_t D = a.size() / size_t(run.N);
  r.linf.assign(size_t(run.N), 0);
  r.l2.assign(size_t(run.N), 0);
  r.l0.assign(size_t(run.N), 0);
  for (size_t n = 0; n < size_t(run.N); ++n) {
    double linf = 0, l2 = 0, l0 = 0;
    for (size_t i = n * D; i < (n + 1) * D; ++i) {
      const double d = std::abs(a[i] - b[i]);
      linf = std::max(linf, d);
      l2 += d * d;
      l0 += d != 0;
    }
    r.linf[n] = linf;
    r.l2[n] = std::sqrt(l2);
    r.l0[n] = l0;
  }
  return r;
}

}  // namespace detail

using namespace detail;

namespace {

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double e : v) s += e;
  return v.empty() ? 0 : s / double(v.size());
}

enum class Step { Linf, L2, Momentum };

// The per-sample reduction dims of x [N, ...]: {1, ..., dim - 1}.
std::vector<int64_t> sample_dims(const Tensor& x) {
  std::vector<int64_t> d;
  for (int64_t i = 1; i < x.dim(); ++i) d.push_back(i);
  return d;
}

// g = dl/dx at x for l = sum_n CE(f(x)_n, labels_n) (+ lambda ||x - x0||^2 when lambda > 0),
// negated when the run is targeted so that every caller ascends. Only x is a leaf of the
// request, so no parameter gradient is computed. Writes argmax f(x) into pred.
Tensor loss_grad(const Run& run, const Model& model, const Tensor& x, double lambda,
                 std::vector<int64_t>& pred) {
  Tensor xl = x.detach();
  xl.set_requires_grad(true);
  Tensor logits = model(xl);
  NABLA_CHECK(logits.defined() && logits.dim() == 2 && logits.size(0) == run.N, run.name,
              ": the model must map x ", xl.str(), " to logits [N, K], got ",
              logits.defined() ? logits.str() : std::string("an undefined tensor"));
  pred = argmax(logits.detach(), 1).to(Device::cpu()).to_vector<int64_t>();
  Tensor loss = cross_entropy(logits, run.labels, Tensor(), Reduction::Sum);
  if (lambda > 0) {
    Tensor d = sub(xl, run.x0);
    loss = add(loss, mul(sum(mul(d, d)), lambda));
  }
  if (run.targeted) loss = neg(loss);
  NABLA_CHECK(loss.requires_grad(), run.name,
              ": the loss does not depend on x (does the model use engine ops on its input?)");
  return grad({loss}, {xl})[0];
}

// `steps` ascent steps from start; samples with frozen[n] never move. Returns the last iterate.
Tensor iterate(const Run& run, const Model& model, const Tensor& start, Step kind,
               const Options& opt, int steps, double alpha, double eps, double lambda,
               const std::vector<bool>& frozen) {
  std::vector<bool> active(size_t(run.N));
  for (size_t n = 0; n < active.size(); ++n) active[n] = !frozen[n];
  Tensor x = start, momentum;
  std::vector<int64_t> pred;
  for (int k = 0; k < steps; ++k) {
    Tensor g = loss_grad(run, model, x, lambda, pred);
    if (opt.early_stop) {
      const std::vector<bool> ok = successes(run, pred);
      for (size_t n = 0; n < active.size(); ++n) active[n] = active[n] && !ok[n];
    }
    if (std::none_of(active.begin(), active.end(), [](bool a) { return a; })) break;
    Tensor next;
    {
      NoGradGuard ng;
      if (kind == Step::Momentum) {
        // m = mu m + g / ||g||_1 per sample; the floor keeps a zero gradient from giving NaN.
        Tensor l1 = clamp(sum(abs(g), sample_dims(g), true), 1e-30,
                          std::numeric_limits<double>::infinity());
        Tensor gn = div(g, l1);
        momentum = momentum.defined() ? add(mul(momentum, opt.momentum), gn) : gn;
        g = momentum;
      }
      next = kind == Step::L2 ? attack_step_l2(x, g, run.x0, alpha, eps)
                              : attack_step_linf(x, g, run.x0, alpha, eps);
    }
    const bool all_active = std::all_of(active.begin(), active.end(), [](bool a) { return a; });
    x = all_active ? next : where(sample_mask(active, x), next, x);
  }
  return x;
}

// x0 + U(-eps, eps) per element, projected onto the L-inf ball and [0, 1] by the fused step
// (a zero gradient only projects), so the start satisfies the same bounds as every iterate.
Tensor linf_start(const Run& run, double eps, Generator& gen) {
  NoGradGuard ng;
  const Tensor& x0 = run.x0;
  Tensor u = rand(x0.shape(), x0.dtype(), x0.device(), &gen, -eps, eps);
  return attack_step_linf(add(x0, u), zeros_like(x0), x0, 0, eps);
}

// Uniform in the L2 ball of radius eps: a Gaussian direction scaled to eps * U^(1/D), then
// clipped to [0, 1] and projected (for rounding) by the fused step.
Tensor l2_start(const Run& run, double eps, Generator& gen) {
  NoGradGuard ng;
  const Tensor& x0 = run.x0;
  const int64_t D = x0.numel() / run.N;
  Tensor dir = randn(x0.shape(), x0.dtype(), x0.device(), &gen);
  Tensor norm = clamp(sqrt(sum(mul(dir, dir), sample_dims(x0), true)), 1e-30,
                      std::numeric_limits<double>::infinity());
  Shape rs(size_t(x0.dim()), 1);
  rs[0] = run.N;
  Tensor radius = pow(rand(rs, x0.dtype(), x0.device(), &gen), 1.0 / double(D));
  Tensor x = clamp(add(x0, mul(div(dir, norm), mul(radius, eps))), 0, 1);
  return attack_step_l2(x, zeros_like(x0), x0, 0, eps);
}

// PGD with restarts: each sample keeps its first successful restart, else the last one.
Result pgd(const char* name, const Model& model, const Tensor& x, const Tensor& y,
           const Options& opt, Step kind) {
  Generator gen(opt.seed);
  const Run run = prepare(name, model, x, y, opt, gen, true);
  std::vector<bool> done(size_t(run.N), false);
  Tensor best;
  for (int r = 0; r < opt.restarts; ++r) {
    Tensor start = run.x0;
    if (opt.random_start)
      start = kind == Step::L2 ? l2_start(run, opt.eps, gen) : linf_start(run, opt.eps, gen);
    Tensor xr = iterate(run, model, start, kind, opt, opt.steps, opt.alpha, opt.eps, 0, done);
    best = r == 0 ? xr : where(sample_mask(done, xr), best, xr);
    if (r + 1 < opt.restarts) {
      const std::vector<bool> ok = successes(run, predict(run, model, xr));
      for (size_t n = 0; n < done.size(); ++n) done[n] = done[n] || ok[n];
    }
  }
  return finish(run, model, best);
}

}  // namespace

double Result::success_rate() const {
  if (success.empty()) return 0;
  return double(std::count(success.begin(), success.end(), true)) / double(success.size());
}
double Result::mean_linf() const {
  return mean_of(linf);
}
double Result::mean_l2() const {
  return mean_of(l2);
}
double Result::mean_l0() const {
  return mean_of(l0);
}

double Result::accuracy(const Tensor& y) const {
  NABLA_CHECK(
      y.defined() && y.dtype() == DType::Int64 && pred.defined() && y.shape() == pred.shape(),
      "Result::accuracy: y must be int64 ", shape_str(pred.defined() ? pred.shape() : Shape{}),
      ", got ", y.defined() ? y.str() : std::string("an undefined tensor"));
  const std::vector<int64_t> a = pred.to_vector<int64_t>(),
                             b = y.to(Device::cpu()).to_vector<int64_t>();
  if (a.empty()) return 0;
  int64_t hits = 0;
  for (size_t n = 0; n < a.size(); ++n) hits += a[n] == b[n];
  return double(hits) / double(a.size());
}

const char* target_mode_name(TargetMode m) {
  switch (m) {
    case TargetMode::None:
      return "none";
    case TargetMode::Given:
      return "given";
    case TargetMode::Random:
      return "random";
    case TargetMode::LeastLikely:
      return "least-likely";
  }
  return "?";
}

Tensor choose_targets(const Model& model, const Tensor& x, const Tensor& y, TargetMode mode,
                      int64_t cls, Generator& gen) {
  NABLA_CHECK(mode != TargetMode::None, "choose_targets: target mode 'none' has no targets");
  Options opt;
  opt.target_mode = mode;
  opt.target_class = cls;
  return prepare("choose_targets", model, x, y, opt, gen, false).target_cpu;
}

Result fgsm(const Model& model, const Tensor& x, const Tensor& y, const Options& opt) {
  Generator gen(opt.seed);
  const Run run = prepare("fgsm", model, x, y, opt, gen, true);
  const std::vector<bool> none(size_t(run.N), false);
  // Plain FGSM is one step of size eps from x0; the random-start variant steps alpha.
  Tensor start = opt.random_start ? linf_start(run, opt.eps, gen) : run.x0;
  const double step = opt.random_start ? opt.alpha : opt.eps;
  return finish(run, model, iterate(run, model, start, Step::Linf, opt, 1, step, opt.eps, 0, none));
}

Result bim(const Model& model, const Tensor& x, const Tensor& y, const Options& opt) {
  Generator gen(opt.seed);
  const Run run = prepare("bim", model, x, y, opt, gen, true);
  const std::vector<bool> none(size_t(run.N), false);
  return finish(
      run, model,
      iterate(run, model, run.x0, Step::Linf, opt, opt.steps, opt.alpha, opt.eps, 0, none));
}

Result pgd_linf(const Model& model, const Tensor& x, const Tensor& y, const Options& opt) {
  return pgd("pgd_linf", model, x, y, opt, Step::Linf);
}

Result pgd_l2(const Model& model, const Tensor& x, const Tensor& y, const Options& opt) {
  return pgd("pgd_l2", model, x, y, opt, Step::L2);
}

Result mifgsm(const Model& model, const Tensor& x, const Tensor& y, const Options& opt) {
  Generator gen(opt.seed);
  const Run run = prepare("mifgsm", model, x, y, opt, gen, true);
  const std::vector<bool> none(size_t(run.N), false);
  return finish(
      run, model,
      iterate(run, model, run.x0, Step::Momentum, opt, opt.steps, opt.alpha, opt.eps, 0, none));
}

Result targeted_l2(const Model& model, const Tensor& x, const Tensor& y, const Options& opt) {
  NABLA_CHECK(opt.target_mode != TargetMode::None,
              "targeted_l2: needs a target (target mode given, random or least-likely), got "
              "'none' for x ",
              x.defined() ? x.str() : std::string("undefined"));
  Generator gen(opt.seed);
  const Run run = prepare("targeted_l2", model, x, y, opt, gen, true);
  const std::vector<bool> none(size_t(run.N), false);
  // No eps-ball: closeness comes from the lambda term alone, so the projection radius is
  // infinite and the fused L2 step only normalises the gradient and clips to [0, 1].
  return finish(run, model,
                iterate(run, model, run.x0, Step::L2, opt, opt.steps, opt.alpha,
                        std::numeric_limits<double>::infinity(), opt.lambda, none));
}

Result random_noise(const Model& model, const Tensor& x, const Tensor& y, const Options& opt) {
  Generator gen(opt.seed);
  const Run run = prepare("random_noise", model, x, y, opt, gen, false);
  Tensor x_adv;
  {
    // The fused step with a random gradient: each element moves by exactly +-eps, then clips.
    NoGradGuard ng;
    Tensor g = rand(run.x0.shape(), run.x0.dtype(), run.x0.device(), &gen, -1, 1);
    x_adv = attack_step_linf(run.x0, g, run.x0, opt.eps, opt.eps);
  }
  return finish(run, model, x_adv);
}

const std::vector<std::string>& method_names() {
  static const std::vector<std::string> names = {"fgsm",   "bim",      "pgd",      "pgd-l2",
                                                 "mifgsm", "targeted", "onepixel", "noise"};
  return names;
}

Result run(const std::string& method, const Model& model, const Tensor& x, const Tensor& y,
           const Options& opt) {
  if (method == "fgsm") return fgsm(model, x, y, opt);
  if (method == "bim") return bim(model, x, y, opt);
  if (method == "pgd") return pgd_linf(model, x, y, opt);
  if (method == "pgd-l2") return pgd_l2(model, x, y, opt);
  if (method == "mifgsm") return mifgsm(model, x, y, opt);
  if (method == "targeted") return targeted_l2(model, x, y, opt);
  if (method == "onepixel") return one_pixel(model, x, y, opt);
  if (method == "noise") return random_noise(model, x, y, opt);
  std::string known;
  for (const auto& n : method_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error(
      nabla::detail::concat("attack::run: unknown method '", method, "' (known: ", known, ")"));
}

}  // namespace nabla::attack
