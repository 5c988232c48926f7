// Segmentation metrics over pixels, from the confusion matrix C[t][p] of classification.h
// accumulated over the masks of a data set (every pixel counts once, whatever its image):
//
//   pixel accuracy   sum_c C[c][c] / sum_{t,p} C[t][p]
//   IoU_c            TP / (TP + FP + FN) = C[c][c] / (sum_p C[c][p] + sum_t C[t][c] - C[c][c])
//   Dice_c           2 TP / (2 TP + FP + FN) = 2 C[c][c] / (sum_p C[c][p] + sum_t C[t][c])
//                    Both are NaN for a class that is in neither the masks nor the predictions
//                    (0 / 0): such a class says nothing, and is left out of the means.
//   mean IoU         the mean of the defined IoU_c over classes 1..K-1 (background, class 0,
//                    excluded: "miou"), or over all K classes ("miou_all"); likewise mean Dice.
//                    Pixel accuracy and miou_all are dominated by the background when it covers
//                    most pixels, so every report names which mean it gives.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <nabla/metrics/classification.h>

namespace nabla::metrics {

// ensures: IoU_c for c = 0..K-1 as above (NaN where undefined).
std::vector<double> per_class_iou(const ConfusionMatrix& cm);
// ensures: Dice_c for c = 0..K-1 as above (NaN where undefined).
std::vector<double> per_class_dice(const ConfusionMatrix& cm);
// ensures: the mean of the defined values of v over classes first..K-1 (NaN when none is defined).
double nan_mean(const std::vector<double>& v, int64_t first = 0);
// ensures: nan_mean(per_class_iou(cm), with_background ? 0 : 1).
double mean_iou(const ConfusionMatrix& cm, bool with_background);

// The metrics of a segmentation model over a data set, accumulated batch by batch.
class SegmentationMetrics {
 public:
  // requires: classes >= 2 (class 0 is the background); names empty or one per class.
  explicit SegmentationMetrics(int64_t classes, std::vector<std::string> names = {});

  // requires: pred int64 [N, H, W] or scores [N, K, H, W] (argmax over dim 1); masks int64
  //   [N, H, W] in [0, K) (ConfusionMatrix::add's errors otherwise).
  void add(const Tensor& pred, const Tensor& masks);

  const ConfusionMatrix& confusion() const { return cm_; }
  int64_t classes() const { return cm_.classes(); }
  double pixel_accuracy() const { return cm_.accuracy(); }
  std::vector<double> iou() const { return per_class_iou(cm_); }
  std::vector<double> dice() const { return per_class_dice(cm_); }
  double miou() const { return mean_iou(cm_, false); }      // classes 1..K-1
  double miou_all() const { return mean_iou(cm_, true); }   // classes 0..K-1
  double mean_dice() const { return nan_mean(dice(), 1); }  // classes 1..K-1

  // ensures: {"pixel_accuracy", "miou", "miou_all", "mean_dice", "miou_over" (what "miou"
  //   averages, in words), "per_class_iou" [K], "per_class_dice" [K], "per_class": [{"class",
  //   "iou", "dice", "pixels" (in the masks), "predicted" (in the predictions)}], "confusion"
  //   [true][predicted], "class_names", "pixels"}. NaN is written as null.
  nlohmann::json to_json() const;

 private:
  ConfusionMatrix cm_;
};

}  // namespace nabla::metrics
