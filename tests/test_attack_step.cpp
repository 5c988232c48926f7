// Fused attack steps: hand-computed cases, the projection invariants, sign(0), bit-for-bit
// equality with the recipe of kernels/attack.h recomputed in plain loops, and error messages.
#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include <nabla/ops/attack_step.h>

#include "gradcheck.h"
#include "kernels/attack.h"

using namespace nabla;
using namespace nabla::test;

namespace {

// Per-sample L2 and L-inf distances between a and b, in double.
std::vector<double> l2_dist(const Tensor& a, const Tensor& b) {
  std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  const int64_t N = a.size(0), D = a.numel() / N;
  std::vector<double> out(size_t(N), 0);
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = va[size_t(i)] - vb[size_t(i)];
    out[size_t(i / D)] += d * d;
  }
  for (double& v : out) v = std::sqrt(v);
  return out;
}

double linf_dist(const Tensor& a, const Tensor& b) {
  std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]));
  return m;
}

void check_in_box(const Tensor& t, double lo, double hi) {
  std::vector<double> v = t.to_vector<double>();
  int bad = 0;
  for (double e : v) bad += !(e >= lo && e <= hi);
  CHECK_MESSAGE(bad == 0,
                bad << " elements of " << t.str() << " outside [" << lo << ", " << hi << "]");
}

// Bitwise comparison of two float32 tensors; reports the first differing elements.
void check_bits(const Tensor& got, const std::vector<float>& want) {
  std::vector<float> v = got.to_vector<float>();
  REQUIRE(v.size() == want.size());
  int bad = 0;
  for (size_t i = 0; i < v.size(); ++i)
    if (std::bit_cast<uint32_t>(v[i]) != std::bit_cast<uint32_t>(want[i])) {
      if (bad < 5) MESSAGE("element " << i << ": got " << v[i] << ", want " << want[i]);
      ++bad;
    }
  CHECK_MESSAGE(bad == 0, bad << " of " << v.size() << " elements differ in their bits");
}

// Input data for the steps: x0 in [0, 1], x within 0.05 of it, g with exact zeros of both signs.
struct StepData {
  Tensor x, g, x0;
};
StepData step_data(const Shape& s, DType dt, uint64_t seed) {
  Generator gen(seed);
  Tensor x0 = rand(s, DType::Float64, Device::cpu(), &gen);
  Tensor x = clamp(add(x0, rand(s, DType::Float64, Device::cpu(), &gen, -0.05, 0.05)), 0, 1);
  Tensor g = randn(s, DType::Float64, Device::cpu(), &gen);
  double* pg = g.data<double>();
  for (int64_t i = 0; i < g.numel(); i += 7) pg[i] = (i % 2) ? -0.0 : 0.0;
  return {x.to(dt), g.to(dt), x0.to(dt)};
}

}  // namespace

TEST_CASE("attack_step_linf: hand-computed elements, every branch") {
  //                   ascend    descend   g = 0    clamp hi  clamp lo  project
  Tensor x = tensor({0.5, 0.5, 0.5, 0.98, 0.02, 0.5}, {2, 3}, DType::Float64);
  Tensor g = tensor({1, -2, 0, 3, -1, 0.5}, {2, 3}, DType::Float64);
  Tensor x0 = tensor({0.5, 0.45, 0.5, 0.98, 0.02, 0.3}, {2, 3}, DType::Float64);
  // 0.6 -> [0.42, 0.58]: 0.58;  0.4 in [0.37, 0.53];  unmoved;  1.08 -> 1.06 -> 1;
  // -0.08 -> -0.06 -> 0;  0.6 -> [0.22, 0.38]: 0.38.
  Tensor y = attack_step_linf(x, g, x0, 0.1, 0.08);
  CHECK(y.shape() == Shape{2, 3});
  check_close(y, {0.58, 0.4, 0.5, 1.0, 0.0, 0.38}, 1e-12, 0);
  // Another box.
  Tensor y2 = attack_step_linf(x, g, x0, 0.1, 0.08, -1, 0.55);
  check_close(y2, {0.55, 0.4, 0.5, 0.55, -0.06, 0.38}, 1e-12, 0);
}

TEST_CASE("attack_step_linf: sign(0) = 0, and the result is outside autograd") {
  Tensor x = tensor({0.25, 0.5, 0.75, 0.125}, {4}).set_requires_grad(true);
  Tensor g = tensor({0, -0.0, 0, 0}, {4});
  reset_kernel_counts();
  Tensor y = attack_step_linf(x, g, x.detach(), 0.5, 0.1);
  check_close(y, {0.25, 0.5, 0.75, 0.125}, 0, 0);
  CHECK(kernel_count("attack_step_linf") == 1);
  CHECK_FALSE(y.requires_grad());
  CHECK(y.grad_fn() == nullptr);
  // The output is a new tensor, not a view of x.
  CHECK(y.raw_data() != x.raw_data());
}

TEST_CASE("attack_step_linf: invariants over PGD iterations (float32 and float64)") {
  for (DType dt : {DType::Float32, DType::Float64}) {
    StepData d = step_data({4, 3, 5, 5}, dt, 101);
    const double eps = 8.0 / 255, alpha = 2.0 / 255;
    // The bounds x0 -/+ eps are rounded to T, so they may exceed eps by half an ulp.
    const double slack = dt == DType::Float32 ? 1e-7 : 1e-15;
    Tensor x = d.x;
    for (int it = 0; it < 6; ++it) {
      Generator gen(200 + uint64_t(it));
      Tensor g = randn(x.shape(), dt, Device::cpu(), &gen);
      x = attack_step_linf(x, g, d.x0, alpha, eps);
      CHECK(linf_dist(x, d.x0) <= eps + slack);
      check_in_box(x, 0, 1);
    }
    // Each step moves every element by at most alpha.
    Tensor y = attack_step_linf(x, d.g, d.x0, alpha, eps);
    CHECK(linf_dist(y, x) <= alpha + slack);
  }
}

TEST_CASE("attack_step_linf: float32 equals the documented recipe bit for bit") {
  // Large enough for the threaded, vectorized path (one element per iteration either way).
  StepData d = step_data({4, 3, 64, 64}, DType::Float32, 111);
  const double alpha = 0.01, eps = 0.03, lo = 0.0, hi = 1.0;
  Tensor y = attack_step_linf(d.x, d.g, d.x0, alpha, eps, lo, hi);
  std::vector<float> x = d.x.to_vector<float>(), g = d.g.to_vector<float>(),
                     x0 = d.x0.to_vector<float>(), want(x.size());
  const float a = float(alpha), e = float(eps), l = float(lo), h = float(hi);
  int zeros = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    zeros += g[i] == 0;
    const float s = float((g[i] > 0) - (g[i] < 0));
    float t = x[i] + a * s;
    const float lower = x0[i] - e, upper = x0[i] + e;
    t = t < lower ? lower : t;
    t = t > upper ? upper : t;
    t = t < l ? l : t;
    t = t > h ? h : t;
    want[i] = t;
  }
  CHECK(zeros > 0);
  check_bits(y, want);
}

TEST_CASE("attack_step_l2: hand-computed samples, every branch") {
  // x [4, 1, 2]: four samples of two elements, alpha 0.5, eps 0.25.
  //   0: g = (3, 4), |g| = 5: u = x + (0.3, 0.4), d = (0.3, 0.4), |d| = 0.5 > eps: d = (0.15, 0.2)
  //   1: g = 0: u = x, d = (0.1, 0) inside the ball
  //   2: g = (0, 1): d = (0, 0.5) -> (0, 0.25)
  //   3: g = (2, 0): d = (0.5, 0) -> (0.25, 0); x0 + d = (1.2, 0.5) -> clamp (1, 0.5)
  Tensor x = tensor({0.5, 0.5, 0.2, 0.9, 0.9, 0.1, 0.95, 0.5}, {4, 1, 2}, DType::Float64);
  Tensor g = tensor({3, 4, 0, 0, 0, 1, 2, 0}, {4, 1, 2}, DType::Float64);
  Tensor x0 = tensor({0.5, 0.5, 0.1, 0.9, 0.9, 0.1, 0.95, 0.5}, {4, 1, 2}, DType::Float64);
  reset_kernel_counts();
  Tensor y = attack_step_l2(x, g, x0, 0.5, 0.25);
  CHECK(y.shape() == Shape{4, 1, 2});
  check_close(y, {0.65, 0.7, 0.2, 0.9, 0.9, 0.35, 1.0, 0.5}, 1e-12, 0);
  CHECK(kernel_count("attack_l2_sq_norms") == 1);
  CHECK(kernel_count("attack_step_l2_delta") == 1);
  CHECK(kernel_count("attack_step_l2_project") == 1);
  CHECK(y.grad_fn() == nullptr);
  // Inside the ball nothing is projected; another box clamps both ways.
  Tensor y2 = attack_step_l2(x, g, x0, 0.5, 10, 0.3, 0.92);
  check_close(y2, {0.8, 0.9, 0.3, 0.9, 0.9, 0.6, 0.92, 0.5}, 1e-12, 0);
  // eps = 0 pins every sample to x0.
  check_close(attack_step_l2(x, g, x0, 0.5, 0), x0, 0, 0);
}

TEST_CASE("attack_step_l2: invariants over PGD iterations (float32 and float64)") {
  for (DType dt : {DType::Float32, DType::Float64}) {
    StepData d = step_data({5, 3, 8, 8}, dt, 121);
    const double eps = 0.5, alpha = 0.2;
    Tensor x = d.x;
    for (int it = 0; it < 6; ++it) {
      Generator gen(300 + uint64_t(it));
      Tensor g = randn(x.shape(), dt, Device::cpu(), &gen);
      x = attack_step_l2(x, g, d.x0, alpha, eps);
      for (double n : l2_dist(x, d.x0)) CHECK(n <= eps + 1e-6);
      check_in_box(x, 0, 1);
    }
    // A zero gradient leaves a sample inside the ball where it is.
    Tensor y = attack_step_l2(x, zeros_like(x), d.x0, alpha, eps);
    check_close(y, x, 0, 0);
  }
}

TEST_CASE("attack_step_l2: float32 equals the documented recipe bit for bit") {
  // Sample 0 spans several reduction chunks (D > kAttackNormChunk). Samples 0 and 1 step out
  // of the ball and are projected; sample 2 has g = 0 and starts closer to x0, so it stays.
  const int64_t N = 3, D = 3 * kAttackNormChunk + 37;
  StepData d = step_data({N, D}, DType::Float32, 131);
  std::vector<float> gv = d.g.to_vector<float>(), xv = d.x.to_vector<float>();
  const std::vector<float> x0 = d.x0.to_vector<float>();
  for (size_t i = size_t(2 * D); i < size_t(3 * D); ++i) {
    gv[i] = 0;
    xv[i] = x0[i] + 0.25f * (xv[i] - x0[i]);
  }
  Tensor g = from_vector(gv, {N, D}), xt = from_vector(xv, {N, D});
  const double alpha = 1.5, eps = 2.0, lo = 0.0, hi = 1.0;
  Tensor y = attack_step_l2(xt, g, d.x0, alpha, eps, lo, hi);

  const std::vector<float>& x = xv;
  std::vector<float> want(x.size());
  auto sq_norm = [&](const float* v) {  // the documented chunked order
    double total = 0;
    for (int64_t b = 0; b < D; b += kAttackNormChunk) {
      double acc = 0;
      for (int64_t i = b; i < std::min(D, b + kAttackNormChunk); ++i)
        acc = std::fma(double(v[i]), double(v[i]), acc);
      total += acc;
    }
    return total;
  };
  int projected = 0;
  for (int64_t n = 0; n < N; ++n) {
    const float* gn = gv.data() + n * D;
    const double gsq = sq_norm(gn);
    const float a = gsq > 0 ? float(alpha / std::sqrt(gsq)) : 0.0f;
    std::vector<float> u(static_cast<size_t>(D)), d(static_cast<size_t>(D));
    for (int64_t i = 0; i < D; ++i) {
      u[size_t(i)] = std::fma(a, gn[i], x[size_t(n * D + i)]);
      d[size_t(i)] = u[size_t(i)] - x0[size_t(n * D + i)];
    }
    const double norm = std::sqrt(sq_norm(d.data()));
    const bool outside = norm > eps;
    projected += outside;
    const float c = float(eps / norm);
    for (int64_t i = 0; i < D; ++i) {
      float t = outside ? std::fma(c, d[size_t(i)], x0[size_t(n * D + i)]) : u[size_t(i)];
      t = t < float(lo) ? float(lo) : t;
      t = t > float(hi) ? float(hi) : t;
      want[size_t(n * D + i)] = t;
    }
  }
  CHECK(projected == 2);  // samples 0 and 1 leave the ball, sample 2 does not move
  check_bits(y, want);
}

TEST_CASE("attack steps: errors name the op and every shape") {
  Tensor x = zeros({2, 3}), g = zeros({2, 4}), x0 = zeros({2, 3});
  check_error(
      [&] { attack_step_linf(x, g, x0, 0.1, 0.1); },
      {"attack_step_linf", "same shape", "x float32[2, 3]", "g float32[2, 4]", "x0 float32[2, 3]"});
  check_error(
      [&] {
        attack_step_l2(x, x, zeros({3, 2}), 0.1, 0.1);
      },
      {"attack_step_l2", "same shape", "[2, 3]", "x0 float32[3, 2]"});
  check_error(
      [&] {
        attack_step_linf(x, x, zeros({2, 3}, DType::Float64), 0.1, 0.1);
      },
      {"attack_step_linf", "float32[2, 3]", "float64[2, 3]"});
  check_error([&] { attack_step_linf(x, x, x0, -0.1, 0.1); }, {"attack_step_linf", "alpha"});
  check_error([&] { attack_step_l2(x, x, x0, 0.1, -1); }, {"attack_step_l2", "eps"});
  check_error([&] { attack_step_l2(x, x, x0, NAN, 0.1); }, {"attack_step_l2", "alpha"});
  check_error([&] { attack_step_linf(x, x, x0, 0.1, 0.1, 1, 0); }, {"attack_step_linf", "lo"});
  check_error([&] { attack_step_l2(zeros({}), zeros({}), zeros({}), 0.1, 0.1); },
              {"attack_step_l2", "batch"});
  Tensor xi = zeros({2, 3}, DType::Int64);
  check_error([&] { attack_step_linf(xi, xi, xi, 0.1, 0.1); }, {"attack_step_linf", "int64[2, 3]"});
}
