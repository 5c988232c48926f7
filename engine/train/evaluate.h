// Evaluating a classifier on a labelled data set: mean cross-entropy, accuracy, per-class
// accuracy and the confusion matrix (engine/metrics), in eval mode and without autograd. And a
// segmentation model on a source of images and masks: mean per-pixel cross-entropy, pixel
// accuracy, per-class IoU and Dice, both mean IoUs (engine/metrics/segmentation.h).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <nabla/data/mnist.h>
#include <nabla/data/source.h>
#include <nabla/metrics/classification.h>
#include <nabla/metrics/segmentation.h>
#include <nabla/nn/module.h>

namespace nabla::train {

struct Evaluation {
  int64_t n = 0;
  double loss = 0;  // mean cross-entropy
  metrics::ConfusionMatrix confusion{1};
  double accuracy() const { return confusion.accuracy(); }
  // ensures: {"accuracy", "n", "correct", "loss", "per_class": [{"class", "n", "accuracy"}],
  //   "confusion": [true][predicted], "class_names"}.
  nlohmann::json to_json() const;
};

// requires: ds non-empty with int64 labels [N]; net maps a batch of ds.images to logits [b, K]
//   with K = ds.class_names.size() (or any K when the names are empty); batch >= 1.
// ensures: the evaluation of net on ds, batch by batch on dev, with a progress bar when asked;
//   net's training mode is restored afterwards. Errors name the shapes.
Evaluation evaluate_classifier(nn::Module& net, const data::Dataset& ds, int64_t batch, Device dev,
                               bool progress = false);

struct SegmentationEvaluation {
  int64_t n = 0;    // images
  double loss = 0;  // mean per-pixel cross-entropy (no class weights)
  metrics::SegmentationMetrics metrics{2};
  Tensor pred;  // int64 [N, H, W] on the CPU, in the source's order (only when asked for)
  // ensures: metrics.to_json() with "n" and "loss" added.
  nlohmann::json to_json() const;
};

// requires: src items with "image" [C, H, W] and "mask" int64 [H, W] (one size for all), N >= 1;
//   net maps images [b, C, H, W] to logits [b, K, H, W] with K = class_names.size() >= 2; every
//   mask value in [0, K); batch >= 1.
// ensures: the evaluation of net on the whole source in order, batch by batch on dev (items
//   generated on several threads when the source computes them), with a progress bar when
//   asked; with keep_predictions, pred holds the argmax classes. net's training mode is
//   restored afterwards. Errors name the shapes, or the value and position of a bad mask pixel.
SegmentationEvaluation evaluate_segmenter(nn::Module& net,
                                          const std::shared_ptr<const data::Source>& src,
                                          const std::vector<std::string>& class_names,
                                          int64_t batch, Device dev, bool keep_predictions = false,
                                          bool progress = false);

}  // namespace nabla::train
