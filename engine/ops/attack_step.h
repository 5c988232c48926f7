// Fused attack steps (kernels/attack.h): the BIM/PGD update rules as single passes.
//
//   attack_step_linf  x' = clamp(clamp(x + alpha*sign(g), x0 - eps, x0 + eps), lo, hi)
//   attack_step_l2    per sample n (dim 0 is the batch):
//                       u = x + alpha * g/||g_n||_2   (u = x when ||g_n|| = 0)
//                       d = u - x0;  d *= eps/||d_n||_2 when ||d_n||_2 > eps
//                       x' = clamp(x0 + d, lo, hi)
//   attack_step_apgd_linf  APGD's momentum step (Croce & Hein 2020), per sample n:
//                       z  = clamp(clamp(x + eta_n*sign(g), x0 - eps, x0 + eps), lo, hi)
//                       x' = clamp(clamp(x + a (z - x) + (1 - a)(x - xp), x0 - eps, x0 + eps),
//                                  lo, hi)
//                     xp the previous iterate, eta [N] one step size per sample
//
// x (current iterate), g (gradient of the loss at x) and x0 (clean input) have the same shape,
// dtype and device. sign(0) = 0. These are update rules, not differentiable ops: they run
// outside autograd and the result has no grad_fn, whatever x and g require. The exact
// floating-point recipe (bit-for-bit equal on CPU and GPU) is in kernels/attack.h.
#pragma once

#include <nabla/tensor.h>

namespace nabla {

// requires: alpha >= 0, eps >= 0, lo <= hi. ensures: a new tensor x' shaped like x.
Tensor attack_step_linf(const Tensor& x, const Tensor& g, const Tensor& x0, double alpha,
                        double eps, double lo = 0, double hi = 1);

// requires: as attack_step_linf, and x has at least one dim (the batch).
Tensor attack_step_l2(const Tensor& x, const Tensor& g, const Tensor& x0, double alpha, double eps,
                      double lo = 0, double hi = 1);

// requires: x, xp, g, x0 the same shape [N, ...], dtype and device; eta [N] floating on that
//           device (any floating dtype: it is converted to x's) with eta_n >= 0; 0 <= a <= 1;
//           eps >= 0; lo <= hi.
// ensures:  a new tensor x' shaped like x (the exact recipe in kernels/attack.h).
Tensor attack_step_apgd_linf(const Tensor& x, const Tensor& xp, const Tensor& g, const Tensor& x0,
                             const Tensor& eta, double a, double eps, double lo = 0, double hi = 1);

}  // namespace nabla
