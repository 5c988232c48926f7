// Losses. Each takes a Reduction: None keeps one loss per element (or per position), Sum adds
// them, Mean averages them (the default); Sum and Mean return a 0-dim tensor.
//
//   cross_entropy   logits [N, C] or [N, C, d1, ...], int64 target [N] or [N, d1, ...]
//                   loss_p = w[t] * (logsumexp_c logits[n, :, s] - logits[n, t, s])
//   nll_loss        log_probs and target as cross_entropy;  loss_p = -w[t] * log_probs[n, t, s]
//                   With class weights w [C], Mean divides by the sum of w[t] over the counted
//                   positions (PyTorch); positions whose target is ignore_index count for
//                   nothing, in the sum and in the divisor. Only logits/log_probs get gradients.
//   binary_cross_entropy_with_logits   logits x, float target t, same shape; optional pos_weight
//                   pw broadcastable to x:  loss = -[pw t log sigmoid(x) + (1-t) log(1-sigmoid(x))]
//                   = max(x,0) - x t + log(1 + exp(-|x|)) for pw = 1. Differentiable in x, t, pw.
//   mse_loss        (x - t)^2, same shapes; differentiable in x and t.
//   l1_loss         |x - t|, same shapes; differentiable in x and t (gradient 0 where x == t).
//   dice_loss       multiclass soft Dice (Milletari et al., V-Net; the soft form with plain sums
//                   that milesial/Pytorch-UNet trains with): logits [N, C, d1, ...], int64 target
//                   [N, d1, ...]; p = softmax(logits, 1), g = one_hot(target) at dim 1,
//                     D_c = (2 sum_{n,s} p[n,c,s] g[n,c,s] + smooth) / (sum p[:,c] + sum g[:,c] +
//                     smooth) loss = 1 - mean_c D_c    (c over 0..C-1, or 1..C-1 without the
//                     background)
//                   sums over the whole batch, so a class absent from one image still counts.
//                   Built from softmax, mul, sum and div: its gradient is theirs. Only logits get
//                   a gradient; the one-hot target is built on the host, then moved.
//
// Shape, dtype and target errors throw nabla::Error naming the op and every shape.
#pragma once

#include <cstdint>

#include <nabla/tensor.h>

namespace nabla {

enum class Reduction { None, Mean, Sum };
const char* reduction_name(Reduction r);  // "none", "mean", "sum"

// requires: logits float, dim >= 2, C = logits.size(1) >= 1; target int64 with logits' shape
//           minus dim 1; weight undefined or [C] of logits' dtype; every target in [0, C) or
//           equal to ignore_index (else nabla::Error naming the value, its position and C).
// ensures:  fused log-softmax + NLL; None gives target's shape. Mean over zero counted
//           positions is NaN (0/0), as in PyTorch.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight = Tensor(),
                     Reduction reduction = Reduction::Mean, int64_t ignore_index = -100);

// requires: as cross_entropy, with log-probabilities in place of logits.
// ensures:  as cross_entropy, with loss_p = -w[t] * log_probs[n, t, s].
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const Tensor& weight = Tensor(),
                Reduction reduction = Reduction::Mean, int64_t ignore_index = -100);

// requires: logits float; target same shape and dtype; pos_weight undefined or broadcastable to
//           logits' shape (typically [C] for [N, C]).
// ensures:  numerically stable for any logits (no exp overflow); None gives logits' shape.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        const Tensor& pos_weight = Tensor(),
                                        Reduction reduction = Reduction::Mean);

// requires: input float; target same shape and dtype. ensures: None gives input's shape.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

// requires: input float; target same shape and dtype. ensures: None gives input's shape.
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

// requires: logits float with dim >= 2 and C = logits.size(1) >= 2 when !include_background
//   (>= 1 otherwise); target int64 with logits' shape minus dim 1, every value in [0, C) (else
//   nabla::Error naming the value, its position and C); smooth >= 0.
// ensures: the 0-dim loss in [0, 1] (see above); a class with no pixel in either p or g gives
//   D_c = 1 when smooth > 0 (NaN when smooth = 0).
Tensor dice_loss(const Tensor& logits, const Tensor& target, double smooth = 1.0,
                 bool include_background = true);

}  // namespace nabla
