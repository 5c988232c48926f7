// Kernel-level tests of the CPU conv, pooling and upsampling kernels (kernels/cpu/conv.cpp,
// kernels/cpu/pool.cpp) against hand-computed cases and the naive references in
// tests/reference/conv_reference.h, over the shared problem list in conv_problems.h.
//
// Contracts checked everywhere: outputs and input gradients are prefilled with NaN, so an
// element the kernel forgets to write (or reads before writing) shows up; weight and bias
// gradients are prefilled with known non-zero values, so `=` instead of `+=` shows up.
// Kernels run in float (rtol = atol = 1e-4) and double (1e-10); the reference always runs in
// double.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "engine/error.h"
#include "gradcheck.h"
#include "kernels/conv.h"
#include "kernels/pool.h"
#include "reference/conv_problems.h"
#include "reference/conv_reference.h"

namespace {

using nabla::Conv2dParams;
using nabla::Pool2dParams;
namespace cpu = nabla::cpu;
namespace ref = nabla::ref;

template <typename T>
constexpr double kTol = sizeof(T) == sizeof(double) ? 1e-10 : 1e-4;

template <typename T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

template <typename T>
std::vector<T> nans(int64_t n) {
  return std::vector<T>(n, std::numeric_limits<T>::quiet_NaN());
}

// Known non-zero starting values for accumulated gradients.
std::vector<double> prefill(int64_t n) {
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = 0.25 * static_cast<double>(1 + i % 7);
  return v;
}

// Number of elements with |got - want| > atol + rtol*|want| (NaN counts); prints the first few.
template <typename T>
int64_t mismatches(const std::string& what, const std::vector<T>& got,
                   const std::vector<double>& want, double tol) {
  if (got.size() != want.size()) {
    MESSAGE(what << ": size " << got.size() << " != " << want.size());
    return static_cast<int64_t>(std::max(got.size(), want.size()));
  }
  int64_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]);
    if (std::abs(g - want[i]) <= tol + tol * std::abs(want[i])) continue;
    if (bad++ < 5) MESSAGE(what << "[" << i << "]: got " << g << ", want " << want[i]);
  }
  return bad;
}

#define CHECK_CLOSE(what, got, want, tol) CHECK(mismatches(what, got, want, tol) == 0)

int64_t numel_x(const Conv2dParams& p) {
  return p.N * p.C * p.H * p.W;
}
int64_t numel_w(const Conv2dParams& p) {
  return p.K * (p.C / p.groups) * p.R * p.S;
}
int64_t numel_y(const Conv2dParams& p) {
  return p.N * p.K * p.P * p.Q;
}

// ---------------------------------------------------------------- conv, hand-computed

TEST_CASE("conv2d: hand-computed 3x3 input, 2x2 kernel") {
  // x = [1 2 3; 4 5 6; 7 8 9], w = [1 2; 3 4], bias 0.5, valid conv: y[p,q] =
  // x[p,q] + 2 x[p,q+1] + 3 x[p+1,q] + 4 x[p+1,q+1] + 0.5.
  Conv2dParams p;
  p.N = 1, p.C = 1, p.H = 3, p.W = 3, p.K = 1, p.R = 2, p.S = 2;
  p.finalize();
  REQUIRE(p.P == 2);
  REQUIRE(p.Q == 2);
  const std::vector<double> x = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w = {1, 2, 3, 4}, b = {0.5};
  auto y = nans<double>(4);
  cpu::conv2d_forward(p, x.data(), w.data(), b.data(), y.data());
  CHECK_CLOSE("y", y, (std::vector<double>{37.5, 47.5, 67.5, 77.5}), 1e-12);

  // dy = ones: dx[h,w] sums the kernel taps that touch (h,w); dw[r,s] sums the 2x2 block of x
  // at offset (r,s); db sums dy. dw starts at 1 and db at 10 (accumulate).
  const std::vector<double> dy = {1, 1, 1, 1};
  auto dx = nans<double>(9);
  cpu::conv2d_backward_input(p, dy.data(), w.data(), dx.data());
  CHECK_CLOSE("dx", dx, (std::vector<double>{1, 3, 2, 4, 10, 6, 3, 7, 4}), 1e-12);
  std::vector<double> dw = {1, 1, 1, 1}, db = {10};
  cpu::conv2d_backward_weight(p, x.data(), dy.data(), dw.data(), db.data());
  CHECK_CLOSE("dw", dw, (std::vector<double>{13, 17, 25, 29}), 1e-12);
  CHECK_CLOSE("db", db, (std::vector<double>{14}), 1e-12);
}

TEST_CASE("conv2d: hand-computed stride 2, pad 1, 3x3 ones kernel") {
  // Each output is the sum of the in-bounds pixels of a 3x3 window at (2p-1, 2q-1).
  Conv2dParams p;
  p.N = 1, p.C = 1, p.H = 3, p.W = 3, p.K = 1, p.R = 3, p.S = 3;
  p.stride_h = p.stride_w = 2, p.pad_h = p.pad_w = 1;
  p.finalize();
  REQUIRE(p.P == 2);
  REQUIRE(p.Q == 2);
  const std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w(9, 1.0f);
  auto y = nans<float>(4);
  cpu::conv2d_forward<float>(p, x.data(), w.data(), nullptr, y.data());
  CHECK_CLOSE("y", y, (std::vector<double>{12, 16, 24, 28}), 0);
  // dx: the centre pixel is in all four windows, edge-middles in two, corners in one.
  const std::vector<float> dy = {1, 2, 3, 4};
  auto dx = nans<float>(9);
  cpu::conv2d_backward_input<float>(p, dy.data(), w.data(), dx.data());
  CHECK_CLOSE("dx", dx, (std::vector<double>{1, 3, 2, 4, 10, 6, 3, 7, 4}), 0);
}

// ---------------------------------------------------------------- conv, problem list

// Runs one problem through the three kernels in T and compares with the double reference.
template <typename T>
void check_conv_problem(const nabla::test::ConvProblem& pr, uint64_t seed) {
  const Conv2dParams p = pr.params();
  const double tol = kTol<T>;
  const auto x = nabla::test::uniform_values(numel_x(p), seed),
             w = nabla::test::uniform_values(numel_w(p), seed + 1),
             b = nabla::test::uniform_values(p.K, seed + 2),
             dy = nabla::test::uniform_values(numel_y(p), seed + 3);

  std::vector<double> y_ref(numel_y(p)), dx_ref(numel_x(p));
  auto dw_ref = prefill(numel_w(p)), db_ref = prefill(p.K);
  ref::conv2d_forward(p, x.data(), w.data(), b.data(), y_ref.data());
  ref::conv2d_backward_input(p, dy.data(), w.data(), dx_ref.data());
  ref::conv2d_backward_weight(p, x.data(), dy.data(), dw_ref.data(), db_ref.data());

  const auto xt = cast<T>(x), wt = cast<T>(w), bt = cast<T>(b), dyt = cast<T>(dy);
  auto y = nans<T>(numel_y(p));
  cpu::conv2d_forward(p, xt.data(), wt.data(), bt.data(), y.data());
  CHECK_CLOSE("y", y, y_ref, tol);

  std::vector<double> y_nobias(numel_y(p));
  ref::conv2d_forward<double>(p, x.data(), w.data(), nullptr, y_nobias.data());
  auto y2 = nans<T>(numel_y(p));
  cpu::conv2d_forward<T>(p, xt.data(), wt.data(), nullptr, y2.data());
  CHECK_CLOSE("y (no bias)", y2, y_nobias, tol);

  auto dx = nans<T>(numel_x(p));
  cpu::conv2d_backward_input(p, dyt.data(), wt.data(), dx.data());
  CHECK_CLOSE("dx", dx, dx_ref, tol);

  auto dw = cast<T>(prefill(numel_w(p))), db = cast<T>(prefill(p.K));
  cpu::conv2d_backward_weight(p, xt.data(), dyt.data(), dw.data(), db.data());
  CHECK_CLOSE("dw", dw, dw_ref, tol);
  CHECK_CLOSE("db", db, db_ref, tol);

  // db == nullptr skips the bias gradient and must not change dw.
  auto dw2 = cast<T>(prefill(numel_w(p)));
  cpu::conv2d_backward_weight<T>(p, xt.data(), dyt.data(), dw2.data(), nullptr);
  CHECK_CLOSE("dw (no db)", dw2, dw_ref, tol);
}

TEST_CASE("conv2d: every problem against the naive reference, double") {
  uint64_t seed = 100;
  for (const auto& pr : nabla::test::kConvProblems) {
    INFO("problem: ", std::string(pr.name));
    check_conv_problem<double>(pr, seed += 10);
  }
}

TEST_CASE("conv2d: every problem against the naive reference, float") {
  uint64_t seed = 200;
  for (const auto& pr : nabla::test::kConvProblems) {
    INFO("problem: ", std::string(pr.name));
    check_conv_problem<float>(pr, seed += 10);
  }
}

TEST_CASE("conv2d: backward passes are the adjoints of the forward") {
  // <conv(x, w), dy> = <x, backward_input(dy)> = <w, backward_weight(x, dy)>: a check of the
  // backward kernels that does not go through the reference at all.
  uint64_t seed = 300;
  for (const auto& pr : nabla::test::kConvProblems) {
    INFO("problem: ", std::string(pr.name));
    const Conv2dParams p = pr.params();
    const auto x = nabla::test::uniform_values(numel_x(p), ++seed),
               w = nabla::test::uniform_values(numel_w(p), ++seed),
               dy = nabla::test::uniform_values(numel_y(p), ++seed);
    std::vector<double> y(numel_y(p)), dx(numel_x(p)), dw(numel_w(p), 0.0);
    cpu::conv2d_forward<double>(p, x.data(), w.data(), nullptr, y.data());
    cpu::conv2d_backward_input(p, dy.data(), w.data(), dx.data());
    cpu::conv2d_backward_weight<double>(p, x.data(), dy.data(), dw.data(), nullptr);
    double ydy = 0, xdx = 0, wdw = 0;
    for (size_t i = 0; i < y.size(); ++i) ydy += y[i] * dy[i];
    for (size_t i = 0; i < x.size(); ++i) xdx += x[i] * dx[i];
    for (size_t i = 0; i < w.size(); ++i) wdw += w[i] * dw[i];
    CHECK(xdx == doctest::Approx(ydy).epsilon(1e-12));
    CHECK(wdw == doctest::Approx(ydy).epsilon(1e-12));
  }
}

TEST_CASE("conv2d: results do not depend on the order of runs (deterministic)") {
  const nabla::test::ConvProblem pr = {"batch 5", 5, 9, 5, 6, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  const Conv2dParams p = pr.params();
  const auto x = cast<float>(nabla::test::uniform_values(numel_x(p), 1)),
             dy = cast<float>(nabla::test::uniform_values(numel_y(p), 2));
  std::vector<float> dw1(numel_w(p), 0.f), db1(p.K, 0.f), dw2 = dw1, db2 = db1;
  cpu::conv2d_backward_weight(p, x.data(), dy.data(), dw1.data(), db1.data());
  cpu::conv2d_backward_weight(p, x.data(), dy.data(), dw2.data(), db2.data());
  CHECK(dw1 == dw2);
  CHECK(db1 == db2);
}

// ---------------------------------------------------------------- conv_transpose2d

// conv_transpose2d(x, w) with x [N, C, H, W] and w [C, K/g, R, S] must equal
// conv2d_backward_input with dy = x on the problem's transposed_params().
template <typename T>
void check_transposed(const nabla::test::ConvProblem& pr, int64_t op_h, int64_t op_w,
                      uint64_t seed) {
  ref::ConvTranspose2dShape t;
  t.N = pr.N, t.Cin = pr.C, t.H = pr.H, t.W = pr.W, t.Cout = pr.K, t.R = pr.R, t.S = pr.S;
  t.stride_h = pr.stride_h, t.stride_w = pr.stride_w, t.pad_h = pr.pad_h, t.pad_w = pr.pad_w;
  t.dil_h = pr.dil_h, t.dil_w = pr.dil_w, t.groups = pr.groups;
  t.out_pad_h = op_h, t.out_pad_w = op_w;
  const Conv2dParams p = pr.transposed_params(op_h, op_w);
  REQUIRE(p.H == t.Ho());
  REQUIRE(p.W == t.Wo());
  REQUIRE(numel_w(p) == pr.C * (pr.K / pr.groups) * pr.R * pr.S);

  const auto x = nabla::test::uniform_values(pr.N * pr.C * pr.H * pr.W, seed),
             w = nabla::test::uniform_values(numel_w(p), seed + 1);
  std::vector<double> y_ref(numel_x(p));
  ref::conv_transpose2d_forward<double>(t, x.data(), w.data(), nullptr, y_ref.data());
  const auto xt = cast<T>(x), wt = cast<T>(w);
  auto y = nans<T>(numel_x(p));
  cpu::conv2d_backward_input(p, xt.data(), wt.data(), y.data());
  CHECK_CLOSE("conv_transpose2d y", y, y_ref, kTol<T>);
}

TEST_CASE("conv_transpose2d forward is conv2d_backward_input, output_padding 0 and 1") {
  uint64_t seed = 400;
  int64_t with_output_padding = 0;
  for (const auto& pr : nabla::test::kConvProblems) {
    for (int64_t op = 0; op <= 1; ++op) {
      // PyTorch's rule: output_padding < stride or < dilation, in each dimension.
      const int64_t op_h = op < std::max(pr.stride_h, pr.dil_h) ? op : 0;
      const int64_t op_w = op < std::max(pr.stride_w, pr.dil_w) ? op : 0;
      if (op == 1 && op_h == 0 && op_w == 0) continue;
      if (pr.transposed_ho(op_h) < 1 || pr.transposed_wo(op_w) < 1) continue;
      INFO("problem: ", pr.name, ", output_padding (", op_h, ",", op_w, ")");
      if (op_h < pr.stride_h && op_w < pr.stride_w) {
        // Here finalize() alone gives back the transposed input's size: floor drops the
        // output_padding rows.
        Conv2dParams q = pr.transposed_params(op_h, op_w);
        q.finalize();
        CHECK(q.P == pr.H);
        CHECK(q.Q == pr.W);
      }
      with_output_padding += op;
      check_transposed<double>(pr, op_h, op_w, seed += 10);
      check_transposed<float>(pr, op_h, op_w, seed += 10);
    }
  }
  CHECK(with_output_padding >= 5);
}

TEST_CASE("conv_transpose2d: output_padding >= stride (allowed by dilation) needs P set") {
  // stride 1, dilation 2, output_padding 1: finalize() on the conv side gives P = H + 1,
  // so the transposed conv must lower P to H; the extra output row is then still correct.
  const nabla::test::ConvProblem pr = {"s1 d2 op1", 2, 3, 5, 6, 4, 3, 3, 1, 1, 1, 1, 2, 2, 1};
  Conv2dParams q = pr.transposed_params(1, 1);
  q.finalize();
  CHECK(q.P == pr.H + 1);
  check_transposed<double>(pr, 1, 1, 7);
}

// ---------------------------------------------------------------- conv errors

std::string conv_error(Conv2dParams p) {
  try {
    p.finalize();
  } catch (const nabla::Error& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("Conv2dParams::finalize rejects impossible convs, naming the op and sizes") {
  Conv2dParams p;
  p.N = 2, p.C = 3, p.H = 5, p.W = 6, p.K = 4, p.R = 7, p.S = 3;
  const std::string big = conv_error(p);
  CHECK(big.find("conv2d") != std::string::npos);
  CHECK(big.find("[2,3,5,6]") != std::string::npos);
  CHECK(big.find("[4,3/1,7,3]") != std::string::npos);
  CHECK(big.find("7x3") != std::string::npos);
  CHECK(big.find("5x6") != std::string::npos);

  // Dilation makes the kernel larger: 3 taps at dilation 3 span 7 rows.
  p.R = 3, p.dil_h = 3;
  CHECK(conv_error(p).find("7x3") != std::string::npos);
  p.pad_h = 1;  // 5 + 2 = 7 rows: now it fits, P = 1.
  CHECK(conv_error(p).empty());

  Conv2dParams g;
  g.N = 1, g.C = 3, g.H = 4, g.W = 4, g.K = 4, g.R = 3, g.S = 3, g.groups = 2;
  const std::string grp = conv_error(g);
  CHECK(grp.find("conv2d") != std::string::npos);
  CHECK(grp.find("groups 2") != std::string::npos);
  CHECK(grp.find("[1,3,4,4]") != std::string::npos);
  CHECK(grp.find("divisible") != std::string::npos);
  g.C = 4, g.K = 3;
  CHECK(conv_error(g).find("divisible") != std::string::npos);

  Conv2dParams s;
  s.N = 1, s.C = 1, s.H = 4, s.W = 4, s.K = 1, s.R = 3, s.S = 3, s.stride_w = 0;
  CHECK(conv_error(s).find("stride") != std::string::npos);
  CHECK_THROWS_AS(s.finalize(), nabla::Error);
}

// ---------------------------------------------------------------- pooling, hand-computed

// x = [1 3 2 4; 5 0 1 7; 9 6 8 2; 3 4 5 1]
const std::vector<double> kPoolX = {1, 3, 2, 4, 5, 0, 1, 7, 9, 6, 8, 2, 3, 4, 5, 1};

Pool2dParams pool_params(int64_t N, int64_t C, int64_t H, int64_t W, int64_t k, int64_t s,
                         int64_t pad, const char* op = "max_pool2d") {
  Pool2dParams p;
  p.N = N, p.C = C, p.H = H, p.W = W, p.kh = p.kw = k, p.sh = p.sw = s, p.ph = p.pw = pad;
  p.finalize(op);
  return p;
}

TEST_CASE("max_pool2d: hand-computed 4x4") {
  SUBCASE("2x2 stride 2") {
    const auto p = pool_params(1, 1, 4, 4, 2, 2, 0);
    auto y = nans<double>(4);
    std::vector<int64_t> arg(4, -7);
    cpu::max_pool2d_forward(p, kPoolX.data(), y.data(), arg.data());
    CHECK_CLOSE("y", y, (std::vector<double>{5, 7, 9, 8}), 0);
    CHECK(arg == std::vector<int64_t>{4, 7, 8, 10});
    const std::vector<double> dy = {1, 2, 3, 4};
    auto dx = nans<double>(16);
    cpu::max_pool2d_backward(p, dy.data(), arg.data(), dx.data());
    CHECK_CLOSE("dx", dx, (std::vector<double>{0, 0, 0, 0, 1, 0, 0, 2, 3, 0, 4, 0, 0, 0, 0, 0}), 0);
  }
  SUBCASE("3x3 stride 1: overlapping windows add up") {
    // Both upper windows and both lower windows pick the 9 (index 8) and the 8 (index 10).
    const auto p = pool_params(1, 1, 4, 4, 3, 1, 0);
    auto y = nans<double>(4);
    std::vector<int64_t> arg(4);
    cpu::max_pool2d_forward(p, kPoolX.data(), y.data(), arg.data());
    CHECK_CLOSE("y", y, (std::vector<double>{9, 8, 9, 8}), 0);
    CHECK(arg == std::vector<int64_t>{8, 10, 8, 10});
    const std::vector<double> dy = {1, 2, 3, 4};
    auto dx = nans<double>(16);
    cpu::max_pool2d_backward(p, dy.data(), arg.data(), dx.data());
    CHECK_CLOSE("dx", dx, (std::vector<double>{0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 6, 0, 0, 0, 0, 0}), 0);
  }
  SUBCASE("3x3 stride 2 pad 1, all-negative input: padding is -inf, not 0") {
    // x' = -x - 1 has its maximum -1 at index 5, inside all four windows; with zero padding
    // the three border windows would wrongly give 0.
    std::vector<double> xn(16);
    for (int i = 0; i < 16; ++i) xn[i] = -kPoolX[i] - 1;
    const auto p = pool_params(1, 1, 4, 4, 3, 2, 1);
    REQUIRE(p.P == 2);
    auto y = nans<double>(4);
    std::vector<int64_t> arg(4);
    cpu::max_pool2d_forward(p, xn.data(), y.data(), arg.data());
    CHECK_CLOSE("y", y, (std::vector<double>{-1, -1, -1, -1}), 0);
    CHECK(arg == std::vector<int64_t>{5, 5, 5, 5});
  }
  SUBCASE("NaN propagates") {
    std::vector<float> x(kPoolX.begin(), kPoolX.end());
    x[5] = std::numeric_limits<float>::quiet_NaN();
    const auto p = pool_params(1, 1, 4, 4, 2, 2, 0);
    std::vector<float> y(4);
    std::vector<int64_t> arg(4);
    cpu::max_pool2d_forward(p, x.data(), y.data(), arg.data());
    CHECK(std::isnan(y[0]));
    CHECK(arg[0] == 5);
    CHECK(y[1] == 7.0f);
  }
}

TEST_CASE("avg_pool2d: hand-computed 4x4, count_include_pad") {
  SUBCASE("2x2 stride 2") {
    const auto p = pool_params(1, 1, 4, 4, 2, 2, 0, "avg_pool2d");
    auto y = nans<double>(4);
    cpu::avg_pool2d_forward(p, kPoolX.data(), y.data());
    CHECK_CLOSE("y", y, (std::vector<double>{2.25, 3.5, 5.5, 4}), 1e-15);
    const std::vector<double> dy = {4, 8, 12, 16};
    auto dx = nans<double>(16);
    cpu::avg_pool2d_backward(p, dy.data(), dx.data());
    CHECK_CLOSE("dx", dx, (std::vector<double>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}),
                1e-15);
  }
  SUBCASE("3x3 stride 2 pad 1: padded zeros count in the divisor 9") {
    const auto p = pool_params(1, 1, 4, 4, 3, 2, 1, "avg_pool2d");
    auto y = nans<double>(4);
    cpu::avg_pool2d_forward(p, kPoolX.data(), y.data());
    CHECK_CLOSE("y", y, (std::vector<double>{9.0 / 9, 17.0 / 9, 27.0 / 9, 34.0 / 9}), 1e-15);
    // dy = 9 everywhere: dx counts how many windows hold each pixel (rows/cols 1 are shared).
    const std::vector<double> dy = {9, 9, 9, 9};
    auto dx = nans<double>(16);
    cpu::avg_pool2d_backward(p, dy.data(), dx.data());
    CHECK_CLOSE("dx", dx, (std::vector<double>{1, 2, 1, 1, 2, 4, 2, 2, 1, 2, 1, 1, 1, 2, 1, 1}),
                1e-15);
  }
}

TEST_CASE("global_avg_pool: hand-computed") {
  auto x = kPoolX;
  for (double v : kPoolX) x.push_back(2 * v);  // second channel
  std::vector<double> y = nans<double>(2);
  cpu::global_avg_pool_forward<double>(1, 2, 4, 4, x.data(), y.data());
  CHECK_CLOSE("y", y, (std::vector<double>{61.0 / 16, 122.0 / 16}), 1e-15);
  const std::vector<double> dy = {16, 32};
  auto dx = nans<double>(32);
  cpu::global_avg_pool_backward<double>(1, 2, 4, 4, dy.data(), dx.data());
  std::vector<double> want(32, 1.0);
  for (int i = 16; i < 32; ++i) want[i] = 2.0;
  CHECK_CLOSE("dx", dx, want, 0);
}

TEST_CASE("Pool2dParams::finalize rejects bad pools, naming the op and sizes") {
  Pool2dParams p;
  p.N = 1, p.C = 2, p.H = 5, p.W = 5, p.kh = p.kw = 2, p.sh = p.sw = 2, p.ph = 0, p.pw = 2;
  try {
    p.finalize("max_pool2d");
    FAIL("finalize accepted padding 2 with kernel 2");
  } catch (const nabla::Error& e) {
    const std::string m = e.what();
    CHECK(m.find("max_pool2d") != std::string::npos);
    CHECK(m.find("[1,2,5,5]") != std::string::npos);
    CHECK(m.find("pad (0,2)") != std::string::npos);
    CHECK(m.find("half") != std::string::npos);
  }
  p.pw = 0, p.kh = 6;
  CHECK_THROWS_WITH_AS(p.finalize("avg_pool2d"), doctest::Contains("avg_pool2d"), nabla::Error);
  p.kh = 2, p.sh = 0;
  CHECK_THROWS_AS(p.finalize("avg_pool2d"), nabla::Error);
  p.sh = 2;
  p.finalize("avg_pool2d");
  CHECK(p.P == 2);
  CHECK(p.Q == 2);
}

// ---------------------------------------------------------------- upsampling, hand-computed

TEST_CASE("upsample_nearest2d: hand-computed") {
  SUBCASE("2x2 -> 4x4") {
    const std::vector<double> x = {1, 2, 3, 4};
    auto y = nans<double>(16);
    cpu::upsample_nearest2d_forward<double>(1, 1, 2, 2, 4, 4, x.data(), y.data());
    CHECK_CLOSE("y", y, (std::vector<double>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}), 0);
    std::vector<double> dy(16);
    for (int i = 0; i < 16; ++i) dy[i] = i;
    auto dx = nans<double>(4);
    cpu::upsample_nearest2d_backward<double>(1, 1, 2, 2, 4, 4, dy.data(), dx.data());
    // dx[0] = 0+1+4+5, dx[1] = 2+3+6+7, dx[2] = 8+9+12+13, dx[3] = 10+11+14+15.
    CHECK_CLOSE("dx", dx, (std::vector<double>{10, 18, 42, 50}), 0);
  }
  SUBCASE("1x3 -> 2x5: non-integer scale, src = floor(dst * 3 / 5) = 0 0 1 1 2") {
    const std::vector<double> x = {1, 2, 3};
    auto y = nans<double>(10);
    cpu::upsample_nearest2d_forward<double>(1, 1, 1, 3, 2, 5, x.data(), y.data());
    CHECK_CLOSE("y", y, (std::vector<double>{1, 1, 2, 2, 3, 1, 1, 2, 2, 3}), 0);
    const std::vector<double> dy = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    auto dx = nans<double>(3);
    cpu::upsample_nearest2d_backward<double>(1, 1, 1, 3, 2, 5, dy.data(), dx.data());
    CHECK_CLOSE("dx", dx, (std::vector<double>{1 + 2 + 6 + 7, 3 + 4 + 8 + 9, 5 + 10}), 0);
  }
}

TEST_CASE("upsample_bilinear2d: hand-computed 2x2 -> 4x4, align_corners = false") {
  // src = 0.5*dst - 0.25 -> 0 (clamped), 0.25, 0.75, 1.25 (both taps on row 1).
  const std::vector<double> x = {1, 3, 5, 7};
  auto y = nans<double>(16);
  cpu::upsample_bilinear2d_forward<double>(1, 1, 2, 2, 4, 4, x.data(), y.data());
  CHECK_CLOSE("y", y,
              (std::vector<double>{1, 1.5, 2.5, 3, 2, 2.5, 3.5, 4, 4, 4.5, 5.5, 6, 5, 5.5, 6.5, 7}),
              1e-15);
  // Along one axis the weights into input 0 are 1, 0.75, 0.25, 0 (sum 2), into input 1
  // 0, 0.25, 0.75, 1 (sum 2); so dy = ones gives 4 per input pixel.
  const std::vector<double> dy(16, 1.0);
  auto dx = nans<double>(4);
  cpu::upsample_bilinear2d_backward<double>(1, 1, 2, 2, 4, 4, dy.data(), dx.data());
  CHECK_CLOSE("dx", dx, (std::vector<double>{4, 4, 4, 4}), 1e-15);
}

// ---------------------------------------------------------------- pooling, random vs reference

struct PoolProblem {
  const char* name;
  int64_t N, C, H, W, kh, kw, sh, sw, ph, pw;
};

// clang-format off
constexpr PoolProblem kPoolProblems[] = {
  // name                      N  C  H   W   kh kw sh sw ph pw
  {"2x2 s2",                   2, 3, 8,  8,  2, 2, 2, 2, 0, 0},
  {"2x2 s2 odd H/W (floor)",   1, 2, 7,  9,  2, 2, 2, 2, 0, 0},
  {"3x3 s2 p1 (overlap)",      2, 3, 9,  8,  3, 3, 2, 2, 1, 1},
  {"3x3 s1 p1 (overlap)",      1, 5, 6,  7,  3, 3, 1, 1, 1, 1},
  {"3x2 s(1,2) p(1,0)",        2, 2, 6,  9,  3, 2, 1, 2, 1, 0},
  {"kernel = input",           2, 3, 5,  6,  5, 6, 1, 1, 0, 0},
  {"big planes (threaded)",    4, 8, 32, 30, 2, 2, 2, 2, 0, 0},
};
// clang-format on

template <typename T>
void check_pool_problem(const PoolProblem& pp, uint64_t seed) {
  Pool2dParams p;
  p.N = pp.N, p.C = pp.C, p.H = pp.H, p.W = pp.W, p.kh = pp.kh, p.kw = pp.kw, p.sh = pp.sh,
  p.sw = pp.sw, p.ph = pp.ph, p.pw = pp.pw;
  p.finalize("pool test");
  const int64_t nx = p.N * p.C * p.H * p.W, ny = p.N * p.C * p.P * p.Q;
  const auto x = nabla::test::uniform_values(nx, seed),
             dy = nabla::test::uniform_values(ny, seed + 1);
  const auto xt = cast<T>(x), dyt = cast<T>(dy);
  const double tol = kTol<T>;

  std::vector<double> y_ref(ny), dx_ref(nx);
  std::vector<int64_t> arg_ref(ny);
  ref::max_pool2d_forward(p, x.data(), y_ref.data(), arg_ref.data());
  ref::max_pool2d_backward(p, dy.data(), arg_ref.data(), dx_ref.data());
  auto y = nans<T>(ny), dx = nans<T>(nx);
  std::vector<int64_t> arg(ny, -1);
  cpu::max_pool2d_forward(p, xt.data(), y.data(), arg.data());
  CHECK_CLOSE("max y", y, y_ref, tol);
  CHECK(arg == arg_ref);
  cpu::max_pool2d_backward(p, dyt.data(), arg.data(), dx.data());
  CHECK_CLOSE("max dx", dx, dx_ref, tol);

  ref::avg_pool2d_forward(p, x.data(), y_ref.data());
  ref::avg_pool2d_backward(p, dy.data(), dx_ref.data());
  y = nans<T>(ny), dx = nans<T>(nx);
  cpu::avg_pool2d_forward(p, xt.data(), y.data());
  CHECK_CLOSE("avg y", y, y_ref, tol);
  cpu::avg_pool2d_backward(p, dyt.data(), dx.data());
  CHECK_CLOSE("avg dx", dx, dx_ref, tol);

  std::vector<double> g_ref(p.N * p.C), gdx_ref(nx);
  ref::global_avg_pool_forward(p.N, p.C, p.H, p.W, x.data(), g_ref.data());
  ref::global_avg_pool_backward(p.N, p.C, p.H, p.W, g_ref.data(), gdx_ref.data());
  auto g = nans<T>(p.N * p.C), gdx = nans<T>(nx);
  cpu::global_avg_pool_forward(p.N, p.C, p.H, p.W, xt.data(), g.data());
  CHECK_CLOSE("global y", g, g_ref, tol);
  const auto gt = cast<T>(g_ref);
  cpu::global_avg_pool_backward(p.N, p.C, p.H, p.W, gt.data(), gdx.data());
  CHECK_CLOSE("global dx", gdx, gdx_ref, tol);
}

TEST_CASE("pooling: random problems against the naive reference") {
  uint64_t seed = 500;
  for (const auto& pp : kPoolProblems) {
    INFO("problem: ", pp.name);
    check_pool_problem<double>(pp, seed += 10);
    check_pool_problem<float>(pp, seed += 10);
  }
}

struct UpsampleProblem {
  const char* name;
  int64_t N, C, H, W, OH, OW;
};

// clang-format off
constexpr UpsampleProblem kUpsampleProblems[] = {
  {"x2",                     2, 3, 4,  5,  8,  10},
  {"x3 / x2 mixed",          1, 2, 3,  4,  9,  8},
  {"non-integer 3 -> 7",     2, 2, 3,  5,  7,  12},
  {"downsample 7 -> 3",      1, 3, 7,  8,  3,  5},
  {"identity size",          1, 2, 5,  4,  5,  4},
  {"1x1 input",              2, 2, 1,  1,  3,  4},
  {"big planes (threaded)",  2, 8, 16, 16, 32, 32},
};
// clang-format on

template <typename T>
void check_upsample_problem(const UpsampleProblem& u, uint64_t seed) {
  const int64_t nx = u.N * u.C * u.H * u.W, ny = u.N * u.C * u.OH * u.OW;
  const auto x = nabla::test::uniform_values(nx, seed),
             dy = nabla::test::uniform_values(ny, seed + 1);
  const auto xt = cast<T>(x), dyt = cast<T>(dy);
  const double tol = kTol<T>;
  std::vector<double> y_ref(ny), dx_ref(nx);

  ref::upsample_nearest2d_forward(u.N, u.C, u.H, u.W, u.OH, u.OW, x.data(), y_ref.data());
  ref::upsample_nearest2d_backward(u.N, u.C, u.H, u.W, u.OH, u.OW, dy.data(), dx_ref.data());
  auto y = nans<T>(ny), dx = nans<T>(nx);
  cpu::upsample_nearest2d_forward(u.N, u.C, u.H, u.W, u.OH, u.OW, xt.data(), y.data());
  CHECK_CLOSE("nearest y", y, y_ref, tol);
  cpu::upsample_nearest2d_backward(u.N, u.C, u.H, u.W, u.OH, u.OW, dyt.data(), dx.data());
  CHECK_CLOSE("nearest dx", dx, dx_ref, tol);

  ref::upsample_bilinear2d_forward(u.N, u.C, u.H, u.W, u.OH, u.OW, x.data(), y_ref.data());
  ref::upsample_bilinear2d_backward(u.N, u.C, u.H, u.W, u.OH, u.OW, dy.data(), dx_ref.data());
  y = nans<T>(ny), dx = nans<T>(nx);
  cpu::upsample_bilinear2d_forward(u.N, u.C, u.H, u.W, u.OH, u.OW, xt.data(), y.data());
  CHECK_CLOSE("bilinear y", y, y_ref, tol);
  cpu::upsample_bilinear2d_backward(u.N, u.C, u.H, u.W, u.OH, u.OW, dyt.data(), dx.data());
  CHECK_CLOSE("bilinear dx", dx, dx_ref, tol);
}

TEST_CASE("upsampling: random problems against the naive reference") {
  uint64_t seed = 600;
  for (const auto& u : kUpsampleProblems) {
    INFO("problem: ", u.name);
    check_upsample_problem<double>(u, seed += 10);
    check_upsample_problem<float>(u, seed += 10);
  }
}

TEST_CASE("pooling and upsampling: linear backward passes are adjoints of the forward") {
  // <f(x), dy> = <x, f^T(dy)> for avg pool and both upsamplings (max pool is linear once the
  // argmax is fixed, and its backward is checked against the gather reference above).
  const auto dot = [](const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
  };
  for (const auto& pp : kPoolProblems) {
    INFO("pool: ", pp.name);
    Pool2dParams p;
    p.N = pp.N, p.C = pp.C, p.H = pp.H, p.W = pp.W, p.kh = pp.kh, p.kw = pp.kw, p.sh = pp.sh,
    p.sw = pp.sw, p.ph = pp.ph, p.pw = pp.pw;
    p.finalize("avg_pool2d");
    const auto x = nabla::test::uniform_values(p.N * p.C * p.H * p.W, 11),
               dy = nabla::test::uniform_values(p.N * p.C * p.P * p.Q, 12);
    std::vector<double> y(dy.size()), dx(x.size());
    cpu::avg_pool2d_forward(p, x.data(), y.data());
    cpu::avg_pool2d_backward(p, dy.data(), dx.data());
    CHECK(dot(x, dx) == doctest::Approx(dot(y, dy)).epsilon(1e-12));
  }
  for (const auto& u : kUpsampleProblems) {
    INFO("upsample: ", u.name);
    const auto x = nabla::test::uniform_values(u.N * u.C * u.H * u.W, 13),
               dy = nabla::test::uniform_values(u.N * u.C * u.OH * u.OW, 14);
    std::vector<double> y(dy.size()), dx(x.size());
    cpu::upsample_nearest2d_forward(u.N, u.C, u.H, u.W, u.OH, u.OW, x.data(), y.data());
    cpu::upsample_nearest2d_backward(u.N, u.C, u.H, u.W, u.OH, u.OW, dy.data(), dx.data());
    CHECK(dot(x, dx) == doctest::Approx(dot(y, dy)).epsilon(1e-12));
    cpu::upsample_bilinear2d_forward(u.N, u.C, u.H, u.W, u.OH, u.OW, x.data(), y.data());
    cpu::upsample_bilinear2d_backward(u.N, u.C, u.H, u.W, u.OH, u.OW, dy.data(), dx.data());
    CHECK(dot(x, dx) == doctest::Approx(dot(y, dy)).epsilon(1e-12));
  }
}

}  // namespace
