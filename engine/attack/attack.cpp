// The gradient attacks (FGSM, BIM, PGD L-inf/L2, MI-FGSM, the targeted L2 attack), the noise
// control, the shared bookkeeping and adversarial_accuracy. The math is in attack.h; the
// objectives (loss, success, score, targets) are in objective.cpp.
//
// One loop (iterate) serves every gradient attack: per step it takes g = dL/dx with
// nabla::grad on a fresh leaf, freezes the samples that already succeed, and applies the fused
// step. Frozen samples are kept with `where`, so they stay bit for bit where they were.
#include <nabla/attack/attack.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include <nabla/autograd.h>
#include <nabla/metrics/classification.h>
#include <nabla/ops.h>

#include "detail.h"

namespace nabla::attack {

namespace detail {

Run prepare(const char* name, const Model& model, const Tensor& x, const Tensor& y,
            const Options& opt, Generator& gen, bool needs_grad) {
  Run run;
  run.name = name;
  run.objective = opt.objective;
  NABLA_CHECK(bool(model), name, ": the model is empty");
  NABLA_CHECK(x.defined() && y.defined(), name, ": x and y must be defined");
  NABLA_CHECK(is_floating(x.dtype()) && x.dim() >= 2 && x.size(0) >= 1, name,
              ": x must be a floating batch [N, ...] with N >= 1, got ", x.str());
  check_labels(name, run.objective, x, y, opt);
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
  run.y = y.detach().contiguous().to(x.device());
  Tensor out;
  {
    NoGradGuard ng;
    out = model(run.x0);
  }
  bind(run, out, opt, gen);
  run.clean_success = successes(run, out);
  return run;
}

std::vector<int64_t> sample_dims_of(const Tensor& x) {
  std::vector<int64_t> d;
  for (int64_t i = 1; i < x.dim(); ++i) d.push_back(i);
  return d;
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
  const Tensor out = forward(run, model, r.x_adv);
  r.pred = predictions(run, out);
  r.target = run.target_cpu;
  r.success = successes(run, out);
  r.score = scores(run, out);
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
  Tensor norm = clamp(sqrt(sum(mul(dir, dir), sample_dims_of(x0), true)), 1e-30,
                      std::numeric_limits<double>::infinity());
  Shape rs(size_t(x0.dim()), 1);
  rs[0] = run.N;
  Tensor radius = pow(rand(rs, x0.dtype(), x0.device(), &gen), 1.0 / double(D));
  Tensor x = clamp(add(x0, mul(div(dir, norm), mul(radius, eps))), 0, 1);
  return attack_step_l2(x, zeros_like(x0), x0, 0, eps);
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

// g = dl/dx at x for l = L(x) - lambda ||x - x0||^2 (the penalty only when lambda > 0), the
// objective's loss that every caller ascends. Only x is a leaf of the request, so no parameter
// gradient is computed. Writes the objective's success test on f(x) into ok.
Tensor loss_grad(const Run& run, const Model& model, const Tensor& x, double lambda,
                 std::vector<bool>& ok) {
  Tensor xl = x.detach();
  xl.set_requires_grad(true);
  Tensor out = checked_output(run, model(xl), xl);
  ok = successes(run, out);
  Tensor loss = total_loss(run, out);
  if (lambda > 0) {
    Tensor d = sub(xl, run.x0);
    loss = sub(loss, mul(sum(mul(d, d)), lambda));
  }
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
  std::vector<bool> ok;
  for (int k = 0; k < steps; ++k) {
    Tensor g = loss_grad(run, model, x, lambda, ok);
    if (opt.early_stop) {
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
      const std::vector<bool> ok = successes(run, forward(run, model, xr));
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

double Result::mean_score() const {
  return mean_of(score);
}

double Result::accuracy(const Tensor& y) const {
  NABLA_CHECK(pred.defined(), "Result::accuracy: this result has no class predictions (a custom ",
              "objective); use score");
  NABLA_CHECK(y.defined() && y.dtype() == DType::Int64 && y.shape() == pred.shape(),
              "Result::accuracy: y must be int64 ", shape_str(pred.shape()), ", got ",
              y.defined() ? y.str() : std::string("an undefined tensor"));
  return metrics::accuracy(pred, y);
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
  if (opt.objective.kind() == Objective::Kind::Classification)
    NABLA_CHECK(opt.target_mode != TargetMode::None,
                "targeted_l2: needs a target (target mode given, random or least-likely), got "
                "'none' for x ",
                x.defined() ? x.str() : std::string("undefined"));
  if (opt.objective.kind() == Objective::Kind::Segmentation)
    NABLA_CHECK(opt.objective.target().defined(),
                "targeted_l2: needs a target, but objective 'segmentation' is untargeted (use ",
                "Objective::segmentation_targeted) for x ",
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
  static const std::vector<std::string> names = {
      "fgsm", "bim",      "pgd",    "pgd-l2", "mifgsm",     "targeted", "onepixel", "noise",
      "apgd", "apgd-dlr", "apgd-t", "square", "autoattack", "deepfool", "cw",       "jsma"};
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
  if (method == "apgd") return apgd(model, x, y, opt);
  if (method == "apgd-dlr") {
    Options o = opt;
    o.apgd_loss = ApgdLoss::DLR;
    return apgd(model, x, y, o);
  }
  if (method == "apgd-t") return apgd_targeted(model, x, y, opt);
  if (method == "square") return square(model, x, y, opt);
  if (method == "autoattack") return autoattack(model, x, y, opt);
  if (method == "deepfool") return deepfool(model, x, y, opt);
  if (method == "cw") return carlini_wagner(model, x, y, opt);
  if (method == "jsma") return jsma(model, x, y, opt);
  std::string known;
  for (const auto& n : method_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error(
      nabla::detail::concat("attack::run: unknown method '", method, "' (known: ", known, ")"));
}

double adversarial_accuracy(const Model& source, const Model& target, const Tensor& x,
                            const Tensor& y, const std::string& method, const Options& opt,
                            int64_t batch, Device dev, const Progress& progress) {
  const char* name = "adversarial_accuracy";
  NABLA_CHECK(bool(source) && bool(target), name, ": the source and target models must be set");
  NABLA_CHECK(x.defined() && y.defined() && x.dim() >= 1 && y.dim() >= 1 && x.size(0) == y.size(0),
              name, ": x and y must hold the same number of samples, got x ",
              x.defined() ? x.str() : std::string("undefined"), " and y ",
              y.defined() ? y.str() : std::string("undefined"));
  NABLA_CHECK(batch >= 1, name, ": batch must be >= 1, got ", batch);
  const auto& known = method_names();
  NABLA_CHECK(std::find(known.begin(), known.end(), method) != known.end(), name,
              ": unknown method '", method, "'");
  const int64_t N = x.size(0);
  // A per-sample target mask covers the whole set: each batch gets its own rows.
  const Tensor& mask = opt.objective.target();
  const bool per_sample_mask = mask.defined() && mask.dim() == 3;
  NABLA_CHECK(!per_sample_mask || mask.size(0) == N, name, ": the target mask ", mask.str(),
              " must be [H, W] or have one mask per sample of x ", x.str());
  double total = 0;
  for (int64_t lo = 0; lo < N; lo += batch) {
    const int64_t hi = std::min(N, lo + batch);
    Tensor xb = x.slice(lo, hi).contiguous().to(dev);
    Tensor yb = y.slice(lo, hi).contiguous().to(dev);
    Tensor x_adv = xb;
    if (opt.eps > 0) {
      Options o = opt;
      if (per_sample_mask)
        o.objective =
            Objective::segmentation_targeted(mask.slice(lo, hi), opt.objective.threshold());
      x_adv = run(method, source, xb, yb, o).x_adv;
    }
    Tensor out;
    {
      NoGradGuard ng;
      out = target(x_adv);
    }
    for (double s : opt.objective.score(out, yb)) total += s;
    if (progress) progress(hi, N);
  }
  return N > 0 ? total / double(N) : 0;
}

}  // namespace nabla::attack
