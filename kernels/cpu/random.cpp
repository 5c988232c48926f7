// CPU Philox draws; see kernels/random.h for the stream layout shared with CUDA. The transforms
// of the uniforms are the shared philox_scale and philox_box_muller, so a GPU draws the same bits.
#include "kernels/random.h"

namespace nabla::cpu {

template <typename T>
void uniform(uint64_t seed, uint64_t offset, T* out, int64_t n, T lo, T hi) {
  constexpr int64_t kPer = kPhiloxPerBlock<T>;
  const int64_t blocks = (n + kPer - 1) / kPer;
  // One Philox block (kPer elements) per iteration; blocks are independent counters.
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t b = 0; b < blocks; ++b) {
    T u[kPer];
    philox_uniforms<T>(seed, offset, b, u);
    for (int64_t k = 0; k < kPer && b * kPer + k < n; ++k)
      out[b * kPer + k] = philox_scale(u[k], lo, hi);
  }
}

template <typename T>
void normal(uint64_t seed, uint64_t offset, T* out, int64_t n, T mean, T std) {
  constexpr int64_t kPer = kPhiloxPerBlock<T>;
  const int64_t blocks = (n + kPer - 1) / kPer;
  // One Philox block per iteration. kPer is even, so the Box-Muller pairs (2j, 2j+1) never
  // straddle two blocks.
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t b = 0; b < blocks; ++b) {
    T u[kPer];
    philox_uniforms<T>(seed, offset, b, u);
    for (int64_t k = 0; k < kPer; k += 2) {
      const int64_t i = b * kPer + k;
      if (i >= n) break;
      // The shared portable Box-Muller (kernels/random.h): the GPU computes the same bits.
      T z0, z1;
      philox_box_muller(u[k], u[k + 1], mean, std, &z0, &z1);
      out[i] = z0;
      if (i + 1 < n) out[i + 1] = z1;
    }
  }
}

NABLA_RANDOM_INSTANTIATE(float)
NABLA_RANDOM_INSTANTIATE(double)

}  // namespace nabla::cpu
