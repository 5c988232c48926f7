// Optimizer updates: one fused elementwise pass per parameter, the update rules of
// torch.optim.SGD and torch.optim.Adam / AdamW (single-tensor implementation, same order of
// operations). p is the parameter, g its gradient, buf / m / v the optimizer state; all hold n
// contiguous elements and are updated in place.
//
//   sgd_step   g' = g + wd*p                               (when wd != 0)
//              b  = g'  on the first step,  b = mu*b + (1 - dampening)*g'  afterwards
//                                                          (when mu != 0; buf holds b)
//              d  = nesterov ? g' + mu*b : b               (d = g' when mu == 0)
//              p  = p - lr*d
//
//   adam_step  p  = p * (1 - lr*wd)                         (AdamW: decoupled weight decay)
//              g' = g + wd*p                                (Adam: L2 penalty)
//              m  = lerp(m, g', 1 - beta1)  = beta1*m + (1 - beta1)*g'
//              v  = beta2*v + (1 - beta2)*g'^2
//              p  = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//              with t the parameter's own step count, this step included (1 on the first).
//
// Floating-point recipe (T = float or double). The scalars are computed once in double, as
// torch.optim does in Python, and rounded to T once (marked T(...)); every element operation is
// then one rounding in T, in this order. The add-with-alpha and lerp steps are fused
// multiply-adds (std::fma), as in ATen's vectorized CPU kernels (vec::fmadd); so is the last
// add of addcmul_ (self + value*t1*t2), which a contracting compiler fuses anyway. Every
// product that meets an add is written as an explicit fma, so the result does not depend on
// -ffp-contract, and a CUDA twin that uses the same fmas reproduces the same bits.
//
//   sgd_step, per element:
//     if wd != 0:   g = fma(p, T(wd), g)
//     if mu != 0:   b = first ? g : fma(g, T(1 - dampening), b * T(mu));  buf = b
//                   g = nesterov ? fma(b, T(mu), g) : b
//     p = fma(g, T(-lr), p)
//
//   adam_step, per element (w = T(1 - beta1)):
//     if wd != 0:   decoupled ? p = p * T(1 - lr*wd) : g = fma(p, T(wd), g)
//     m = |w| < 0.5 ? fma(w, g - m, m) : fma(w - 1, g - m, g)      (ATen's lerp, w - 1 in T)
//     v = fma(T(1 - beta2) * g, g, v * T(beta2))                    (mul_, then addcmul_)
//     d = sqrt(v) / T(sqrt(1 - beta2^t)) + T(eps)
//     p = p + (T(-lr / (1 - beta1^t)) * m) / d                       (addcdiv_)
//   beta^t is std::pow(beta, double(t)), as Python's beta ** t.
//   T(1 - lr*wd) is one fma in double, std::fma(-lr, wd, 1): the CPU build (GCC, -march=native,
//   gnu++20) contracts the expression so, and the CUDA twin writes that fma out.
//
// Elements are independent, so the result does not depend on the number of threads.
#pragma once

#include <cstdint>

namespace nabla {

// Hyperparameters of one SGD update; see the recipe above.
struct SgdStepArgs {
  double lr = 0, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
  bool first = false;  // buf has no history yet: it is set to the gradient, without dampening
};

// Hyperparameters of one Adam / AdamW update; see the recipe above.
struct AdamStepArgs {
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool decoupled_weight_decay = false;  // AdamW when true, Adam (L2 on the gradient) when false
  int64_t step = 1;                     // the parameter's step count, this step included (>= 1)
};

namespace cpu {

// requires: p, g hold n elements; buf holds n elements when a.momentum != 0 (it may be null
//           otherwise); no array aliases another.
// ensures:  p updated in place, buf written (=) when a.momentum != 0, g untouched.
template <typename T>
void sgd_step(T* p, const T* g, T* buf, int64_t n, const SgdStepArgs& a);

// requires: p, g, m, v hold n elements and do not alias; a.step >= 1.
// ensures:  p, m (exp_avg) and v (exp_avg_sq) updated in place, g untouched.
template <typename T>
void adam_step(T* p, const T* g, T* m, T* v, int64_t n, const AdamStepArgs& a);

}  // namespace cpu

// CUDA twins (kernels/cuda/optim.cu), same contracts and the same recipe, so a step gives the
// CPU's bits; every pointer is device memory.
namespace cuda {
template <typename T>
void sgd_step(T* p, const T* g, T* buf, int64_t n, const SgdStepArgs& a);
template <typename T>
void adam_step(T* p, const T* g, T* m, T* v, int64_t n, const AdamStepArgs& a);
}  // namespace cuda

}  // namespace nabla

// The explicit instantiations, one list for both backends: kernels/cpu/optim.cpp and
// kernels/cuda/optim.cu expand it in their namespace for each element type.
#define NABLA_OPTIM_INSTANTIATE(T)                                          \
  template void sgd_step<T>(T*, const T*, T*, int64_t, const SgdStepArgs&); \
  template void adam_step<T>(T*, const T*, T*, T*, int64_t, const AdamStepArgs&);
