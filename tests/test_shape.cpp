// Shape ops (concat, split, pad, flatten) and the Tensor view ops of engine/tensor.cpp
// (reshape, view, permute, transpose, narrow, slice, expand, flatten, squeeze, unsqueeze,
// contiguous, clone, to(DType)): hand-computed cases, gradient checks for every input, storage
// sharing of views, kernel counts and error messages.
#include "gradcheck.h"

#include <nabla/ops/shape.h>

using namespace nabla;
using namespace nabla::test;

// ---------------------------------------------------------------- concat and split
TEST_CASE("concat: by hand along each dim") {
  Tensor a = tensor({1, 2, 3, 4}, {2, 2});
  Tensor b = tensor({5, 6}, {1, 2});
  Tensor c = tensor({7, 8}, {2, 1});
  Tensor ab = concat({a, b}, 0);
  CHECK(ab.shape() == Shape{3, 2});
  check_close(ab, {1, 2, 3, 4, 5, 6});
  Tensor ac = concat({a, c}, 1);
  CHECK(ac.shape() == Shape{2, 3});
  check_close(ac, {1, 2, 7, 3, 4, 8});
  check_close(concat({a, c}, -1), {1, 2, 7, 3, 4, 8});
  // Middle dim of 3-D tensors, with an empty piece and a non-contiguous one.
  Tensor x = arange(6).reshape({2, 1, 3});
  Tensor y = arange(6, 18).reshape({2, 3, 2}).transpose(1, 2);  // [2, 2, 3], non-contiguous
  Tensor e = empty({2, 0, 3});
  Tensor xy = concat({x, e, y}, 1);
  CHECK(xy.shape() == Shape{2, 3, 3});
  // y[n, i, j] = 6 + n*6 + j*2 + i
  check_close(xy, {0, 1, 2, 6, 8, 10, 7, 9, 11, 3, 4, 5, 12, 14, 16, 13, 15, 17});
  // A single tensor is copied, never aliased.
  Tensor one = concat({a}, 0);
  CHECK(one.impl()->storage != a.impl()->storage);
  check_close(one, {1, 2, 3, 4});
}

TEST_CASE("split: by sizes and by chunk, by hand") {
  Tensor x = arange(10).reshape({2, 5});
  auto p = split(x, std::vector<int64_t>{2, 3}, 1);
  REQUIRE(p.size() == 2);
  CHECK(p[0].shape() == Shape{2, 2});
  CHECK(p[1].shape() == Shape{2, 3});
  check_close(p[0], {0, 1, 5, 6});
  check_close(p[1], {2, 3, 4, 7, 8, 9});
  auto q = split(x, 2, -1);  // torch.split(x, 2, -1): sizes 2, 2, 1
  REQUIRE(q.size() == 3);
  check_close(q[0], {0, 1, 5, 6});
  check_close(q[1], {2, 3, 7, 8});
  check_close(q[2], {4, 9});
  auto r = split(arange(5), 5);
  REQUIRE(r.size() == 1);
  check_close(r[0], {0, 1, 2, 3, 4});
  auto rows = split(x, 1);  // default dim 0
  REQUIRE(rows.size() == 2);
  check_close(rows[1], {5, 6, 7, 8, 9});
  auto with_empty = split(x, std::vector<int64_t>{0, 5, 0}, 1);
  REQUIRE(with_empty.size() == 3);
  CHECK(with_empty[0].shape() == Shape{2, 0});
  CHECK(with_empty[2].shape() == Shape{2, 0});
  check_close(with_empty[1], x.to_vector<double>());
}

TEST_CASE("concat and split: round trip along every dim") {
  Tensor x = uniform({3, 4, 5}, -1, 1, 3);
  for (int64_t d = 0; d < 3; ++d) {
    INFO("dim " << d);
    auto pieces = split(x, 2, d);
    Tensor back = concat(pieces, d);
    CHECK(back.shape() == x.shape());
    check_close(back, x, 0, 0);  // pure data movement: bit for bit
  }
  auto pieces = split(x, std::vector<int64_t>{1, 3}, 1);
  check_close(concat(pieces, 1), x, 0, 0);
}

TEST_CASE("concat: gradient checks for three inputs along dim 0 and dim 1") {
  CHECK(gradcheck(
      [](const auto& v) {
        return concat({v[0], v[1], v[2]}, 0);
      },
      {uniform({1, 3}, -1, 1, 1), uniform({2, 3}, -1, 1, 2), uniform({3, 3}, -1, 1, 3)}));
  CHECK(gradcheck(
      [](const auto& v) {
        return concat({v[0], v[1], v[2]}, 1);
      },
      {uniform({2, 1, 2}, -1, 1, 4), uniform({2, 3, 2}, -1, 1, 5), uniform({2, 2, 2}, -1, 1, 6)}));
  // The same tensor twice: both gradients add up.
  CHECK(gradcheck(
      [](const auto& v) {
        return concat({v[0], v[1], v[0]}, 1);
      },
      {uniform({2, 2}, -1, 1, 7), uniform({2, 1}, -1, 1, 8)}));
}

TEST_CASE("split: gradient checks with only some outputs in the loss") {
  // Pieces 0 and 2 are used, piece 1 never reaches the loss: its gradient arrives as zeros.
  CHECK(gradcheck(
      [](const auto& v) {
        auto p = split(v[0], std::vector<int64_t>{2, 1, 2}, 1);
        return mul(p[0], p[2]);
      },
      {uniform({3, 5, 2}, -1, 1, 11)}));
  CHECK(
      gradcheck([](const auto& v) { return split(v[0], 2, 0)[1]; }, {uniform({5, 3}, -1, 1, 12)}));
  CHECK(gradcheck([](const auto& v) { return split(v[0], 1, -1)[2]; },
                  {uniform({2, 3, 4}, -1, 1, 13)}));
  // An empty piece is an output like any other; the engine hands it an empty zero gradient.
  CHECK(gradcheck(
      [](const auto& v) {
        auto p = split(v[0], std::vector<int64_t>{2, 0, 3}, 1);
        CHECK(p[1].shape() == Shape{2, 0});
        return p[2];
      },
      {uniform({2, 5}, -1, 1, 15)}));
  // All pieces used, concatenated back in another order.
  CHECK(gradcheck(
      [](const auto& v) {
        auto p = split(v[0], std::vector<int64_t>{1, 3}, 0);
        return concat({p[1], p[0]}, 0);
      },
      {uniform({4, 2}, -1, 1, 14)}));
}

TEST_CASE("concat and split: gradients by hand and kernel counts") {
  Tensor a = tensor({1, 2}, {1, 2}, DType::Float64).set_requires_grad(true);
  Tensor b = tensor({3, 4, 5, 6}, {2, 2}, DType::Float64);  // no grad needed
  Tensor c = tensor({7, 8}, {1, 2}, DType::Float64).set_requires_grad(true);
  Tensor y = concat({a, b, c}, 0);
  Tensor w = tensor({1, 2, 3, 4, 5, 6, 7, 8}, {4, 2}, DType::Float64);
  reset_kernel_counts();
  auto g = grad({sum(mul(y, w))}, {c});
  CHECK(kernel_count("concat_backward") == 1);
  check_close(g[0], {7, 8});

  Tensor x = arange(6, 0, -1, DType::Float64).reshape({3, 2}).detach().set_requires_grad(true);
  auto p = split(x, 1, 0);
  reset_kernel_counts();
  Tensor gx = grad({sum(mul(p[2], 3.0))}, {x})[0];
  CHECK(kernel_count("split_backward") == 1);  // one node for all three pieces
  check_close(gx, {0, 0, 0, 0, 3, 3});
}

// ---------------------------------------------------------------- pad
TEST_CASE("pad: constant mode by hand, including negative pads") {
  Tensor v = tensor({1, 2, 3}, {3});
  Tensor p = pad(v, {1, 2}, PadMode::Constant, 9);
  CHECK(p.shape() == Shape{6});
  check_close(p, {9, 1, 2, 3, 9, 9});
  Tensor m = tensor({1, 2, 3, 4}, {2, 2});
  // {left, right, top, bottom} = {1, 0, 0, 1}
  Tensor pm = pad(m, {1, 0, 0, 1});
  CHECK(pm.shape() == Shape{3, 3});
  check_close(pm, {0, 1, 2, 0, 3, 4, 0, 0, 0});
  // Cropping: drop the first column, add one on the right; drop the last row.
  Tensor crop = pad(tensor({1, 2, 3, 4, 5, 6}, {2, 3}), {-1, 1, 0, -1}, PadMode::Constant, -1);
  CHECK(crop.shape() == Shape{1, 3});
  check_close(crop, {2, 3, -1});
  // Three padded dims, pairs from the last dim backwards.
  Tensor t3 = pad(ones({1, 1, 1}), {0, 1, 1, 0, 0, 1}, PadMode::Constant, 5);
  CHECK(t3.shape() == Shape{2, 2, 2});
  check_close(t3, {5, 5, 1, 5, 5, 5, 5, 5});
  // No pads: a copy.
  check_close(pad(v, {}), {1, 2, 3});
}

TEST_CASE("pad: reflect and replicate by hand") {
  Tensor v = tensor({1, 2, 3}, {3});
  check_close(pad(v, {2, 2}, PadMode::Reflect), {3, 2, 1, 2, 3, 2, 1});
  check_close(pad(v, {2, 2}, PadMode::Replicate), {1, 1, 1, 2, 3, 3, 3});
  check_close(pad(v, {0, 1}, PadMode::Reflect), {1, 2, 3, 2});
  Tensor img = tensor({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor r = pad(img, {1, 1, 1, 1}, PadMode::Reflect);
  CHECK(r.shape() == Shape{1, 1, 5, 5});
  check_close(r, {5, 4, 5, 6, 5,  //
                  2, 1, 2, 3, 2,  //
                  5, 4, 5, 6, 5,  //
                  8, 7, 8, 9, 8,  //
                  5, 4, 5, 6, 5});
  Tensor sq = tensor({1, 2, 3, 4}, {1, 1, 2, 2});
  check_close(pad(sq, {1, 1, 1, 1}, PadMode::Replicate),
              {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  // Asymmetric, W only (top = bottom = 0), on two planes.
  Tensor two = tensor({1, 2, 3, 4, 5, 6}, {2, 1, 3});
  check_close(pad(two, {2, 0}, PadMode::Reflect), {3, 2, 1, 2, 3, 6, 5, 4, 5, 6});
  check_close(pad(two, {0, 1, 1, 0}, PadMode::Replicate),
              {1, 2, 3, 3, 1, 2, 3, 3, 4, 5, 6, 6, 4, 5, 6, 6});
}

TEST_CASE("pad: backward scatter-adds by hand") {
  Tensor v = tensor({1, 2, 3}, {3}, DType::Float64).set_requires_grad(true);
  // Reflect by 2: outputs read x[2], x[1], x[0], x[1], x[2], x[1], x[0].
  check_close(grad({sum(pad(v, {2, 2}, PadMode::Reflect))}, {v})[0], {2, 3, 2});
  // Replicate by 2: x[0] three times, x[1] once, x[2] three times.
  check_close(grad({sum(pad(v, {2, 2}, PadMode::Replicate))}, {v})[0], {3, 1, 3});
  // Constant crop: the cropped element gets 0.
  check_close(grad({sum(pad(v, {-1, 1}))}, {v})[0], {0, 1, 1});
  reset_kernel_counts();
  grad({sum(pad(v, {1, 1}, PadMode::Replicate))}, {v});
  CHECK(kernel_count("pad_replicate_forward") == 1);
  CHECK(kernel_count("pad_replicate_backward") == 1);
}

TEST_CASE("pad: gradient checks for every mode") {
  Tensor x4 = uniform({2, 2, 4, 5}, -1, 1, 21);
  CHECK(gradcheck([](const auto& v) { return pad(v[0], {1, 3, 2, 3}, PadMode::Reflect); }, {x4}));
  CHECK(gradcheck([](const auto& v) { return pad(v[0], {2, 1, 0, 3}, PadMode::Replicate); }, {x4}));
  CHECK(gradcheck(
      [](const auto& v) {
        return pad(v[0], {1, 2, 2, 0}, PadMode::Constant, 0.5);
      },
      {x4}));
  Tensor x3 = uniform({2, 3, 5}, -1, 1, 22);
  CHECK(gradcheck([](const auto& v) { return pad(v[0], {2, 4}, PadMode::Reflect); }, {x3}));
  CHECK(gradcheck([](const auto& v) { return pad(v[0], {3, 1}, PadMode::Replicate); }, {x3}));
  // Constant over three dims with crops mixed in.
  CHECK(gradcheck([](const auto& v) { return pad(v[0], {-1, 2, 1, -1, 1, 0}); }, {x3}));
  // A non-contiguous input.
  CHECK(gradcheck(
      [](const auto& v) {
        return pad(v[0].transpose(2, 3), {1, 1, 1, 2}, PadMode::Reflect);
      },
      {x4}));
}

TEST_CASE("pad, concat, split: sizes large enough for the threaded paths") {
  // <pad(x), r> = <x, pad_backward(r)>: the backward is the adjoint of the forward. Checked at
  // a size above the kernels' threading threshold, where gradcheck would be too slow.
  Tensor x = uniform({2, 8, 64, 64}, -1, 1, 51).set_requires_grad(true);
  for (PadMode mode : {PadMode::Constant, PadMode::Reflect, PadMode::Replicate}) {
    INFO(pad_mode_name(mode));
    Tensor y = pad(x, {3, 1, 2, 5}, mode);
    Tensor r = uniform(y.shape(), -1, 1, 52);
    Tensor gx = grad({sum(mul(y, r))}, {x})[0];
    const double lhs = sum(mul(y, r)).item<double>(), rhs = sum(mul(x, gx)).item<double>();
    CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
  }
  Tensor big = uniform({3, 200, 150}, -1, 1, 53);
  check_close(concat(split(big, std::vector<int64_t>{1, 2}, 0), 0), big, 0, 0);
  for (int64_t d = 0; d < 3; ++d) check_close(concat(split(big, 7, d), d), big, 0, 0);
}

// ---------------------------------------------------------------- view ops of Tensor
TEST_CASE("views: values by hand") {
  Tensor x = arange(24).reshape({2, 3, 4});  // x[i, j, k] = 12 i + 4 j + k
  Tensor p = x.permute({2, 0, 1});           // p[k, i, j] = x[i, j, k]
  CHECK(p.shape() == Shape{4, 2, 3});
  auto pv = p.to_vector<double>();
  CHECK(pv[0] == 0);
  CHECK(pv[1] == 4);              // p[0, 0, 1] = x[0, 1, 0]
  CHECK(pv[3] == 12);             // p[0, 1, 0] = x[1, 0, 0]
  CHECK(pv[6 + 2] == 4 * 2 + 1);  // p[1, 0, 2] = x[0, 2, 1]
  check_close(x.transpose(0, 2).contiguous().reshape({-1}).narrow(0, 0, 4), {0, 12, 4, 16});
  check_close(x.narrow(2, 1, 2).narrow(1, 2, 1), {9, 10, 21, 22});
  check_close(x.slice(1, 100).reshape({12}).narrow(0, 0, 3), {12, 13, 14});  // end is clamped
  check_close(tensor({1, 2, 3}, {3, 1}).expand({2, 3, 2}), {1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3});
  CHECK(x.flatten().shape() == Shape{2, 12});
  CHECK(flatten(x, 0, 1).shape() == Shape{6, 4});
  CHECK(flatten(x, 0).shape() == Shape{24});
  CHECK(x.unsqueeze(1).shape() == Shape{2, 1, 3, 4});
  CHECK(x.unsqueeze(-1).shape() == Shape{2, 3, 4, 1});
  CHECK(x.unsqueeze(1).squeeze(1).shape() == Shape{2, 3, 4});
  CHECK(x.view({4, -1}).shape() == Shape{4, 6});
  check_close(x.view({4, 6}).narrow(0, 3, 1), {18, 19, 20, 21, 22, 23});
  Tensor d = x.to(DType::Float64);
  CHECK(d.dtype() == DType::Float64);
  check_close(d, x);
}

TEST_CASE("views: share storage with their base, copies do not") {
  Tensor x = arange(6).reshape({2, 3});  // [[0, 1, 2], [3, 4, 5]]
  auto shares = [&](const Tensor& t) { return t.impl()->storage == x.impl()->storage; };
  Tensor t = x.transpose(0, 1);  // t[j, i] = x[i, j]
  REQUIRE(shares(t));
  t.data<float>()[2 * t.strides()[0] + 1 * t.strides()[1]] = 100;  // t[2, 1] = x[1, 2]
  CHECK(x.to_vector<float>()[5] == 100);
  Tensor n = x.narrow(1, 1, 2);  // data() applies the offset
  REQUIRE(shares(n));
  n.data<float>()[0] = 50;  // n[0, 0] = x[0, 1]
  CHECK(x.to_vector<float>()[1] == 50);
  Tensor s = x.slice(1, 2);
  REQUIRE(shares(s));
  s.data<float>()[2] = -7;  // s[0, 2] = x[1, 2]
  CHECK(x.to_vector<float>()[5] == -7);
  Tensor v = x.view({3, 2});
  v.data<float>()[0] = 11;
  CHECK(x.to_vector<float>()[0] == 11);
  Tensor e = x.narrow(0, 0, 1).expand({4, 3});  // stride 0: every row is x[0]
  REQUIRE(shares(e));
  CHECK(e.strides()[0] == 0);
  e.data<float>()[2] = 42;
  CHECK(x.to_vector<float>()[2] == 42);
  CHECK(e.to_vector<float>()[3 * 3 + 2] == 42);
  for (const Tensor& w :
       {x.reshape({6}), x.permute({1, 0}), x.flatten(0), x.unsqueeze(0), x.unsqueeze(0).squeeze(0),
        x.contiguous(), x.detach(), x.to(DType::Float32)})
    CHECK(shares(w));
  // Copies: writing them leaves x alone.
  Tensor c = x.clone();
  Tensor tc = x.transpose(0, 1).contiguous();
  Tensor r = x.transpose(0, 1).reshape({6});  // non-contiguous: reshape copies
  Tensor d = x.to(DType::Float64);
  for (const Tensor& w : {c, tc, r, d}) CHECK_FALSE(shares(w));
  const std::vector<float> before = x.to_vector<float>();
  c.data<float>()[0] = -1;
  tc.data<float>()[0] = -1;
  r.data<float>()[0] = -1;
  d.data<double>()[0] = -1;
  CHECK(x.to_vector<float>() == before);
}

TEST_CASE("views: gradient checks for every view op") {
  Tensor x = uniform({2, 3, 4}, -1, 1, 41);
  CHECK(gradcheck([](const auto& v) { return v[0].reshape({4, -1}); }, {x}));
  CHECK(gradcheck([](const auto& v) { return v[0].transpose(0, 2).reshape({6, 4}); }, {x}));
  CHECK(gradcheck([](const auto& v) { return v[0].view({6, 4}); }, {x}));
  CHECK(gradcheck([](const auto& v) { return v[0].permute({2, 0, 1}); }, {x}));
  CHECK(gradcheck([](const auto& v) { return v[0].transpose(-1, 0); }, {x}));
  CHECK(gradcheck([](const auto& v) { return v[0].narrow(1, 1, 2); }, {x}));
  CHECK(gradcheck([](const auto& v) { return v[0].slice(1, 2); }, {x}));
  CHECK(gradcheck([](const auto& v) { return v[0].flatten(); }, {x}));
  CHECK(gradcheck([](const auto& v) { return flatten(v[0], 0, 1); }, {x}));
  CHECK(gradcheck([](const auto& v) { return v[0].unsqueeze(1); }, {x}));
  CHECK(gradcheck([](const auto& v) { return v[0].narrow(1, 0, 1).squeeze(1); }, {x}));
  CHECK(gradcheck([](const auto& v) { return v[0].permute({1, 2, 0}).contiguous(); }, {x}));
  CHECK(gradcheck([](const auto& v) { return v[0].clone(); }, {x}));
  // expand: the backward sums over the broadcast dims (new leading dim and size-1 dims).
  CHECK(gradcheck(
      [](const auto& v) {
        return v[0].expand({2, 3, 4});
      },
      {uniform({3, 1}, -1, 1, 42)}));
  CHECK(gradcheck(
      [](const auto& v) {
        return v[0].expand({3, 2, 5});
      },
      {uniform({1, 2, 1}, -1, 1, 43)}));
  // Chains of views into an op and back.
  CHECK(gradcheck(
      [](const auto& v) {
        return mul(v[0].transpose(0, 1).narrow(0, 1, 2), v[0].permute({1, 0, 2}).slice(0, 2));
      },
      {x}));
}

TEST_CASE("views: backward by hand, and to(DType)") {
  Tensor x = tensor({1, 2, 3}, {3, 1}, DType::Float64).set_requires_grad(true);
  check_close(grad({sum(x.expand({2, 3, 4}))}, {x})[0], {8, 8, 8});  // 2 * 4 copies each
  Tensor y = tensor({1, 2, 3, 4}, {4}, DType::Float64).set_requires_grad(true);
  check_close(grad({sum(y.narrow(0, 1, 2))}, {y})[0], {0, 1, 1, 0});
  Tensor m = arange(6, DType::Float64).reshape({2, 3}).detach().set_requires_grad(true);
  Tensor w = tensor({1, 2, 3, 4, 5, 6}, {3, 2}, DType::Float64);
  // d/dm sum(m^T * w) = w^T
  check_close(grad({sum(mul(m.transpose(0, 1), w))}, {m})[0], {1, 3, 5, 2, 4, 6});
  // to(float32) and back: the gradient is converted back to float64 and passes unchanged.
  Tensor r = tensor({0.5, -2, 3}, {3}, DType::Float64);
  Tensor f = tensor({1, 2, 3}, {3}, DType::Float64).set_requires_grad(true);
  Tensor g = grad({sum(mul(f.to(DType::Float32), r.to(DType::Float32)))}, {f})[0];
  CHECK(g.dtype() == DType::Float64);
  check_close(g, {0.5, -2, 3});
  // The finite differences of a float32 round trip need a step far above float32 rounding.
  GradcheckOptions opt;
  opt.eps = 1e-2;
  opt.atol = 1e-4;
  opt.rtol = 1e-4;
  CHECK(gradcheck([](const auto& v) { return v[0].to(DType::Float32).to(DType::Float64); },
                  {uniform({2, 3}, -1, 1, 44)}, opt));
}

// ---------------------------------------------------------------- errors
TEST_CASE("shape ops: errors name the op and every shape") {
  check_error(
      [] {
        concat({zeros({2, 3}), zeros({3, 3}), zeros({2, 4})}, 1);
      },
      {"concat", "[2, 3]", "[3, 3]", "[2, 4]"});
  check_error(
      [] {
        concat({zeros({2, 3}), zeros({2, 3, 1})}, 0);
      },
      {"concat", "[2, 3]", "[2, 3, 1]"});
  check_error(
      [] {
        concat({zeros({2}), zeros({2}, DType::Float64)}, 0);
      },
      {"concat", "float32[2]", "float64[2]"});
  check_error([] { concat({}, 0); }, {"concat"});
  check_error([] { concat({zeros({2}), zeros({2})}, 1); }, {"concat", "dim 1"});
  check_error(
      [] {
        split(zeros({2, 5}), std::vector<int64_t>{2, 2}, 1);
      },
      {"split", "[2, 2]", "[2, 5]"});
  check_error([] { split(zeros({2, 5}), 0, 1); }, {"split", "[2, 5]"});
  check_error([] { pad(zeros({2, 3}), {1}); }, {"pad", "[1]", "[2, 3]"});
  check_error([] { pad(zeros({3}), {1, 1, 1, 1}); }, {"pad", "[3]"});
  check_error([] { pad(zeros({2, 3}), {-2, -2}); }, {"pad", "[2, 3]"});
  check_error(
      [] {
        pad(zeros({1, 1, 3, 3}), {3, 0}, PadMode::Reflect);
      },
      {"pad", "reflect", "[1, 1, 3, 3]"});
  check_error(
      [] {
        pad(zeros({1, 1, 3, 3}), {1, 1, 1, 1, 1, 1}, PadMode::Replicate);
      },
      {"pad", "replicate", "[1, 1, 3, 3]"});
  check_error(
      [] {
        pad(zeros({1, 3}), {-1, 0}, PadMode::Replicate);
      },
      {"pad", "replicate", "[1, 3]"});
  check_error([] { pad(zeros({1, 3}), {1, 1}, PadMode::Reflect, 2.0); }, {"pad", "reflect"});
  check_error([] { zeros({2, 3}).view({4, -1}); }, {"view", "[2, 3]", "[4, -1]"});
  check_error([] { zeros({2, 3}).transpose(0, 1).view({6}); }, {"view", "reshape"});
  check_error([] { zeros({2, 3}).squeeze(0); }, {"squeeze", "[2, 3]"});
  check_error([] { zeros({2, 3}).expand({4, 3}); }, {"expand", "[2, 3]", "[4, 3]"});
  check_error([] { zeros({2, 3}).narrow(1, 2, 2); }, {"narrow", "[2, 3]"});
}
