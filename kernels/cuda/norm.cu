// Normalization family on the GPU: batch_norm2d and instance_norm2d, written once over
// NormGroups (kernels/norm.h gives the math, the [outer, G, inner] view and the contracts).
//
//   forward, training   mean_g, var_g (biased) by Welford; invstd = 1/sqrt(var + eps);
//                       y = (x - mean) * w * invstd + b; running statistics with the unbiased
//                       variance, as the CPU
//   forward, eval       invstd from the given variance, then the same affine pass
//   backward            pass 1: Sdy_g, Sdyx_g; pass 2: dx; dw, db from the group sums alone
//
// Kernels (version 1 of each; nothing has run on a GPU yet):
//   welford_partial_kernel   one block per (group g, slice s): the group's M elements are cut
//                            into `slices` contiguous ranges; each thread runs Welford in
//                            double over every blockDim-th element of the range, then the
//                            triples (count, mean, M2) merge across the warp (xor shuffles) and
//                            across the warps (shared memory) in a fixed order
//   welford_finalize_kernel  one thread per group: merges its slices in slice order; writes
//                            mean, invstd and the running statistics
//   invstd_kernel            one thread per group (eval)
//   affine_kernel            one thread per element, grid-stride over one wave of blocks
//   reduce_partial_kernel    the grid of welford_partial_kernel: per-slice sums of dy and
//                            dy * xhat in double, block_sum trees
//   reduce_finalize_kernel   one thread per group: slice sums added in slice order
//   backward_input_kernel    one thread per element, grid-stride (training or eval formula)
//   backward_weight_kernel   one thread per channel: its groups' sums in group order
//
// Determinism: no atomics anywhere. The slicing depends only on the shape and the device's SM
// count, and every merge runs in a fixed order, so a device gives the same bits on every run
// whether or not nabla::deterministic() is set. Results differ from the CPU in the last bits
// (Welford and a tree instead of the CPU's two sequential passes), which the parity tests
// allow for.
#include <algorithm>

#include <nabla/device.h>

#include "kernels/cuda/common.cuh"
#include "kernels/norm.h"

namespace nabla::cuda {

namespace {

constexpr int kNormThreads = 256;    // a multiple of 32: block merges go warp by warp
constexpr int64_t kMinSlice = 4096;  // elements per slice below which another block costs more
constexpr int kBlocksPerSm = 2048 / kNormThreads;  // resident 256-thread blocks per SM (H100)

// Blocks for a streaming pass over n elements: at most one resident wave, so that every
// thread walks several elements and its index setup (three divisions) is paid once.
unsigned wave_blocks(int64_t n) {
  const int64_t wave = int64_t(sm_count()) * kBlocksPerSm;
  const int64_t b = (n + kNormThreads - 1) / kNormThreads;
  return unsigned(std::max<int64_t>(1, std::min(b, wave)));
}

// How a group's M elements are cut into slices, one block each: about two waves of blocks in
// all, but no slice below kMinSlice elements.
struct Slicing {
  int64_t slices = 1, per = 0;  // per: elements of every slice but possibly the last
};

Slicing slicing_for(const NormGroups& s, const char* fn) {
  const int64_t G = s.groups, M = s.outer * s.inner;
  const int64_t target = 2 * int64_t(sm_count()) * kBlocksPerSm;
  int64_t S = std::min((target + G - 1) / G, (M + kMinSlice - 1) / kMinSlice);
  S = std::max<int64_t>(S, 1);
  NABLA_CHECK(G * S <= 2147483647, fn, ": ", G, " groups x ", S, " slices exceed the grid");
  return {S, (M + S - 1) / S};
}

void check_groups(const NormGroups& s, const char* fn, bool need_elements) {
  NABLA_CHECK(s.outer >= 0 && s.inner >= 0 && s.groups >= 0 && s.channels >= 1 &&
                  s.groups % s.channels == 0,
              fn, ": bad groups [outer ", s.outer, ", G ", s.groups, ", inner ", s.inner, "] with ",
              s.channels, " channels (G must be a multiple of C)");
  NABLA_CHECK(!need_elements || s.outer * s.inner >= 1, fn, ": empty groups [outer ", s.outer,
              ", G ", s.groups, ", inner ", s.inner, "]");
}

__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) {
  return a < b ? a : b;
}

// (q, r) = divmod(m, d) along m = m0, m0 + step, ...: one division per thread, then adds.
struct DivModWalk {
  int64_t q, r, dq, dr, d;
  __device__ DivModWalk(int64_t m0, int64_t step, int64_t d_)
      : q(m0 / d_), r(m0 % d_), dq(step / d_), dr(step % d_), d(d_) {}
  __device__ void advance() {
    r += dr;
    q += dq;
    if (r >= d) {  // r, dr < d, so one carry at most
      r -= d;
      ++q;
    }
  }
};

// The group g = (k / inner) % G and channel c = g % C of the flat index k of x viewed as
// [outer, G, inner], along k = k0, k0 + step, ...: divisions once per thread, then adds.
// c can follow g modulo C because C divides G (batch: G = C, instance: G = N*C).
struct GroupWalk {
  int64_t i, g, c;     // k % inner, group, channel
  int64_t di, dg, dc;  // step % inner, (step / inner) % G, (step / inner) % C
  int64_t inner, G, C;
  __device__ GroupWalk(int64_t k0, int64_t step, const NormGroups& s)
      : inner(s.inner), G(s.groups), C(s.channels) {
    const int64_t plane = k0 / inner, q = step / inner;
    i = k0 % inner;
    g = plane % G;
    c = g % C;
    di = step % inner;
    dg = q % G;
    dc = q % C;
  }
  __device__ void advance() {
    i += di;
    const int64_t carry = i >= inner ? 1 : 0;
    i -= carry * inner;
    g += dg + carry;  // <= 2G - 1: one subtraction brings it back
    if (g >= G) g -= G;
    c += dc + carry;
    if (c >= C) c -= C;
  }
};

// A Welford triple: count, mean and M2 = sum of squared deviations from the mean.
struct Welford {
  double n, mean, m2;
};

// Chan et al.'s merge. Empty sides are exact: merging with (0, 0, 0) returns the other side.
__device__ __forceinline__ Welford welford_merge(Welford a, Welford b) {
  const double n = a.n + b.n;
  if (n == 0) return a;
  const double d = b.mean - a.mean, fb = b.n / n;
  return {n, a.mean + d * fb, a.m2 + b.m2 + d * d * a.n * fb};
}

// Merge over a warp by xor butterfly. The merge is not exactly symmetric in rounding, so
// lanes may end with different last bits; callers use lane 0 only, which makes it
// deterministic.
__device__ __forceinline__ Welford warp_welford(Welford w) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const Welford other{__shfl_xor_sync(0xffffffffu, w.n, o),
                        __shfl_xor_sync(0xffffffffu, w.mean, o),
                        __shfl_xor_sync(0xffffffffu, w.m2, o)};
    w = welford_merge(w, other);
  }
  return w;
}

// Merge over the block (blockDim.x a multiple of 32); the result is valid in thread 0. Called
// once per block by every thread.
__device__ Welford block_welford(Welford w) {
  __shared__ Welford warp_total[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  w = warp_welford(w);
  if (lane == 0) warp_total[warp] = w;
  __syncthreads();
  if (warp == 0) {
    w = lane < warps ? warp_total[lane] : Welford{0, 0, 0};
    w = warp_welford(w);
  }
  return w;
}

// Block b = g * slices + s covers elements [s*per, min(M, (s+1)*per)) of group g; element m
// of a group is (o, i) = divmod(m, inner), at (o*G + g)*inner + i.
template <typename T>
__global__ void welford_partial_kernel(NormGroups s, int64_t slices, int64_t per,
                                       const T* __restrict__ x, Welford* __restrict__ part) {
  const int64_t g = blockIdx.x / slices, sl = blockIdx.x % slices;
  const int64_t M = s.outer * s.inner, m0 = sl * per, m1 = min64(M, m0 + per);
  Welford w{0, 0, 0};
  DivModWalk at(m0 + threadIdx.x, blockDim.x, s.inner);
  for (int64_t m = m0 + threadIdx.x; m < m1; m += blockDim.x, at.advance()) {
    const double v = double(x[(at.q * s.groups + g) * s.inner + at.r]);
    // Welford's update: stable for any offset of the data, unlike sum x^2 - (sum x)^2 / M.
    w.n += 1;
    const double d = v - w.mean;
    w.mean += d / w.n;
    w.m2 += d * (v - w.mean);
  }
  w = block_welford(w);
  if (threadIdx.x == 0) part[blockIdx.x] = w;
}

template <typename T>
__global__ void welford_finalize_kernel(int64_t G, int64_t slices, const Welford* __restrict__ part,
                                        double eps, double momentum, T* __restrict__ mean,
                                        T* __restrict__ invstd, T* __restrict__ running_mean,
                                        T* __restrict__ running_var) {
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < G;
       g += int64_t(gridDim.x) * blockDim.x) {
    Welford w{0, 0, 0};
    for (int64_t sl = 0; sl < slices; ++sl) w = welford_merge(w, part[g * slices + sl]);
    const double var = w.m2 / w.n;
    mean[g] = T(w.mean);
    invstd[g] = T(1.0 / sqrt(var + eps));
    if (running_mean) {
      // PyTorch's update, with the unbiased variance (the op guarantees M > 1 here).
      const double unbiased = w.m2 / (w.n - 1);
      running_mean[g] = T(momentum * w.mean + (1.0 - momentum) * double(running_mean[g]));
      running_var[g] = T(momentum * unbiased + (1.0 - momentum) * double(running_var[g]));
    }
  }
}

template <typename T>
__global__ void invstd_kernel(int64_t G, const T* __restrict__ var, double eps,
                              T* __restrict__ invstd) {
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < G;
       g += int64_t(gridDim.x) * blockDim.x)
    invstd[g] = T(1.0 / sqrt(double(var[g]) + eps));
}

// y = (x - mean) * (w * invstd) + b, w = 1 and b = 0 when absent (the CPU's expression).
template <typename T>
__global__ void affine_kernel(NormGroups s, int64_t n, const T* __restrict__ x,
                              const T* __restrict__ mean, const T* __restrict__ invstd,
                              const T* __restrict__ weight, const T* __restrict__ bias,
                              T* __restrict__ y) {
  const int64_t k0 = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  if (k0 >= n) return;  // no barrier below: an early exit is safe
  GroupWalk at(k0, step, s);
  for (int64_t k = k0; k < n; k += step, at.advance()) {
    const T scale = (weight ? weight[at.c] : T(1)) * invstd[at.g];
    const T shift = bias ? bias[at.c] : T(0);
    y[k] = (x[k] - mean[at.g]) * scale + shift;
  }
}

// Per-slice (sum dy, sum dy * xhat) over the elements welford_partial_kernel's block covers;
// xhat = (x - mean) * invstd in double, as the CPU.
template <typename T>
__global__ void reduce_partial_kernel(NormGroups s, int64_t slices, int64_t per,
                                      const T* __restrict__ x, const T* __restrict__ mean,
                                      const T* __restrict__ invstd, const T* __restrict__ dy,
                                      bool with_xhat, double2* __restrict__ part) {
  __shared__ double shared[32];
  const int64_t g = blockIdx.x / slices, sl = blockIdx.x % slices;
  const int64_t M = s.outer * s.inner, m0 = sl * per, m1 = min64(M, m0 + per);
  const double mg = double(mean[g]), is = double(invstd[g]);
  double a = 0, b = 0;
  DivModWalk at(m0 + threadIdx.x, blockDim.x, s.inner);
  for (int64_t m = m0 + threadIdx.x; m < m1; m += blockDim.x, at.advance()) {
    const int64_t k = (at.q * s.groups + g) * s.inner + at.r;
    const double d = double(dy[k]);
    a += d;
    if (with_xhat) b += d * ((double(x[k]) - mg) * is);
  }
  a = block_sum(a, shared);
  b = block_sum(b, shared);  // block_sum starts with a barrier: `shared` is free again
  if (threadIdx.x == 0) part[blockIdx.x] = make_double2(a, b);
}

__global__ void reduce_finalize_kernel(int64_t G, int64_t slices, const double2* __restrict__ part,
                                       double* __restrict__ sum_dy,
                                       double* __restrict__ sum_dy_xhat) {
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < G;
       g += int64_t(gridDim.x) * blockDim.x) {
    double a = 0, b = 0;
    for (int64_t sl = 0; sl < slices; ++sl) {
      a += part[g * slices + sl].x;
      b += part[g * slices + sl].y;
    }
    sum_dy[g] = a;
    if (sum_dy_xhat) sum_dy_xhat[g] = b;
  }
}

// training: dx = k * (dy - Sdy/M - xhat * Sdyx/M), eval: dx = k * dy, with k = w * invstd.
// The 1/M is a multiplication by the reciprocal passed in (the CPU divides): the group
// constants may differ by one double ulp before they are rounded to T.
template <typename T>
__global__ void backward_input_kernel(NormGroups s, int64_t n, const T* __restrict__ x,
                                      const T* __restrict__ mean, const T* __restrict__ invstd,
                                      const T* __restrict__ weight, const T* __restrict__ dy,
                                      const double* __restrict__ sum_dy,
                                      const double* __restrict__ sum_dy_xhat, double inv_m,
                                      T* __restrict__ dx) {
  const int64_t k0 = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  if (k0 >= n) return;  // no barrier below
  GroupWalk at(k0, step, s);
  for (int64_t k = k0; k < n; k += step, at.advance()) {
    const T is = invstd[at.g];
    const T kw = (weight ? weight[at.c] : T(1)) * is;
    if (!sum_dy) {
      dx[k] = dy[k] * kw;
      continue;
    }
    const T a = T(sum_dy[at.g] * inv_m), b = T(sum_dy_xhat[at.g] * inv_m);
    dx[k] = kw * (dy[k] - a - (x[k] - mean[at.g]) * is * b);
  }
}

template <typename T>
__global__ void backward_weight_kernel(int64_t G, int64_t C, const double* __restrict__ sum_dy,
                                       const double* __restrict__ sum_dy_xhat,
                                       T* __restrict__ dweight, T* __restrict__ dbias) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C;
       c += int64_t(gridDim.x) * blockDim.x) {
    double w = 0, b = 0;
    for (int64_t g = c; g < G; g += C) {  // group order, as the CPU: the same bits
      if (dweight) w += sum_dy_xhat[g];
      b += sum_dy[g];
    }
    if (dweight) dweight[c] = T(w);
    if (dbias) dbias[c] = T(b);
  }
}

template <typename T>
void launch_affine(const NormGroups& s, const T* x, const T* mean, const T* invstd, const T* weight,
                   const T* bias, T* y, cudaStream_t stream) {
  const int64_t n = s.outer * s.groups * s.inner;
  if (n == 0) return;
  affine_kernel<T>
      <<<wave_blocks(n), kNormThreads, 0, stream>>>(s, n, x, mean, invstd, weight, bias, y);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

template <typename T>
void norm_forward_train(const NormGroups& s, const T* x, const T* weight, const T* bias, double eps,
                        double momentum, T* y, T* mean, T* invstd, T* running_mean,
                        T* running_var) {
  const int64_t G = s.groups;
  if (G == 0) return;  // no channels: nothing to compute, as on the CPU
  check_groups(s, "cuda norm_forward_train", true);
  const Slicing sl = slicing_for(s, "cuda norm_forward_train");
  Scratch part(sizeof(Welford) * size_t(G * sl.slices));
  cudaStream_t stream = current_stream();
  welford_partial_kernel<T><<<unsigned(G * sl.slices), kNormThreads, 0, stream>>>(
      s, sl.slices, sl.per, x, part.as<Welford>());
  CUDA_CHECK_LAUNCH();
  welford_finalize_kernel<T><<<blocks_for(G), kThreads, 0, stream>>>(
      G, sl.slices, part.as<Welford>(), eps, momentum, mean, invstd, running_mean, running_var);
  CUDA_CHECK_LAUNCH();
  launch_affine(s, x, mean, invstd, weight, bias, y, stream);
}

template <typename T>
void norm_forward_eval(const NormGroups& s, const T* x, const T* mean, const T* var,
                       const T* weight, const T* bias, double eps, T* y, T* invstd) {
  const int64_t G = s.groups;
  if (G == 0) return;
  check_groups(s, "cuda norm_forward_eval", false);
  cudaStream_t stream = current_stream();
  invstd_kernel<T><<<blocks_for(G), kThreads, 0, stream>>>(G, var, eps, invstd);
  CUDA_CHECK_LAUNCH();
  launch_affine(s, x, mean, invstd, weight, bias, y, stream);
}

template <typename T>
void norm_backward_reduce(const NormGroups& s, const T* x, const T* mean, const T* invstd,
                          const T* dy, double* sum_dy, double* sum_dy_xhat) {
  const int64_t G = s.groups;
  if (G == 0) return;
  check_groups(s, "cuda norm_backward_reduce", true);
  const Slicing sl = slicing_for(s, "cuda norm_backward_reduce");
  Scratch part(sizeof(double2) * size_t(G * sl.slices));
  cudaStream_t stream = current_stream();
  reduce_partial_kernel<T><<<unsigned(G * sl.slices), kNormThreads, 0, stream>>>(
      s, sl.slices, sl.per, x, mean, invstd, dy, sum_dy_xhat != nullptr, part.as<double2>());
  CUDA_CHECK_LAUNCH();
  reduce_finalize_kernel<<<blocks_for(G), kThreads, 0, stream>>>(G, sl.slices, part.as<double2>(),
                                                                 sum_dy, sum_dy_xhat);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void norm_backward_input(const NormGroups& s, const T* x, const T* mean, const T* invstd,
                         const T* weight, const T* dy, const double* sum_dy,
                         const double* sum_dy_xhat, T* dx) {
  if (s.groups == 0) return;
  check_groups(s, "cuda norm_backward_input", false);
  NABLA_CHECK((sum_dy == nullptr) == (sum_dy_xhat == nullptr),
              "cuda norm_backward_input: sum_dy and sum_dy_xhat must be given together");
  const int64_t n = s.outer * s.groups * s.inner;
  if (n == 0) return;
  const double inv_m = 1.0 / double(s.outer * s.inner);
  backward_input_kernel<T><<<wave_blocks(n), kNormThreads, 0, current_stream()>>>(
      s, n, x, mean, invstd, weight, dy, sum_dy, sum_dy_xhat, inv_m, dx);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void norm_backward_weight(const NormGroups& s, const double* sum_dy, const double* sum_dy_xhat,
                          T* dweight, T* dbias) {
  if (s.groups == 0 || (!dweight && !dbias)) return;
  check_groups(s, "cuda norm_backward_weight", false);
  backward_weight_kernel<T><<<blocks_for(s.channels), kThreads, 0, current_stream()>>>(
      s.groups, s.channels, sum_dy, sum_dy_xhat, dweight, dbias);
  CUDA_CHECK_LAUNCH();
}

NABLA_NORM_INSTANTIATE(float)
NABLA_NORM_INSTANTIATE(double)

}  // namespace nabla::cuda
