// Loss family: per-element (or per-position) losses; the reduction (none, sum, mean) is done by
// engine/ops/loss.cpp. Backward kernels take the upstream gradient as dy[k * dy_stride]:
// dy_stride = 1 for an unreduced loss (one gradient per element), 0 for a summed or averaged
// loss (one scalar; the op folds the 1/normalizer of a mean into it).
//
// Class-index losses. x is [N, C, S] contiguous (S = product of the trailing dims, 1 for
// [N, C] logits; C as dim 1 so NCHW needs no permute), target int64 [N, S]. Position
// p = n*S + s, x[n, c, s] at (n*C + c)*S + s, w[c] = weight[c] or 1 without weights.
// Positions with target == ignore_index contribute 0 and weigh 0 in the normalizer.
//
//   cross_entropy  lse[p] = m + log sum_c exp(x[n,c,s] - m),  m = max_c x[n,c,s]
//                  loss[p] = w[t] * (lse[p] - x[n,t,s])
//                  dx[n,c,s] = w[t] * dy_p * (exp(x[n,c,s] - lse[p]) - [c == t])
//   nll_loss       loss[p] = -w[t] * x[n,t,s]
//                  dx[n,c,s] = c == t ? -w[t] * dy_p : 0
//
// Both forwards also write wt[p] = w[t] (0 where ignored), whose sum is the normalizer of a
// mean (PyTorch semantics), and return the first position whose target is neither
// ignore_index nor in [0, C), or -1. lse is kept in double: exp(x - lse) then keeps the
// precision of T even for logits in the thousands, where a float lse would be off by an ulp of
// the logits.
//
// Elementwise losses on n contiguous elements x (input or logits) and t (target):
//
//   bce_with_logits  loss = (1 - t) x + l (max(-x, 0) + log1p(exp(-|x|))),  l = 1 + (pw - 1) t
//                    (= -[pw t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))], never overflowing)
//                    dx = (1 - t) - l sigmoid(-x)      dt = -x + (pw - 1) softplus(-x)
//                    dpw = t softplus(-x)              (pw = pos_weight, 1 when absent)
//   mse_loss         loss = (x - t)^2                  dx = 2 (x - t) dy,   dt = -dx
//   l1_loss          loss = |x - t|                    dx = sign(x - t) dy, dt = -dx (0 at x = t)
#pragma once

#include <cstdint>

namespace nabla::cpu {

// requires: C >= 1; x [N, C, S]; target [N, S]; weight null or [C]; loss [N*S]; wt and lse
//           null or [N*S].
// ensures:  loss, wt, lse written (=) as in the header; 0 at ignored and invalid positions.
//           Returns the smallest position whose target is invalid, or -1.
template <typename T>
int64_t cross_entropy_forward(const T* x, const int64_t* target, const T* weight, T* loss, T* wt,
                              double* lse, int64_t N, int64_t C, int64_t S, int64_t ignore_index);

// requires: every target valid (forward returned -1); lse from cross_entropy_forward;
//           dy as described in the header; dx [N, C, S].
// ensures:  dx written (=): w[t] * dy_p * (softmax - onehot), 0 at ignored positions.
template <typename T>
void cross_entropy_backward(const T* x, const int64_t* target, const T* weight, const double* lse,
                            const T* dy, int64_t dy_stride, T* dx, int64_t N, int64_t C, int64_t S,
                            int64_t ignore_index);

// requires: x [N, C, S] log-probabilities; target [N, S]; weight null or [C]; loss [N*S];
//           wt null or [N*S].
// ensures:  loss, wt written (=); returns the smallest invalid-target position, or -1.
template <typename T>
int64_t nll_loss_forward(const T* x, const int64_t* target, const T* weight, T* loss, T* wt,
                         int64_t N, int64_t C, int64_t S, int64_t ignore_index);

// requires: every target valid; dy as described in the header; dx [N, C, S].
// ensures:  dx written (=): -w[t] * dy_p at the target class, 0 elsewhere.
template <typename T>
void nll_loss_backward(const int64_t* target, const T* weight, const T* dy, int64_t dy_stride,
                       T* dx, int64_t N, int64_t C, int64_t S, int64_t ignore_index);

// requires: x, t, loss hold n elements; pos_weight null or n elements (already broadcast).
// ensures:  loss written (=).
template <typename T>
void bce_with_logits_forward(const T* x, const T* t, const T* pos_weight, T* loss, int64_t n);

// requires: as the forward; dy as described in the header.
// ensures:  dx, dt, dpos_weight written (=) per element; a null pointer skips that gradient.
template <typename T>
void bce_with_logits_backward(const T* x, const T* t, const T* pos_weight, const T* dy,
                              int64_t dy_stride, T* dx, T* dt, T* dpos_weight, int64_t n);

// requires: x, t, loss hold n elements. ensures: loss = (x - t)^2 written (=).
template <typename T>
void mse_loss_forward(const T* x, const T* t, T* loss, int64_t n);

// ensures: dx = 2 (x - t) dy, dt = -dx written (=); null pointers skipped.
template <typename T>
void mse_loss_backward(const T* x, const T* t, const T* dy, int64_t dy_stride, T* dx, T* dt,
                       int64_t n);

// requires: x, t, loss hold n elements. ensures: loss = |x - t| written (=).
template <typename T>
void l1_loss_forward(const T* x, const T* t, T* loss, int64_t n);

// ensures: dx = sign(x - t) dy, dt = -dx written (=); null pointers skipped.
template <typename T>
void l1_loss_backward(const T* x, const T* t, const T* dy, int64_t dy_stride, T* dx, T* dt,
                      int64_t n);

}  // namespace nabla::cpu

// CUDA twins (kernels/cuda/loss.cu), same contracts; every pointer is device memory. The
// class-index forwards check the targets on the device and return -1 without waiting for it: an
// invalid target raises nabla::Error (naming the op, the value and the position) at the next
// synchronization, or in the call itself under NABLA_SYNC_CHECKS=1 (nabla::set_sync_checks).
// Their backwards give 0 for an invalid target.
namespace nabla::cuda {
template <typename T>
int64_t cross_entropy_forward(const T* x, const int64_t* target, const T* weight, T* loss, T* wt,
                              double* lse, int64_t N, int64_t C, int64_t S, int64_t ignore_index);
template <typename T>
void cross_entropy_backward(const T* x, const int64_t* target, const T* weight, const double* lse,
                            const T* dy, int64_t dy_stride, T* dx, int64_t N, int64_t C, int64_t S,
                            int64_t ignore_index);
template <typename T>
int64_t nll_loss_forward(const T* x, const int64_t* target, const T* weight, T* loss, T* wt,
                         int64_t N, int64_t C, int64_t S, int64_t ignore_index);
template <typename T>
void nll_loss_backward(const int64_t* target, const T* weight, const T* dy, int64_t dy_stride,
                       T* dx, int64_t N, int64_t C, int64_t S, int64_t ignore_index);
template <typename T>
void bce_with_logits_forward(const T* x, const T* t, const T* pos_weight, T* loss, int64_t n);
template <typename T>
void bce_with_logits_backward(const T* x, const T* t, const T* pos_weight, const T* dy,
                              int64_t dy_stride, T* dx, T* dt, T* dpos_weight, int64_t n);
template <typename T>
void mse_loss_forward(const T* x, const T* t, T* loss, int64_t n);
template <typename T>
void mse_loss_backward(const T* x, const T* t, const T* dy, int64_t dy_stride, T* dx, T* dt,
                       int64_t n);
template <typename T>
void l1_loss_forward(const T* x, const T* t, T* loss, int64_t n);
template <typename T>
void l1_loss_backward(const T* x, const T* t, const T* dy, int64_t dy_stride, T* dx, T* dt,
                      int64_t n);
}  // namespace nabla::cuda
