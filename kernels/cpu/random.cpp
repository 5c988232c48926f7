// CPU Philox draws; see kernels/random.h for the stream layout shared with CUDA.
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
      out[b * kPer + k] = lo + (hi - lo) * u[k];
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
      // 1 - U lies in (0, 1], so the log is finite.
      T r = std::sqrt(T(-2) * std::log(T(1) - u[k]));
      T theta = T(2 * M_PI) * u[k + 1];
      out[i] = mean + std * r * std::cos(theta);
      if (i + 1 < n) out[i + 1] = mean + std * r * std::sin(theta);
    }
  }
}

template void uniform<float>(uint64_t, uint64_t, float*, int64_t, float, float);
template void uniform<double>(uint64_t, uint64_t, double*, int64_t, double, double);
template void normal<float>(uint64_t, uint64_t, float*, int64_t, float, float);
template void normal<double>(uint64_t, uint64_t, double*, int64_t, double, double);

}  // namespace nabla::cpu
