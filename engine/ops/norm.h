// Normalization ops over NCHW: batch_norm2d and instance_norm2d (kernels/norm.h).
//
//   batch_norm2d     x [N,C,H,W] -> y [N,C,H,W]; statistics per channel over N*H*W elements
//   instance_norm2d  x [N,C,H,W] -> y [N,C,H,W]; statistics per (n, c) plane over H*W elements
//   y = weight[c] * (x - mean) / sqrt(var + eps) + bias[c],  var biased (divides by the count)
//
// weight and bias ([C]) are optional (undefined means 1 and 0). All tensors share dtype and
// device. Differentiable in x, weight and bias; the backward computes only the gradients that
// are asked for (grad(loss, {x}) runs no weight-gradient kernel).
#pragma once

#include <nabla/tensor.h>

namespace nabla {

// training: normalizes with the batch statistics; when running_mean and running_var ([C],
//   contiguous, both or neither) are given they are updated in place, outside autograd, as
//   running = (1 - momentum) * running + momentum * stat, with the unbiased variance for
//   running_var. Needs more than one value per channel (N*H*W > 1).
// eval (training = false): normalizes with running_mean and running_var, which must be given;
//   y is then an affine map of x.
Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                    const Tensor& running_mean, const Tensor& running_var, bool training,
                    double momentum = 0.1, double eps = 1e-5);

// Always uses the statistics of each plane (PyTorch's InstanceNorm2d with
// track_running_stats = false). Needs H*W > 1.
Tensor instance_norm2d(const Tensor& x, const Tensor& weight = Tensor(),
                       const Tensor& bias = Tensor(), double eps = 1e-5);

}  // namespace nabla
