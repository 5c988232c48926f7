// Reductions: hand-computed cases and gradient checks for sum, mean, var, max, argmax, sum_to.
#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;

TEST_CASE("reduce: hand-computed sums, means and variances") {
  Tensor a = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  check_close(sum(a), {21});
  CHECK(sum(a).shape() == Shape{});
  check_close(sum(a, {0}), {5, 7, 9});
  check_close(sum(a, {1}), {6, 15});
  CHECK(sum(a, {1}, true).shape() == Shape{2, 1});
  check_close(sum(a, {0, 1}), {21});
  check_close(mean(a), {3.5});
  check_close(mean(a, {0}), {2.5, 3.5, 4.5});
  check_close(mean(a, {-1}, true), {2, 5});
  // var of 1..6 = 3.5 (unbiased), 35/12 (biased); along dim 1: var(1,2,3) = 1.
  check_close(var(a), {3.5});
  check_close(var(a, {0, 1}, 0), {35.0 / 12});
  check_close(var(a, {1}), {1, 1});
  check_close(var(a, {0}), {4.5, 4.5, 4.5});
}

TEST_CASE("reduce: max and argmax, whole and along dims") {
  Tensor a = tensor({1, 7, 3, 9, 5, 2}, {2, 3});
  check_close(max(a), {9});
  CHECK(argmax(a).item<int64_t>() == 3);
  auto [v0, i0] = max(a, 0);
  check_close(v0, {9, 7, 3});
  CHECK(i0.to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0});
  auto [v1, i1] = max(a, 1, true);
  CHECK(v1.shape() == Shape{2, 1});
  check_close(v1, {7, 9});
  CHECK(argmax(a, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 0});
  CHECK(i1.dtype() == DType::Int64);
  // Ties pick the first index.
  CHECK(argmax(tensor({2, 5, 5, 1}, {4})).item<int64_t>() == 1);
}

TEST_CASE("reduce: gradient checks") {
  Tensor x = uniform({3, 4, 5}, -1, 1, 21);
  CHECK(gradcheck([](const auto& v) { return sum(v[0]); }, {x}));
  CHECK(gradcheck([](const auto& v) { return sum(v[0], {1}); }, {x}));
  CHECK(gradcheck([](const auto& v) { return sum(v[0], {0, 2}, true); }, {x}));
  CHECK(gradcheck([](const auto& v) { return mean(v[0]); }, {x}));
  CHECK(gradcheck([](const auto& v) { return mean(v[0], {2}); }, {x}));
  CHECK(gradcheck([](const auto& v) { return var(v[0]); }, {x}));
  CHECK(gradcheck([](const auto& v) { return var(v[0], {1}); }, {x}));
  CHECK(gradcheck([](const auto& v) { return var(v[0], {0, 2}, 0, true); }, {x}));
  // Distinct values: no ties, so max is differentiable at x.
  Tensor d = add(mul(arange(60, DType::Float64).reshape({3, 4, 5}), 0.01), x);
  CHECK(gradcheck([](const auto& v) { return max(v[0]); }, {d}));
  CHECK(gradcheck([](const auto& v) { return max(v[0], 1).first; }, {d}));
  CHECK(gradcheck([](const auto& v) { return max(v[0], -1, true).first; }, {d}));
  CHECK(gradcheck([](const auto& v) { return sum_to(v[0], {4, 1}); }, {x}));
}

TEST_CASE("reduce: sum_to undoes broadcasting") {
  Tensor g = ones({2, 3, 4});
  check_close(sum_to(g, {3, 1}), {8, 8, 8});
  check_close(sum_to(g, {1, 4}), {6, 6, 6, 6});
  CHECK(sum_to(g, {2, 3, 4}).shape() == Shape{2, 3, 4});
  check_error([&] { sum_to(g, {5}); }, {"sum_to", "[2, 3, 4]", "[5]"});
}

TEST_CASE("reduce: errors name the op and the shapes") {
  Tensor a = zeros({2, 3});
  check_error([&] { sum(a, {2}); }, {"sum", "dim 2"});
  check_error([&] { sum(a, {1, 1}); }, {"sum", "repeated", "[2, 3]"});
  check_error([&] { var(ones({1, 3}), {0}); }, {"var", "correction"});
  check_error([&] { max(zeros({0})); }, {"max", "empty"});
  check_error([&] { mean(zeros({2}, DType::Int64)); }, {"int64"});
}
