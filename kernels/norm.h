// Normalization family: batch_norm2d and instance_norm2d, written once as kernels over
// "groups" of elements that share their statistics.
//
// x (contiguous) is viewed as [outer, G, inner]. Group g holds the M = outer*inner elements
// x[o, g, i] and uses the affine parameters of channel c = g % C:
//
//   batch_norm2d     x [N,C,H,W]:  outer = N, G = C,   inner = H*W   (statistics per channel)
//   instance_norm2d  x [N,C,H,W]:  outer = 1, G = N*C, inner = H*W   (statistics per (n, c))
//
// Forward, training (batch statistics):
//   mean_g = sum x / M,  var_g = sum (x - mean_g)^2 / M  (biased),  invstd_g = 1/sqrt(var_g + eps)
//   xhat = (x - mean_g) * invstd_g,  y = w_c * xhat + b_c
// Forward, eval: the same map with mean_g and invstd_g = 1/sqrt(var_g + eps) from given
//   (running) statistics; then y is an affine map of x.
// Backward, with the group sums Sdy_g = sum dy and Sdyx_g = sum dy * xhat:
//   training  dx = (w_c * invstd_g / M) * (M*dy - Sdy_g - xhat * Sdyx_g)
//   eval      dx = dy * w_c * invstd_g
//   dw_c = sum of Sdyx_g over the groups g of channel c,   db_c = sum of Sdy_g likewise
// A missing weight (null) means w = 1, a missing bias b = 0. The derivation is in
// docs/backprop.md.
//
// The backward is split so that only what is asked is computed: norm_backward_reduce (one
// pass over x and dy) yields the group sums, norm_backward_input (one more pass) yields dx,
// norm_backward_weight folds the group sums into dw and db without touching the data.
// grad(loss, {x}) therefore never calls norm_backward_weight, and the eval-mode dx needs no
// reduction at all. Statistics and group sums are accumulated in double, in a fixed order.
#pragma once

#include <cstdint>

namespace nabla {

struct NormGroups {
  int64_t outer = 1, groups = 0, inner = 1;             // x viewed as [outer, groups, inner]
  int64_t channels = 1;                                 // weight/bias length C; group g uses g % C
  int64_t group_size() const { return outer * inner; }  // M
};

namespace cpu {

// requires: x, y [outer, G, inner]; weight, bias [C] or null; mean, invstd [G];
//           running_mean, running_var [G] (G == C) or both null; M > 1 when they are given.
// ensures:  mean, invstd and y written (=) from the batch statistics. With running stats,
//           updated in place as PyTorch does, with the unbiased variance:
//             running_mean = momentum * mean + (1 - momentum) * running_mean
//             running_var  = momentum * var * M/(M-1) + (1 - momentum) * running_var
template <typename T>
void norm_forward_train(const NormGroups& s, const T* x, const T* weight, const T* bias, double eps,
                        double momentum, T* y, T* mean, T* invstd, T* running_mean, T* running_var);

// requires: x, y [outer, G, inner]; mean, var [G] (the running statistics); weight, bias [C]
//           or null; invstd [G].
// ensures:  invstd = 1/sqrt(var + eps) and y = w * (x - mean) * invstd + b written (=).
template <typename T>
void norm_forward_eval(const NormGroups& s, const T* x, const T* mean, const T* var,
                       const T* weight, const T* bias, double eps, T* y, T* invstd);

// requires: x, dy [outer, G, inner]; mean, invstd [G] as used by the forward;
//           sum_dy, sum_dy_xhat [G] (sum_dy_xhat may be null: then it is skipped).
// ensures:  sum_dy[g] = sum dy, sum_dy_xhat[g] = sum dy * xhat over group g, written (=).
template <typename T>
void norm_backward_reduce(const NormGroups& s, const T* x, const T* mean, const T* invstd,
                          const T* dy, double* sum_dy, double* sum_dy_xhat);

// requires: as norm_backward_reduce; weight [C] or null; dx [outer, G, inner].
//           sum_dy and sum_dy_xhat from norm_backward_reduce for the training formula, or
//           both null for the eval formula (fixed statistics).
// ensures:  dx written (=): training (w*invstd/M) (M dy - Sdy - xhat Sdyx), eval dy*w*invstd.
template <typename T>
void norm_backward_input(const NormGroups& s, const T* x, const T* mean, const T* invstd,
                         const T* weight, const T* dy, const double* sum_dy,
                         const double* sum_dy_xhat, T* dx);

// requires: sum_dy, sum_dy_xhat [G] from norm_backward_reduce (sum_dy_xhat may be null when
//           dweight is null); dweight, dbias [C] or null (skipped).
// ensures:  dweight[c] = sum Sdyx_g, dbias[c] = sum Sdy_g over the groups g with g % C == c,
//           written (=): these are this call's parameter gradients; autograd accumulates them.
template <typename T>
void norm_backward_weight(const NormGroups& s, const double* sum_dy, const double* sum_dy_xhat,
                          T* dweight, T* dbias);

}  // namespace cpu

// CUDA twins (kernels/cuda/norm.cu), same contracts; every array is device memory, NormGroups
// is host memory. They also require G to be a multiple of C (true of both ops).
namespace cuda {
template <typename T>
void norm_forward_train(const NormGroups& s, const T* x, const T* weight, const T* bias, double eps,
                        double momentum, T* y, T* mean, T* invstd, T* running_mean, T* running_var);
template <typename T>
void norm_forward_eval(const NormGroups& s, const T* x, const T* mean, const T* var,
                       const T* weight, const T* bias, double eps, T* y, T* invstd);
template <typename T>
void norm_backward_reduce(const NormGroups& s, const T* x, const T* mean, const T* invstd,
                          const T* dy, double* sum_dy, double* sum_dy_xhat);
template <typename T>
void norm_backward_input(const NormGroups& s, const T* x, const T* mean, const T* invstd,
                         const T* weight, const T* dy, const double* sum_dy,
                         const double* sum_dy_xhat, T* dx);
template <typename T>
void norm_backward_weight(const NormGroups& s, const double* sum_dy, const double* sum_dy_xhat,
                          T* dweight, T* dbias);
}  // namespace cuda
}  // namespace nabla

// The explicit instantiations, one list for both backends: kernels/cpu/norm.cpp and
// kernels/cuda/norm.cu expand it in their namespace for each element type.
#define NABLA_NORM_INSTANTIATE(T)                                                                  \
  template void norm_forward_train<T>(const NormGroups&, const T*, const T*, const T*, double,     \
                                      double, T*, T*, T*, T*, T*);                                 \
  template void norm_forward_eval<T>(const NormGroups&, const T*, const T*, const T*, const T*,    \
                                     const T*, double, T*, T*);                                    \
  template void norm_backward_reduce<T>(const NormGroups&, const T*, const T*, const T*, const T*, \
                                        double*, double*);                                         \
  template void norm_backward_input<T>(const NormGroups&, const T*, const T*, const T*, const T*,  \
                                       const T*, const double*, const double*, T*);                \
  template void norm_backward_weight<T>(const NormGroups&, const double*, const double*, T*, T*);
