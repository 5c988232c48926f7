// Activations that are not plain elementwise maps: softmax and log_softmax along one dim, and
// inverted dropout (the elementwise ones, relu, sigmoid, tanh..., are in ops/elementwise.h).
//
//   softmax(x, dim)      y = exp(x - lse),  lse = logsumexp of x along dim (max-subtracted)
//   log_softmax(x, dim)  y = x - lse
//   dropout(x, p, training, gen)
//                        y = x * mask, mask = 1/(1-p) with probability 1-p, else 0
//
// Shapes: y has the shape of x. dim may be negative; any dim works without a permute (the
// kernels view x as [outer, D, inner]).
#pragma once

#include <cstdint>

#include <nabla/random.h>
#include <nabla/tensor.h>

namespace nabla {

// requires: x float32 or float64; dim in [-x.dim(), x.dim()).
// ensures:  softmax along dim; differentiable in x.
Tensor softmax(const Tensor& x, int64_t dim);

// requires: as softmax. ensures: log of the softmax along dim, computed without exp/log round
// trips (exact for logits far below the max); differentiable in x.
Tensor log_softmax(const Tensor& x, int64_t dim);

// requires: x float32 or float64; 0 <= p <= 1 (else nabla::Error).
// ensures:  x itself when !training or p == 0 (no random numbers drawn). Otherwise a new tensor
//           x * mask with the mask drawn from gen's Philox stream (the default generator when
//           gen is null), which advances gen; the same generator state gives the same mask.
//           p == 1 gives zeros. The gradient is dy * mask with the same mask.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);

}  // namespace nabla
