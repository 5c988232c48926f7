// Elementwise ops: hand-computed cases, broadcasting, gradient checks for every op.
#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;

TEST_CASE("elementwise: hand-computed binary ops with broadcasting") {
  Tensor a = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = tensor({10, 20, 30}, {3});
  check_close(add(a, b), {11, 22, 33, 14, 25, 36});
  check_close(sub(a, b), {-9, -18, -27, -6, -15, -24});
  check_close(mul(a, b), {10, 40, 90, 40, 100, 180});
  check_close(div(b, a), {10, 10, 10, 2.5, 4, 5});
  check_close(pow(a, tensor({2}, {1})), {1, 4, 9, 16, 25, 36});
  Tensor c = tensor({3, 1, 3, 7, 5, 0}, {2, 3});
  check_close(minimum(a, c), {1, 1, 3, 4, 5, 0});
  check_close(maximum(a, c), {3, 2, 3, 7, 5, 6});
  Tensor col = tensor({1, 0}, {2, 1});
  check_close(where(col, a, c), {1, 2, 3, 7, 5, 0});
  CHECK(add(a, b).shape() == Shape{2, 3});
}

TEST_CASE("elementwise: hand-computed unary and scalar ops") {
  Tensor x = tensor({-2, -0.5, 0, 1, 4}, {5});
  check_close(neg(x), {2, 0.5, 0, -1, -4});
  check_close(abs(x), {2, 0.5, 0, 1, 4});
  check_close(sign(x), {-1, -1, 0, 1, 1});
  check_close(clamp(x, -1, 2), {-1, -0.5, 0, 1, 2});
  check_close(relu(x), {0, 0, 0, 1, 4});
  check_close(leaky_relu(x, 0.1), {-0.2, -0.05, 0, 1, 4});
  check_close(add(x, 1.5), {-0.5, 1, 1.5, 2.5, 5.5});
  check_close(sub(x, 1), {-3, -1.5, -1, 0, 3});
  check_close(rsub(1, x), {3, 1.5, 1, 0, -3});
  check_close(mul(x, 2), {-4, -1, 0, 2, 8});
  check_close(div(x, 2), {-1, -0.25, 0, 0.5, 2});
  Tensor p = tensor({1, 4, 9}, {3});
  check_close(sqrt(p), {1, 2, 3});
  check_close(pow(p, 0.5), {1, 2, 3});
  check_close(rdiv(36, p), {36, 9, 4});
  check_close(exp(tensor({0, 1}, {2})), {1, std::exp(1.0)});
  check_close(log(tensor({1, std::exp(2.0)}, {2})), {0, 2});
  check_close(sigmoid(tensor({0, 1000, -1000}, {3})), {0.5, 1, 0});
  check_close(tanh(tensor({0, 1}, {2})), {0, std::tanh(1.0)});
  check_close(gt(x, 0), {0, 0, 0, 1, 1});
  check_close(lt(x, 0), {1, 1, 0, 0, 0});
}

TEST_CASE("elementwise: gradient checks, every binary op with broadcasting") {
  Tensor a = uniform({2, 3, 4}, 0.5, 2.0, 1);
  Tensor b = uniform({3, 1}, 0.5, 2.0, 2);
  CHECK(gradcheck([](const auto& v) { return add(v[0], v[1]); }, {a, b}));
  CHECK(gradcheck([](const auto& v) { return sub(v[0], v[1]); }, {a, b}));
  CHECK(gradcheck([](const auto& v) { return mul(v[0], v[1]); }, {a, b}));
  CHECK(gradcheck([](const auto& v) { return div(v[0], v[1]); }, {a, b}));
  CHECK(gradcheck([](const auto& v) { return pow(v[0], v[1]); }, {a, b}));
  // Shift b so no element ties with a (min/max have a kink there).
  Tensor c = uniform({2, 3, 4}, -1, 1, 3);
  Tensor d = uniform({2, 3, 4}, -1, 1, 4);
  CHECK(gradcheck([](const auto& v) { return minimum(v[0], v[1]); }, {c, d}));
  CHECK(gradcheck([](const auto& v) { return maximum(v[0], v[1]); }, {c, d}));
  Tensor cond = gt(uniform({2, 3, 4}, -1, 1, 5), 0);
  CHECK(gradcheck([cond](const auto& v) { return where(cond.to(DType::Float64), v[0], v[1]); },
                  {c, uniform({4}, -1, 1, 6)}));
}

TEST_CASE("elementwise: gradient checks, every unary and scalar op") {
  Tensor x = uniform({3, 5}, -2, 2, 11);
  Tensor pos = uniform({3, 5}, 0.3, 3, 12);
  // Away from kinks: |x| > 0.05 for abs, sign, relu, leaky_relu; inside/outside clamp bounds.
  Tensor off = add(mul(sign(x), 0.1), x);
  CHECK(gradcheck([](const auto& v) { return neg(v[0]); }, {x}));
  CHECK(gradcheck([](const auto& v) { return exp(v[0]); }, {x}));
  CHECK(gradcheck([](const auto& v) { return log(v[0]); }, {pos}));
  CHECK(gradcheck([](const auto& v) { return sqrt(v[0]); }, {pos}));
  CHECK(gradcheck([](const auto& v) { return abs(v[0]); }, {off}));
  CHECK(gradcheck([](const auto& v) { return sign(v[0]); }, {off}));
  CHECK(gradcheck([](const auto& v) { return pow(v[0], 2.5); }, {pos}));
  CHECK(gradcheck([](const auto& v) { return clamp(v[0], -0.95, 1.05); }, {off}));
  CHECK(gradcheck([](const auto& v) { return add(v[0], 3.0); }, {x}));
  CHECK(gradcheck([](const auto& v) { return sub(v[0], 3.0); }, {x}));
  CHECK(gradcheck([](const auto& v) { return rsub(3.0, v[0]); }, {x}));
  CHECK(gradcheck([](const auto& v) { return mul(v[0], -1.5); }, {x}));
  CHECK(gradcheck([](const auto& v) { return div(v[0], 4.0); }, {x}));
  CHECK(gradcheck([](const auto& v) { return rdiv(2.0, v[0]); }, {pos}));
  CHECK(gradcheck([](const auto& v) { return relu(v[0]); }, {off}));
  CHECK(gradcheck([](const auto& v) { return leaky_relu(v[0], 0.2); }, {off}));
  CHECK(gradcheck([](const auto& v) { return sigmoid(v[0]); }, {x}));
  CHECK(gradcheck([](const auto& v) { return tanh(v[0]); }, {x}));
}

TEST_CASE("elementwise: kinks follow the documented conventions") {
  Tensor x = tensor({0, 0, 0}, {3}, DType::Float64);
  x.set_requires_grad(true);
  Tensor g = grad({sum(relu(x))}, {x})[0];
  check_close(g, {0, 0, 0});
  Tensor a = tensor({1, 2}, {2}, DType::Float64).set_requires_grad(true);
  Tensor b = tensor({1, 3}, {2}, DType::Float64).set_requires_grad(true);
  auto gs = grad({sum(maximum(a, b))}, {a, b});
  check_close(gs[0], {0.5, 0});  // tie splits evenly
  check_close(gs[1], {0.5, 1});
}

TEST_CASE("elementwise: errors name the op and the shapes") {
  Tensor a = zeros({2, 3}), b = zeros({4});
  check_error([&] { add(a, b); }, {"add", "[2, 3]", "[4]"});
  check_error([&] { mul(a, zeros({3}, DType::Float64)); }, {"mul", "float32[2, 3]", "float64[3]"});
  check_error([&] { relu(zeros({2}, DType::Int64)); }, {"relu", "int64[2]"});
  check_error([&] { clamp(a, 1, 0); }, {"clamp"});
}
