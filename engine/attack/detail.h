// Internals shared by the attack files (not part of the public API): argument checks, the
// objective bound to one batch (labels, targets, the clean output's shape), the per-sample
// loss, success and score of an output, per-sample masks and the final bookkeeping.
#pragma once

#include <cstdint>
#include <vector>

#include <nabla/attack/attack.h>

namespace nabla::attack::detail {

// The checked inputs of one attack run.
struct Run {
  const char* name = "";
  Objective objective;
  Tensor x0;          // x detached, contiguous (dtype and device of x)
  Tensor y;           // the labels, contiguous, on x's device
  Tensor goal;        // on x's device: what the loss and success measure against: y, the
                      // classification targets, or the segmentation target mask [N, H, W]
  Tensor target_cpu;  // Result::target: the targets or the target mask; undefined untargeted
  bool targeted = false;
  Shape out_shape;                  // the clean output's shape; later outputs must match
  std::vector<int64_t> y_host;      // classification: the labels on the host
  std::vector<int64_t> target;      // classification: the targets (empty when untargeted)
  std::vector<bool> clean_success;  // s_n(f(x0))
  int64_t N = 0, K = 0;             // batch size; K = out_shape[1] (classes)
  bool classification() const { return objective.kind() == Objective::Kind::Classification; }
};

// requires: the arguments of an attack (attack.h); `name` names it in every error.
// ensures:  checked (nabla::Error otherwise), one clean forward pass done, targets chosen from
//           gen when opt.target_mode asks for them.
Run prepare(const char* name, const Model& model, const Tensor& x, const Tensor& y,
            const Options& opt, Generator& gen, bool needs_grad);

// ensures: out (the model's output for x, with x.size(0) rows) checked against the run's
//          output shape and x's device; nabla::Error naming the attack and the shapes otherwise.
const Tensor& checked_output(const Run& run, const Tensor& out, const Tensor& x);

// requires: x a batch for the model. ensures: f(x), checked, with no graph.
Tensor forward(const Run& run, const Model& model, const Tensor& x);

// Objective pieces for an output of the run's N samples (objective.cpp):
// ensures: L = sum_n l_n as a 0-dim tensor, differentiable in out (the loss the attacks ascend).
Tensor total_loss(const Run& run, const Tensor& out);
// ensures: l_n per sample, [N], in out's dtype and device.
Tensor sample_losses(const Run& run, const Tensor& out);
// ensures: s_n per sample (no graph).
std::vector<bool> successes(const Run& run, const Tensor& out);
// ensures: score_n per sample against the labels (no graph).
std::vector<double> scores(const Run& run, const Tensor& out);
// ensures: Result::pred: argmax over dim 1 on the CPU, undefined for a custom objective.
Tensor predictions(const Run& run, const Tensor& out);
// requires: every entry of samples in [0, N). ensures: the run restricted to those samples, in
//           that order (repeats allowed): labels, goal and targets gathered, N = samples.size().
Run rows(const Run& run, const std::vector<int64_t>& samples);

// ensures: the rows `samples` of t (any dtype; undefined stays undefined), in that order, on
//          t's device.
Tensor gather_rows(const Tensor& t, const std::vector<int64_t>& samples);

// Binding an objective to a batch (objective.cpp): the label checks before the clean forward,
// and the goal (targets, masks) after it.
void check_labels(const char* name, const Objective& objective, const Tensor& x, const Tensor& y,
                  const Options& opt);
void bind(Run& run, const Tensor& clean_out, const Options& opt, Generator& gen);

// requires: keep.size() == like.size(0).
// ensures:  [N, 1, ..., 1] of like's dtype and device, 1 where keep[n], else 0 (a `where` mask).
Tensor sample_mask(const std::vector<bool>& keep, const Tensor& like);

// ensures: {1, ..., x.dim() - 1}, the per-sample reduction dims of a batch x [N, ...].
std::vector<int64_t> sample_dims_of(const Tensor& x);

// Random starts (attack.cpp). ensures: x0 + U(-eps, eps) per element, projected onto the L-inf
// ball and [0, 1]; draws from gen.
Tensor linf_start(const Run& run, double eps, Generator& gen);
// ensures: uniform in the L2 ball of radius eps around x0, clipped to [0, 1]; draws from gen.
Tensor l2_start(const Run& run, double eps, Generator& gen);

// requires: x_adv shaped like run.x0. ensures: the Result (predictions, success, score, norms).
Result finish(const Run& run, const Model& model, const Tensor& x_adv);

}  // namespace nabla::attack::detail
