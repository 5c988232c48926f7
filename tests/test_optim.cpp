// Optimizers and learning-rate schedules: updates checked against the torch.optim formulas
// worked out by hand (literal numbers, and the formulas rewritten in double), the float32 kernels
// against the recipe of kernels/optim.h bit for bit, skipping, zero_grad, lazy state, state
// save/load, error messages, and an end-to-end minimisation through autograd.
#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include <nabla/optim/optimizer.h>
#include <nabla/optim/schedule.h>

#include "gradcheck.h"

using namespace nabla;
using namespace nabla::optim;
using namespace nabla::test;

namespace {

using Vec = std::vector<double>;

// A fresh leaf parameter that requires grad.
Tensor param(const Vec& v, DType dt = DType::Float64) {
  Tensor p = from_vector<double>(v, {int64_t(v.size())}).to(dt);
  p.set_requires_grad(true);
  return p;
}

// Sets p.grad directly, as a backward would leave it (any shape, so that errors can be tested).
void set_grad(const Tensor& p, const Vec& g, const Shape& s = {}) {
  Tensor t = from_vector<double>(g, s.empty() ? Shape{int64_t(g.size())} : s).to(p.dtype());
  p.impl()->grad = t.impl_ptr();
}

// Tolerances for comparing a kernel in T with a formula evaluated in double.
double tol(DType dt) {
  return dt == DType::Float32 ? 2e-6 : 1e-14;
}

// torch.optim.SGD written out in double: returns the parameter after each step.
std::vector<Vec> sgd_reference(Vec p, const std::vector<Vec>& grads, const SGDOptions& o) {
  std::vector<Vec> out;
  Vec buf(p.size(), 0);
  for (size_t s = 0; s < grads.size(); ++s) {
    for (size_t i = 0; i < p.size(); ++i) {
      double g = grads[s][i] + o.weight_decay * p[i];
      if (o.momentum != 0) {
        buf[i] = s == 0 ? g : o.momentum * buf[i] + (1 - o.dampening) * g;
        g = o.nesterov ? g + o.momentum * buf[i] : buf[i];
      }
      p[i] -= o.lr * g;
    }
    out.push_back(p);
  }
  return out;
}

// torch.optim.Adam (decoupled = false) and AdamW (true) written out in double.
std::vector<Vec> adam_reference(Vec p, const std::vector<Vec>& grads, const AdamOptions& o,
                                bool decoupled) {
  std::vector<Vec> out;
  Vec m(p.size(), 0), v(p.size(), 0);
  for (size_t s = 0; s < grads.size(); ++s) {
    const double t = double(s + 1);
    const double bc1 = 1 - std::pow(o.beta1, t), bc2 = 1 - std::pow(o.beta2, t);
    for (size_t i = 0; i < p.size(); ++i) {
      double g = grads[s][i];
      if (decoupled)
        p[i] *= 1 - o.lr * o.weight_decay;
      else
        g += o.weight_decay * p[i];
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * g;
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * g * g;
      p[i] -= o.lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + o.eps);
    }
    out.push_back(p);
  }
  return out;
}

const Vec kP0 = {1, -2, 3};
const std::vector<Vec> kGrads = {{-0.25, -1, 2}, {1, 1, -1}, {0.5, -0.125, 0.75}};

// Runs `opt` over kGrads on p and compares each step with `want`.
void check_steps(Optimizer& opt, const Tensor& p, const std::vector<Vec>& want) {
  for (size_t s = 0; s < kGrads.size(); ++s) {
    set_grad(p, kGrads[s]);
    opt.step();
    INFO("step " << s + 1);
    check_close(p, want[s], tol(p.dtype()), tol(p.dtype()));
  }
  CHECK(opt.steps() == int64_t(kGrads.size()));
}

// Named state entry, or an undefined tensor.
Tensor state_entry(const Optimizer& opt, const std::string& key) {
  for (const auto& [k, t] : opt.state())
    if (k == key) return t;
  return Tensor();
}

std::vector<std::string> state_keys(const Optimizer& opt) {
  std::vector<std::string> keys;
  for (const auto& e : opt.state()) keys.push_back(e.first);
  return keys;
}

void check_bits(const Tensor& got, const std::vector<float>& want, const char* what) {
  std::vector<float> v = got.to_vector<float>();
  REQUIRE(v.size() == want.size());
  int bad = 0;
  for (size_t i = 0; i < v.size(); ++i)
    if (std::bit_cast<uint32_t>(v[i]) != std::bit_cast<uint32_t>(want[i])) {
      if (bad < 5) MESSAGE(what << " element " << i << ": got " << v[i] << ", want " << want[i]);
      ++bad;
    }
  CHECK_MESSAGE(bad == 0, what << ": " << bad << " of " << v.size() << " elements differ");
}

// Float32 data for the bitwise tests: more elements than the kernels' threading threshold.
std::vector<float> random_floats(int64_t n, uint64_t seed, double scale) {
  Generator gen(seed);
  std::vector<float> v = randn({n}, DType::Float32, Device::cpu(), &gen).to_vector<float>();
  for (float& x : v) x *= float(scale);
  return v;
}

}  // namespace

// ---------------------------------------------------------------- SGD

TEST_CASE("SGD: plain and momentum steps, worked out by hand") {
  // Plain, lr 0.1: p - 0.1 g.
  Tensor p = param(kP0);
  SGD plain({p}, {.lr = 0.1});
  set_grad(p, {0.5, -1, 2});
  plain.step();
  check_close(p, {0.95, -1.9, 2.8}, 1e-15, 0);
  set_grad(p, {1, 1, -1});
  plain.step();
  check_close(p, {0.85, -2.0, 2.9}, 1e-15, 0);
  CHECK(plain.state().empty());  // no momentum, no buffer (as PyTorch)

  // Momentum 0.9: the first buffer is the gradient itself, then b = 0.9 b + g.
  Tensor q = param(kP0);
  SGD heavy({q}, {.lr = 0.1, .momentum = 0.9});
  set_grad(q, {0.5, -1, 2});
  heavy.step();
  check_close(q, {0.95, -1.9, 2.8}, 1e-15, 0);
  set_grad(q, {1, 1, -1});
  heavy.step();
  // b = (0.45 + 1, -0.9 + 1, 1.8 - 1) = (1.45, 0.1, 0.8)
  check_close(state_entry(heavy, "0.momentum_buffer"), {1.45, 0.1, 0.8}, 1e-15, 0);
  check_close(q, {0.805, -1.91, 2.72}, 1e-15, 0);
}

TEST_CASE("SGD: dampening, nesterov and weight decay against the formula (float32, float64)") {
  const std::vector<SGDOptions> cases = {
      {.lr = 0.1},
      {.lr = 0.1, .momentum = 0.9},
      {.lr = 0.1, .momentum = 0.9, .dampening = 0.5},  // not applied on the first step
      {.lr = 0.1, .momentum = 0.9, .nesterov = true},
      {.lr = 0.1, .weight_decay = 0.25},
      {.lr = 0.05, .momentum = 0.8, .dampening = 0.1, .weight_decay = 0.5},
      {.lr = 0.05, .momentum = 0.8, .weight_decay = 0.5, .nesterov = true},
  };
  for (DType dt : {DType::Float32, DType::Float64})
    for (size_t c = 0; c < cases.size(); ++c) {
      INFO(dtype_name(dt) << " case " << c);
      Tensor p = param(kP0, dt);
      SGD opt({p}, cases[c]);
      check_steps(opt, p, sgd_reference(kP0, kGrads, cases[c]));
    }
  // Dampening really changes the second step (the case is not vacuous).
  std::vector<Vec> undamped = sgd_reference(kP0, kGrads, cases[1]);
  std::vector<Vec> damped = sgd_reference(kP0, kGrads, cases[2]);
  CHECK(undamped[0] == damped[0]);
  CHECK(undamped[1] != damped[1]);
}

TEST_CASE("SGD: defaults follow torch.optim.SGD") {
  SGDOptions o;
  CHECK(o.lr == 1e-3);
  CHECK(o.momentum == 0);
  CHECK(o.dampening == 0);
  CHECK(o.weight_decay == 0);
  CHECK_FALSE(o.nesterov);
}

TEST_CASE("SGD: float32 kernel equals the documented recipe bit for bit") {
  const int64_t n = 40200;  // above the threading threshold
  const std::vector<SGDOptions> cases = {
      {.lr = 0.01},
      {.lr = 0.01, .momentum = 0.9, .dampening = 0.1, .weight_decay = 1e-2},
      {.lr = 0.03, .momentum = 0.7, .weight_decay = 5e-4, .nesterov = true},
  };
  for (size_t c = 0; c < cases.size(); ++c) {
    INFO("case " << c);
    const SGDOptions& o = cases[c];
    std::vector<float> want = random_floats(n, 11, 1.0), buf(static_cast<size_t>(n));
    Tensor p = from_vector<float>(want, {n});
    SGD opt({p}, o);
    const float wd = float(o.weight_decay), mu = float(o.momentum);
    const float keep = float(1 - o.dampening), neg_lr = float(-o.lr);
    for (int s = 0; s < 3; ++s) {
      std::vector<float> g = random_floats(n, 20 + uint64_t(s), 0.5);
      p.impl()->grad = from_vector<float>(g, {n}).impl_ptr();
      opt.step();
      for (size_t i = 0; i < size_t(n); ++i) {
        float d = g[i];
        if (o.weight_decay != 0) d = std::fma(want[i], wd, d);
        if (o.momentum != 0) {
          buf[i] = s == 0 ? d : std::fma(d, keep, buf[i] * mu);
          d = o.nesterov ? std::fma(buf[i], mu, d) : buf[i];
        }
        want[i] = std::fma(d, neg_lr, want[i]);
      }
    }
    check_bits(p, want, "param");
    if (o.momentum != 0) check_bits(state_entry(opt, "0.momentum_buffer"), buf, "buffer");
  }
}

// ---------------------------------------------------------------- Adam, AdamW

TEST_CASE("Adam / AdamW: the first step, worked out by hand") {
  // Step 1: m/(1 - beta1) = g and sqrt(v/(1 - beta2)) = |g|, so p moves by lr*g/(|g| + eps):
  // lr against the sign of g (eps = 1e-8 shifts it by about 1e-9).
  Tensor p = param(kP0);
  Adam adam({p}, {.lr = 0.1});
  set_grad(p, {-0.25, -1, 2});
  adam.step();
  check_close(p, {1.1, -1.9, 2.9}, 1e-8, 0);

  // L2 weight decay enters the gradient: g' = g + 0.5 p = (0.25, -2, 3.5) flips the first sign.
  Tensor q = param(kP0);
  Adam adam_l2({q}, {.lr = 0.1, .weight_decay = 0.5});
  set_grad(q, {-0.25, -1, 2});
  adam_l2.step();
  check_close(q, {0.9, -1.9, 2.9}, 1e-8, 0);

  // AdamW decays the parameter first: p (1 - 0.1*0.5) = (0.95, -1.9, 2.85), then the raw step.
  Tensor r = param(kP0);
  AdamW adamw({r}, {.lr = 0.1, .weight_decay = 0.5});
  set_grad(r, {-0.25, -1, 2});
  adamw.step();
  check_close(r, {1.05, -1.8, 2.75}, 1e-8, 0);
}

TEST_CASE("Adam / AdamW: three steps against the formula (float32, float64)") {
  const std::vector<AdamOptions> cases = {
      {.lr = 0.1},
      {.lr = 0.05, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-3},
      {.lr = 0.1, .weight_decay = 0.3},
      {.lr = 0.1, .beta1 = 0.3, .beta2 = 0.5, .weight_decay = 0.1},  // lerp weight >= 0.5
      {.lr = 0.1, .beta1 = 0, .beta2 = 0},                           // m = g, v = g^2
  };
  for (DType dt : {DType::Float32, DType::Float64})
    for (bool decoupled : {false, true})
      for (size_t c = 0; c < cases.size(); ++c) {
        INFO(dtype_name(dt) << (decoupled ? " AdamW" : " Adam") << " case " << c);
        const AdamOptions& o = cases[c];
        Tensor p = param(kP0, dt);
        if (decoupled) {
          AdamW opt({p}, {o.lr, o.beta1, o.beta2, o.eps, o.weight_decay});
          check_steps(opt, p, adam_reference(kP0, kGrads, o, true));
        } else {
          Adam opt({p}, o);
          check_steps(opt, p, adam_reference(kP0, kGrads, o, false));
        }
      }
  // The two decays differ (the AdamW cases are not Adam in disguise).
  CHECK(adam_reference(kP0, kGrads, cases[2], false)[2] !=
        adam_reference(kP0, kGrads, cases[2], true)[2]);
}

TEST_CASE("Adam / AdamW: defaults follow torch.optim") {
  AdamOptions a;
  CHECK(a.lr == 1e-3);
  CHECK(a.beta1 == 0.9);
  CHECK(a.beta2 == 0.999);
  CHECK(a.eps == 1e-8);
  CHECK(a.weight_decay == 0);
  AdamWOptions w;
  CHECK(w.lr == 1e-3);
  CHECK(w.weight_decay == 0.01);
  Tensor p = param(kP0);
  AdamW opt({p});
  CHECK(opt.options().weight_decay == 0.01);
  CHECK(opt.lr() == 1e-3);
}

TEST_CASE("Adam / AdamW: float32 kernel equals the documented recipe bit for bit") {
  const int64_t n = 40200;  // above the threading threshold
  struct Case {
    AdamOptions o;
    bool decoupled;
  };
  const std::vector<Case> cases = {
      {{.lr = 1e-3, .weight_decay = 1e-2}, false},
      {{.lr = 1e-3, .weight_decay = 1e-2}, true},
      {{.lr = 2e-3, .beta1 = 0.3, .beta2 = 0.9}, false},
  };
  for (size_t c = 0; c < cases.size(); ++c) {
    INFO("case " << c);
    const AdamOptions& o = cases[c].o;
    const bool decoupled = cases[c].decoupled;
    std::vector<float> want = random_floats(n, 31, 1.0), m(size_t(n), 0), v(size_t(n), 0);
    Tensor p = from_vector<float>(want, {n});
    Adam adam({p}, o);
    AdamW adamw({p}, {o.lr, o.beta1, o.beta2, o.eps, o.weight_decay});
    Optimizer& opt = decoupled ? static_cast<Optimizer&>(adamw) : adam;
    const float w = float(1 - o.beta1), w1 = w - 1.0f, beta2 = float(o.beta2);
    const float omb2 = float(1 - o.beta2), eps = float(o.eps), wd = float(o.weight_decay);
    const float shrink = float(1 - o.lr * o.weight_decay);
    for (int s = 1; s <= 3; ++s) {
      std::vector<float> g = random_floats(n, 40 + uint64_t(s), 0.5);
      p.impl()->grad = from_vector<float>(g, {n}).impl_ptr();
      opt.step();
      const float step_size = float(-(o.lr / (1 - std::pow(o.beta1, double(s)))));
      const float bc2 = float(std::sqrt(1 - std::pow(o.beta2, double(s))));
      for (size_t i = 0; i < size_t(n); ++i) {
        float x = want[i], d = g[i];
        if (o.weight_decay != 0) {
          if (decoupled)
            x = x * shrink;
          else
            d = std::fma(x, wd, d);
        }
        m[i] = std::abs(w) < 0.5f ? std::fma(w, d - m[i], m[i]) : std::fma(w1, d - m[i], d);
        v[i] = std::fma(omb2 * d, d, v[i] * beta2);
        want[i] = x + (step_size * m[i]) / (std::sqrt(v[i]) / bc2 + eps);
      }
    }
    check_bits(p, want, "param");
    check_bits(state_entry(opt, "0.exp_avg"), m, "exp_avg");
    check_bits(state_entry(opt, "0.exp_avg_sq"), v, "exp_avg_sq");
  }
}

// ---------------------------------------------------------------- common behaviour

TEST_CASE("Optimizer: parameters without a gradient are skipped, with their own step count") {
  Tensor a = param(kP0), b = param({4, 5});
  Adam opt({a, b}, {.lr = 0.1});
  set_grad(a, {0.5, -1, 2});
  reset_kernel_counts();
  opt.step();
  CHECK(kernel_count("adam_step") == 1);
  check_close(b, {4, 5}, 0, 0);
  CHECK(state_keys(opt) == std::vector<std::string>{"0.step", "0.exp_avg", "0.exp_avg_sq"});

  // b's first update is a first Adam step (t = 1 for b, t = 2 for a): it moves by lr.
  set_grad(b, {3, -0.5});
  opt.step();
  check_close(b, {3.9, 5.1}, 1e-8, 0);
  CHECK(state_entry(opt, "0.step").item<int64_t>() == 2);
  CHECK(state_entry(opt, "1.step").item<int64_t>() == 1);
  CHECK(opt.steps() == 2);

  // SGD skips in the same way and allocates no buffer for the skipped parameter.
  Tensor c = param(kP0), d = param({4, 5});
  SGD sgd({c, d}, {.lr = 0.1, .momentum = 0.9});
  set_grad(d, {1, 1});
  sgd.step();
  check_close(c, kP0, 0, 0);
  check_close(d, {3.9, 4.9}, 1e-15, 0);
  CHECK(state_keys(sgd) == std::vector<std::string>{"1.momentum_buffer"});
}

TEST_CASE("Optimizer: zero_grad drops the gradients, and a step without any changes nothing") {
  Tensor a = param(kP0), b = param({4, 5});
  SGD opt({a, b}, {.lr = 0.1, .momentum = 0.9});
  set_grad(a, {1, 2, 3});
  set_grad(b, {1, 2});
  opt.zero_grad();
  CHECK_FALSE(a.grad().defined());
  CHECK_FALSE(b.grad().defined());
  reset_kernel_counts();
  opt.step();
  CHECK(kernel_count("sgd_step") == 0);
  check_close(a, kP0, 0, 0);
  CHECK(opt.state().empty());
  CHECK(opt.steps() == 1);  // step() was called, as in PyTorch
}

TEST_CASE("Optimizer: the update is in place, outside autograd") {
  Tensor p = param(kP0, DType::Float32);
  void* storage = p.raw_data();
  Adam opt({p}, {.lr = 0.1});
  set_grad(p, {1, 1, 1});
  opt.step();
  CHECK(p.raw_data() == storage);
  CHECK(p.is_leaf());
  CHECK(p.grad_fn() == nullptr);
  CHECK(p.requires_grad());
  CHECK(opt.params()[0].raw_data() == storage);
  check_close(p, {0.9, -2.1, 2.9}, 1e-6, 0);
  // The gradient is left as it was (PyTorch does not clear it either).
  check_close(p.grad(), {1, 1, 1}, 0, 0);
}

TEST_CASE("Optimizer: state is lazy and shaped like each parameter (mixed dtypes)") {
  auto make = [] {
    Tensor w = zeros({2, 3}, DType::Float32).set_requires_grad(true);
    Tensor v = zeros({4}, DType::Float64).set_requires_grad(true);
    return std::vector<Tensor>{w, v};
  };
  std::vector<Tensor> ps = make();
  SGD sgd(ps, {.lr = 0.1, .momentum = 0.5});
  Adam adam(make(), {});
  CHECK(sgd.state().empty());
  CHECK(adam.state().empty());
  for (Optimizer* opt : {static_cast<Optimizer*>(&sgd), static_cast<Optimizer*>(&adam)}) {
    for (const Tensor& p : opt->params()) p.impl()->grad = ones_like(p).impl_ptr();
    opt->step();
  }
  StateList s = sgd.state();
  REQUIRE(s.size() == 2);
  CHECK(s[0].first == "0.momentum_buffer");
  CHECK(s[0].second.shape() == Shape{2, 3});
  CHECK(s[0].second.dtype() == DType::Float32);
  CHECK(s[1].first == "1.momentum_buffer");
  CHECK(s[1].second.shape() == Shape{4});
  CHECK(s[1].second.dtype() == DType::Float64);
  CHECK_FALSE(s[0].second.requires_grad());
  check_close(s[1].second, {1, 1, 1, 1}, 0, 0);

  CHECK(state_keys(adam) == std::vector<std::string>{"0.step", "0.exp_avg", "0.exp_avg_sq",
                                                     "1.step", "1.exp_avg", "1.exp_avg_sq"});
  Tensor step = state_entry(adam, "1.step");
  CHECK(step.shape() == Shape{});
  CHECK(step.dtype() == DType::Int64);
  CHECK(state_entry(adam, "0.exp_avg").shape() == Shape{2, 3});
  CHECK(state_entry(adam, "0.exp_avg_sq").dtype() == DType::Float32);
  CHECK(state_entry(adam, "1.exp_avg_sq").dtype() == DType::Float64);
  // exp_avg = (1 - beta1) g after one step.
  check_close(state_entry(adam, "1.exp_avg"), {0.1, 0.1, 0.1, 0.1}, 1e-15, 0);
}

TEST_CASE("Optimizer: load_state restores a run exactly") {
  Tensor p1 = param(kP0), p2 = param({7, 8});
  Adam first({p1, p2}, {.lr = 0.05, .weight_decay = 0.1});
  for (int s = 0; s < 2; ++s) {
    set_grad(p1, kGrads[size_t(s)]);
    if (s == 1) set_grad(p2, {1, -1});  // p2 gets state only on the second step
    first.step();
  }
  // A second optimizer on copies of the parameters, resumed from the saved state.
  Tensor q1 = p1.detach().clone().set_requires_grad(true);
  Tensor q2 = p2.detach().clone().set_requires_grad(true);
  Adam resumed({q1, q2}, {.lr = 0.05, .weight_decay = 0.1});
  resumed.load_state(first.state());
  CHECK(state_entry(resumed, "1.step").item<int64_t>() == 1);
  // The loaded state is a copy, not the caller's tensors.
  CHECK(state_entry(resumed, "0.exp_avg").raw_data() != state_entry(first, "0.exp_avg").raw_data());
  set_grad(p1, kGrads[2]);
  set_grad(q1, kGrads[2]);
  set_grad(p2, {0.5, 0.25});
  set_grad(q2, {0.5, 0.25});
  first.step();
  resumed.step();
  check_close(q1, p1, 0, 0);
  check_close(q2, p2, 0, 0);

  // SGD, and an empty state list clears the state.
  Tensor r = param(kP0), t = param(kP0);
  SGD a({r}, {.lr = 0.1, .momentum = 0.9}), b({t}, {.lr = 0.1, .momentum = 0.9});
  set_grad(r, kGrads[0]);
  a.step();
  b.load_state(a.state());
  copy_(t, r);
  set_grad(r, kGrads[1]);
  set_grad(t, kGrads[1]);
  a.step();
  b.step();
  check_close(t, r, 0, 0);
  b.load_state({});
  CHECK(b.state().empty());
}

// ---------------------------------------------------------------- errors

TEST_CASE("Optimizer: option validation errors") {
  Tensor p = param(kP0);
  check_error([&] { SGD({p}, {.lr = -0.1}); }, {"SGD", "invalid learning rate", "-0.1"});
  check_error([&] { SGD({p}, {.lr = NAN}); }, {"SGD", "invalid learning rate"});
  check_error([&] { SGD({p}, {.momentum = -0.5}); }, {"SGD", "invalid momentum value", "-0.5"});
  check_error([&] { SGD({p}, {.weight_decay = -1}); }, {"SGD", "invalid weight_decay value"});
  check_error([&] { SGD({p}, {.nesterov = true}); },
              {"SGD", "Nesterov momentum requires a momentum and zero dampening", "momentum 0"});
  check_error([&] { SGD({p}, {.momentum = 0.9, .dampening = 0.1, .nesterov = true}); },
              {"Nesterov", "dampening 0.1"});
  check_error([&] { Adam({p}, {.lr = -1}); }, {"Adam", "invalid learning rate", "-1"});
  check_error([&] { Adam({p}, {.beta1 = 1}); }, {"Adam", "invalid beta parameter at index 0: 1"});
  check_error([&] { Adam({p}, {.beta2 = -0.1}); },
              {"Adam", "invalid beta parameter at index 1: -0.1"});
  check_error([&] { Adam({p}, {.eps = -1e-8}); }, {"Adam", "invalid epsilon value"});
  check_error([&] { Adam({p}, {.weight_decay = -0.1}); }, {"Adam", "invalid weight_decay value"});
  check_error([&] { AdamW({p}, {.beta1 = 1.5}); }, {"AdamW", "index 0: 1.5"});
  check_error([&] { AdamW({p}, {.weight_decay = -0.01}); }, {"AdamW", "weight_decay"});
  SGD ok({p}, {.lr = 0.1});
  check_error([&] { ok.set_lr(-2); }, {"SGD.set_lr", "invalid learning rate -2"});
  CHECK(ok.lr() == 0.1);
  ok.set_lr(0.5);
  CHECK(ok.lr() == 0.5);
}

TEST_CASE("Optimizer: parameter validation errors name the index") {
  Tensor good = param(kP0);
  check_error([&] { SGD({}, {}); }, {"SGD", "empty parameter list"});
  check_error([&] { SGD({good, Tensor()}, {}); }, {"SGD", "parameter 1", "undefined"});
  Tensor derived = mul(good, 2.0);
  check_error(
      [&] {
        Adam({good, derived}, {});
      },
      {"Adam", "parameter 1", "not a leaf", "float64[3] cpu"});
  Tensor labels = zeros({3}, DType::Int64);
  check_error([&] { SGD({labels}, {}); }, {"SGD", "parameter 0", "float32 or float64", "int64[3]"});
  Tensor strided = zeros({2, 3}).transpose(0, 1);
  check_error(
      [&] {
        AdamW({good, strided}, {});
      },
      {"AdamW", "parameter 1", "contiguous", "float32[3, 2]"});
  check_error(
      [&] {
        SGD({good, param({1}), good}, {});
      },
      {"SGD", "parameter 2", "same tensor as parameter 0"});
  check_error([&] { SGD({good, good.detach()}, {}); }, {"parameter 1", "same tensor"});
}

TEST_CASE("Optimizer: gradient mismatches are errors, and a failing step changes nothing") {
  Tensor a = param(kP0), b = param({1, 2});
  SGD opt({a, b}, {.lr = 0.1, .momentum = 0.9});
  set_grad(a, {1, 1, 1});
  set_grad(b, {1, 2, 3});
  check_error([&] { opt.step(); },
              {"SGD.step", "gradient of parameter 1", "shape [3]", "parameter has shape [2]"});
  set_grad(b, {1, 2}, {1, 2});
  check_error([&] { opt.step(); }, {"SGD.step", "shape [1, 2]", "shape [2]"});
  b.impl()->grad = zeros({2}, DType::Float32).impl_ptr();
  check_error([&] { opt.step(); },
              {"SGD.step", "gradient of parameter 1", "float32[2] cpu", "float64[2] cpu"});
  // Parameter 0 had a valid gradient, but nothing moved and no state was made.
  check_close(a, kP0, 0, 0);
  CHECK(opt.state().empty());
  CHECK(opt.steps() == 0);

  Tensor c = param(kP0, DType::Float32);
  Adam adam({c}, {});
  set_grad(c, {1, 2, 3, 4});
  check_error([&] { adam.step(); }, {"Adam.step", "parameter 0", "[4]", "[3]"});
}

TEST_CASE("Optimizer: load_state errors") {
  Tensor p = param(kP0), q = param({1, 2});
  Adam adam({p, q}, {});
  const Tensor m = zeros({3}, DType::Float64), step = full({}, 3, DType::Int64);
  check_error([&] { adam.load_state({{"exp_avg", m}}); }, {"Adam.load_state", "'exp_avg'", "form"});
  check_error(
      [&] {
        adam.load_state({{"2.exp_avg", m}});
      },
      {"Adam.load_state", "parameter 2", "has 2 parameters"});
  check_error([&] { adam.load_state({{"0.momentum", m}}); }, {"unknown state entry '0.momentum'"});
  check_error(
      [&] {
        adam.load_state({{"1.exp_avg", m}});
      },
      {"'1.exp_avg' is float64[3] cpu", "parameter 1 is float64[2] cpu"});
  check_error(
      [&] {
        adam.load_state({{"0.exp_avg", m.to(DType::Float32)}});
      },
      {"'0.exp_avg' is float32[3] cpu", "parameter 0 is float64[3] cpu"});
  check_error(
      [&] {
        adam.load_state({{"0.step", step}, {"0.exp_avg", m}});
      },
      {"parameter 0 needs", "'0.exp_avg_sq'", "got 2 of them"});
  check_error(
      [&] {
        adam.load_state({{"0.step", full({}, 0.5, DType::Float64)}});
      },
      {"'0.step'", "whole step count >= 1", "0.5"});
  check_error([&] { adam.load_state({{"0.exp_avg", m}, {"0.exp_avg", m}}); }, {"appears twice"});
  CHECK(adam.state().empty());  // nothing was loaded by the failed calls

  SGD plain({p}, {.lr = 0.1});
  check_error(
      [&] {
        plain.load_state({{"0.momentum_buffer", m}});
      },
      {"SGD.load_state", "momentum 0"});
  SGD heavy({p}, {.lr = 0.1, .momentum = 0.9});
  check_error(
      [&] {
        heavy.load_state({{"0.exp_avg", m}});
      },
      {"SGD.load_state", "unknown state entry '0.exp_avg'"});
}

// ---------------------------------------------------------------- end to end

TEST_CASE("SGD with momentum minimises a quadratic through autograd") {
  // L(p) = sum((p - c)^2): gradient 2(p - c), minimum at c.
  Tensor p = zeros({3}, DType::Float32).set_requires_grad(true);
  const Tensor c = tensor({1.5, -2, 0.25}, {3});
  SGD opt({p}, {.lr = 0.05, .momentum = 0.9});
  double first_loss = 0, loss = 0;
  for (int it = 0; it < 200; ++it) {
    opt.zero_grad();
    Tensor d = sub(p, c);
    Tensor L = sum(mul(d, d));
    L.backward();
    loss = L.item<double>();
    if (it == 0) first_loss = loss;
    opt.step();
  }
  CHECK(first_loss == doctest::Approx(1.5 * 1.5 + 4 + 0.0625));
  CHECK(loss < 1e-6);
  check_close(p, {1.5, -2, 0.25}, 1e-3, 0);
  CHECK(opt.steps() == 200);
}

// ---------------------------------------------------------------- schedules

TEST_CASE("ConstantLR and StepLR: values by hand") {
  ConstantLR constant(0.1);
  CHECK(constant.lr_at(0) == 0.1);
  CHECK(constant.lr_at(100000) == 0.1);
  StepLR step(0.1, 3, 0.5);
  for (int64_t t : {0, 1, 2}) CHECK(step.lr_at(t) == doctest::Approx(0.1).epsilon(1e-15));
  for (int64_t t : {3, 4, 5}) CHECK(step.lr_at(t) == doctest::Approx(0.05).epsilon(1e-15));
  CHECK(step.lr_at(6) == doctest::Approx(0.025).epsilon(1e-15));
  CHECK(step.lr_at(10) == doctest::Approx(0.0125).epsilon(1e-15));
  CHECK(StepLR(1.0, 2).lr_at(4) == doctest::Approx(0.01).epsilon(1e-15));  // default gamma 0.1
}

TEST_CASE("CosineLR: cosine, warmup and clamping past the end") {
  CosineLR cos(1.0, 10);
  CHECK(cos.lr_at(0) == 1.0);
  CHECK(cos.lr_at(2) == doctest::Approx(0.5 * (1 + std::cos(0.2 * std::numbers::pi))));
  CHECK(cos.lr_at(2) == doctest::Approx(0.9045084972));
  CHECK(cos.lr_at(5) == doctest::Approx(0.5));
  CHECK(cos.lr_at(10) == 0.0);
  CHECK(cos.lr_at(11) == 0.0);
  CHECK(cos.lr_at(1000) == 0.0);

  // Warmup 4: (t + 1)/4 for t < 4, then a cosine from 1 at t = 4 down to 0.1 at t = 10.
  CosineLR warm(1.0, 10, 0.1, 4);
  CHECK(warm.lr_at(0) == 0.25);
  CHECK(warm.lr_at(1) == 0.5);
  CHECK(warm.lr_at(3) == 1.0);
  CHECK(warm.lr_at(4) == 1.0);
  CHECK(warm.lr_at(7) == doctest::Approx(0.55));  // halfway: 0.1 + 0.9 / 2
  CHECK(warm.lr_at(9) == doctest::Approx(0.1 + 0.45 * (1 + std::cos(5.0 / 6 * std::numbers::pi))));
  CHECK(warm.lr_at(10) == doctest::Approx(0.1));
  CHECK(warm.lr_at(500) == 0.1);
  // Monotone after the warmup.
  for (int64_t t = 4; t < 12; ++t) CHECK(warm.lr_at(t + 1) <= warm.lr_at(t));
}

TEST_CASE("LinearDecayLR: the CycleGAN rule") {
  // constant 3, decay 4: 0.2 for t < 3, then 0.2 (1 - (t - 2)/5), 0 from t = 7 on.
  LinearDecayLR lin(0.2, 3, 4);
  for (int64_t t : {0, 1, 2}) CHECK(lin.lr_at(t) == 0.2);
  CHECK(lin.lr_at(3) == doctest::Approx(0.16));
  CHECK(lin.lr_at(4) == doctest::Approx(0.12));
  CHECK(lin.lr_at(6) == doctest::Approx(0.04));
  CHECK(lin.lr_at(7) == 0.0);
  CHECK(lin.lr_at(50) == 0.0);
  // CycleGAN's 100 + 100 epochs: the last epoch (t = 199) still trains at base/101.
  LinearDecayLR cyclegan(2e-4, 100, 100);
  CHECK(cyclegan.lr_at(99) == 2e-4);
  CHECK(cyclegan.lr_at(100) == doctest::Approx(2e-4 * 100 / 101));
  CHECK(cyclegan.lr_at(199) == doctest::Approx(2e-4 / 101));
}

TEST_CASE("LRSchedule::apply sets the optimizer's rate, and the step uses it") {
  Tensor p = param(kP0);
  SGD opt({p}, {.lr = 1});
  StepLR sched(0.1, 2, 0.5);
  CHECK(sched.apply(opt, 2) == doctest::Approx(0.05));
  CHECK(opt.lr() == doctest::Approx(0.05));
  set_grad(p, {1, 1, 1});
  opt.step();
  check_close(p, {0.95, -2.05, 2.95}, 1e-15, 0);
}

TEST_CASE("Schedules: argument errors") {
  check_error([] { ConstantLR(-1); }, {"ConstantLR", "lr", ">= 0", "-1"});
  check_error([] { StepLR(0.1, 0); }, {"StepLR", "step_size must be >= 1, got 0"});
  check_error([] { StepLR(0.1, 2, -0.5); }, {"StepLR", "gamma", "-0.5"});
  check_error([] { StepLR(NAN, 2); }, {"StepLR", "base_lr"});
  check_error([] { CosineLR(0.1, 0); }, {"CosineLR", "total must be >= 1, got 0"});
  check_error([] { CosineLR(0.1, 10, 0, 10); }, {"CosineLR", "warmup", "[0, total = 10)", "10"});
  check_error([] { CosineLR(0.1, 10, 0, -1); }, {"CosineLR", "warmup", "-1"});
  check_error([] { CosineLR(0.1, 10, 0.2); }, {"CosineLR", "min_lr 0.2", "base_lr 0.1"});
  check_error([] { LinearDecayLR(0.1, -1, 5); }, {"LinearDecayLR", "constant_steps", "-1"});
  check_error([] { LinearDecayLR(0.1, 5, -2); }, {"LinearDecayLR", "decay_steps", "-2"});
  check_error([] { StepLR(0.1, 2).lr_at(-1); }, {"StepLR.lr_at", "must be >= 0, got -1"});
  check_error([] { CosineLR(0.1, 5).lr_at(-3); }, {"CosineLR.lr_at", "-3"});
  check_error([] { LinearDecayLR(0.1, 1, 1).lr_at(-1); }, {"LinearDecayLR.lr_at"});
  check_error([] { ConstantLR(0.1).lr_at(-1); }, {"ConstantLR.lr_at"});
}

TEST_CASE("five steps on L = sum(p^3) agree with torch.optim (PyTorch 1.13.1, float32)") {
  // Reference values printed by PyTorch for the same parameter, loss and options:
  //   p = torch.tensor([0.5, -1.0, 2.0], requires_grad=True); o = torch.optim.<X>([p], ...)
  //   5 x: l = (p * p * p).sum(); o.zero_grad(); l.backward(); o.step()
  //   print('%.9g' % v for v in p.tolist())
  // nabla matched them to all 9 printed digits.
  struct Case {
    const char* name;
    std::function<std::unique_ptr<optim::Optimizer>(Tensor)> make;
    std::vector<double> expected;
  };
  std::vector<Case> cases = {
      {"SGD nesterov wd",
       [](Tensor p) {
         return std::make_unique<optim::SGD>(
             std::vector<Tensor>{p},
             optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
       },
       {-0.0728968754, -2794.32373, -71.4843369}},
      {"SGD dampening",
       [](Tensor p) {
         return std::make_unique<optim::SGD>(
             std::vector<Tensor>{p},
             optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.3});
       },
       {-0.0138730286, -19.2702847, -6.39062309}},
      {"Adam L2",
       [](Tensor p) {
         return std::make_unique<optim::Adam>(std::vector<Tensor>{p},
                                              optim::AdamOptions{.lr = 0.01, .weight_decay = 0.1});
       },
       {0.450205714, -1.05007839, 1.95004547}},
      {"AdamW",
       [](Tensor p) {
         return std::make_unique<optim::AdamW>(
             std::vector<Tensor>{p}, optim::AdamWOptions{.lr = 0.01, .weight_decay = 0.1});
       },
       {0.447830975, -1.04498053, 1.94017541}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Tensor p = tensor({0.5, -1.0, 2.0}, {3});
    p.set_requires_grad(true);
    auto o = c.make(p);
    for (int s = 0; s < 5; ++s) {
      Tensor l = sum(mul(mul(p, p), p));
      o->zero_grad();
      l.backward();
      o->step();
    }
    check_close(p, c.expected, 0, 2e-7);
  }
}
