// A gradient-masking check: the signs of a broken robustness evaluation listed by Athalye,
// Carlini & Wagner 2018 ("Obfuscated gradients give a false sense of security") and Carlini et
// al. 2019 ("On evaluating adversarial robustness", Sec. 5), measured on one classifier and
// one data set. Each item passes or warns:
//
//   iterative >= single-step   acc(APGD-CE, eps) <= acc(FGSM, eps) + tol
//   unbounded -> 0             acc(APGD-CE, big_eps) <= unbounded_max (at L-inf eps 1 every
//                              image is reachable, so a working attack fools every sample);
//                              the sweep eps/2, eps, 2 eps, big_eps is reported
//   black-box <= white-box     acc(Square, eps) >= acc(APGD-CE, eps) - tol
//   transfer <= white-box      acc on the model of APGD-CE crafted on `source` >=
//                              acc(APGD-CE, eps) - tol (skipped without a source model)
//   restarts stable            acc(APGD-CE, 1 restart) - acc(APGD-CE, `restarts` restarts)
//                              <= restart_tol
// A model whose gradient is masked (zero, noisy or wrong) fails some of these: its white-box
// attacks are weaker than they should be, so a gradient-free or transferred attack does better,
// and a huge budget still leaves it "robust".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nabla/attack/attack.h>

namespace nabla::attack {

struct CheckOptions {
  double eps = 0.1;  // the budget whose evaluation is checked
  Norm norm = Norm::Linf;
  double big_eps = 1.0;  // the "unbounded" budget
  int steps = 20;        // APGD iterations
  int restarts = 3;      // for the restart item
  int queries = 1000;    // Square's budget
  double tol = 0.02;     // accuracy slack of the comparisons
  double unbounded_max = 0.05;
  double restart_tol = 0.05;
  int64_t batch = 256;
  uint64_t seed = 0;
};

struct CheckItem {
  std::string name;  // "iterative >= single-step", ...
  bool pass = true;  // false: warn
  bool skipped = false;
  std::string detail;  // the numbers compared, in words
};

struct CheckReport {
  double clean = 0;                          // clean accuracy
  std::vector<double> sweep_eps, sweep_acc;  // APGD-CE accuracy against eps
  double fgsm = 0, apgd = 0, square = 0, transfer = -1, apgd_restarts = 0;
  std::vector<CheckItem> items;
  // ensures: true when no item warns.
  bool passed() const;
};

// requires: x [N, C, H, W] in [0, 1] and y int64 [N] on the CPU (the whole set); model (and
//           source, when given) classifiers in eval mode on dev.
// ensures:  the report; every attack runs `batch` samples at a time on dev; progress (if set)
//           is called with (attacks done, attacks in all).
CheckReport robustness_check(const Model& model, const Tensor& x, const Tensor& y,
                             const CheckOptions& opt, Device dev, const Model* source = nullptr,
                             const Progress& progress = {});

}  // namespace nabla::attack
