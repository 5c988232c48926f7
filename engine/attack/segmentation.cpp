// Attacks over whole segmentation sets, layered PGD and the sign-choice search: the math is in
// segmentation.h. The images stay on the CPU; each batch (or image) goes to the device, and
// the results come back.
#include <nabla/attack/segmentation.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include <nabla/autograd.h>
#include <nabla/error.h>
#include <nabla/ops.h>

namespace nabla::attack {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void check_set(const char* name, const Tensor& x, const Tensor& y, int64_t batch) {
  NABLA_CHECK(x.defined() && y.defined() && x.dim() == 4 && y.dim() == 3 &&
                  y.dtype() == DType::Int64 && x.size(0) == y.size(0) && x.size(2) == y.size(1) &&
                  x.size(3) == y.size(2) && x.size(0) >= 1,
              "attack::", name, ": needs images x [N, C, H, W] and int64 masks y [N, H, W], got x ",
              x.defined() ? x.str() : std::string("undefined"), " and y ",
              y.defined() ? y.str() : std::string("undefined"));
  NABLA_CHECK(batch >= 1, "attack::", name, ": batch must be >= 1, got ", batch);
}

// The rows `idx` of an int64 CPU tensor, stacked (concat takes floating tensors only).
Tensor rows_int64(const Tensor& t, const std::vector<int64_t>& idx) {
  const Tensor tc = t.contiguous();
  Shape s = tc.shape();
  s[0] = int64_t(idx.size());
  Tensor out = empty(s, DType::Int64);
  const int64_t per = tc.numel() / tc.size(0);
  for (size_t j = 0; j < idx.size(); ++j)
    std::copy_n(tc.data<int64_t>() + idx[j] * per, per, out.data<int64_t>() + int64_t(j) * per);
  return out;
}

struct Norms {
  double sum_linf = 0, max_linf = 0, sum_l2 = 0, sum_l0 = 0;
  void add(const Tensor& x_adv, const Tensor& x) {
    const Tensor d = sub(x_adv, x).to(DType::Float64).contiguous();
    const int64_t n = d.size(0), per = d.numel() / std::max<int64_t>(n, 1);
    const double* p = d.data<double>();
    for (int64_t i = 0; i < n; ++i) {
      double linf = 0, l2 = 0, l0 = 0;
      for (int64_t k = 0; k < per; ++k) {
        const double v = std::fabs(p[i * per + k]);
        linf = std::max(linf, v);
        l2 += v * v;
        l0 += v != 0;
      }
      sum_linf += linf;
      max_linf = std::max(max_linf, linf);
      sum_l2 += std::sqrt(l2);
      sum_l0 += l0;
    }
  }
  void into(SetResult& r, int64_t n) const {
    r.mean_linf = sum_linf / double(n);
    r.max_linf = max_linf;
    r.mean_l2 = sum_l2 / double(n);
    r.mean_l0 = sum_l0 / double(n);
  }
};

// Per row m of the candidates: J(candidate_m, y1) (y1 int64 [1, H, W] on dev).
std::vector<double> mean_ce_per_row(const Model& model, const Tensor& cand, const Tensor& y1) {
  NoGradGuard ng;
  const Tensor logits = model(cand);
  const Tensor yy = y1.expand({cand.size(0), y1.size(1), y1.size(2)}).contiguous();
  const Tensor l = mean(cross_entropy(logits, yy, Tensor(), Reduction::None), {1, 2});
  return l.to(Device::cpu()).to(DType::Float64).to_vector<double>();
}

}  // namespace

Tensor full_mask(int64_t n, int64_t h, int64_t w, int64_t cls) {
  NABLA_CHECK(n >= 1 && h >= 1 && w >= 1 && cls >= 0,
              "attack::full_mask: needs n, h, w >= 1 and a class >= 0, got [", n, ", ", h, ", ", w,
              "] and class ", cls);
  return full({n, h, w}, double(cls), DType::Int64);
}

SetResult attack_set(const std::string& method, const Model& model, const Tensor& x,
                     const Tensor& y, const Options& opt, int64_t batch, Device dev,
                     const Progress& progress) {
  check_set("attack_set", x, y, batch);
  const auto t0 = Clock::now();
  const int64_t N = x.size(0);
  const Tensor& mask = opt.objective.target();
  const bool per_sample_mask = mask.defined() && mask.dim() == 3;
  NABLA_CHECK(!per_sample_mask || mask.size(0) == N, "attack::attack_set: the target mask ",
              mask.str(), " must be [H, W] or have one mask per image of x ", x.str());
  SetResult r;
  Norms norms;
  std::vector<Tensor> parts;
  for (int64_t lo = 0; lo < N; lo += batch) {
    const int64_t hi = std::min(N, lo + batch);
    Options o = opt;
    if (per_sample_mask)
      o.objective = Objective::segmentation_targeted(mask.slice(lo, hi), opt.objective.threshold());
    const Tensor xb = x.slice(lo, hi).contiguous();
    const Result a = run(method, model, xb.to(dev), y.slice(lo, hi).contiguous().to(dev), o);
    const Tensor xa = a.x_adv.to(Device::cpu()).to(x.dtype());
    norms.add(xa, xb);
    parts.push_back(xa);
    if (progress) progress(hi, N);
  }
  r.x_adv = concat(parts, 0);
  norms.into(r, N);
  r.seconds = seconds_since(t0);
  return r;
}

SetResult layered_pgd(const Model& model, const Tensor& x, const Tensor& y, int64_t classes,
                      const Options& opt, int64_t batch, Device dev, const Progress& progress) {
  check_set("layered_pgd", x, y, batch);
  NABLA_CHECK(classes >= 2, "attack::layered_pgd: needs classes >= 2, got ", classes);
  const auto t0 = Clock::now();
  const int64_t N = x.size(0), H = y.size(1), W = y.size(2);
  // Which classes each image's mask holds.
  std::vector<std::vector<char>> present(size_t(N), std::vector<char>(size_t(classes), 0));
  {
    const Tensor yc = y.contiguous();
    const int64_t* p = yc.data<int64_t>();
    for (int64_t i = 0; i < N; ++i)
      for (int64_t k = 0; k < H * W; ++k) {
        const int64_t v = p[i * H * W + k];
        NABLA_CHECK(v >= 0 && v < classes, "attack::layered_pgd: mask value ", v, " of image ", i,
                    " is outside [0, ", classes, ")");
        present[size_t(i)][size_t(v)] = 1;
      }
  }
  Options o = opt;
  o.early_stop = false;  // every layer runs all its steps, as Formula 2 does
  o.random_start = false;
  o.restarts = 1;
  o.target_mode = TargetMode::None;
  SetResult r;
  Norms norms;
  std::vector<Tensor> parts;
  for (int64_t lo = 0; lo < N; lo += batch) {
    const int64_t hi = std::min(N, lo + batch);
    const Tensor x0 = x.slice(lo, hi).contiguous();
    std::vector<Tensor> cur;  // the current image of every row of the batch
    for (int64_t i = lo; i < hi; ++i) cur.push_back(x.slice(i, i + 1).contiguous());
    for (int64_t c = 0; c < classes; ++c) {
      std::vector<int64_t> idx;
      for (int64_t i = lo; i < hi; ++i)
        if (present[size_t(i)][size_t(c)]) idx.push_back(i - lo);
      if (idx.empty()) continue;
      std::vector<Tensor> sel;
      std::vector<int64_t> global;  // the same rows, numbered in x
      for (int64_t k : idx) {
        sel.push_back(cur[size_t(k)]);
        global.push_back(lo + k);
      }
      const Tensor xs = concat(sel, 0);
      o.objective = Objective::segmentation_targeted(full_mask(xs.size(0), H, W, c), 1.0);
      const Result a = pgd_linf(model, xs.to(dev), rows_int64(y, global).to(dev), o);
      const Tensor xa = a.x_adv.to(Device::cpu()).to(x.dtype());
      for (size_t j = 0; j < idx.size(); ++j)
        cur[size_t(idx[j])] = xa.slice(int64_t(j), int64_t(j) + 1).contiguous();
    }
    const Tensor xb = concat(cur, 0);
    norms.add(xb, x0);
    parts.push_back(xb);
    if (progress) progress(hi, N);
  }
  r.x_adv = concat(parts, 0);
  norms.into(r, N);
  r.seconds = seconds_since(t0);
  return r;
}

int64_t choice_code(const std::vector<int>& s) {
  int64_t code = 0, p = 1;
  for (int v : s) {
    NABLA_CHECK(v >= -1 && v <= 1, "attack::choice_code: a sign choice must be -1, 0 or +1, got ",
                v);
    code += int64_t(v + 1) * p;
    p *= 3;
  }
  return code;
}

std::vector<int> choice_from_code(int64_t code, int64_t classes) {
  std::vector<int> s(static_cast<size_t>(classes), 0);
  for (int64_t c = 0; c < classes; ++c) {
    s[size_t(c)] = int(code % 3) - 1;
    code /= 3;
  }
  return s;
}

SignChoiceResult sign_choice(const Model& model, const Tensor& x, const Tensor& y, int64_t classes,
                             const SignChoiceOptions& opt, Device dev, const Progress& progress) {
  check_set("sign_choice", x, y, 1);
  NABLA_CHECK(classes >= 2 && classes <= 12,
              "attack::sign_choice: needs 2 <= classes <= 12 (3^classes candidates), got ",
              classes);
  NABLA_CHECK(opt.eps >= 0 && std::isfinite(opt.eps) && opt.max_batch >= 1,
              "attack::sign_choice: needs eps >= 0 and max_batch >= 1, got eps ", opt.eps,
              " and max_batch ", opt.max_batch);
  NABLA_CHECK(grad_enabled(),
              "attack::sign_choice: needs the input gradient, but grad mode is off");
  const auto t0 = Clock::now();
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), K = classes;
  const int64_t D = C * H * W;
  int64_t total = 1;
  for (int64_t c = 0; c < K; ++c) total *= 3;
  const int64_t max_sweeps = opt.max_sweeps > 0 ? opt.max_sweeps : 2 * K;
  SignChoiceResult r;
  std::vector<Tensor> parts;
  const Tensor targets = [&] {  // u_0, ..., u_{K-1}: int64 [K, H, W]
    std::vector<int64_t> u(size_t(K * H * W));
    for (int64_t c = 0; c < K; ++c) std::fill_n(u.begin() + c * H * W, H * W, c);
    return from_vector(u, {K, H, W}).to(dev);
  }();
  for (int64_t i = 0; i < N; ++i) {
    const Tensor xi = x.slice(i, i + 1).contiguous().to(dev);
    const Tensor yi = y.slice(i, i + 1).contiguous().to(dev);
    // Formula 4: a_c = eps sign(grad_x J(x, u_c)), the K gradients in one backward over K rows
    // (the rows do not interact in eval mode, so each gets its own gradient).
    Tensor A;  // [K, D]
    {
      Tensor xl = xi.expand({K, C, H, W}).contiguous().detach();
      xl.set_requires_grad(true);
      const Tensor l =
          sum(mean(cross_entropy(model(xl), targets, Tensor(), Reduction::None), {1, 2}));
      A = mul(sign(grad({l}, {xl})[0].detach()), opt.eps).reshape({K, D});
    }
    const Tensor x_flat = xi.reshape({1, D});
    // J of the candidates whose choices are `choices`, max_batch rows per forward pass.
    auto evaluate = [&](const std::vector<std::vector<int>>& choices) {
      std::vector<double> out;
      for (size_t lo = 0; lo < choices.size(); lo += size_t(opt.max_batch)) {
        const size_t hi = std::min(choices.size(), lo + size_t(opt.max_batch));
        std::vector<float> s;
        for (size_t m = lo; m < hi; ++m)
          for (int v : choices[m]) s.push_back(float(v));
        const int64_t M = int64_t(hi - lo);
        const Tensor S = from_vector(s, {M, K}, dev).to(A.dtype());
        Tensor cand;
        {
          NoGradGuard ng;
          cand = clamp(add(matmul(S, A), x_flat.expand({M, D})), 0.0, 1.0).reshape({M, C, H, W});
        }
        const std::vector<double> l = mean_ce_per_row(model, cand, yi);
        out.insert(out.end(), l.begin(), l.end());
      }
      r.evaluations += int64_t(choices.size());
      return out;
    };
    const double clean = mean_ce_per_row(model, xi, yi)[0];
    std::vector<int> best(size_t(K), 0);
    if (!opt.greedy) {
      std::vector<std::vector<int>> all;
      all.reserve(size_t(total));
      for (int64_t code = 0; code < total; ++code) all.push_back(choice_from_code(code, K));
      const std::vector<double> l = evaluate(all);
      // The lowest loss; among equal losses the choice with the fewest non-zero signs.
      auto nonzero = [](const std::vector<int>& s) {
        return std::count_if(s.begin(), s.end(), [](int v) { return v != 0; });
      };
      size_t b = size_t(choice_code(best));
      for (size_t m = 0; m < all.size(); ++m)
        if (l[m] < l[b] || (l[m] == l[b] && nonzero(all[m]) < nonzero(all[b]))) b = m;
      best = all[b];
    } else {
      for (int64_t sweep = 0; sweep < max_sweeps; ++sweep) {
        std::vector<std::vector<int>> cands{best};
        for (int64_t c = 0; c < K; ++c)
          for (int v = -1; v <= 1; ++v)
            if (v != best[size_t(c)]) {
              std::vector<int> s = best;
              s[size_t(c)] = v;
              cands.push_back(s);
            }
        const std::vector<double> l = evaluate(cands);
        size_t b = 0;
        for (size_t m = 1; m < cands.size(); ++m)
          if (l[m] < l[b]) b = m;
        if (b == 0) break;
        best = cands[b];
      }
    }
    Tensor xb;
    {
      std::vector<float> s(best.begin(), best.end());
      NoGradGuard ng;
      const Tensor S = from_vector(s, {1, K}, dev).to(A.dtype());
      xb = clamp(add(matmul(S, A), x_flat), 0.0, 1.0).reshape({1, C, H, W});
    }
    r.loss_clean.push_back(clean);
    r.loss_best.push_back(mean_ce_per_row(model, xb, yi)[0]);
    r.choice.push_back(best);
    parts.push_back(xb.to(Device::cpu()).to(x.dtype()));
    if (progress) progress(i + 1, N);
  }
  r.x_imp = concat(parts, 0);
  r.seconds = seconds_since(t0);
  return r;
}

}  // namespace nabla::attack
