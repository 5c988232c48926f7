// engine/gan: the discriminator losses (hand-computed values, float64 finite-difference checks
// through a small D and G), the Turing-test pairs, the image pool and the sample grids.
#include <cmath>
#include <filesystem>

#include <set>

#include <nabla/data/image_folder.h>
#include <nabla/gan/losses.h>
#include <nabla/gan/pool.h>
#include <nabla/gan/samples.h>
#include <nabla/ops.h>

#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;

namespace {

// softplus(x) = log(1 + e^x): BCE(c, 1) = softplus(-c), BCE(c, 0) = softplus(c).
double softplus(double x) {
  return std::log1p(std::exp(x));
}

Tensor f64(std::initializer_list<double> v) {
  return tensor(v, {int64_t(v.size())}, DType::Float64);
}

// A one-layer D and G in float64: G(z) = tanh(z * wg) for z [N, K], wg [K];
// D(x) = sum_k x_k wd_k + bd, giving one logit per row.
Tensor small_g(const Tensor& z, const Tensor& wg) {
  return tanh(mul(z, wg));
}
Tensor small_d(const Tensor& x, const Tensor& wd, const Tensor& bd) {
  return add(sum(mul(x, wd), {1}), bd);
}

}  // namespace

TEST_CASE("gan losses: hand-computed values of every loss") {
  // Real logits r = (2, -0.5), fake logits f = (-1, 0.5).
  const Tensor r = f64({2.0, -0.5}), f = f64({-1.0, 0.5});
  const double bce_r1 = (softplus(-2.0) + softplus(0.5)) / 2;  // BCE(r, 1) = 0.550503
  const double bce_f0 = (softplus(-1.0) + softplus(0.5)) / 2;  // BCE(f, 0) = 0.643669
  auto check = [](gan::Loss l, const Tensor& r, const Tensor& f, double d, double g) {
    gan::Losses L = gan::gan_losses(l, r, f);
    INFO(std::string(gan::loss_name(l)));
    CHECK(L.d.dim() == 0);
    CHECK(L.g.dim() == 0);
    CHECK(L.d.item<double>() == doctest::Approx(d).epsilon(1e-12));
    CHECK(L.g.item<double>() == doctest::Approx(g).epsilon(1e-12));
  };
  check(gan::Loss::Minimax, r, f, bce_r1 + bce_f0, -bce_f0);  // 1.194172, -0.643669
  check(gan::Loss::NonSaturating, r, f, bce_r1 + bce_f0,
        (softplus(1.0) + softplus(-0.5)) / 2);  // G: BCE(f, 1) = 0.893669
  // LSGAN: D = 1/2 mean((1, -1.5)^2) + 1/2 mean((-1, 0.5)^2) = 0.8125 + 0.3125;
  //        G = 1/2 mean((-2, -0.5)^2) = 1.0625.
  check(gan::Loss::LSGAN, r, f, 1.125, 1.0625);
  // RSGAN: r - f = (3, -1), f - r = (-3, 1).
  check(gan::Loss::RSGAN, r, f, (softplus(-3.0) + softplus(1.0)) / 2,
        (softplus(3.0) + softplus(-1.0)) / 2);  // 0.680925, 1.680925
  // Relativistic average: m(f) = -0.25, m(r) = 0.75, so dr = r - m(f) = (2.25, -0.25) and
  // df = f - m(r) = (-1.75, -0.25).
  check(gan::Loss::RaSGAN, r, f,
        ((softplus(-2.25) + softplus(0.25)) / 2 + (softplus(-1.75) + softplus(-0.25)) / 2) / 2,
        ((softplus(2.25) + softplus(-0.25)) / 2 + (softplus(1.75) + softplus(0.25)) / 2) / 2);
  // RaLSGAN: D = 1/2 [mean((1.25, -1.25)^2) + mean((-0.75, 0.75)^2)] = 1/2 (1.5625 + 0.5625);
  //          G = 1/2 [mean((3.25, 0.75)^2) + mean((-2.75, -1.25)^2)] = 1/2 (5.5625 + 4.5625).
  check(gan::Loss::RaLSGAN, r, f, 1.0625, 5.0625);

  // The Turing test: logits (1.5, -2, 0.25), the real sample first in pair 0 only.
  gan::Losses T = gan::turing_losses(f64({1.5, -2.0, 0.25}).reshape({3, 1, 1, 1}),
                                     tensor({1, 0, 0}, {3}, DType::Float32));
  CHECK(T.d.item<double>() ==
        doctest::Approx((softplus(-1.5) + softplus(-2.0) + softplus(0.25)) / 3).epsilon(1e-12));
  CHECK(T.g.item<double>() ==
        doctest::Approx((softplus(1.5) + softplus(2.0) + softplus(-0.25)) / 3).epsilon(1e-12));
}

TEST_CASE("gan losses: names and errors") {
  CHECK(gan::loss_names().size() == 7);
  for (const std::string& n : gan::loss_names()) CHECK(gan::loss_name(gan::loss_from_name(n)) == n);
  check_error([] { gan::loss_from_name("wgan"); }, {"wgan", "minimax", "ralsgan", "turing"});
  check_error(
      [] {
        gan::gan_losses(gan::Loss::RSGAN, zeros({4, 1}), zeros({3, 1}));
      },
      {"rsgan", "[4, 1]", "[3, 1]"});
  check_error([] { gan::gan_losses(gan::Loss::Turing, zeros({4}), zeros({4})); }, {"turing_pair"});
  check_error(
      [] {
        gan::turing_pair(zeros({2, 1, 3, 3}), zeros({2, 1, 3, 4}), zeros({2}));
      },
      {"turing_pair", "[2, 1, 3, 3]", "[2, 1, 3, 4]"});
  check_error(
      [] {
        gan::turing_losses(zeros({3, 1}), zeros({2}));
      },
      {"turing_losses", "[3, 1]", "[2]"});
}

TEST_CASE("gan losses: float64 gradient checks through D and G for every loss") {
  const Tensor xr = uniform({5, 3}, -1, 1, 11);  // real samples
  const Tensor z = uniform({5, 3}, -2, 2, 12);   // latent codes
  const Tensor wd = uniform({3}, -1, 1, 13), bd = uniform({1}, -0.5, 0.5, 14);
  const Tensor wg = uniform({3}, -1, 1, 15);
  for (gan::Loss l : {gan::Loss::Minimax, gan::Loss::NonSaturating, gan::Loss::LSGAN,
                      gan::Loss::RSGAN, gan::Loss::RaSGAN, gan::Loss::RaLSGAN}) {
    for (bool d_side : {true, false}) {
      INFO(std::string(gan::loss_name(l)) << (d_side ? " D loss" : " G loss"));
      // inputs: wd, bd (D's parameters), wg (G's parameter), xr
      CHECK(gradcheck(
          [&](const std::vector<Tensor>& in) {
            Tensor real = small_d(in[3], in[0], in[1]);
            Tensor fake = small_d(small_g(z, in[2]), in[0], in[1]);
            gan::Losses L = gan::gan_losses(l, real, fake);
            return d_side ? L.d : L.g;
          },
          {wd, bd, wg, xr}));
    }
  }
  // Turing: D sees pairs of rows [N, 6]; the generator's gradient crosses the pairing.
  const Tensor wd2 = uniform({6}, -1, 1, 16);
  const Tensor order = tensor({1, 0, 0, 1, 1}, {5}, DType::Float32);
  for (bool d_side : {true, false}) {
    INFO("turing" << (d_side ? " D loss" : " G loss"));
    CHECK(gradcheck(
        [&](const std::vector<Tensor>& in) {
          Tensor pair = gan::turing_pair(in[3], small_g(z, in[2]), order);
          gan::Losses L = gan::turing_losses(small_d(pair, in[0], in[1]), order);
          return d_side ? L.d : L.g;
        },
        {wd2, bd, wg, xr}));
  }
}

TEST_CASE("gan losses: a D step lowers the D loss, a G step lowers the G loss") {
  // The signs: one small gradient step of each player on its own loss must lower that loss.
  const Tensor xr = uniform({8, 3}, -1, 1, 21), z = uniform({8, 3}, -2, 2, 22);
  for (gan::Loss l : {gan::Loss::Minimax, gan::Loss::NonSaturating, gan::Loss::LSGAN,
                      gan::Loss::RSGAN, gan::Loss::RaSGAN, gan::Loss::RaLSGAN}) {
    INFO(std::string(gan::loss_name(l)));
    Tensor wd = uniform({3}, -1, 1, 23), bd = uniform({1}, -0.5, 0.5, 24);
    Tensor wg = uniform({3}, -1, 1, 25);
    for (Tensor* t : {&wd, &bd, &wg}) t->set_requires_grad(true);
    auto losses = [&] {
      return gan::gan_losses(l, small_d(xr, wd, bd), small_d(small_g(z, wg), wd, bd));
    };
    gan::Losses before = losses();
    std::vector<Tensor> gd = grad({before.d}, {wd, bd});
    std::vector<Tensor> gg = grad({losses().g}, {wg});
    {
      NoGradGuard ng;
      Tensor wd1 = sub(wd, mul(gd[0], 1e-3)), bd1 = sub(bd, mul(gd[1], 1e-3));
      Tensor wg1 = sub(wg, mul(gg[0], 1e-3));
      Tensor fake = small_d(small_g(z, wg), wd1, bd1);
      CHECK(gan::gan_losses(l, small_d(xr, wd1, bd1), fake).d.item<double>() <
            before.d.item<double>());
      CHECK(gan::gan_losses(l, small_d(xr, wd, bd), small_d(small_g(z, wg1), wd, bd))
                .g.item<double>() < before.g.item<double>());
    }
  }
}

TEST_CASE("gan turing pairs: order per sample, drawn from the generator") {
  Tensor real = full({3, 1, 2, 2}, 1.0), fake = full({3, 1, 2, 2}, -1.0);
  Tensor pair = gan::turing_pair(real, fake, tensor({1, 0, 1}, {3}, DType::Float32));
  REQUIRE(pair.shape() == Shape{3, 2, 2, 2});
  std::vector<float> v = pair.to_vector<float>();
  for (int n = 0; n < 3; ++n)
    for (int c = 0; c < 2; ++c)
      for (int k = 0; k < 4; ++k) {
        const bool real_first = n != 1;
        const float expect = (c == 0) == real_first ? 1.f : -1.f;
        CHECK(v[size_t(n * 8 + c * 4 + k)] == expect);
      }
  Generator g1(5), g2(5);
  Tensor o1 = gan::turing_order(1000, g1), o2 = gan::turing_order(1000, g2);
  CHECK(o1.to_vector<float>() == o2.to_vector<float>());
  const double ones = sum(o1).item<double>();
  CHECK(ones > 430);  // Binomial(1000, 1/2): 500 +- 16 (sd), so 4 sd either side
  CHECK(ones < 570);
  for (float x : o1.to_vector<float>()) CHECK((x == 0.f || x == 1.f));
}

TEST_CASE("gan image pool: returns its input until full, then swaps with probability 1/2") {
  // Image n of query q is the constant 100 q + n, so every returned image names its origin.
  auto batch = [](int q, int n) {
    std::vector<float> v;
    for (int i = 0; i < n; ++i)
      for (int k = 0; k < 4; ++k) v.push_back(float(100 * q + i));
    return from_vector(v, {int64_t(n), 1, 2, 2});
  };
  auto ids = [](const Tensor& t) {
    std::vector<float> v = t.to_vector<float>();
    std::vector<int> out;
    for (size_t i = 0; i < v.size(); i += 4) {
      for (size_t k = 1; k < 4; ++k) CHECK(v[i + k] == v[i]);  // images are moved whole
      out.push_back(int(v[i]));
    }
    return out;
  };
  gan::ImagePool pool(5, 3);
  CHECK(ids(pool.query(batch(0, 3))) == std::vector<int>{0, 1, 2});
  CHECK(pool.size() == 3);
  // Two more fill it (returned as they are); the sixth image meets a full pool.
  std::vector<int> second = ids(pool.query(batch(1, 3)));
  CHECK(second[0] == 100);
  CHECK(second[1] == 101);
  CHECK(pool.size() == 5);
  // Once full: each output is either the input itself or an image stored before; over many
  // queries about half are swapped, and the pool keeps its size.
  std::set<int> stored = {0, 1, 2, 100, 101};
  if (second[2] != 102) {
    CHECK(stored.count(second[2]) == 1);
    stored.erase(second[2]);
    stored.insert(102);
  }
  int swapped = 0, total = 1;
  for (int q = 2; q < 202; ++q) {
    std::vector<int> out = ids(pool.query(batch(q, 2)));
    for (int i = 0; i < 2; ++i, ++total) {
      const int mine = 100 * q + i;
      if (out[size_t(i)] == mine) continue;
      ++swapped;
      REQUIRE_MESSAGE(stored.count(out[size_t(i)]) == 1,
                      "returned " << out[size_t(i)] << ", which the pool did not hold");
      stored.erase(out[size_t(i)]);
      stored.insert(mine);
    }
    CHECK(pool.size() == 5);
  }
  // Binomial(401, 1/2): 200.5 +- 10 (sd); 4 sd either side.
  CHECK(swapped > 160);
  CHECK(swapped < 241);
  // The pool holds exactly what the bookkeeping says.
  std::vector<int> held = ids(pool.state());
  CHECK(std::set<int>(held.begin(), held.end()) == stored);

  // Seeded: the same seed and queries give the same outputs; the state round-trips.
  gan::ImagePool a(4, 9), b(4, 9);
  for (int q = 0; q < 6; ++q) CHECK(ids(a.query(batch(q, 3))) == ids(b.query(batch(q, 3))));
  gan::ImagePool c(4, 0);
  c.load_state(a.state());
  c.generator().set_state(a.generator().seed(), a.generator().offset());
  CHECK(ids(a.query(batch(7, 3))) == ids(c.query(batch(7, 3))));

  // Capacity 0 passes everything through; errors name the shapes.
  gan::ImagePool none(0);
  CHECK(ids(none.query(batch(3, 2))) == std::vector<int>{300, 301});
  check_error([&] { a.query(zeros({2, 1, 3, 3})); }, {"ImagePool", "[2, 1, 3, 3]", "[1, 1, 2, 2]"});
}

TEST_CASE("gan sample grids: one PNG per epoch, the strip of epochs, interpolation") {
  TempDir tmp;
  const std::string dir = tmp / "samples";
  // Epoch e's images are the constant (e - 2) / 2 in [-1, 1]: pixel (e - 2) / 4 + 1/2 in the PNG.
  for (int e = 1; e <= 3; ++e) {
    const std::string png = gan::save_epoch_samples(dir, e, full({10, 1, 4, 4}, (e - 2) / 2.0), 5);
    CHECK(png == (std::filesystem::path(dir) / ("epoch_00" + std::to_string(e) + ".png")).string());
    Tensor img = data::load_png(png, 1);
    // 2 rows, 5 columns of 4x4 images with 2 pixels of padding: [1, 14, 32].
    REQUIRE(img.shape() == Shape{1, 14, 32});
    CHECK(img.to_vector<float>()[size_t(2 * 32 + 2)] ==
          doctest::Approx(std::round(255 * ((e - 2) / 4.0 + 0.5)) / 255));
  }
  const std::string strip = gan::save_epoch_strip(dir, 4);
  Tensor s = data::load_png(strip, 1);
  REQUIRE(s.shape() == Shape{1, 3 * 6 + 2, 4 * 6 + 2});  // one row of 4 per epoch
  std::vector<float> v = s.to_vector<float>();
  for (int e = 1; e <= 3; ++e)
    CHECK(v[size_t((2 + (e - 1) * 6) * 26 + 2 + 6 * 3)] ==
          doctest::Approx(std::round(255 * ((e - 2) / 4.0 + 0.5)) / 255));
  // An epoch with a different image size cannot join the strip.
  gan::save_epoch_samples(dir, 4, zeros({10, 1, 5, 5}));
  check_error([&] { gan::save_epoch_strip(dir, 4); }, {"epoch_004.npy", "epoch_001.npy"});
  check_error([&] { gan::save_epoch_strip(tmp / "empty", 4); }, {"no epoch_", "empty"});
  check_error(
      [&] {
        gan::save_epoch_samples(dir, 1, zeros({2, 2, 4, 4}));
      },
      {"save_epoch_samples", "[2, 2, 4, 4]"});

  // Interpolation: rows of `steps` points from a_r to b_r, ends included.
  Tensor a = tensor({0, 0, 1, -1}, {2, 2}), b = tensor({4, 8, 1, 1}, {2, 2});
  Tensor path = gan::interpolate_latents(a, b, 5);
  REQUIRE(path.shape() == Shape{10, 2});
  check_close(path, {0, 0, 1, 2, 2, 4, 3, 6, 4, 8, 1, -1, 1, -0.5, 1, 0, 1, 0.5, 1, 1}, 1e-6);
  check_error([&] { gan::interpolate_latents(a, zeros({3, 2}), 5); }, {"[2, 2]", "[3, 2]"});
  check_error([&] { gan::interpolate_latents(a, b, 1); }, {"steps"});
}
