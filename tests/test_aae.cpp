// nets/aae and engine/gan/latent: the priors' moments, the networks' keys and shapes, the
// latent pictures, an encoder step through a frozen latent discriminator (its kernels), the
// recipe's kernels per step, and the autoencoder fitting one batch.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <numbers>

#include <nabla/data/mnist.h>
#include <nabla/gan/latent.h>
#include <nabla/gan/losses.h>
#include <nabla/io/safetensors.h>
#include <nabla/nn/module.h>
#include <nabla/ops.h>
#include <nabla/optim/factory.h>
#include <nabla/train/checkpoint.h>
#include <nets/aae.h>
#include <nets/aae_train.h>
#include <nets/dcgan.h>

#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;

namespace {

struct Moments {
  double mx = 0, my = 0, vxx = 0, vyy = 0, vxy = 0, r2 = 0;
};

Moments moments(const Tensor& z) {
  const std::vector<double> v = z.to(DType::Float64).to_vector<double>();
  const size_t n = v.size() / 2;
  Moments m;
  for (size_t i = 0; i < n; ++i) {
    m.mx += v[2 * i] / double(n);
    m.my += v[2 * i + 1] / double(n);
  }
  for (size_t i = 0; i < n; ++i) {
    const double a = v[2 * i] - m.mx, b = v[2 * i + 1] - m.my;
    m.vxx += a * a / double(n);
    m.vyy += b * b / double(n);
    m.vxy += a * b / double(n);
    m.r2 += (v[2 * i] * v[2 * i] + v[2 * i + 1] * v[2 * i + 1]) / double(n);
  }
  return m;
}

}  // namespace

TEST_CASE("aae priors: the moments of gaussian, mixture10 and swissroll samples") {
  const int64_t n = 200000;  // the sd of a mean of unit-variance draws is 0.0022
  Generator gen(11);
  SUBCASE("gaussian") {
    const Tensor z = gan::sample_prior(gan::Prior::Gaussian, n, 2, gen);
    REQUIRE(z.shape() == Shape{n, 2});
    const Moments m = moments(z);
    CHECK(std::abs(m.mx) < 0.01);
    CHECK(std::abs(m.my) < 0.01);
    CHECK(m.vxx == doctest::Approx(1.0).epsilon(0.01));
    CHECK(m.vyy == doctest::Approx(1.0).epsilon(0.01));
    CHECK(std::abs(m.vxy) < 0.01);
    CHECK(gan::sample_prior(gan::Prior::Gaussian, 3, 8, gen).shape() == Shape{3, 8});
  }
  SUBCASE("mixture10") {
    const Moments m = moments(gan::sample_prior(gan::Prior::Mixture10, n, 2, gen));
    CHECK(std::abs(m.mx) < 0.01);
    CHECK(std::abs(m.my) < 0.01);
    // (1.4^2 + 0.5^2 + 0.05^2) / 2 on each axis, no correlation.
    CHECK(m.vxx == doctest::Approx(1.10625).epsilon(0.01));
    CHECK(m.vyy == doctest::Approx(1.10625).epsilon(0.01));
    CHECK(std::abs(m.vxy) < 0.01);
    // Component k: mean 1.4 (cos, sin)(2 pi k / 10), sd 0.5 along the ray and 0.05 across it.
    for (int64_t k : {0, 3, 7}) {
      INFO("component " << k);
      const Tensor z = gan::sample_prior(gan::Prior::Mixture10, 20000, 2, gen,
                                         full({20000}, double(k), DType::Int64));
      const std::vector<double> v = z.to(DType::Float64).to_vector<double>();
      const double t = 2 * std::numbers::pi * double(k) / 10, c = std::cos(t), s = std::sin(t);
      double along = 0, across = 0, along2 = 0, across2 = 0;
      for (size_t i = 0; i < v.size() / 2; ++i) {
        const double a = c * v[2 * i] + s * v[2 * i + 1], b = -s * v[2 * i] + c * v[2 * i + 1];
        along += a / 20000;
        across += b / 20000;
        along2 += a * a / 20000;
        across2 += b * b / 20000;
      }
      CHECK(along == doctest::Approx(1.4).epsilon(0.01));
      CHECK(std::abs(across) < 0.002);
      CHECK(std::sqrt(along2 - along * along) == doctest::Approx(0.5).epsilon(0.03));
      CHECK(std::sqrt(across2 - across * across) == doctest::Approx(0.05).epsilon(0.03));
    }
  }
  SUBCASE("swissroll") {
    const Moments m = moments(gan::sample_prior(gan::Prior::SwissRoll, n, 2, gen));
    // E|z|^2 = 9 E[u] = 4.5; E z = (6 int_0^1 s^2 cos(4 pi s) ds, 6 int_0^1 s^2 sin(4 pi s) ds)
    // with s = sqrt(u) of density 2s: 6 (1 / (8 pi^2), -1 / (4 pi)).
    const double pi = std::numbers::pi;
    CHECK(m.r2 == doctest::Approx(4.5).epsilon(0.01));
    CHECK(m.mx == doctest::Approx(6.0 / (8 * pi * pi)).epsilon(0.05));
    CHECK(m.my == doctest::Approx(-6.0 / (4 * pi)).epsilon(0.02));
    // Segment k lies between radii 3 sqrt(k / 10) and 3 sqrt((k + 1) / 10).
    const Tensor z =
        gan::sample_prior(gan::Prior::SwissRoll, 1000, 2, gen, full({1000}, 4.0, DType::Int64));
    const std::vector<float> v = z.to_vector<float>();
    for (size_t i = 0; i < 1000; ++i) {
      const double r = std::hypot(v[2 * i], v[2 * i + 1]);
      CHECK(r >= 3 * std::sqrt(0.4) - 1e-5);
      CHECK(r <= 3 * std::sqrt(0.5) + 1e-5);
    }
  }
  check_error([&] { gan::sample_prior(gan::Prior::Mixture10, 4, 3, gen); },
              {"mixture10", "2-d", "d = 3"});
  check_error(
      [&] {
        gan::sample_prior(gan::Prior::SwissRoll, 2, 2, gen, tensor({1, 10}, {2}, DType::Int64));
      },
      {"swissroll", "label 10", "position 1"});
  check_error([] { gan::prior_from_name("uniform"); }, {"uniform", "mixture10"});
}

TEST_CASE("aae priors: the same seed draws the same samples") {
  Generator a(5), b(5);
  CHECK(gan::sample_prior(gan::Prior::SwissRoll, 64, 2, a).to_vector<float>() ==
        gan::sample_prior(gan::Prior::SwissRoll, 64, 2, b).to_vector<float>());
}

TEST_CASE("aae: keys, shapes and errors of the encoder, decoder and discriminator") {
  Generator gen(0);
  nets::AAEEncoder E(1000, 2, &gen);
  nets::AAEDecoder Dec(1000, 2, &gen);
  nets::AAEDiscriminator D(2 + 10, 1000, &gen);
  auto keys = [](const nn::Module& m) {
    std::vector<std::pair<std::string, Shape>> out;
    for (const auto& [name, t] : m.state_dict()) out.emplace_back(name, t.shape());
    return out;
  };
  using KS = std::vector<std::pair<std::string, Shape>>;
  CHECK(keys(E) == KS{{"main.0.bias", {1000}},
                      {"main.0.weight", {1000, 784}},
                      {"main.2.bias", {1000}},
                      {"main.2.weight", {1000, 1000}},
                      {"main.4.bias", {2}},
                      {"main.4.weight", {2, 1000}}});
  CHECK(keys(Dec).back() == std::pair<std::string, Shape>{"main.4.weight", {784, 1000}});
  CHECK(keys(D).at(1) == std::pair<std::string, Shape>{"main.0.weight", {1000, 12}});
  CHECK(E.num_parameters() == 784 * 1000 + 1000 + 1000 * 1000 + 1000 + 2 * 1000 + 2);
  CHECK(D.num_parameters() == 12 * 1000 + 1000 + 1000 * 1000 + 1000 + 1000 + 1);

  const Tensor x = rand({3, 1, 28, 28}, DType::Float32, Device::cpu(), &gen);
  const Tensor z = E(x);
  CHECK(z.shape() == Shape{3, 2});
  check_close(E(x.reshape({3, 784})), z.to_vector<double>());
  const Tensor img = Dec(z);
  CHECK(img.shape() == Shape{3, 1, 28, 28});
  CHECK(Dec.logits(z).shape() == Shape{3, 784});
  CHECK(-max(neg(img)).item<double>() > 0);
  CHECK(max(img).item<double>() < 1);
  CHECK(D(concat({z, zeros({3, 10})}, 1)).shape() == Shape{3, 1});
  check_error([&] { E(zeros({2, 1, 32, 32})); }, {"AAEEncoder", "[2, 1, 32, 32]", "784"});
  check_error([&] { Dec(zeros({2, 3})); }, {"AAEDecoder", "[2, 3]", "[N, 2]"});
  check_error([&] { D(zeros({2, 2})); }, {"AAEDiscriminator", "[2, 2]", "[N, 12]"});
}

TEST_CASE("aae latent pictures: the grid's layout, the box and the scatter file") {
  const Tensor g = gan::latent_grid({-1, 1, -2, 2}, 3);
  REQUIRE(g.shape() == Shape{9, 2});
  // Row 0 is the top (z2 = 2), column 0 the left (z1 = -1).
  check_close(g, {-1, 2, 0, 2, 1, 2, -1, 0, 0, 0, 1, 0, -1, -2, 0, -2, 1, -2});
  std::vector<float> pts;
  for (int i = 0; i <= 100; ++i) {
    pts.push_back(float(i));       // 0..100
    pts.push_back(float(-2 * i));  // -200..0
  }
  const gan::LatentBox b = gan::latent_box(from_vector(pts, {101, 2}), 0.01);
  CHECK(b.x0 == doctest::Approx(1 - 0.05 * 98));  // quantiles 1 and 99, widened by 5 %
  CHECK(b.x1 == doctest::Approx(99 + 0.05 * 98));
  CHECK(b.y0 == doctest::Approx(-198 - 0.1 * 98));
  TempDir tmp;
  Generator gen(1);
  const Tensor codes = gan::sample_prior(gan::Prior::Mixture10, 500, 2, gen);
  const Tensor labels = randint(0, 10, {500}, &gen);
  gan::save_latent_scatter(tmp / "s.png", codes, labels, data::fashion_mnist_classes(), codes,
                           gan::latent_box(codes), "test");
  CHECK(std::filesystem::file_size(tmp / "s.png") > 1000);
  check_error(
      [&] {
        gan::save_latent_scatter(tmp / "t.png", codes, labels.narrow(0, 0, 9), {"a"}, Tensor(),
                                 gan::latent_box(codes), "x");
      },
      {"save_latent_scatter", "t.png", "[9]", "[500]"});
}

TEST_CASE("aae: an encoder step through a frozen discriminator runs no D weight-gradient kernel") {
  Generator gen(5);
  nets::AAEEncoder E(16, 2, &gen);
  nets::AAEDiscriminator D(2, 16, &gen);
  const Tensor x = rand({8, 784}, DType::Float32, Device::cpu(), &gen);
  const Tensor zp = gan::sample_prior(gan::Prior::Mixture10, 8, 2, gen);
  auto g_step = [&] {
    E.zero_grad();
    D.zero_grad();
    reset_kernel_counts();
    gan::gan_losses(gan::Loss::NonSaturating, D(zp).detach(), D(E(x))).g.backward();
  };
  {
    nn::FreezeGuard frozen(D);
    g_step();
    // E's three linear layers only; D's three carry the gradient back to the code.
    CHECK(kernel_count("linear_backward_weight") == 3);
    CHECK(kernel_count("linear_backward_bias") == 3);
    // D's 3 layers back to z, E's last 2 back to their inputs (nobody needs dL/dx).
    CHECK(kernel_count("linear_backward_input") == 3 + 2);
    for (const Tensor& p : D.parameters()) CHECK_FALSE(p.grad().defined());
    for (const Tensor& p : E.parameters()) CHECK(p.grad().defined());
  }
  g_step();  // unfrozen, the same step also pays for D's three layers
  CHECK(kernel_count("linear_backward_weight") == 3 + 3);
  for (const Tensor& p : D.parameters()) CHECK(p.grad().defined());
}

TEST_CASE("aae training recipe: per step, D's weight gradients only in the D step") {
  if (!std::filesystem::exists(data::default_fashion_mnist_dir() + "/train-images-idx3-ubyte.gz")) {
    MESSAGE("skipped: Fashion-MNIST is not installed");
    return;
  }
  TempDir tmp;
  for (bool supervised : {false, true}) {
    INFO("supervised " << supervised);
    nets::AaeTraining t;
    t.prior = "mixture10";
    t.supervised = supervised;
    t.hidden = 8;
    t.epochs = 1;
    t.batch = 32;
    t.train_limit = 64;  // 2 steps
    t.test_limit = 50;
    t.out = tmp / (supervised ? "s" : "u");
    reset_kernel_counts();
    const auto j = nets::train_aae(t, Device::cpu(), false, false);
    // Per step: reconstruction 3 + 3 (E, Dec), D step 3 on the prior and 3 on the codes, G step
    // 3 (E). A G step that also paid for D would add 3 more.
    CHECK(kernel_count("linear_backward_weight") == 2 * (6 + 6 + 3));
    CHECK(j["steps"].get<int>() == 2);
    CHECK(std::filesystem::exists(tmp / ((supervised ? "s" : "u") + std::string("/latent.png"))));
  }
}

TEST_CASE("aae: the autoencoder fits one batch, and D separates the prior from fixed codes") {
  Generator gen(7);
  nets::AAEEncoder E(64, 2, &gen);
  nets::AAEDecoder Dec(64, 2, &gen);
  // Eight binary images to reconstruct through a 2-d code.
  Tensor x = rand({8, 784}, DType::Float32, Device::cpu(), &gen);
  x = where(gt(x, 0.5), full_like(x, 1.0), full_like(x, 0.0));
  std::vector<Tensor> params = E.parameters();
  for (const Tensor& p : Dec.parameters()) params.push_back(p);
  auto opt = optim::make_optimizer("adam", params, {.lr = 3e-3});
  double first = 0, last = 0;
  for (int it = 0; it < 300; ++it) {
    opt->zero_grad();
    Tensor l = binary_cross_entropy_with_logits(Dec.logits(E(x)), x);
    l.backward();
    opt->step();
    (it == 0 ? first : last) = l.item<double>();
  }
  MESSAGE("reconstruction BCE " << first << " -> " << last);
  CHECK(first > 0.6);  // near log 2 at the start
  CHECK(last < 0.05);

  nets::AAEDiscriminator D(2, 32, &gen);
  const Tensor zp = gan::sample_prior(gan::Prior::Gaussian, 64, 2, gen);
  const Tensor zq = add(mul(randn({64, 2}, DType::Float32, Device::cpu(), &gen), 0.1), 3.0);
  auto opt_d = optim::make_optimizer("adam", D.parameters(), {.lr = 1e-2, .beta1 = 0.5});
  for (int it = 0; it < 100; ++it) {
    opt_d->zero_grad();
    Tensor l = gan::gan_losses(gan::Loss::NonSaturating, D(zp), D(zq)).d;
    l.backward();
    opt_d->step();
    (it == 0 ? first : last) = l.item<double>();
  }
  MESSAGE("D loss " << first << " -> " << last);
  CHECK(last < 0.05);
}

#ifdef NABLA_TORCH_PYTHON
TEST_CASE("aae interop: PyTorch's modules load ours strictly and back, the same outputs") {
  TempDir tmp;
  const std::string py =
      std::string(NABLA_TORCH_PYTHON) + " " + NABLA_SOURCE_DIR + "/scripts/torch_autoencoders.py ";
  auto sh = [](const std::string& cmd) { REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, cmd); };
  Generator g(13);
  nets::AAEEncoder E(32, 3, &g);
  nets::AAEDecoder Dec(32, 3, &g);
  nets::AAEDiscriminator D(3 + 10, 32, &g);
  // A few reconstruction steps, so that the weights are not the initial ones.
  const Tensor x = rand({6, 1, 28, 28}, DType::Float32, Device::cpu(), &g);
  std::vector<Tensor> params = E.parameters();
  for (const Tensor& p : Dec.parameters()) params.push_back(p);
  auto opt = optim::make_optimizer("adam", params, {.lr = 1e-2});
  for (int i = 0; i < 3; ++i) {
    opt->zero_grad();
    binary_cross_entropy_with_logits(Dec.logits(E(x)), x.reshape({6, 784})).backward();
    opt->step();
  }
  NoGradGuard ng;
  const Tensor z = E(x), zc = concat({z, nets::one_hot(randint(0, 10, {6}, &g), 10)}, 1);
  save_npy(tmp / "x.npy", x);
  save_npy(tmp / "z.npy", z);
  save_npy(tmp / "zc.npy", zc);
  struct Case {
    const char* kind;
    nn::Module* m;
    const char* in;
    Tensor ours;
  };
  for (const Case& c :
       {Case{"aae-encoder", &E, "x.npy", z}, Case{"aae-decoder", &Dec, "z.npy", Dec(z)},
        Case{"aae-discriminator", &D, "zc.npy", D(zc)}}) {
    INFO(c.kind);
    const std::string ck = tmp / (std::string(c.kind) + ".safetensors");
    io::save_safetensors(ck, c.m->state_dict(), {{"format", "pt"}});
    sh(py + "run " + c.kind + " " + ck + " " + tmp / c.in + " " + tmp / "out.npy");
    check_close(load_npy(tmp / "out.npy").reshape(c.ours.shape()), c.ours, 1e-4, 1e-4);
  }
  // PyTorch -> ours: a fresh PyTorch encoder loads into ours and computes the same codes.
  sh(py + "init aae-encoder " + tmp / "theirs.safetensors" + " --hidden 32 --latent 3 --seed 2");
  sh(py + "run aae-encoder " + tmp / "theirs.safetensors" + " " + tmp / "x.npy" + " " +
     tmp / "theirs.npy");
  nets::AAEEncoder E2(32, 3);
  train::load_weights(E2, tmp / "theirs.safetensors");
  check_close(E2(x), load_npy(tmp / "theirs.npy"), 1e-4, 1e-4);
  // The check can fail: our encoder's codes are not PyTorch's fresh encoder's.
  CHECK(max(abs(sub(z, load_npy(tmp / "theirs.npy")))).item<double>() > 1e-2);
}
#endif
