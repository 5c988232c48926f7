// Seeded Philox draws into tensors. See random.h and kernels/random.h.
//
// rand and randn draw where the tensor lives: on a CUDA device the Philox kernel of
// kernels/cuda/random.cu fills device memory directly, from the same stream position, so a GPU
// draw holds the numbers a CPU draw would for the same generator state (kernels/random.h says
// what makes them the same bits).
#include <nabla/random.h>

#include <nabla/autograd.h>
#include <nabla/dispatch.h>

#include "kernels/random.h"

namespace nabla {

Generator& default_generator() {
  static Generator g(0);
  return g;
}

void manual_seed(uint64_t seed) {
  default_generator().manual_seed(seed);
}

namespace {
Generator& pick(Generator* g) {
  return g ? *g : default_generator();
}
}  // namespace

Tensor rand(const Shape& s, DType dt, Device dev, Generator* gen, double lo, double hi) {
  NABLA_CHECK(is_floating(dt), "rand: dtype must be float32 or float64, got ", dtype_name(dt));
  Generator& g = pick(gen);
  Tensor t = empty(s, dt, dev);
  int64_t n = t.numel();
  if (dt == DType::Float32) {
    NABLA_KERNEL(dev, uniform<float>)
    (g.seed(), g.advance(cpu::philox_blocks_float(n)), t.data<float>(), n, float(lo), float(hi));
  } else {
    NABLA_KERNEL(dev, uniform<double>)
    (g.seed(), g.advance(cpu::philox_blocks_double(n)), t.data<double>(), n, lo, hi);
  }
  count_kernel("uniform");
  return t;
}

Tensor randn(const Shape& s, DType dt, Device dev, Generator* gen, double mean, double std) {
  NABLA_CHECK(is_floating(dt), "randn: dtype must be float32 or float64, got ", dtype_name(dt));
  Generator& g = pick(gen);
  Tensor t = empty(s, dt, dev);
  int64_t n = t.numel(), even = (n + 1) / 2 * 2;  // Box-Muller consumes uniforms in pairs
  if (dt == DType::Float32) {
    NABLA_KERNEL(dev, normal<float>)
    (g.seed(), g.advance(cpu::philox_blocks_float(even)), t.data<float>(), n, float(mean),
     float(std));
  } else {
    NABLA_KERNEL(dev, normal<double>)
    (g.seed(), g.advance(cpu::philox_blocks_double(even)), t.data<double>(), n, mean, std);
  }
  count_kernel("normal");
  return t;
}

Tensor randint(int64_t lo, int64_t hi, const Shape& s, Generator* gen) {
  NABLA_CHECK(lo < hi, "randint: empty range [", lo, ", ", hi, ")");
  Tensor u = rand(s, DType::Float64, Device::cpu(), gen);
  Tensor out = empty(s, DType::Int64);
  const double* p = u.data<double>();
  int64_t* q = out.data<int64_t>();
  for (int64_t i = 0; i < out.numel(); ++i)
    q[i] = std::min(hi - 1, lo + int64_t(p[i] * double(hi - lo)));
  return out;
}

std::vector<int64_t> randperm(int64_t n, Generator* gen) {
  std::vector<int64_t> perm(size_t(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) perm[size_t(i)] = i;
  if (n < 2) return perm;
  Tensor u = rand({n}, DType::Float64, Device::cpu(), gen);
  const double* p = u.data<double>();
  // Fisher-Yates from the back: position i swaps with a uniform j in [0, i].
  for (int64_t i = n - 1; i > 0; --i) {
    int64_t j = std::min(i, int64_t(p[i] * double(i + 1)));
    std::swap(perm[size_t(i)], perm[size_t(j)]);
  }
  return perm;
}

}  // namespace nabla
