// Loss family on the GPU: the per-position class-index losses (cross_entropy, nll_loss) and the
// elementwise losses (bce_with_logits, mse, l1), forward and backward. kernels/loss.h gives the
// math, the [N, C, S] layout, the dy[k * dy_stride] convention and the contracts; the reduction
// (none, sum, mean) is done by engine/ops/loss.cpp with the deterministic sum of reduce.cu.
//
// cross_entropy's forward is one fused kernel per position: max over the classes, sum of
// exponentials (double), log, the weighted loss, the weight wt and the double lse that the
// backward reuses. The order of operations follows the CPU kernel; exp/log/log1p come from the
// CUDA math library, so results agree with the CPU to rounding.
//
// Invalid targets are found on the device, without a host wait per call: each offending thread
// does an atomicMin of its position into a device word (a minimum is order-independent: the
// first bad position, as on the CPU), a one-thread kernel fetches the target value there, and
// defer_check (common.cuh) copies both back asynchronously. The nabla::Error naming the op,
// the value and the position is thrown at the next host wait (at once with NABLA_SYNC_CHECKS=1);
// the forwards themselves return -1. Until then the backward may run on the bad targets: it
// treats them as ignored and reads nothing out of bounds.
//
// Versions: 1 (these).
//   class_rows_kernel     (S == 1, logits [N, C])  one warp per sample n: lanes stride over the
//                         classes (coalesced), warp_max / warp_sum, lane 0 writes the outputs.
//   class_cols_kernel     (S > 1, NCHW maps)  one thread per position (n, s), looping over c;
//                         consecutive threads take consecutive s, so loads are coalesced.
//   nll_forward_kernel    one thread per position.
//   cross_entropy_backward_kernel, nll_backward_kernel   one thread per dx element (n, c, s):
//                         each element written once, no scatter.
//   bce/mse/l1 forward and backward   one thread per element; a backward writes every gradient
//                         asked for (dx, dt, dpos_weight) in one pass over the inputs.
#include "kernels/cuda/common.cuh"
#include "kernels/loss.h"

#include <nabla/device.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>

namespace nabla::cuda {

namespace {

// The device word starts as 0x7F7F7F7F7F7F7F7F (a memset), larger than any position.
constexpr long long kNoBad = 0x7F7F7F7F7F7F7F7FLL;
constexpr int kWarpsPerBlock = kThreads / 32;

unsigned grid_for(int64_t tasks) {
  return unsigned(std::clamp<int64_t>(tasks, 1, kMaxBlocks));
}

template <typename T>
__device__ __forceinline__ T weight_of(const T* weight, int64_t c) {
  return weight ? weight[c] : T(1);
}

// softplus(-x) = log(1 + exp(-x)), written so that exp only sees -|x| <= 0.
template <typename T>
__device__ __forceinline__ T softplus_neg(T x) {
  const T neg = -x;
  return (neg < T(0) ? T(0) : neg) + std::log1p(std::exp(-std::abs(x)));
}

// sigmoid(-x) = 1 / (1 + exp(x)), split by sign so exp never overflows.
template <typename T>
__device__ __forceinline__ T sigmoid_neg(T x) {
  if (x >= T(0)) {
    const T e = std::exp(-x);
    return e / (T(1) + e);
  }
  return T(1) / (T(1) + std::exp(x));
}

// The outputs of position p once its max m and sum of exp(x - m) are known (both kernels).
template <typename T>
__device__ __forceinline__ void class_position(const T* xp, int64_t S, int64_t p, int64_t t, T m,
                                               double sum, const T* weight, T* loss, T* wt,
                                               double* lse, int64_t C, int64_t ignore_index,
                                               long long* bad) {
  const bool valid = t != ignore_index && t >= 0 && t < C;
  if (t != ignore_index && !valid) atomicMin(bad, (long long)p);
  const double log_sum = std::log(sum);
  const T wc = valid ? weight_of(weight, t) : T(0);
  // (m - x_t) + log(sum) rather than lse - x_t: see kernels/cpu/loss.cpp.
  loss[p] = valid ? T(double(wc) * ((double(m) - double(xp[t * S])) + log_sum)) : T(0);
  if (wt) wt[p] = wc;
  if (lse) lse[p] = valid ? double(m) + log_sum : 0.0;
}

template <typename T>
__global__ void class_rows_kernel(const T* __restrict__ x, const int64_t* __restrict__ target,
                                  const T* __restrict__ weight, T* __restrict__ loss,
                                  T* __restrict__ wt, double* __restrict__ lse, int64_t N,
                                  int64_t C, int64_t ignore_index, long long* bad) {
  const int lane = threadIdx.x & 31;
  // One warp per sample; the loop is uniform over the warp, so the shuffles see all 32 lanes.
  for (int64_t n = blockIdx.x * int64_t(kWarpsPerBlock) + (threadIdx.x >> 5); n < N;
       n += int64_t(gridDim.x) * kWarpsPerBlock) {
    const T* xr = x + n * C;
    T m = T(-INFINITY);
    for (int64_t c = lane; c < C; c += 32) m = xr[c] > m ? xr[c] : m;
    m = warp_max(m);
    // x - m <= 0: every exp lies in (0, 1] and the sum is at least 1, so log(sum) is finite.
    double sum = 0;
    for (int64_t c = lane; c < C; c += 32) sum += double(std::exp(xr[c] - m));
    sum = warp_sum(sum);
    if (lane == 0)
      class_position(xr, 1, n, target[n], m, sum, weight, loss, wt, lse, C, ignore_index, bad);
  }
}

template <typename T>
__global__ void class_cols_kernel(const T* __restrict__ x, const int64_t* __restrict__ target,
                                  const T* __restrict__ weight, T* __restrict__ loss,
                                  T* __restrict__ wt, double* __restrict__ lse, int64_t N,
                                  int64_t C, int64_t S, int64_t ignore_index, long long* bad) {
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < N * S;
       p += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = p / S, s = p % S;
    const T* xp = x + n * C * S + s;
    T m = xp[0];
    for (int64_t c = 1; c < C; ++c) m = xp[c * S] > m ? xp[c * S] : m;
    double sum = 0;
    for (int64_t c = 0; c < C; ++c) sum += double(std::exp(xp[c * S] - m));
    class_position(xp, S, p, target[p], m, sum, weight, loss, wt, lse, C, ignore_index, bad);
  }
}

template <typename T>
__global__ void cross_entropy_backward_kernel(
    const T* __restrict__ x, const int64_t* __restrict__ target, const T* __restrict__ weight,
    const double* __restrict__ lse, const T* __restrict__ dy, int64_t dy_stride, T* __restrict__ dx,
    int64_t N, int64_t C, int64_t S, int64_t ignore_index) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < N * C * S;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t s = k % S, nc = k / S;
    const int64_t c = nc % C, n = nc / C, p = n * S + s;
    const int64_t t = target[p];
    if (t == ignore_index || t < 0 || t >= C) {
      // Ignored logits may be anything (even inf); the gradient is 0, not 0 * NaN. An invalid
      // target (reported at the next synchronization) is treated the same way, not read past.
      dx[k] = T(0);
      continue;
    }
    const T coef = weight_of(weight, t) * dy[p * dy_stride];
    // The exponent is formed in double (see kernels/loss.h), the exp itself in T.
    const T prob = std::exp(T(double(x[k]) - lse[p]));
    dx[k] = coef * (prob - T(c == t ? 1 : 0));
  }
}

template <typename T>
__global__ void nll_forward_kernel(const T* __restrict__ x, const int64_t* __restrict__ target,
                                   const T* __restrict__ weight, T* __restrict__ loss,
                                   T* __restrict__ wt, int64_t N, int64_t C, int64_t S,
                                   int64_t ignore_index, long long* bad) {
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < N * S;
       p += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = p / S, s = p % S, t = target[p];
    const bool valid = t != ignore_index && t >= 0 && t < C;
    if (t != ignore_index && !valid) atomicMin(bad, (long long)p);
    const T wc = valid ? weight_of(weight, t) : T(0);
    loss[p] = valid ? -wc * x[(n * C + t) * S + s] : T(0);
    if (wt) wt[p] = wc;
  }
}

template <typename T>
__global__ void nll_backward_kernel(const int64_t* __restrict__ target,
                                    const T* __restrict__ weight, const T* __restrict__ dy,
                                    int64_t dy_stride, T* __restrict__ dx, int64_t N, int64_t C,
                                    int64_t S, int64_t ignore_index) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < N * C * S;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t s = k % S, nc = k / S;
    const int64_t c = nc % C, n = nc / C, p = n * S + s;
    const int64_t t = target[p];
    const bool hit = t == c && t != ignore_index;
    dx[k] = hit ? -weight_of(weight, c) * dy[p * dy_stride] : T(0);
  }
}

template <typename T>
__global__ void bce_forward_kernel(const T* __restrict__ x, const T* __restrict__ t,
                                   const T* __restrict__ pos_weight, T* __restrict__ loss,
                                   int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const T l = T(1) + (weight_of(pos_weight, i) - T(1)) * t[i];
    loss[i] = (T(1) - t[i]) * x[i] + l * softplus_neg(x[i]);
  }
}

template <typename T>
__global__ void bce_backward_kernel(const T* __restrict__ x, const T* __restrict__ t,
                                    const T* __restrict__ pos_weight, const T* __restrict__ dy,
                                    int64_t dy_stride, T* __restrict__ dx, T* __restrict__ dt,
                                    T* __restrict__ dpw, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const T xi = x[i], ti = t[i], g = dy[i * dy_stride], pw = weight_of(pos_weight, i);
    if (dx) {
      const T l = T(1) + (pw - T(1)) * ti;
      dx[i] = g * ((T(1) - ti) - l * sigmoid_neg(xi));
    }
    if (dt) dt[i] = g * (-xi + (pw - T(1)) * softplus_neg(xi));
    if (dpw) dpw[i] = g * ti * softplus_neg(xi);
  }
}

// kL1: |x - t| and sign(x - t); otherwise (x - t)^2 and 2 (x - t).
template <typename T, bool kL1>
__global__ void diff_forward_kernel(const T* __restrict__ x, const T* __restrict__ t,
                                    T* __restrict__ loss, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const T d = x[i] - t[i];
    loss[i] = kL1 ? std::abs(d) : d * d;
  }
}

template <typename T, bool kL1>
__global__ void diff_backward_kernel(const T* __restrict__ x, const T* __restrict__ t,
                                     const T* __restrict__ dy, int64_t dy_stride,
                                     T* __restrict__ dx, T* __restrict__ dt, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const T xi = x[i], ti = t[i], g = dy[i * dy_stride];
    if (kL1) {
      // sign(x - t) with sign(0) = 0, PyTorch's subgradient choice.
      const T sg = T((xi > ti) - (xi < ti));
      if (dx) dx[i] = sg * g;
      if (dt) dt[i] = -sg * g;
    } else {
      if (dx) dx[i] = T(2) * (xi - ti) * g;
      if (dt) dt[i] = T(-2) * (xi - ti) * g;
    }
  }
}

// bad[1] = target[bad[0]] when a bad position was found; one thread.
__global__ void bad_target_value_kernel(long long* bad, const int64_t* __restrict__ target) {
  if (bad[0] != kNoBad) bad[1] = target[bad[0]];
}

// Runs a class-index forward launch with fresh words (first bad position, its target value)
// and hands them to defer_check; returns -1 (the error, if any, comes at the next host wait).
template <typename Launch>
int64_t with_target_check(const char* op, const int64_t* target, int64_t N, int64_t C, int64_t S,
                          int64_t ignore_index, Launch&& launch) {
  const cudaStream_t s = current_stream();
  Scratch words(2 * sizeof(long long));
  long long* bad = words.as<long long>();
  CUDA_CHECK(cudaMemsetAsync(bad, 0x7F, 2 * sizeof(long long), s));
  launch(bad, s);
  bad_target_value_kernel<<<1, 1, 0, s>>>(bad, target);
  CUDA_CHECK_LAUNCH();
  defer_check(bad, 2, [op, N, C, S, ignore_index](const long long* w) -> std::string {
    if (w[0] == kNoBad) return {};
    const int64_t p = w[0], n = p / S, sp = p % S;
    std::ostringstream os;
    os << op << ": target value " << w[1] << " at position ";
    if (S == 1)
      os << "[" << n << "]";
    else
      os << "[" << n << ", " << sp << "] (sample " << n << ", position " << sp << " of its " << S
         << ")";
    os << " is not a class in [0, " << C << ") (C = " << C << ", ignore_index = " << ignore_index
       << "); input [" << N << ", " << C << ", " << S << "] as [N, C, S], target [" << N << ", "
       << S << "]; found on the GPU, reported at the first synchronization after the call"
       << " (NABLA_SYNC_CHECKS=1 reports it in the call)";
    return os.str();
  });
  return -1;
}

}  // namespace

template <typename T>
int64_t cross_entropy_forward(const T* x, const int64_t* target, const T* weight, T* loss, T* wt,
                              double* lse, int64_t N, int64_t C, int64_t S, int64_t ignore_index) {
  if (N * S == 0) return -1;
  return with_target_check(
      "cross_entropy", target, N, C, S, ignore_index, [&](long long* bad, cudaStream_t s) {
        if (S == 1)
          class_rows_kernel<T>
              <<<grid_for((N + kWarpsPerBlock - 1) / kWarpsPerBlock), kThreads, 0, s>>>(
                  x, target, weight, loss, wt, lse, N, C, ignore_index, bad);
        else
          class_cols_kernel<T><<<blocks_for(N * S), kThreads, 0, s>>>(
              x, target, weight, loss, wt, lse, N, C, S, ignore_index, bad);
        CUDA_CHECK_LAUNCH();
      });
}

template <typename T>
void cross_entropy_backward(const T* x, const int64_t* target, const T* weight, const double* lse,
                            const T* dy, int64_t dy_stride, T* dx, int64_t N, int64_t C, int64_t S,
                            int64_t ignore_index) {
  const int64_t n = N * C * S;
  if (n == 0) return;
  cross_entropy_backward_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(
      x, target, weight, lse, dy, dy_stride, dx, N, C, S, ignore_index);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
int64_t nll_loss_forward(const T* x, const int64_t* target, const T* weight, T* loss, T* wt,
                         int64_t N, int64_t C, int64_t S, int64_t ignore_index) {
  if (N * S == 0) return -1;
  return with_target_check("nll_loss", target, N, C, S, ignore_index,
                           [&](long long* bad, cudaStream_t s) {
                             nll_forward_kernel<T><<<blocks_for(N * S), kThreads, 0, s>>>(
                                 x, target, weight, loss, wt, N, C, S, ignore_index, bad);
                             CUDA_CHECK_LAUNCH();
                           });
}

template <typename T>
void nll_loss_backward(const int64_t* target, const T* weight, const T* dy, int64_t dy_stride,
                       T* dx, int64_t N, int64_t C, int64_t S, int64_t ignore_index) {
  const int64_t n = N * C * S;
  if (n == 0) return;
  nll_backward_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(
      target, weight, dy, dy_stride, dx, N, C, S, ignore_index);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void bce_with_logits_forward(const T* x, const T* t, const T* pos_weight, T* loss, int64_t n) {
  if (n == 0) return;
  bce_forward_kernel<T>
      <<<blocks_for(n), kThreads, 0, current_stream()>>>(x, t, pos_weight, loss, n);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void bce_with_logits_backward(const T* x, const T* t, const T* pos_weight, const T* dy,
                              int64_t dy_stride, T* dx, T* dt, T* dpos_weight, int64_t n) {
  if (n == 0 || (!dx && !dt && !dpos_weight)) return;
  bce_backward_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(
      x, t, pos_weight, dy, dy_stride, dx, dt, dpos_weight, n);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void mse_loss_forward(const T* x, const T* t, T* loss, int64_t n) {
  if (n == 0) return;
  diff_forward_kernel<T, false><<<blocks_for(n), kThreads, 0, current_stream()>>>(x, t, loss, n);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void mse_loss_backward(const T* x, const T* t, const T* dy, int64_t dy_stride, T* dx, T* dt,
                       int64_t n) {
  if (n == 0 || (!dx && !dt)) return;
  diff_backward_kernel<T, false>
      <<<blocks_for(n), kThreads, 0, current_stream()>>>(x, t, dy, dy_stride, dx, dt, n);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void l1_loss_forward(const T* x, const T* t, T* loss, int64_t n) {
  if (n == 0) return;
  diff_forward_kernel<T, true><<<blocks_for(n), kThreads, 0, current_stream()>>>(x, t, loss, n);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void l1_loss_backward(const T* x, const T* t, const T* dy, int64_t dy_stride, T* dx, T* dt,
                      int64_t n) {
  if (n == 0 || (!dx && !dt)) return;
  diff_backward_kernel<T, true>
      <<<blocks_for(n), kThreads, 0, current_stream()>>>(x, t, dy, dy_stride, dx, dt, n);
  CUDA_CHECK_LAUNCH();
}

#define NABLA_INSTANTIATE(T)                                                                     \
  template int64_t cross_entropy_forward<T>(const T*, const int64_t*, const T*, T*, T*, double*, \
                                            int64_t, int64_t, int64_t, int64_t);                 \
  template void cross_entropy_backward<T>(const T*, const int64_t*, const T*, const double*,     \
                                          const T*, int64_t, T*, int64_t, int64_t, int64_t,      \
                                          int64_t);                                              \
  template int64_t nll_loss_forward<T>(const T*, const int64_t*, const T*, T*, T*, int64_t,      \
                                       int64_t, int64_t, int64_t);                               \
  template void nll_loss_backward<T>(const int64_t*, const T*, const T*, int64_t, T*, int64_t,   \
                                     int64_t, int64_t, int64_t);                                 \
  template void bce_with_logits_forward<T>(const T*, const T*, const T*, T*, int64_t);           \
  template void bce_with_logits_backward<T>(const T*, const T*, const T*, const T*, int64_t, T*, \
                                            T*, T*, int64_t);                                    \
  template void mse_loss_forward<T>(const T*, const T*, T*, int64_t);                            \
  template void mse_loss_backward<T>(const T*, const T*, const T*, int64_t, T*, T*, int64_t);    \
  template void l1_loss_forward<T>(const T*, const T*, T*, int64_t);                             \
  template void l1_loss_backward<T>(const T*, const T*, const T*, int64_t, T*, T*, int64_t);
NABLA_INSTANTIATE(float)
NABLA_INSTANTIATE(double)
#undef NABLA_INSTANTIATE

}  // namespace nabla::cuda
