// Linear algebra ops: matmul in every torch.matmul shape case and linear with and without
// bias; hand-computed products, batched/broadcast products against loops of 2-D ones,
// gradient checks for every input, kernel counts (only requested gradients run) and errors.
#include "gradcheck.h"

#include <nabla/ops/linalg.h>

using namespace nabla;
using namespace nabla::test;

namespace {

// The matrix of t [*tb, R, C] at index `idx` of the broadcast batch `batch` (tb right-aligned
// against batch; a dim of size 1 broadcasts, so it is read at 0).
Tensor matrix_at(const Tensor& t, const Shape& batch, const std::vector<int64_t>& idx) {
  const size_t nb = size_t(t.dim()) - 2, lead = batch.size() - nb;
  Tensor m = t;
  for (size_t i = 0; i < nb; ++i) {
    const int64_t j = t.size(int64_t(i)) == 1 ? 0 : idx[lead + i];
    m = m.narrow(0, j, 1).squeeze(0);
  }
  return m;
}

// Every index of `batch` in row-major order.
std::vector<std::vector<int64_t>> all_indices(const Shape& batch) {
  std::vector<std::vector<int64_t>> out;
  std::vector<int64_t> idx(batch.size(), 0);
  for (int64_t n = 0; n < shape_numel(batch); ++n) {
    out.push_back(idx);
    for (size_t d = batch.size(); d-- > 0;) {
      if (++idx[d] < batch[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

// matmul of [*ba, M, K] x [*bb, K, N] checked against one 2-D matmul per batch index.
void check_against_loop(const Shape& sa, const Shape& sb, DType dt) {
  Tensor a = uniform(sa, -1, 1, 21).to(dt), b = uniform(sb, -1, 1, 22).to(dt);
  Tensor c = matmul(a, b);
  Shape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
  Shape batch = broadcast_shapes(ba, bb, "test");
  Shape expect = batch;
  expect.push_back(sa[sa.size() - 2]);
  expect.push_back(sb.back());
  REQUIRE_MESSAGE(c.shape() == expect, shape_str(sa)
                                           << " x " << shape_str(sb) << " gave " << c.str());
  const double tol = dt == DType::Float32 ? 1e-5 : 1e-12;
  for (const auto& idx : all_indices(batch)) {
    INFO(shape_str(sa) << " x " << shape_str(sb) << " at batch " << shape_str(idx));
    check_close(matrix_at(c, batch, idx),
                matmul(matrix_at(a, batch, idx), matrix_at(b, batch, idx)), tol, tol);
  }
}

}  // namespace

TEST_CASE("matmul: 2x3 times 3x2 by hand, float32 and float64") {
  for (DType dt : {DType::Float32, DType::Float64}) {
    Tensor a = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, dt);
    Tensor b = tensor({7, 8, 9, 10, 11, 12}, {3, 2}, dt);
    Tensor c = matmul(a, b);
    CHECK(c.shape() == Shape{2, 2});
    CHECK(c.dtype() == dt);
    // [1*7+2*9+3*11, 1*8+2*10+3*12; 4*7+5*9+6*11, 4*8+5*10+6*12]
    check_close(c, {58, 64, 139, 154});
    // A transposed (non-contiguous) operand: b^T a^T = (ab)^T.
    check_close(matmul(b.transpose(0, 1), a.transpose(0, 1)), {58, 139, 64, 154});
  }
}

TEST_CASE("matmul: 1-D operands follow torch.matmul") {
  Tensor m = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = tensor({7, 8, 9, 10, 11, 12}, {3, 2});
  Tensor v = tensor({1, 2, 3}, {3});
  Tensor vm = matmul(v, b);  // [3] x [3, 2] -> [2]
  CHECK(vm.shape() == Shape{2});
  check_close(vm, {58, 64});
  Tensor mv = matmul(m, tensor({1, 1, 1}, {3}));  // [2, 3] x [3] -> [2]
  CHECK(mv.shape() == Shape{2});
  check_close(mv, {6, 15});
  Tensor dot = matmul(v, tensor({4, 5, 6}, {3}));  // [3] x [3] -> []
  CHECK(dot.shape() == Shape{});
  CHECK(dot.item<double>() == doctest::Approx(32));
  // A vector against a batch of matrices: each row of the result is one 2-D product.
  Tensor bat = uniform({4, 3, 2}, -1, 1, 5);
  Tensor vd = v.to(DType::Float64);
  Tensor vb = matmul(vd, bat);  // [3] x [4, 3, 2] -> [4, 2]
  CHECK(vb.shape() == Shape{4, 2});
  Tensor bm = matmul(bat, tensor({1, -1}, {2}, DType::Float64));  // [4, 3, 2] x [2] -> [4, 3]
  CHECK(bm.shape() == Shape{4, 3});
  for (int64_t i = 0; i < 4; ++i) {
    Tensor bi = bat.narrow(0, i, 1).squeeze(0);
    check_close(vb.narrow(0, i, 1).squeeze(0), matmul(vd, bi), 1e-12, 1e-12);
    check_close(bm.narrow(0, i, 1).squeeze(0), matmul(bi, tensor({1, -1}, {2}, DType::Float64)),
                1e-12, 1e-12);
  }
}

TEST_CASE("matmul: batched and broadcast products equal a loop of 2-D products") {
  for (DType dt : {DType::Float32, DType::Float64}) {
    check_against_loop({3, 2, 4}, {4, 5}, dt);           // [B,M,K] x [K,N]: batch folded into M
    check_against_loop({3, 2, 4}, {3, 4, 5}, dt);        // [B,M,K] x [B,K,N]
    check_against_loop({2, 1, 3, 4}, {3, 4, 2}, dt);     // -> [2, 3, 3, 2]
    check_against_loop({3, 4}, {2, 4, 5}, dt);           // [M,K] x [B,K,N]
    check_against_loop({2, 3, 4}, {1, 4, 5}, dt);        // b's batch is all ones
    check_against_loop({3, 1, 2, 4}, {1, 2, 4, 3}, dt);  // both broadcast: [3, 2] batch
    check_against_loop({2, 3, 2, 4}, {2, 3, 4, 3}, dt);  // two full batch dims
    check_against_loop({1, 2, 3}, {2, 2, 3, 1}, dt);     // a has fewer dims
  }
}

// Empty operands are made with empty(): zeros() of a shape with a 0 dim does not return in the
// current core (see the report on Tensor::is_contiguous).
TEST_CASE("matmul: empty contraction gives zeros, empty batch gives an empty result") {
  Tensor c = matmul(empty({2, 0}), empty({0, 3}));
  CHECK(c.shape() == Shape{2, 3});
  check_close(c, {0, 0, 0, 0, 0, 0});
  CHECK(matmul(empty({0, 2, 3}), empty({0, 3, 4})).shape() == Shape{0, 2, 4});
}

TEST_CASE("matmul: gradient checks for both inputs in every shape case") {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{3, 4}, {4, 2}},
      {{4}, {4, 2}},
      {{3, 4}, {4}},
      {{4}, {4}},
      {{2, 3, 4}, {4, 2}},
      {{2, 3, 4}, {2, 4, 2}},
      {{2, 1, 3, 4}, {3, 4, 2}},
      {{3, 4}, {2, 4, 2}},
      {{4}, {2, 4, 2}},
      {{2, 3, 4}, {4}},
      {{2, 3, 4}, {1, 4, 2}},
      {{3, 1, 2, 4}, {1, 2, 4, 3}},
  };
  uint64_t seed = 100;
  for (const auto& c : cases) {
    const Shape &sa = c.first, &sb = c.second;  // not a structured binding: INFO captures them
    INFO(shape_str(sa) << " x " << shape_str(sb));
    CHECK(gradcheck([](const auto& v) { return matmul(v[0], v[1]); },
                    {uniform(sa, -1, 1, seed), uniform(sb, -1, 1, seed + 1)}));
    seed += 2;
  }
  // Non-contiguous inputs go through contiguous() inside the op.
  CHECK(gradcheck([](const auto& v) { return matmul(v[0].transpose(0, 1), v[1].transpose(1, 2)); },
                  {uniform({4, 3}, -1, 1, 1), uniform({2, 2, 4}, -1, 1, 2)}));
}

TEST_CASE("matmul: one GEMM per product and only the requested gradient runs") {
  Tensor a = uniform({3, 2, 4}).set_requires_grad(true);
  Tensor b = uniform({4, 5}, -1, 1, 8).set_requires_grad(true);
  reset_kernel_counts();
  Tensor c = matmul(a, b);
  CHECK(kernel_count("gemm") == 1);  // the batch is folded into M
  Tensor ga = grad({sum(c)}, {a})[0];
  CHECK(kernel_count("matmul_backward_a") == 1);
  CHECK(kernel_count("matmul_backward_b") == 0);
  // dA = dC B^T with dC = ones: every row of dA is the row sums of B.
  Tensor rows = sum(b, {1});
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t m = 0; m < 2; ++m)
      check_close(ga.narrow(0, i, 1).narrow(1, m, 1).reshape({4}), rows, 1e-12, 1e-12);

  Tensor x = uniform({3, 2, 4}).set_requires_grad(true);
  Tensor y = uniform({3, 4, 5}, -1, 1, 9).set_requires_grad(true);
  reset_kernel_counts();
  Tensor z = matmul(x, y);
  CHECK(kernel_count("gemm") == 1);  // one gemm_batched over the batch
  grad({sum(z)}, {y});
  CHECK(kernel_count("matmul_backward_a") == 0);
  CHECK(kernel_count("matmul_backward_b") == 1);
}

TEST_CASE("linear: by hand with and without bias") {
  for (DType dt : {DType::Float32, DType::Float64}) {
    Tensor x = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, dt);
    Tensor w = tensor({1, 0, -1, 2, 1, 0}, {2, 3}, dt);  // out = 2, in = 3
    Tensor b = tensor({10, 20}, {2}, dt);
    // x W^T = [1-3, 2+2; 4-6, 8+5] = [-2, 4; -2, 13]
    Tensor y0 = linear(x, w);
    CHECK(y0.shape() == Shape{2, 2});
    check_close(y0, {-2, 4, -2, 13});
    check_close(linear(x, w, b), {8, 24, 8, 33});
    Tensor y1 = linear(tensor({1, 2, 3}, {3}, dt), w, b);  // 1-D x -> [out]
    CHECK(y1.shape() == Shape{2});
    check_close(y1, {8, 24});
  }
}

TEST_CASE("linear: leading dims equal matmul with W^T plus b") {
  Tensor x = uniform({2, 3, 4}, -1, 1, 1);
  Tensor w = uniform({5, 4}, -1, 1, 2);
  Tensor b = uniform({5}, -1, 1, 3);
  Tensor y = linear(x, w, b);
  CHECK(y.shape() == Shape{2, 3, 5});
  check_close(y, add(matmul(x, w.transpose(0, 1)), b), 1e-12, 1e-12);
  check_close(linear(x, w), matmul(x, w.transpose(0, 1)), 1e-12, 1e-12);
  // Zero rows and zero in-features are valid: an empty result and the bias alone.
  CHECK(linear(empty({0, 4}, DType::Float64), w, b).shape() == Shape{0, 5});
  check_close(linear(empty({2, 0}, DType::Float64), empty({2, 0}, DType::Float64),
                     tensor({1, 2}, {2}, DType::Float64)),
              {1, 2, 1, 2});
}

TEST_CASE("linear: gradient checks for x, weight and bias") {
  Tensor x = uniform({3, 4}, -1, 1, 31), w = uniform({5, 4}, -1, 1, 32);
  Tensor b = uniform({5}, -1, 1, 33);
  CHECK(gradcheck([](const auto& v) { return linear(v[0], v[1], v[2]); }, {x, w, b}));
  CHECK(gradcheck([](const auto& v) { return linear(v[0], v[1]); }, {x, w}));
  CHECK(gradcheck([](const auto& v) { return linear(v[0], v[1], v[2]); },
                  {uniform({2, 3, 4}, -1, 1, 34), w, b}));
  CHECK(gradcheck([](const auto& v) { return linear(v[0], v[1], v[2]); },
                  {uniform({4}, -1, 1, 35), w, b}));
  // A transposed weight view (non-contiguous) still gets the right gradient.
  CHECK(gradcheck([](const auto& v) { return linear(v[0], v[1].transpose(0, 1), v[2]); },
                  {x, uniform({4, 5}, -1, 1, 36), b}));
}

TEST_CASE("linear: grad(loss, {x}) runs no weight or bias gradient kernel") {
  Tensor x = uniform({3, 4}).set_requires_grad(true);
  Tensor w = uniform({5, 4}, -1, 1, 2).set_requires_grad(true);
  Tensor b = uniform({5}, -1, 1, 3).set_requires_grad(true);
  {
    Tensor loss = sum(linear(x, w, b));
    reset_kernel_counts();
    Tensor gx = grad({loss}, {x})[0];
    CHECK(kernel_count("linear_backward_input") == 1);
    CHECK(kernel_count("linear_backward_weight") == 0);
    CHECK(kernel_count("linear_backward_bias") == 0);
    // dx = ones W: every row is the column sums of W.
    Tensor cols = sum(w, {0});
    for (int64_t i = 0; i < 3; ++i) check_close(gx.narrow(0, i, 1).reshape({4}), cols, 1e-12);
  }
  {
    Tensor loss = sum(linear(x, w, b));
    reset_kernel_counts();
    auto g = grad({loss}, {w});
    CHECK(kernel_count("linear_backward_input") == 0);
    CHECK(kernel_count("linear_backward_weight") == 1);
    CHECK(kernel_count("linear_backward_bias") == 0);
  }
  {
    Tensor loss = sum(linear(x, w, b));
    reset_kernel_counts();
    loss.backward();
    CHECK(kernel_count("linear_backward_input") == 1);
    CHECK(kernel_count("linear_backward_weight") == 1);
    CHECK(kernel_count("linear_backward_bias") == 1);
    check_close(b.grad(), {3, 3, 3, 3, 3});  // db = column sums of ones [3, 5]
  }
}

TEST_CASE("matmul and linear: errors name the op and every shape") {
  check_error([] { matmul(zeros({2, 3}), zeros({4, 2})); }, {"matmul", "[2, 3]", "[4, 2]"});
  check_error([] { matmul(zeros({3}), zeros({4})); }, {"matmul", "[3]", "[4]"});
  check_error(
      [] {
        matmul(zeros({2, 3, 4}), zeros({3, 4, 5}));
      },
      {"matmul", "[2, 3, 4]", "[3, 4, 5]", "broadcast"});
  check_error([] { matmul(zeros({}), zeros({3})); }, {"matmul", "[]", "[3]"});
  check_error(
      [] {
        matmul(zeros({2, 3}), zeros({3, 2}, DType::Float64));
      },
      {"matmul", "float32[2, 3]", "float64[3, 2]"});
  check_error(
      [] {
        matmul(zeros({2, 3}, DType::Int64), zeros({3, 2}, DType::Int64));
      },
      {"matmul", "int64"});
  check_error(
      [] {
        linear(zeros({2, 3}), zeros({4, 5}), zeros({4}));
      },
      {"linear", "[2, 3]", "[4, 5]", "[4]"});
  check_error(
      [] {
        linear(zeros({2, 3}), zeros({4, 3}), zeros({5}));
      },
      {"linear", "[2, 3]", "[4, 3]", "[5]"});
  check_error([] { linear(zeros({2, 3}), zeros({3})); }, {"linear", "[2, 3]", "[3]", "none"});
  check_error(
      [] {
        linear(zeros({2, 3}), zeros({4, 3}, DType::Float64));
      },
      {"linear", "float32[2, 3]", "float64[4, 3]"});
}
