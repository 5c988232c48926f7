// The gradient-masking check (engine/attack/check.h), both ways: it passes on a normally
// trained small CNN and warns on the same CNN behind an input quantisation whose backward is
// zero everywhere (the "shattered gradients" of Athalye et al. 2018).
#include <cmath>
#include <memory>
#include <vector>

#include <nabla/attack/check.h>

#include "gradcheck.h"

using namespace nabla;
namespace at = nabla::attack;

namespace {

// A 4-class task on 8x8 images: 0.5 + 0.08 P_c + U(-0.1, 0.1), P_c fixed random +-1 patterns.
struct Task {
  std::vector<Tensor> pat;
  Generator g;
  explicit Task(uint64_t seed) : g(seed) {
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
};

std::shared_ptr<nn::Sequential> trained(Task& task, uint64_t seed) {
  Generator g(seed);
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Conv2d>(1, 4, 3, 1, 1, 1, 1, true, &g))
      .add(std::make_shared<nn::ReLU>())
      .add(std::make_shared<nn::MaxPool2d>(2))
      .add(std::make_shared<nn::Flatten>())
      .add(std::make_shared<nn::Linear>(64, 4, true, &g));
  net->train();
  optim::AdamOptions ao;
  ao.lr = 0.01;
  optim::Adam opt(net->parameters(), ao);
  for (int step = 0; step < 150; ++step) {
    auto [xb, yb] = task.batch(32);
    opt.zero_grad();
    cross_entropy((*net)(xb), yb).backward();
    opt.step();
  }
  net->eval();
  return net;
}

// round(x * 4) / 4 in the forward; in the backward, zero: x * 0 + q with q detached.
Tensor quantise(const Tensor& x) {
  std::vector<double> v = x.detach().to(Device::cpu()).to_vector<double>();
  for (double& e : v) e = std::round(e * 4) / 4;
  const Tensor q = from_vector<double>(v, x.shape()).to(x.dtype());
  return add(mul(x, 0.0), q);
}

void print(const at::CheckReport& r) {
  for (const auto& i : r.items)
    MESSAGE(i.name << ": " << (i.skipped ? "skip" : i.pass ? "pass" : "WARN") << "  " << i.detail);
}

}  // namespace

TEST_CASE("robustness check: passes on a normally trained CNN, warns when its gradient is masked") {
  Task task(3);
  auto net = trained(task, 5);
  auto other = trained(task, 6);
  auto [x, y] = task.batch(100);
  const at::Model plain = [net](const Tensor& xb) { return (*net)(xb); };
  const at::Model source = [other](const Tensor& xb) { return (*other)(xb); };
  at::CheckOptions o;
  o.eps = 0.03;
  o.steps = 10;
  o.queries = 100;
  o.restarts = 2;
  const at::CheckReport good = at::robustness_check(plain, x, y, o, Device::cpu(), &source);
  print(good);
  CHECK(good.clean >= 0.95);
  REQUIRE(good.items.size() == 5);
  CHECK(good.passed());

  // The same network behind the quantiser; the transfer source is the network without it
  // (the natural surrogate of BPDA).
  const at::Model masked = [net](const Tensor& xb) { return (*net)(quantise(xb)); };
  reset_kernel_counts();
  const at::CheckReport bad = at::robustness_check(masked, x, y, o, Device::cpu(), &plain);
  print(bad);
  CHECK_FALSE(bad.passed());
  CHECK(bad.items[0].pass);        // zero gradients: APGD and FGSM are equally (un)successful
  CHECK_FALSE(bad.items[1].pass);  // a budget of 1 still leaves it "robust"
  CHECK_FALSE(bad.items[2].pass);  // Square, which needs no gradient, beats APGD
  CHECK_FALSE(bad.items[3].pass);  // examples crafted on the unmasked net transfer better
  CHECK(kernel_count("conv2d_backward_weight") == 0);
}
