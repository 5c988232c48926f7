// Training a Fashion-MNIST classifier (FashionCNN or FashionGAP) end to end on engine/train:
// the recipe behind `nabla classify train` and the demo.
//
//   per step: batch (x, y) from the seeded loader; loss = CE(f(x), y); with adversarial training
//             (Goodfellow et al.; Madry et al.; Kannan et al.'s logit pairing)
//               loss = CE(f(x), y) + adv_weight CE(f(x_adv), y)
//                      + logit_pairing (1/N) sum_n ||f(x)_n - f(x_adv)_n||^2,
//             x_adv crafted against the current weights: "fgsm" one step of 1.25 eps from a random
//             start in the eps box (Wong et al., "fast is better than free"), "pgd" 7 steps of
//             eps/4 from a random start; the attack asks for dL/dx only
//             "trades" (Zhang et al. 2019) instead: loss = CE(f(x), y)
//                      + trades_beta (1/N) sum_n KL(softmax f(x)_n || softmax f(x_adv)_n),
//             x_adv from 7 PGD steps of eps/4 on that KL (attack::trades_example)
//   optimizer and schedule by name (engine/optim/factory.h), the rate set per step
//   per epoch: test loss and accuracy (engine/train/evaluate.h), one row of metrics.csv
//
// Writes into `out`: model.safetensors (PyTorch's parameter names), metrics.csv, curves.png,
// summary.json and the run state that --resume continues from.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include <nabla/device.h>

namespace nabla::nets {

struct ClassifierTraining {
  std::string arch = "fashioncnn";  // make_classifier: fashioncnn or gap
  std::string optimizer = "sgd";    // sgd (momentum), adam, adamw
  std::string schedule = "cosine";  // over all steps: cosine, step (halve each epoch), constant
  int64_t epochs = 3, batch = 64;
  double lr = 0;  // 0: 0.05 for sgd, 0.001 for adam and adamw
  double momentum = 0.9, weight_decay = 0;
  uint64_t seed = 0;
  std::string data;  // MNIST-format folder; empty: Fashion-MNIST (dataset-fashion-mnist)
  int64_t train_limit = 0, test_limit = 0;  // > 0: the first N images only
  std::string adv = "none";                 // none, fgsm, pgd or trades
  double adv_eps = 0.1, adv_weight = 1.0, logit_pairing = 0;
  double trades_beta = 6;  // TRADES' beta (the paper's default 6)
  std::string out = "runs/classify";
  int64_t checkpoint_every = 0;  // steps; 0: at the end of each epoch only
  // Saved with the run for --resume; the recipe itself takes the resolved device.
  std::string device = "auto";
  int threads = 0;

  double effective_lr() const { return lr > 0 ? lr : (optimizer == "sgd" ? 0.05 : 1e-3); }
};

// The options as JSON, keyed like the command line's flags ("train_limit" for --train-limit).
void to_json(nlohmann::json& j, const ClassifierTraining& c);
// Keys that are missing keep their defaults; a wrongly typed value is a nabla::Error naming it.
void from_json(const nlohmann::json& j, ClassifierTraining& c);

// requires: the data loadable (1x28x28 images); resume: `c.out` holds a checkpoint of a run with
//   these options.
// ensures: the trained model in c.out (see above); returns the summary: test accuracy and loss,
//   per-epoch records, timings, paths. A diverged loss stops with a nabla::Error naming the step.
nlohmann::json train_classifier(const ClassifierTraining& c, Device dev, bool resume, bool show);

}  // namespace nabla::nets
