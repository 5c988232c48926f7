// Random family on the GPU: Philox4x32-10 draws of the stream (seed, offset) that
// kernels/random.h defines, uniform and normal (Box-Muller).
//
// Block b of the stream is philox4x32_10(counter = offset + b, key = seed); its four words give
// elements b*4 .. b*4+3 (float) or b*2, b*2+1 (double) through philox_uniforms, the very
// function the CPU kernels call. The integer rounds and the conversion (w >> 8) * 2^-24 are
// exact, so the uniforms are the CPU's bits. The transforms are the shared, portable
// philox_scale (one fma) and philox_box_muller (its own log and sin/cos built from correctly
// rounded operations), so the outputs are the same bits as the CPU's for the same seed and
// offset, as long as the CPU draws through the same two functions.
//
// Versions: 1 (these).
//   uniform_kernel, normal_kernel   one thread per Philox block (4 floats or 2 doubles, grid-
//                                   stride over blocks); a Box-Muller pair never straddles two
//                                   blocks because both per-block counts are even.
#include "kernels/cuda/common.cuh"
#include "kernels/random.h"

#include <cstdint>

namespace nabla::cuda {

namespace {

template <typename T>
__global__ void uniform_kernel(uint64_t seed, uint64_t offset, T* __restrict__ out, int64_t n, T lo,
                               T hi) {
  constexpr int64_t kPer = kPhiloxPerBlock<T>;
  const int64_t blocks = (n + kPer - 1) / kPer;
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < blocks;
       b += int64_t(gridDim.x) * blockDim.x) {
    T u[kPer];
    philox_uniforms<T>(seed, offset, b, u);
#pragma unroll
    for (int64_t k = 0; k < kPer; ++k)
      if (b * kPer + k < n) out[b * kPer + k] = philox_scale(u[k], lo, hi);
  }
}

template <typename T>
__global__ void normal_kernel(uint64_t seed, uint64_t offset, T* __restrict__ out, int64_t n,
                              T mean, T std) {
  constexpr int64_t kPer = kPhiloxPerBlock<T>;
  const int64_t blocks = (n + kPer - 1) / kPer;
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < blocks;
       b += int64_t(gridDim.x) * blockDim.x) {
    T u[kPer];
    philox_uniforms<T>(seed, offset, b, u);
#pragma unroll
    for (int64_t k = 0; k < kPer; k += 2) {
      const int64_t i = b * kPer + k;
      if (i < n) {
        T z0, z1;
        philox_box_muller(u[k], u[k + 1], mean, std, &z0, &z1);
        out[i] = z0;
        if (i + 1 < n) out[i + 1] = z1;
      }
    }
  }
}

}  // namespace

template <typename T>
void uniform(uint64_t seed, uint64_t offset, T* out, int64_t n, T lo, T hi) {
  if (n <= 0) return;
  const int64_t blocks = (n + kPhiloxPerBlock<T> - 1) / kPhiloxPerBlock<T>;
  uniform_kernel<T>
      <<<blocks_for(blocks), kThreads, 0, current_stream()>>>(seed, offset, out, n, lo, hi);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void normal(uint64_t seed, uint64_t offset, T* out, int64_t n, T mean, T std) {
  if (n <= 0) return;
  const int64_t blocks = (n + kPhiloxPerBlock<T> - 1) / kPhiloxPerBlock<T>;
  normal_kernel<T>
      <<<blocks_for(blocks), kThreads, 0, current_stream()>>>(seed, offset, out, n, mean, std);
  CUDA_CHECK_LAUNCH();
}

NABLA_RANDOM_INSTANTIATE(float)
NABLA_RANDOM_INSTANTIATE(double)

}  // namespace nabla::cuda
