// Segmentation metrics (see segmentation.h).
#include <nabla/metrics/segmentation.h>

#include <cmath>
#include <limits>

#include <nabla/error.h>

namespace nabla::metrics {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Pixels per class in the masks (row sums) and in the predictions (column sums).
void margins(const ConfusionMatrix& cm, std::vector<int64_t>& truth, std::vector<int64_t>& pred) {
  const int64_t K = cm.classes();
  truth.assign(size_t(K), 0);
  pred.assign(size_t(K), 0);
  for (int64_t t = 0; t < K; ++t)
    for (int64_t p = 0; p < K; ++p) {
      truth[size_t(t)] += cm.counts()[size_t(t)][size_t(p)];
      pred[size_t(p)] += cm.counts()[size_t(t)][size_t(p)];
    }
}

nlohmann::json number_or_null(double v) {
  return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v);
}

}  // namespace

std::vector<double> per_class_iou(const ConfusionMatrix& cm) {
  std::vector<int64_t> truth, pred;
  margins(cm, truth, pred);
  std::vector<double> out;
  for (int64_t c = 0; c < cm.classes(); ++c) {
    const int64_t tp = cm.counts()[size_t(c)][size_t(c)];
    const int64_t uni = truth[size_t(c)] + pred[size_t(c)] - tp;
    out.push_back(uni ? double(tp) / double(uni) : kNaN);
  }
  return out;
}

std::vector<double> per_class_dice(const ConfusionMatrix& cm) {
  std::vector<int64_t> truth, pred;
  margins(cm, truth, pred);
  std::vector<double> out;
  for (int64_t c = 0; c < cm.classes(); ++c) {
    const int64_t tp = cm.counts()[size_t(c)][size_t(c)];
    const int64_t both = truth[size_t(c)] + pred[size_t(c)];
    out.push_back(both ? 2.0 * double(tp) / double(both) : kNaN);
  }
  return out;
}

double nan_mean(const std::vector<double>& v, int64_t first) {
  double s = 0;
  int64_t n = 0;
  for (size_t c = size_t(std::max<int64_t>(first, 0)); c < v.size(); ++c)
    if (!std::isnan(v[c])) {
      s += v[c];
      ++n;
    }
  return n ? s / double(n) : kNaN;
}

double mean_iou(const ConfusionMatrix& cm, bool with_background) {
  return nan_mean(per_class_iou(cm), with_background ? 0 : 1);
}

SegmentationMetrics::SegmentationMetrics(int64_t classes, std::vector<std::string> names)
    : cm_(std::max<int64_t>(classes, 1), std::move(names)) {
  NABLA_CHECK(classes >= 2,
              "SegmentationMetrics: needs the background and at least one more "
              "class, got ",
              classes, " classes");
}

void SegmentationMetrics::add(const Tensor& pred, const Tensor& masks) {
  cm_.add(pred, masks);
}

nlohmann::json SegmentationMetrics::to_json() const {
  const int64_t K = cm_.classes();
  std::vector<int64_t> truth, pred;
  margins(cm_, truth, pred);
  const std::vector<double> iou_c = iou(), dice_c = dice();
  nlohmann::json per = nlohmann::json::array(), iou_j = nlohmann::json::array(),
                 dice_j = nlohmann::json::array(), names = nlohmann::json::array();
  for (int64_t c = 0; c < K; ++c) {
    per.push_back({{"class", cm_.name(c)},
                   {"iou", number_or_null(iou_c[size_t(c)])},
                   {"dice", number_or_null(dice_c[size_t(c)])},
                   {"pixels", truth[size_t(c)]},
                   {"predicted", pred[size_t(c)]}});
    iou_j.push_back(number_or_null(iou_c[size_t(c)]));
    dice_j.push_back(number_or_null(dice_c[size_t(c)]));
    names.push_back(cm_.name(c));
  }
  return {{"pixel_accuracy", pixel_accuracy()},
          {"miou", number_or_null(miou())},
          {"miou_all", number_or_null(miou_all())},
          {"mean_dice", number_or_null(mean_dice())},
          {"miou_over", detail::concat("classes 1..", K - 1,
                                       " (background excluded); miou_all includes class 0")},
          {"per_class_iou", iou_j},
          {"per_class_dice", dice_j},
          {"per_class", per},
          {"confusion", cm_.counts()},
          {"class_names", names},
          {"pixels", cm_.total()}};
}

}  // namespace nabla::metrics
