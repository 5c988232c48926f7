// Optimizer updates on the GPU: the fused SGD and Adam / AdamW steps of kernels/optim.h, one
// elementwise pass per parameter, following the header's floating-point recipe operation by
// operation so that a step gives the CPU's bits (float32 and float64).
//
// Why the bits match: the scalars (bias corrections, T(-lr / bc1), T(1 - beta2), ...) are
// computed on the host by the same expressions as the CPU kernel, so they are the same values.
// Per element, every operation of the recipe is one correctly rounded IEEE operation on both
// sides: the fused steps are explicit fma (std::fma on the CPU), / and sqrt are IEEE (nvcc's
// defaults -prec-div=true, -prec-sqrt=true), and every lone product is written with the
// __fmul_rn / __dmul_rn intrinsics, which nvcc never contracts into an fma with a neighbouring
// add (a plain a*b could be fused by the compiler, changing one rounding). Elements are
// independent: no reduction, no atomics, the same result for any launch geometry.
//
// Versions: 1 (these).
//   sgd_step_kernel, adam_step_kernel   one thread per element (grid-stride); each thread reads
//                                       p, g and the state once and writes them once.
#include "kernels/cuda/common.cuh"
#include "kernels/optim.h"

#include <cmath>
#include <cstdint>

namespace nabla::cuda {

namespace {

// A product rounded once and never contracted into an fma.
__device__ __forceinline__ float mul_rn(float a, float b) {
  return __fmul_rn(a, b);
}
__device__ __forceinline__ double mul_rn(double a, double b) {
  return __dmul_rn(a, b);
}

// Scalars of one SGD update, rounded to T once on the host (as the CPU kernel does).
template <typename T>
struct SgdScalars {
  T wd, mu, keep, neg_lr;
  bool decay, momentum, first, nesterov;
};

template <typename T>
__global__ void sgd_step_kernel(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ buf,
                                int64_t n, SgdScalars<T> s) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    T d = g[i];
    const T x = p[i];
    if (s.decay) d = fma(x, s.wd, d);
    if (s.momentum) {
      const T b = s.first ? d : fma(d, s.keep, mul_rn(buf[i], s.mu));
      buf[i] = b;
      d = s.nesterov ? fma(b, s.mu, d) : b;
    }
    p[i] = fma(d, s.neg_lr, x);
  }
}

// Scalars of one Adam / AdamW update, computed on the host exactly as the CPU kernel does.
template <typename T>
struct AdamScalars {
  T neg_step_size, bc2_sqrt, w, w_minus_1, beta2, one_minus_beta2, eps, wd, shrink;
  bool small_w, decay, decoupled;
};

template <typename T>
__global__ void adam_step_kernel(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m,
                                 T* __restrict__ v, int64_t n, AdamScalars<T> s) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    T x = p[i], d = g[i];
    if (s.decay) {
      if (s.decoupled)
        x = mul_rn(x, s.shrink);
      else
        d = fma(x, s.wd, d);
    }
    const T m0 = m[i];
    const T diff = d - m0;
    // ATen's lerp: the better-conditioned of the two forms, chosen by |w| < 0.5.
    const T mi = s.small_w ? fma(s.w, diff, m0) : fma(s.w_minus_1, diff, d);
    const T vi = fma(mul_rn(s.one_minus_beta2, d), d, mul_rn(v[i], s.beta2));
    const T denom = std::sqrt(vi) / s.bc2_sqrt + s.eps;
    m[i] = mi;
    v[i] = vi;
    p[i] = x + mul_rn(s.neg_step_size, mi) / denom;
  }
}

}  // namespace

template <typename T>
void sgd_step(T* p, const T* g, T* buf, int64_t n, const SgdStepArgs& a) {
  if (n == 0) return;
  SgdScalars<T> s;
  s.wd = T(a.weight_decay);
  s.mu = T(a.momentum);
  s.keep = T(1 - a.dampening);
  s.neg_lr = T(-a.lr);
  s.decay = a.weight_decay != 0;
  s.momentum = a.momentum != 0;
  s.first = a.first;
  s.nesterov = a.nesterov;
  NABLA_CHECK(!s.momentum || buf, "cuda sgd_step: momentum ", a.momentum,
              " needs a momentum buffer");
  sgd_step_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(p, g, buf, n, s);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void adam_step(T* p, const T* g, T* m, T* v, int64_t n, const AdamStepArgs& a) {
  if (n == 0) return;
  // Bias corrections in double, once per parameter, exactly as the CPU kernel computes them.
  const double t = double(a.step);
  const double bias_correction1 = 1 - std::pow(a.beta1, t);
  const double bias_correction2 = 1 - std::pow(a.beta2, t);
  AdamScalars<T> s;
  s.neg_step_size = T(-(a.lr / bias_correction1));
  s.bc2_sqrt = T(std::sqrt(bias_correction2));
  s.w = T(1 - a.beta1);
  s.w_minus_1 = s.w - T(1);
  s.small_w = std::abs(s.w) < T(0.5);
  s.beta2 = T(a.beta2);
  s.one_minus_beta2 = T(1 - a.beta2);
  s.eps = T(a.eps);
  s.wd = T(a.weight_decay);
  // 1 - lr*wd as one fma: the CPU build fuses this expression (GCC, -march=native, gnu++
  // -ffp-contract=fast: a vfnmadd in kernels/cpu/optim.cpp's object code), so the same rounding
  // is written out here, where the host compiler runs without -march=native.
  s.shrink = T(std::fma(-a.lr, a.weight_decay, 1.0));
  s.decay = a.weight_decay != 0;
  s.decoupled = a.decoupled_weight_decay;
  adam_step_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(p, g, m, v, n, s);
  CUDA_CHECK_LAUNCH();
}

NABLA_OPTIM_INSTANTIATE(float)
NABLA_OPTIM_INSTANTIATE(double)

}  // namespace nabla::cuda
