// Evaluating a classifier on a labelled data set: mean cross-entropy, accuracy, per-class
// accuracy and the confusion matrix (engine/metrics), in eval mode and without autograd.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>

#include <nabla/data/mnist.h>
#include <nabla/metrics/classification.h>
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

}  // namespace nabla::train
