// Losses: hand-computed cases for every loss and reduction, numerics at extreme logits,
// gradient checks of every differentiable input in float64, errors.
#include <nabla/ops/activation.h>
#include <nabla/ops/loss.h>

#include <cmath>

#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;

namespace {
Tensor labels(std::initializer_list<double> v, const Shape& s) {
  return tensor(v, s, DType::Int64);
}
constexpr Reduction kNone = Reduction::None, kSum = Reduction::Sum, kMean = Reduction::Mean;
}  // namespace

// The 2x3 example used below:
//   row 0: logits (1, 2, 3), target 2: lse = log(e + e^2 + e^3) = 3.40760596, loss 0.40760596
//   row 1: logits (1, 1, 1), target 0: lse = 1 + ln 3,                        loss ln 3
//   = 1.09861229
TEST_CASE("cross_entropy: 2x3 by hand, every reduction") {
  Tensor x = tensor({1, 2, 3, 1, 1, 1}, {2, 3});
  Tensor t = labels({2, 0}, {2});
  check_close(cross_entropy(x, t, Tensor(), kNone), {0.40760596, 1.09861229});
  check_close(cross_entropy(x, t, Tensor(), kSum), {1.50621825});
  check_close(cross_entropy(x, t), {0.75310912});
  CHECK(cross_entropy(x, t).shape() == Shape{});
  CHECK(cross_entropy(x, t, Tensor(), kNone).shape() == Shape{2});
}

TEST_CASE("cross_entropy: class weights divide the mean by the sum of target weights") {
  Tensor x = tensor({1, 2, 3, 1, 1, 1}, {2, 3});
  Tensor t = labels({2, 0}, {2});
  Tensor w = tensor({0.2, 0.3, 0.5}, {3});
  // w[2] * 0.40760596 = 0.20380298, w[0] * ln 3 = 0.21972246; divisor w[2] + w[0] = 0.7.
  check_close(cross_entropy(x, t, w, kNone), {0.20380298, 0.21972246});
  check_close(cross_entropy(x, t, w, kSum), {0.42352544});
  check_close(cross_entropy(x, t, w, kMean), {0.60503634});
}

TEST_CASE("cross_entropy: ignore_index drops the position from sum and divisor") {
  Tensor x = tensor({1, 2, 3, 1, 1, 1}, {2, 3});
  check_close(cross_entropy(x, labels({2, -100}, {2})), {0.40760596});
  check_close(cross_entropy(x, labels({2, -100}, {2}), Tensor(), kNone), {0.40760596, 0});
  // A custom ignore_index may even be a valid class.
  check_close(cross_entropy(x, labels({2, 0}, {2}), Tensor(), kMean, 0), {0.40760596});
  Tensor w = tensor({0.2, 0.3, 0.5}, {3});
  check_close(cross_entropy(x, labels({-100, 0}, {2}), w), {1.09861229});
  // Nothing counted: 0 / 0, as in PyTorch.
  CHECK(std::isnan(cross_entropy(x, labels({-100, -100}, {2})).item<double>()));
}

TEST_CASE("cross_entropy: hand-computed gradient, plain and with ignore_index") {
  Tensor x = tensor({1, 2, 3, 1, 1, 1}, {2, 3}, DType::Float64).set_requires_grad(true);
  // (softmax - onehot) / 2 with softmax row 0 = (0.09003057, 0.24472847, 0.66524096).
  check_close(grad({cross_entropy(x, labels({2, 0}, {2}))}, {x})[0],
              {0.04501529, 0.12236424, -0.16737952, -1.0 / 3, 1.0 / 6, 1.0 / 6}, 1e-7);
  // Row 1 ignored: its gradient is 0 and row 0 is divided by 1.
  check_close(grad({cross_entropy(x, labels({2, -100}, {2}))}, {x})[0],
              {0.09003057, 0.24472847, -0.33475904, 0, 0, 0}, 1e-7);
}

// [1, 2, 2, 2] logits; the two channel planes are (0, 0, 0, 1) and (0, ln 3, ln 3, 1), so the
// pixels hold (0, 0), (0, ln 3), (0, ln 3), (1, 1) with targets 0, 1, 0, ignored:
//   (0, 0)    target 0: ln 2            = 0.69314718
//   (0, ln 3) target 1: -ln(3/4)        = 0.28768207
//   (0, ln 3) target 0: -ln(1/4) = ln 4 = 1.38629436
TEST_CASE("cross_entropy: per-pixel [1, 2, 2, 2] by hand") {
  const double l3 = std::log(3.0);
  Tensor x = tensor({0, 0, 0, 1, 0, l3, l3, 1}, {1, 2, 2, 2}, DType::Float64);
  Tensor t = labels({0, 1, 0, -100}, {1, 2, 2});
  Tensor none = cross_entropy(x, t, Tensor(), kNone);
  CHECK(none.shape() == Shape{1, 2, 2});
  check_close(none, {0.69314718, 0.28768207, 1.38629436, 0});
  check_close(cross_entropy(x, t, Tensor(), kSum), {2.36712361});
  check_close(cross_entropy(x, t), {0.78904120});
  // Gradient: (softmax - onehot) / 3 per pixel, in the channel planes.
  x.set_requires_grad(true);
  check_close(grad({cross_entropy(x, t)}, {x})[0],
              {-0.5 / 3, 0.25 / 3, -0.75 / 3, 0, 0.5 / 3, -0.25 / 3, 0.75 / 3, 0}, 1e-12);
}

TEST_CASE("cross_entropy: extreme logits stay finite and precise") {
  // Confident and right: lse - x_t = log(1 + e^-20) = 2.0611537e-9, kept in float32.
  check_close(cross_entropy(tensor({1000, 980}, {1, 2}), labels({0}, {1})), {2.0611537e-9}, 0,
              1e-4);
  check_close(cross_entropy(tensor({1000, 0}, {1, 2}), labels({1}, {1})), {1000});
  check_close(cross_entropy(tensor({-1000, 1000}, {1, 2}), labels({0}, {1})), {2000});
  Tensor x = tensor({1000, 0, -1000}, {1, 3}).set_requires_grad(true);
  check_close(grad({cross_entropy(x, labels({1}, {1}))}, {x})[0], {1, -1, 0});
}

TEST_CASE("cross_entropy: float32 at large logits keeps the softmax in the gradient") {
  // Logits near 3000 (float32 ulp 2.4e-4) but 1 apart: lse rounded to float would shift every
  // probability by up to 1e-4 relative; the double lse keeps float precision.
  Tensor x64 = tensor({3000, 3001, 3002}, {1, 3}, DType::Float64).set_requires_grad(true);
  Tensor x32 = tensor({3000, 3001, 3002}, {1, 3}).set_requires_grad(true);
  Tensor t = labels({0}, {1});
  Tensor g64 = grad({cross_entropy(x64, t)}, {x64})[0];
  check_close(grad({cross_entropy(x32, t)}, {x32})[0], g64, 1e-7, 1e-6);
  check_close(cross_entropy(x32, t), cross_entropy(x64.detach(), t), 1e-6, 1e-6);
}

TEST_CASE("cross_entropy: fused, one forward and one backward kernel") {
  Tensor x = uniform({4, 5}, -1, 1, 41).set_requires_grad(true);
  Tensor t = labels({0, 4, 2, 1}, {4});
  reset_kernel_counts();
  grad({cross_entropy(x, t)}, {x});
  CHECK(kernel_count("cross_entropy_forward") == 1);
  CHECK(kernel_count("cross_entropy_backward") == 1);
  CHECK(kernel_count("log_softmax_forward") == 0);
  CHECK(kernel_count("softmax_forward") == 0);
}

TEST_CASE("cross_entropy: agrees with nll_loss(log_softmax) per pixel, weighted, ignored") {
  Tensor x = uniform({2, 4, 3, 5}, -3, 3, 42);
  Tensor t = randint(0, 4, {2, 3, 5}, nullptr);
  std::vector<int64_t> tv = t.to_vector<int64_t>();
  tv[3] = tv[17] = -1;  // two ignored pixels
  t = from_vector(tv, {2, 3, 5});
  Tensor w = uniform({4}, 0.5, 2, 43);
  for (Reduction r : {kNone, kSum, kMean}) {
    CAPTURE(reduction_name(r));
    check_close(cross_entropy(x, t, w, r, -1), nll_loss(log_softmax(x, 1), t, w, r, -1), 1e-12);
  }
  // float32 agrees with float64.
  check_close(cross_entropy(x.to(DType::Float32), t, w.to(DType::Float32), kMean, -1),
              cross_entropy(x, t, w, kMean, -1), 1e-6, 1e-5);
}

TEST_CASE("cross_entropy: gradient checks") {
  Tensor t2 = labels({2, 0, 1, 2}, {4});
  Tensor w = uniform({3}, 0.5, 2, 44);
  for (Reduction r : {kNone, kSum, kMean}) {
    CAPTURE(reduction_name(r));
    CHECK(gradcheck([&](const auto& v) { return cross_entropy(v[0], t2, Tensor(), r); },
                    {uniform({4, 3}, -2, 2, 45)}));
    CHECK(gradcheck([&](const auto& v) { return cross_entropy(v[0], t2, w, r); },
                    {uniform({4, 3}, -2, 2, 46)}));
  }
  // Per pixel [2, 3, 2, 3] with weights and an ignored pixel.
  Tensor tp = labels({0, 1, 2, 2, 1, 0, 1, -100, 0, 2, 2, 1}, {2, 2, 3});
  for (Reduction r : {kNone, kSum, kMean}) {
    CAPTURE(reduction_name(r));
    CHECK(gradcheck([&](const auto& v) { return cross_entropy(v[0], tp, w, r); },
                    {uniform({2, 3, 2, 3}, -2, 2, 47)}));
  }
  // More pixels than one kernel block (64), one trailing dim.
  Tensor tl = randint(0, 3, {1, 70}, nullptr);
  CHECK(gradcheck([&](const auto& v) { return cross_entropy(v[0], tl, w); },
                  {uniform({1, 3, 70}, -2, 2, 48)}));
}

TEST_CASE("nll_loss: by hand, weights and ignore_index") {
  Tensor lp = tensor({-1, -2, -3, -0.5, -0.25, -4}, {2, 3});
  Tensor t = labels({0, 2}, {2});
  check_close(nll_loss(lp, t, Tensor(), kNone), {1, 4});
  check_close(nll_loss(lp, t), {2.5});
  check_close(nll_loss(lp, t, Tensor(), kSum), {5});
  // Weights (1, 2, 3): 1*1 + 3*4 = 13 over 1 + 3.
  Tensor w = tensor({1, 2, 3}, {3});
  check_close(nll_loss(lp, t, w), {3.25});
  check_close(nll_loss(lp, t, w, kSum), {13});
  check_close(nll_loss(lp, labels({0, -100}, {2})), {1});
  Tensor lpg = lp.to(DType::Float64).set_requires_grad(true);
  check_close(grad({nll_loss(lpg, t, w.to(DType::Float64))}, {lpg})[0], {-0.25, 0, 0, 0, 0, -0.75});
}

TEST_CASE("nll_loss: gradient checks") {
  Tensor t = labels({0, 1, 2, -100, 1, 1}, {2, 3});
  Tensor w = uniform({4}, 0.5, 2, 51);
  for (Reduction r : {kNone, kSum, kMean}) {
    CAPTURE(reduction_name(r));
    CHECK(gradcheck([&](const auto& v) { return nll_loss(v[0], t, w, r); },
                    {uniform({2, 4, 3}, -3, 0, 52)}));
    CHECK(gradcheck([&](const auto& v) { return nll_loss(v[0], t, Tensor(), r); },
                    {uniform({2, 4, 3}, -3, 0, 53)}));
  }
}

// x = (0, 2, -3), t = (1, 0, 0.5):
//   max(x,0) - x t + log(1 + e^-|x|) = ln 2 = 0.69314718,  2 + log(1 + e^-2) = 2.12692801,
//   1.5 + log(1 + e^-3) = 1.54858735
TEST_CASE("binary_cross_entropy_with_logits: known numbers") {
  Tensor x = tensor({0, 2, -3}, {3});
  Tensor t = tensor({1, 0, 0.5}, {3});
  check_close(binary_cross_entropy_with_logits(x, t, Tensor(), kNone),
              {0.69314718, 2.12692801, 1.54858735});
  check_close(binary_cross_entropy_with_logits(x, t, Tensor(), kSum), {4.36866254});
  check_close(binary_cross_entropy_with_logits(x, t), {1.45622085});
  // pos_weight scales the positive term: 2 ln 2 for (0, 1); for (-3, 0.5) with pw 3:
  // -[3 * 0.5 * log sigmoid(-3) + 0.5 * log sigmoid(3)] = 4.5971747.
  check_close(binary_cross_entropy_with_logits(x, t, tensor({2, 1, 3}, {3}), kNone),
              {1.38629436, 2.12692801, 4.5971747});
  // No overflow at extreme logits.
  check_close(binary_cross_entropy_with_logits(tensor({1000, -1000, 1000}, {3}),
                                               tensor({0, 1, 1}, {3}), Tensor(), kNone),
              {1000, 1000, 0});
  // Gradients by hand: dx = (sigmoid(x) - t) / 3, dt = -x / 3.
  Tensor xg = x.to(DType::Float64).set_requires_grad(true);
  Tensor tg = t.to(DType::Float64).set_requires_grad(true);
  auto g = grad({binary_cross_entropy_with_logits(xg, tg)}, {xg, tg});
  const double s2 = 1 / (1 + std::exp(-2.0)), sm3 = 1 / (1 + std::exp(3.0));
  check_close(g[0], {-0.5 / 3, s2 / 3, (sm3 - 0.5) / 3}, 1e-12);
  check_close(g[1], {0, -2.0 / 3, 1.0}, 1e-12);
}

TEST_CASE("binary_cross_entropy_with_logits: gradient checks for logits, target, pos_weight") {
  Tensor x = uniform({3, 4}, -4, 4, 61);
  Tensor t = uniform({3, 4}, 0, 1, 62);
  Tensor pw = uniform({4}, 0.5, 3, 63);
  for (Reduction r : {kNone, kSum, kMean}) {
    CAPTURE(reduction_name(r));
    CHECK(gradcheck(
        [r](const auto& v) { return binary_cross_entropy_with_logits(v[0], v[1], Tensor(), r); },
        {x, t}));
    CHECK(gradcheck(
        [r](const auto& v) { return binary_cross_entropy_with_logits(v[0], v[1], v[2], r); },
        {x, t, pw}));
  }
}

TEST_CASE("mse_loss and l1_loss: by hand") {
  Tensor x = tensor({1, 2, 3}, {3}, DType::Float64).set_requires_grad(true);
  Tensor t = tensor({1, 0, 5}, {3}, DType::Float64).set_requires_grad(true);
  check_close(mse_loss(x, t, kNone), {0, 4, 4});
  check_close(mse_loss(x, t, kSum), {8});
  check_close(mse_loss(x, t), {8.0 / 3});
  auto gm = grad({mse_loss(x, t)}, {x, t});
  check_close(gm[0], {0, 4.0 / 3, -4.0 / 3}, 1e-12);
  check_close(gm[1], {0, -4.0 / 3, 4.0 / 3}, 1e-12);
  check_close(l1_loss(x, t, kNone), {0, 2, 2});
  check_close(l1_loss(x, t, kSum), {4});
  check_close(l1_loss(x, t), {4.0 / 3});
  // Zero difference gives gradient 0.
  auto gl = grad({l1_loss(x, t)}, {x, t});
  check_close(gl[0], {0, 1.0 / 3, -1.0 / 3}, 1e-12);
  check_close(gl[1], {0, -1.0 / 3, 1.0 / 3}, 1e-12);
  // Only the requested gradient: grad w.r.t. t alone.
  check_close(grad({mse_loss(x, t, kSum)}, {t})[0], {0, -4, 4}, 1e-12);
}

TEST_CASE("mse_loss and l1_loss: gradient checks for input and target") {
  Tensor x = uniform({2, 3, 4}, -2, 2, 71);
  Tensor t = uniform({2, 3, 4}, -2, 2, 72);
  // l1 has a kink at x == t: keep every difference at least 0.1 away from it.
  Tensor tk = add(x, mul(sign(sub(t, x)), add(abs(sub(t, x)), 0.1)));
  for (Reduction r : {kNone, kSum, kMean}) {
    CAPTURE(reduction_name(r));
    CHECK(gradcheck([r](const auto& v) { return mse_loss(v[0], v[1], r); }, {x, t}));
    CHECK(gradcheck([r](const auto& v) { return l1_loss(v[0], v[1], r); }, {x, tk}));
  }
}

TEST_CASE("losses: errors name the op, the bad value and every shape") {
  check_error(
      [] {
        cross_entropy(zeros({4, 10}), labels({1, 2, 3, 4, 5}, {5}));
      },
      {"cross_entropy: logits [4, 10] and target [5]", "must be [4]"});
  check_error(
      [] {
        cross_entropy(zeros({1, 2, 2, 2}), zeros({1, 2, 3}, DType::Int64));
      },
      {"cross_entropy", "[1, 2, 2, 2]", "[1, 2, 3]", "must be [1, 2, 2]"});
  check_error([] { cross_entropy(zeros({5}), labels({1}, {1})); },
              {"cross_entropy", "logits", "[N, C]", "float32[5]"});
  check_error(
      [] {
        cross_entropy(zeros({2, 3}, DType::Int64), labels({0, 1}, {2}));
      },
      {"cross_entropy", "logits", "int64[2, 3]"});
  check_error(
      [] {
        cross_entropy(zeros({2, 3}), zeros({2}));
      },
      {"cross_entropy", "target", "int64", "float32[2]", "[2, 3]"});
  check_error(
      [] {
        cross_entropy(zeros({2, 3}), labels({0, 3}, {2}));
      },
      {"cross_entropy", "target value 3", "position [1]", "C = 3", "[2, 3]", "[2]"});
  check_error(
      [] {
        cross_entropy(zeros({1, 3, 2, 2}), labels({0, 1, -1, 2}, {1, 2, 2}));
      },
      {"cross_entropy", "target value -1", "position [0, 1, 0]", "C = 3"});
  check_error(
      [] {
        cross_entropy(zeros({2, 3}), labels({0, 1}, {2}), zeros({4}));
      },
      {"cross_entropy", "weight must be [3]", "[2, 3]", "[4]"});
  check_error(
      [] {
        cross_entropy(zeros({2, 3}), labels({0, 1}, {2}), zeros({3}, DType::Float64));
      },
      {"cross_entropy", "float32[2, 3]", "float64[3]"});
  check_error(
      [] {
        nll_loss(zeros({2, 3}), labels({0, 7}, {2}));
      },
      {"nll_loss", "target value 7", "position [1]", "C = 3"});
  check_error(
      [] {
        nll_loss(zeros({2, 3}), labels({0}, {1}));
      },
      {"nll_loss: log_probs [2, 3] and target [1]"});
  check_error([] { binary_cross_entropy_with_logits(zeros({4}), zeros({5})); },
              {"binary_cross_entropy_with_logits", "logits [4]", "target [5]"});
  check_error(
      [] {
        binary_cross_entropy_with_logits(zeros({4, 2}), zeros({4, 2}), zeros({3}));
      },
      {"binary_cross_entropy_with_logits", "[3]", "[4, 2]"});
  check_error(
      [] {
        binary_cross_entropy_with_logits(zeros({4, 2}), zeros({4, 2}), zeros({3, 4, 2}));
      },
      {"binary_cross_entropy_with_logits", "pos_weight [3, 4, 2]", "[4, 2]"});
  check_error([] { binary_cross_entropy_with_logits(zeros({2}), zeros({2}, DType::Float64)); },
              {"binary_cross_entropy_with_logits", "float32[2]", "float64[2]"});
  check_error(
      [] {
        mse_loss(zeros({2, 3}), zeros({3, 2}));
      },
      {"mse_loss: input [2, 3] and target [3, 2]"});
  check_error([] { l1_loss(zeros({2}, DType::Int64), zeros({2}, DType::Int64)); },
              {"l1_loss", "int64[2]"});
}

TEST_CASE("dice_loss: by hand, with and without the background, smooth 0 and 1") {
  // Equal logits: p = 0.5 everywhere. Two pixels of class 0: D_0 = (2*1 + s) / (1 + 2 + s),
  // D_1 = (0 + s) / (1 + 0 + s).
  const Tensor z = zeros({1, 2, 1, 2});
  const Tensor t00 = labels({0, 0}, {1, 1, 2});
  CHECK(dice_loss(z, t00).item<double>() == doctest::Approx(1 - (0.75 + 0.5) / 2));
  CHECK(dice_loss(z, t00, 0.0).item<double>() == doctest::Approx(1 - (2.0 / 3 + 0) / 2));
  CHECK(dice_loss(z, t00, 1.0, false).item<double>() == doctest::Approx(0.5));
  // One pixel of each class: D_c = (2*0.5 + s) / (1 + 1 + s).
  const Tensor t01 = labels({0, 1}, {1, 1, 2});
  CHECK(dice_loss(z, t01).item<double>() == doctest::Approx(1.0 / 3));
  CHECK(dice_loss(z, t01, 0.0).item<double>() == doctest::Approx(0.5));
  // Sums run over the batch: two images [1 pixel each] equal one image of two pixels.
  CHECK(dice_loss(zeros({2, 2, 1, 1}), labels({0, 1}, {2, 1, 1})).item<double>() ==
        doctest::Approx(1.0 / 3));
  // A confident right answer scores near 0, a confident wrong one near 1; 3 classes, [N, C] too.
  const Tensor sure = tensor({0, 30, 0, 0, 0, 30}, {2, 3});
  CHECK(dice_loss(sure, labels({1, 2}, {2}), 0.0, false).item<double>() < 1e-6);
  CHECK(dice_loss(sure, labels({2, 1}, {2}), 0.0, false).item<double>() > 0.99);
  // Class 2 predicted at the second pixel but absent from the target: D_2 = 0; D_1 = 2 / 3.
  CHECK(dice_loss(sure, labels({1, 1}, {2}), 0.0, false).item<double>() ==
        doctest::Approx(1 - (2.0 / 3 + 0) / 2).epsilon(1e-6));
}

TEST_CASE("dice_loss: gradient checks in float64") {
  const Tensor x = uniform({2, 3, 3, 4}, -2, 2);
  const Tensor t =
      labels({0, 1, 2, 2, 1, 0, 0, 0, 1, 2, 2, 2, 0, 0, 0, 1, 1, 1, 2, 0, 1, 0, 2, 2}, {2, 3, 4});
  for (bool bg : {true, false})
    for (double s : {1.0, 0.5, 0.0}) {
      CAPTURE(bg);
      CAPTURE(s);
      CHECK(gradcheck([&](const auto& v) { return dice_loss(v[0], t, s, bg); }, {x}));
    }
  // With cross-entropy, as the training recipe adds them.
  CHECK(gradcheck([&](const auto& v) { return add(cross_entropy(v[0], t), dice_loss(v[0], t)); },
                  {x}));
}

TEST_CASE("dice_loss: errors name the value, its position and the shapes") {
  check_error(
      [] {
        dice_loss(zeros({1, 3, 2}), labels({0, 3}, {1, 2}));
      },
      {"dice_loss", "target value 3", "position 1", "[0, 3)"});
  check_error(
      [] {
        dice_loss(zeros({1, 3, 2}), labels({0, 1, 2}, {1, 3}));
      },
      {"dice_loss", "[1, 3]", "[1, 3, 2]"});
  check_error(
      [] {
        dice_loss(zeros({2, 1, 2}), labels({0, 0, 0, 0}, {2, 2}), 1, false);
      },
      {"dice_loss", "1 classes"});
  check_error([] { dice_loss(zeros({2, 2}), labels({0, 1}, {2}), -1); }, {"smooth"});
}
