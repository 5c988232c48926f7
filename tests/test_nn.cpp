// nn: modules, layers, initializers and FashionCNN. Registration and names (PyTorch's), state
// dict round trips and load errors, train/eval, dtype moves, finite-difference checks of each
// parameterized layer through its public members, init statistics, and one-batch overfitting.
#include <cmath>
#include <set>

#include <nabla/nabla.h>
#include <nabla/nn/init.h>
#include <nabla/nn/layers.h>
#include <nets/classifier.h>

#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;

namespace {

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}

double stddev(const Tensor& t) {
  std::vector<double> v = t.to_vector<double>();
  double mean = 0, sq = 0;
  for (double x : v) mean += x;
  mean /= double(v.size());
  for (double x : v) sq += (x - mean) * (x - mean);
  return std::sqrt(sq / double(v.size()));
}

std::vector<std::string> names_of(const std::vector<std::pair<std::string, Tensor>>& v) {
  std::vector<std::string> out;
  for (const auto& [n, _] : v) out.push_back(n);
  return out;
}

}  // namespace

TEST_CASE("Linear: layout, PyTorch default init bounds, forward equals the op") {
  Generator g(3);
  nn::Linear lin(50, 20, true, &g);
  CHECK(lin.weight.shape() == Shape{20, 50});
  CHECK(lin.bias.shape() == Shape{20});
  CHECK(lin.weight.requires_grad());
  CHECK(lin.weight.is_leaf());
  const double bound = 1.0 / std::sqrt(50.0);
  CHECK(max_abs(lin.weight) <= bound);
  CHECK(max_abs(lin.bias) <= bound);
  // U(-b, b) has std b / sqrt(3); 1000 draws land within 10%.
  CHECK(stddev(lin.weight) == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.1));
  Tensor x = rand({4, 50});
  check_close(lin(x), linear(x, lin.weight, lin.bias));
  CHECK(names_of(lin.named_parameters()) == std::vector<std::string>{"weight", "bias"});
  CHECK(lin.num_parameters() == 20 * 50 + 20);
  nn::Linear nobias(3, 2, false);
  CHECK(nobias.parameters().size() == 1);
  check_error([&] { lin(rand({4, 49})); }, {"Linear(50, 20)", "[4, 49]"});
  check_error([] { nn::Linear(0, 3); }, {"in_features must be positive"});
}

TEST_CASE("same generator seed gives the same weights, different seeds differ") {
  Generator a(11), b(11), c(12);
  nn::Conv2d x(3, 4, 3, 1, 1, 1, 1, true, &a), y(3, 4, 3, 1, 1, 1, 1, true, &b),
      z(3, 4, 3, 1, 1, 1, 1, true, &c);
  check_close(x.weight, y.weight, 0, 0);
  CHECK(max_abs(sub(x.weight, z.weight)) > 0);
}

TEST_CASE("Conv2d and ConvTranspose2d: weight layouts, output shapes, errors") {
  nn::Conv2d c(6, 8, 3, 2, 1, 1, 2);
  CHECK(c.weight.shape() == Shape{8, 3, 3, 3});
  CHECK(c(rand({2, 6, 9, 9})).shape() == Shape{2, 8, 5, 5});
  CHECK(max_abs(c.weight) <= 1.0 / std::sqrt(27.0));
  check_error([&] { c(rand({2, 5, 9, 9})); }, {"Conv2d(6, 8)", "[N, 6, H, W]", "[2, 5, 9, 9]"});
  check_error([] { nn::Conv2d(6, 8, 3, 1, 0, 1, 4); }, {"divisible by groups 4"});
  nn::ConvTranspose2d t(8, 4, 4, 2, 1);
  CHECK(t.weight.shape() == Shape{8, 4, 4, 4});
  CHECK(t(rand({1, 8, 5, 5})).shape() == Shape{1, 4, 10, 10});
  // PyTorch's fan_in for a transposed weight [in, out/g, k, k] is (out/g) * k * k.
  CHECK(max_abs(t.weight) <= 1.0 / std::sqrt(64.0));
  CHECK(c.extra_repr() == "6, 8, kernel_size=3, stride=2, padding=1, groups=2");
}

TEST_CASE("finite differences through each parameterized layer (float64, all parameters)") {
  Generator g(5);
  SUBCASE("Linear") {
    nn::Linear m(4, 3, true, &g);
    CHECK(gradcheck(
        [&](const std::vector<Tensor>& in) {
          m.weight = in[1];
          m.bias = in[2];
          return m(in[0]);
        },
        {uniform({2, 4}), m.weight, m.bias}));
  }
  SUBCASE("Conv2d with stride, padding, groups") {
    nn::Conv2d m(4, 2, 3, 2, 1, 1, 2, true, &g);
    CHECK(gradcheck(
        [&](const std::vector<Tensor>& in) {
          m.weight = in[1];
          m.bias = in[2];
          return m(in[0]);
        },
        {uniform({1, 4, 5, 5}), m.weight, m.bias}));
  }
  SUBCASE("ConvTranspose2d with output_padding") {
    nn::ConvTranspose2d m(2, 3, 3, 2, 1, 1, 1, true, 1, &g);
    CHECK(gradcheck(
        [&](const std::vector<Tensor>& in) {
          m.weight = in[1];
          m.bias = in[2];
          return m(in[0]);
        },
        {uniform({1, 2, 3, 3}), m.weight, m.bias}));
  }
  SUBCASE("BatchNorm2d (training) and InstanceNorm2d (affine)") {
    nn::BatchNorm2d bn(3);
    bn.to(DType::Float64);
    CHECK(gradcheck(
        [&](const std::vector<Tensor>& in) {
          bn.weight = in[1];
          bn.bias = in[2];
          return bn(in[0]);
        },
        {uniform({2, 3, 2, 2}), uniform({3}, 0.5, 1.5, 8), uniform({3}, -1, 1, 9)}));
    nn::InstanceNorm2d in_norm(2, 1e-5, true);
    CHECK(gradcheck(
        [&](const std::vector<Tensor>& in) {
          in_norm.weight = in[1];
          in_norm.bias = in[2];
          return in_norm(in[0]);
        },
        {uniform({2, 2, 3, 3}), uniform({2}, 0.5, 1.5, 8), uniform({2}, -1, 1, 9)}));
  }
}

TEST_CASE("BatchNorm2d: running statistics, counter, eval uses them, state dict keys") {
  nn::BatchNorm2d bn(2, 1e-5, 0.5);
  Tensor x = tensor({1, 3, 0, 0, 5, 7, 2, 2}, {2, 2, 1, 2});  // channel 0: 1,3,5,7; 1: 0,0,2,2
  bn(x);
  // mean0 = 4, unbiased var0 = 20/3; mean1 = 1, var1 = 4/3; momentum 0.5 from (0, 1).
  check_close(bn.running_mean, {2.0, 0.5});
  check_close(bn.running_var, {0.5 + 10.0 / 3, 0.5 + 2.0 / 3});
  CHECK(bn.num_batches_tracked.item<int64_t>() == 1);
  bn.eval();
  Tensor y = bn(x);
  CHECK(bn.num_batches_tracked.item<int64_t>() == 1);
  const double s0 = std::sqrt(0.5 + 10.0 / 3 + 1e-5);
  CHECK(y.to_vector<float>()[0] == doctest::Approx((1 - 2.0) / s0).epsilon(1e-5));
  std::set<std::string> keys;
  for (const auto& [k, _] : bn.state_dict()) keys.insert(k);
  CHECK(keys == std::set<std::string>{"weight", "bias", "running_mean", "running_var",
                                      "num_batches_tracked"});
  CHECK(bn.num_batches_tracked.dtype() == DType::Int64);
  bn.to(DType::Float64);
  CHECK(bn.running_mean.dtype() == DType::Float64);
  CHECK(bn.num_batches_tracked.dtype() == DType::Int64);
}

TEST_CASE("Sequential: PyTorch names, nested prefixes, train/eval reaches every child") {
  auto inner = std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
      nn::make<nn::Conv2d>(1, 2, 3), nn::make<nn::BatchNorm2d>(2)});
  nn::Sequential net({inner, nn::make<nn::ReLU>(), nn::make<nn::Dropout>(0.5),
                      nn::make<nn::Flatten>(), nn::make<nn::Linear>(2 * 4 * 4, 3)});
  CHECK(names_of(net.named_parameters()) == std::vector<std::string>{"0.0.weight", "0.0.bias",
                                                                     "0.1.weight", "0.1.bias",
                                                                     "4.weight", "4.bias"});
  CHECK(names_of(net.named_buffers()) ==
        std::vector<std::string>{"0.1.running_mean", "0.1.running_var", "0.1.num_batches_tracked"});
  CHECK(net(rand({2, 1, 6, 6})).shape() == Shape{2, 3});
  net.eval();
  CHECK_FALSE(inner->children()[1].second->is_training());
  // In eval, Dropout is the identity and BatchNorm uses running statistics: deterministic.
  Tensor x = rand({2, 1, 6, 6});
  check_close(net(x), net(x), 0, 0);
  net.train();
  CHECK(inner->children()[1].second->is_training());
  CHECK(net.repr().find("(1): BatchNorm2d(2, eps=") != std::string::npos);
}

TEST_CASE("layers without parameters match their ops") {
  Tensor x = sub(rand({2, 3, 6, 6}), 0.5);
  check_close(nn::ReLU()(x), relu(x), 0, 0);
  check_close(nn::LeakyReLU(0.2)(x), leaky_relu(x, 0.2), 0, 0);
  check_close(nn::Tanh()(x), nabla::tanh(x), 0, 0);
  check_close(nn::Sigmoid()(x), sigmoid(x), 0, 0);
  check_close(nn::MaxPool2d(2)(x), max_pool2d(x, 2, 2), 0, 0);
  check_close(nn::AvgPool2d(3, 1, 1)(x), avg_pool2d(x, 3, 1, 1), 0, 0);
  CHECK(nn::Flatten()(x).shape() == Shape{2, 108});
  CHECK(nn::Upsample(2)(x).shape() == Shape{2, 3, 12, 12});
  nn::Dropout d(0.5);
  Tensor y = d(ones({1000}));
  int zeros_seen = 0;
  for (float v : y.to_vector<float>()) {
    CHECK((v == 0.0f || v == 2.0f));
    zeros_seen += v == 0.0f;
  }
  CHECK(zeros_seen > 400);
  CHECK(zeros_seen < 600);
  check_error([] { nn::Dropout(1.5); }, {"Dropout", "1.5"});
}

TEST_CASE("init: statistics, gains and fans as PyTorch defines them") {
  Generator g(21);
  Tensor w = empty({256, 128, 3, 3});
  CHECK(nn::init::fans(w) == std::pair<int64_t, int64_t>{128 * 9, 256 * 9});
  nn::init::kaiming_normal_(w, 0, nn::init::FanMode::FanIn, "relu", &g);
  CHECK(stddev(w) == doctest::Approx(std::sqrt(2.0 / (128 * 9))).epsilon(0.02));
  nn::init::kaiming_uniform_(w, 0, nn::init::FanMode::FanOut, "relu", &g);
  CHECK(max_abs(w) <= std::sqrt(2.0) * std::sqrt(3.0 / (256 * 9)));
  CHECK(max_abs(w) > 0.95 * std::sqrt(2.0) * std::sqrt(3.0 / (256 * 9)));
  Tensor l = empty({300, 200});
  nn::init::xavier_uniform_(l, 1, &g);
  CHECK(max_abs(l) <= std::sqrt(6.0 / 500));
  nn::init::xavier_normal_(l, 2, &g);
  CHECK(stddev(l) == doctest::Approx(2 * std::sqrt(2.0 / 500)).epsilon(0.03));
  nn::init::normal_(l, 0, 0.02, &g);
  CHECK(stddev(l) == doctest::Approx(0.02).epsilon(0.03));
  CHECK(nn::init::calculate_gain("tanh") == doctest::Approx(5.0 / 3));
  CHECK(nn::init::calculate_gain("leaky_relu", 0.2) == doctest::Approx(std::sqrt(2 / 1.04)));
  check_error([] { nn::init::calculate_gain("swish"); }, {"unknown nonlinearity 'swish'"});
  // In place on a parameter: still the same leaf, no history recorded.
  nn::Linear lin(3, 3);
  Tensor before = lin.weight;
  nn::init::zeros_(lin.weight);
  CHECK(lin.weight.impl() == before.impl());
  CHECK(lin.weight.is_leaf());
  CHECK(max_abs(lin.weight) == 0);
}

TEST_CASE("FashionCNN: PyTorch names and shapes, parameter count, output shape") {
  Generator g(0);
  nets::FashionCNN net(&g);
  std::vector<std::pair<std::string, Shape>> expected = {
      {"conv1.weight", {32, 1, 3, 3}},  {"conv1.bias", {32}},
      {"conv2.weight", {64, 32, 3, 3}}, {"conv2.bias", {64}},
      {"fc1.weight", {128, 3136}},      {"fc1.bias", {128}},
      {"fc2.weight", {10, 128}},        {"fc2.bias", {10}}};
  auto named = net.named_parameters();
  REQUIRE(named.size() == expected.size());
  for (size_t i = 0; i < named.size(); ++i) {
    CHECK(named[i].first == expected[i].first);
    CHECK(named[i].second.shape() == expected[i].second);
  }
  CHECK(net.num_parameters() == 320 + 18496 + 401536 + 1290);
  CHECK(net(rand({3, 1, 28, 28})).shape() == Shape{3, 10});
  check_error([&] { net(rand({3, 3, 28, 28})); }, {"FashionCNN", "[3, 3, 28, 28]"});
}

TEST_CASE("state_dict round trip: a second net gives identical logits, errors change nothing") {
  Generator ga(1), gb(2);
  nets::FashionCNN a(&ga), b(&gb);
  Tensor x = rand({2, 1, 28, 28});
  CHECK(max_abs(sub(a(x), b(x))) > 0);
  std::vector<Tensor> b_params = b.parameters();
  b.load_state_dict(a.state_dict());
  check_close(a(x), b(x), 0, 0);
  // Loading copies into the existing tensors: what an optimizer holds sees the new values.
  CHECK(b_params[0].impl() == b.conv1->weight.impl());
  // A float64 state dict converts on load.
  nn::StateDict sd64;
  for (const auto& [k, v] : a.state_dict()) sd64[k] = v.to(DType::Float64);
  nets::FashionCNN c;
  c.load_state_dict(sd64);
  check_close(a(x), c(x), 0, 0);

  nn::StateDict bad = a.state_dict();
  bad.erase("fc2.bias");
  bad["fc1.weight"] = zeros({64, 3136});
  bad["extra"] = zeros({1});
  Tensor before = b.fc1->weight.clone();
  check_error([&] { b.load_state_dict(bad); },
              {"fc1.weight: expected [128, 3136], got [64, 3136]", "missing keys: fc2.bias",
               "unexpected keys: extra"});
  check_close(b.fc1->weight, before, 0, 0);
  // Non-strict ignores missing and unexpected keys but never a wrong shape.
  bad["fc1.weight"] = zeros({128, 3136});
  b.load_state_dict(bad, false);
  CHECK(max_abs(b.fc1->weight) == 0);
}

TEST_CASE("FashionCNN overfits one batch with a fixed seed") {
  Generator g(0);
  nets::FashionCNN net(&g);
  Tensor x = randn({16, 1, 28, 28}, DType::Float32, Device::cpu(), &g);
  Tensor y = randint(0, 10, {16}, &g);
  double first = 0, last = 0;
  for (int step = 0; step < 60; ++step) {
    Tensor loss = cross_entropy(net(x), y);
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
    net.zero_grad();
    loss.backward();
    NoGradGuard ng;
    for (Tensor& p : net.parameters()) copy_(p, sub(p, mul(p.grad(), 0.1)));
  }
  CHECK(first == doctest::Approx(std::log(10.0)).epsilon(0.1));
  CHECK(last < 0.05);
}
