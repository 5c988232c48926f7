// Adversarial attacks in pixel space [0, 1], driven by the input gradient, on any objective:
// classification (the default), segmentation, or a user-supplied loss and success test
// (objective.h).
//
// Notation: f the model (x -> output), x0 the clean batch [N, ...], y the labels,
// l_n the objective's per-sample loss (for classification l_n = CE(f(x)_n, y_n) untargeted and
// -CE(f(x)_n, t_n) toward targets t), L(x) = sum_n l_n(f(x)) (so each sample's gradient is its
// own), g = dL/dx from nabla::grad(L, {x}) with x a fresh leaf (no weight gradient is computed),
// Pi the projection onto the eps-ball around x0 followed by clipping to [0, 1]. Every attack
// ascends L; a targeted objective's loss already carries the minus sign, so targeted attacks
// descend the cross-entropy to their target.
//
//   fgsm          x' = Pi(x0 + eps sign(g(x0)))                           (Goodfellow et al.)
//                 random_start: x1 = x0 + U(-eps, eps), x' = Pi(x1 + alpha sign(g(x1)))
//                 ("fast is better than free", Wong et al.; alpha ~ 1.25 eps there)
//   bim           x_{k+1} = Pi_inf(x_k + alpha sign(g(x_k))), x_0 = x0, `steps` times (I-FGSM)
//   pgd_linf      bim from a random start x0 + U(-eps, eps)^D when random_start, `restarts` times
//   pgd_l2        x_{k+1} = Pi_2(x_k + alpha g / ||g||_2); random start uniform in the L2 ball
//   mifgsm        m_{k+1} = mu m_k + g / ||g||_1 (per sample), x_{k+1} = Pi_inf(x_k + alpha
//                 sign(m_{k+1}))                                         (Dong et al.)
//   targeted_l2   ascends J(x) = L(x) - lambda ||x - x0||_2^2 with normalised steps
//                 x_{k+1} = clip_[0,1](x_k + alpha h / ||h||_2), h = dJ/dx per sample, no
//                 eps-ball, until the sample succeeds; for classification toward t this
//                 descends CE(f(x), t) + lambda ||x - x0||_2^2 (the iterative targeted attack)
//   one_pixel     differential evolution over k pixels (row, col, value per channel), forward
//                 passes only: minimises p_y (untargeted) or maximises p_t (Su et al.) for
//                 classification, and maximises l_n for any other objective
//   random_noise  x' = clip_[0,1](x0 + eps s), s uniform in {-1, +1}^D: the control
//
// Every step goes through the fused ops attack_step_linf / attack_step_l2 (engine/ops/
// attack_step.h), so the update runs on the device that holds x, CPU or GPU.
// Early stop (Options::early_stop): before each step the objective's success test runs on the
// current iterate; a sample that already succeeds is frozen there and never moves again. A
// sample that succeeds on x0 (a misclassified one) therefore counts as a success with
// x_adv = x0.
// Restarts (pgd_linf, pgd_l2): each sample keeps its first successful restart, else the last.
//
// The model must be in eval mode (call net.eval() before attacking it): the attacks run many
// forward passes and must not update batch-norm statistics or draw dropout masks.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nabla/attack/objective.h>
#include <nabla/device.h>
#include <nabla/nn/model.h>
#include <nabla/random.h>
#include <nabla/tensor.h>

namespace nabla::attack {

// What the attacks take: an nn::Module, or any callable Tensor(const Tensor&) that maps a batch
// through engine ops (nn/model.h). Both convert implicitly.
using Model = nn::Model;

// What an attack returns, one entry per sample.
struct Result {
  Tensor x_adv;  // shaped like x, in [0, 1], dtype and device of x, no history
  // The objective's prediction on x_adv, int64 on the CPU: argmax over dim 1 of f(x_adv), [N]
  // for classification, [N, H, W] for segmentation; undefined for a custom objective.
  Tensor pred;
  // On the CPU for targeted runs, else undefined: int64 [N] classification targets, or the
  // segmentation target mask int64 [N, H, W].
  Tensor target;
  std::vector<bool> success;         // the objective's s_n on x_adv (classification untargeted:
                                     // pred != y; targeted: pred == target)
  std::vector<double> score;         // the objective's score_n on x_adv against y: 1 or 0
                                     // (classification), pixel accuracy (segmentation)
  std::vector<double> linf, l2, l0;  // norms of x_adv - x; l0 counts changed elements

  // ensures: the fraction of samples with success (0 for an empty batch).
  double success_rate() const;
  // ensures: the means of linf, l2 and l0 over the batch (0 for an empty batch).
  double mean_linf() const;
  double mean_l2() const;
  double mean_l0() const;
  // ensures: the mean of score over the batch (0 for an empty batch): accuracy on x_adv for
  //          classification, mean pixel accuracy for segmentation.
  double mean_score() const;
  // requires: y int64 shaped like pred (classification: [N]; segmentation: [N, H, W]).
  // ensures:  the fraction of elements with pred == y (accuracy, or pixel accuracy, on x_adv).
  double accuracy(const Tensor& y) const;
};

struct Options {
  double eps = 8.0 / 255;     // radius of the L-inf (or L2, for pgd_l2) ball; noise amplitude
  double alpha = 2.0 / 255;   // step size (L-inf: per element; L2 attacks: L2 length per step)
  int steps = 10;             // iterations of bim, pgd_*, mifgsm, targeted_l2
  int restarts = 1;           // pgd_linf and pgd_l2 only
  bool random_start = false;  // pgd_* (and fgsm: the "fast" variant)
  bool early_stop = true;     // freeze a sample once it succeeds
  double momentum = 1.0;      // mifgsm's mu
  double lambda = 0.01;       // targeted_l2's weight on ||x - x0||_2^2
  TargetMode target_mode = TargetMode::None;
  int64_t target_class = 0;  // for TargetMode::Given
  int pixels = 1;            // one_pixel: pixels changed per sample (k)
  int population = 400;      // one_pixel: differential-evolution population per sample
  int generations = 100;     // one_pixel: generations at most
  uint64_t seed = 0;         // random starts, random targets, noise, evolution
  // What the attack ascends and when a sample succeeds (objective.h): classification by
  // default, where target_mode and target_class choose the targets. The other objectives
  // need target_mode None.
  Objective objective;
};

// Every attack below:
// requires: x floating [N, ...] (N >= 1) with values in [0, 1]; y the labels of
//           opt.objective (CPU or x's device): classification int64 [N] with classes of the
//           model's output [N, K]; segmentation int64 [N, H, W] for an output [N, C, H, W];
//           custom: any tensor with N rows. The model returns its output on x's device and is
//           in eval mode; grad mode on (not under NoGradGuard); eps >= 0, alpha >= 0,
//           steps >= 1, restarts >= 1 (nabla::Error naming the attack and the shapes otherwise).
// ensures:  a Result whose x_adv lies in [0, 1] and, except for targeted_l2 and one_pixel, within
//           eps of x in the attack's norm. x and y are not modified; nabla::grad is the only
//           gradient taken, so no parameter gets a .grad and no weight-gradient kernel runs.
//           The same seed on the same device gives the same result.
Result fgsm(const Model& model, const Tensor& x, const Tensor& y, const Options& opt = {});
Result bim(const Model& model, const Tensor& x, const Tensor& y, const Options& opt = {});
Result pgd_linf(const Model& model, const Tensor& x, const Tensor& y, const Options& opt = {});
Result pgd_l2(const Model& model, const Tensor& x, const Tensor& y, const Options& opt = {});
Result mifgsm(const Model& model, const Tensor& x, const Tensor& y, const Options& opt = {});
// requires: also a target: opt.target_mode != None for classification, a target mask for
//           segmentation (a custom objective's loss says where it goes).
// ensures:  x_adv in [0, 1], no eps-ball.
Result targeted_l2(const Model& model, const Tensor& x, const Tensor& y, const Options& opt = {});
// requires: also x [N, C, H, W]; 1 <= pixels <= H*W; population >= 4; generations >= 0.
// ensures:  at most `pixels` pixels of each sample differ from x (l0 <= pixels * C); forward
//           passes only (no gradient).
Result one_pixel(const Model& model, const Tensor& x, const Tensor& y, const Options& opt = {});
// ensures: every element moved by exactly eps (before clipping to [0, 1]), random signs.
Result random_noise(const Model& model, const Tensor& x, const Tensor& y, const Options& opt = {});

// requires: mode != None; x, y as for a classification attack; for Given, 0 <= cls < K.
// ensures:  int64 [N] targets on the CPU. Random draws from gen (advancing it) and never returns
//           y; LeastLikely is argmin f(x) over the classes (one forward pass, no gradient).
Tensor choose_targets(const Model& model, const Tensor& x, const Tensor& y, TargetMode mode,
                      int64_t cls, Generator& gen);

// Names accepted by run(): "fgsm", "bim", "pgd", "pgd-l2", "mifgsm", "targeted", "onepixel",
// "noise" (the CLI's --method values).
const std::vector<std::string>& method_names();
// requires: method one of method_names() (else nabla::Error listing them).
// ensures:  the attack of that name applied with opt.
Result run(const std::string& method, const Model& model, const Tensor& x, const Tensor& y,
           const Options& opt = {});

// Called after each batch with the samples done so far and the total.
using Progress = std::function<void(int64_t done, int64_t total)>;

// The mean score_n of opt.objective for `target` on x after `method` (a method_names() entry)
// with opt, crafted against `source` (source and target the same model: the white-box attack;
// different models: transferability). Accuracy for classification, mean pixel accuracy for
// segmentation.
// requires: x [N, ...] and y (as the attacks take them) on the CPU, the whole set; batch >= 1;
//           both models in eval mode on dev. A segmentation target mask of opt.objective is
//           [H, W], or [N, H, W] with N = x.size(0) (then each batch gets its rows).
// ensures:  x is attacked `batch` samples at a time on dev; eps 0 runs no attack and gives the
//           clean score; progress (if set) is called after every batch.
double adversarial_accuracy(const Model& source, const Model& target, const Tensor& x,
                            const Tensor& y, const std::string& method, const Options& opt,
                            int64_t batch, Device dev, const Progress& progress = {});

}  // namespace nabla::attack
