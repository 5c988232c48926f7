// The gradient-masking check (check.h): the attacks it runs and the pass/warn rules.
#include <nabla/attack/check.h>

#include <algorithm>
#include <cstdio>

#include <nabla/error.h>

namespace nabla::attack {

namespace {

std::string fmt(const char* f, double a, double b) {
  char buf[160];
  std::snprintf(buf, sizeof buf, f, a, b);
  return buf;
}

}  // namespace

bool CheckReport::passed() const {
  return std::all_of(items.begin(), items.end(), [](const CheckItem& i) { return i.pass; });
}

CheckReport robustness_check(const Model& model, const Tensor& x, const Tensor& y,
                             const CheckOptions& opt, Device dev, const Model* source,
                             const Progress& progress) {
  NABLA_CHECK(opt.eps > 0 && opt.big_eps > opt.eps, "robustness_check: needs 0 < eps < big_eps, ",
              "got eps ", opt.eps, " and big_eps ", opt.big_eps);
  NABLA_CHECK(x.defined() && x.dim() == 4, "robustness_check: x must be images [N, C, H, W], got ",
              x.defined() ? x.str() : std::string("undefined"));
  const int total = 8 + (source ? 1 : 0);
  int done = 0;
  const auto step = [&] {
    if (progress) progress(++done, total);
  };
  Options base;
  base.norm = opt.norm;
  base.steps = opt.steps;
  base.restarts = 1;
  base.queries = opt.queries;
  base.seed = opt.seed;
  const auto acc = [&](const std::string& method, double eps, const Model& src, Options o) {
    o.eps = eps;
    // FGSM is L-inf only: one step of eps (no random start).
    if (method == "fgsm") o.random_start = false;
    const double a = adversarial_accuracy(src, model, x, y, method, o, opt.batch, dev);
    step();
    return a;
  };
  CheckReport r;
  r.clean = acc("apgd", 0, model, base);  // eps 0: no attack, the clean accuracy
  const std::string single = opt.norm == Norm::Linf ? "fgsm" : "pgd-l2";
  Options one = base;
  if (opt.norm == Norm::L2) {  // the L2 single step: one normalised step of eps
    one.steps = 1;
    one.alpha = opt.eps;
  }
  r.fgsm = acc(single, opt.eps, model, one);
  r.apgd = acc("apgd", opt.eps, model, base);
  r.sweep_eps = {opt.eps / 2, opt.eps, 2 * opt.eps, opt.big_eps};
  r.sweep_acc = {acc("apgd", opt.eps / 2, model, base), r.apgd,
                 acc("apgd", 2 * opt.eps, model, base), acc("apgd", opt.big_eps, model, base)};
  r.square = acc("square", opt.eps, model, base);
  Options rs = base;
  rs.restarts = opt.restarts;
  rs.seed = opt.seed + 1;
  r.apgd_restarts = acc("apgd", opt.eps, model, rs);
  if (source) r.transfer = acc("apgd", opt.eps, *source, base);

  CheckItem it;
  it.name = "iterative >= single-step";
  it.pass = r.apgd <= r.fgsm + opt.tol;
  it.detail = fmt("APGD-CE %.4f vs single step %.4f", r.apgd, r.fgsm);
  r.items.push_back(it);

  it = {};
  it.name = "unbounded -> 0";
  const double big = r.sweep_acc.back();
  bool monotone = true;
  for (size_t k = 1; k < r.sweep_acc.size(); ++k)
    monotone = monotone && r.sweep_acc[k] <= r.sweep_acc[k - 1] + opt.tol;
  it.pass = big <= opt.unbounded_max && monotone;
  it.detail = fmt("APGD-CE at eps %.4g: %.4f", opt.big_eps, big) +
              (monotone ? ", falls with eps" : ", NOT monotone in eps");
  r.items.push_back(it);

  it = {};
  it.name = "black-box <= white-box";
  it.pass = r.square >= r.apgd - opt.tol;
  it.detail = fmt("Square %.4f vs APGD-CE %.4f", r.square, r.apgd);
  r.items.push_back(it);

  it = {};
  it.name = "transfer <= white-box";
  if (source) {
    it.pass = r.transfer >= r.apgd - opt.tol;
    it.detail = fmt("transferred %.4f vs white-box %.4f", r.transfer, r.apgd);
  } else {
    it.skipped = true;
    it.detail = "skipped: no source model";
  }
  r.items.push_back(it);

  it = {};
  it.name = "restarts stable";
  it.pass = r.apgd - r.apgd_restarts <= opt.restart_tol;
  it.detail = fmt("1 restart %.4f vs more restarts %.4f", r.apgd, r.apgd_restarts);
  r.items.push_back(it);
  return r;
}

}  // namespace nabla::attack
