// conv2d and conv_transpose2d as ops: gradient checks over the shared problem list, the
// transposed conv against its naive scatter definition, grad() pruning, and errors.
#include "gradcheck.h"

#include "reference/conv_problems.h"
#include "reference/conv_reference.h"

using namespace nabla;
using namespace nabla::test;

namespace {
Conv2dArgs args_of(const ConvProblem& pr, int64_t op_h = 0, int64_t op_w = 0) {
  Conv2dArgs a;
  a.stride = {pr.stride_h, pr.stride_w};
  a.padding = {pr.pad_h, pr.pad_w};
  a.dilation = {pr.dil_h, pr.dil_w};
  a.output_padding = {op_h, op_w};
  a.groups = pr.groups;
  return a;
}
int64_t conv_elements(const ConvProblem& pr) {
  return pr.N * pr.C * pr.H * pr.W + pr.K * pr.C / pr.groups * pr.R * pr.S;
}
// Gradient checks cost two forwards per element; keep them to the small problems.
constexpr int64_t kGradcheckMaxElements = 700;
}  // namespace

TEST_CASE("conv2d: hand-computed case") {
  // x = 1..9 as 3x3, w = [[1, 0], [0, -1]]: y[p,q] = x[p,q] - x[p+1,q+1] = -4 everywhere.
  Tensor x = arange(1, 10).reshape({1, 1, 3, 3});
  Tensor w = tensor({1, 0, 0, -1}, {1, 1, 2, 2});
  check_close(conv2d(x, w), {-4, -4, -4, -4});
  check_close(conv2d(x, w, tensor({0.5}, {1})), {-3.5, -3.5, -3.5, -3.5});
  // Padding 1, stride 2: outputs at (0,0), (0,2), (2,0), (2,2) of the padded grid.
  check_close(conv2d(x, w, Tensor(), 2, 1), {0 - 1, 0 - 3, 0 - 7, 5 - 9});
}

TEST_CASE("conv2d: gradient checks over the problem list") {
  int checked = 0;
  for (const ConvProblem& pr : kConvProblems) {
    if (conv_elements(pr) > kGradcheckMaxElements) continue;
    CAPTURE(pr.name);
    Tensor x = uniform({pr.N, pr.C, pr.H, pr.W}, -1, 1, 1);
    Tensor w = uniform({pr.K, pr.C / pr.groups, pr.R, pr.S}, -1, 1, 2);
    Tensor b = uniform({pr.K}, -1, 1, 3);
    Conv2dArgs a = args_of(pr);
    CHECK(gradcheck([a](const auto& v) { return conv2d(v[0], v[1], v[2], a); }, {x, w, b}));
    ++checked;
  }
  CHECK(checked >= 10);
}

TEST_CASE("conv_transpose2d: forward matches the scatter definition") {
  for (const ConvProblem& pr : kConvProblems) {
    for (int64_t op = 0; op < 2; ++op) {
      if (op >= std::max(pr.stride_h, pr.dil_h) || op >= std::max(pr.stride_w, pr.dil_w)) continue;
      if (pr.transposed_ho(op) < 1 || pr.transposed_wo(op) < 1) continue;
      CAPTURE(pr.name);
      CAPTURE(op);
      Tensor x = uniform({pr.N, pr.C, pr.H, pr.W}, -1, 1, 4);
      Tensor w = uniform({pr.C, pr.K / pr.groups, pr.R, pr.S}, -1, 1, 5);
      Tensor b = uniform({pr.K}, -1, 1, 6);
      Tensor y = conv_transpose2d(x, w, b, args_of(pr, op, op));
      ref::ConvTranspose2dShape t;
      t.N = pr.N, t.Cin = pr.C, t.H = pr.H, t.W = pr.W, t.Cout = pr.K, t.R = pr.R, t.S = pr.S;
      t.stride_h = pr.stride_h, t.stride_w = pr.stride_w, t.pad_h = pr.pad_h, t.pad_w = pr.pad_w;
      t.dil_h = pr.dil_h, t.dil_w = pr.dil_w, t.out_pad_h = op, t.out_pad_w = op;
      t.groups = pr.groups;
      REQUIRE(y.shape() == Shape{pr.N, pr.K, t.Ho(), t.Wo()});
      std::vector<double> expect(size_t(y.numel()));
      ref::conv_transpose2d_forward<double>(t, x.data<double>(), w.data<double>(), b.data<double>(),
                                            expect.data());
      check_close(y, expect, 1e-10, 1e-10);
    }
  }
}

TEST_CASE("conv_transpose2d: gradient checks, with output_padding") {
  int checked = 0;
  for (const ConvProblem& pr : kConvProblems) {
    if (conv_elements(pr) > kGradcheckMaxElements) continue;
    for (int64_t op = 0; op < 2; ++op) {
      if (op >= std::max(pr.stride_h, pr.dil_h) || op >= std::max(pr.stride_w, pr.dil_w)) continue;
      if (pr.transposed_ho(op) < 1 || pr.transposed_wo(op) < 1) continue;
      CAPTURE(pr.name);
      Tensor x = uniform({pr.N, pr.C, pr.H, pr.W}, -1, 1, 7);
      Tensor w = uniform({pr.C, pr.K / pr.groups, pr.R, pr.S}, -1, 1, 8);
      Tensor b = uniform({pr.K}, -1, 1, 9);
      Conv2dArgs a = args_of(pr, op, op);
      CHECK(gradcheck([a](const auto& v) { return conv_transpose2d(v[0], v[1], v[2], a); },
                      {x, w, b}));
      ++checked;
    }
  }
  CHECK(checked >= 10);
}

TEST_CASE("conv: grad() with respect to the input runs no weight-gradient kernel") {
  Tensor x = uniform({2, 3, 8, 8}).to(DType::Float32).set_requires_grad(true);
  Tensor w1 = uniform({4, 3, 3, 3}).to(DType::Float32).set_requires_grad(true);
  Tensor w2 = uniform({4, 2, 4, 4}).to(DType::Float32).set_requires_grad(true);
  Tensor b = zeros({4}).set_requires_grad(true);
  Tensor h = relu(conv2d(x, w1, b, 1, 1));
  Tensor y = conv_transpose2d(h, w2, Tensor(), 2, 1);
  CHECK(y.shape() == Shape{2, 2, 16, 16});
  Tensor L = sum(y);
  reset_kernel_counts();
  Tensor gx = grad({L}, {x}, {}, true)[0];
  CHECK(gx.shape() == x.shape());
  CHECK(kernel_count("conv2d_backward_weight") == 0);
  CHECK(kernel_count("sum") == 0);  // no bias gradient either
  CHECK(kernel_count("conv2d_backward_input") == 1);
  CHECK(kernel_count("conv2d_forward") == 1);  // the transposed conv's backward-input
  reset_kernel_counts();
  L.backward();
  CHECK(kernel_count("conv2d_backward_weight") == 2);
  CHECK(w1.grad().defined());
  CHECK(w2.grad().defined());
  CHECK(b.grad().defined());
}

TEST_CASE("conv: errors name the op and the shapes") {
  Tensor x = zeros({2, 3, 8, 8});
  check_error([&] { conv2d(x, zeros({4, 2, 3, 3})); }, {"conv2d", "[2, 3, 8, 8]", "[4, 2, 3, 3]"});
  check_error([&] { conv2d(x, zeros({4, 3, 3})); }, {"conv2d", "4-D", "[4, 3, 3]"});
  check_error([&] { conv2d(x, zeros({4, 3, 3, 3}), zeros({5})); }, {"conv2d", "bias", "[5]"});
  check_error([&] { conv2d(x, zeros({4, 3, 9, 9})); }, {"conv2d", "[2, 3, 8, 8]", "[4, 3, 9, 9]"});
  check_error(
      [&] {
        conv2d(x, zeros({4, 1, 3, 3}), Tensor(), 1, 0, 1, 2);
      },
      {"conv2d", "groups 2"});
  check_error(
      [&] {
        conv2d(x, zeros({4, 3, 3, 3}, DType::Float64));
      },
      {"conv2d", "float32[2, 3, 8, 8]", "float64[4, 3, 3, 3]"});
  check_error(
      [&] {
        conv_transpose2d(x, zeros({4, 3, 3, 3}));
      },
      {"conv_transpose2d", "[2, 3, 8, 8]", "[4, 3, 3, 3]"});
  check_error(
      [&] {
        conv_transpose2d(x, zeros({3, 2, 3, 3}), Tensor(), 2, 1, 2);
      },
      {"conv_transpose2d", "output_padding"});
}
