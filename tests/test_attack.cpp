// The attack library (engine/attack): exact invariants of every attack (eps-balls, [0, 1], L0
// of one-pixel), FGSM's closed form on a linear model, targeted attacks reaching their target,
// early stop, restarts and seeds, no weight-gradient kernel, attacks on a trained tiny CNN (PGD
// at least as strong as FGSM, noise far weaker), and argument errors.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include <nabla/attack/attack.h>

#include "cuda_parity.h"
#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;
namespace at = nabla::attack;

namespace {

// A small random conv net: conv 3x3 (4 maps), relu, max-pool 2, linear to K classes.
struct ConvNet {
  std::shared_ptr<nn::Sequential> net;
  ConvNet(int64_t C, int64_t side, int64_t K, uint64_t seed, DType dt = DType::Float32) {
    Generator g(seed);
    net = std::make_shared<nn::Sequential>();
    net->add(std::make_shared<nn::Conv2d>(C, 4, 3, 1, 1, 1, 1, true, &g))
        .add(std::make_shared<nn::ReLU>())
        .add(std::make_shared<nn::MaxPool2d>(2))
        .add(std::make_shared<nn::Flatten>())
        .add(std::make_shared<nn::Linear>(4 * (side / 2) * (side / 2), K, true, &g));
    net->to(dt);
    net->eval();
  }
  at::Model model() const {
    return [n = net](const Tensor& x) { return (*n)(x); };
  }
};

// logits = flatten(x) W^T + b: the model whose input gradient has a closed form.
at::Model linear_model(const Tensor& W, const Tensor& b) {
  return [W, b](const Tensor& x) { return linear(x.flatten(1), W, b); };
}

Tensor labels(const std::vector<int64_t>& v) {
  return from_vector<int64_t>(v, {int64_t(v.size())});
}

// Every element of t within [lo, hi].
void check_in_box(const Tensor& t, double lo, double hi) {
  const std::vector<double> v = t.to_vector<double>();
  int bad = 0;
  for (double e : v) bad += !(e >= lo && e <= hi);
  CHECK_MESSAGE(bad == 0,
                bad << " elements of " << t.str() << " outside [" << lo << ", " << hi << "]");
}

// The Result's own bookkeeping agrees with x_adv, x, y (and the targets).
void check_bookkeeping(const at::Result& r, const Tensor& x, const Tensor& y) {
  const int64_t N = x.size(0), D = x.numel() / N;
  REQUIRE(r.x_adv.shape() == x.shape());
  REQUIRE(r.success.size() == size_t(N));
  CHECK_FALSE(r.x_adv.requires_grad());
  const std::vector<double> a = r.x_adv.to(Device::cpu()).to_vector<double>();
  const std::vector<double> b = x.to(Device::cpu()).to_vector<double>();
  const std::vector<int64_t> p = r.pred.to_vector<int64_t>();
  const std::vector<int64_t> l = y.to(Device::cpu()).to_vector<int64_t>();
  for (int64_t n = 0; n < N; ++n) {
    double linf = 0, l2 = 0, l0 = 0;
    for (int64_t i = n * D; i < (n + 1) * D; ++i) {
      const double d = std::abs(a[size_t(i)] - b[size_t(i)]);
      linf = std::max(linf, d);
      l2 += d * d;
      l0 += d != 0;
    }
    CHECK(r.linf[size_t(n)] == linf);
    CHECK(r.l2[size_t(n)] == doctest::Approx(std::sqrt(l2)).epsilon(1e-12));
    CHECK(r.l0[size_t(n)] == l0);
    const bool ok = r.target.defined() ? p[size_t(n)] == r.target.to_vector<int64_t>()[size_t(n)]
                                       : p[size_t(n)] != l[size_t(n)];
    CHECK(r.success[size_t(n)] == ok);
  }
}

// A separable 2-class task: 0.5 + 0.05 s P + U(-0.1, 0.1) with P a fixed random +-1 pattern
// [1, 8, 8] and s = -1 (class 0) or +1 (class 1).
struct Task {
  Tensor pattern;
  explicit Task(uint64_t seed) {
    Generator g(seed);
    pattern = sign(rand({1, 1, 8, 8}, DType::Float32, Device::cpu(), &g, -1, 1));
  }
  std::pair<Tensor, Tensor> batch(int64_t B, Generator& g) const {
    Tensor y = randint(0, 2, {B}, &g);
    std::vector<double> s;
    for (int64_t v : y.to_vector<int64_t>()) s.push_back(v ? 0.05 : -0.05);
    Tensor scale = from_vector<double>(s, {B, 1, 1, 1}).to(DType::Float32);
    Tensor noise = rand({B, 1, 8, 8}, DType::Float32, Device::cpu(), &g, -0.1, 0.1);
    return {clamp(add(add(mul(pattern, scale), 0.5), noise), 0, 1), y};
  }
};

}  // namespace

TEST_CASE("attack: every attack keeps x_adv in [0, 1] and within its eps-ball") {
  for (DType dt : {DType::Float32, DType::Float64}) {
    CAPTURE(dtype_name(dt));
    ConvNet cn(2, 6, 3, 11, dt);
    Generator g(5);
    Tensor x = rand({6, 2, 6, 6}, dt, Device::cpu(), &g);
    // Some pixels at the bounds, so that the [0, 1] clipping is exercised.
    copy_(x.narrow(2, 0, 1), full({6, 2, 1, 6}, 1.0, dt));
    copy_(x.narrow(2, 5, 1), zeros({6, 2, 1, 6}, dt));
    Tensor y = labels({0, 1, 2, 0, 1, 2});
    at::Options o;
    o.eps = 0.03;
    o.alpha = 0.01;
    o.steps = 5;
    o.restarts = 2;
    o.random_start = true;
    o.early_stop = false;  // every sample takes every step
    o.seed = 3;
    const double slack = dt == DType::Float32 ? 1e-6 : 1e-12;
    for (const char* m : {"fgsm", "bim", "pgd", "mifgsm", "noise"}) {
      CAPTURE(m);
      at::Result r = at::run(m, cn.model(), x, y, o);
      check_bookkeeping(r, x, y);
      check_in_box(r.x_adv, 0, 1);
      CHECK(r.x_adv.dtype() == dt);
      for (double d : r.linf) CHECK(d <= o.eps + slack);
      CHECK(r.mean_linf() > 0.5 * o.eps);  // it did move
    }
    {
      at::Options l2 = o;
      l2.eps = 0.5;
      l2.alpha = 0.2;
      at::Result r = at::pgd_l2(cn.model(), x, y, l2);
      check_bookkeeping(r, x, y);
      check_in_box(r.x_adv, 0, 1);
      for (double d : r.l2) CHECK(d <= l2.eps * (1 + slack));
      CHECK(r.mean_l2() > 0.2);
    }
    {
      at::Options t = o;
      t.target_mode = at::TargetMode::LeastLikely;
      t.alpha = 0.1;
      at::Result r = at::targeted_l2(cn.model(), x, y, t);
      check_bookkeeping(r, x, y);
      check_in_box(r.x_adv, 0, 1);
      CHECK(r.mean_l2() > 0);
    }
  }
}

TEST_CASE("attack: random noise moves every element by exactly eps, before clipping") {
  ConvNet cn(1, 4, 2, 1, DType::Float64);
  Tensor x = uniform({3, 1, 4, 4}, 0, 1, 9);
  copy_(x.narrow(3, 0, 1), zeros({3, 1, 4, 1}, DType::Float64));
  at::Options o;
  o.eps = 0.05;
  at::Result r = at::random_noise(cn.model(), x, labels({0, 1, 0}), o);
  const std::vector<double> a = r.x_adv.to_vector<double>(), b = x.to_vector<double>();
  int up = 0, down = 0, bad = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = a[i] - b[i];
    if (std::abs(std::abs(d) - o.eps) <= 1e-15) {
      (d > 0 ? up : down) += 1;
    } else if (!(a[i] == 0 || a[i] == 1)) {
      ++bad;
    }
  }
  CHECK(bad == 0);
  CHECK(up > 10);  // both signs occur
  CHECK(down > 5);
}

TEST_CASE("attack: FGSM on a linear model equals the closed form, untargeted and targeted") {
  // Two classes: dCE/dx = p_other (w_other - w_y), so x' = clip(x + eps sign(w_other - w_y)).
  const int64_t D = 12;
  Tensor W = uniform({2, D}, -1, 1, 21), b = uniform({2}, -0.1, 0.1, 22);
  Tensor x = uniform({4, 1, 3, 4}, 0, 1, 23);
  copy_(x.narrow(3, 0, 1), full({4, 1, 3, 1}, 0.99, DType::Float64));  // clipped at 1 or kept
  Tensor y = labels({0, 1, 1, 0});
  at::Options o;
  o.eps = 0.05;
  o.early_stop = false;  // a sample misclassified on x still takes its step
  const std::vector<double> w = W.to_vector<double>(), xv = x.to_vector<double>();
  auto expected = [&](const std::vector<int64_t>& toward) {
    std::vector<double> e(xv.size());
    for (int64_t n = 0; n < 4; ++n)
      for (int64_t i = 0; i < D; ++i) {
        const int64_t to = toward[size_t(n)], from = 1 - to;
        const double s = w[size_t(to * D + i)] - w[size_t(from * D + i)];
        const double v = xv[size_t(n * D + i)] + o.eps * (s > 0 ? 1 : -1);
        e[size_t(n * D + i)] = std::clamp(v, 0.0, 1.0);
      }
    return e;
  };
  at::Result r = at::fgsm(linear_model(W, b), x, y, o);
  check_close(r.x_adv, expected({1, 0, 0, 1}), 0, 0);
  check_bookkeeping(r, x, y);

  o.target_mode = at::TargetMode::Given;
  o.target_class = 1;
  at::Result t = at::fgsm(linear_model(W, b), x, y, o);
  check_close(t.x_adv, expected({1, 1, 1, 1}), 0, 0);
  REQUIRE(t.target.defined());
  CHECK(t.target.to_vector<int64_t>() == std::vector<int64_t>{1, 1, 1, 1});
}

TEST_CASE("attack: targeted attacks reach a reachable target") {
  // Three classes, a linear model: every class is reachable inside [0, 1]^D.
  const int64_t D = 16;
  Tensor W = uniform({3, D}, -1, 1, 31), b = zeros({3}, DType::Float64);
  Tensor x = uniform({5, 1, 4, 4}, 0.3, 0.7, 32);
  Tensor y = labels({0, 1, 2, 0, 1});
  at::Model f = linear_model(W, b);
  at::Options o;
  o.target_mode = at::TargetMode::Given;
  o.target_class = 2;
  o.alpha = 0.05;
  o.steps = 200;
  o.lambda = 0.01;
  at::Result r = at::targeted_l2(f, x, y, o);
  CHECK(r.pred.to_vector<int64_t>() == std::vector<int64_t>(5, 2));
  CHECK(r.success_rate() == 1.0);
  // Early stop: it stopped once there, so the image is still close to x.
  for (double d : r.l2) CHECK(d < 1.0);

  at::Options p;
  p.target_mode = at::TargetMode::Random;
  p.eps = 0.5;
  p.alpha = 0.05;
  p.steps = 40;
  p.seed = 4;
  at::Result q = at::pgd_linf(f, x, y, p);
  const std::vector<int64_t> t = q.target.to_vector<int64_t>(), yy = y.to_vector<int64_t>();
  for (size_t n = 0; n < t.size(); ++n) CHECK(t[n] != yy[n]);
  CHECK(q.pred.to_vector<int64_t>() == t);
  CHECK(q.success_rate() == 1.0);
}

TEST_CASE("attack: choose_targets: given, random (never y), least likely") {
  Tensor W = uniform({4, 6}, -1, 1, 41);
  Tensor x = uniform({8, 1, 2, 3}, 0, 1, 42);
  Tensor y = labels({0, 1, 2, 3, 0, 1, 2, 3});
  at::Model f = linear_model(W, Tensor());
  Generator g(1);
  CHECK(at::choose_targets(f, x, y, at::TargetMode::Given, 3, g).to_vector<int64_t>() ==
        std::vector<int64_t>(8, 3));
  std::vector<int> seen(4, 0);
  for (int rep = 0; rep < 20; ++rep) {
    const std::vector<int64_t> t =
        at::choose_targets(f, x, y, at::TargetMode::Random, 0, g).to_vector<int64_t>();
    for (size_t n = 0; n < t.size(); ++n) {
      CHECK(t[n] != y.to_vector<int64_t>()[n]);
      REQUIRE((t[n] >= 0 && t[n] < 4));
      ++seen[size_t(t[n])];
    }
  }
  for (int s : seen) CHECK(s > 10);  // every class drawn
  Tensor logits = f(x);
  const std::vector<int64_t> ll =
      at::choose_targets(f, x, y, at::TargetMode::LeastLikely, 0, g).to_vector<int64_t>();
  CHECK(ll == argmax(neg(logits), 1).to_vector<int64_t>());
}

TEST_CASE("attack: early stop freezes a sample once it succeeds") {
  // logit_1 - logit_0 = sum(x) - 2 over 4 pixels, label 0. Sample A (x = 0.495) flips after one
  // BIM step of 0.01; sample B (x = 0.2) needs 30 steps; sample C (x = 0.6) is wrong on x.
  Tensor W = tensor({0, 0, 0, 0, 1, 1, 1, 1}, {2, 4}, DType::Float64);
  Tensor b = tensor({0, -2}, {2}, DType::Float64);
  Tensor x = tensor({0.495, 0.495, 0.495, 0.495, 0.2, 0.2, 0.2, 0.2, 0.6, 0.6, 0.6, 0.6},
                    {3, 1, 2, 2}, DType::Float64);
  Tensor y = labels({0, 0, 0});
  at::Options o;
  o.eps = 0.5;
  o.alpha = 0.01;
  o.steps = 5;
  at::Result r = at::bim(linear_model(W, b), x, y, o);
  const std::vector<double> a = r.x_adv.to_vector<double>();
  for (int i = 0; i < 4; ++i) {
    CHECK(a[size_t(i)] == 0.495 + 0.01);  // one step, then frozen
    CHECK(a[size_t(4 + i)] == doctest::Approx(0.25).epsilon(1e-12));
    CHECK(a[size_t(8 + i)] == 0.6);  // never moved
  }
  CHECK(r.success == std::vector<bool>{true, false, true});
  CHECK(r.l0[2] == 0);
  // Without early stop sample A keeps climbing: the check above can fail.
  o.early_stop = false;
  at::Result s = at::bim(linear_model(W, b), x, y, o);
  CHECK(s.x_adv.to_vector<double>()[0] == doctest::Approx(0.545).epsilon(1e-12));
}

TEST_CASE("attack: variants that must coincide: PGD without random start = BIM = MI-FGSM mu=0") {
  ConvNet cn(1, 6, 3, 7);
  Generator g(8);
  Tensor x = rand({5, 1, 6, 6}, DType::Float32, Device::cpu(), &g);
  Tensor y = labels({0, 1, 2, 1, 0});
  at::Options o;
  o.eps = 0.05;
  o.alpha = 0.01;
  o.steps = 6;
  o.early_stop = false;
  at::Result b = at::bim(cn.model(), x, y, o);
  check_close(at::pgd_linf(cn.model(), x, y, o).x_adv, b.x_adv, 0, 0);
  o.momentum = 0;
  check_close(at::mifgsm(cn.model(), x, y, o).x_adv, b.x_adv, 0, 0);
  // With momentum the direction differs somewhere.
  o.momentum = 1;
  const std::vector<double> m = at::mifgsm(cn.model(), x, y, o).x_adv.to_vector<double>();
  CHECK(m != b.x_adv.to_vector<double>());
}

TEST_CASE("attack: random starts follow the seed") {
  ConvNet cn(1, 6, 3, 2);
  Generator g(9);
  Tensor x = rand({4, 1, 6, 6}, DType::Float32, Device::cpu(), &g);
  Tensor y = labels({0, 1, 2, 0});
  at::Options o;
  o.random_start = true;
  o.early_stop = false;
  o.restarts = 2;
  o.seed = 17;
  const auto a = at::pgd_linf(cn.model(), x, y, o).x_adv.to_vector<float>();
  CHECK(a == at::pgd_linf(cn.model(), x, y, o).x_adv.to_vector<float>());
  o.seed = 18;
  CHECK(a != at::pgd_linf(cn.model(), x, y, o).x_adv.to_vector<float>());
}

TEST_CASE("attack: the gradient attacks run no weight-gradient kernel") {
  ConvNet cn(1, 6, 3, 4);
  Generator g(10);
  Tensor x = rand({4, 1, 6, 6}, DType::Float32, Device::cpu(), &g);
  Tensor y = labels({0, 1, 2, 0});
  at::Options o;
  o.steps = 3;
  o.early_stop = false;
  o.random_start = true;
  for (const char* m : {"fgsm", "bim", "pgd", "pgd-l2", "mifgsm", "targeted"}) {
    CAPTURE(m);
    at::Options om = o;
    if (std::string(m) == "targeted") om.target_mode = at::TargetMode::LeastLikely;
    reset_kernel_counts();
    at::run(m, cn.model(), x, y, om);
    CHECK(kernel_count("conv2d_backward_weight") == 0);
    CHECK(kernel_count("linear_backward_weight") == 0);
    CHECK(kernel_count("linear_backward_bias") == 0);
    CHECK(kernel_count("conv2d_backward_input") > 0);  // the input gradient did run
    CHECK(kernel_count("attack_step_linf") + kernel_count("attack_step_l2_delta") > 0);
  }
  for (const Tensor& p : cn.net->parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("attack: one-pixel changes at most k pixels and finds a deciding pixel") {
  ConvNet cn(3, 6, 3, 12);
  Generator g(13);
  Tensor x = rand({3, 3, 6, 6}, DType::Float32, Device::cpu(), &g);
  Tensor y = labels({0, 1, 2});
  at::Options o;
  o.pixels = 2;
  o.population = 12;
  o.generations = 4;
  o.early_stop = false;
  at::Result r = at::one_pixel(cn.model(), x, y, o);
  check_bookkeeping(r, x, y);
  check_in_box(r.x_adv, 0, 1);
  const std::vector<float> a = r.x_adv.to_vector<float>(), b = x.to_vector<float>();
  for (int64_t n = 0; n < 3; ++n) {
    CHECK(r.l0[size_t(n)] <= 2 * 3);
    int changed = 0;
    for (int64_t p = 0; p < 36; ++p) {
      bool any = false;
      for (int64_t c = 0; c < 3; ++c)
        any = any || a[size_t((n * 3 + c) * 36 + p)] != b[size_t((n * 3 + c) * 36 + p)];
      changed += any;
    }
    CHECK(changed <= 2);
    CHECK(changed >= 1);
  }

  // Class 1 wins exactly when pixel (2, 3) exceeds 0.05: the evolution must find that pixel.
  std::vector<double> w(2 * 36, 0.0);
  w[size_t(36 + 2 * 6 + 3)] = 10;
  Tensor W = from_vector<double>(w, {2, 36});
  Tensor bias = tensor({0.5, 0}, {2}, DType::Float64);
  Tensor z = zeros({2, 1, 6, 6}, DType::Float64);
  at::Options e;
  e.population = 20;
  e.generations = 30;
  e.seed = 2;
  at::Result s = at::one_pixel(linear_model(W, bias), z, labels({0, 0}), e);
  CHECK(s.success_rate() == 1.0);
  const std::vector<double> sv = s.x_adv.to_vector<double>();
  for (int64_t n = 0; n < 2; ++n) {
    CHECK(s.l0[size_t(n)] == 1);
    CHECK(sv[size_t(n * 36 + 2 * 6 + 3)] > 0.05);
  }
}

TEST_CASE("attack: on a trained CNN, PGD hurts at least as much as FGSM, noise far less") {
  Task task(3);
  ConvNet cn(1, 8, 2, 5);
  cn.net->train();
  optim::AdamOptions ao;
  ao.lr = 0.01;
  optim::Adam opt(cn.net->parameters(), ao);
  Generator g(6);
  for (int step = 0; step < 150; ++step) {
    auto [xb, yb] = task.batch(32, g);
    opt.zero_grad();
    cross_entropy((*cn.net)(xb), yb).backward();
    opt.step();
  }
  cn.net->eval();
  auto [x, y] = task.batch(200, g);
  at::Options o;
  o.eps = 0.04;
  o.alpha = 0.01;
  o.steps = 10;
  const std::vector<int64_t> clean_pred = argmax((*cn.net)(x), 1).to_vector<int64_t>();
  const std::vector<int64_t> labels_v = y.to_vector<int64_t>();
  double clean = 0;
  for (size_t n = 0; n < labels_v.size(); ++n) clean += clean_pred[n] == labels_v[n];
  clean /= double(labels_v.size());
  const double f = at::fgsm(cn.model(), x, y, o).accuracy(y);
  const double p = at::pgd_linf(cn.model(), x, y, o).accuracy(y);
  const double noise = at::random_noise(cn.model(), x, y, o).accuracy(y);
  MESSAGE("clean " << clean << ", fgsm " << f << ", pgd " << p << ", noise " << noise);
  CHECK(clean >= 0.95);
  CHECK(p <= f);
  CHECK(f <= clean - 0.3);
  CHECK(noise >= clean - 0.05);
}

TEST_CASE("attack: argument errors name the attack and the shapes") {
  ConvNet cn(1, 4, 2, 1);
  at::Model f = cn.model();
  Tensor x = rand({2, 1, 4, 4});
  Tensor y = labels({0, 1});
  at::Options o;
  check_error([&] { at::fgsm(f, x, labels({0}), o); }, {"fgsm", "y must be int64 [2]", "[1]"});
  check_error([&] { at::bim(f, x, y.to(DType::Float32), o); }, {"bim", "y must be int64"});
  check_error([&] { at::pgd_linf(f, zeros({2}, DType::Int64), y, o); },
              {"pgd_linf", "x must be a floating batch", "int64[2]"});
  check_error([&] { at::fgsm(f, add(x, 1.5), y, o); }, {"fgsm", "must lie in [0, 1]"});
  check_error([&] { at::bim(f, x, labels({0, 5}), o); }, {"bim", "y[1] = 5", "[0, 2)"});
  at::Options bad = o;
  bad.eps = -1;
  check_error([&] { at::fgsm(f, x, y, bad); }, {"fgsm", "eps must be", "-1"});
  bad = o;
  bad.steps = 0;
  check_error([&] { at::pgd_l2(f, x, y, bad); }, {"pgd_l2", "steps must be >= 1"});
  bad = o;
  bad.restarts = 0;
  check_error([&] { at::pgd_linf(f, x, y, bad); }, {"pgd_linf", "restarts must be >= 1"});
  check_error([&] { at::targeted_l2(f, x, y, o); }, {"targeted_l2", "needs a target"});
  bad = o;
  bad.target_mode = at::TargetMode::Given;
  bad.target_class = 7;
  check_error([&] { at::mifgsm(f, x, y, bad); }, {"mifgsm", "target class 7", "[0, 2)"});
  check_error([&] { at::one_pixel(f, x.flatten(1), y, o); },
              {"one_pixel", "[N, C, H, W]", "[2, 16]"});
  bad = o;
  bad.pixels = 17;
  check_error([&] { at::one_pixel(f, x, y, bad); }, {"one_pixel", "pixels", "17"});
  bad = o;
  bad.population = 3;
  check_error([&] { at::one_pixel(f, x, y, bad); }, {"one_pixel", "population"});
  at::Model wrong = [](const Tensor& t) { return t.flatten(0); };
  check_error([&] { at::fgsm(wrong, x, y, o); }, {"fgsm", "logits [N, K]", "[32]"});
  {
    NoGradGuard ng;
    check_error([&] { at::fgsm(f, x, y, o); }, {"fgsm", "grad mode is off"});
  }
  check_error([&] { at::run("no-such-attack", f, x, y, o); },
              {"unknown method 'no-such-attack'", "pgd-l2"});
  at::Result r = at::fgsm(f, x, y, o);
  check_error([&] { r.accuracy(labels({0})); }, {"Result::accuracy", "int64 [2]", "[1]"});
  CHECK(std::string(at::target_mode_name(at::TargetMode::LeastLikely)) == "least-likely");
  Generator g(1);
  check_error([&] { at::choose_targets(f, x, y, at::TargetMode::None, 0, g); },
              {"choose_targets", "'none'"});
}

TEST_CASE("attack: on the GPU, the same invariants, FGSM's closed form and the CPU's noise") {
  if (!gpu_or_skip()) return;
  const Device gpu = Device::cuda(0);
  // FGSM on a linear model: the sign of the gradient, hence x_adv, is exact on any device.
  Tensor W = uniform({2, 12}, -1, 1, 51), b = uniform({2}, -0.1, 0.1, 52);
  Tensor x = uniform({4, 1, 3, 4}, 0, 1, 53);
  Tensor y = labels({0, 1, 1, 0});
  at::Options o;
  o.eps = 0.05;
  o.early_stop = false;
  at::Result cpu = at::fgsm(linear_model(W, b), x, y, o);
  at::Result dev = at::fgsm(linear_model(W.to(gpu), b.to(gpu)), x.to(gpu), y.to(gpu), o);
  CHECK(dev.x_adv.device() == gpu);
  check_close(dev.x_adv.to(Device::cpu()), cpu.x_adv, 0, 0);
  // Noise: the same Philox draws and the same fused step give the same bits.
  at::Result ncpu = at::random_noise(linear_model(W, b), x, y, o);
  at::Result ndev = at::random_noise(linear_model(W.to(gpu), b.to(gpu)), x.to(gpu), y, o);
  check_close(ndev.x_adv.to(Device::cpu()), ncpu.x_adv, 0, 0);

  ConvNet cn(2, 6, 3, 11);
  cn.net->to(gpu);
  Generator g(5);
  Tensor xc = rand({6, 2, 6, 6}, DType::Float32, Device::cpu(), &g);
  Tensor yc = labels({0, 1, 2, 0, 1, 2});
  at::Options p;
  p.eps = 0.03;
  p.alpha = 0.01;
  p.steps = 4;
  p.restarts = 2;
  p.random_start = true;
  p.early_stop = false;
  p.population = 8;
  p.generations = 2;
  for (const char* m : {"fgsm", "bim", "pgd", "mifgsm", "noise", "pgd-l2", "onepixel"}) {
    CAPTURE(m);
    at::Result r = at::run(m, cn.model(), xc.to(gpu), yc, p);
    CHECK(r.x_adv.device() == gpu);
    check_bookkeeping(r, xc, yc);
    check_in_box(r.x_adv.to(Device::cpu()), 0, 1);
    if (std::string(m) == "pgd-l2") {
      for (double d : r.l2) CHECK(d <= p.eps * (1 + 1e-6));
    } else if (std::string(m) == "onepixel") {
      for (double d : r.l0) CHECK(d <= 2);
    } else {
      for (double d : r.linf) CHECK(d <= p.eps + 1e-6);
    }
  }
  p.target_mode = at::TargetMode::LeastLikely;
  at::Result t = at::targeted_l2(cn.model(), xc.to(gpu), yc, p);
  check_bookkeeping(t, xc, yc);
  check_in_box(t.x_adv.to(Device::cpu()), 0, 1);
}

// ---------------------------------------------------------------- objectives

namespace {

// A tiny fully convolutional net: conv 3x3 (C -> 6, padding 1), batch norm (eval), relu,
// conv 1x1 (6 -> K): per-pixel logits [N, K, H, W] for images [N, C, H, W]. The first conv is
// centred on mid-grey and the last has no bias, so the predicted class varies with x.
struct SegNet {
  std::shared_ptr<nn::Sequential> net;
  SegNet(int64_t C, int64_t K, uint64_t seed) {
    Generator g(seed);
    auto first = std::make_shared<nn::Conv2d>(C, 6, 3, 1, 1, 1, 1, true, &g);
    auto last = std::make_shared<nn::Conv2d>(6, K, 1, 1, 0, 1, 1, true, &g);
    {
      NoGradGuard ng;
      copy_(first->bias, mul(sum(first->weight, {1, 2, 3}), -0.5));
      copy_(last->bias, zeros_like(last->bias));
    }
    net = std::make_shared<nn::Sequential>();
    net->add(first)
        .add(std::make_shared<nn::BatchNorm2d>(6))
        .add(std::make_shared<nn::ReLU>())
        .add(last);
    net->eval();
  }
  Tensor operator()(const Tensor& x) const {
    NoGradGuard ng;
    return (*net)(x);
  }
};

// Per sample, the fraction of pixels whose argmax over dim 1 of out equals mask: counted here,
// not by the library.
std::vector<double> fraction_at(const Tensor& out, const Tensor& mask) {
  const int64_t N = out.size(0), K = out.size(1), P = out.size(2) * out.size(3);
  const std::vector<double> o = out.to(Device::cpu()).to_vector<double>();
  const std::vector<int64_t> m = mask.to(Device::cpu()).contiguous().to_vector<int64_t>();
  std::vector<double> f(size_t(N), 0);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t p = 0; p < P; ++p) {
      int64_t best = 0;
      for (int64_t k = 1; k < K; ++k)
        if (o[size_t((n * K + k) * P + p)] > o[size_t((n * K + best) * P + p)]) best = k;
      f[size_t(n)] += best == m[size_t(n * P + p)];
    }
    f[size_t(n)] /= double(P);
  }
  return f;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double e : v) s += e;
  return v.empty() ? 0 : s / double(v.size());
}

}  // namespace

TEST_CASE(
    "attack: PGD on a fully convolutional net lowers pixel accuracy, within eps, no weight "
    "gradient") {
  SegNet seg(1, 3, 21);
  Generator g(22);
  Tensor x = rand({4, 1, 8, 8}, DType::Float32, Device::cpu(), &g);
  Tensor y = argmax(seg(x), 1);  // the clean prediction: clean pixel accuracy 1
  REQUIRE(y.shape() == Shape{4, 8, 8});
  at::Options o;
  o.eps = 0.2;
  o.alpha = 0.04;
  o.steps = 10;
  o.early_stop = false;
  o.objective = at::Objective::segmentation(0.5);
  reset_kernel_counts();
  at::Result r = at::pgd_linf(*seg.net, x, y, o);
  CHECK(kernel_count("conv2d_backward_weight") == 0);
  CHECK(kernel_count("batch_norm2d_backward_weight") == 0);
  CHECK(kernel_count("linear_backward_weight") == 0);
  CHECK(kernel_count("linear_backward_bias") == 0);
  CHECK(kernel_count("conv2d_backward_input") > 0);  // the input gradient did run
  CHECK(kernel_count("attack_step_linf") > 0);
  for (const Tensor& p : seg.net->parameters()) CHECK_FALSE(p.grad().defined());

  check_in_box(r.x_adv, 0, 1);
  for (double d : r.linf) CHECK(d <= o.eps + 1e-6);
  CHECK(r.mean_linf() > 0.5 * o.eps);
  // The score is the pixel accuracy of f(x_adv) against y, counted here.
  const Tensor out = seg(r.x_adv);
  const std::vector<double> acc = fraction_at(out, y);
  REQUIRE(r.score.size() == 4);
  for (size_t n = 0; n < 4; ++n) {
    CHECK(r.score[n] == doctest::Approx(acc[n]).epsilon(1e-12));
    CHECK(r.success[n] == (acc[n] < 0.5));
  }
  CHECK(r.pred.shape() == Shape{4, 8, 8});
  CHECK(r.pred.to_vector<int64_t>() == argmax(out, 1).to_vector<int64_t>());
  CHECK(r.accuracy(y) == doctest::Approx(mean_of(acc)).epsilon(1e-12));
  CHECK_FALSE(r.target.defined());
  MESSAGE("pixel accuracy: clean 1, after PGD " << r.mean_score());
  CHECK(r.mean_score() < 0.55);
  // Random signs of the same size hurt far less: the gradient is what lowers the accuracy.
  const double noise = at::random_noise(*seg.net, x, y, o).mean_score();
  MESSAGE("random signs of the same size: " << noise);
  CHECK(noise > r.mean_score() + 0.2);

  // The counters do see weight gradients when a full backward asks for them.
  reset_kernel_counts();
  cross_entropy((*seg.net)(x), y).backward();
  CHECK(kernel_count("conv2d_backward_weight") > 0);
  seg.net->zero_grad();
}

TEST_CASE("attack: targeted segmentation moves pixels toward the target mask") {
  SegNet seg(1, 3, 31);
  Generator g(32);
  Tensor x = rand({3, 1, 8, 8}, DType::Float32, Device::cpu(), &g);
  Tensor y = argmax(seg(x), 1);
  // Target: class 0 on the left half, class 2 on the right half.
  std::vector<int64_t> m(64);
  for (int64_t i = 0; i < 8; ++i)
    for (int64_t j = 0; j < 8; ++j) m[size_t(i * 8 + j)] = j < 4 ? 0 : 2;
  Tensor mask = from_vector<int64_t>(m, {8, 8});
  Tensor masks = mask.unsqueeze(0).expand({3, 8, 8}).contiguous();
  const std::vector<double> before = fraction_at(seg(x), masks);

  at::Options o;
  o.eps = 0.3;
  o.alpha = 0.03;
  o.steps = 20;
  o.early_stop = false;
  o.objective = at::Objective::segmentation_targeted(mask, 0.9);
  at::Result r = at::pgd_linf(*seg.net, x, y, o);
  const std::vector<double> after = fraction_at(seg(r.x_adv), masks);
  MESSAGE("fraction at the target: before " << mean_of(before) << ", after " << mean_of(after));
  for (size_t n = 0; n < 3; ++n) {
    CHECK(after[n] >= before[n] + 0.25);
    CHECK(r.success[n] == (after[n] >= 0.9));
  }
  for (double d : r.linf) CHECK(d <= o.eps + 1e-6);
  REQUIRE(r.target.defined());
  CHECK(r.target.to_vector<int64_t>() == masks.to_vector<int64_t>());
  // The score stays the pixel accuracy against y, the labels, not against the target.
  const std::vector<double> acc = fraction_at(seg(r.x_adv), y);
  for (size_t n = 0; n < 3; ++n) CHECK(r.score[n] == doctest::Approx(acc[n]).epsilon(1e-12));

  // One mask per sample [N, H, W] is the same objective as the shared [H, W] mask.
  o.objective = at::Objective::segmentation_targeted(masks, 0.9);
  check_close(at::pgd_linf(*seg.net, x, y, o).x_adv, r.x_adv, 0, 0);

  // targeted_l2 descends the CE to the mask too; an untargeted objective has no target for it.
  at::Options t = o;
  t.alpha = 0.2;
  t.steps = 30;
  t.lambda = 0.001;
  const std::vector<double> l2 = fraction_at(seg(at::targeted_l2(*seg.net, x, y, t).x_adv), masks);
  CHECK(mean_of(l2) >= mean_of(before) + 0.25);
  t.objective = at::Objective::segmentation();
  check_error([&] { at::targeted_l2(*seg.net, x, y, t); },
              {"targeted_l2", "needs a target", "segmentation_targeted"});
}

TEST_CASE("attack: segmentation success thresholds, scores and early stop") {
  // o = [x, 1 - x] per pixel: class 0 where x > 0.5, class 1 where x < 0.5.
  at::Model f = [](const Tensor& x) { return concat({x, rsub(1.0, x)}, 1); };
  Tensor x = tensor({0.9, 0.8, 0.2, 0.7, 0.1, 0.3, 0.6, 0.9}, {2, 1, 2, 2}, DType::Float64);
  // predictions: sample 0 [0, 0, 1, 0], sample 1 [1, 1, 0, 0]
  Tensor y = from_vector<int64_t>({0, 0, 1, 1, 1, 0, 1, 1}, {2, 2, 2});  // 3/4 and 1/4 right
  at::Options o;
  o.eps = 0;  // x_adv = x: success and score of the clean batch
  auto noise = [&](double threshold) {
    o.objective = at::Objective::segmentation(threshold);
    return at::random_noise(f, x, y, o);
  };
  at::Result r = noise(0.5);
  CHECK(r.score == std::vector<double>{0.75, 0.25});
  CHECK(r.mean_score() == 0.5);
  CHECK(r.success == std::vector<bool>{false, true});
  CHECK(noise(0.25).success == std::vector<bool>{false, false});  // strictly below
  CHECK(noise(0.76).success == std::vector<bool>{true, true});
  CHECK(noise(0.0).success == std::vector<bool>{false, false});
  CHECK(r.pred.to_vector<int64_t>() == std::vector<int64_t>{0, 0, 1, 0, 1, 1, 0, 0});
  CHECK(at::Objective::segmentation().score(f(x), y) == std::vector<double>{0.75, 0.25});

  // Targeted: the fraction of pixels at the target reaches the threshold.
  Tensor t = from_vector<int64_t>({0, 0, 0, 0}, {2, 2});  // 3/4 and 2/4 of the pixels there
  auto toward = [&](double threshold) {
    o.objective = at::Objective::segmentation_targeted(t, threshold);
    return at::random_noise(f, x, y, o);
  };
  CHECK(toward(0.5).success == std::vector<bool>{true, true});
  CHECK(toward(0.6).success == std::vector<bool>{true, false});
  CHECK(toward(0.8).success == std::vector<bool>{false, false});
  CHECK(toward(0.6).score == std::vector<double>{0.75, 0.25});  // still against y

  // Early stop uses the objective's success: a sample that already succeeds never moves.
  at::Options p;
  p.eps = 0.05;
  p.alpha = 0.01;
  p.steps = 3;
  p.objective = at::Objective::segmentation(0.5);
  at::Result e = at::pgd_linf(f, x, y, p);
  CHECK(e.l0[1] == 0);  // pixel accuracy 0.25 < 0.5 on x
  CHECK(e.l0[0] > 0);
  p.objective = at::Objective::segmentation(0.8);
  at::Result all = at::pgd_linf(f, x, y, p);
  CHECK(all.l0 == std::vector<double>{0, 0});
}

TEST_CASE("attack: a user-supplied objective drives the attacks and decides success") {
  // Two logits of a linear model; the objective raises the margin o_0 - o_1 and succeeds once
  // it exceeds y_n, a float per sample: dl/dx = W[0] - W[1], so FGSM has a closed form.
  const int64_t D = 12;
  Tensor W = uniform({2, D}, -1, 1, 61);
  Tensor x = uniform({3, 1, 3, 4}, 0.2, 0.8, 62);
  at::Model f = linear_model(W, Tensor());
  auto margin = [](const Tensor& out) { return sub(out.narrow(1, 0, 1), out.narrow(1, 1, 1)); };
  int loss_calls = 0;
  at::Objective::Loss loss = [&](const Tensor& out, const Tensor&) {
    ++loss_calls;
    return margin(out).flatten(0);
  };
  at::Objective::Success success = [&](const Tensor& out, const Tensor& y) {
    const std::vector<double> m = margin(out).to_vector<double>(), t = y.to_vector<double>();
    std::vector<bool> s;
    for (size_t n = 0; n < m.size(); ++n) s.push_back(m[n] > t[n]);
    return s;
  };
  const std::vector<double> m0 = margin(f(x)).to_vector<double>();
  // Sample 0 already succeeds; samples 1 and 2 need more than the attack can give.
  Tensor y = from_vector<double>({m0[0] - 1, m0[1] + 100, m0[2] + 100}, {3});
  at::Options o;
  o.eps = 0.05;
  o.early_stop = false;
  o.objective = at::Objective::custom(loss, success, {}, "margin");
  at::Result r = at::fgsm(f, x, y, o);
  CHECK(loss_calls == 1);
  const std::vector<double> w = W.to_vector<double>(), xv = x.to_vector<double>();
  std::vector<double> expected(xv.size());
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t i = 0; i < D; ++i) {
      const double s = w[size_t(i)] - w[size_t(D + i)];
      expected[size_t(n * D + i)] =
          std::clamp(xv[size_t(n * D + i)] + (s > 0 ? 0.05 : -0.05), 0.0, 1.0);
    }
  check_close(r.x_adv, expected, 0, 0);
  CHECK(r.success == std::vector<bool>{true, false, false});
  CHECK(r.score == std::vector<double>{0, 1, 1});  // no score given: not fooled = 1
  CHECK_FALSE(r.pred.defined());
  check_error([&] { r.accuracy(labels({0, 0, 0})); }, {"Result::accuracy", "custom"});
  // The attack did raise the margin of every sample by eps sum |W[0] - W[1]|.
  const std::vector<double> m1 = margin(f(r.x_adv)).to_vector<double>();
  for (size_t n = 0; n < 3; ++n) CHECK(m1[n] > m0[n]);

  // With early stop, the sample that succeeds on x stays there; a given score is reported.
  o.early_stop = true;
  o.objective = at::Objective::custom(loss, success, [&](const Tensor& out, const Tensor&) {
    return margin(out).to_vector<double>();
  });
  at::Result e = at::bim(f, x, y, o);
  CHECK(e.l0[0] == 0);
  CHECK(e.l0[1] > 0);
  CHECK(e.score == margin(f(e.x_adv)).to_vector<double>());

  // One-pixel takes its fitness from the objective: bring output element 15 (pixel (2, 3) of a
  // 6x6 image) to within 0.005 of 0.5. The loss -(o_15 - 0.5)^2 guides the evolution there;
  // a blind search over (row, col, value) lands in that window once in ~3,600 tries.
  at::Model identity = [](const Tensor& t) { return t.flatten(1); };
  at::Objective::Loss pixel = [](const Tensor& out, const Tensor&) {
    Tensor d = sub(out.narrow(1, 15, 1).flatten(0), 0.5);
    return neg(mul(d, d));
  };
  at::Objective::Success hit = [](const Tensor& out, const Tensor&) {
    std::vector<bool> s;
    for (double v : out.narrow(1, 15, 1).contiguous().to_vector<double>())
      s.push_back(std::abs(v - 0.5) < 0.005);
    return s;
  };
  at::Options d;
  d.population = 20;
  d.generations = 60;
  d.seed = 3;
  d.objective = at::Objective::custom(pixel, hit);
  Tensor z = zeros({3, 1, 6, 6}, DType::Float64);
  at::Result op = at::one_pixel(identity, z, zeros({3}, DType::Float64), d);
  CHECK(op.success_rate() == 1.0);
  const std::vector<double> ov = op.x_adv.to_vector<double>();
  for (int64_t n = 0; n < 3; ++n) {
    CHECK(op.l0[size_t(n)] == 1);
    CHECK(std::abs(ov[size_t(n * 36 + 15)] - 0.5) < 0.005);
  }

  // A custom loss must give one value per sample.
  at::Options bad = o;
  bad.objective = at::Objective::custom([](const Tensor& out, const Tensor&) { return sum(out); },
                                        success, {}, "scalar");
  check_error([&] { at::fgsm(f, x, y, bad); },
              {"fgsm", "objective 'scalar'", "one floating value per sample", "[3]"});
}

TEST_CASE("attack: objective errors name the shapes") {
  SegNet seg(1, 3, 41);
  Tensor x = rand({2, 1, 8, 8});
  Tensor y = zeros({2, 8, 8}, DType::Int64);
  at::Options o;
  o.objective = at::Objective::segmentation();
  // Masks [N, H, W] against an output [N, C, H, W] of another size.
  check_error(
      [&] {
        at::pgd_linf(*seg.net, x, zeros({2, 4, 4}, DType::Int64), o);
      },
      {"pgd_linf", "segmentation", "[2, 3, 8, 8]", "[2, 4, 4]"});
  check_error([&] { at::fgsm(*seg.net, x, zeros({2}, DType::Int64), o); },
              {"fgsm", "int64 [N, H, W]", "N = 2", "int64[2]"});
  check_error(
      [&] {
        at::fgsm(*seg.net, x, zeros({3, 8, 8}, DType::Int64), o);
      },
      {"fgsm", "N = 2", "[3, 8, 8]"});
  Tensor bad_label = y.clone();
  copy_(bad_label.narrow(2, 5, 1).narrow(1, 1, 1).narrow(0, 1, 1),
        full({1, 1, 1}, 3.0, DType::Int64));
  check_error([&] { at::bim(*seg.net, x, bad_label, o); },
              {"bim", "label y[1, 1, 5] = 3", "[0, 3)", "[2, 3, 8, 8]"});
  o.target_mode = at::TargetMode::LeastLikely;
  check_error([&] { at::fgsm(*seg.net, x, y, o); }, {"fgsm", "least-likely", "classification"});
  o.target_mode = at::TargetMode::None;
  o.objective = at::Objective::segmentation_targeted(zeros({5, 5}, DType::Int64));
  check_error([&] { at::fgsm(*seg.net, x, y, o); },
              {"fgsm", "target mask", "[5, 5]", "[8, 8]", "[2, 8, 8]"});
  o.objective = at::Objective::segmentation_targeted(full({8, 8}, 7.0, DType::Int64));
  check_error([&] { at::fgsm(*seg.net, x, y, o); }, {"fgsm", "target[0, 0, 0] = 7", "[0, 3)"});
  // A classifier's output is not a segmentation output.
  o.objective = at::Objective::segmentation();
  ConvNet cn(1, 8, 3, 1);
  check_error([&] { at::fgsm(cn.model(), x, y, o); },
              {"fgsm", "[N, C, H, W]", "[2, 3]", "[2, 8, 8]"});
  check_error([] { at::Objective::segmentation(1.5); }, {"threshold must be in [0, 1]", "1.5"});
  check_error(
      [] {
        at::Objective::segmentation_targeted(zeros({4, 4}));
      },
      {"segmentation_targeted", "int64 [H, W] or [N, H, W]", "float32[4, 4]"});
  check_error([] { at::Objective::custom({}, {}); }, {"custom", "needs a loss"});
  check_error(
      [&] {
        at::Objective().score(zeros({2, 3}), zeros({2, 8, 8}, DType::Int64));
      },
      {"score", "[N, K]", "[2, 3]", "[2, 8, 8]"});
}

TEST_CASE("attack: adversarial_accuracy: per batch, on the target model, clean at eps 0") {
  ConvNet a(1, 6, 3, 71), b(1, 6, 3, 72);
  Generator g(73);
  Tensor x = rand({7, 1, 6, 6}, DType::Float32, Device::cpu(), &g);
  Tensor y = labels({0, 1, 2, 0, 1, 2, 1});
  at::Options o;
  o.eps = 0.1;
  o.alpha = 0.03;
  o.steps = 3;
  // Crafted on a, scored on b, in batches of 3: counted here batch by batch.
  int64_t right = 0;
  for (int64_t lo = 0; lo < 7; lo += 3) {
    const int64_t hi = std::min<int64_t>(7, lo + 3);
    Tensor xa = at::pgd_linf(a.model(), x.slice(lo, hi), y.slice(lo, hi), o).x_adv;
    const std::vector<int64_t> p = argmax(b.model()(xa), 1).to_vector<int64_t>();
    for (int64_t i = lo; i < hi; ++i)
      right += p[size_t(i - lo)] == y.to_vector<int64_t>()[size_t(i)];
  }
  std::vector<std::pair<int64_t, int64_t>> calls;
  const double acc = at::adversarial_accuracy(
      *a.net, *b.net, x, y, "pgd", o, 3, Device::cpu(),
      [&](int64_t done, int64_t total) { calls.emplace_back(done, total); });
  CHECK(acc == double(right) / 7);
  CHECK(calls == std::vector<std::pair<int64_t, int64_t>>{{3, 7}, {6, 7}, {7, 7}});
  // eps 0: the clean accuracy of the target model.
  at::Options clean = o;
  clean.eps = 0;
  const std::vector<int64_t> pc = argmax(b.model()(x), 1).to_vector<int64_t>();
  int64_t clean_right = 0;
  for (size_t i = 0; i < pc.size(); ++i) clean_right += pc[i] == y.to_vector<int64_t>()[i];
  CHECK(at::adversarial_accuracy(a.model(), b.model(), x, y, "pgd", clean, 4, Device::cpu()) ==
        double(clean_right) / 7);
  check_error(
      [&] {
        at::adversarial_accuracy(*a.net, *a.net, x, y, "no-such-attack", o, 3, Device::cpu());
      },
      {"adversarial_accuracy", "unknown method 'no-such-attack'"});
  check_error(
      [&] {
        at::adversarial_accuracy(*a.net, *a.net, x, y.slice(0, 5), "fgsm", o, 3, Device::cpu());
      },
      {"adversarial_accuracy", "[7, 1, 6, 6]", "[5]"});

  // Segmentation: the mean pixel accuracy; a mask per sample is cut batch by batch.
  SegNet seg(1, 3, 74);
  Tensor xs = rand({5, 1, 8, 8}, DType::Float32, Device::cpu(), &g);
  Tensor ys = argmax(seg(xs), 1);
  Tensor masks = randint(0, 3, {5, 8, 8}, &g);
  at::Options s;
  s.eps = 0.2;
  s.alpha = 0.05;
  s.steps = 4;
  s.objective = at::Objective::segmentation_targeted(masks, 0.9);
  double total = 0;
  for (int64_t lo = 0; lo < 5; lo += 2) {
    const int64_t hi = std::min<int64_t>(5, lo + 2);
    at::Options sb = s;
    sb.objective = at::Objective::segmentation_targeted(masks.slice(lo, hi), 0.9);
    Tensor xa = at::pgd_linf(*seg.net, xs.slice(lo, hi), ys.slice(lo, hi), sb).x_adv;
    for (double v : fraction_at(seg(xa), ys.slice(lo, hi))) total += v;
  }
  const double pix =
      at::adversarial_accuracy(*seg.net, *seg.net, xs, ys, "pgd", s, 2, Device::cpu());
  CHECK(pix == doctest::Approx(total / 5).epsilon(1e-12));
  CHECK(pix < 0.9);
}

TEST_CASE("attack: a Module, a lambda and a lambda with its module are the same model") {
  ConvNet cn(1, 6, 3, 81);
  Generator g(82);
  Tensor x = rand({4, 1, 6, 6}, DType::Float32, Device::cpu(), &g);
  Tensor y = labels({0, 1, 2, 1});
  at::Options o;
  o.steps = 4;
  o.early_stop = false;
  const std::vector<float> ref = at::bim(cn.model(), x, y, o).x_adv.to_vector<float>();
  CHECK(at::bim(*cn.net, x, y, o).x_adv.to_vector<float>() == ref);
  CHECK(at::bim(nn::Model(cn.model(), cn.net.get()), x, y, o).x_adv.to_vector<float>() == ref);
  check_error([&] { at::fgsm(at::Model(), x, y, o); }, {"fgsm", "model is empty"});
}

TEST_CASE("attack: on the GPU, segmentation PGD keeps its bounds and scores what it returns") {
  if (!gpu_or_skip()) return;
  const Device gpu = Device::cuda(0);
  SegNet seg(1, 3, 21);
  Generator g(22);
  Tensor x = rand({4, 1, 8, 8}, DType::Float32, Device::cpu(), &g);
  Tensor y = argmax(seg(x), 1);
  seg.net->to(gpu);
  at::Options o;
  o.eps = 0.2;
  o.alpha = 0.04;
  o.early_stop = false;
  o.objective = at::Objective::segmentation(0.5);
  reset_kernel_counts();
  at::Result r = at::pgd_linf(*seg.net, x.to(gpu), y.to(gpu), o);
  CHECK(kernel_count("conv2d_backward_weight") == 0);
  CHECK(kernel_count("batch_norm2d_backward_weight") == 0);
  CHECK(r.x_adv.device() == gpu);
  check_in_box(r.x_adv.to(Device::cpu()), 0, 1);
  for (double d : r.linf) CHECK(d <= o.eps + 1e-6);
  const std::vector<double> acc = fraction_at(seg(r.x_adv), y);
  for (size_t n = 0; n < 4; ++n) CHECK(r.score[n] == doctest::Approx(acc[n]).epsilon(1e-12));
  CHECK(r.mean_score() < 0.8);
  CHECK(at::adversarial_accuracy(*seg.net, *seg.net, x, y, "pgd", o, 2, gpu) < 0.8);
}
