// CUDA fused attack steps (kernels/cuda/attack.cu) against the CPU: BIT-identical results.
//
// Both sides follow the recipe of kernels/attack.h literally (explicit fmas, products that
// must not be fused written as such, IEEE division and sqrt, the per-sample sums of squares in
// the documented chunk order), so the L-inf step and all three passes of the L2 step must
// agree in every bit, in float and double. The data has zeros of both signs in g, x exactly at
// the clip bounds, x0 near the bounds (so x0 -/+ eps leave [lo, hi]), samples with g = 0,
// samples that stay inside the L2 ball and samples that leave it, and samples spanning
// several reduction chunks (D > kAttackNormChunk). Also: several PGD iterations fed back on
// each device, the in-place form (y aliasing x) at the kernel level, and NaN propagation.
// Every case starts with gpu_or_skip(): without a GPU it prints why and passes.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <nabla/nabla.h>

#include "cuda_parity.h"
#include "kernels/attack.h"

namespace {

using namespace nabla;
using nabla::test::gpu_or_skip;

// Bitwise comparison (both NaN counts as equal: NaN payloads are not part of the recipe).
void check_bits(const std::string& what, const Tensor& cpu, const Tensor& gpu) {
  REQUIRE(cpu.shape() == gpu.shape());
  REQUIRE(cpu.dtype() == gpu.dtype());
  const Tensor a = cpu.to(Device::cpu()).contiguous(), b = gpu.to(Device::cpu()).contiguous();
  const size_t n = size_t(a.numel()), es = a.dtype() == DType::Float64 ? 8 : 4;
  const auto* pa = static_cast<const unsigned char*>(a.raw_data());
  const auto* pb = static_cast<const unsigned char*>(b.raw_data());
  int64_t bad = 0;
  std::string first;
  for (size_t i = 0; i < n; ++i) {
    if (std::memcmp(pa + i * es, pb + i * es, es) == 0) continue;
    double va, vb;
    if (es == 8) {
      std::memcpy(&va, pa + i * es, 8);
      std::memcpy(&vb, pb + i * es, 8);
    } else {
      float fa, fb;
      std::memcpy(&fa, pa + i * es, 4);
      std::memcpy(&fb, pb + i * es, 4);
      va = fa, vb = fb;
    }
    if (std::isnan(va) && std::isnan(vb)) continue;
    if (bad++ < 5)
      first += "\n  [" + std::to_string(i) + "] cpu " + std::to_string(va) + " gpu " +
               std::to_string(vb);
  }
  CHECK_MESSAGE(bad == 0,
                what << ": " << bad << " of " << n << " elements differ in their bits" << first);
}

struct StepData {
  Tensor x, g, x0;
};

// x0 in [0, 1]; x within 0.05 of it and clipped, with exact 0 and 1 sprinkled in; g normal
// with zeros of both signs; sample 2 (when there is one) has g = 0 and sits close to x0.
StepData step_data(int64_t N, int64_t D, DType dt, uint64_t seed) {
  Generator gen(seed);
  Tensor x0 = rand({N, D}, DType::Float64, Device::cpu(), &gen);
  Tensor x = clamp(add(x0, rand({N, D}, DType::Float64, Device::cpu(), &gen, -0.05, 0.05)), 0, 1);
  Tensor g = randn({N, D}, DType::Float64, Device::cpu(), &gen);
  double *pg = g.data<double>(), *px = x.data<double>(), *px0 = x0.data<double>();
  for (int64_t i = 0; i < N * D; ++i) {
    if (i % 7 == 0) pg[i] = (i % 2) ? -0.0 : 0.0;
    if (i % 11 == 3) px[i] = 1.0;
    if (i % 13 == 5) px[i] = 0.0;
    if (i % 17 == 1) px0[i] = 0.995;  // x0 + eps > hi
    if (i % 19 == 2) px0[i] = 0.004;  // x0 - eps < lo
  }
  if (N > 2)
    for (int64_t i = 2 * D; i < 3 * D; ++i) {
      pg[i] = 0;
      px[i] = px0[i] + 0.1 * (px[i] - px0[i]);
    }
  return {x.to(dt), g.to(dt), x0.to(dt)};
}

struct Size {
  int64_t N, D;
};
// FashionCNN inputs, a U-Net input, samples of several chunks, batch 1, a single element.
const Size kSizes[] = {
    {16, 784}, {4, 3 * 64 * 64}, {3, 3 * kAttackNormChunk + 37}, {1, 2 * kAttackNormChunk}, {2, 1}};

std::string label(const char* op, Size s, DType dt) {
  return std::string(op) + " [" + std::to_string(s.N) + ", " + std::to_string(s.D) + "]" +
         (dt == DType::Float64 ? " f64" : " f32");
}

}  // namespace

TEST_CASE("cuda attack_step_linf: bit-identical to the CPU") {
  if (!gpu_or_skip()) return;
  const Device gd = Device::cuda(0);
  for (DType dt : {DType::Float32, DType::Float64})
    for (Size s : kSizes) {
      StepData d = step_data(s.N, s.D, dt, 7);
      for (double eps : {8.0 / 255, 0.3}) {
        Tensor yc = attack_step_linf(d.x, d.g, d.x0, 2.0 / 255, eps, 0, 1);
        Tensor yg = attack_step_linf(d.x.to(gd), d.g.to(gd), d.x0.to(gd), 2.0 / 255, eps, 0, 1);
        check_bits(label("attack_step_linf", s, dt), yc, yg);
      }
      // Another box, with bounds that are not representable exactly.
      Tensor yc = attack_step_linf(d.x, d.g, d.x0, 0.1, 0.07, 0.1, 0.9);
      Tensor yg = attack_step_linf(d.x.to(gd), d.g.to(gd), d.x0.to(gd), 0.1, 0.07, 0.1, 0.9);
      check_bits(label("attack_step_linf box [0.1, 0.9]", s, dt), yc, yg);
    }
}

TEST_CASE("cuda attack_step_l2: bit-identical to the CPU, inside and outside the ball") {
  if (!gpu_or_skip()) return;
  const Device gd = Device::cuda(0);
  for (DType dt : {DType::Float32, DType::Float64})
    for (Size s : kSizes) {
      StepData d = step_data(s.N, s.D, dt, 9);
      // eps 0.5: most samples leave the ball and are projected; eps 1e3: none does; eps 0 pins
      // every sample to x0.
      for (double eps : {0.5, 1e3, 0.0}) {
        Tensor yc = attack_step_l2(d.x, d.g, d.x0, 0.7, eps, 0, 1);
        Tensor yg = attack_step_l2(d.x.to(gd), d.g.to(gd), d.x0.to(gd), 0.7, eps, 0, 1);
        check_bits(label("attack_step_l2", s, dt) + " eps " + std::to_string(eps), yc, yg);
      }
    }
}

TEST_CASE("cuda attack steps: PGD iterations fed back stay bit-identical") {
  if (!gpu_or_skip()) return;
  const Device gd = Device::cuda(0);
  for (DType dt : {DType::Float32, DType::Float64}) {
    StepData d = step_data(8, 3 * 32 * 32, dt, 13);
    Tensor xl_c = d.x, xl_g = d.x.to(gd), x2_c = d.x, x2_g = d.x.to(gd);
    const Tensor x0_g = d.x0.to(gd);
    for (int it = 0; it < 6; ++it) {
      Generator gen(200 + uint64_t(it));
      const Tensor g = randn({8, 3 * 32 * 32}, dt, Device::cpu(), &gen);
      const Tensor g_g = g.to(gd);
      xl_c = attack_step_linf(xl_c, g, d.x0, 2.0 / 255, 8.0 / 255);
      xl_g = attack_step_linf(xl_g, g_g, x0_g, 2.0 / 255, 8.0 / 255);
      x2_c = attack_step_l2(x2_c, g, d.x0, 0.2, 0.5);
      x2_g = attack_step_l2(x2_g, g_g, x0_g, 0.2, 0.5);
    }
    check_bits(std::string("6 L-inf PGD steps") + (dt == DType::Float64 ? " f64" : " f32"), xl_c,
               xl_g);
    check_bits(std::string("6 L2 PGD steps") + (dt == DType::Float64 ? " f64" : " f32"), x2_c,
               x2_g);
  }
}

TEST_CASE("cuda attack_step_apgd_linf: bit-identical to the CPU, first and momentum steps") {
  if (!gpu_or_skip()) return;
  const Device gd = Device::cuda(0);
  for (DType dt : {DType::Float32, DType::Float64})
    for (Size s : kSizes) {
      StepData d = step_data(s.N, s.D, dt, 23);
      // The previous iterate: x moved back by a little, some elements equal to x.
      Generator gen(29);
      Tensor xp = clamp(add(d.x, rand({s.N, s.D}, dt, Device::cpu(), &gen, -0.02, 0.02)), 0, 1);
      // Per-sample step sizes, one of them 0 (that sample only feels the momentum).
      std::vector<double> ev(size_t(s.N));
      for (int64_t n = 0; n < s.N; ++n) ev[size_t(n)] = n == 1 ? 0.0 : 0.4 / double(n + 1);
      const Tensor eta = from_vector<double>(ev, {s.N}).to(dt);
      for (double a : {1.0, 0.75})
        for (double eps : {8.0 / 255, 0.3}) {
          Tensor yc = attack_step_apgd_linf(d.x, xp, d.g, d.x0, eta, a, eps);
          Tensor yg = attack_step_apgd_linf(d.x.to(gd), xp.to(gd), d.g.to(gd), d.x0.to(gd),
                                            eta.to(gd), a, eps);
          check_bits(label("attack_step_apgd_linf", s, dt) + " a " + std::to_string(a) + " eps " +
                         std::to_string(eps),
                     yc, yg);
        }
    }
}

TEST_CASE("cuda attack kernels: in place (y = x), the per-sample norms, and NaN") {
  if (!gpu_or_skip()) return;
#ifdef NABLA_HAVE_CUDA
  const Device gd = Device::cuda(0);
  const int64_t N = 3, D = 2 * kAttackNormChunk + 5;
  StepData d = step_data(N, D, DType::Float32, 17);
  float* px = d.x.data<float>();
  px[10] = std::nanf("");                 // a NaN x stays NaN through the clamps
  d.g.data<float>()[11] = std::nanf("");  // sign(NaN) = 0: x does not move
  // L-inf in place on both sides: y aliases x.
  Tensor xc = d.x.clone(), xg = d.x.to(gd);
  Tensor gg = d.g.to(gd), x0g = d.x0.to(gd);
  cpu::attack_step_linf<float>(xc.data<float>(), d.g.data<float>(), d.x0.data<float>(),
                               xc.data<float>(), N * D, 0.01f, 0.03f, 0.f, 1.f);
  cuda::attack_step_linf<float>(xg.data<float>(), gg.data<float>(), x0g.data<float>(),
                                xg.data<float>(), N * D, 0.01f, 0.03f, 0.f, 1.f);
  check_bits("attack_step_linf in place", xc, xg);
  // The L2 passes one by one, u aliasing x: the norms are compared on their own.
  d = step_data(N, D, DType::Float32, 19);
  Tensor gsq_c = empty({N}, DType::Float64), dsq_c = empty({N}, DType::Float64);
  Tensor gsq_g = empty({N}, DType::Float64, gd), dsq_g = empty({N}, DType::Float64, gd);
  xc = d.x.clone(), xg = d.x.to(gd), gg = d.g.to(gd), x0g = d.x0.to(gd);
  cpu::attack_l2_sq_norms<float>(d.g.data<float>(), gsq_c.data<double>(), N, D);
  cuda::attack_l2_sq_norms<float>(gg.data<float>(), gsq_g.data<double>(), N, D);
  check_bits("attack_l2_sq_norms", gsq_c, gsq_g);
  cpu::attack_step_l2_delta<float>(xc.data<float>(), d.g.data<float>(), d.x0.data<float>(),
                                   gsq_c.data<double>(), 0.5, xc.data<float>(),
                                   dsq_c.data<double>(), N, D);
  cuda::attack_step_l2_delta<float>(xg.data<float>(), gg.data<float>(), x0g.data<float>(),
                                    gsq_g.data<double>(), 0.5, xg.data<float>(),
                                    dsq_g.data<double>(), N, D);
  check_bits("attack_step_l2_delta u (in place)", xc, xg);
  check_bits("attack_step_l2_delta squared norms", dsq_c, dsq_g);
  cpu::attack_step_l2_project<float>(d.x0.data<float>(), dsq_c.data<double>(), 0.4, 0.f, 1.f,
                                     xc.data<float>(), N, D);
  cuda::attack_step_l2_project<float>(x0g.data<float>(), dsq_g.data<double>(), 0.4, 0.f, 1.f,
                                      xg.data<float>(), N, D);
  check_bits("attack_step_l2_project", xc, xg);
  synchronize(gd);
#endif
}
