// Objectives of the attacks: what an attack ascends, and when a sample counts as fooled, for
// any model output and label shape.
//
// Notation: o = f(x) the model's output for a batch x [N, ...], y the labels, CE(v, c) the
// cross-entropy of a logit vector v against class c, [.] the indicator. An objective gives, per
// sample n:
//   l_n(o)      the loss the attack ascends. The attacks differentiate L = sum_n l_n, so each
//               sample's gradient is its own (samples do not interact in eval mode).
//   s_n(o)      success: whether sample n is fooled (early stop, Result::success).
//   score_n(o)  what the model still gets right against y (Result::score, adversarial_accuracy).
//
// classification (the default): o [N, K] logits, y int64 [N]
//   untargeted   l_n = CE(o_n, y_n)       s_n = [argmax_c o_n,c != y_n]
//   targeted     l_n = -CE(o_n, t_n)      s_n = [argmax_c o_n,c == t_n]
//                t from Options::target_mode: given, random (never y), least likely on x0
//   score_n = [argmax_c o_n,c == y_n]
//
// segmentation: o [N, C, H, W] per-pixel logits, y int64 [N, H, W] masks, P = H W and
//   acc_n(m) = (1/P) sum_ij [argmax_c o_n,c,ij == m_n,ij]   (the pixel accuracy against mask m)
//   untargeted   l_n = sum_ij CE(o_n,:,ij, y_n,ij)     s_n = [acc_n(y) < threshold]
//   targeted     l_n = -sum_ij CE(o_n,:,ij, t_n,ij)    s_n = [acc_n(t) >= threshold]
//                toward a target mask t, int64 [N, H, W] or [H, W] (the same for every sample)
//   score_n = acc_n(y)
//
// custom: the user's l (a Tensor [N], differentiable in o) and s (one bool per sample), both
//   functions of (o, y) where y is whatever the attack was given (any dtype and shape with N
//   rows); score_n is the user's score, or [not s_n] when none is given.
//
// The attacks take the objective from Options::objective (attack.h); the default is
// classification, so attack::fgsm(net, x, y) attacks a classifier as it always has.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nabla/tensor.h>

namespace nabla::attack {

// Untargeted, or which target each sample gets (classification objectives).
enum class TargetMode {
  None,        // untargeted: move away from y
  Given,       // every sample aims at Options::target_class
  Random,      // a class drawn uniformly among the K - 1 classes other than y
  LeastLikely  // the class with the lowest logit on the clean input
};

// ensures: "none", "given", "random", "least-likely".
const char* target_mode_name(TargetMode m);

class Objective {
 public:
  // A custom objective's pieces. output: the model's output for a batch of N samples (with its
  // graph for Loss, detached for Success and Score); y: the attack's labels, as given.
  using Loss = std::function<Tensor(const Tensor& output, const Tensor& y)>;  // [N] l_n
  using Success = std::function<std::vector<bool>(const Tensor& output, const Tensor& y)>;
  using Score = std::function<std::vector<double>(const Tensor& output, const Tensor& y)>;

  enum class Kind { Classification, Segmentation, Custom };

  // ensures: classification (untargeted unless Options::target_mode says otherwise).
  Objective();
  static Objective classification();

  // requires: 0 <= threshold <= 1 (nabla::Error otherwise).
  // ensures:  untargeted segmentation: a sample succeeds once its pixel accuracy is below
  //           threshold.
  static Objective segmentation(double threshold = 0.5);

  // requires: target int64 [H, W] or [N, H, W] with classes of the output (checked against
  //           the output when an attack runs); 0 <= threshold <= 1.
  // ensures:  targeted segmentation: descends the per-pixel CE to the target mask; a sample
  //           succeeds once the fraction of its pixels predicted as the target reaches
  //           threshold. The mask is kept on the CPU.
  static Objective segmentation_targeted(const Tensor& target, double threshold = 0.9);

  // requires: loss and success non-empty. loss(o, y) returns a floating [N] tensor that
  //           depends on o through engine ops; success(o, y) one bool per sample; score (if
  //           given) one number per sample.
  // ensures:  an objective that the attacks ascend and test exactly as these functions say.
  static Objective custom(Loss loss, Success success, Score score = {},
                          std::string name = "custom");

  Kind kind() const { return kind_; }
  // ensures: "classification", "segmentation", "segmentation-targeted" or the custom name.
  const std::string& name() const { return name_; }
  double threshold() const { return threshold_; }
  const Tensor& target() const { return target_; }  // the target mask, else undefined
  const Loss& custom_loss() const { return loss_; }
  const Success& custom_success() const { return success_; }
  const Score& custom_score() const { return score_; }

  // requires: output the model's output for N samples and y their labels, shaped as the kind
  //           asks (nabla::Error naming both shapes otherwise).
  // ensures:  score_n per sample, computed without a graph: accuracy (0 or 1) for
  //           classification, pixel accuracy for segmentation, the custom score otherwise.
  std::vector<double> score(const Tensor& output, const Tensor& y) const;

 private:
  Kind kind_ = Kind::Classification;
  std::string name_ = "classification";
  double threshold_ = 0;
  Tensor target_;
  Loss loss_;
  Success success_;
  Score score_;
};

}  // namespace nabla::attack
