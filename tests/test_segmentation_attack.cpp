// engine/attack/segmentation: attack_set against attack::run batch by batch, layered PGD
// (Formula 2 of Avramidis et al.) against its composition written out step by step, and the
// sign-choice search (Formulas 3-5) against every candidate evaluated one at a time.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include <nabla/attack/segmentation.h>
#include <nabla/autograd.h>
#include <nabla/ops.h>
#include <nabla/random.h>

namespace {

using namespace nabla;

// A tiny dense model: a 3x3 convolution (padding 1) from 3 channels to K logits per pixel, in
// float64 so that the comparisons below are exact up to summation order.
struct TinySegmenter {
  Tensor w, b;
  explicit TinySegmenter(int64_t K, uint64_t seed) {
    Generator g(seed);
    w = randn({K, 3, 3, 3}, DType::Float64, Device::cpu(), &g, 0, 1.5);
    b = randn({K}, DType::Float64, Device::cpu(), &g, 0, 0.5);
  }
  Tensor operator()(const Tensor& x) const { return conv2d(x, w, b, 1, 1); }
};

struct Problem {
  Tensor x, y;
};

Problem problem(int64_t n, int64_t K, uint64_t seed) {
  Generator g(seed);
  return {rand({n, 3, 6, 7}, DType::Float64, Device::cpu(), &g), randint(0, K, {n, 6, 7}, &g)};
}

// J(x, m) of one image [1, 3, H, W] against m [1, H, W].
double J(const TinySegmenter& f, const Tensor& x, const Tensor& m) {
  NoGradGuard ng;
  return cross_entropy(f(x), m).item<double>();
}

// sign(grad_x J(x, m)) of one image.
Tensor grad_sign(const TinySegmenter& f, const Tensor& x, const Tensor& m) {
  Tensor xl = x.detach().clone();
  xl.set_requires_grad(true);
  return sign(grad({cross_entropy(f(xl), m)}, {xl})[0]);
}

}  // namespace

TEST_CASE("segmentation attacks: choice codes and full masks") {
  for (int64_t code = 0; code < 729; ++code)
    CHECK(attack::choice_code(attack::choice_from_code(code, 6)) == code);
  CHECK(attack::choice_from_code(0, 3) == std::vector<int>{-1, -1, -1});
  CHECK(attack::choice_code({0, 0, 0}) == 13);
  CHECK(attack::choice_code({1, -1, 0}) == 2 + 0 * 3 + 1 * 9);
  CHECK_THROWS_WITH_AS(attack::choice_code({2}), doctest::Contains("-1, 0 or +1, got 2"), Error);
  const Tensor u = attack::full_mask(2, 3, 4, 5);
  CHECK(u.shape() == Shape{2, 3, 4});
  CHECK(u.dtype() == DType::Int64);
  for (int64_t v : u.to_vector<int64_t>()) CHECK(v == 5);
}

TEST_CASE("attack_set: the same images as attack::run on the whole set, norms within eps") {
  const int64_t K = 3;
  TinySegmenter f(K, 1);
  const Problem p = problem(5, K, 2);
  attack::Options o;
  o.eps = 0.03;
  o.alpha = 0.01;
  o.steps = 4;
  o.early_stop = false;
  o.objective = attack::Objective::segmentation();
  const attack::Model model([&](const Tensor& x) { return f(x); });
  const attack::SetResult s = attack::attack_set("pgd", model, p.x, p.y, o, 2, Device::cpu());
  const attack::Result whole = attack::run("pgd", model, p.x, p.y, o);
  CHECK(s.x_adv.shape() == p.x.shape());
  const std::vector<double> a = s.x_adv.to_vector<double>(), b = whole.x_adv.to_vector<double>();
  double diff = 0;
  for (size_t k = 0; k < a.size(); ++k) diff = std::max(diff, std::fabs(a[k] - b[k]));
  CHECK(diff < 1e-12);
  CHECK(s.max_linf <= 0.03 + 1e-12);
  CHECK(s.mean_linf > 0.02);
  CHECK(s.mean_l2 > 0);
  // The attack ascends the per-pixel CE: the mean loss grows.
  NoGradGuard ng;
  CHECK(cross_entropy(f(s.x_adv), p.y).item<double>() > cross_entropy(f(p.x), p.y).item<double>());
  CHECK_THROWS_WITH_AS(attack::attack_set("pgd", model, p.x, p.y.slice(0, 4), o, 2, Device::cpu()),
                       doctest::Contains("masks y [N, H, W]"), Error);
}

TEST_CASE("layered_pgd: one FGSM step per present class, in ascending order, accumulated") {
  const int64_t K = 4;
  TinySegmenter f(K, 3);
  Problem p = problem(3, K, 4);
  // Image 1 holds classes 0 and 2 only, so its layers skip 1 and 3.
  {
    std::vector<int64_t> m = p.y.to_vector<int64_t>();
    for (int64_t k = 42; k < 84; ++k) m[size_t(k)] = (k % 3 == 0) ? 2 : 0;
    p.y = from_vector(m, {3, 6, 7});
  }
  attack::Options o;
  o.eps = 0.02;
  o.alpha = 0.02;  // one step of alpha = eps: each layer is x <- clip(x - eps sign(grad J(x, u_c)))
  o.steps = 1;
  const attack::Model model([&](const Tensor& x) { return f(x); });
  const attack::SetResult s = attack::layered_pgd(model, p.x, p.y, K, o, 2, Device::cpu());
  for (int64_t i = 0; i < 3; ++i) {
    CAPTURE(i);
    Tensor xi = p.x.slice(i, i + 1).contiguous();
    const std::vector<int64_t> m = p.y.slice(i, i + 1).to_vector<int64_t>();
    int64_t layers = 0;
    for (int64_t c = 0; c < K; ++c) {
      if (std::find(m.begin(), m.end(), c) == m.end()) continue;
      ++layers;
      const Tensor step = mul(grad_sign(f, xi, attack::full_mask(1, 6, 7, c)), o.eps);
      NoGradGuard ng;
      xi = clamp(sub(xi, step), 0.0, 1.0);
    }
    CHECK(layers == (i == 1 ? 2 : 4));
    const std::vector<double> want = xi.to_vector<double>(),
                              got = s.x_adv.slice(i, i + 1).to_vector<double>();
    double diff = 0;
    for (size_t k = 0; k < want.size(); ++k) diff = std::max(diff, std::fabs(want[k] - got[k]));
    CHECK(diff < 1e-12);
  }
  // The layers add up: more than one eps away, at most (classes present) eps.
  CHECK(s.max_linf > o.eps + 1e-9);
  CHECK(s.max_linf <= 4 * o.eps + 1e-12);
  CHECK_THROWS_WITH_AS(attack::layered_pgd(model, p.x, p.y, 3, o, 2, Device::cpu()),
                       doctest::Contains("outside [0, 3)"), Error);
}

TEST_CASE("sign_choice: the exhaustive search finds the best of all 3^K candidates, and greedy") {
  const int64_t K = 3;
  TinySegmenter f(K, 5);
  const Problem p = problem(4, K, 6);
  const attack::Model model([&](const Tensor& x) { return f(x); });
  attack::SignChoiceOptions so;
  so.eps = 0.05;
  so.max_batch = 10;  // 27 candidates in three forward passes
  const attack::SignChoiceResult ex = attack::sign_choice(model, p.x, p.y, K, so, Device::cpu());
  so.greedy = true;
  const attack::SignChoiceResult gr = attack::sign_choice(model, p.x, p.y, K, so, Device::cpu());
  CHECK(ex.evaluations == 4 * 27);
  CHECK(gr.evaluations % (2 * K + 1) == 0);
  CHECK(ex.choice.size() == 4);
  for (int64_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    const Tensor xi = p.x.slice(i, i + 1).contiguous(), yi = p.y.slice(i, i + 1).contiguous();
    // Formula 4's perturbations, one class at a time, and every candidate one at a time.
    std::vector<Tensor> a;
    for (int64_t c = 0; c < K; ++c)
      a.push_back(mul(grad_sign(f, xi, attack::full_mask(1, 6, 7, c)), so.eps));
    double best = INFINITY;
    for (int64_t code = 0; code < 27; ++code) {
      const std::vector<int> s = attack::choice_from_code(code, K);
      NoGradGuard ng;
      Tensor z = xi;
      for (int64_t c = 0; c < K; ++c) z = add(z, mul(a[size_t(c)], double(s[size_t(c)])));
      best = std::min(best, J(f, clamp(z, 0.0, 1.0), yi));
    }
    CHECK(ex.loss_clean[size_t(i)] == doctest::Approx(J(f, xi, yi)).epsilon(1e-12));
    CHECK(ex.loss_best[size_t(i)] == doctest::Approx(best).epsilon(1e-12));
    CHECK(ex.loss_best[size_t(i)] < ex.loss_clean[size_t(i)]);
    // The kept image is the chosen candidate.
    {
      NoGradGuard ng;
      Tensor z = xi;
      for (int64_t c = 0; c < K; ++c)
        z = add(z, mul(a[size_t(c)], double(ex.choice[size_t(i)][size_t(c)])));
      const std::vector<double> want = clamp(z, 0.0, 1.0).to_vector<double>(),
                                got = ex.x_imp.slice(i, i + 1).to_vector<double>();
      double diff = 0;
      for (size_t k = 0; k < want.size(); ++k) diff = std::max(diff, std::fabs(want[k] - got[k]));
      CHECK(diff < 1e-12);
    }
    // Greedy never beats the exhaustive search, and never does worse than the clean image.
    CHECK(gr.loss_best[size_t(i)] >= ex.loss_best[size_t(i)] - 1e-12);
    CHECK(gr.loss_best[size_t(i)] <= gr.loss_clean[size_t(i)] + 1e-12);
  }
  CHECK_THROWS_WITH_AS(attack::sign_choice(model, p.x, p.y, 13, so, Device::cpu()),
                       doctest::Contains("2 <= classes <= 12"), Error);
}
