// nets/dcgan: the reference's state_dict keys and shapes, weights_init's statistics, the
// conditional inputs, the kernels of a generator step through a frozen discriminator, and each
// network fitting one batch.
#include <cmath>
#include <filesystem>

#include <nabla/data/mnist.h>
#include <nabla/gan/losses.h>
#include <nabla/nn/module.h>
#include <nabla/ops.h>
#include <nabla/optim/factory.h>
#include <nets/dcgan.h>
#include <nets/gan_train.h>

#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;
using nets::DCGANDiscriminator;
using nets::DCGANGenerator;

namespace {

std::vector<std::pair<std::string, Shape>> keys(const nn::Module& m) {
  std::vector<std::pair<std::string, Shape>> out;
  for (const auto& [name, t] : m.state_dict()) out.emplace_back(name, t.shape());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::pair<std::string, Shape>> bn(const std::string& p, int64_t c) {
  return {{p + ".bias", {c}},
          {p + ".num_batches_tracked", {}},
          {p + ".running_mean", {c}},
          {p + ".running_var", {c}},
          {p + ".weight", {c}}};
}

}  // namespace

TEST_CASE("dcgan: the reference's state_dict keys, shapes and output shapes") {
  Generator gen(0);
  DCGANGenerator G(100, 64, 1, &gen);
  std::vector<std::pair<std::string, Shape>> want = {{"main.0.weight", {100, 256, 4, 4}},
                                                     {"main.3.weight", {256, 128, 4, 4}},
                                                     {"main.6.weight", {128, 64, 4, 4}},
                                                     {"main.9.weight", {64, 1, 4, 4}}};
  for (auto [p, c] :
       {std::pair<const char*, int64_t>{"main.1", 256}, {"main.4", 128}, {"main.7", 64}})
    for (auto& e : bn(p, c)) want.push_back(e);
  std::sort(want.begin(), want.end());
  CHECK(keys(G) == want);
  // ConvT 100*256*16 + 256*128*16 + 128*64*16 + 64*16, batch norms 2 (256 + 128 + 64).
  CHECK(G.num_parameters() == 1066880);

  DCGANDiscriminator D(1, 64, &gen);
  want = {{"main.0.weight", {64, 1, 4, 4}},
          {"main.2.weight", {128, 64, 4, 4}},
          {"main.5.weight", {256, 128, 4, 4}},
          {"main.8.weight", {1, 256, 4, 4}}};
  for (auto [p, c] : {std::pair<const char*, int64_t>{"main.3", 128}, {"main.6", 256}})
    for (auto& e : bn(p, c)) want.push_back(e);
  std::sort(want.begin(), want.end());
  CHECK(keys(D) == want);
  CHECK(D.num_parameters() == 661248);  // 16 (64 + 64*128 + 128*256 + 256) + 2 (128 + 256)

  Tensor z = randn({3, 100, 1, 1}, DType::Float32, Device::cpu(), &gen);
  Tensor x = G(z);
  CHECK(x.shape() == Shape{3, 1, 32, 32});
  CHECK(G(z.reshape({3, 100})).shape() == Shape{3, 1, 32, 32});
  CHECK(max(abs(x)).item<double>() < 1.0);  // tanh
  CHECK(D(x).shape() == Shape{3, 1, 1, 1});
  check_error([&] { G(zeros({3, 99, 1, 1})); }, {"DCGANGenerator", "[3, 99, 1, 1]", "100"});
  check_error([&] { D(zeros({2, 1, 28, 28})); }, {"DCGANDiscriminator", "[2, 1, 28, 28]"});
  // The Turing-test D reads pairs: two channels.
  DCGANDiscriminator D2(2, 8, &gen);
  CHECK(D2(gan::turing_pair(x, x, tensor({1, 0, 1}, {3}))).shape() == Shape{3, 1, 1, 1});
}

TEST_CASE("dcgan: weights_init draws conv weights N(0, 0.02), batch norm N(1, 0.02) and 0") {
  Generator gen(3);
  DCGANGenerator G(100, 64, 1, &gen);
  auto stats = [](const Tensor& t) {
    const double m = mean(t).item<double>();
    return std::pair<double, double>{m, std::sqrt(var(t).item<double>())};
  };
  for (const char* w : {"main.0.weight", "main.3.weight", "main.6.weight"}) {
    auto [m, s] = stats(G.state_dict().at(w));
    INFO(w);
    CHECK(std::abs(m) < 0.001);  // 131072+ draws: the mean's sd is below 6e-5
    CHECK(s == doctest::Approx(0.02).epsilon(0.01));
  }
  auto [m, s] = stats(G.state_dict().at("main.1.weight"));
  CHECK(m == doctest::Approx(1.0).epsilon(0.01));
  CHECK(s == doctest::Approx(0.02).epsilon(0.2));  // 256 draws
  CHECK(max(abs(G.state_dict().at("main.1.bias"))).item<double>() == 0.0);
}

TEST_CASE("dcgan: conditional inputs (one-hot label appended to z and as image planes)") {
  Tensor y = tensor({2, 0}, {2}, DType::Int64);
  Tensor oh = nets::one_hot(y, 3);
  check_close(oh, {0, 0, 1, 1, 0, 0});
  Tensor z = full({2, 4, 1, 1}, 0.5);
  Tensor zc = nets::condition_latent(z, oh);
  REQUIRE(zc.shape() == Shape{2, 7, 1, 1});
  check_close(zc, {0.5, 0.5, 0.5, 0.5, 0, 0, 1, 0.5, 0.5, 0.5, 0.5, 1, 0, 0});
  Tensor x = full({2, 1, 32, 32}, -1.0);
  Tensor xc = nets::condition_image(x, oh);
  REQUIRE(xc.shape() == Shape{2, 4, 32, 32});
  // Channel 1 + k of sample n is the constant onehot[n, k].
  std::vector<float> v = xc.to_vector<float>();
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 4; ++c) {
      const float want = c == 0 ? -1.f : oh.to_vector<float>()[size_t(n * 3 + c - 1)];
      CHECK(v[size_t((n * 4 + c) * 1024 + 517)] == want);
    }
  check_error(
      [] {
        nets::one_hot(tensor({1, 3}, {2}, DType::Int64), 3);
      },
      {"one_hot", "label 3", "[0, 3)"});
  Generator gen(0);
  DCGANGenerator G(4 + 3, 8, 1, &gen);
  DCGANDiscriminator D(1 + 3, 8, &gen);
  CHECK(D(nets::condition_image(G(zc), oh)).shape() == Shape{2, 1, 1, 1});
}

TEST_CASE(
    "dcgan: a generator step through a frozen discriminator runs no D weight-gradient kernel") {
  Generator gen(5);
  DCGANGenerator G(16, 8, 1, &gen);
  DCGANDiscriminator D(1, 8, &gen);
  Tensor z = randn({4, 16, 1, 1}, DType::Float32, Device::cpu(), &gen);
  Tensor real = rand({4, 1, 32, 32}, DType::Float32, Device::cpu(), &gen, -1, 1);
  auto g_step = [&](gan::Loss l) {
    G.zero_grad();
    D.zero_grad();
    reset_kernel_counts();
    Tensor fake = G(z);
    gan::gan_losses(l, D(real).detach(), D(fake)).g.backward();
  };
  for (gan::Loss l : {gan::Loss::NonSaturating, gan::Loss::RaLSGAN}) {
    INFO(std::string(gan::loss_name(l)));
    {
      nn::FreezeGuard frozen(D);
      g_step(l);
      // G's four transposed convolutions and three batch norms only.
      CHECK(kernel_count("conv2d_backward_weight") == 4);
      CHECK(kernel_count("batch_norm2d_backward_weight") == 3);
      // G's forward (a transposed convolution is conv2d's backward-data) and D's four convs
      // carrying the gradient back to G.
      CHECK(kernel_count("conv2d_backward_input") == 4 + 4);
      for (const Tensor& p : D.parameters()) CHECK_FALSE(p.grad().defined());
      for (const Tensor& p : G.parameters()) CHECK(p.grad().defined());
    }
    // Without the freeze the same step also pays for D's four convs and two batch norms.
    g_step(l);
    CHECK(kernel_count("conv2d_backward_weight") == 4 + 4);
    CHECK(kernel_count("batch_norm2d_backward_weight") == 3 + 2);
  }
}

TEST_CASE("dcgan: each network fits one batch") {
  Generator gen(7);
  // D separates one batch of real images from one fixed batch of G's samples.
  DCGANGenerator G(16, 8, 1, &gen);
  DCGANDiscriminator D(1, 8, &gen);
  const Tensor z = randn({8, 16, 1, 1}, DType::Float32, Device::cpu(), &gen);
  Tensor real = rand({8, 1, 32, 32}, DType::Float32, Device::cpu(), &gen, -1, 1);
  real = where(gt(real, 0.0), full_like(real, 0.8), full_like(real, -0.8));
  Tensor fake;
  {
    NoGradGuard ng;
    fake = G(z);
  }
  auto opt_d = optim::make_optimizer("adam", D.parameters(), {.lr = 2e-3, .beta1 = 0.5});
  double first = 0, last = 0;
  for (int it = 0; it < 30; ++it) {
    opt_d->zero_grad();
    Tensor l = gan::gan_losses(gan::Loss::NonSaturating, D(real), D(fake)).d;
    l.backward();
    opt_d->step();
    (it == 0 ? first : last) = l.item<double>();
  }
  MESSAGE("D loss " << first << " -> " << last);
  CHECK(first > 1.0);  // near 2 log 2 at the start
  CHECK(last < 0.05);

  // G maps 8 fixed codes onto 8 fixed images (a regression on one batch).
  auto opt_g = optim::make_optimizer("adam", G.parameters(), {.lr = 5e-3, .beta1 = 0.5});
  for (int it = 0; it < 200; ++it) {
    opt_g->zero_grad();
    Tensor l = mse_loss(G(z), real);
    l.backward();
    opt_g->step();
    (it == 0 ? first : last) = l.item<double>();
  }
  MESSAGE("G mse " << first << " -> " << last);
  CHECK(first > 0.5);
  CHECK(last < 0.1 * first);
}

TEST_CASE("gan training recipe: per step, D's weight gradients only in the D step") {
  if (!std::filesystem::exists(data::default_fashion_mnist_dir() + "/train-images-idx3-ubyte.gz")) {
    MESSAGE("skipped: Fashion-MNIST is not installed");
    return;
  }
  TempDir tmp;
  for (const char* loss : {"nonsaturating", "rasgan"}) {
    INFO(std::string(loss));
    nets::GanTraining t;
    t.loss = loss;
    t.ngf = t.ndf = 4;
    t.nz = 8;
    t.epochs = 1;
    t.batch = 32;
    t.train_limit = 64;  // 2 steps
    t.out = tmp / loss;
    reset_kernel_counts();
    nets::train_gan(t, Device::cpu(), false, false);
    // Per step: the D step differentiates D's 4 convolutions and 2 batch norms on the real and
    // on the fake batch; the G step only G's 4 transposed convolutions and 3 batch norms. A G
    // step that also paid for D would add 4 and 2 more (the relativistic real logits of the G
    // step are computed without a graph).
    CHECK(kernel_count("conv2d_backward_weight") == 2 * (2 * 4 + 4));
    CHECK(kernel_count("batch_norm2d_backward_weight") == 2 * (2 * 2 + 3));
  }
}
