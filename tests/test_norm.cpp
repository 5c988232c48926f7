// Normalization ops: hand-computed batch and instance norm, running statistics, eval mode,
// gradient checks for x, weight and bias, the split backward, and error messages.
#include <cmath>

#include <nabla/ops/norm.h>

#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;

namespace {

// batch_norm2d built from primitive ops, for cross-checks: statistics over dims {0, 2, 3}.
Tensor batch_norm_composite(const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
  const int64_t C = x.size(1);
  Tensor m = mean(x, {0, 2, 3}, true);
  Tensor v = var(x, {0, 2, 3}, 0, true);
  Tensor y = div(sub(x, m), sqrt(add(v, eps)));
  return add(mul(y, w.reshape({1, C, 1, 1})), b.reshape({1, C, 1, 1}));
}

}  // namespace

TEST_CASE("batch_norm2d: hand-computed [2,1,1,2] in training mode, with running statistics") {
  // One channel holding 1, 3 (sample 0) and 5, 7 (sample 1): mean 4, biased variance
  // (9 + 1 + 1 + 9)/4 = 5, unbiased variance 20/3.
  Tensor x = tensor({1, 3, 5, 7}, {2, 1, 1, 2});
  Tensor w = tensor({2}, {1}), b = tensor({0.5}, {1});
  Tensor rm = tensor({0}, {1}), rv = tensor({1}, {1});
  Tensor y = batch_norm2d(x, w, b, rm, rv, true, 0.1, 0.0);
  CHECK(y.shape() == Shape{2, 1, 1, 2});
  const double s5 = std::sqrt(5.0);
  check_close(y, {2 * -3 / s5 + 0.5, 2 * -1 / s5 + 0.5, 2 * 1 / s5 + 0.5, 2 * 3 / s5 + 0.5});
  // running = 0.9 * running + 0.1 * stat, with the unbiased variance.
  check_close(rm, {0.1 * 4});
  check_close(rv, {0.9 * 1 + 0.1 * 20.0 / 3.0});
  // A second step compounds.
  batch_norm2d(x, w, b, rm, rv, true, 0.1, 0.0);
  check_close(rm, {0.9 * 0.4 + 0.1 * 4});
  check_close(rv, {0.9 * (0.9 + 0.1 * 20.0 / 3.0) + 0.1 * 20.0 / 3.0});

  // Without affine parameters and with the default eps.
  Tensor y2 = batch_norm2d(x, Tensor(), Tensor(), Tensor(), Tensor(), true);
  const double s = std::sqrt(5.0 + 1e-5);
  check_close(y2, {-3 / s, -1 / s, 1 / s, 3 / s});
}

TEST_CASE("batch_norm2d: channels are normalized separately, momentum is honoured") {
  // x [2, 2, 1, 2]: channel 0 holds 1, 3, 5, 7; channel 1 holds 0, 0, 2, 2 (mean 1, var 1).
  Tensor x = tensor({1, 3, 0, 0, 5, 7, 2, 2}, {2, 2, 1, 2});
  Tensor w = tensor({1, 3}, {2}), b = tensor({0, -1}, {2});
  Tensor rm = tensor({1, 2}, {2}), rv = tensor({1, 2}, {2});
  Tensor y = batch_norm2d(x, w, b, rm, rv, true, 0.25, 0.0);
  const double s5 = std::sqrt(5.0);
  check_close(y, {-3 / s5, -1 / s5, -4, -4, 1 / s5, 3 / s5, 2, 2});
  check_close(rm, {0.75 * 1 + 0.25 * 4, 0.75 * 2 + 0.25 * 1});
  check_close(rv, {0.75 * 1 + 0.25 * 20.0 / 3.0, 0.75 * 2 + 0.25 * 4.0 / 3.0});
}

TEST_CASE("batch_norm2d: eval mode is the affine map of the running statistics") {
  Tensor x = tensor({0, 2, -1, 1, 3, 5, 0.5, -0.5}, {2, 2, 1, 2});
  Tensor rm = tensor({1, -1}, {2}), rv = tensor({4, 0.25}, {2});
  Tensor w = tensor({2, 3}, {2}), b = tensor({0, 1}, {2});
  Tensor y = batch_norm2d(x, w, b, rm, rv, false, 0.1, 0.0);
  // channel 0: 2 (x - 1)/2 = x - 1; channel 1: 3 (x + 1)/0.5 + 1 = 6 (x + 1) + 1.
  check_close(y, {-1, 1, 1, 13, 2, 4, 10, 4});
  // Eval leaves the running statistics alone.
  check_close(rm, {1, -1});
  check_close(rv, {4, 0.25});
  // Default eps, no affine.
  Tensor y2 = batch_norm2d(x, Tensor(), Tensor(), rm, rv, false);
  const double s0 = std::sqrt(4 + 1e-5), s1 = std::sqrt(0.25 + 1e-5);
  check_close(y2, {-1 / s0, 1 / s0, 0 / s1, 2 / s1, 2 / s0, 4 / s0, 1.5 / s1, 0.5 / s1});
}

TEST_CASE("instance_norm2d: hand-computed planes") {
  // x [2, 2, 2, 2]; every (n, c) plane has its own statistics.
  //   (0,0): 1 2 3 4   mean 2.5, var 1.25     (0,1): 2 2 4 4   mean 3, var 1
  //   (1,0): 0 0 0 8   mean 2,   var 12       (1,1): 5 5 5 7   mean 5.5, var 0.75
  Tensor x = tensor({1, 2, 3, 4, 2, 2, 4, 4, 0, 0, 0, 8, 5, 5, 5, 7}, {2, 2, 2, 2});
  Tensor w = tensor({1, 2}, {2}), b = tensor({0, -1}, {2});
  Tensor y = instance_norm2d(x, w, b, 0.0);
  const double a = std::sqrt(1.25), c = std::sqrt(12.0), e = std::sqrt(0.75);
  check_close(y, {-1.5 / a, -0.5 / a, 0.5 / a, 1.5 / a, -3, -3, 1, 1,  //
                  -2 / c, -2 / c, -2 / c, 6 / c,                       //
                  2 * -0.5 / e - 1, 2 * -0.5 / e - 1, 2 * -0.5 / e - 1, 2 * 1.5 / e - 1});
  Tensor y2 = instance_norm2d(x);  // no affine, eps 1e-5
  const double s = std::sqrt(1 + 1e-5);
  std::vector<double> v = y2.to_vector<double>();
  CHECK(v[4] == doctest::Approx(-1 / s).epsilon(1e-6));
  CHECK(v[7] == doctest::Approx(1 / s).epsilon(1e-6));
}

TEST_CASE("batch_norm2d and instance_norm2d: float32 statistics survive a large mean") {
  // Values near 1000 with spread ~1: E[x^2] - E[x]^2 would lose all digits in float.
  Tensor x64 = add(uniform({4, 3, 5, 5}, -1, 1, 21), 1000.0);
  Tensor x32 = x64.to(DType::Float32);
  Tensor rm = zeros({3}), rv = ones({3});
  Tensor y32 = batch_norm2d(x32, Tensor(), Tensor(), rm, rv, true);
  Tensor y64 = batch_norm2d(x64, Tensor(), Tensor(), Tensor(), Tensor(), true);
  check_close(y32, y64, 1e-3, 1e-3);
  check_close(instance_norm2d(x32), instance_norm2d(x64), 1e-3, 1e-3);
}

TEST_CASE("batch_norm2d: matches the composite of primitive ops, forward and gradients") {
  Tensor x = uniform({3, 2, 3, 2}, -2, 2, 31).set_requires_grad(true);
  Tensor w = uniform({2}, 0.5, 1.5, 32).set_requires_grad(true);
  Tensor b = uniform({2}, -1, 1, 33).set_requires_grad(true);
  Tensor R = uniform({3, 2, 3, 2}, -1, 1, 34);
  Tensor y = batch_norm2d(x, w, b, Tensor(), Tensor(), true, 0.1, 1e-3);
  Tensor yr = batch_norm_composite(x, w, b, 1e-3);
  check_close(y, yr, 1e-12, 1e-10);
  auto g = grad({sum(mul(y, R))}, {x, w, b});
  auto gr = grad({sum(mul(yr, R))}, {x, w, b});
  for (size_t i = 0; i < 3; ++i) check_close(g[i], gr[i], 1e-10, 1e-8);
  // The training dx has no component along a per-channel constant (see docs/backprop.md).
  check_close(sum(g[0], {0, 2, 3}), {0, 0}, 1e-12, 0);
}

TEST_CASE("batch_norm2d and instance_norm2d: the threaded path matches the composite") {
  // 8*4*24*24 elements: above the kernels' threading threshold.
  Tensor x = uniform({8, 4, 24, 24}, -2, 2, 35).set_requires_grad(true);
  Tensor w = uniform({4}, 0.5, 1.5, 36), b = uniform({4}, -1, 1, 37);
  Tensor R = uniform({8, 4, 24, 24}, -1, 1, 38);
  Tensor y = batch_norm2d(x, w, b, Tensor(), Tensor(), true);
  Tensor yr = batch_norm_composite(x, w, b, 1e-5);
  check_close(y, yr, 1e-12, 1e-10);
  check_close(grad({sum(mul(y, R))}, {x})[0], grad({sum(mul(yr, R))}, {x})[0], 1e-10, 1e-8);
  // Instance norm of [N, C, H, W] is batch norm of [1, N*C, H, W].
  Tensor yi = instance_norm2d(x);
  Tensor yb =
      batch_norm2d(x.reshape({1, 32, 24, 24}), Tensor(), Tensor(), Tensor(), Tensor(), true);
  check_close(yi, yb.reshape({8, 4, 24, 24}), 1e-12, 1e-10);
  check_close(grad({sum(mul(yi, R))}, {x})[0],
              grad({sum(mul(yb.reshape({8, 4, 24, 24}), R))}, {x})[0], 1e-12, 1e-10);
}

TEST_CASE("batch_norm2d: gradient checks for x, weight and bias (training)") {
  Tensor x = uniform({3, 2, 2, 3}, -2, 2, 41);
  Tensor w = uniform({2}, 0.5, 1.5, 42), b = uniform({2}, -1, 1, 43);
  // The running statistics are updated on every evaluation; training outputs ignore them.
  Tensor rm = zeros({2}, DType::Float64), rv = ones({2}, DType::Float64);
  CHECK(gradcheck(
      [&](const auto& v) { return batch_norm2d(v[0], v[1], v[2], rm, rv, true, 0.1, 1e-3); },
      {x, w, b}));
  CHECK(gradcheck(
      [](const auto& v) {
        return batch_norm2d(v[0], Tensor(), Tensor(), Tensor(), Tensor(), true);
      },
      {x}));
  CHECK(gradcheck(
      [](const auto& v) { return batch_norm2d(v[0], v[1], Tensor(), Tensor(), Tensor(), true); },
      {x, w}));
  CHECK(gradcheck(
      [](const auto& v) { return batch_norm2d(v[0], Tensor(), v[1], Tensor(), Tensor(), true); },
      {x, b}));
}

TEST_CASE("batch_norm2d: gradient checks for x, weight and bias (eval)") {
  Tensor x = uniform({2, 3, 2, 2}, -2, 2, 51);
  Tensor w = uniform({3}, 0.5, 1.5, 52), b = uniform({3}, -1, 1, 53);
  Tensor rm = uniform({3}, -0.5, 0.5, 54), rv = uniform({3}, 0.5, 2, 55);
  CHECK(gradcheck([&](const auto& v) { return batch_norm2d(v[0], v[1], v[2], rm, rv, false); },
                  {x, w, b}));
  CHECK(gradcheck(
      [&](const auto& v) { return batch_norm2d(v[0], Tensor(), Tensor(), rm, rv, false); }, {x}));
}

TEST_CASE("instance_norm2d: gradient checks for x, weight and bias") {
  Tensor x = uniform({2, 3, 2, 3}, -2, 2, 61);
  Tensor w = uniform({3}, 0.5, 1.5, 62), b = uniform({3}, -1, 1, 63);
  CHECK(
      gradcheck([](const auto& v) { return instance_norm2d(v[0], v[1], v[2], 1e-3); }, {x, w, b}));
  CHECK(gradcheck([](const auto& v) { return instance_norm2d(v[0]); }, {x}));
}

TEST_CASE("batch_norm2d and instance_norm2d: only the asked gradients are computed") {
  Tensor x = uniform({2, 3, 2, 2}, -1, 1, 71).to(DType::Float32).set_requires_grad(true);
  Tensor w = ones({3}).set_requires_grad(true), b = zeros({3}).set_requires_grad(true);
  Tensor rm = zeros({3}), rv = ones({3});
  auto loss = [&](bool training) {
    return sum(mul(batch_norm2d(x, w, b, rm, rv, training), x.detach()));
  };

  reset_kernel_counts();
  grad({loss(true)}, {x});
  CHECK(kernel_count("batch_norm2d_forward") == 1);
  CHECK(kernel_count("batch_norm2d_backward_reduce") == 1);
  CHECK(kernel_count("batch_norm2d_backward_input") == 1);
  CHECK(kernel_count("batch_norm2d_backward_weight") == 0);

  reset_kernel_counts();
  grad({loss(true)}, {w});
  CHECK(kernel_count("batch_norm2d_backward_reduce") == 1);
  CHECK(kernel_count("batch_norm2d_backward_input") == 0);
  CHECK(kernel_count("batch_norm2d_backward_weight") == 1);

  // Eval: dx = dy * w * invstd needs no reduction at all.
  reset_kernel_counts();
  grad({loss(false)}, {x});
  CHECK(kernel_count("batch_norm2d_forward_eval") == 1);
  CHECK(kernel_count("batch_norm2d_backward_reduce") == 0);
  CHECK(kernel_count("batch_norm2d_backward_input") == 1);
  CHECK(kernel_count("batch_norm2d_backward_weight") == 0);

  reset_kernel_counts();
  grad({sum(mul(instance_norm2d(x, w, b), x.detach()))}, {x});
  CHECK(kernel_count("instance_norm2d_forward") == 1);
  CHECK(kernel_count("instance_norm2d_backward_input") == 1);
  CHECK(kernel_count("instance_norm2d_backward_weight") == 0);

  // backward() on everything runs each part once, and the engine accumulates into .grad.
  reset_kernel_counts();
  loss(true).backward();
  loss(true).backward();
  CHECK(kernel_count("batch_norm2d_backward_reduce") == 2);
  CHECK(kernel_count("batch_norm2d_backward_input") == 2);
  CHECK(kernel_count("batch_norm2d_backward_weight") == 2);
  Tensor gb = grad({loss(true)}, {b})[0];
  check_close(b.grad(), mul(gb, 2.0));
}

TEST_CASE("batch_norm2d: the eval backward uses the statistics of its own forward") {
  Tensor x = uniform({2, 2, 2, 2}, -1, 1, 81).set_requires_grad(true);
  Tensor w = uniform({2}, 0.5, 1.5, 82).set_requires_grad(true);
  Tensor rm = uniform({2}, -0.5, 0.5, 83), rv = uniform({2}, 0.5, 2, 84);
  Tensor L = sum(mul(batch_norm2d(x, w, Tensor(), rm, rv, false), x.detach()));
  auto expected = grad({L}, {x, w}, {}, true);
  // A training step now changes the running statistics in place.
  batch_norm2d(x.detach(), Tensor(), Tensor(), rm, rv, true, 0.9);
  auto after = grad({L}, {x, w});
  check_close(after[0], expected[0], 0, 0);
  check_close(after[1], expected[1], 0, 0);
}

TEST_CASE("batch_norm2d and instance_norm2d: errors name the op and the shapes") {
  Tensor x = zeros({2, 3, 4, 4});
  check_error(
      [&] {
        batch_norm2d(zeros({2, 3, 4}), Tensor(), Tensor(), Tensor(), Tensor(), true);
      },
      {"batch_norm2d", "input", "4 dims", "[2, 3, 4]"});
  check_error([&] { batch_norm2d(x, zeros({4}), Tensor(), Tensor(), Tensor(), true); },
              {"batch_norm2d", "weight", "[3]", "[2, 3, 4, 4]", "float32[4]"});
  check_error(
      [&] {
        batch_norm2d(x, Tensor(), zeros({3, 1}), Tensor(), Tensor(), true);
      },
      {"batch_norm2d", "bias", "[2, 3, 4, 4]", "[3, 1]"});
  check_error([&] { batch_norm2d(x, Tensor(), Tensor(), zeros({2}), ones({3}), true); },
              {"batch_norm2d", "running_mean", "[2]", "[2, 3, 4, 4]"});
  check_error([&] { batch_norm2d(x, Tensor(), Tensor(), zeros({3}), Tensor(), true); },
              {"batch_norm2d", "together", "float32[3]", "undefined"});
  check_error([&] { batch_norm2d(x, Tensor(), Tensor(), Tensor(), Tensor(), false); },
              {"batch_norm2d", "eval", "running_mean", "[2, 3, 4, 4]"});
  check_error(
      [&] {
        batch_norm2d(zeros({1, 3, 1, 1}), Tensor(), Tensor(), Tensor(), Tensor(), true);
      },
      {"batch_norm2d", "more than 1 value per channel", "[1, 3, 1, 1]"});
  check_error(
      [&] { batch_norm2d(x, zeros({3}, DType::Float64), Tensor(), Tensor(), Tensor(), true); },
      {"batch_norm2d", "float32[2, 3, 4, 4]", "float64[3]"});
  check_error([&] { batch_norm2d(x, Tensor(), Tensor(), zeros({3}), ones({3}), true, 1.5); },
              {"batch_norm2d", "momentum", "1.5"});
  check_error([&] { batch_norm2d(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, -1); },
              {"batch_norm2d", "eps"});
  check_error(
      [&] {
        batch_norm2d(zeros({2, 3, 4, 4}, DType::Int64), Tensor(), Tensor(), Tensor(), Tensor(),
                     true);
      },
      {"batch_norm2d", "int64[2, 3, 4, 4]"});
  check_error(
      [&] {
        instance_norm2d(zeros({2, 3, 1, 1}));
      },
      {"instance_norm2d", "more than 1 spatial element", "[2, 3, 1, 1]"});
  check_error([&] { instance_norm2d(x, ones({2})); },
              {"instance_norm2d", "weight", "[3]", "[2, 3, 4, 4]", "[2]"});
}
