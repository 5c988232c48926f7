// nets/vae: the reference's keys and shapes, the KL term against its closed form and a
// Monte-Carlo estimate, float64 gradient checks of the ELBO's pieces through the
// reparameterisation, and the model fitting one batch.
#include <cmath>
#include <cstdlib>

#include <nabla/io/safetensors.h>
#include <nabla/ops.h>
#include <nabla/optim/factory.h>
#include <nabla/train/checkpoint.h>
#include <nets/vae.h>

#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;

TEST_CASE("vae: pytorch/examples' keys, shapes and errors") {
  Generator gen(0);
  nets::VAE m(400, 20, &gen);
  std::vector<std::pair<std::string, Shape>> keys;
  for (const auto& [name, t] : m.state_dict()) keys.emplace_back(name, t.shape());
  std::sort(keys.begin(), keys.end());
  CHECK(keys == std::vector<std::pair<std::string, Shape>>{{"fc1.bias", {400}},
                                                           {"fc1.weight", {400, 784}},
                                                           {"fc21.bias", {20}},
                                                           {"fc21.weight", {20, 400}},
                                                           {"fc22.bias", {20}},
                                                           {"fc22.weight", {20, 400}},
                                                           {"fc3.bias", {400}},
                                                           {"fc3.weight", {400, 20}},
                                                           {"fc4.bias", {784}},
                                                           {"fc4.weight", {784, 400}}});
  const Tensor x = rand({3, 1, 28, 28}, DType::Float32, Device::cpu(), &gen);
  auto [mu, logvar] = m.encode(x);
  CHECK(mu.shape() == Shape{3, 20});
  CHECK(logvar.shape() == Shape{3, 20});
  CHECK(m.decode_logits(mu).shape() == Shape{3, 784});
  CHECK(m(x).shape() == Shape{3, 1, 28, 28});
  check_error([&] { m.encode(zeros({2, 783})); }, {"VAE", "[2, 783]"});
  check_error([&] { m.decode(zeros({2, 3})); }, {"VAE", "[2, 3]", "[N, 20]"});
  check_error([] { nets::vae_recon_from_name("l1"); }, {"l1", "bce or gaussian"});
}

TEST_CASE("vae: the KL term is the closed form KL(N(mu, sigma^2) || N(0, 1)) summed") {
  // Per dimension: (sigma^2 + mu^2 - 1 - log sigma^2) / 2.
  const std::vector<double> mu = {0.0, 1.0, -0.5, 2.0}, lv = {0.0, 0.0, std::log(0.25), 1.0};
  double want = 0;
  for (size_t i = 0; i < mu.size(); ++i)
    want += 0.5 * (std::exp(lv[i]) + mu[i] * mu[i] - 1 - lv[i]);
  const Tensor kl = nets::vae_kl(from_vector(mu, {2, 2}), from_vector(lv, {2, 2}));
  CHECK(kl.dim() == 0);
  CHECK(kl.item<double>() == doctest::Approx(want).epsilon(1e-12));
  // Hand-computed: 0 + 1/2 + (0.25 + 0.25 - 1 + log 4) / 2 + (e + 4 - 1 - 1) / 2.
  CHECK(want == doctest::Approx(0.5 + 0.5 * (std::log(4.0) - 0.5) + 0.5 * (std::exp(1.0) + 2)));
  // A Monte-Carlo estimate of E_q[log q(z) - log p(z)] through the reparameterisation agrees.
  Generator gen(3);
  const int64_t n = 400000;
  const Tensor m1 = full({n, 1}, 0.7, DType::Float64), l1 = full({n, 1}, -0.6, DType::Float64);
  const Tensor eps = randn({n, 1}, DType::Float64, Device::cpu(), &gen);
  const Tensor z = nets::reparameterize(m1, l1, eps);
  // log q - log p = -1/2 eps^2 - logvar / 2 + z^2 / 2 (the 2 pi terms cancel).
  const double mc =
      mean(add(sub(mul(mul(z, z), 0.5), mul(mul(eps, eps), 0.5)), 0.3)).item<double>();
  const double exact = nets::vae_kl(m1.narrow(0, 0, 1), l1.narrow(0, 0, 1)).item<double>();
  CHECK(mc == doctest::Approx(exact).epsilon(0.01));
  check_error([] { nets::vae_kl(zeros({2, 3}), zeros({2, 4})); }, {"vae_kl", "[2, 3]", "[2, 4]"});
}

TEST_CASE("vae: float64 gradient checks of the KL, the reparameterisation and both recon terms") {
  const Tensor mu = uniform({3, 4}, -1, 1, 1), lv = uniform({3, 4}, -1, 1, 2);
  const Tensor eps = uniform({3, 4}, -2, 2, 3);
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return nets::vae_kl(in[0], in[1]); },
                  {mu, lv}));
  CHECK(gradcheck(
      [&](const std::vector<Tensor>& in) { return nets::reparameterize(in[0], in[1], eps); },
      {mu, lv}));
  const Tensor logits = uniform({2, 784}, -3, 3, 4), x = uniform({2, 784}, 0, 1, 5);
  for (auto r : {nets::VaeRecon::BCE, nets::VaeRecon::Gaussian})
    CHECK(gradcheck([&](const std::vector<Tensor>& in) { return nets::vae_recon(r, in[0], x); },
                    {logits}));
  // The recon terms' values: the summed BCE and half the summed squared error of sigmoid.
  const Tensor p = sigmoid(logits);
  const double bce = -sum(add(mul(x, log(p)), mul(rsub(1.0, x), log(rsub(1.0, p))))).item<double>();
  CHECK(nets::vae_recon(nets::VaeRecon::BCE, logits, x).item<double>() ==
        doctest::Approx(bce).epsilon(1e-10));
  CHECK(nets::vae_recon(nets::VaeRecon::Gaussian, logits, x).item<double>() ==
        doctest::Approx(0.5 * sum(mul(sub(p, x), sub(p, x))).item<double>()).epsilon(1e-12));
}

TEST_CASE("vae: the model fits one batch (the negative ELBO falls, the KL stays finite)") {
  Generator gen(7);
  nets::VAE m(64, 2, &gen);
  Tensor x = rand({8, 784}, DType::Float32, Device::cpu(), &gen);
  x = where(gt(x, 0.5), full_like(x, 1.0), full_like(x, 0.0));
  auto opt = optim::make_optimizer("adam", m.parameters(), {.lr = 3e-3});
  double first = 0, last = 0, kl_last = 0;
  for (int it = 0; it < 300; ++it) {
    opt->zero_grad();
    auto [mu, logvar] = m.encode(x);
    const Tensor z = nets::reparameterize(mu, logvar, Tensor(), &gen);
    const Tensor kl = div(nets::vae_kl(mu, logvar), 8.0);
    const Tensor l = add(div(nets::vae_recon(nets::VaeRecon::BCE, m.decode_logits(z), x), 8.0), kl);
    l.backward();
    opt->step();
    (it == 0 ? first : last) = l.item<double>();
    kl_last = kl.item<double>();
  }
  MESSAGE("-ELBO per image " << first << " -> " << last << " (KL " << kl_last << ")");
  CHECK(first > 500);  // 784 log 2 = 543 at the start
  CHECK(last < 0.3 * first);
  CHECK(kl_last > 0);
  CHECK(std::isfinite(kl_last));
}

#ifdef NABLA_TORCH_PYTHON
TEST_CASE("vae interop: pytorch/examples' VAE loads ours strictly and back, the same outputs") {
  TempDir tmp;
  const std::string py =
      std::string(NABLA_TORCH_PYTHON) + " " + NABLA_SOURCE_DIR + "/scripts/torch_autoencoders.py ";
  auto sh = [](const std::string& cmd) { REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, cmd); };
  Generator g(17);
  nets::VAE m(48, 5, &g);
  const Tensor x = rand({6, 1, 28, 28}, DType::Float32, Device::cpu(), &g);
  auto opt = optim::make_optimizer("adam", m.parameters(), {.lr = 1e-2});
  for (int i = 0; i < 3; ++i) {
    opt->zero_grad();
    auto [mu, lv] = m.encode(x);
    add(nets::vae_recon(nets::VaeRecon::BCE,
                        m.decode_logits(nets::reparameterize(mu, lv, Tensor(), &g)),
                        x.reshape({6, 784})),
        nets::vae_kl(mu, lv))
        .backward();
    opt->step();
  }
  NoGradGuard ng;
  auto [mu, lv] = m.encode(x);
  save_npy(tmp / "x.npy", x);
  save_npy(tmp / "mu.npy", mu);
  io::save_safetensors(tmp / "ours.safetensors", m.state_dict(), {{"format", "pt"}});
  sh(py + "run vae-encode " + tmp / "ours.safetensors" + " " + tmp / "x.npy" + " " + tmp / "e.npy");
  check_close(load_npy(tmp / "e.npy"), concat({mu, lv}, 1), 1e-4, 1e-4);
  sh(py + "run vae-decode " + tmp / "ours.safetensors" + " " + tmp / "mu.npy" + " " +
     tmp / "d.npy");
  check_close(load_npy(tmp / "d.npy"), m.decode(mu), 1e-4, 1e-4);
  // PyTorch -> ours.
  sh(py + "init vae " + tmp / "theirs.safetensors" + " --hidden 48 --latent 5 --seed 4");
  sh(py + "run vae-encode " + tmp / "theirs.safetensors" + " " + tmp / "x.npy" + " " +
     tmp / "te.npy");
  nets::VAE m2(48, 5);
  train::load_weights(m2, tmp / "theirs.safetensors");
  auto [mu2, lv2] = m2.encode(x);
  check_close(concat({mu2, lv2}, 1), load_npy(tmp / "te.npy"), 1e-4, 1e-4);
  CHECK(max(abs(sub(mu, mu2))).item<double>() > 1e-2);  // a check that can fail
}
#endif
