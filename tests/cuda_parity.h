// CPU/CUDA parity checks (DESIGN.md, testing habit 3), shared by the test_cuda_*.cpp files.
//
//   if (!gpu_or_skip()) return;      // first line of every CUDA test case: without a GPU the
//                                    // case prints "skipped: ..." and passes, never fails
//   check_parity("conv2d", f, {x, w, b});
//
// check_parity runs f on the CPU inputs and on copies on cuda:0, with every new CUDA
// allocation filled with NaN (set_debug_fill, restored on the way out), so an output element a
// kernel never writes shows up. It compares every output, then the gradients of L = sum_k
// dot(out_k, R_k) (R_k fixed random) with respect to every floating input, and reports the first
// mismatches: |gpu - cpu| <= atol + rtol * |cpu|. Integer inputs (labels) are moved, not
// differentiated.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <nabla/nabla.h>

namespace nabla::test {

inline bool gpu_or_skip() {
  if (cuda_available()) return true;
#ifdef NABLA_HAVE_CUDA
  MESSAGE("skipped: no CUDA GPU on this machine (the CUDA build compiled; nothing ran)");
#else
  MESSAGE("skipped: nabla was built without the CUDA backend");
#endif
  return false;
}

struct ParityOptions {
  double atol = 1e-5, rtol = 1e-4;  // float32 defaults; reductions over many terms need more
  bool backward = true;
  uint64_t seed = 99;
};

// Counts elements outside tolerance (NaN on one side only counts; NaN on both does not) and
// reports the first few.
inline int64_t count_mismatches(const std::string& what, const Tensor& cpu, const Tensor& gpu,
                                double atol, double rtol) {
  REQUIRE_MESSAGE(cpu.shape() == gpu.shape(), what << ": shape " << shape_str(cpu.shape())
                                                   << " on the CPU, " << shape_str(gpu.shape())
                                                   << " on the GPU");
  std::vector<double> a = cpu.to(Device::cpu()).to(DType::Float64).to_vector<double>();
  std::vector<double> b = gpu.to(Device::cpu()).to(DType::Float64).to_vector<double>();
  int64_t bad = 0;
  std::ostringstream os;
  for (size_t i = 0; i < a.size(); ++i) {
    const bool both_nan = std::isnan(a[i]) && std::isnan(b[i]);
    const bool ok = both_nan || std::abs(b[i] - a[i]) <= atol + rtol * std::abs(a[i]);
    if (!ok && bad++ < 8) os << "\n  [" << i << "] cpu " << a[i] << "  gpu " << b[i];
  }
  if (bad)
    FAIL_CHECK(what << ": " << bad << " of " << a.size() << " elements differ (atol " << atol
                    << ", rtol " << rtol << ")" << os.str());
  return bad;
}

using ParityFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

// Turns on debug fill (every new CUDA block reads as NaN) for its lifetime and then restores
// the previous setting, also when a check inside fails: a failed REQUIRE throws through it.
class DebugFillGuard {
 public:
  DebugFillGuard() : prev_(debug_fill()) { set_debug_fill(true); }
  ~DebugFillGuard() { set_debug_fill(prev_); }
  DebugFillGuard(const DebugFillGuard&) = delete;
  DebugFillGuard& operator=(const DebugFillGuard&) = delete;

 private:
  bool prev_;
};

inline void check_parity(const std::string& name, const ParityFn& f,
                         const std::vector<Tensor>& inputs, ParityOptions o = {}) {
  DebugFillGuard fill;
  auto leaves = [&](Device d) {
    std::vector<Tensor> v;
    for (const Tensor& t : inputs) {
      Tensor c = t.detach().to(d).clone().detach();
      if (o.backward && c.dtype() != DType::Int64) c.set_requires_grad(true);
      v.push_back(c);
    }
    return v;
  };
  std::vector<Tensor> xc = leaves(Device::cpu()), xg = leaves(Device::cuda(0));
  std::vector<Tensor> yc = f(xc), yg = f(xg);
  REQUIRE(yc.size() == yg.size());
  for (size_t k = 0; k < yc.size(); ++k)
    count_mismatches(name + " output " + std::to_string(k), yc[k], yg[k], o.atol, o.rtol);
  if (o.backward) {
    Generator gen(o.seed);
    Tensor lc, lg;
    for (size_t k = 0; k < yc.size(); ++k) {
      if (yc[k].dtype() == DType::Int64 || !yc[k].requires_grad()) continue;
      Tensor r = randn(yc[k].shape(), yc[k].dtype(), Device::cpu(), &gen);
      Tensor tc = sum(mul(yc[k], r)), tg = sum(mul(yg[k], r.to(Device::cuda(0))));
      lc = lc.defined() ? add(lc, tc) : tc;
      lg = lg.defined() ? add(lg, tg) : tg;
    }
    std::vector<Tensor> wc, wg;
    for (size_t i = 0; i < xc.size(); ++i)
      if (xc[i].requires_grad()) {
        wc.push_back(xc[i]);
        wg.push_back(xg[i]);
      }
    if (lc.defined() && !wc.empty()) {
      std::vector<Tensor> gc = grad({lc}, wc), gg = grad({lg}, wg);
      for (size_t i = 0; i < gc.size(); ++i)
        count_mismatches(name + " gradient of input " + std::to_string(i), gc[i], gg[i], o.atol,
                         o.rtol);
    }
  }
  synchronize(Device::cuda(0));
}

}  // namespace nabla::test
