// The autograd engine: accumulation, shared subgraphs, grad() pruning, hooks, no_grad,
// retain_grad, release after backward, and its error messages.
#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;

namespace {
Tensor leaf(std::initializer_list<double> v, const Shape& s) {
  Tensor t = tensor(v, s, DType::Float64);
  t.set_requires_grad(true);
  return t;
}
}  // namespace

TEST_CASE("autograd: a small graph by hand") {
  // L = sum((a * b + a)^2): dL/da = 2(ab + a)(b + 1), dL/db = 2(ab + a) a.
  Tensor a = leaf({1, 2}, {2}), b = leaf({3, -1}, {2});
  Tensor u = add(mul(a, b), a);
  sum(mul(u, u)).backward();
  check_close(a.grad(), {2 * 4 * 4, 2 * 0 * 0});
  check_close(b.grad(), {2 * 4 * 1, 2 * 0 * 2});
  CHECK(a.is_leaf());
  CHECK(!u.is_leaf());
  CHECK(u.grad_fn()->name() == "add");
  CHECK(!u.grad().defined());  // non-leaf: no .grad unless retained
}

TEST_CASE("autograd: gradients accumulate into leaves until zero_grad") {
  Tensor w = leaf({1, 2, 3}, {3});
  sum(mul(w, 2.0)).backward();
  sum(mul(w, 3.0)).backward();
  check_close(w.grad(), {5, 5, 5});
  w.zero_grad();
  CHECK(!w.grad().defined());
  sum(w).backward();
  check_close(w.grad(), {1, 1, 1});
}

TEST_CASE("autograd: shared subgraph (diamond) sums both paths") {
  // y = exp(x); L = sum(y * y + 3 y): dL/dx = (2y + 3) y.
  Tensor x = leaf({0.5, -0.25}, {2});
  Tensor y = exp(x);
  Tensor L = sum(add(mul(y, y), mul(y, 3.0)));
  Tensor g = grad({L}, {x})[0];
  std::vector<double> xv = {0.5, -0.25}, expect;
  for (double v : xv) expect.push_back((2 * std::exp(v) + 3) * std::exp(v));
  check_close(g, expect, 1e-12, 1e-12);
  CHECK(!x.grad().defined());  // grad() leaves .grad alone
  CHECK(gradcheck(
      [](const auto& v) {
        Tensor e = exp(v[0]);
        return add(mul(e, e), mul(e, 3.0));
      },
      {uniform({4})}));
}

TEST_CASE("autograd: grad() computes only what leads to the requested inputs") {
  Tensor x = leaf({0.1, 0.2, 0.3}, {3});
  Tensor w = leaf({1.0, 2.0, 3.0}, {3});
  // The weight path has its own kernel (exp), whose backward must not run for grad(L, {x}).
  Tensor L = sum(mul(x, exp(w)));
  reset_kernel_counts();
  Tensor gx = grad({L}, {x})[0];
  CHECK(kernel_count("exp_backward") == 0);
  CHECK(kernel_count("mul_backward") == 1);
  check_close(gx, {std::exp(1.0), std::exp(2.0), std::exp(3.0)}, 1e-12, 1e-12);
  // Asking for w as well runs it.
  Tensor L2 = sum(mul(x, exp(w)));
  reset_kernel_counts();
  auto both = grad({L2}, {x, w});
  CHECK(kernel_count("exp_backward") == 1);
  check_close(both[1], {0.1 * std::exp(1.0), 0.2 * std::exp(2.0), 0.3 * std::exp(3.0)}, 1e-12,
              1e-12);
  // An input that does not influence the output gets zeros.
  Tensor z = leaf({5}, {1});
  Tensor L3 = sum(mul(x, 2.0));
  auto gz = grad({L3}, {z});
  check_close(gz[0], std::vector<double>{0});
}

TEST_CASE("autograd: grad() with respect to an intermediate tensor") {
  Tensor x = leaf({1, 2}, {2});
  Tensor h = mul(x, 3.0);
  Tensor L = sum(mul(h, h));
  check_close(grad({L}, {h})[0], {6, 12});
}

TEST_CASE("autograd: no_grad and detach record nothing") {
  Tensor x = leaf({1, 2}, {2});
  {
    NoGradGuard ng;
    Tensor y = mul(x, 2.0);
    CHECK(!y.requires_grad());
    CHECK(!grad_enabled());
  }
  CHECK(grad_enabled());
  Tensor d = x.detach();
  CHECK(!d.requires_grad());
  CHECK(d.raw_data() == x.raw_data());
  Tensor y = mul(d, 2.0);
  CHECK(!y.requires_grad());
}

TEST_CASE("autograd: retain_grad keeps the gradient of an intermediate") {
  Tensor x = leaf({1, 2}, {2});
  Tensor h = mul(x, 3.0);
  h.retain_grad();
  sum(mul(h, h)).backward();
  check_close(h.grad(), {6, 12});
  check_close(x.grad(), {18, 36});
}

TEST_CASE("autograd: tensor hooks read and replace the flowing gradient") {
  Tensor x = leaf({1, 2}, {2});
  Tensor h = mul(x, 3.0);
  Tensor seen;
  h.register_hook([&](const Tensor& g) -> std::optional<Tensor> {
    seen = g;
    return std::nullopt;
  });
  sum(mul(h, h)).backward();
  check_close(seen, {6, 12});
  // Replacing: double every gradient reaching a leaf.
  Tensor w = leaf({1, 1}, {2});
  w.register_hook([](const Tensor& g) -> std::optional<Tensor> { return mul(g, 2.0); });
  sum(mul(w, 5.0)).backward();
  check_close(w.grad(), {10, 10});
}

TEST_CASE("autograd: node hooks override a rule and edit its gradients") {
  // Guided backprop's mechanism: override relu's rule so that only positive gradients pass
  // where the input was positive.
  Tensor x = leaf({-1, 2, 3}, {3});
  Tensor y = relu(x);
  Tensor L = sum(mul(y, tensor({1, -1, 2}, {3}, DType::Float64)));
  visit_graph(L, [&](Node& n) {
    if (n.name() != "relu") return;
    n.add_post_hook([](const Node&, std::vector<Tensor>& gi, const std::vector<Tensor>&) {
      gi[0] = relu(gi[0]);
    });
  });
  check_close(grad({L}, {x}, {}, true)[0], {0, 0, 2});
  // Deconvnet's mechanism: a full override, ignoring the forward mask.
  visit_graph(L, [&](Node& n) {
    if (n.name() != "relu") return;
    n.clear_hooks();
    n.set_override([](const Node&, const std::vector<Tensor>& go, const std::vector<bool>&) {
      return std::vector<Tensor>{relu(go[0])};
    });
  });
  check_close(grad({L}, {x})[0], {1, 0, 2});
}

TEST_CASE("autograd: clear errors") {
  Tensor x = leaf({1, 2}, {2});
  Tensor L = sum(mul(x, x));
  L.backward();
  check_error([&] { L.backward(); }, {"second time", "retain_graph"});
  Tensor y = mul(x, 2.0);
  check_error([&] { y.backward(); }, {"not a scalar", "[2]"});
  check_error([&] { y.backward(ones({2})); }, {"seed", "float32[2]", "float64[2]"});
  check_error([&] { y.backward(ones({3}, DType::Float64)); }, {"seed", "[3]", "[2]"});
  check_error([] { sum(ones({2})).backward(); }, {"does not require grad"});
  check_error([&] { mul(x, 1.0).set_requires_grad(false); }, {"leaf", "mul_scalar"});
  check_error([] { zeros({2}, DType::Int64).set_requires_grad(true); }, {"int64"});
  check_error([&] { add(x, ones({2})); }, {"add", "float64[2]", "float32[2]"});
  // retain_graph lets a second backward through.
  Tensor z = leaf({3}, {1});
  Tensor M = sum(mul(z, z));
  M.backward({}, true);
  M.backward();
  check_close(z.grad(), {12});
}

TEST_CASE("gradcheck: a wrong backward rule is caught" * doctest::should_fail()) {
  // A deliberately wrong op: forward x^2, backward claims 3x. gradcheck must flag it.
  auto wrong = [](const std::vector<Tensor>& v) {
    Tensor x = v[0];
    Tensor y;
    {
      NoGradGuard ng;
      y = mul(x.detach(), x.detach());
    }
    Tensor xs = x.detach();
    record("wrong_square", {x}, y, [xs](const std::vector<Tensor>& g, const std::vector<bool>&) {
      return std::vector<Tensor>{mul(mul(g[0], xs), 3.0)};
    });
    return y;
  };
  gradcheck(wrong, {uniform({3})});
}
