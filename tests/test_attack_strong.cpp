// The stronger attacks: APGD, APGD-T, the DLR loss, Square, AutoAttack (no FAB), DeepFool,
// Carlini-Wagner, JSMA, universal perturbations and TRADES' KL (engine/attack), and
// the fused APGD step: the checkpoint and p schedules by hand, APGD's step-size conditions on
// scripted toy objectives (closed forms for the final step size), DLR's values by hand and its
// float64 gradient, the fused step against a double reference, eps-balls and [0, 1], seeds,
// no weight-gradient kernel (and no backward at all for Square), Square's query counts, and
// strength on a trained tiny CNN.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include <nabla/attack/attack.h>

#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;
namespace at = nabla::attack;

namespace {

// conv 3x3 (4 maps), relu, max-pool 2, linear to K classes.
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

// A 4-class task on 8x8 images, 0.5 + 0.08 P_c + U(-0.1, 0.1) with fixed random +-1 patterns
// P_c, and the ConvNet trained on it (150 Adam steps, about 0.1 s).
struct PatternTask {
  Generator g;
  std::vector<Tensor> pat;
  explicit PatternTask(uint64_t seed) : g(seed) {
    for (int c = 0; c < 4; ++c)
      pat.push_back(sign(rand({1, 1, 8, 8}, DType::Float32, Device::cpu(), &g, -1, 1)));
  }
  std::pair<Tensor, Tensor> batch(int64_t B) {
    Tensor y = randint(0, 4, {B}, &g);
    std::vector<Tensor> xs;
    for (int64_t c : y.to_vector<int64_t>()) xs.push_back(add(mul(pat[size_t(c)], 0.08), 0.5));
    Tensor noise = rand({B, 1, 8, 8}, DType::Float32, Device::cpu(), &g, -0.1, 0.1);
    return {clamp(add(concat(xs, 0), noise), 0, 1), y};
  }
  ConvNet trained(uint64_t seed) {
    ConvNet cn(1, 8, 4, seed);
    cn.net->train();
    optim::AdamOptions ao;
    ao.lr = 0.01;
    optim::Adam opt(cn.net->parameters(), ao);
    for (int step = 0; step < 150; ++step) {
      auto [xb, yb] = batch(32);
      opt.zero_grad();
      cross_entropy((*cn.net)(xb), yb).backward();
      opt.step();
    }
    cn.net->eval();
    return cn;
  }
};

Tensor labels(const std::vector<int64_t>& v) {
  return from_vector<int64_t>(v, {int64_t(v.size())});
}

// The largest violation of the ball (norm "linf" or "l2", per sample) and of [0, 1], counted
// here from x_adv and x.
void check_bounds(const Tensor& xa, const Tensor& x, at::Norm norm, double eps) {
  const int64_t N = x.size(0), D = x.numel() / N;
  const std::vector<double> a = xa.to(Device::cpu()).to_vector<double>();
  const std::vector<double> b = x.to(Device::cpu()).to_vector<double>();
  // float32 rounding of x0 +- eps may overshoot by half an ulp.
  const double tol = xa.dtype() == DType::Float32 ? 1e-6 : 1e-12;
  for (int64_t n = 0; n < N; ++n) {
    double linf = 0, l2 = 0, lo = 1, hi = 0;
    for (int64_t i = n * D; i < (n + 1) * D; ++i) {
      const double d = a[size_t(i)] - b[size_t(i)];
      linf = std::max(linf, std::abs(d));
      l2 += d * d;
      lo = std::min(lo, a[size_t(i)]);
      hi = std::max(hi, a[size_t(i)]);
    }
    CAPTURE(n);
    CHECK(lo >= 0);
    CHECK(hi <= 1);
    if (norm == at::Norm::Linf)
      CHECK(linf <= eps + tol);
    else
      CHECK(std::sqrt(l2) <= eps * (1 + tol) + tol);
  }
}

// logits = W flatten(x): a model whose loss the toy objectives below read or ignore.
at::Model linear_model(int64_t D, int64_t K, uint64_t seed) {
  Generator g(seed);
  Tensor W = rand({K, D}, DType::Float32, Device::cpu(), &g, -1, 1);
  return [W](const Tensor& x) { return linear(x.flatten(1), W, Tensor()); };
}

// A custom objective whose loss value follows a script, whatever x is: l_n = f(call) +
// 0 * sum(out_n). The gradient is zero, so x never moves; only the schedule acts. Never
// succeeds.
at::Objective scripted(std::function<double(int)> f) {
  auto calls = std::make_shared<int>(0);
  return at::Objective::custom(
      [calls, f](const Tensor& out, const Tensor&) {
        const double v = f((*calls)++);
        return add(mul(sum(out, {1}), 0.0), v);
      },
      [](const Tensor& out, const Tensor&) { return std::vector<bool>(size_t(out.size(0))); }, {},
      "scripted");
}

}  // namespace

TEST_CASE("apgd: checkpoints and Square's p schedule, by hand") {
  // p: 0, .22, .41, .57, .70, .80, .87, .93, .99 (then 1.05 > 1).
  CHECK(at::apgd_checkpoints(100) == std::vector<int>{22, 41, 57, 70, 80, 87, 93, 99});
  // ceil(p_j 10): 3, 5, 6, 7, 8, 9, 10 (0.93 -> 10 and 0.99 -> 10 coincide).
  CHECK(at::apgd_checkpoints(10) == std::vector<int>{3, 5, 6, 7, 8, 9, 10});
  CHECK(at::apgd_checkpoints(1) == std::vector<int>{1});
  CHECK(at::square_p(0.8, 0, 5000) == 0.8);
  CHECK(at::square_p(0.8, 5, 5000) == 0.8);    // 10 of 10000
  CHECK(at::square_p(0.8, 6, 5000) == 0.4);    // 12
  CHECK(at::square_p(0.8, 100, 5000) == 0.2);  // 200
  CHECK(at::square_p(0.8, 101, 5000) == 0.1);  // 202
  CHECK(at::square_p(0.8, 4999, 5000) == 0.8 / 512);
  CHECK(at::square_p(0.8, 1000, 1000) == 0.8 / 512);
}

TEST_CASE("apgd: the step-size conditions on scripted objectives give the closed forms") {
  const at::Model model = linear_model(16, 3, 1);
  Tensor x = full({2, 1, 4, 4}, 0.5, DType::Float32);
  Tensor y = labels({0, 1});
  at::Options o;
  o.eps = 0.1;
  o.steps = 100;  // checkpoints 22, 41, 57, 70, 80, 87, 93, 99
  SUBCASE("a constant loss: condition (1) halves eta at every checkpoint") {
    o.objective = scripted([](int) { return 1.0; });
    const at::Result r = at::apgd(model, x, y, o);
    for (double e : r.step_size) CHECK(e == 2 * 0.1 / 256);
    for (int64_t q : r.queries) CHECK(q == 101);  // the start and 100 iterates
  }
  SUBCASE("a loss that rises at every step: eta never changes") {
    o.objective = scripted([](int k) { return double(k); });
    for (double e : at::apgd(model, x, y, o).step_size) CHECK(e == 0.2);
  }
  SUBCASE("rising but below the start's loss: condition (2) alone, at every other checkpoint") {
    // f(x_0) = 1e6, then 1, 2, 3, ...: each window has enough increases for (1) to fail, but
    // f_max never moves, so (2) holds whenever eta did not change at the previous checkpoint:
    // at checkpoints 1, 3, 5, 7.
    o.objective = scripted([](int k) { return k == 0 ? 1e6 : double(k); });
    for (double e : at::apgd(model, x, y, o).step_size) CHECK(e == 0.2 / 16);
  }
  SUBCASE("rho = 0 disables condition (1): rising loss, no halving; flat loss still halves") {
    o.apgd_rho = 0;
    o.objective = scripted([](int) { return 1.0; });
    // (2) alone: eta unchanged and f_max unchanged at checkpoints 1, 3, 5, 7.
    for (double e : at::apgd(model, x, y, o).step_size) CHECK(e == 0.2 / 16);
  }
}

TEST_CASE("apgd: DLR by hand and its float64 gradient") {
  // z = [3, 1, 2, 0]: sorted 3 (class 0), 2 (2), 1 (1), 0 (3).
  Tensor z = from_vector<double>({3, 1, 2, 0, 0.5, 4, -1, 2}, {2, 4});
  Tensor y = labels({0, 1});
  // Sample 0, y = 0 is the top: -(3 - 2) / (3 - 1) = -0.5.
  // Sample 1: sorted 4 (1), 2 (3), 0.5 (0), -1 (2); y = 1 top: -(4 - 2) / (4 - 0.5) = -4/7.
  check_close(at::dlr_loss(z, y), {-0.5, -4.0 / 7}, 1e-12, 1e-12);
  // Untargeted with y not on top: sample 0 with y = 2: -(2 - 3) / (3 - 1) = 0.5.
  check_close(at::dlr_loss(z, labels({2, 3})), {0.5, -(2.0 - 4) / (4 - 0.5)}, 1e-12, 1e-12);
  // Targeted: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2).
  check_close(at::dlr_loss(z, y, labels({2, 3})),
              {-(3.0 - 2) / (3 - (1 + 0) / 2.0), -(4.0 - 2) / (4 - (0.5 - 1) / 2.0)}, 1e-12, 1e-12);
  // The gradient away from ties: autograd against central differences in float64.
  Tensor zr = uniform({3, 5}, -2, 2, 31);
  const Tensor yr = labels({0, 3, 4}), tr = labels({1, 0, 2});
  CHECK(gradcheck([&](const std::vector<Tensor>& in) { return at::dlr_loss(in[0], yr); }, {zr}));
  CHECK(
      gradcheck([&](const std::vector<Tensor>& in) { return at::dlr_loss(in[0], yr, tr); }, {zr}));
  check_error(
      [&] {
        at::dlr_loss(from_vector<double>({1, 2}, {1, 2}), labels({0}));
      },
      {"dlr_loss", "K >= 3", "[1, 2]"});
}

TEST_CASE("attack_step_apgd_linf: a hand case, and float64 equal to the formula") {
  // One sample, three elements; eps 0.1, eta 0.05, a 0.75.
  Tensor x = from_vector<double>({0.5, 0.58, 0.95}, {1, 3});
  Tensor xp = from_vector<double>({0.45, 0.6, 0.95}, {1, 3});
  Tensor g = from_vector<double>({1, 1, 1}, {1, 3});
  Tensor x0 = from_vector<double>({0.5, 0.5, 0.95}, {1, 3});
  Tensor eta = from_vector<double>({0.05}, {1});
  // z = [0.55, 0.6 (ball), 1 (box)]; t = x + .75 (z - x) + .25 (x - xp)
  //   = [0.5 + 0.0375 + 0.0125, 0.58 + 0.015 - 0.005, 0.95 + 0.0375] -> clip
  check_close(attack_step_apgd_linf(x, xp, g, x0, eta, 0.75, 0.1), {0.55, 0.59, 0.9875}, 1e-12,
              1e-12);
  // Random data in float64: the kernel equals the formula evaluated here.
  const int64_t N = 5, D = 37;
  Generator gen(3);
  Tensor X0 = rand({N, D}, DType::Float64, Device::cpu(), &gen);
  Tensor X = clamp(add(X0, rand({N, D}, DType::Float64, Device::cpu(), &gen, -0.1, 0.1)), 0, 1);
  Tensor XP = clamp(add(X0, rand({N, D}, DType::Float64, Device::cpu(), &gen, -0.1, 0.1)), 0, 1);
  Tensor G = randn({N, D}, DType::Float64, Device::cpu(), &gen);
  Tensor E = rand({N}, DType::Float64, Device::cpu(), &gen, 0, 0.2);
  const double a = 0.75, eps = 0.08;
  const std::vector<double> got =
      attack_step_apgd_linf(X, XP, G, X0, E, a, eps).to_vector<double>();
  const auto xv = X.to_vector<double>(), pv = XP.to_vector<double>(), gv = G.to_vector<double>(),
             ov = X0.to_vector<double>(), ev = E.to_vector<double>();
  const auto proj = [&](double v, double c) {
    return std::min(1.0, std::max(0.0, std::min(c + eps, std::max(c - eps, v))));
  };
  double worst = 0;
  for (int64_t k = 0; k < N * D; ++k) {
    const double s = (gv[size_t(k)] > 0) - (gv[size_t(k)] < 0);
    const double z = proj(xv[size_t(k)] + ev[size_t(k / D)] * s, ov[size_t(k)]);
    const double t =
        proj(xv[size_t(k)] + a * (z - xv[size_t(k)]) + (1 - a) * (xv[size_t(k)] - pv[size_t(k)]),
             ov[size_t(k)]);
    worst = std::max(worst, std::abs(t - got[size_t(k)]));
  }
  CHECK(worst <= 1e-15);
  check_error([&] { attack_step_apgd_linf(X, XP, G, X0, E, 1.5, eps); },
              {"attack_step_apgd_linf", "momentum", "1.5"});
  check_error([&] { attack_step_apgd_linf(X, XP, G, X0, zeros({3}, DType::Float64), a, eps); },
              {"attack_step_apgd_linf", "eta", "[5]"});
}

TEST_CASE("apgd, apgd-t, square: eps-balls, [0, 1], seeds, no weight gradient") {
  for (DType dt : {DType::Float32, DType::Float64}) {
    CAPTURE(dtype_name(dt));
    ConvNet cn(2, 6, 5, 11, dt);
    Generator g(5);
    Tensor x = rand({6, 2, 6, 6}, dt, Device::cpu(), &g);
    copy_(x.narrow(2, 0, 1), full({6, 2, 1, 6}, 1.0, dt));
    copy_(x.narrow(2, 5, 1), zeros({6, 2, 1, 6}, dt));
    Tensor y = labels({0, 1, 2, 3, 4, 0});
    for (at::Norm norm : {at::Norm::Linf, at::Norm::L2})
      for (const char* m : {"apgd", "apgd-dlr", "apgd-t", "square"}) {
        CAPTURE(m);
        CAPTURE(norm == at::Norm::Linf ? "linf" : "l2");
        at::Options o;
        o.norm = norm;
        o.eps = norm == at::Norm::Linf ? 0.05 : 0.5;
        o.steps = 12;
        o.restarts = 2;
        o.target_classes = 3;
        o.queries = 30;
        o.early_stop = false;
        o.seed = 7;
        reset_kernel_counts();
        const at::Result r = at::run(m, cn.model(), x, y, o);
        check_bounds(r.x_adv, x, norm, o.eps);
        CHECK(kernel_count("conv2d_backward_weight") == 0);
        CHECK(kernel_count("linear_backward_weight") == 0);
        CHECK(kernel_count("linear_backward_bias") == 0);
        if (std::string(m) == "square") {
          CHECK(kernel_count("conv2d_backward_input") == 0);  // forward passes only
        } else {
          CHECK(kernel_count("conv2d_backward_input") > 0);
          if (norm == at::Norm::Linf) CHECK(kernel_count("attack_step_apgd_linf") > 0);
          if (norm == at::Norm::L2) CHECK(kernel_count("attack_step_l2_delta") > 0);
        }
        REQUIRE(r.queries.size() == 6);
        const std::vector<float> a = r.x_adv.to(DType::Float32).to_vector<float>();
        CHECK(a == at::run(m, cn.model(), x, y, o).x_adv.to(DType::Float32).to_vector<float>());
        o.seed = 8;
        CHECK(a != at::run(m, cn.model(), x, y, o).x_adv.to(DType::Float32).to_vector<float>());
      }
    for (const Tensor& p : cn.net->parameters()) CHECK_FALSE(p.grad().defined());
  }
}

TEST_CASE("square: query counts: the budget when never fooled, 0 when fooled on x0") {
  // Logits [1, 0, 0] + 0 * x: class 0 always wins, so label 0 is never fooled and label 1 is
  // fooled on the clean input already.
  at::Model model = [](const Tensor& x) {
    Tensor base = from_vector<double>({1, 0, 0}, {1, 3}).to(x.dtype());
    return add(mul(sum(x.flatten(1), {1}, true), 0.0), base);
  };
  Generator g(1);
  Tensor x = rand({3, 1, 5, 5}, DType::Float32, Device::cpu(), &g);
  Tensor y = labels({0, 1, 0});
  for (at::Norm norm : {at::Norm::Linf, at::Norm::L2}) {
    at::Options o;
    o.norm = norm;
    o.eps = norm == at::Norm::Linf ? 0.1 : 1.0;
    o.queries = 25;
    const at::Result r = at::square(model, x, y, o);
    CHECK(r.queries == std::vector<int64_t>{25, 0, 25});
    CHECK(r.success == std::vector<bool>{false, true, false});
    check_bounds(r.x_adv, x, norm, o.eps);
    // Sample 1 is not attacked: it stays x0.
    CHECK(r.l0[1] == 0);
    // L-inf: every pixel of an attacked sample sits at the boundary or at a clip bound.
    if (norm == at::Norm::Linf) CHECK(r.linf[0] == doctest::Approx(0.1).epsilon(1e-5));
  }
}

TEST_CASE("apgd, square: on a trained CNN, APGD beats FGSM and Square beats noise") {
  // A separable 3-class task: 0.5 + 0.08 P_c + U(-0.1, 0.1), P_c fixed random +-1 patterns.
  Generator g(3);
  const int64_t K = 4;
  std::vector<Tensor> pat;
  for (int64_t c = 0; c < K; ++c)
    pat.push_back(sign(rand({1, 1, 8, 8}, DType::Float32, Device::cpu(), &g, -1, 1)));
  const auto batch = [&](int64_t B) {
    Tensor y = randint(0, K, {B}, &g);
    std::vector<Tensor> xs;
    for (int64_t c : y.to_vector<int64_t>()) xs.push_back(add(mul(pat[size_t(c)], 0.08), 0.5));
    Tensor noise = rand({B, 1, 8, 8}, DType::Float32, Device::cpu(), &g, -0.1, 0.1);
    return std::make_pair(clamp(add(concat(xs, 0), noise), 0, 1), y);
  };
  ConvNet cn(1, 8, K, 5);
  cn.net->train();
  optim::AdamOptions ao;
  ao.lr = 0.01;
  optim::Adam opt(cn.net->parameters(), ao);
  for (int step = 0; step < 150; ++step) {
    auto [xb, yb] = batch(32);
    opt.zero_grad();
    cross_entropy((*cn.net)(xb), yb).backward();
    opt.step();
  }
  cn.net->eval();
  auto [x, y] = batch(100);
  at::Options o;
  o.eps = 0.03;
  o.steps = 20;
  o.queries = 200;
  o.target_classes = 3;
  const double clean = at::random_noise(cn.model(), x, y,
                                        [] {
                                          at::Options z;
                                          z.eps = 0;
                                          return z;
                                        }())
                           .accuracy(y);
  const double f = at::fgsm(cn.model(), x, y, o).accuracy(y);
  const double a = at::apgd(cn.model(), x, y, o).accuracy(y);
  const double d = at::run("apgd-dlr", cn.model(), x, y, o).accuracy(y);
  const double t = at::apgd_targeted(cn.model(), x, y, o).accuracy(y);
  const double s = at::square(cn.model(), x, y, o).accuracy(y);
  const double n = at::random_noise(cn.model(), x, y, o).accuracy(y);
  MESSAGE("clean " << clean << ", fgsm " << f << ", apgd-ce " << a << ", apgd-dlr " << d
                   << ", apgd-t " << t << ", square " << s << ", noise " << n);
  CHECK(clean >= 0.95);
  CHECK(a < f);
  CHECK(t < f);
  CHECK(a <= clean - 0.3);
  CHECK(s <= n - 0.1);

  // AutoAttack: each stage runs on what the previous one left robust, and the final robust
  // count is the accuracy. With every sample clean-correct (clean == 1 here), its first stage
  // is APGD-CE on the same batch with the same seed, so it is at least as strong as APGD-CE.
  std::vector<at::AutoAttackStage> st;
  const at::Result aa = at::autoattack(cn.model(), x, y, o, &st);
  const double acc = aa.accuracy(y);
  MESSAGE(std::string(at::kAutoAttackName) << " " << acc);
  REQUIRE(st.size() == 3);
  CHECK(st[0].name == "apgd-ce");
  CHECK(st[0].attacked == int64_t(std::llround(clean * 100)));
  if (clean == 1) {
    CHECK(st[0].robust == int64_t(std::llround(a * 100)));
    CHECK(acc <= a);
  }
  CHECK(st[1].attacked == st[0].robust);
  CHECK(st[2].attacked == st[1].robust);
  CHECK(st[2].robust == int64_t(std::llround(acc * 100)));
  int64_t total = 0;
  for (int64_t q : aa.queries) total += q;
  CHECK(total == st[0].queries + st[1].queries + st[2].queries);
  check_bounds(aa.x_adv, x, at::Norm::Linf, o.eps);
}

TEST_CASE("apgd: segmentation (the objective's loss) lowers pixel accuracy within eps") {
  Generator g(22);
  auto conv = std::make_shared<nn::Conv2d>(1, 3, 3, 1, 1, 1, 1, true, &g);
  auto net = std::make_shared<nn::Sequential>();
  net->add(conv);
  net->eval();
  at::Model model = [net](const Tensor& x) { return (*net)(x); };
  Tensor x = rand({2, 1, 6, 6}, DType::Float32, Device::cpu(), &g);
  Tensor y;
  {
    NoGradGuard ng;
    y = argmax((*net)(x), 1);  // the clean prediction: pixel accuracy 1
  }
  at::Options o;
  o.objective = at::Objective::segmentation(0.0);  // never "succeeds": runs every step
  o.eps = 0.3;
  o.steps = 10;
  reset_kernel_counts();
  const at::Result r = at::apgd(model, x, y, o);
  CHECK(kernel_count("conv2d_backward_weight") == 0);
  check_bounds(r.x_adv, x, at::Norm::Linf, o.eps);
  CHECK(r.mean_score() < 0.8);
  check_error(
      [&] {
        at::Options d = o;
        d.apgd_loss = at::ApgdLoss::DLR;
        at::apgd(model, x, y, d);
      },
      {"apgd", "DLR", "segmentation"});
}

// ---------------------------------------------------------------- DeepFool, Carlini-Wagner

namespace {

// logits = W flatten(x) + b with W, b given: the affine model of the closed forms.
at::Model affine(const Tensor& W, const Tensor& b) {
  return [W, b](const Tensor& x) { return linear(x.flatten(1), W, b); };
}

// The distance from x_n to the closest decision boundary of the affine model, in the dual norm
// of the attack: min_k |f_k - f_y| / ||W_k - W_y||_q (q = 2 for L2, q = 1 for L-inf).
double boundary_distance(const Tensor& W, const Tensor& b, const Tensor& xn, int64_t y, bool l2) {
  const int64_t K = W.size(0), D = W.size(1);
  const std::vector<double> w = W.to_vector<double>(), bv = b.to_vector<double>(),
                            xv = xn.flatten(0).to_vector<double>();
  std::vector<double> f(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) {
    f[size_t(k)] = bv[size_t(k)];
    for (int64_t i = 0; i < D; ++i) f[size_t(k)] += w[size_t(k * D + i)] * xv[size_t(i)];
  }
  double best = 1e300;
  for (int64_t k = 0; k < K; ++k) {
    if (k == y) continue;
    double nrm = 0;
    for (int64_t i = 0; i < D; ++i) {
      const double d = w[size_t(k * D + i)] - w[size_t(y * D + i)];
      nrm += l2 ? d * d : std::abs(d);
    }
    best = std::min(best, std::abs(f[size_t(k)] - f[size_t(y)]) / (l2 ? std::sqrt(nrm) : nrm));
  }
  return best;
}

}  // namespace

TEST_CASE(
    "deepfool: on an affine model, one step 1e-4 past the closest boundary, times 1 + overshoot") {
  // 4 classes over 3 x 3 images; x near mid-grey and small weights, so nothing clips.
  Generator g(41);
  const Tensor W = rand({4, 9}, DType::Float64, Device::cpu(), &g, -1, 1);
  const Tensor b = rand({4}, DType::Float64, Device::cpu(), &g, -0.05, 0.05);
  const Tensor x = rand({5, 1, 3, 3}, DType::Float64, Device::cpu(), &g, 0.45, 0.55);
  Tensor y;
  {
    NoGradGuard ng;
    y = argmax(affine(W, b)(x), 1);  // every sample starts correct
  }
  const std::vector<int64_t> yv = y.to_vector<int64_t>();
  for (at::Norm norm : {at::Norm::L2, at::Norm::Linf}) {
    const bool l2 = norm == at::Norm::L2;
    CAPTURE(l2);
    at::Options o;
    o.norm = norm;
    o.steps = 50;
    reset_kernel_counts();
    const at::Result r = at::deepfool(affine(W, b), x, y, o);
    CHECK(kernel_count("linear_backward_weight") == 0);
    CHECK(kernel_count("linear_backward_bias") == 0);
    for (int64_t n = 0; n < 5; ++n) {
      CAPTURE(n);
      const double d = boundary_distance(W, b, x.slice(n, n + 1), yv[size_t(n)], l2);
      CHECK(r.success[size_t(n)]);
      CHECK(r.queries[size_t(n)] == 1);
      CHECK((l2 ? r.l2[size_t(n)] : r.linf[size_t(n)]) ==
            doctest::Approx(1.02 * (d + at::kDeepFoolPad)).epsilon(1e-9));
    }
    // overshoot 0: the step ends kDeepFoolPad past the boundary, in the attack's norm.
    o.overshoot = 0;
    o.steps = 1;
    const at::Result r0 = at::deepfool(affine(W, b), x, y, o);
    for (int64_t n = 0; n < 5; ++n) {
      const double d = boundary_distance(W, b, x.slice(n, n + 1), yv[size_t(n)], l2);
      CHECK((l2 ? r0.l2[size_t(n)] : r0.linf[size_t(n)]) ==
            doctest::Approx(d + at::kDeepFoolPad).epsilon(1e-9));
      CHECK(r0.success[size_t(n)]);
    }
  }
}

TEST_CASE("deepfool: a boundary whose step the clip to [0, 1] cuts is still crossed") {
  // f_0 = 0, f_1 = -x_0 + x_1 - 0.6 at x = (0, 0.5): class 0 by a margin of 0.1. The step to
  // the boundary wants x_0 < 0, so the clip keeps half of it and the margin halves per
  // iteration, positive forever; only the 1e-4 of each step carries the sample across.
  const Tensor W = tensor({0, 0, -1, 1}, {2, 2}, DType::Float64);
  const Tensor b = tensor({0, -0.6}, {2}, DType::Float64);
  const Tensor x = tensor({0, 0.5}, {1, 1, 1, 2}, DType::Float64);
  const Tensor y = tensor({0}, {1}, DType::Int64);
  for (at::Norm norm : {at::Norm::L2, at::Norm::Linf}) {
    CAPTURE(norm == at::Norm::L2);
    at::Options o;
    o.norm = norm;
    o.steps = 20;
    const at::Result r = at::deepfool(affine(W, b), x, y, o);
    CHECK(r.success[0]);
    CHECK(r.queries[0] < 20);
    const std::vector<double> xa = r.x_adv.to_vector<double>();
    CHECK(xa[0] == 0.0);
    CHECK(xa[1] > 0.5);
    CHECK(xa[1] < 0.7);
  }
}

TEST_CASE("deepfool, cw: on a small CNN: [0, 1], fooled, deterministic, no weight gradient") {
  ConvNet cn(1, 6, 3, 12);
  Generator g(43);
  Tensor x = rand({4, 1, 6, 6}, DType::Float32, Device::cpu(), &g);
  Tensor y;
  {
    NoGradGuard ng;
    y = argmax((*cn.net)(x), 1);
  }
  for (const char* m : {"deepfool", "cw"}) {
    CAPTURE(m);
    at::Options o;
    o.steps = std::string(m) == "cw" ? 100 : 50;
    o.cw_search = 4;
    o.cw_c = 1;
    o.cw_lr = 0.05;
    reset_kernel_counts();
    const at::Result r = at::run(m, cn.model(), x, y, o);
    CHECK(kernel_count("conv2d_backward_weight") == 0);
    CHECK(kernel_count("linear_backward_weight") == 0);
    CHECK(kernel_count("conv2d_backward_input") > 0);
    check_bounds(r.x_adv, x, at::Norm::L2, 1e9);
    CHECK(r.success_rate() == 1.0);
    CHECK(r.x_adv.to_vector<float>() == at::run(m, cn.model(), x, y, o).x_adv.to_vector<float>());
    MESSAGE(std::string(m) << ": mean L2 " << r.mean_l2());
  }
  for (const Tensor& p : cn.net->parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("cw: on an affine model it approaches the minimal L2 distance from above") {
  Generator g(47);
  const Tensor W = rand({3, 9}, DType::Float64, Device::cpu(), &g, -1, 1);
  const Tensor b = zeros({3}, DType::Float64);
  const Tensor x = rand({3, 1, 3, 3}, DType::Float64, Device::cpu(), &g, 0.4, 0.6);
  Tensor y;
  {
    NoGradGuard ng;
    y = argmax(affine(W, b)(x), 1);
  }
  const std::vector<int64_t> yv = y.to_vector<int64_t>();
  at::Options o;
  o.steps = 200;
  o.cw_search = 6;
  o.cw_c = 1;
  o.cw_lr = 0.01;
  const at::Result r = at::carlini_wagner(affine(W, b), x, y, o);
  for (int64_t n = 0; n < 3; ++n) {
    CAPTURE(n);
    const double d = boundary_distance(W, b, x.slice(n, n + 1), yv[size_t(n)], true);
    CHECK(r.success[size_t(n)]);
    CHECK(r.l2[size_t(n)] >= d * (1 - 1e-9));  // nothing beats the closest boundary
    CHECK(r.l2[size_t(n)] <= d * 1.1);
  }
}

// ---------------------------------------------------------------- JSMA, universal, TRADES

TEST_CASE("jsma: reaches its target within the L0 budget, raising pixels to 1 in pairs") {
  PatternTask task(3);
  ConvNet cn = task.trained(5);
  // Named tensors, not a structured binding: clang 14 cannot capture bindings in the lambda below.
  const auto batch = task.batch(8);
  const Tensor x = batch.first, y = batch.second;
  at::Options o;
  o.target_mode = at::TargetMode::Random;
  o.jsma_gamma = 0.25;  // 16 of 64 elements at most
  reset_kernel_counts();
  const at::Result r = at::jsma(cn.model(), x, y, o);
  CHECK(kernel_count("conv2d_backward_weight") == 0);
  CHECK(kernel_count("linear_backward_weight") == 0);
  const std::vector<float> a = r.x_adv.to_vector<float>(), b = x.to_vector<float>();
  for (int64_t n = 0; n < 8; ++n) {
    CAPTURE(n);
    CHECK(r.l0[size_t(n)] <= 16);
    CHECK(int64_t(r.l0[size_t(n)]) % 2 == 0);  // pairs (no x0 element was at 1 already)
    // One pair per iteration; a failing sample may spend one more finding no pair.
    const int64_t pairs = int64_t(r.l0[size_t(n)]) / 2;
    CHECK((r.queries[size_t(n)] == pairs ||
           (!r.success[size_t(n)] && r.queries[size_t(n)] == pairs + 1)));
    for (int64_t i = n * 64; i < (n + 1) * 64; ++i)
      if (a[size_t(i)] != b[size_t(i)]) CHECK(a[size_t(i)] == 1.0f);  // only raised, to 1
  }
  MESSAGE("jsma success " << r.success_rate() << ", mean l0 " << r.mean_l0());
  CHECK(r.success_rate() >= 0.5);
  // A tighter budget is respected: at most 4 elements.
  o.jsma_gamma = 4.5 / 64;
  for (double l0 : at::jsma(cn.model(), x, y, o).l0) CHECK(l0 <= 4);
  check_error(
      [&] {
        at::Options u;
        at::jsma(cn.model(), x, y, u);
      },
      {"jsma", "target"});
}

TEST_CASE("universal perturbation: one v for the set, within eps, fools more than noise") {
  // The trained 4-class CNN of the task above, rebuilt here.
  Generator g(3);
  const int64_t K = 4;
  std::vector<Tensor> pat;
  for (int64_t c = 0; c < K; ++c)
    pat.push_back(sign(rand({1, 1, 8, 8}, DType::Float32, Device::cpu(), &g, -1, 1)));
  const auto batch = [&](int64_t B) {
    Tensor y = randint(0, K, {B}, &g);
    std::vector<Tensor> xs;
    for (int64_t c : y.to_vector<int64_t>()) xs.push_back(add(mul(pat[size_t(c)], 0.08), 0.5));
    Tensor noise = rand({B, 1, 8, 8}, DType::Float32, Device::cpu(), &g, -0.1, 0.1);
    return std::make_pair(clamp(add(concat(xs, 0), noise), 0, 1), y);
  };
  ConvNet cn(1, 8, K, 5);
  cn.net->train();
  optim::AdamOptions ao;
  ao.lr = 0.01;
  optim::Adam opt(cn.net->parameters(), ao);
  for (int step = 0; step < 150; ++step) {
    auto [xb, yb] = batch(32);
    opt.zero_grad();
    cross_entropy((*cn.net)(xb), yb).backward();
    opt.step();
  }
  cn.net->eval();
  auto [x, y] = batch(60);
  at::Options o;
  o.eps = 0.08;
  o.steps = 20;
  reset_kernel_counts();
  const at::Universal u = at::universal_perturbation(cn.model(), x, y, o, 3, 30, Device::cpu());
  CHECK(kernel_count("conv2d_backward_weight") == 0);
  REQUIRE(u.v.shape() == Shape{1, 1, 8, 8});
  double vmax = 0;
  for (double e : u.v.to_vector<double>()) vmax = std::max(vmax, std::abs(e));
  CHECK(vmax <= 0.08 + 1e-7);
  const at::Result noise = at::random_noise(cn.model(), x, y, o);
  MESSAGE("universal: fooling " << u.fooling << " after " << u.passes << " passes, accuracy "
                                << u.score << "; noise accuracy " << noise.accuracy(y));
  CHECK(u.score <= noise.accuracy(y) - 0.1);
  // The same seed, the same v.
  CHECK(u.v.to_vector<float>() ==
        at::universal_perturbation(cn.model(), x, y, o, 3, 30, Device::cpu()).v.to_vector<float>());
  // The sign-gradient variant (any objective): a segmentation-style custom objective here is
  // replaced by the classification CE through a custom objective, which takes that branch.
  at::Options c = o;
  c.alpha = 0.01;
  c.objective = at::Objective::custom(
      [](const Tensor& out, const Tensor& yy) {
        return cross_entropy(out, yy, Tensor(), Reduction::None);
      },
      [](const Tensor& out, const Tensor& yy) {
        const auto p = argmax(out, 1).to_vector<int64_t>(), l = yy.to_vector<int64_t>();
        std::vector<bool> s;
        for (size_t n = 0; n < p.size(); ++n) s.push_back(p[n] != l[n]);
        return s;
      },
      {}, "ce");
  const at::Universal s = at::universal_perturbation(cn.model(), x, y, c, 5, 30, Device::cpu());
  double smax = 0;
  for (double e : s.v.to_vector<double>()) smax = std::max(smax, std::abs(e));
  CHECK(smax <= 0.08 + 1e-7);
  MESSAGE("sign-gradient universal: success " << s.fooling << ", score " << s.score);
  CHECK(s.fooling >= 0.2);
}

TEST_CASE("trades: the KL by hand, its float64 gradient, and the inner maximisation") {
  // KL([0, 0] || [log 3, 0]) = 0.5 (log 0.5 - log 0.75) + 0.5 (log 0.5 - log 0.25).
  Tensor c = from_vector<double>({0, 0}, {1, 2}),
         a = from_vector<double>({std::log(3.0), 0}, {1, 2});
  check_close(at::trades_kl(c, a), {0.5 * std::log(0.5 / 0.75) + 0.5 * std::log(0.5 / 0.25)}, 1e-12,
              1e-12);
  Tensor c2 = uniform({3, 4}, -1, 1, 61), a2 = uniform({3, 4}, -1, 1, 62);
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return at::trades_kl(in[0], in[1]); },
                  {c2, a2}));
  ConvNet cn(1, 6, 3, 12);
  Generator g(63);
  Tensor x = rand({4, 1, 6, 6}, DType::Float32, Device::cpu(), &g);
  at::Options o;
  o.eps = 0.1;
  o.alpha = 0.025;
  o.steps = 7;
  reset_kernel_counts();
  const Tensor xa = at::trades_example(cn.model(), x, o);
  CHECK(kernel_count("conv2d_backward_weight") == 0);
  check_bounds(xa, x, at::Norm::Linf, 0.1);
  NoGradGuard ng;
  const Tensor f = (*cn.net)(x);
  const double kl_adv = sum(at::trades_kl(f, (*cn.net)(xa))).item<double>();
  const double kl_noise =
      sum(at::trades_kl(f,
                        (*cn.net)(at::random_noise(cn.model(), x, labels({0, 0, 0, 0}), o).x_adv)))
          .item<double>();
  MESSAGE("KL at x_adv " << kl_adv << ", at noise of the same size " << kl_noise);
  CHECK(kl_adv > 2 * kl_noise);
}
