// Internals shared by the attack files (not part of the public API): argument checks, the
// labels and targets of a run, predictions, per-sample masks and the final bookkeeping.
#pragma once

#include <cstdint>
#include <vector>

#include <nabla/attack/attack.h>

namespace nabla::attack::detail {

// The checked inputs of one attack run.
struct Run {
  const char* name = "";
  Tensor x0;                        // x detached, contiguous (dtype and device of x)
  Tensor labels;                    // int64 [N] on x's device: y, or the targets when targeted
  std::vector<int64_t> y, target;   // on the host; target empty when untargeted
  std::vector<int64_t> clean_pred;  // argmax f(x0)
  Tensor target_cpu;                // int64 [N], undefined when untargeted
  bool targeted = false;
  int64_t N = 0, K = 0;  // batch size and number of classes
};

// requires: the arguments of an attack (attack.h); `name` names it in every error.
// ensures:  checked (nabla::Error otherwise), one clean forward pass done, targets chosen from
//           gen when opt.target_mode asks for them.
Run prepare(const char* name, const Model& model, const Tensor& x, const Tensor& y,
            const Options& opt, Generator& gen, bool needs_grad);

// requires: x a batch for model. ensures: argmax f(x) per sample on the host (no gradient).
std::vector<int64_t> predict(const Run& run, const Model& model, const Tensor& x);

// ensures: per sample, pred[n] != y[n] (untargeted) or pred[n] == target[n] (targeted).
std::vector<bool> successes(const Run& run, const std::vector<int64_t>& pred);

// requires: keep.size() == like.size(0).
// ensures:  [N, 1, ..., 1] of like's dtype and device, 1 where keep[n], else 0 (a `where` mask).
Tensor sample_mask(const std::vector<bool>& keep, const Tensor& like);

// requires: x_adv shaped like run.x0. ensures: the Result (predictions, success, norms).
Result finish(const Run& run, const Model& model, const Tensor& x_adv);

}  // namespace nabla::attack::detail
