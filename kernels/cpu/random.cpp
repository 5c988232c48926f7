// CPU Philox draws; see kernels/random.h for the stream layout shared with CUDA.
#include "kernels/random.h"

namespace nabla::cpu {

namespace {
template <typename T>
T uniform_at(uint64_t seed, uint64_t offset, int64_t i) {
  if constexpr (sizeof(T) == 4) {
    Philox4x32 b = philox4x32_10(offset + uint64_t(i / 4), 0, seed);
    return philox_to_float(b.w[i % 4]);
  } else {
    Philox4x32 b = philox4x32_10(offset + uint64_t(i / 2), 0, seed);
    int j = int(i % 2) * 2;
    return philox_to_double(b.w[j], b.w[j + 1]);
  }
}
}  // namespace

template <typename T>
void uniform(uint64_t seed, uint64_t offset, T* out, int64_t n, T lo, T hi) {
  // One element per iteration; elements are independent by construction of Philox.
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) out[i] = lo + (hi - lo) * uniform_at<T>(seed, offset, i);
}

template <typename T>
void normal(uint64_t seed, uint64_t offset, T* out, int64_t n, T mean, T std) {
  const int64_t pairs = (n + 1) / 2;
  // One Box-Muller pair per iteration: uniforms 2k and 2k+1 give normals 2k and 2k+1.
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t k = 0; k < pairs; ++k) {
    // 1 - U lies in (0, 1], so the log is finite.
    T u1 = T(1) - uniform_at<T>(seed, offset, 2 * k);
    T u2 = uniform_at<T>(seed, offset, 2 * k + 1);
    T r = std::sqrt(T(-2) * std::log(u1));
    T theta = T(2 * M_PI) * u2;
    out[2 * k] = mean + std * r * std::cos(theta);
    if (2 * k + 1 < n) out[2 * k + 1] = mean + std * r * std::sin(theta);
  }
}

template void uniform<float>(uint64_t, uint64_t, float*, int64_t, float, float);
template void uniform<double>(uint64_t, uint64_t, double*, int64_t, double, double);
template void normal<float>(uint64_t, uint64_t, float*, int64_t, float, float);
template void normal<double>(uint64_t, uint64_t, double*, int64_t, double, double);

}  // namespace nabla::cpu
