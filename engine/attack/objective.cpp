// The objectives of the attacks (classification, segmentation, custom) and their binding to one
// batch: label and output checks, targets, and the per-sample loss, success and score that the
// attack loops call. The math is in objective.h.
#include <nabla/attack/objective.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include <nabla/autograd.h>
#include <nabla/error.h>
#include <nabla/metrics/classification.h>
#include <nabla/ops.h>

#include "detail.h"

namespace nabla::attack {

namespace {

std::string str_of(const Tensor& t) {
  return t.defined() ? t.str() : std::string("an undefined tensor");
}

void check_threshold(const char* who, double threshold) {
  NABLA_CHECK(threshold >= 0 && threshold <= 1, "Objective::", who,
              ": threshold must be in [0, 1], got ", threshold);
}

// The first element of an int64 mask [N, H, W] outside [0, C), as an error naming it.
void check_classes(const char* name, const char* what, const Tensor& mask, int64_t C,
                   const Tensor& out) {
  const std::vector<int64_t> v = mask.to(Device::cpu()).contiguous().to_vector<int64_t>();
  const int64_t H = mask.size(1), W = mask.size(2);
  for (size_t k = 0; k < v.size(); ++k) {
    if (v[k] >= 0 && v[k] < C) continue;
    const int64_t n = int64_t(k) / (H * W), i = (int64_t(k) / W) % H, j = int64_t(k) % W;
    throw Error(nabla::detail::concat(name, ": ", what, "[", n, ", ", i, ", ", j, "] = ", v[k],
                                      " is outside [0, ", C, ") for the output ", out.str()));
  }
}

}  // namespace

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

Objective::Objective() = default;

Objective Objective::classification() {
  return Objective();
}

Objective Objective::segmentation(double threshold) {
  check_threshold("segmentation", threshold);
  Objective o;
  o.kind_ = Kind::Segmentation;
  o.name_ = "segmentation";
  o.threshold_ = threshold;
  return o;
}

Objective Objective::segmentation_targeted(const Tensor& target, double threshold) {
  check_threshold("segmentation_targeted", threshold);
  NABLA_CHECK(target.defined() && target.dtype() == DType::Int64 &&
                  (target.dim() == 2 || target.dim() == 3),
              "Objective::segmentation_targeted: the target mask must be int64 [H, W] or "
              "[N, H, W], got ",
              str_of(target));
  Objective o;
  o.kind_ = Kind::Segmentation;
  o.name_ = "segmentation-targeted";
  o.threshold_ = threshold;
  o.target_ = target.detach().to(Device::cpu()).contiguous();
  return o;
}

Objective Objective::custom(Loss loss, Success success, Score score, std::string name) {
  NABLA_CHECK(bool(loss) && bool(success), "Objective::custom '", name,
              "': needs a loss and a success test, got ", bool(loss) ? "" : "no loss ",
              bool(success) ? "" : "no success test");
  Objective o;
  o.kind_ = Kind::Custom;
  o.name_ = std::move(name);
  o.loss_ = std::move(loss);
  o.success_ = std::move(success);
  o.score_ = std::move(score);
  return o;
}

std::vector<double> Objective::score(const Tensor& output, const Tensor& y) const {
  NABLA_CHECK(output.defined() && y.defined() && output.dim() >= 1 && y.dim() >= 1 &&
                  output.size(0) == y.size(0),
              "Objective::score (", name_, "): needs an output and labels with the same number ",
              "of samples, got output ", str_of(output), " and y ", str_of(y));
  NoGradGuard ng;
  const Tensor o = output.detach();
  const int64_t N = y.size(0);
  switch (kind_) {
    case Kind::Classification:
      NABLA_CHECK(o.dim() == 2 && y.dtype() == DType::Int64 && y.dim() == 1,
                  "Objective::score (classification): needs logits [N, K] and labels int64 [N], ",
                  "got output ", o.str(), " and y ", y.str());
      return metrics::per_sample_accuracy(o, y);
    case Kind::Segmentation:
      NABLA_CHECK(o.dim() == 4 && y.dtype() == DType::Int64 && y.dim() == 3 &&
                      y.size(1) == o.size(2) && y.size(2) == o.size(3),
                  "Objective::score (", name_, "): needs an output [N, C, H, W] and masks int64 ",
                  "[N, H, W] of the same N, H, W, got output ", o.str(), " and y ", y.str());
      return metrics::per_sample_accuracy(o, y);
    case Kind::Custom: {
      std::vector<double> s;
      if (score_) {
        s = score_(o, y);
      } else {
        const std::vector<bool> ok = success_(o, y);
        for (bool b : ok) s.push_back(b ? 0.0 : 1.0);
      }
      NABLA_CHECK(int64_t(s.size()) == N, "Objective '", name_, "': the ",
                  score_ ? "score" : "success test", " returned ", s.size(),
                  " values for an output ", o.str(), " of ", N, " samples");
      return s;
    }
  }
  return {};
}

namespace detail {

namespace {

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

// A custom loss's l_n, checked: floating [N] that depends on the output.
Tensor custom_losses(const Run& run, const Tensor& out) {
  const Tensor l = run.objective.custom_loss()(out, run.y);
  NABLA_CHECK(l.defined() && is_floating(l.dtype()) && l.shape() == Shape{run.N}, run.name,
              ": the loss of objective '", run.objective.name(),
              "' must return one floating value per sample, [", run.N, "], for the output ",
              out.str(), ", got ", str_of(l));
  return l;
}

}  // namespace

// The rows `samples` of t (any dtype), in that order; undefined stays undefined.
Tensor gather_rows(const Tensor& t, const std::vector<int64_t>& samples) {
  if (!t.defined()) return t;
  if (is_floating(t.dtype())) {
    std::vector<Tensor> parts;
    parts.reserve(samples.size());
    for (int64_t n : samples) parts.push_back(t.slice(n, n + 1));
    return parts.size() == 1 ? parts[0].contiguous() : concat(parts, 0);
  }
  // concat takes floating tensors only: labels and masks (int64) are gathered row by row on the
  // host, as bytes.
  const Tensor src = t.to(Device::cpu()).contiguous();
  Shape s = src.shape();
  s[0] = int64_t(samples.size());
  Tensor out = empty(s, src.dtype());
  const size_t row =
      size_t(src.numel() / std::max<int64_t>(src.size(0), 1)) * dtype_size(src.dtype());
  const auto* from = static_cast<const unsigned char*>(src.raw_data());
  auto* to = static_cast<unsigned char*>(out.raw_data());
  for (size_t k = 0; k < samples.size(); ++k)
    std::memcpy(to + k * row, from + size_t(samples[k]) * row, row);
  return out.to(t.device());
}

void check_labels(const char* name, const Objective& objective, const Tensor& x, const Tensor& y,
                  const Options& opt) {
  const int64_t N = x.size(0);
  switch (objective.kind()) {
    case Objective::Kind::Classification:
      NABLA_CHECK(y.dtype() == DType::Int64 && y.shape() == Shape{N}, name, ": y must be int64 [",
                  N, "] (one label per sample of x ", x.str(), "), got ", y.str());
      return;
    case Objective::Kind::Segmentation:
      NABLA_CHECK(y.dtype() == DType::Int64 && y.dim() == 3 && y.size(0) == N, name,
                  ": segmentation labels y must be int64 [N, H, W] with N = ", N,
                  " (one mask per sample of x ", x.str(), "), got ", y.str());
      break;
    case Objective::Kind::Custom:
      NABLA_CHECK(y.dim() >= 1 && y.size(0) == N, name, ": y must have one row per sample of x ",
                  x.str(), " (objective '", objective.name(), "'), got ", y.str());
      break;
  }
  NABLA_CHECK(opt.target_mode == TargetMode::None, name, ": target mode '",
              target_mode_name(opt.target_mode), "' applies to classification; objective '",
              objective.name(), "' sets its own target (Objective::segmentation_targeted)");
}

void bind(Run& run, const Tensor& out, const Options& opt, Generator& gen) {
  const char* name = run.name;
  const Tensor& x = run.x0;
  if (run.classification())
    NABLA_CHECK(out.defined() && out.dim() == 2 && out.size(0) == run.N, name,
                ": the model must map x ", x.str(), " to logits [N, K] with N = ", run.N, ", got ",
                str_of(out));
  NABLA_CHECK(out.defined() && out.dim() >= 1 && out.size(0) == run.N, name,
              ": the model must map x ", x.str(), " to an output with N = ", run.N, " rows, got ",
              str_of(out));
  NABLA_CHECK(out.device() == x.device(), name, ": the model returned ", out.str(), " for x ",
              x.str(), " on another device");
  run.out_shape = out.shape();
  run.K = out.dim() >= 2 ? out.size(1) : 0;
  switch (run.objective.kind()) {
    case Objective::Kind::Classification: {
      run.y_host = run.y.to(Device::cpu()).to_vector<int64_t>();
      for (int64_t n = 0; n < run.N; ++n)
        NABLA_CHECK(run.y_host[size_t(n)] >= 0 && run.y_host[size_t(n)] < run.K, name, ": label y[",
                    n, "] = ", run.y_host[size_t(n)], " is outside [0, ", run.K, ") for logits ",
                    out.str());
      run.targeted = opt.target_mode != TargetMode::None;
      if (run.targeted) {
        run.target_cpu =
            choose_targets_from(name, out, run.y_host, opt.target_mode, opt.target_class, gen);
        run.target = run.target_cpu.to_vector<int64_t>();
        run.goal = run.target_cpu.to(x.device());
      } else {
        run.goal = run.y;
      }
      break;
    }
    case Objective::Kind::Segmentation: {
      const Tensor& y = run.y;
      NABLA_CHECK(out.dim() == 4 && out.size(2) == y.size(1) && out.size(3) == y.size(2), name,
                  ": segmentation needs an output [N, C, H, W] that matches the labels y ",
                  "[N, H, W]; got output ", out.str(), " for y ", y.str());
      check_classes(name, "label y", y, run.K, out);
      const Tensor& t = run.objective.target();
      run.targeted = t.defined();
      if (run.targeted) {
        const Shape hw{y.size(1), y.size(2)};
        NABLA_CHECK(t.shape() == hw || t.shape() == y.shape(), name, ": the target mask ", t.str(),
                    " must be [H, W] = ", shape_str(hw), " or [N, H, W] = ", shape_str(y.shape()),
                    " for the output ", out.str());
        run.target_cpu = t.dim() == 2 ? t.unsqueeze(0).expand(y.shape()).contiguous() : t;
        check_classes(name, "target", run.target_cpu, run.K, out);
        run.goal = run.target_cpu.to(x.device());
      } else {
        run.goal = y;
      }
      break;
    }
    case Objective::Kind::Custom:
      run.goal = run.y;
      break;
  }
}

const Tensor& checked_output(const Run& run, const Tensor& out, const Tensor& x) {
  Shape want = run.out_shape;
  want[0] = x.size(0);
  if (out.defined() && out.shape() == want && out.device() == x.device()) return out;
  if (run.classification())
    NABLA_CHECK(out.defined() && out.dim() == 2 && out.size(0) == x.size(0), run.name,
                ": the model must map x ", x.str(), " to logits [N, K] with N = ", x.size(0),
                ", got ", str_of(out));
  NABLA_CHECK(out.defined() && out.shape() == want, run.name, ": the model must map x ", x.str(),
              " to an output ", shape_str(want), " (as on the clean batch), got ", str_of(out));
  throw Error(nabla::detail::concat(run.name, ": the model returned ", out.str(), " for x ",
                                    x.str(), " on another device"));
}

Tensor forward(const Run& run, const Model& model, const Tensor& x) {
  NoGradGuard ng;
  return checked_output(run, model(x), x).detach();
}

Tensor total_loss(const Run& run, const Tensor& out) {
  switch (run.objective.kind()) {
    case Objective::Kind::Classification:
    case Objective::Kind::Segmentation: {
      Tensor l = cross_entropy(out, run.goal, Tensor(), Reduction::Sum);
      return run.targeted ? neg(l) : l;
    }
    case Objective::Kind::Custom:
      return sum(custom_losses(run, out));
  }
  return Tensor();
}

Tensor sample_losses(const Run& run, const Tensor& out) {
  switch (run.objective.kind()) {
    case Objective::Kind::Classification:
    case Objective::Kind::Segmentation: {
      Tensor l = cross_entropy(out, run.goal, Tensor(), Reduction::None);
      if (l.dim() > 1) {
        std::vector<int64_t> dims;
        for (int64_t d = 1; d < l.dim(); ++d) dims.push_back(d);
        l = sum(l, dims);
      }
      return run.targeted ? neg(l) : l;
    }
    case Objective::Kind::Custom:
      return custom_losses(run, out);
  }
  return Tensor();
}

std::vector<bool> successes(const Run& run, const Tensor& out) {
  NoGradGuard ng;
  std::vector<bool> s(size_t(run.N));
  switch (run.objective.kind()) {
    case Objective::Kind::Classification: {
      const std::vector<int64_t> pred = argmax_host(out);
      for (size_t n = 0; n < s.size(); ++n)
        s[n] = run.targeted ? pred[n] == run.target[n] : pred[n] != run.y_host[n];
      break;
    }
    case Objective::Kind::Segmentation: {
      const std::vector<double> acc = metrics::per_sample_accuracy(out, run.goal);
      for (size_t n = 0; n < s.size(); ++n)
        s[n] =
            run.targeted ? acc[n] >= run.objective.threshold() : acc[n] < run.objective.threshold();
      break;
    }
    case Objective::Kind::Custom: {
      s = run.objective.custom_success()(out.detach(), run.y);
      NABLA_CHECK(int64_t(s.size()) == run.N, run.name, ": the success test of objective '",
                  run.objective.name(), "' returned ", s.size(), " values for an output ",
                  out.str(), " of ", run.N, " samples");
      break;
    }
  }
  return s;
}

std::vector<double> scores(const Run& run, const Tensor& out) {
  return run.objective.score(out, run.y);
}

Tensor predictions(const Run& run, const Tensor& out) {
  if (run.objective.kind() == Objective::Kind::Custom) return Tensor();
  NoGradGuard ng;
  return argmax(out.detach(), 1).to(Device::cpu()).contiguous();
}

Run rows(const Run& run, const std::vector<int64_t>& samples) {
  Run r = run;
  r.N = int64_t(samples.size());
  r.y = gather_rows(run.y, samples);
  r.goal = gather_rows(run.goal, samples);
  r.target_cpu = gather_rows(run.target_cpu, samples);
  r.x0 = Tensor();  // the rows' clean inputs are not needed by the objective pieces
  r.y_host.clear();
  r.target.clear();
  r.clean_success.clear();
  for (int64_t n : samples) {
    if (!run.y_host.empty()) r.y_host.push_back(run.y_host[size_t(n)]);
    if (!run.target.empty()) r.target.push_back(run.target[size_t(n)]);
    if (!run.clean_success.empty()) r.clean_success.push_back(run.clean_success[size_t(n)]);
  }
  return r;
}

}  // namespace detail

}  // namespace nabla::attack
