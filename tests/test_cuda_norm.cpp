// CUDA batch_norm2d and instance_norm2d (kernels/cuda/norm.cu) against the CPU: op-level
// parity of outputs and of the gradients of x, weight and bias, in training and eval mode,
// with and without the affine parameters, in float and double; the running statistics after
// training steps; and bit-identical repeat runs on the GPU.
//
// Shapes: batch 1, odd H and W, channel counts that are not multiples of a warp, 1x1 planes
// (the [N, C, 1, 1] case of a norm after global pooling), groups large enough to be cut into
// several slices (several blocks per group), and the FashionCNN/U-Net activation sizes.
// Tolerances: the GPU computes the statistics by Welford merges and tree sums where the CPU
// runs two sequential passes, all in double; the float32 results then differ in the last bits
// of mean and invstd, and y, dx, dw, db by a few float ulps (times sqrt(M) for the sums dw and
// db): 1e-4 absolute and relative covers it with margin. float64 agrees to about 1e-12.
// Every case starts with gpu_or_skip(): without a GPU it prints why and passes.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <nabla/nabla.h>

#include "cuda_parity.h"

namespace {

using namespace nabla;
using nabla::test::check_parity;
using nabla::test::count_mismatches;
using nabla::test::gpu_or_skip;
using nabla::test::ParityOptions;

struct NormShape {
  const char* name;
  int64_t N, C, H, W;
};

// clang-format off
const NormShape kShapes[] = {
    {"batch 1, odd H/W",              1,  3,  5,  7},
    {"channels 5, 9x11",              4,  5,  9, 11},
    {"channels 33 (not a warp), 7x7", 2, 33,  7,  7},
    {"1x1 planes",                    9,  6,  1,  1},
    {"several slices per channel",    8,  3, 32, 33},
    {"FashionCNN conv1 activations",  4, 32, 28, 28},
    {"U-Net level 3 activations",     2, 128, 16, 16},
};
// clang-format on

ParityOptions tolerance(DType dt) {
  ParityOptions o;
  if (dt == DType::Float64) {
    o.atol = 1e-10;
    o.rtol = 1e-10;
  } else {
    o.atol = 1e-4;
    o.rtol = 1e-4;
  }
  return o;
}

std::string label(const char* op, const NormShape& s, DType dt, const char* mode) {
  return std::string(op) + " [" + std::to_string(s.N) + "," + std::to_string(s.C) + "," +
         std::to_string(s.H) + "," + std::to_string(s.W) + "] " + s.name + " " +
         (dt == DType::Float64 ? "f64 " : "f32 ") + mode;
}

// Bitwise equality of two tensors (NaN payloads aside), on the host.
void check_same_bits(const std::string& what, const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  Tensor ha = a.to(Device::cpu()).to(DType::Float64), hb = b.to(Device::cpu()).to(DType::Float64);
  const std::vector<double> va = ha.to_vector<double>(), vb = hb.to_vector<double>();
  int64_t bad = 0;
  for (size_t i = 0; i < va.size(); ++i)
    if (std::memcmp(&va[i], &vb[i], sizeof(double)) != 0 && !(va[i] != va[i] && vb[i] != vb[i]))
      ++bad;
  CHECK_MESSAGE(bad == 0, what << ": " << bad << " of " << va.size() << " elements differ");
}

}  // namespace

TEST_CASE("cuda batch_norm2d: training-mode parity, with and without affine parameters") {
  if (!gpu_or_skip()) return;
  for (DType dt : {DType::Float32, DType::Float64})
    for (const NormShape& s : kShapes) {
      Generator gen(11);
      // An offset mean: the statistics must not cancel (E[x^2] - E[x]^2 would).
      Tensor x = rand({s.N, s.C, s.H, s.W}, dt, Device::cpu(), &gen, 2, 4);
      Tensor w = rand({s.C}, dt, Device::cpu(), &gen, 0.5, 1.5);
      Tensor b = randn({s.C}, dt, Device::cpu(), &gen);
      check_parity(
          label("batch_norm2d", s, dt, "affine"),
          [](const std::vector<Tensor>& v) {
            return std::vector<Tensor>{
                batch_norm2d(v[0], v[1], v[2], Tensor(), Tensor(), true, 0.1, 1e-5)};
          },
          {x, w, b}, tolerance(dt));
      check_parity(
          label("batch_norm2d", s, dt, "no affine"),
          [](const std::vector<Tensor>& v) {
            return std::vector<Tensor>{
                batch_norm2d(v[0], Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-3)};
          },
          {x}, tolerance(dt));
      // Weight only and bias only: the backward asks norm_backward_weight for one of the two.
      check_parity(
          label("batch_norm2d", s, dt, "weight only"),
          [](const std::vector<Tensor>& v) {
            return std::vector<Tensor>{
                batch_norm2d(v[0], v[1], Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5)};
          },
          {x, w}, tolerance(dt));
      check_parity(
          label("batch_norm2d", s, dt, "bias only"),
          [](const std::vector<Tensor>& v) {
            return std::vector<Tensor>{
                batch_norm2d(v[0], Tensor(), v[1], Tensor(), Tensor(), true, 0.1, 1e-5)};
          },
          {x, b}, tolerance(dt));
    }
}

TEST_CASE("cuda batch_norm2d: running statistics after training steps match the CPU") {
  if (!gpu_or_skip()) return;
  for (DType dt : {DType::Float32, DType::Float64})
    for (const NormShape& s : kShapes) {
      Generator gen(21);
      Tensor rm_c = randn({s.C}, dt, Device::cpu(), &gen);
      Tensor rv_c = rand({s.C}, dt, Device::cpu(), &gen, 0.5, 1.5);
      Tensor rm_g = rm_c.to(Device::cuda(0)), rv_g = rv_c.to(Device::cuda(0));
      Tensor w = rand({s.C}, dt, Device::cpu(), &gen, 0.5, 1.5);
      Tensor b = randn({s.C}, dt, Device::cpu(), &gen);
      // Two steps with different batches and momenta: the update reads what it wrote.
      for (double momentum : {0.1, 0.5}) {
        Tensor x = rand({s.N, s.C, s.H, s.W}, dt, Device::cpu(), &gen, -1, 3);
        Tensor yc = batch_norm2d(x, w, b, rm_c, rv_c, true, momentum, 1e-5);
        Tensor yg = batch_norm2d(x.to(Device::cuda(0)), w.to(Device::cuda(0)),
                                 b.to(Device::cuda(0)), rm_g, rv_g, true, momentum, 1e-5);
        const ParityOptions o = tolerance(dt);
        const std::string what = label("batch_norm2d", s, dt, "running stats");
        count_mismatches(what + " y", yc, yg, o.atol, o.rtol);
        count_mismatches(what + " running_mean", rm_c, rm_g, o.atol, o.rtol);
        count_mismatches(what + " running_var", rv_c, rv_g, o.atol, o.rtol);
      }
    }
}

TEST_CASE("cuda batch_norm2d: eval-mode parity (running statistics fixed)") {
  if (!gpu_or_skip()) return;
  for (DType dt : {DType::Float32, DType::Float64})
    for (const NormShape& s : kShapes) {
      Generator gen(31);
      Tensor x = randn({s.N, s.C, s.H, s.W}, dt, Device::cpu(), &gen);
      Tensor w = rand({s.C}, dt, Device::cpu(), &gen, 0.5, 1.5);
      Tensor b = randn({s.C}, dt, Device::cpu(), &gen);
      const Tensor rm_c = randn({s.C}, dt, Device::cpu(), &gen);
      const Tensor rv_c = rand({s.C}, dt, Device::cpu(), &gen, 0.5, 1.5);
      const Tensor rm_g = rm_c.to(Device::cuda(0)), rv_g = rv_c.to(Device::cuda(0));
      // The running statistics live on the device of the inputs check_parity hands in.
      auto stats = [&](const Tensor& like, bool var) {
        if (like.device().is_cuda()) return var ? rv_g : rm_g;
        return var ? rv_c : rm_c;
      };
      check_parity(
          label("batch_norm2d", s, dt, "eval, affine"),
          [&](const std::vector<Tensor>& v) {
            return std::vector<Tensor>{batch_norm2d(v[0], v[1], v[2], stats(v[0], false),
                                                    stats(v[0], true), false, 0.1, 1e-5)};
          },
          {x, w, b}, tolerance(dt));
      check_parity(
          label("batch_norm2d", s, dt, "eval, no affine"),
          [&](const std::vector<Tensor>& v) {
            return std::vector<Tensor>{batch_norm2d(v[0], Tensor(), Tensor(), stats(v[0], false),
                                                    stats(v[0], true), false, 0.1, 1e-5)};
          },
          {x}, tolerance(dt));
    }
}

TEST_CASE("cuda instance_norm2d: parity with and without affine parameters") {
  if (!gpu_or_skip()) return;
  for (DType dt : {DType::Float32, DType::Float64})
    for (const NormShape& s : kShapes) {
      if (s.H * s.W < 2) continue;  // instance norm needs more than one element per plane
      Generator gen(41);
      Tensor x = rand({s.N, s.C, s.H, s.W}, dt, Device::cpu(), &gen, -1, 3);
      Tensor w = rand({s.C}, dt, Device::cpu(), &gen, 0.5, 1.5);
      Tensor b = randn({s.C}, dt, Device::cpu(), &gen);
      check_parity(
          label("instance_norm2d", s, dt, "affine"),
          [](const std::vector<Tensor>& v) {
            return std::vector<Tensor>{instance_norm2d(v[0], v[1], v[2], 1e-5)};
          },
          {x, w, b}, tolerance(dt));
      check_parity(
          label("instance_norm2d", s, dt, "no affine"),
          [](const std::vector<Tensor>& v) { return std::vector<Tensor>{instance_norm2d(v[0])}; },
          {x}, tolerance(dt));
    }
}

TEST_CASE("cuda batch_norm2d: two runs give the same bits, in both determinism modes") {
  if (!gpu_or_skip()) return;
  const Device g = Device::cuda(0);
  for (bool det : {false, true}) {
    const bool prev = deterministic();
    set_deterministic(det);
    Generator gen(51);
    // Large enough that every channel is cut into several slices (several blocks).
    Tensor x = rand({16, 8, 40, 40}, DType::Float32, Device::cpu(), &gen, -1, 3).to(g);
    Tensor w = rand({8}, DType::Float32, Device::cpu(), &gen, 0.5, 1.5).to(g);
    Tensor b = randn({8}, DType::Float32, Device::cpu(), &gen).to(g);
    Tensor r = randn({16, 8, 40, 40}, DType::Float32, Device::cpu(), &gen).to(g);
    auto run = [&] {
      Tensor xl = x.detach().clone().set_requires_grad(true);
      Tensor wl = w.detach().clone().set_requires_grad(true);
      Tensor bl = b.detach().clone().set_requires_grad(true);
      Tensor y = batch_norm2d(xl, wl, bl, Tensor(), Tensor(), true);
      std::vector<Tensor> gr = grad({sum(mul(y, r))}, {xl, wl, bl});
      gr.insert(gr.begin(), y);
      return gr;
    };
    std::vector<Tensor> a = run(), c = run();
    for (size_t i = 0; i < a.size(); ++i)
      check_same_bits(
          std::string("repeat run, output ") + std::to_string(i) + (det ? " (deterministic)" : ""),
          a[i], c[i]);
    set_deterministic(prev);
  }
}
