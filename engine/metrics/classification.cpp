// Classification metrics. See classification.h for the definitions.
#include <nabla/metrics/classification.h>

#include <nabla/autograd.h>
#include <nabla/error.h>
#include <nabla/ops.h>

namespace nabla::metrics {

Tensor predicted_classes(const Tensor& pred, const Tensor& labels) {
  NABLA_CHECK(pred.defined() && labels.defined(),
              "metrics: predictions and labels must be defined");
  NABLA_CHECK(labels.dtype() == DType::Int64 && labels.dim() >= 1,
              "metrics: labels must be int64 "
              "with at least one dim, got ",
              labels.str());
  NoGradGuard ng;
  Tensor p = pred.detach();
  if (p.dim() == labels.dim() + 1 && is_floating(p.dtype())) {
    Shape reduced = p.shape();
    reduced.erase(reduced.begin() + 1);
    NABLA_CHECK(reduced == labels.shape(), "metrics: scores ", p.str(), " do not match labels ",
                labels.str(), " (scores carry the classes at dim 1)");
    p = argmax(p, 1);
  }
  NABLA_CHECK(p.dtype() == DType::Int64 && p.shape() == labels.shape(), "metrics: predictions ",
              pred.str(), " must be int64 class indices shaped like the labels ", labels.str(),
              ", or scores with the classes at dim 1");
  return p.to(Device::cpu()).contiguous();
}

namespace {

// (pred, labels) as host vectors of equal length.
std::pair<std::vector<int64_t>, std::vector<int64_t>> host_pair(const Tensor& pred,
                                                                const Tensor& labels) {
  Tensor p = predicted_classes(pred, labels);
  return {p.to_vector<int64_t>(), labels.to(Device::cpu()).contiguous().to_vector<int64_t>()};
}

}  // namespace

int64_t count_correct(const Tensor& pred, const Tensor& labels) {
  const auto [p, y] = host_pair(pred, labels);
  int64_t hits = 0;
  for (size_t i = 0; i < p.size(); ++i) hits += p[i] == y[i];
  return hits;
}

double accuracy(const Tensor& pred, const Tensor& labels) {
  const int64_t n = labels.defined() ? labels.numel() : 0;
  return n ? double(count_correct(pred, labels)) / double(n) : 0;
}

std::vector<double> per_sample_accuracy(const Tensor& pred, const Tensor& labels) {
  const auto [p, y] = host_pair(pred, labels);
  const int64_t N = labels.size(0);
  std::vector<double> acc(size_t(N), 0);
  if (N == 0 || y.empty()) return acc;
  const size_t per = y.size() / size_t(N);
  for (size_t n = 0; n < size_t(N); ++n) {
    int64_t hits = 0;
    for (size_t i = n * per; i < (n + 1) * per; ++i) hits += p[i] == y[i];
    acc[n] = double(hits) / double(per);
  }
  return acc;
}

ConfusionMatrix::ConfusionMatrix(int64_t classes, std::vector<std::string> names)
    : k_(classes), names_(std::move(names)) {
  NABLA_CHECK(classes >= 1, "ConfusionMatrix: needs at least one class, got ", classes);
  NABLA_CHECK(names_.empty() || int64_t(names_.size()) == classes,
              "ConfusionMatrix: ", names_.size(), " names for ", classes, " classes");
  counts_.assign(size_t(k_), std::vector<int64_t>(size_t(k_), 0));
}

void ConfusionMatrix::add(const Tensor& pred, const Tensor& labels) {
  const auto [p, y] = host_pair(pred, labels);
  for (size_t i = 0; i < p.size(); ++i) {
    NABLA_CHECK(y[i] >= 0 && y[i] < k_, "ConfusionMatrix: label ", y[i], " at flat index ", i,
                " of ", labels.str(), " is outside [0, ", k_, ")");
    NABLA_CHECK(p[i] >= 0 && p[i] < k_, "ConfusionMatrix: prediction ", p[i], " at flat index ", i,
                " is outside [0, ", k_, ")");
    ++counts_[size_t(y[i])][size_t(p[i])];
  }
}

std::string ConfusionMatrix::name(int64_t c) const {
  return names_.empty() ? std::to_string(c) : names_.at(size_t(c));
}

int64_t ConfusionMatrix::total() const {
  int64_t t = 0;
  for (const auto& row : counts_)
    for (int64_t v : row) t += v;
  return t;
}

int64_t ConfusionMatrix::correct() const {
  int64_t t = 0;
  for (size_t c = 0; c < counts_.size(); ++c) t += counts_[c][c];
  return t;
}

double ConfusionMatrix::accuracy() const {
  const int64_t t = total();
  return t ? double(correct()) / double(t) : 0;
}

std::vector<int64_t> ConfusionMatrix::per_class_total() const {
  std::vector<int64_t> t(counts_.size(), 0);
  for (size_t c = 0; c < counts_.size(); ++c)
    for (int64_t v : counts_[c]) t[c] += v;
  return t;
}

std::vector<double> ConfusionMatrix::per_class_accuracy() const {
  const std::vector<int64_t> t = per_class_total();
  std::vector<double> a(counts_.size(), 0);
  for (size_t c = 0; c < counts_.size(); ++c)
    a[c] = t[c] ? double(counts_[c][c]) / double(t[c]) : 0;
  return a;
}

}  // namespace nabla::metrics
