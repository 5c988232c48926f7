// Adversarial attacks on a classifier, in pixel space [0, 1], driven by the input gradient.
//
// Notation: f the model (x -> logits [N, K]), x0 the clean batch [N, ...], y the labels, t the
// targets, L(x, c) = CE(f(x), c) summed over the batch (so each sample's gradient is its own),
// g = dL/dx from nabla::grad(L, {x}) with x a fresh leaf (no weight gradient is computed),
// Pi the projection onto the eps-ball around x0 followed by clipping to [0, 1].
// Untargeted attacks ascend L(x, y); targeted ones descend L(x, t) (they step along -g).
//
//   fgsm          x' = Pi(x0 + eps sign(g(x0)))                           (Goodfellow et al.)
//                 random_start: x1 = x0 + U(-eps, eps), x' = Pi(x1 + alpha sign(g(x1)))
//                 ("fast is better than free", Wong et al.; alpha ~ 1.25 eps there)
//   bim           x_{k+1} = Pi_inf(x_k + alpha sign(g(x_k))), x_0 = x0, `steps` times (I-FGSM)
//   pgd_linf      bim from a random start x0 + U(-eps, eps)^D when random_start, `restarts` times
//   pgd_l2        x_{k+1} = Pi_2(x_k + alpha g / ||g||_2); random start uniform in the L2 ball
//   mifgsm        m_{k+1} = mu m_k + g / ||g||_1 (per sample), x_{k+1} = Pi_inf(x_k + alpha
//                 sign(m_{k+1}))                                         (Dong et al.)
//   targeted_l2   descends l(x) = CE(f(x), t) + lambda ||x - x0||_2^2 with normalised steps
//                 x_{k+1} = clip_[0,1](x_k - alpha dl/dx / ||dl/dx||_2), no eps-ball, until
//                 f(x) predicts t (the iterative targeted attack of the seed lectures)
//   one_pixel     differential evolution over k pixels (row, col, value per channel), forward
//                 passes only: minimises p_y (untargeted) or maximises p_t (Su et al.)
//   random_noise  x' = clip_[0,1](x0 + eps s), s uniform in {-1, +1}^D: the control
//
// Every step goes through the fused ops attack_step_linf / attack_step_l2 (engine/ops/
// attack_step.h), so the update runs on the device that holds x, CPU or GPU.
// Early stop (Options::early_stop): before each step the current iterate is classified; a
// sample that already succeeds is frozen there and never moves again. A sample misclassified on
// x0 therefore counts as a success with x_adv = x0.
// Restarts (pgd_linf, pgd_l2): each sample keeps its first successful restart, else the last.
//
// The model must be in eval mode (call net.eval() before wrapping it): the attacks run many
// forward passes and must not update batch-norm statistics or draw dropout masks.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nabla/random.h>
#include <nabla/tensor.h>

namespace nabla::attack {

// Anything that maps a batch x [N, ...] to logits [N, K] through engine ops (an nn::Module is
// wrapped as [&](const Tensor& x) { return net(x); }).
using Model = std::function<Tensor(const Tensor&)>;

// What an attack returns, one entry per sample.
struct Result {
  Tensor x_adv;                      // shaped like x, in [0, 1], dtype and device of x, no history
  Tensor pred;                       // int64 [N] on the CPU: argmax f(x_adv)
  Tensor target;                     // int64 [N] on the CPU for targeted runs, else undefined
  std::vector<bool> success;         // untargeted: pred != y; targeted: pred == target
  std::vector<double> linf, l2, l0;  // norms of x_adv - x; l0 counts changed elements

  // ensures: the fraction of samples with success (0 for an empty batch).
  double success_rate() const;
  // ensures: the means of linf, l2 and l0 over the batch (0 for an empty batch).
  double mean_linf() const;
  double mean_l2() const;
  double mean_l0() const;
  // requires: y int64 [N]. ensures: the fraction of samples with pred == y (accuracy on x_adv).
  double accuracy(const Tensor& y) const;
};

// Untargeted, or which target each sample gets.
enum class TargetMode {
  None,        // untargeted: move away from y
  Given,       // every sample aims at Options::target_class
  Random,      // a class drawn uniformly among the K - 1 classes other than y
  LeastLikely  // the class with the lowest logit on the clean input
};

// ensures: "none", "given", "random", "least-likely".
const char* target_mode_name(TargetMode m);

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
};

// Every attack below:
// requires: x floating [N, ...] (N >= 1) with values in [0, 1]; y int64 [N] with classes of the
//           model's output (CPU or x's device); the model maps x to logits [N, K] on x's device
//           and is in eval mode; grad mode on (not under NoGradGuard); eps >= 0, alpha >= 0,
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
// requires: also opt.target_mode != None. ensures: x_adv in [0, 1], no eps-ball.
Result targeted_l2(const Model& model, const Tensor& x, const Tensor& y, const Options& opt = {});
// requires: also x [N, C, H, W]; 1 <= pixels <= H*W; population >= 4; generations >= 0.
// ensures:  at most `pixels` pixels of each sample differ from x (l0 <= pixels * C); forward
//           passes only (no gradient).
Result one_pixel(const Model& model, const Tensor& x, const Tensor& y, const Options& opt = {});
// ensures: every element moved by exactly eps (before clipping to [0, 1]), random signs.
Result random_noise(const Model& model, const Tensor& x, const Tensor& y, const Options& opt = {});

// requires: mode != None; x, y as for the attacks; for Given, 0 <= cls < K.
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

}  // namespace nabla::attack
