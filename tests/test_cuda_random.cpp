// The GPU draws the CPU's random numbers, and the GPU optimizer steps give the CPU's bits:
// kernels/cuda/random.cu, dropout in kernels/cuda/softmax.cu, kernels/cuda/optim.cu.
//
//   1. rand and randn on cuda:0 equal rand and randn on the CPU BIT FOR BIT for the same seed
//      and generator state (float32 and float64, odd lengths, a non-trivial range), and leave
//      the generator at the same offset; randn on the GPU also equals the shared host recipe
//      philox_box_muller of kernels/random.h evaluated here;
//   2. dropout with the same seed draws the same mask: the outputs and the input gradients are
//      bit-identical (float32 and float64, several p, p = 1);
//   3. SGD (momentum, dampening, Nesterov, weight decay), Adam and AdamW on cuda:0 step to the
//      same bits as on the CPU over several steps, with the state on the parameter's device;
//      and the kernels alone on random state (cuda::sgd_step / adam_step against cpu::).
// Every case starts with gpu_or_skip(): without a GPU it prints why and passes.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <nabla/nabla.h>

#include "cuda_parity.h"
#include "gradcheck.h"
#include "kernels/optim.h"
#include "kernels/random.h"

namespace {

using nabla::Device;
using nabla::DType;
using nabla::Generator;
using nabla::Shape;
using nabla::Tensor;
using nabla::test::gpu_or_skip;

// Elements whose bits differ (both NaN counts as equal); the first few are reported.
int64_t bit_diffs(const std::string& what, const Tensor& cpu, const Tensor& gpu) {
  REQUIRE(cpu.shape() == gpu.shape());
  REQUIRE(cpu.dtype() == gpu.dtype());
  std::vector<double> a = cpu.to(Device::cpu()).to(DType::Float64).to_vector<double>();
  std::vector<double> b = gpu.to(Device::cpu()).to(DType::Float64).to_vector<double>();
  int64_t bad = 0;
  std::string first;
  for (size_t i = 0; i < a.size(); ++i) {
    const bool same =
        (std::isnan(a[i]) && std::isnan(b[i])) || std::memcmp(&a[i], &b[i], sizeof(double)) == 0;
    if (!same && bad++ < 6)
      first += "\n  [" + std::to_string(i) + "] cpu " + std::to_string(a[i]) + "  gpu " +
               std::to_string(b[i]);
  }
  CHECK_MESSAGE(bad == 0, what << ": " << bad << " of " << a.size() << " elements differ" << first);
  return bad;
}

// Uniform values in [lo, hi), float32 unless dt says otherwise.
Tensor uniform_values(const Shape& s, uint64_t seed, double lo, double hi,
                      DType dt = DType::Float32) {
  return nabla::test::uniform(s, lo, hi, seed, dt);
}

const char* dtype_tag(DType dt) {
  return dt == DType::Float32 ? " f32" : " f64";
}

#ifdef NABLA_HAVE_CUDA
// One update of every array by cpu:: and by cuda:: (configs 0-2 SGD, 3-5 Adam / AdamW).
template <typename T>
void step_both(int config, Tensor& p, Tensor& g, Tensor& m, Tensor& v, Tensor& pg, Tensor& gg,
               Tensor& mg, Tensor& vg) {
  using namespace nabla;
  const int64_t n = p.numel();
  if (config < 3) {
    const SgdStepArgs a{0.1,  config == 0 ? 0.0 : 0.9, config == 1 ? 0.2 : 0.0, 1e-3, config == 2,
                        false};
    cpu::sgd_step<T>(p.data<T>(), g.data<T>(), m.data<T>(), n, a);
    cuda::sgd_step<T>(pg.data<T>(), gg.data<T>(), mg.data<T>(), n, a);
  } else {
    const AdamStepArgs a{1e-2,        config == 5 ? 0.3 : 0.9, 0.999, 1e-8, 0.05,
                         config == 4, int64_t(config)};
    cpu::adam_step<T>(p.data<T>(), g.data<T>(), m.data<T>(), v.data<T>(), n, a);
    cuda::adam_step<T>(pg.data<T>(), gg.data<T>(), mg.data<T>(), vg.data<T>(), n, a);
  }
}
#endif

}  // namespace

TEST_CASE("cuda random: rand on the GPU is the CPU's stream, bit for bit") {
  if (!gpu_or_skip()) return;
  using namespace nabla;
  for (DType dt : {DType::Float32, DType::Float64})
    for (int64_t n : {1, 2, 3, 5, 1001, 100003})
      for (auto [lo, hi] : {std::pair<double, double>{0, 1}, std::pair<double, double>{-3, 5}}) {
        const std::string name = "rand n " + std::to_string(n) + " [" + std::to_string(lo) + ", " +
                                 std::to_string(hi) + ")" + dtype_tag(dt);
        Generator gc(1234), gg(1234);
        gc.advance(7);  // a mid-stream position
        gg.advance(7);
        Tensor a = rand({n}, dt, Device::cpu(), &gc, lo, hi);
        Tensor b = rand({n}, dt, Device::cuda(0), &gg, lo, hi);
        CHECK(b.device() == Device::cuda(0));
        bit_diffs(name, a, b);
        CHECK_MESSAGE(gc.offset() == gg.offset(), name << ": generators advanced differently");
        // The next draw continues the same stream on both.
        bit_diffs(name + " second draw", rand({n}, dt, Device::cpu(), &gc, lo, hi),
                  rand({n}, dt, Device::cuda(0), &gg, lo, hi));
      }
}

TEST_CASE("cuda random: randn on the GPU is the shared Box-Muller recipe, bit for bit") {
  if (!gpu_or_skip()) return;
  using namespace nabla;
  // The device kernel against philox_box_muller (kernels/random.h) evaluated on this host.
  const int64_t n = 10001;
  for (DType dt : {DType::Float32, DType::Float64}) {
    Generator g(77);
    Tensor z = randn({n}, dt, Device::cuda(0), &g, 0.5, 2.0);
    std::vector<double> expect(static_cast<size_t>(n));
    if (dt == DType::Float32) {
      for (int64_t b = 0; b * 4 < n; ++b) {
        float u[4], z0, z1;
        philox_uniforms<float>(77, 0, b, u);
        for (int k = 0; k < 4; k += 2) {
          philox_box_muller<float>(u[k], u[k + 1], 0.5f, 2.0f, &z0, &z1);
          if (b * 4 + k < n) expect[size_t(b * 4 + k)] = z0;
          if (b * 4 + k + 1 < n) expect[size_t(b * 4 + k + 1)] = z1;
        }
      }
    } else {
      for (int64_t b = 0; b * 2 < n; ++b) {
        double u[2], z0, z1;
        philox_uniforms<double>(77, 0, b, u);
        philox_box_muller<double>(u[0], u[1], 0.5, 2.0, &z0, &z1);
        expect[size_t(b * 2)] = z0;
        if (b * 2 + 1 < n) expect[size_t(b * 2 + 1)] = z1;
      }
    }
    bit_diffs(std::string("randn against the host recipe") + dtype_tag(dt),
              from_vector<double>(expect, {n}).to(dt), z);
  }
}

TEST_CASE("cuda random: randn on the GPU is the CPU's stream, bit for bit") {
  if (!gpu_or_skip()) return;
  using namespace nabla;
  for (DType dt : {DType::Float32, DType::Float64})
    for (int64_t n : {1, 2, 3, 5, 1001, 100003}) {
      const std::string name = "randn n " + std::to_string(n) + dtype_tag(dt);
      Generator gc(99), gg(99);
      Tensor a = randn({n}, dt, Device::cpu(), &gc, -1.0, 3.0);
      Tensor b = randn({n}, dt, Device::cuda(0), &gg, -1.0, 3.0);
      bit_diffs(name, a, b);
      CHECK_MESSAGE(gc.offset() == gg.offset(), name << ": generators advanced differently");
    }
}

TEST_CASE("cuda dropout: the same seed draws the same mask as the CPU") {
  if (!gpu_or_skip()) return;
  using namespace nabla;
  for (DType dt : {DType::Float32, DType::Float64})
    for (double p : {0.1, 0.5, 0.9, 1.0})
      for (int64_t n : {7, 4099}) {
        const std::string name =
            "dropout p " + std::to_string(p) + " n " + std::to_string(n) + dtype_tag(dt);
        const Tensor x = uniform_values({n}, 60, -2, 2, dt);
        const Tensor r = uniform_values({n}, 61, -1, 1, dt);
        Tensor xc = x.clone().set_requires_grad(true);
        Tensor xg = x.to(Device::cuda(0)).set_requires_grad(true);
        Generator gc(5), gg(5);
        Tensor yc = dropout(xc, p, true, &gc), yg = dropout(xg, p, true, &gg);
        bit_diffs(name + " output", yc, yg);
        CHECK(gc.offset() == gg.offset());
        // dL/dx = r * mask: one product, the same bits.
        Tensor dc = grad({sum(mul(yc, r))}, {xc})[0];
        Tensor dg = grad({sum(mul(yg, r.to(Device::cuda(0))))}, {xg})[0];
        bit_diffs(name + " gradient", dc, dg);
      }
}

TEST_CASE("cuda optim: SGD, Adam and AdamW steps give the CPU's bits") {
  if (!gpu_or_skip()) return;
  using namespace nabla;
  using namespace nabla::optim;
  for (DType dt : {DType::Float32, DType::Float64})
    for (int config = 0; config < 8; ++config) {
      const std::string name = "config " + std::to_string(config) + dtype_tag(dt);
      // Two parameters per device, the second with no gradient on odd steps (it is skipped).
      std::vector<Tensor> pc = {uniform_values({37, 5}, 70, -1, 1, dt),
                                uniform_values({1001}, 71, -1, 1, dt)};
      std::vector<Tensor> pg = {pc[0].to(Device::cuda(0)), pc[1].to(Device::cuda(0))};
      for (Tensor& t : pc) t = t.clone().set_requires_grad(true);
      for (Tensor& t : pg) t.set_requires_grad(true);
      auto make = [&](std::vector<Tensor> ps) -> std::unique_ptr<Optimizer> {
        switch (config) {
          case 0:
            return std::make_unique<SGD>(ps, SGDOptions{0.1});
          case 1:
            return std::make_unique<SGD>(ps, SGDOptions{0.1, 0.9, 0.1, 1e-3});
          case 2:
            return std::make_unique<SGD>(ps, SGDOptions{0.05, 0.9, 0, 1e-2, true});
          case 3:
            return std::make_unique<Adam>(ps, AdamOptions{1e-2});
          case 4:
            return std::make_unique<Adam>(ps, AdamOptions{1e-2, 0.8, 0.99, 1e-6, 1e-2});
          case 5:
            return std::make_unique<AdamW>(ps, AdamWOptions{1e-2});
          case 6:
            return std::make_unique<AdamW>(ps, AdamWOptions{3e-3, 0.3, 0.9, 1e-8, 0.1});
          default:
            return std::make_unique<Adam>(ps, AdamOptions{1e-3, 0.0, 0.5, 1e-4, 0});
        }
      };
      std::unique_ptr<Optimizer> oc = make(pc), og = make(pg);
      for (int step = 0; step < 4; ++step) {
        oc->zero_grad();
        og->zero_grad();
        // L = sum_k dot(p_k, r_k) (+ p^2 terms): gradients that change from step to step.
        const size_t used = step % 2 ? 1 : 2;
        Tensor lc, lg;
        for (size_t k = 0; k < used; ++k) {
          const Tensor r = uniform_values(pc[k].shape(), uint64_t(80 + 10 * step + k), -1, 1, dt);
          Tensor tc = sum(add(mul(pc[k], r), mul(pc[k], pc[k])));
          Tensor tg = sum(add(mul(pg[k], r.to(Device::cuda(0))), mul(pg[k], pg[k])));
          lc = lc.defined() ? add(lc, tc) : tc;
          lg = lg.defined() ? add(lg, tg) : tg;
        }
        lc.backward();
        lg.backward();
        // The gradients themselves come from sums that may round differently on the GPU; feed
        // the CPU's gradient to both, so that only the step is compared.
        for (size_t k = 0; k < used; ++k) copy_(pg[k].grad(), pc[k].grad());
        oc->step();
        og->step();
        for (size_t k = 0; k < 2; ++k)
          bit_diffs(name + " step " + std::to_string(step) + " parameter " + std::to_string(k),
                    pc[k], pg[k]);
      }
      const StateList sc = oc->state(), sg = og->state();
      REQUIRE(sc.size() == sg.size());
      for (size_t i = 0; i < sc.size(); ++i) {
        CHECK(sc[i].first == sg[i].first);
        if (sc[i].second.dtype() != DType::Int64) {
          CHECK(sg[i].second.device() == Device::cuda(0));
          bit_diffs(name + " state " + sc[i].first, sc[i].second, sg[i].second);
        }
      }
    }
}

TEST_CASE("cuda optim: the step kernels on random state equal the CPU kernels") {
  if (!gpu_or_skip()) return;
#ifdef NABLA_HAVE_CUDA
  using namespace nabla;
  const int64_t n = 100003;
  for (DType dt : {DType::Float32, DType::Float64})
    for (int config = 0; config < 6; ++config) {
      const std::string name = "kernel config " + std::to_string(config) + dtype_tag(dt);
      Tensor p = uniform_values({n}, 90, -1, 1, dt), g = uniform_values({n}, 91, -1, 1, dt);
      Tensor m = uniform_values({n}, 92, -0.1, 0.1, dt), v = uniform_values({n}, 93, 0, 0.01, dt);
      Tensor pg = p.to(Device::cuda(0)), gg = g.to(Device::cuda(0));
      Tensor mg = m.to(Device::cuda(0)), vg = v.to(Device::cuda(0));
      if (dt == DType::Float32)
        step_both<float>(config, p, g, m, v, pg, gg, mg, vg);
      else
        step_both<double>(config, p, g, m, v, pg, gg, mg, vg);
      bit_diffs(name + " p", p, pg);
      bit_diffs(name + " buf / exp_avg", m, mg);
      if (config >= 3) bit_diffs(name + " exp_avg_sq", v, vg);
    }
#endif
}
