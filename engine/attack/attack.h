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

// The threat model of APGD, Square and AutoAttack.
enum class Norm { Linf, L2 };
// APGD's loss: the objective's (cross-entropy for classification), or the difference of logits
// ratio (classification only).
enum class ApgdLoss { CE, DLR };

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
  // APGD, Square, AutoAttack only (else empty): per sample, the model evaluations the attack
  // spent on it: gradient evaluations (one forward and one input-gradient backward each) for
  // APGD, forward passes (queries) for Square; a sample fooled on x0 costs 0.
  std::vector<int64_t> queries;
  std::vector<double> step_size;  // APGD only: the per-sample step size eta at the end

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
  // APGD, Square, AutoAttack (Croce & Hein 2020; Andriushchenko et al. 2020):
  Norm norm = Norm::Linf;             // the threat model: eps-ball in L-inf or L2
  ApgdLoss apgd_loss = ApgdLoss::CE;  // apgd: the objective's loss, or DLR (classification)
  double apgd_rho = 0.75;             // condition 1: halve eta when fewer than rho of the steps
                                      // since the last checkpoint increased the loss
  double apgd_momentum = 0.75;        // alpha of the momentum step
  int target_classes = 9;             // apgd-t: the top-k classes (after the predicted one) tried
  int queries = 5000;                 // square: model evaluations per sample at most
  double p_init = 0.8;                // square: initial fraction of pixels changed per step
  // DeepFool (Moosavi-Dezfooli et al. 2016) and Carlini-Wagner L2 (Carlini & Wagner 2017):
  double overshoot = 0.02;  // deepfool: x_adv = x0 + (1 + overshoot) r_total
  double cw_c = 1e-3;       // cw: initial weight c of the margin term
  int cw_search = 9;        // cw: binary-search steps over c
  double cw_kappa = 0;      // cw: confidence kappa of the f6 margin
  double cw_lr = 0.01;      // cw: Adam's learning rate on w
  double jsma_gamma = 0.1;  // jsma: at most this fraction of the elements may change (L0)
  double uap_delta = 0.2;   // universal: stop once the fooling rate reaches 1 - delta
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

// APGD (Croce & Hein 2020), L-inf or L2 (opt.norm), opt.steps iterations, opt.restarts random
// starts for the samples not yet fooled. Step size eta_n per sample, 2 eps at first, halved at
// the checkpoints w_j = ceil(p_j steps), p_0 = 0, p_1 = 0.22,
// p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), when
//   (1) sum_{i=w_{j-1}}^{w_j - 1} [f(x_{i+1}) > f(x_i)] < rho (w_j - w_{j-1}), or
//   (2) eta at w_{j-1} == eta at w_j and f_max at w_{j-1} == f_max at w_j;
// a halving restarts from x_max, the point of highest loss. The step:
//   z = P(x_k + eta sign(g))  (L2: eta g / ||g||_2),   x_{k+1} = P(x_k + a (z - x_k) +
//   (1 - a)(x_k - x_{k-1})), a = opt.apgd_momentum (1 on the first step)
// with f = the objective's l_n (ApgdLoss::CE) or DLR. x_adv is the first iterate that
// succeeds, else x_max.
// requires: as every attack; DLR: classification untargeted with K >= 3 classes.
// ensures:  Result::queries (gradient evaluations per sample) and Result::step_size are set.
Result apgd(const Model& model, const Tensor& x, const Tensor& y, const Options& opt = {});
// APGD-T: for each of the opt.target_classes classes ranked 2, 3, ... by the clean logits,
// APGD on the targeted DLR loss toward it, on the samples not yet fooled; success stays
// untargeted (pred != y), as in AutoAttack.
// requires: classification, untargeted target mode, K >= 4.
Result apgd_targeted(const Model& model, const Tensor& x, const Tensor& y, const Options& opt = {});
// Square attack (Andriushchenko et al. 2020), score-based, forward passes only: random
// square-shaped updates at the eps boundary, kept when they lower the margin
// m_n = z_y - max_{j != y} z_j (targeted: max_{j != t} z_j - z_t; other objectives: -l_n),
// side s = round(sqrt(p H W)) with p from the paper's schedule of opt.p_init, at most
// opt.queries model evaluations per sample.
// requires: x [N, C, H, W]; queries >= 1; 0 < p_init <= 1.
// ensures:  Result::queries: the forward passes each sample used (0 when fooled on x0).
Result square(const Model& model, const Tensor& x, const Tensor& y, const Options& opt = {});

// DeepFool (Moosavi-Dezfooli, Fawzi, Frossard 2016), minimal perturbation, no eps-ball. Per
// iteration i (at most opt.steps), for a sample still classified as y, with
// w_k = grad f_k(x_i) - grad f_y(x_i) and f'_k = f_k(x_i) - f_y(x_i) over the classes k != y:
//   L2:    l = argmin_k |f'_k| / ||w_k||_2,  r_i = (|f'_l| / ||w_l||_2 + 1e-4) w_l / ||w_l||_2
//   L-inf: l = argmin_k |f'_k| / ||w_k||_1,  r_i = (|f'_l| / ||w_l||_1 + 1e-4) sign(w_l)
//   r = r + r_i,  x_{i+1} = clip_[0,1](x0 + (1 + opt.overshoot) r)
// The 1e-4 (kDeepFoolPad) is the authors' code's: each step goes 1e-4 past the linearised
// boundary. Without it a sample whose step is cut by the clip to [0, 1] creeps toward the
// boundary and stalls just short of it: on a 2-epoch FashionCNN, 33% of 200 test images
// were still unfooled after 50 iterations without the pad and none with it.
// On an affine classifier one iteration lands 1e-4 past the closest decision boundary.
// requires: classification, untargeted; K >= 2.
// ensures:  Result::queries: iterations per sample (each: one forward and K input-gradient
//           backward passes).
Result deepfool(const Model& model, const Tensor& x, const Tensor& y, const Options& opt = {});
inline constexpr double kDeepFoolPad = 1e-4;

// Carlini-Wagner L2 (Carlini & Wagner 2017). x' = (tanh(w) + 1) / 2 (always in [0, 1]),
// w_0 = atanh((2 x0 - 1)(1 - 1e-6)); minimises per sample
//   ||x' - x0||_2^2 + c_n f6(x'),  f6 = max(z_y - max_{i != y} z_i, -kappa)
//                                  (targeted: max(max_{i != t} z_i - z_t, -kappa))
// with Adam (lr opt.cw_lr, opt.steps steps) from w_0, for opt.cw_search values of c_n found by
// binary search from opt.cw_c (x10 while no success has bounded it from above). Keeps the
// successful x' of least L2 distance; a sample never fooled keeps x0.
// requires: classification; steps >= 1, cw_search >= 1, cw_c > 0, cw_lr > 0, cw_kappa >= 0.
Result carlini_wagner(const Model& model, const Tensor& x, const Tensor& y,
                      const Options& opt = {});

// JSMA, the Jacobian-based saliency map attack (Papernot et al. 2016), targeted, increasing
// pixels (theta = +1) in pairs. Per iteration, with Z the logits, a_i = dZ_t/dx_i and
// b_i = sum_{j != t} dZ_j/dx_i over the search domain G (elements not yet changed, below 1):
//   (p, q) = argmax_{p < q in G, a_p + a_q > 0, b_p + b_q < 0} (a_p + a_q) |b_p + b_q|,
//   x_p = x_q = 1, G = G \ {p, q}
// until f predicts t, no pair qualifies, or the next pair would exceed
// floor(jsma_gamma D) changed elements (the L0 budget). Two input-gradient backward passes per
// iteration.
// requires: classification with opt.target_mode != None.
// ensures:  l0 <= floor(jsma_gamma D); Result::queries: iterations per sample.
Result jsma(const Model& model, const Tensor& x, const Tensor& y, const Options& opt = {});

// A universal adversarial perturbation: one v [1, C, H, W] for a whole data set.
struct Universal {
  Tensor v;            // on the CPU, dtype of x, ||v|| <= eps in opt.norm
  double fooling = 0;  // classification: fraction with f(x + v) != f(x) in argmax;
                       // otherwise the objective's success rate on x + v
  double score = 0;    // mean objective score on clip(x + v) against y (accuracy, pixel acc.)
  int passes = 0;      // passes over the data made
};
// Classification (untargeted): Moosavi-Dezfooli et al. 2017, Algorithm 1. For each sample x_i
// (in an order shuffled by opt.seed) not yet fooled by v: the DeepFool perturbation r_i of
// clip(x_i + v) (opt.steps iterations, opt.overshoot), then v = P_eps(v + r_i) (L-inf: clip to
// [-eps, eps]; L2: scale onto the ball); passes end once the fooling rate reaches
// 1 - opt.uap_delta, or after `passes`.
// Any other objective (segmentation: Metzen et al. 2017): stochastic sign-gradient ascent on
// the batch-summed loss, v = clip_[-eps, eps](v + alpha sign(dL/dv)) per batch with
// L = sum_n l_n(f(clip(x_n + v))), for `passes` passes (L-inf only).
// requires: x [N, C, H, W] and y on the CPU (the whole set); model in eval mode on dev; batch
//           >= 1; passes >= 1.
Universal universal_perturbation(const Model& model, const Tensor& x, const Tensor& y,
                                 const Options& opt, int passes, int64_t batch, Device dev);

// TRADES (Zhang et al. 2019): the per-sample KL(f(x) || f(x')) between the softmax of the
// clean logits p = softmax(clean) and of the adversarial ones, sum_k p_k (log p_k -
// log softmax(adv)_k), differentiable in both.
// requires: clean and adv logits [N, K] of the same shape. ensures: [N].
Tensor trades_kl(const Tensor& clean, const Tensor& adv);
// TRADES' inner maximisation: x_adv = argmax over the L-inf eps-ball of KL(f(x) || f(x_adv)),
// by PGD (opt.steps steps of opt.alpha, from a uniform random start in the ball; the paper
// starts at x + 0.001 N(0, I)) on the custom objective l_n = trades_kl(f(x)_n, f(x')_n) with
// f(x) fixed (detached). Same requirements as pgd_linf on x; no labels needed.
// ensures: x_adv in [0, 1] and within eps of x, no history.
Tensor trades_example(const Model& model, const Tensor& x, const Options& opt);

// One stage of an AutoAttack run: the attack, the samples it was run on (those still robust),
// the samples still robust after it, and the model evaluations it spent.
struct AutoAttackStage {
  std::string name;
  int64_t attacked = 0, robust = 0, queries = 0;
};
// The name under which autoattack reports: FAB-T is not implemented, so the standard sequence
// runs without it and says so.
constexpr const char* kAutoAttackName = "AutoAttack (no FAB)";
// AutoAttack, "standard" version (Croce & Hein 2020) without FAB-T: APGD-CE, then APGD-T (the
// targeted DLR loss, opt.target_classes targets), then Square (opt.queries queries), each run
// only on the samples that every earlier attack left robust, in opt.norm with eps. The
// standard settings are steps 100, restarts 1, target_classes 9, queries 5000, p_init 0.8
// (the CLI's defaults for --method autoattack); this function uses opt as given.
// requires: classification, untargeted; K >= 4; x [N, C, H, W].
// ensures:  per sample, x_adv of the stage that fooled it (x0 for samples robust to all and
//           for those misclassified already); Result::queries sums the stages; stages (when
//           given) receives one entry per stage.
Result autoattack(const Model& model, const Tensor& x, const Tensor& y, const Options& opt = {},
                  std::vector<AutoAttackStage>* stages = nullptr);

// APGD's checkpoints w_1 < w_2 < ... <= steps (w_0 = 0 left out), as above.
std::vector<int> apgd_checkpoints(int steps);
// Square's fraction of pixels p at iteration `it` of `budget` (the paper's piecewise constant
// schedule, the iteration rescaled to 10000).
double square_p(double p_init, int it, int budget);

// The difference of logits ratio (Croce & Hein 2020), per sample, differentiable in logits:
//   untargeted  DLR = -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12)
//   targeted    DLR = -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)
// with pi the classes sorted by decreasing logit. Ascending it moves the sample off y.
// requires: logits [N, K] floating, K >= 3 (targeted K >= 4); y and target int64 [N].
// ensures:  [N] in the logits' dtype and device.
Tensor dlr_loss(const Tensor& logits, const Tensor& y, const Tensor& target = Tensor());

// requires: mode != None; x, y as for a classification attack; for Given, 0 <= cls < K.
// ensures:  int64 [N] targets on the CPU. Random draws from gen (advancing it) and never returns
//           y; LeastLikely is argmin f(x) over the classes (one forward pass, no gradient).
Tensor choose_targets(const Model& model, const Tensor& x, const Tensor& y, TargetMode mode,
                      int64_t cls, Generator& gen);

// Names accepted by run(): "fgsm", "bim", "pgd", "pgd-l2", "mifgsm", "targeted", "onepixel",
// "noise", "apgd" (APGD-CE, or DLR by opt.apgd_loss), "apgd-dlr", "apgd-t", "square",
// "autoattack", "deepfool", "cw", "jsma" (the CLI's --method values).
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
