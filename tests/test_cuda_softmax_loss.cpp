// CPU/CUDA parity of softmax, log_softmax (kernels/cuda/softmax.cu) and the losses
// (kernels/cuda/loss.cu), at the op level: outputs and every input gradient, with new CUDA
// allocations filled with NaN (tests/cuda_parity.h).
//
//   1. softmax and log_softmax along every dim of a 4-d tensor (inner == 1: a block per row;
//      inner > 1: a thread per position), float32 and float64, a long row, and large logits;
//   2. cross_entropy and nll_loss on [N, C] logits (a warp per sample; C = 10 and C = 1000)
//      and on per-pixel [N, C, H, W] maps, with and without class weights, with ignore_index
//      (the default -100 and a class index), in every reduction mode; an invalid target throws
//      on the GPU as on the CPU, at the next host wait (in the call with sync checks), and a
//      training step waits for nothing (counted by the emulator);
//   3. binary_cross_entropy_with_logits (with and without a broadcast pos_weight), mse_loss and
//      l1_loss (inputs away from x == t), every reduction mode, gradients in input and target.
// Every case starts with gpu_or_skip(): without a GPU it prints why and passes.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <nabla/nabla.h>

#include "cuda_parity.h"

#ifdef NABLA_CUDA_EMU
#include <cuda_emu.h>
#endif

namespace {

using nabla::Device;
using nabla::DType;
using nabla::Reduction;
using nabla::Shape;
using nabla::Tensor;
using nabla::test::check_parity;
using nabla::test::gpu_or_skip;
using nabla::test::ParityOptions;

Tensor uniform_values(const Shape& s, uint64_t seed, double lo, double hi,
                      DType dt = DType::Float32) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(size_t(nabla::shape_numel(s)));
  for (double& e : v) e = dist(gen);
  return nabla::from_vector<double>(v, s).to(dt);
}

// Class indices in [0, C); every `ignore_every`-th position (when > 0) set to `ignore`.
Tensor targets(const Shape& s, int64_t C, uint64_t seed, int64_t ignore_every = 0,
               int64_t ignore = -100) {
  std::mt19937_64 gen(seed);
  std::vector<int64_t> v(size_t(nabla::shape_numel(s)));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = ignore_every > 0 && i % size_t(ignore_every) == 1 ? ignore : int64_t(gen() % C);
  return nabla::from_vector<int64_t>(v, s);
}

ParityOptions tolerance(DType dt) {
  ParityOptions o;
  if (dt == DType::Float64) {
    o.atol = 1e-12;
    o.rtol = 1e-11;
  }
  return o;
}

const char* dtype_tag(DType dt) {
  return dt == DType::Float32 ? " f32" : " f64";
}

}  // namespace

TEST_CASE("cuda softmax / log_softmax along every dim") {
  if (!gpu_or_skip()) return;
  using namespace nabla;
  for (DType dt : {DType::Float32, DType::Float64})
    for (bool log : {false, true})
      for (int64_t dim : {0, 1, 2, 3, -1}) {
        const std::string name = std::string(log ? "log_softmax" : "softmax") + " dim " +
                                 std::to_string(dim) + dtype_tag(dt);
        check_parity(
            name,
            [&](const std::vector<Tensor>& in) {
              return std::vector<Tensor>{log ? log_softmax(in[0], dim) : softmax(in[0], dim)};
            },
            {uniform_values({3, 7, 5, 4}, 10 + uint64_t(dim + 1), -3, 3, dt)}, tolerance(dt));
      }
}

TEST_CASE("cuda softmax / log_softmax: long rows and large logits") {
  if (!gpu_or_skip()) return;
  using namespace nabla;
  for (bool log : {false, true}) {
    const std::string name = log ? "log_softmax" : "softmax";
    auto f = [&](const std::vector<Tensor>& in) {
      return std::vector<Tensor>{log ? log_softmax(in[0], 1) : softmax(in[0], 1)};
    };
    // 3000 classes: 256 threads per row, each taking about 12 elements.
    check_parity(name + " [4, 3000]", f, {uniform_values({4, 3000}, 20, -5, 5)});
    // Logits in the thousands: the max subtraction keeps every exp finite.
    check_parity(name + " large logits", f, {uniform_values({6, 9}, 21, -3000, 3000)});
    // NCHW along the channels: a thread per pixel.
    check_parity(name + " NCHW dim 1", f, {uniform_values({2, 19, 9, 7}, 22, -4, 4)});
  }
}

TEST_CASE("cuda cross_entropy and nll_loss: [N, C] logits, weights, ignore_index, reductions") {
  if (!gpu_or_skip()) return;
  using namespace nabla;
  for (DType dt : {DType::Float32, DType::Float64})
    for (int64_t C : {10, 1000})
      for (bool weighted : {false, true})
        for (int64_t ignore : {int64_t(-100), int64_t(2)})
          for (Reduction r : {Reduction::None, Reduction::Sum, Reduction::Mean}) {
            const std::string name = "C " + std::to_string(C) + (weighted ? " weighted" : "") +
                                     " ignore " + std::to_string(ignore) + " " + reduction_name(r) +
                                     dtype_tag(dt);
            const Tensor x = uniform_values({37, C}, uint64_t(C), -4, 4, dt);
            const Tensor t = targets({37}, C, 5, 4, ignore);
            std::vector<Tensor> in = {x, t};
            if (weighted) in.push_back(uniform_values({C}, 6, 0.5, 2, dt));
            auto w = [&](const std::vector<Tensor>& v) { return weighted ? v[2] : Tensor(); };
            check_parity(
                "cross_entropy " + name,
                [&](const std::vector<Tensor>& v) {
                  return std::vector<Tensor>{cross_entropy(v[0], v[1], w(v), r, ignore)};
                },
                in, tolerance(dt));
            check_parity(
                "nll_loss " + name,
                [&](const std::vector<Tensor>& v) {
                  return std::vector<Tensor>{nll_loss(log_softmax(v[0], 1), v[1], w(v), r, ignore)};
                },
                in, tolerance(dt));
          }
}

TEST_CASE("cuda cross_entropy and nll_loss: per-pixel NCHW targets") {
  if (!gpu_or_skip()) return;
  using namespace nabla;
  for (DType dt : {DType::Float32, DType::Float64})
    for (bool weighted : {false, true})
      for (Reduction r : {Reduction::None, Reduction::Sum, Reduction::Mean}) {
        const std::string name =
            std::string(weighted ? "weighted " : "") + reduction_name(r) + dtype_tag(dt);
        const Tensor x = uniform_values({2, 5, 9, 7}, 30, -4, 4, dt);
        const Tensor t = targets({2, 9, 7}, 5, 31, 5);  // every 5th pixel ignored (-100)
        std::vector<Tensor> in = {x, t};
        if (weighted) in.push_back(uniform_values({5}, 32, 0.5, 2, dt));
        auto w = [&](const std::vector<Tensor>& v) { return weighted ? v[2] : Tensor(); };
        check_parity(
            "cross_entropy NCHW " + name,
            [&](const std::vector<Tensor>& v) {
              return std::vector<Tensor>{cross_entropy(v[0], v[1], w(v), r)};
            },
            in, tolerance(dt));
        check_parity(
            "nll_loss NCHW " + name,
            [&](const std::vector<Tensor>& v) {
              return std::vector<Tensor>{nll_loss(log_softmax(v[0], 1), v[1], w(v), r)};
            },
            in, tolerance(dt));
      }
}

TEST_CASE("cuda cross_entropy and nll_loss: an invalid target throws at the next wait, naming it") {
  if (!gpu_or_skip()) return;
  using namespace nabla;
  const Tensor x = uniform_values({4, 3, 2}, 40, -1, 1).to(Device::cuda(0));
  std::vector<int64_t> tv = {0, 1, 2, -100, 1, 0, 7, 2};  // 7 at position [3, 0]
  const Tensor t = from_vector<int64_t>(tv, {4, 2}).to(Device::cuda(0));
  tv[6] = 1;
  const Tensor valid = from_vector<int64_t>(tv, {4, 2}).to(Device::cuda(0));
  auto check_message = [](const std::string& msg, const char* op) {
    CHECK_MESSAGE(msg.find(op) != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("target value 7") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("[3, 0]") != std::string::npos, msg);
  };
  for (bool ce : {true, false}) {
    const char* op = ce ? "cross_entropy" : "nll_loss";
    CAPTURE(op);
    // The check runs on the device: the call returns, the first host wait reports it.
    Tensor loss = ce ? cross_entropy(x, t) : nll_loss(x, t);
    try {
      (void)loss.item<float>();
      FAIL("expected an error for the target 7");
    } catch (const Error& e) {
      check_message(e.what(), op);
    }
    // Reported once: the device and later calls are fine.
    CHECK(std::isfinite(cross_entropy(x, valid).item<float>()));
    // Synchronous checks report it from the call itself.
    set_sync_checks(true);
    try {
      (void)(ce ? cross_entropy(x, t) : nll_loss(x, t));
      set_sync_checks(false);
      FAIL("expected an error for the target 7 from the call");
    } catch (const Error& e) {
      set_sync_checks(false);
      check_message(e.what(), op);
    }
  }
}

TEST_CASE("cuda cross_entropy and nll_loss: a training step makes the host wait for nothing") {
  if (!gpu_or_skip()) return;
#ifdef NABLA_CUDA_EMU
  using namespace nabla;
  const Tensor x0 = uniform_values({16, 10}, 41, -1, 1).to(Device::cuda(0));
  const Tensor t = targets({16}, 10, 42, 0, -100).to(Device::cuda(0));
  Tensor x = x0.clone().detach();
  x.set_requires_grad(true);
  const int64_t waits = cuda_emu::host_syncs();
  for (int step = 0; step < 3; ++step) {
    Tensor loss =
        add(cross_entropy(x, t), nll_loss(log_softmax(x, 1), t, Tensor(), Reduction::Sum));
    loss.backward();
  }
  CHECK(cuda_emu::host_syncs() == waits);
  CHECK(x.grad().to(Device::cpu()).numel() == 160);  // now the host waits, and all is well
#else
  MESSAGE("skipped: counting the host's waits needs the CUDA emulator's runtime");
#endif
}

TEST_CASE("cuda bce_with_logits, mse_loss, l1_loss: every reduction, input and target grads") {
  if (!gpu_or_skip()) return;
  using namespace nabla;
  for (DType dt : {DType::Float32, DType::Float64})
    for (Reduction r : {Reduction::None, Reduction::Sum, Reduction::Mean}) {
      const std::string tag = std::string(" ") + reduction_name(r) + dtype_tag(dt);
      // Logits up to +-30: both branches of the overflow-free forms.
      const Tensor x = uniform_values({6, 4, 5}, 50, -30, 30, dt);
      const Tensor t = uniform_values({6, 4, 5}, 51, 0, 1, dt);
      check_parity(
          "bce_with_logits" + tag,
          [&](const std::vector<Tensor>& v) {
            return std::vector<Tensor>{binary_cross_entropy_with_logits(v[0], v[1], Tensor(), r)};
          },
          {x, t}, tolerance(dt));
      check_parity(
          "bce_with_logits pos_weight" + tag,
          [&](const std::vector<Tensor>& v) {
            return std::vector<Tensor>{binary_cross_entropy_with_logits(v[0], v[1], v[2], r)};
          },
          {x, t, uniform_values({5}, 52, 0.5, 3, dt)}, tolerance(dt));
      // t = x + d with |d| >= 0.1: never at l1's kink.
      const Tensor a = uniform_values({6, 4, 5}, 53, -2, 2, dt);
      std::vector<double> dv =
          uniform_values({120}, 54, 0.1, 1, DType::Float64).to_vector<double>();
      for (size_t i = 0; i < dv.size(); i += 2) dv[i] = -dv[i];
      const Tensor b = add(a, from_vector<double>(dv, {6, 4, 5}).to(dt));
      check_parity(
          "mse_loss" + tag,
          [&](const std::vector<Tensor>& v) {
            return std::vector<Tensor>{mse_loss(v[0], v[1], r)};
          },
          {a, b}, tolerance(dt));
      check_parity(
          "l1_loss" + tag,
          [&](const std::vector<Tensor>& v) { return std::vector<Tensor>{l1_loss(v[0], v[1], r)}; },
          {a, b}, tolerance(dt));
    }
}
