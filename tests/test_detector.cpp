// nets::SaliencyDetector (the `nabla explain detector` network): shapes and PyTorch parameter
// names for both input widths, forward hooks reaching every layer, shape errors, overfitting one
// batch with a fixed seed, and a synthetic task whose label lives only in the saliency channel
// (the two-channel detector learns it, the image-only baseline cannot).
#include <cmath>
#include <string>
#include <vector>

#include <nabla/nabla.h>
#include <nabla/nn/layers.h>
#include <nabla/optim/optimizer.h>
#include <nets/detector.h>

#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;

namespace {

std::vector<std::string> names_of(const std::vector<std::pair<std::string, Tensor>>& v) {
  std::vector<std::string> out;
  for (const auto& [n, _] : v) out.push_back(n);
  return out;
}

// Full-batch Adam on cross-entropy; returns the losses of every step.
std::vector<double> fit(nn::Module& net, const Tensor& x, const Tensor& y, int steps, double lr) {
  optim::Adam opt(net.parameters(), optim::AdamOptions{.lr = lr});
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    Tensor loss = cross_entropy(net(x), y);
    losses.push_back(loss.item<double>());
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  return losses;
}

double accuracy(nn::Module& net, const Tensor& x, const Tensor& y) {
  NoGradGuard ng;
  std::vector<int64_t> p = argmax(net(x), 1).to_vector<int64_t>(), t = y.to_vector<int64_t>();
  int64_t ok = 0;
  for (size_t i = 0; i < p.size(); ++i) ok += p[i] == t[i];
  return double(ok) / double(p.size());
}

// n samples: channel 0 uniform noise for both classes; channel 1 (the "saliency") is faint
// noise, plus a bright 5x5 square at a random place for label 1. Labels alternate 0, 1, ...
void saliency_task(int64_t n, uint64_t seed, Tensor& x, Tensor& y) {
  Generator g(seed);
  x = rand({n, 2, 28, 28}, DType::Float32, Device::cpu(), &g);
  Tensor sal = rand({n, 28, 28}, DType::Float32, Device::cpu(), &g, 0.0, 0.1);
  std::vector<int64_t> pos = randint(0, 24, {n, 2}, &g).to_vector<int64_t>();
  std::vector<int64_t> labels(static_cast<size_t>(n));
  float* s = sal.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    labels[size_t(i)] = i % 2;
    if (i % 2 == 0) continue;
    for (int64_t r = 0; r < 5; ++r)
      for (int64_t c = 0; c < 5; ++c)
        s[i * 784 + (pos[size_t(2 * i)] + r) * 28 + pos[size_t(2 * i + 1)] + c] = 1.0f;
  }
  copy_(x.narrow(1, 1, 1), sal.unsqueeze(1));
  y = from_vector(labels, {n});
}

}  // namespace

TEST_CASE("SaliencyDetector: shapes and PyTorch parameter names, 2 and 1 input channels") {
  Generator g(0);
  nets::SaliencyDetector det(2, &g);
  CHECK(det.in_channels() == 2);
  CHECK(names_of(det.named_parameters()) ==
        std::vector<std::string>{"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                                 "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"});
  CHECK(det.conv1->weight.shape() == Shape{16, 2, 3, 3});
  CHECK(det.conv2->weight.shape() == Shape{32, 16, 3, 3});
  CHECK(det.fc1->weight.shape() == Shape{64, 32 * 7 * 7});
  CHECK(det.fc2->weight.shape() == Shape{2, 64});
  CHECK(det.fc2->bias.shape() == Shape{2});
  CHECK(det.num_parameters() == 16 * 2 * 9 + 16 + 32 * 16 * 9 + 32 + 64 * 1568 + 64 + 2 * 64 + 2);
  CHECK(det(rand({3, 2, 28, 28})).shape() == Shape{3, 2});

  nets::SaliencyDetector base(1, &g);
  CHECK(base.conv1->weight.shape() == Shape{16, 1, 3, 3});
  CHECK(base(rand({1, 1, 28, 28})).shape() == Shape{1, 2});
  CHECK(base.state_dict().size() == 8);

  check_error(
      [&] {
        det(rand({3, 1, 28, 28}));
      },
      {"SaliencyDetector", "[N, 2, 28, 28]", "[3, 1, 28, 28]"});
  check_error([&] { base(rand({2, 1, 32, 32})); }, {"SaliencyDetector", "[2, 1, 32, 32]"});
  check_error([] { nets::SaliencyDetector(0); }, {"in_channels must be >= 1"});
}

TEST_CASE("SaliencyDetector: children run through operator(), so forward hooks see them") {
  Generator g(1);
  nets::SaliencyDetector det(2, &g);
  Shape seen_conv2, seen_fc1;
  nn::ForwardHookGuard h2(*det.conv2, [&](nn::Module&, const Tensor&, const Tensor& out) {
    seen_conv2 = out.shape();
    return std::optional<Tensor>();
  });
  nn::ForwardHookGuard h3(det.submodule("fc1"), [&](nn::Module&, const Tensor&, const Tensor& out) {
    seen_fc1 = out.shape();
    return std::optional<Tensor>();
  });
  det(rand({4, 2, 28, 28}));
  CHECK(seen_conv2 == Shape{4, 32, 14, 14});
  CHECK(seen_fc1 == Shape{4, 64});
}

TEST_CASE("SaliencyDetector: same seed, same weights and logits") {
  Generator a(5), b(5);
  nets::SaliencyDetector d1(2, &a), d2(2, &b);
  Tensor x = rand({2, 2, 28, 28});
  check_close(d1(x), d2(x), 0, 0);
}

TEST_CASE("SaliencyDetector overfits one batch with a fixed seed") {
  Generator g(0);
  nets::SaliencyDetector det(2, &g);
  Tensor x = rand({16, 2, 28, 28}, DType::Float32, Device::cpu(), &g);
  Tensor y = randint(0, 2, {16}, &g);
  std::vector<double> losses = fit(det, x, y, 40, 2e-3);
  // Two balanced-ish classes at init: the loss starts near log 2.
  CHECK(losses.front() == doctest::Approx(std::log(2.0)).epsilon(0.15));
  MESSAGE("loss ", losses.front(), " -> ", losses.back());
  CHECK(losses.back() < 0.05);
  CHECK(accuracy(det, x, y) == 1.0);
}

TEST_CASE("SaliencyDetector: a label carried only by the saliency channel is learned from it") {
  Tensor x_train, y_train, x_test, y_test;
  saliency_task(64, 11, x_train, y_train);
  saliency_task(64, 12, x_test, y_test);
  Generator g2(3), g1(3);
  nets::SaliencyDetector with_sal(2, &g2), image_only(1, &g1);
  fit(with_sal, x_train, y_train, 30, 2e-3);
  fit(image_only, x_train.narrow(1, 0, 1).contiguous(), y_train, 30, 2e-3);
  const double acc2 = accuracy(with_sal, x_test, y_test);
  const double acc1 = accuracy(image_only, x_test.narrow(1, 0, 1).contiguous(), y_test);
  MESSAGE("held-out accuracy: image + saliency ", acc2, ", image only ", acc1);
  CHECK(acc2 > 0.95);
  CHECK(acc1 < 0.75);  // the image channel holds no information about the label
}
