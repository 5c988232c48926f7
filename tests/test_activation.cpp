// Softmax, log_softmax and dropout: hand-computed cases, numerics at extreme logits, gradient
// checks along every dim, dropout's mask statistics and reproducibility, errors.
#include <nabla/ops/activation.h>

#include <cmath>

#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;

TEST_CASE("softmax: [1, 2, 3] by hand") {
  // e^k / (e + e^2 + e^3) with e + e^2 + e^3 = 30.19287485; log of it = 3.40760596.
  Tensor x = tensor({1, 2, 3}, {3});
  check_close(softmax(x, 0), {0.09003057, 0.24472847, 0.66524096});
  check_close(log_softmax(x, -1), {-2.40760596, -1.40760596, -0.40760596});
  // Along dim 0 of [2, 2]: column 0 is (0, ln 3) -> (1/4, 3/4), column 1 is (1, 1) -> halves.
  Tensor y = tensor({0, 1, std::log(3.0), 1}, {2, 2});
  check_close(softmax(y, 0), {0.25, 0.5, 0.75, 0.5});
  check_close(log_softmax(y, 0), {std::log(0.25), std::log(0.5), std::log(0.75), std::log(0.5)});
  // A 0-dim tensor is a one-element slice.
  check_close(softmax(tensor({5}, {}), 0), {1});
}

TEST_CASE("softmax: dim 1 of NCHW works on the strided channel axis") {
  // [1, 2, 1, 2]: pixel 0 has channels (0, ln 3), pixel 1 has (2, 2).
  Tensor x = tensor({0, 2, std::log(3.0), 2}, {1, 2, 1, 2});
  check_close(softmax(x, 1), {0.25, 0.5, 0.75, 0.5});
  Tensor nc = tensor({0, 2, std::log(3.0), 2}, {1, 2, 1, 2}).permute({0, 2, 3, 1});
  // A non-contiguous input gives the same numbers as its contiguous copy.
  check_close(softmax(nc, -1), softmax(nc.contiguous(), -1));
}

TEST_CASE("softmax: max subtraction keeps extreme logits finite") {
  check_close(softmax(tensor({1000, 1000}, {2}), 0), {0.5, 0.5});
  check_close(softmax(tensor({-1000, 0}, {2}), 0), {0, 1});
  // log_softmax stays exact where softmax underflows to 0 and log(0) would be -inf.
  check_close(log_softmax(tensor({0, -1000}, {2}), 0), {0, -1000});
  check_close(log_softmax(tensor({1e4, 1e4}, {2}), 0), {-std::log(2.0), -std::log(2.0)});
}

TEST_CASE("softmax: hand-computed backward") {
  // y = (1/4, 3/4), dy = (1, 0): sum dy*y = 1/4, dx = y * (dy - 1/4) = (3/16, -3/16).
  Tensor x = tensor({0, std::log(3.0)}, {2}, DType::Float64).set_requires_grad(true);
  Tensor dy = tensor({1, 0}, {2}, DType::Float64);
  check_close(grad({softmax(x, 0)}, {x}, {dy})[0], {0.1875, -0.1875});
  // log_softmax: dx = dy - softmax * sum dy = (1, 0) - (1/4, 3/4).
  check_close(grad({log_softmax(x, 0)}, {x}, {dy})[0], {0.75, -0.75});
}

TEST_CASE("softmax: slices sum to one and log_softmax agrees with log(softmax)") {
  Tensor x = uniform({2, 3, 4}, -3, 3, 21);
  for (int64_t d : {0, 1, 2, -1}) {
    CAPTURE(d);
    Tensor s = softmax(x, d);
    check_close(sum(s, {d}), ones(sum(x, {d}).shape(), DType::Float64), 1e-12);
    check_close(log_softmax(x, d), log(s), 1e-12);
  }
}

TEST_CASE("softmax: float32 matches float64") {
  Tensor x = uniform({3, 5, 7}, -4, 4, 22);
  check_close(softmax(x.to(DType::Float32), 1), softmax(x, 1), 1e-6, 1e-5);
  check_close(log_softmax(x.to(DType::Float32), 1), log_softmax(x, 1), 1e-5, 1e-5);
}

TEST_CASE("softmax: gradient checks along every dim of a 3-D tensor") {
  Tensor x = uniform({2, 3, 4}, -2, 2, 23);
  for (int64_t d : {0, 1, 2, -1}) {
    CAPTURE(d);
    CHECK(gradcheck([d](const auto& v) { return softmax(v[0], d); }, {x}));
    CHECK(gradcheck([d](const auto& v) { return log_softmax(v[0], d); }, {x}));
  }
  // Wide inner axis: more than one block of positions per outer slice in the kernel.
  Tensor wide = uniform({2, 3, 70}, -2, 2, 24);
  CHECK(gradcheck([](const auto& v) { return log_softmax(v[0], 1); }, {wide}));
  CHECK(gradcheck([](const auto& v) { return softmax(v[0], 1); }, {wide}));
}

TEST_CASE("softmax: kernels are counted once per call") {
  Tensor x = uniform({4, 5}, -1, 1, 25).set_requires_grad(true);
  reset_kernel_counts();
  grad({sum(mul(softmax(x, 1), x))}, {x});
  CHECK(kernel_count("softmax_forward") == 1);
  CHECK(kernel_count("softmax_backward") == 1);
  reset_kernel_counts();
  grad({sum(log_softmax(x, 0))}, {x});
  CHECK(kernel_count("log_softmax_forward") == 1);
  CHECK(kernel_count("log_softmax_backward") == 1);
}

TEST_CASE("dropout: mask statistics and scaling") {
  const double p = 0.3;
  Generator gen(123);
  Tensor y = dropout(ones({100000}), p, true, &gen);
  std::vector<double> v = y.to_vector<double>();
  int64_t kept = 0;
  bool values_ok = true;
  for (double e : v) {
    if (e != 0) ++kept;
    if (e != 0 && std::abs(e - 1 / (1 - p)) > 1e-6) values_ok = false;
  }
  CHECK(values_ok);
  // The kept fraction has std sqrt(0.21 / 1e5) = 0.0015; 0.01 is a loose bound.
  CHECK(std::abs(double(kept) / 1e5 - (1 - p)) < 0.01);
  // Inverted dropout keeps the expectation: mean(y) ~ 1.
  CHECK(std::abs(mean(y).item<double>() - 1) < 0.02);
}

TEST_CASE("dropout: the mask comes from the generator's Philox stream") {
  for (DType dt : {DType::Float32, DType::Float64}) {
    CAPTURE(dtype_name(dt));
    Generator a(42), b(42), c(43);
    Tensor x = ones({1001}, dt);
    Tensor ya = dropout(x, 0.5, true, &a);
    Tensor yb = dropout(x, 0.5, true, &b);
    CHECK(ya.to_vector<double>() == yb.to_vector<double>());  // same state, same mask
    CHECK(a.offset() == b.offset());
    CHECK(a.offset() > 0);
    CHECK(dropout(x, 0.5, true, &c).to_vector<double>() != ya.to_vector<double>());
    // The generator advanced, so the next mask differs.
    CHECK(dropout(x, 0.5, true, &a).to_vector<double>() != ya.to_vector<double>());
    // Element i is kept exactly when the i-th uniform that rand() draws from that state is >= p.
    Generator r(42);
    std::vector<double> u = rand({1001}, dt, Device::cpu(), &r).to_vector<double>();
    std::vector<double> m = ya.to_vector<double>();
    int bad = 0;
    for (size_t i = 0; i < u.size(); ++i)
      if ((m[i] != 0) != (u[i] >= 0.5)) ++bad;
    CHECK(bad == 0);
    CHECK(r.offset() == b.offset());  // the same number of counters was reserved
  }
}

TEST_CASE("dropout: evaluation, p = 0 and p = 1") {
  Tensor x = uniform({3, 4}, -1, 1, 31);
  Generator gen(7);
  Tensor e = dropout(x, 0.5, false, &gen);
  CHECK(e.raw_data() == x.raw_data());  // identity: no copy
  CHECK(gen.offset() == 0);             // and no random numbers drawn
  CHECK(dropout(x, 0.0, true, &gen).raw_data() == x.raw_data());
  CHECK(gen.offset() == 0);
  Tensor xr = x.detach().set_requires_grad(true);
  Tensor z = dropout(xr, 1.0, true, &gen);
  check_close(z, std::vector<double>(12, 0.0));
  check_close(grad({sum(z)}, {xr})[0], std::vector<double>(12, 0.0));
}

TEST_CASE("dropout: the backward multiplies by the same mask") {
  Generator gen(9);
  Tensor x = ones({200}, DType::Float64).set_requires_grad(true);
  Tensor y = dropout(x, 0.25, true, &gen);
  reset_kernel_counts();
  Tensor g = grad({sum(y)}, {x})[0];
  check_close(g, y.detach());  // x = 1, so y is the mask
  CHECK(kernel_count("dropout_backward") == 1);
}

TEST_CASE("dropout: gradient check with a fixed generator") {
  Tensor x = uniform({4, 6}, -1, 1, 32);
  CHECK(gradcheck(
      [](const auto& v) {
        Generator g(5);  // a fresh generator per call: every evaluation sees the same mask
        return dropout(v[0], 0.4, true, &g);
      },
      {x}));
}

TEST_CASE("activation: errors name the op and the shapes") {
  Tensor x = zeros({2, 3});
  check_error([&] { softmax(x, 2); }, {"softmax", "dim 2"});
  check_error([&] { log_softmax(x, -3); }, {"log_softmax", "dim -3"});
  check_error([&] { softmax(zeros({2, 3}, DType::Int64), 1); }, {"softmax", "int64[2, 3]"});
  check_error([&] { dropout(x, -0.1, true); },
              {"dropout", "p must be in [0, 1]", "-0.1", "[2, 3]"});
  check_error([&] { dropout(x, 1.5, true); }, {"dropout", "1.5"});
  check_error([&] { dropout(x, std::nan(""), false); }, {"dropout", "nan"});
  check_error([&] { dropout(zeros({2}, DType::Int64), 0.5, true); }, {"dropout", "int64[2]"});
}
