// Interpretability (engine/explain) and the Module forward hooks it is built on: saliency of a
// linear model equals |W[c]|, Grad-CAM and Grad-CAM++ against maps worked out by hand and a
// direct re-implementation, guided backprop and deconvnet checked ReLU by ReLU through tensor
// hooks (and no hook leaking into a later plain backward), occlusion against every occluded
// image evaluated directly, batched == per-sample for every method, max_batch invariance,
// integrated-gradients completeness, SmoothGrad limits, CAM from a forward hook, the gradient
// ascents (closed form on a linear model), dense saliency against the analytic per-pixel
// softmax-CE gradient, argument errors, and no weight-gradient kernel.
#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <nabla/explain/explain.h>
#include <nets/classifier.h>

#include "cuda_parity.h"
#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;
namespace ex = nabla::explain;

namespace {

Tensor labels(const std::vector<int64_t>& v) {
  return from_vector<int64_t>(v, {int64_t(v.size())});
}

std::vector<double> vec(const Tensor& t) {
  return t.to(Device::cpu()).to_vector<double>();
}

// Maps come back float32, contiguous, on the CPU, with the given shape.
void check_map(const Tensor& m, const Shape& s) {
  REQUIRE(m.defined());
  CHECK(m.dtype() == DType::Float32);
  CHECK(m.device() == Device::cpu());
  CHECK(m.is_contiguous());
  CHECK_FALSE(m.requires_grad());
  REQUIRE_MESSAGE(m.shape() == s, shape_str(m.shape()) << " vs " << shape_str(s));
}

// |a - b| <= rel * max|b| + rel * |b| elementwise: equal up to float32 rounding of sums.
void check_rel(const Tensor& a, const Tensor& b, double rel = 1e-5) {
  REQUIRE_MESSAGE(a.shape() == b.shape(), a.str() << " vs " << b.str());
  const std::vector<double> bv = vec(b);
  double scale = 0;
  for (double v : bv) scale = std::max(scale, std::abs(v));
  check_close(a, bv, rel * std::max(scale, 1e-30), rel);
}

// logits row-wise argmax, computed here rather than by explain::predict.
std::vector<int64_t> argmax_rows(const Tensor& logits) {
  const std::vector<double> l = vec(logits);
  const int64_t n = logits.size(0), k = logits.size(1);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i)
    out.push_back(std::max_element(l.begin() + i * k, l.begin() + (i + 1) * k) - l.begin() - i * k);
  return out;
}

// [N, K] float64 one-hot rows of the given classes.
Tensor one_hot_rows(const Tensor& classes, int64_t k) {
  const std::vector<int64_t> c = classes.to_vector<int64_t>();
  std::vector<double> v(c.size() * size_t(k), 0.0);
  for (size_t i = 0; i < c.size(); ++i) v[i * size_t(k) + size_t(c[i])] = 1;
  return from_vector<double>(v, {int64_t(c.size()), k});
}

Tensor eval_logits(nn::Module& m, const Tensor& x) {
  NoGradGuard ng;
  return m(x);
}

// The output of module `name` during model(x), without a graph.
Tensor capture(nn::Module& model, const std::string& name, const Tensor& x) {
  Tensor act;
  nn::ForwardHookGuard g(model.submodule(name), [&](nn::Module&, const Tensor&, const Tensor& o) {
    act = o;
    return std::optional<Tensor>();
  });
  eval_logits(model, x);
  return act;
}

// Flatten -> Linear(C*H*W, K): dS_c/dx = W[c, :] reshaped.
std::shared_ptr<nn::Sequential> linear_net(int64_t d, int64_t k, uint64_t seed) {
  Generator g(seed);
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Flatten>()).add(std::make_shared<nn::Linear>(d, k, true, &g));
  net->eval();
  return net;
}

// conv 3x3 (4 maps, padding 1), ReLU module "act", max-pool 2, flatten, Linear "fc".
struct ConvNet : nn::Module {
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::ReLU> act;
  std::shared_ptr<nn::MaxPool2d> pool;
  std::shared_ptr<nn::Linear> fc;
  ConvNet(int64_t c, int64_t h, int64_t w, int64_t k, uint64_t seed) : nn::Module("ConvNet") {
    Generator g(seed);
    conv = register_module("conv", std::make_shared<nn::Conv2d>(c, 4, 3, 1, 1, 1, 1, true, &g));
    act = register_module("act", std::make_shared<nn::ReLU>());
    pool = register_module("pool", std::make_shared<nn::MaxPool2d>(2));
    fc = register_module("fc", std::make_shared<nn::Linear>(4 * (h / 2) * (w / 2), k, true, &g));
    eval();
  }
  Tensor forward(const Tensor& x) override { return (*fc)((*pool)((*act)((*conv)(x))).flatten(1)); }
};

// The Grad-CAM net worked out by hand: conv (1 -> 2, kernel 2, stride 2), ReLU "relu", global
// average pooling, fc (2 -> 2).
struct TinyCam : nn::Module {
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::ReLU> relu;
  std::shared_ptr<nn::Linear> fc;
  TinyCam() : nn::Module("TinyCam") {
    conv = register_module("conv", std::make_shared<nn::Conv2d>(1, 2, 2, 2));
    relu = register_module("relu", std::make_shared<nn::ReLU>());
    fc = register_module("fc", std::make_shared<nn::Linear>(2, 2));
    // channel 0 sums the diagonal of each 2x2 block, channel 1 the anti-diagonal minus 0.5.
    copy_(conv->weight, tensor({1, 0, 0, 1, 0, 1, 1, 0}, {2, 1, 2, 2}));
    copy_(conv->bias, tensor({0, -0.5}, {2}));
    copy_(fc->weight, tensor({1, -2, -1, 3}, {2, 2}));
    copy_(fc->bias, tensor({0, 0.1}, {2}));
    eval();
  }
  Tensor forward(const Tensor& x) override { return (*fc)(global_avg_pool2d((*relu)((*conv)(x)))); }
};

// Linear -> relu -> Linear -> relu -> Linear, recording at each relu its input, the gradient
// reaching its output (gout) and the gradient it passes to its input (gin), through tensor
// hooks installed while the graph is recorded.
struct ProbeNet : nn::Module {
  struct Probe {
    std::vector<double> pre, gout, gin;
  };
  std::shared_ptr<nn::Linear> fc1, fc2, fc3;
  Probe probes[2];
  explicit ProbeNet(uint64_t seed) : nn::Module("ProbeNet") {
    Generator g(seed);
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(18, 6, true, &g));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(6, 5, true, &g));
    fc3 = register_module("fc3", std::make_shared<nn::Linear>(5, 3, true, &g));
    to(DType::Float64);
    eval();
  }
  Tensor probed_relu(int k, const Tensor& pre) {
    Tensor y = relu(pre);
    if (pre.requires_grad()) {
      Probe& p = probes[k];
      p = Probe{};
      p.pre = pre.to_vector<double>();
      pre.register_hook([&p](const Tensor& g) {
        p.gin = g.to_vector<double>();
        return std::optional<Tensor>();
      });
      y.register_hook([&p](const Tensor& g) {
        p.gout = g.to_vector<double>();
        return std::optional<Tensor>();
      });
    }
    return y;
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = probed_relu(0, (*fc1)(x.flatten(1)));
    h = probed_relu(1, (*fc2)(h));
    return (*fc3)(h);
  }
};

}  // namespace

// ---------------------------------------------------------------- gradient maps

TEST_CASE("explain: saliency of a linear model is |W[c]|, predicted and chosen classes") {
  const int64_t N = 3, C = 3, H = 4, W = 5, K = 4, D = C * H * W;
  auto net = linear_net(D, K, 1);
  for (DType dt : {DType::Float32, DType::Float64}) {
    CAPTURE(dtype_name(dt));
    net->to(dt);
    Generator g(2);
    Tensor x = rand({N, C, H, W}, dt, Device::cpu(), &g);
    const std::vector<double> w = vec(dynamic_cast<nn::Linear&>(net->submodule("1")).weight);
    const std::vector<int64_t> pred = argmax_rows(eval_logits(*net, x));
    CHECK(ex::predict(*net, x).to_vector<int64_t>() == pred);
    // expected[n] = |W[c_n, :]| as [C, H, W], and its max over C.
    auto expected = [&](const std::vector<int64_t>& cls, bool per_channel) {
      std::vector<double> e;
      for (int64_t n = 0; n < N; ++n)
        if (per_channel) {
          for (int64_t i = 0; i < D; ++i) e.push_back(float(std::abs(w[size_t(cls[n] * D + i)])));
        } else {
          for (int64_t p = 0; p < H * W; ++p) {
            double m = 0;
            for (int64_t c = 0; c < C; ++c)
              m = std::max(m, std::abs(w[size_t(cls[n] * D + c * H * W + p)]));
            e.push_back(float(m));
          }
        }
      return e;
    };
    ex::Options o;
    Tensor s = ex::saliency(*net, x, o);
    check_map(s, {N, H, W});
    check_close(s, expected(pred, false), 0, 0);
    o.per_channel = true;
    Tensor sc = ex::saliency(*net, x, o);
    check_map(sc, {N, C, H, W});
    check_close(sc, expected(pred, true), 0, 0);
    // per_channel keeps the channels; their max is the default map.
    check_close(max(sc, 1).first, vec(s), 0, 0);

    std::vector<int64_t> chosen;
    for (int64_t c : pred) chosen.push_back((c + 1) % K);  // never the predicted class
    o.classes = labels(chosen);
    check_close(ex::saliency(*net, x, o), expected(chosen, true), 0, 0);
    o.per_channel = false;
    Tensor sch = ex::saliency(*net, x, o);
    check_close(sch, expected(chosen, false), 0, 0);
    CHECK(vec(sch) != vec(s));  // the class matters
    CHECK_FALSE(x.requires_grad());
  }
  for (const Tensor& p : net->parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("explain: guided backprop and deconvnet change every ReLU's backward, and only then") {
  ProbeNet net(3);
  Generator g(4);
  Tensor x = randn({4, 2, 3, 3}, DType::Float64, Device::cpu(), &g);
  ex::Options o;
  o.classes = labels({0, 1, 2, 1});
  const std::vector<double> w1 = vec(net.fc1->weight);  // [6, 18]

  // Plain saliency: the gradient leaving a ReLU is gout [pre > 0], negative somewhere.
  const Tensor plain = ex::saliency(net, x, o);
  int negative = 0;
  for (const auto& p : net.probes) {
    REQUIRE(p.gin.size() == p.pre.size());
    REQUIRE(p.gout.size() == p.pre.size());
    for (size_t i = 0; i < p.pre.size(); ++i) {
      CHECK(p.gin[i] == (p.pre[i] > 0 ? p.gout[i] : 0.0));
      negative += p.gin[i] < 0;
    }
  }
  CHECK(negative > 0);  // so the guided checks below can fail

  // Guided: gin = gout [pre > 0] [gout > 0], never negative.
  const Tensor guided = ex::guided_backprop(net, x, o);
  check_map(guided, {4, 3, 3});
  int cut = 0;  // elements where plain would pass a negative gradient
  for (const auto& p : net.probes) {
    REQUIRE(p.gin.size() == p.pre.size());
    for (size_t i = 0; i < p.pre.size(); ++i) {
      CHECK(p.gin[i] >= 0);
      CHECK(p.gin[i] == (p.pre[i] > 0 && p.gout[i] > 0 ? p.gout[i] : 0.0));
      cut += p.pre[i] > 0 && p.gout[i] < 0;
    }
  }
  CHECK(cut > 0);
  // The map is max_c |gin_1 W1| with gin_1 the gradient leaving the first ReLU.
  auto input_map = [&](const std::vector<double>& gin) {
    std::vector<double> e;
    for (int64_t n = 0; n < 4; ++n)
      for (int64_t p = 0; p < 9; ++p) {
        double m = 0;
        for (int64_t c = 0; c < 2; ++c) {
          double d = 0;
          for (int64_t j = 0; j < 6; ++j)
            d += gin[size_t(n * 6 + j)] * w1[size_t(j * 18 + c * 9 + p)];
          m = std::max(m, std::abs(d));
        }
        e.push_back(m);
      }
    return e;
  };
  check_close(guided, input_map(net.probes[0].gin), 1e-6, 1e-6);

  // Deconvnet: gin = relu(gout) whatever the sign of the input.
  const Tensor deconv = ex::deconvnet(net, x, o);
  check_map(deconv, {4, 3, 3});
  int dead_but_passed = 0;  // pre <= 0 and gout > 0: deconvnet passes it, guided does not
  for (const auto& p : net.probes) {
    REQUIRE(p.gin.size() == p.pre.size());
    for (size_t i = 0; i < p.pre.size(); ++i) {
      CHECK(p.gin[i] == std::max(p.gout[i], 0.0));
      dead_but_passed += p.pre[i] <= 0 && p.gout[i] > 0;
    }
  }
  CHECK(dead_but_passed > 0);
  check_close(deconv, input_map(net.probes[0].gin), 1e-6, 1e-6);
  CHECK(vec(deconv) != vec(guided));

  // No hook leaks: the same model's plain gradients are plain again.
  const Tensor again = ex::saliency(net, x, o);
  check_close(again, vec(plain), 0, 0);
  negative = 0;
  for (const auto& p : net.probes)
    for (size_t i = 0; i < p.pre.size(); ++i) {
      CHECK(p.gin[i] == (p.pre[i] > 0 ? p.gout[i] : 0.0));
      negative += p.gin[i] < 0;
    }
  CHECK(negative > 0);
  // ... and so is an ordinary backward (weights too).
  {
    Tensor xl = x.detach();
    xl.set_requires_grad(true);
    Tensor s = sum(mul(net(xl), one_hot_rows(o.classes, 3)));
    s.backward();
    CHECK(net.fc1->weight.grad().defined());
    net.zero_grad();
  }
  for (const auto& p : net.probes)
    for (size_t i = 0; i < p.pre.size(); ++i) CHECK(p.gin[i] == (p.pre[i] > 0 ? p.gout[i] : 0.0));
}

// ---------------------------------------------------------------- layer maps

TEST_CASE("explain: Grad-CAM and Grad-CAM++ of a hand-built net equal the maps worked by hand") {
  // x (4x4) and the conv outputs, block by block (2x2 blocks, row-major):
  //   A0 = diag sums          = [2, 1, 4, -1]      relu: R0 = [2, 1, 4, 0]     sum R0 = 7
  //   A1 = anti-diag - 0.5    = [1.5, .5, .5, -.5] relu: R1 = [1.5, .5, .5, 0] sum R1 = 2.5
  //   GAP = [1.75, 0.625]; logits = [1.75 - 1.25, -1.75 + 1.875 + 0.1] = [0.5, 0.225]
  TinyCam net;
  Tensor one = tensor({1, 2, 2, 0, 0, 1, 1, -1, 3, 0, -2, 0, 1, 1, 0, 1}, {1, 1, 4, 4});
  Tensor x = concat({one, one}, 0);
  check_close(eval_logits(net, x), {0.5, 0.225, 0.5, 0.225}, 1e-6, 0);
  ex::Options o;
  o.classes = labels({0, 1});

  // layer "relu": dS_c/dR_k = W[c, k] / 4 everywhere, so alpha_k = W[c, k] / 4.
  //   c = 0: relu(0.25 R0 - 0.5 R1)  = relu([-0.25, 0, 0.75, 0])
  //   c = 1: relu(-0.25 R0 + 0.75 R1) = relu([0.625, 0.125, -0.625, 0])
  o.layer = "relu";
  Tensor raw = ex::gradcam_raw(net, x, o);
  check_map(raw, {2, 2, 2});
  check_close(raw, {0, 0, 0.75, 0, 0.625, 0.125, 0, 0}, 1e-7, 0);
  // layer "conv": dS_c/dA_k = W[c, k] / 4 [A_k > 0] (3 of 4 positive in each channel):
  //   c = 0: alpha = [0.75 / 4, -1.5 / 4] = [0.1875, -0.375]
  //          relu(0.1875 A0 - 0.375 A1) = relu([-0.1875, 0, 0.5625, 0])
  //   c = 1: alpha = [-0.1875, 0.5625]; relu(-0.1875 A0 + 0.5625 A1)
  //          = relu([0.46875, 0.09375, -0.46875, -0.09375])
  o.layer = "conv";
  check_close(ex::gradcam_raw(net, x, o), {0, 0, 0.5625, 0, 0.46875, 0.09375, 0, 0}, 1e-7, 0);

  // Grad-CAM++ at "relu": G = g = W[c, k] / 4 constant, S_k = sum R_k, so
  //   alpha_k = 4 relu(g) g^2 / (2 g^2 + S_k g^3) = 4 relu(g) / (2 + S_k g)
  //   c = 0: alpha = [1 / 3.75, 0] = [4/15, 0]        map = 4/15 R0
  //   c = 1: alpha = [0, 3 / 3.875] = [0, 24/31]      map = 24/31 R1
  o.layer = "relu";
  check_close(ex::gradcam_raw(net, x, o, true),
              {8. / 15, 4. / 15, 16. / 15, 0, 36. / 31, 12. / 31, 12. / 31, 0}, 1e-6, 1e-6);
  // at "conv": G = 0 where A <= 0 (a = 0 there), S_0 = 6: c = 0: alpha_0 = 3 (1/4) / (2 + 6/4)
  //   = 3/14, alpha_1 = 0 (g < 0); map = relu(3/14 A0)
  o.layer = "conv";
  o.classes = labels({0, 0});
  check_close(ex::gradcam_raw(net, x, o, true),
              {6. / 14, 3. / 14, 12. / 14, 0, 6. / 14, 3. / 14, 12. / 14, 0}, 1e-6, 1e-6);

  // Upsampled (bilinear, align_corners = false, 2 -> 4: taps a, .75a+.25b, .25a+.75b, b) of
  // [[0, 0], [0.75, 0]]: row 3 is [0.75, 0.5625, 0.1875, 0], rows 1, 2 are 1/4 and 3/4 of it.
  o.layer = "relu";
  o.classes = labels({0, 1});
  Tensor up = ex::gradcam(net, x, o);
  check_map(up, {2, 4, 4});
  const std::vector<double> r3{0.75, 0.5625, 0.1875, 0};
  std::vector<double> e(16, 0.0);
  for (int c = 0; c < 4; ++c) {
    e[size_t(4 + c)] = 0.25 * r3[size_t(c)];
    e[size_t(8 + c)] = 0.75 * r3[size_t(c)];
    e[size_t(12 + c)] = r3[size_t(c)];
  }
  check_close(up.slice(0, 1), e, 1e-7, 0);
  check_map(ex::gradcam_pp(net, x, o), {2, 4, 4});
  // Predicted classes: class 0 for this image.
  o.classes = Tensor();
  check_close(ex::gradcam_raw(net, x, o), {0, 0, 0.75, 0, 0, 0, 0.75, 0}, 1e-7, 0);
}

TEST_CASE("explain: Grad-CAM and Grad-CAM++ equal a direct float64 implementation") {
  ConvNet net(2, 6, 6, 3, 5);
  net.to(DType::Float64);
  Generator g(6);
  Tensor x = randn({3, 2, 6, 6}, DType::Float64, Device::cpu(), &g);
  ex::Options o;
  o.layer = "act";
  o.classes = labels({2, 0, 1});
  // A and G = dS/dA captured with a forward hook and a tensor hook, then the formulas.
  Tensor A, G;
  {
    nn::ForwardHookGuard hook(net.submodule("act"),
                              [&](nn::Module&, const Tensor&, const Tensor& out) {
                                A = out;
                                out.register_hook([&](const Tensor& gr) {
                                  G = gr.clone();
                                  return std::optional<Tensor>();
                                });
                                return std::optional<Tensor>();
                              });
    Tensor xl = x.detach();
    xl.set_requires_grad(true);
    grad({sum(mul(net(xl), one_hot_rows(o.classes, 3)))}, {xl});
  }
  REQUIRE(G.defined());
  REQUIRE(A.shape() == Shape({3, 4, 6, 6}));
  const std::vector<double> a = vec(A), gv = vec(G);
  std::vector<double> cam(3 * 36, 0.0), pp(3 * 36, 0.0);
  int zero_g = 0, neg_g = 0;
  for (int64_t n = 0; n < 3; ++n) {
    for (int64_t k = 0; k < 4; ++k) {
      const size_t base = size_t((n * 4 + k) * 36);
      double mean_g = 0, sum_a = 0, alpha_pp = 0;
      for (size_t j = 0; j < 36; ++j) {
        mean_g += gv[base + j] / 36;
        sum_a += a[base + j];
      }
      for (size_t j = 0; j < 36; ++j) {
        const double gg = gv[base + j];
        zero_g += gg == 0;
        neg_g += gg < 0;
        // explain.h: a = G^2 / (2 G^2 + sum(A) G^3 + 1e-7)
        if (gg > 0) alpha_pp += gg * gg * gg / (2 * gg * gg + sum_a * gg * gg * gg + 1e-7);
      }
      for (size_t j = 0; j < 36; ++j) {
        cam[size_t(n * 36) + j] += mean_g * a[base + j];
        pp[size_t(n * 36) + j] += alpha_pp * a[base + j];
      }
    }
  }
  CHECK(zero_g > 0);  // max-pool leaves G sparse: the a = 0 branch is exercised
  CHECK(neg_g > 0);   // and relu(G) matters
  for (auto* m : {&cam, &pp})
    for (double& v : *m) v = std::max(v, 0.0);
  Tensor raw = ex::gradcam_raw(net, x, o), raw_pp = ex::gradcam_raw(net, x, o, true);
  check_map(raw, {3, 6, 6});
  check_close(raw, cam, 1e-6, 1e-5);
  check_close(raw_pp, pp, 1e-6, 1e-5);
  CHECK(vec(raw) != vec(raw_pp));
  // Same resolution as the input: the upsampled maps are the raw ones.
  check_close(ex::gradcam(net, x, o), cam, 1e-6, 1e-5);
  check_close(ex::gradcam_pp(net, x, o), pp, 1e-6, 1e-5);
  // guided Grad-CAM is the product of the two maps.
  Tensor gg = ex::guided_gradcam(net, x, o);
  check_map(gg, {3, 6, 6});
  check_close(gg, vec(mul(ex::guided_backprop(net, x, o), ex::gradcam(net, x, o))), 1e-7, 1e-6);
}

// ---------------------------------------------------------------- occlusion

TEST_CASE("explain: occlusion equals evaluating every occluded image directly") {
  // H = 8, W = 7, patch 3, stride 2: rows 0, 2, 4 and then 5 flush with the border (8 - 3);
  // columns 0, 2, 4 (4 + 3 = 7 already flush).
  const int64_t N = 2, C = 2, H = 8, W = 7, K = 3, P = 3;
  const std::vector<int64_t> ys{0, 2, 4, 5}, xs{0, 2, 4};
  ConvNet net(C, H, W, K, 7);
  net.to(DType::Float64);
  Generator g(8);
  Tensor x = rand({N, C, H, W}, DType::Float64, Device::cpu(), &g);
  const std::vector<double> xv = vec(x);
  for (bool prob : {true, false}) {
    for (bool given : {false, true}) {
      CAPTURE(prob);
      CAPTURE(given);
      ex::Options o;
      o.patch = P;
      o.stride = 2;
      o.fill = 0.3;
      o.occlusion_probability = prob;
      o.max_batch = 5;  // chunks straddle the two images
      std::vector<int64_t> cls = argmax_rows(eval_logits(net, x));
      if (given) {
        cls = {2, 1};
        o.classes = labels(cls);
      }
      auto score = [&](const std::vector<double>& img, int64_t c) {
        const std::vector<double> l = vec(eval_logits(net, from_vector<double>(img, {1, C, H, W})));
        if (!prob) return l[size_t(c)];
        double m = *std::max_element(l.begin(), l.end()), z = 0;
        for (double v : l) z += std::exp(v - m);
        return std::exp(l[size_t(c)] - m) / z;
      };
      std::vector<double> expected;
      for (int64_t n = 0; n < N; ++n) {
        const std::vector<double> img(xv.begin() + n * C * H * W, xv.begin() + (n + 1) * C * H * W);
        const double s0 = score(img, cls[size_t(n)]);
        std::vector<double> acc(size_t(H * W), 0.0), cover(size_t(H * W), 0.0);
        for (int64_t y0 : ys)
          for (int64_t x0 : xs) {
            std::vector<double> occ = img;
            for (int64_t c = 0; c < C; ++c)
              for (int64_t r = y0; r < y0 + P; ++r)
                for (int64_t q = x0; q < x0 + P; ++q) occ[size_t((c * H + r) * W + q)] = 0.3;
            const double d = s0 - score(occ, cls[size_t(n)]);
            for (int64_t r = y0; r < y0 + P; ++r)
              for (int64_t q = x0; q < x0 + P; ++q) {
                acc[size_t(r * W + q)] += d;
                cover[size_t(r * W + q)] += 1;
              }
          }
        for (size_t i = 0; i < acc.size(); ++i) {
          REQUIRE(cover[i] > 0);
          expected.push_back(acc[i] / cover[i]);
        }
      }
      Tensor m = ex::occlusion(net, x, o);
      check_map(m, {N, H, W});
      double scale = 0;
      for (double v : expected) scale = std::max(scale, std::abs(v));
      REQUIRE(scale > 1e-4);  // occluding does change the score
      check_close(m, expected, 1e-6 * scale, 1e-5);
    }
  }
}

// ---------------------------------------------------------------- batching

TEST_CASE("explain: every method gives a batch the maps it gives each image alone") {
  Generator gen(42);
  nets::FashionCNN cnn(&gen);
  cnn.eval();
  nets::FashionGAP gap(&gen);
  gap.eval();
  Tensor x = rand({3, 1, 28, 28}, DType::Float32, Device::cpu(), &gen);
  ex::Options o;
  o.steps = 6;
  o.patch = 7;
  o.stride = 7;
  auto same = [&](const char* name, const std::function<Tensor(const Tensor&)>& f) {
    CAPTURE(name);
    const Tensor full = f(x);
    REQUIRE(full.size(0) == 3);
    for (int64_t n = 0; n < 3; ++n) {
      CAPTURE(n);
      check_rel(f(x.slice(n, n + 1)), full.slice(n, n + 1).contiguous(), 1e-5);
    }
  };
  o.layer = "conv2";
  same("saliency", [&](const Tensor& t) { return ex::saliency(cnn, t, o); });
  same("guided_backprop", [&](const Tensor& t) { return ex::guided_backprop(cnn, t, o); });
  same("deconvnet", [&](const Tensor& t) { return ex::deconvnet(cnn, t, o); });
  same("gradcam", [&](const Tensor& t) { return ex::gradcam(cnn, t, o); });
  same("gradcam_pp", [&](const Tensor& t) { return ex::gradcam_pp(cnn, t, o); });
  same("integrated_gradients",
       [&](const Tensor& t) { return ex::integrated_gradients(cnn, t, o); });
  same("occlusion", [&](const Tensor& t) { return ex::occlusion(cnn, t, o); });
  // SmoothGrad's noise is keyed to (seed, image): the same draws alone or in a batch.
  o.samples = 5;
  same("smoothgrad", [&](const Tensor& t) { return ex::smoothgrad(cnn, t, o); });
  // Every name of the dispatcher, on the net that ends in global average pooling.
  o.layer = "features";
  CHECK(ex::method_names().size() == 10);
  for (const std::string& m : ex::method_names()) {
    same(m.c_str(), [&](const Tensor& t) { return ex::explain(m, gap, t, o); });
  }
  // The dispatcher calls the functions it names.
  check_close(ex::explain("gradcam++", gap, x, o), vec(ex::gradcam_pp(gap, x, o)), 0, 0);
  check_close(ex::explain("integrated-gradients", gap, x, o),
              vec(ex::integrated_gradients(gap, x, o)), 0, 0);
  check_close(ex::explain("cam", gap, x, o), vec(ex::cam(gap, x, o)), 0, 0);
}

TEST_CASE("explain: max_batch does not change smoothgrad, integrated gradients, occlusion") {
  Generator gen(43);
  nets::FashionCNN cnn(&gen);
  cnn.eval();
  Tensor x = rand({3, 1, 28, 28}, DType::Float32, Device::cpu(), &gen);
  ex::Options a;
  a.samples = 5;
  a.sigma = 0.1;
  a.seed = 9;
  a.steps = 5;
  a.patch = 8;
  a.stride = 5;  // corners 0, 5, 10, 15, 20 (= 28 - 8): 25 placements per image
  ex::Options b = a;
  a.max_batch = 3;  // chunks of 3 rows: images straddle chunks
  b.max_batch = 256;
  for (const char* m : {"smoothgrad", "integrated-gradients", "occlusion"}) {
    CAPTURE(m);
    const Tensor small = ex::explain(m, cnn, x, a), large = ex::explain(m, cnn, x, b);
    check_map(small, {3, 28, 28});
    check_rel(small, large, 1e-6);
  }
  a.per_channel = b.per_channel = true;
  check_rel(ex::smoothgrad(cnn, x, a), ex::smoothgrad(cnn, x, b), 1e-6);
  // the seed is the only source of noise: same seed, same map; another seed, another map
  check_close(ex::smoothgrad(cnn, x, a), vec(ex::smoothgrad(cnn, x, a)), 0, 0);
  ex::Options c = a;
  c.seed = 10;
  CHECK(vec(ex::smoothgrad(cnn, x, c)) != vec(ex::smoothgrad(cnn, x, a)));
}

// ---------------------------------------------------------------- integrated gradients, smoothgrad

TEST_CASE("explain: integrated gradients add up to S_c(x) - S_c(baseline)") {
  Generator g(11);
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Flatten>())
      .add(std::make_shared<nn::Linear>(18, 8, true, &g))
      .add(std::make_shared<nn::Tanh>())
      .add(std::make_shared<nn::Linear>(8, 3, true, &g));
  net->to(DType::Float64);
  net->eval();
  Tensor x = rand({2, 2, 3, 3}, DType::Float64, Device::cpu(), &g, -2, 2);
  ex::Options o;
  o.steps = 400;
  auto check_complete = [&](const Tensor& base) {
    const std::vector<double> lx = vec(eval_logits(*net, x)), lb = vec(eval_logits(*net, base));
    // per image, the class whose score moves most between the baseline and x
    std::vector<int64_t> c;
    for (int64_t n = 0; n < 2; ++n) {
      int64_t best = 0;
      for (int64_t k = 1; k < 3; ++k)
        if (std::abs(lx[size_t(n * 3 + k)] - lb[size_t(n * 3 + k)]) >
            std::abs(lx[size_t(n * 3 + best)] - lb[size_t(n * 3 + best)]))
          best = k;
      c.push_back(best);
    }
    o.classes = labels(c);
    const Tensor ig = ex::integrated_gradients(*net, x, o);
    check_map(ig, {2, 3, 3});
    const std::vector<double> a = vec(ig);
    for (int64_t n = 0; n < 2; ++n) {
      double total = 0;
      for (int64_t i = 0; i < 9; ++i) total += a[size_t(n * 9 + i)];
      const double diff = lx[size_t(n * 3 + c[size_t(n)])] - lb[size_t(n * 3 + c[size_t(n)])];
      CAPTURE(n);
      REQUIRE(std::abs(diff) > 0.05);
      CHECK(std::abs(total - diff) <= 0.02 * std::abs(diff));
    }
    // per_channel keeps the channels; their sum is the default map.
    ex::Options pc = o;
    pc.per_channel = true;
    const Tensor igc = ex::integrated_gradients(*net, x, pc);
    check_map(igc, {2, 2, 3, 3});
    check_close(sum(igc, {1}), a, 1e-6, 1e-5);
  };
  check_complete(zeros({2, 2, 3, 3}, DType::Float64));
  Tensor one = rand({2, 3, 3}, DType::Float64, Device::cpu(), &g, -1, 1);
  o.baseline = one;  // one image for the whole batch
  check_complete(concat({one.unsqueeze(0), one.unsqueeze(0)}, 0));
  o.baseline = rand({2, 2, 3, 3}, DType::Float64, Device::cpu(), &g, -1, 1);  // one per image
  check_complete(o.baseline);
  // Few steps: exactly (x - x') (1/m) sum_{k=1..m} dS_c/dx (x' + (k/m)(x - x')), the right end
  // points, with the gradients taken here by grad().
  {
    ex::Options f;
    f.steps = 3;
    f.per_channel = true;
    f.classes = labels({0, 2});
    f.baseline = rand({2, 2, 3, 3}, DType::Float64, Device::cpu(), &g, -1, 1);
    const Tensor d = sub(x, f.baseline);
    Tensor acc = zeros({2, 2, 3, 3}, DType::Float64);
    for (int k = 1; k <= 3; ++k) {
      Tensor p = add(f.baseline, mul(d, k / 3.0));
      p.set_requires_grad(true);
      acc = add(acc, grad({sum(mul((*net)(p), one_hot_rows(f.classes, 3)))}, {p})[0]);
    }
    check_close(ex::integrated_gradients(*net, x, f), vec(mul(d, div(acc, 3.0))), 1e-6, 1e-5);
  }
  // A baseline equal to x gives nothing to attribute.
  o.baseline = x;
  for (double v : vec(ex::integrated_gradients(*net, x, o))) CHECK(v == 0);
}

TEST_CASE("explain: smoothgrad with sigma 0 is saliency, with noise it is not") {
  ConvNet net(2, 6, 6, 3, 12);
  Generator g(13);
  Tensor x = rand({2, 2, 6, 6}, DType::Float32, Device::cpu(), &g);
  ex::Options o;
  o.sigma = 0;
  o.samples = 3;
  check_close(ex::smoothgrad(net, x, o), vec(ex::saliency(net, x, o)), 1e-7, 1e-6);
  o.per_channel = true;
  Tensor sg = ex::smoothgrad(net, x, o);
  check_map(sg, {2, 2, 6, 6});
  check_close(sg, vec(ex::saliency(net, x, o)), 1e-7, 1e-6);
  o.per_channel = false;
  o.sigma = 0.2;
  o.samples = 1;
  const std::vector<double> noisy = vec(ex::smoothgrad(net, x, o)),
                            plain = vec(ex::saliency(net, x, o));
  double diff = 0;
  for (size_t i = 0; i < plain.size(); ++i) diff = std::max(diff, std::abs(noisy[i] - plain[i]));
  CHECK(diff > 1e-4);
}

// ---------------------------------------------------------------- CAM

TEST_CASE("explain: CAM on FashionGAP is sum_k W[c, k] A_k, models without GAP are refused") {
  Generator gen(21);
  nets::FashionGAP net(&gen);
  net.eval();
  Tensor x = rand({2, 1, 28, 28}, DType::Float32, Device::cpu(), &gen);
  const Tensor A = capture(net, "features", x);
  REQUIRE(A.shape() == Shape({2, 128, 7, 7}));
  const std::vector<double> a = vec(A), w = vec(net.fc->weight), b = vec(net.fc->bias);
  const Tensor logits = eval_logits(net, x);
  const std::vector<double> l = vec(logits);
  for (std::vector<int64_t> cls : {argmax_rows(logits), std::vector<int64_t>{3, 7}}) {
    ex::Options o;
    o.layer = "features";
    if (cls[0] == 3) o.classes = labels(cls);
    std::vector<double> m(2 * 49, 0.0);
    for (int64_t n = 0; n < 2; ++n) {
      for (int64_t k = 0; k < 128; ++k)
        for (int64_t j = 0; j < 49; ++j)
          m[size_t(n * 49 + j)] +=
              w[size_t(cls[size_t(n)] * 128 + k)] * a[size_t((n * 128 + k) * 49 + j)];
      // CAM's defining property: the map's mean plus the bias is the class logit.
      double mean = 0;
      for (int64_t j = 0; j < 49; ++j) mean += m[size_t(n * 49 + j)] / 49;
      CHECK(mean + b[size_t(cls[size_t(n)])] ==
            doctest::Approx(l[size_t(n * 10 + cls[size_t(n)])]).epsilon(1e-4));
    }
    const Tensor expected =
        upsample_bilinear2d(from_vector<double>(m, {2, 1, 7, 7}), 28, 28).squeeze(1);
    const Tensor c = ex::cam(net, x, o);
    check_map(c, {2, 28, 28});
    check_rel(c, expected, 1e-5);
    // The last ReLU of features outputs the same tensor.
    o.layer = "features.7";
    check_rel(ex::cam(net, x, o), expected, 1e-5);
  }
  ex::Options o;
  // The conv before the last ReLU: fc(GAP(conv)) is not the model's logits.
  o.layer = "features.6";
  check_error([&] { ex::cam(net, x, o); }, {"global average pooling"});
  o.layer = "features";
  o.fc = "features.0";
  check_error([&] { ex::cam(net, x, o); }, {"must be a Linear"});

  nets::FashionCNN cnn(&gen);
  cnn.eval();
  ex::Options c;
  c.layer = "conv2";
  c.fc = "fc2";
  check_error([&] { ex::cam(cnn, x, c); }, {"explain::cam", "global average pooling"});
}

// ---------------------------------------------------------------- synthesis

TEST_CASE("explain: class_model follows the closed form on a linear model") {
  // S_c(I) = W[c] . I + b: I_t = (1 - 2 lr lambda) I_{t-1} + lr W[c] from I_0 = 0, so
  // I_T = W[c] / (2 lambda) (1 - (1 - 2 lr lambda)^T), or T lr W[c] when lambda = 0.
  auto net = linear_net(12, 3, 31);
  const std::vector<double> w = vec(dynamic_cast<nn::Linear&>(net->submodule("1")).weight);
  Tensor cls = labels({2, 0});
  for (double lambda : {0.0, 0.5}) {
    CAPTURE(lambda);
    ex::Options o;
    o.iterations = 30;
    o.lr = 0.1;
    o.lambda = lambda;
    const Tensor img = ex::class_model(*net, cls, {1, 3, 4}, o);
    check_map(img, {2, 1, 3, 4});
    const double f =
        lambda == 0 ? 30 * 0.1 : (1 - std::pow(1 - 2 * 0.1 * lambda, 30)) / (2 * lambda);
    std::vector<double> e;
    for (int64_t c : {2, 0})
      for (int64_t i = 0; i < 12; ++i) e.push_back(f * w[size_t(c * 12 + i)]);
    check_close(img, e, 1e-6, 1e-5);
  }
}

TEST_CASE("explain: class_model raises its class's score most, activation_max its channel") {
  Generator gen(32);
  nets::FashionCNN cnn(&gen);
  cnn.eval();
  const Shape in{1, 28, 28};
  const std::vector<int64_t> cls{1, 4, 8};
  ex::Options o;
  o.iterations = 8;
  o.lr = 0.1;
  o.lambda = 0.01;
  const Tensor img = ex::class_model(cnn, labels(cls), in, o);
  check_map(img, {3, 1, 28, 28});
  const std::vector<double> l0 = vec(eval_logits(cnn, zeros({1, 1, 28, 28}))),
                            l1 = vec(eval_logits(cnn, img));
  for (size_t i = 0; i < cls.size(); ++i) {
    CAPTURE(cls[i]);
    const double up = l1[i * 10 + size_t(cls[i])] - l0[size_t(cls[i])];
    CHECK(up > 0);
    for (size_t k = 0; k < 10; ++k)
      if (int64_t(k) != cls[i]) CHECK(l1[i * 10 + k] - l0[k] < up);
  }
  // A strong penalty keeps the image small.
  auto norm = [](const Tensor& t) {
    double s = 0;
    for (double v : vec(t)) s += v * v;
    return std::sqrt(s);
  };
  ex::Options strong = o;
  strong.lambda = 20;
  strong.lr = 0.02;
  ex::Options none = strong;
  none.lambda = 0;
  const double n_strong = norm(ex::class_model(cnn, labels(cls), in, strong));
  const double n_none = norm(ex::class_model(cnn, labels(cls), in, none));
  CHECK(n_strong > 0);
  CHECK(n_strong < 0.5 * n_none);

  // activation_max: from the seeded start (N(0, 0.01^2) from Generator(seed)) the channel's
  // mean activation J goes up; near the start J is close to linear, so T steps of lr (with
  // lambda = 0) raise it by about lr T |dJ/dI|^2.
  ex::Options a;
  a.layer = "conv2";
  a.channel = 5;
  a.iterations = 4;
  a.lr = 1;
  a.lambda = 0;
  a.seed = 3;
  Generator sg(a.seed);
  const Tensor start = randn({1, 1, 28, 28}, DType::Float32, Device::cpu(), &sg, 0, 0.01);
  double g2 = 0;
  {
    Tensor xl = start.clone();
    xl.set_requires_grad(true);
    Tensor act;
    nn::ForwardHookGuard h(cnn.submodule("conv2"),
                           [&](nn::Module&, const Tensor&, const Tensor& out) {
                             act = out;
                             return std::optional<Tensor>();
                           });
    cnn(xl);
    for (double v : vec(grad({mean(act.narrow(1, 5, 1))}, {xl})[0])) g2 += v * v;
  }
  REQUIRE(g2 > 0);
  const Tensor best = ex::activation_max(cnn, in, a);
  check_map(best, {1, 1, 28, 28});
  auto channel_mean = [&](const Tensor& t) {
    return mean(capture(cnn, "conv2", t).narrow(1, 5, 1)).item<double>();
  };
  const double rise = channel_mean(best) - channel_mean(start);
  CHECK(rise > 0.5 * a.lr * 4 * g2);
  CHECK(rise < 1.5 * a.lr * 4 * g2);
  a.lr = 5;
  a.iterations = 8;
  CHECK(channel_mean(ex::activation_max(cnn, in, a)) - channel_mean(start) > 2 * rise);
  // another channel is driven differently
  a.lr = 1;
  a.iterations = 4;
  a.channel = 6;
  CHECK(vec(ex::activation_max(cnn, in, a)) != vec(best));
  a.channel = 64;
  check_error([&] { ex::activation_max(cnn, in, a); }, {"channel 64", "[0, 64)", "conv2"});
}

// ---------------------------------------------------------------- dense outputs

TEST_CASE("explain: dense_saliency of a 1x1 conv is the per-pixel softmax-CE gradient") {
  // logits z[:, p] = V x[:, p] + b per pixel, l = mean over counted pixels of CE(z_p, t_p):
  // dl/dx[:, p] = V^T (softmax(z_p) - onehot(t_p)) / count, 0 outside the region.
  const int64_t N = 2, C = 3, K = 4, H = 3, W = 4, HW = H * W;
  Generator g(41);
  nn::Conv2d net(C, K, 1, 1, 0, 1, 1, true, &g);
  net.to(DType::Float64);
  net.eval();
  Tensor x = randn({N, C, H, W}, DType::Float64, Device::cpu(), &g);
  Tensor target = randint(0, K, {N, H, W}, &g);
  std::vector<double> region_v(size_t(N * HW), 1.0);
  for (int64_t p : {0, 3, 5, 11}) region_v[size_t(p)] = 0;                 // image 0: 8 pixels
  for (int64_t p = 0; p < HW; ++p) region_v[size_t(HW + p)] = p % 3 == 0;  // image 1: 4 pixels
  const Tensor region = from_vector<double>(region_v, {N, H, W});
  const std::vector<double> v = vec(net.weight), z = vec(eval_logits(net, x));
  const std::vector<int64_t> t = target.to_vector<int64_t>();
  auto expected = [&](bool use_region, bool per_channel) {
    std::vector<double> e;
    for (int64_t n = 0; n < N; ++n) {
      double count = 0;
      for (int64_t p = 0; p < HW; ++p) count += use_region ? region_v[size_t(n * HW + p)] : 1;
      std::vector<double> gx(size_t(C * HW), 0.0);
      for (int64_t p = 0; p < HW; ++p) {
        if (use_region && region_v[size_t(n * HW + p)] == 0) continue;
        double m = -1e300, s = 0;
        for (int64_t k = 0; k < K; ++k) m = std::max(m, z[size_t((n * K + k) * HW + p)]);
        for (int64_t k = 0; k < K; ++k) s += std::exp(z[size_t((n * K + k) * HW + p)] - m);
        for (int64_t k = 0; k < K; ++k) {
          const double dz = std::exp(z[size_t((n * K + k) * HW + p)] - m) / s -
                            (t[size_t(n * HW + p)] == k ? 1 : 0);
          for (int64_t c = 0; c < C; ++c)
            gx[size_t(c * HW + p)] += v[size_t(k * C + c)] * dz / count;
        }
      }
      for (int64_t p = 0; p < (per_channel ? C * HW : HW); ++p) {
        double a = std::abs(gx[size_t(p)]);
        if (!per_channel)
          for (int64_t c = 1; c < C; ++c) a = std::max(a, std::abs(gx[size_t(c * HW + p)]));
        e.push_back(a);
      }
    }
    return e;
  };
  Tensor all = ex::dense_saliency(net, x, target);
  check_map(all, {N, H, W});
  check_close(all, expected(false, false), 1e-7, 1e-5);
  check_close(ex::dense_saliency(net, x, target, Tensor(), true), expected(false, true), 1e-7,
              1e-5);
  Tensor in_region = ex::dense_saliency(net, x, target, region);
  const std::vector<double> er = expected(true, false);
  check_close(in_region, er, 1e-7, 1e-5);
  const std::vector<double> got = vec(in_region);
  for (size_t i = 0; i < got.size(); ++i) {
    if (region_v[i] == 0)
      CHECK(got[i] == 0);  // 1x1 conv: outside pixels get nothing
    else
      CHECK(got[i] > 0);
  }
  check_close(ex::dense_saliency(net, x, target, region, true), expected(true, true), 1e-7, 1e-5);
  // batched == per-sample (each image divides by its own count)
  for (int64_t n = 0; n < N; ++n)
    check_close(
        ex::dense_saliency(net, x.slice(n, n + 1), target.slice(n, n + 1), region.slice(n, n + 1)),
        vec(in_region.slice(n, n + 1)), 1e-7, 1e-6);
  // errors: an empty region, a target of the wrong shape
  Tensor empty_region = zeros({N, H, W}, DType::Float64);
  check_error([&] { ex::dense_saliency(net, x, target, empty_region); }, {"selects no pixel"});
  check_error([&] { ex::dense_saliency(net, x, target.slice(0, 1)); }, {"target"});
}

// ---------------------------------------------------------------- errors

TEST_CASE("explain: argument errors name the problem") {
  Generator gen(51);
  nets::FashionCNN cnn(&gen);
  cnn.eval();
  Tensor x = rand({2, 1, 28, 28}, DType::Float32, Device::cpu(), &gen);
  ex::Options o;
  check_error([&] { ex::saliency(cnn, x.squeeze(1), o); },
              {"explain::saliency", "[N, C, H, W]", "[2, 28, 28]"});
  check_error([&] { ex::gradcam(cnn, rand({1, 28, 28}), o); }, {"explain::gradcam"});
  check_error([&] { ex::occlusion(cnn, Tensor(), o); }, {"undefined"});
  {
    NoGradGuard ng;  // the gradient methods need autograd, and say so
    check_error([&] { ex::saliency(cnn, x, o); }, {"explain::saliency", "NoGradGuard"});
    ex::Options g = o;
    g.layer = "conv2";
    check_error([&] { ex::gradcam(cnn, x, g); }, {"explain::gradcam", "NoGradGuard"});
    CHECK(ex::occlusion(cnn, x, o).shape() == Shape{2, 28, 28});  // forward passes only
  }
  o.classes = labels({3, 10});
  check_error([&] { ex::saliency(cnn, x, o); }, {"class 10 of sample 1", "[0, 10)"});
  o.classes = labels({-1, 0});
  check_error([&] { ex::occlusion(cnn, x, o); }, {"class -1 of sample 0"});
  o.classes = labels({1, 2, 3});
  check_error([&] { ex::integrated_gradients(cnn, x, o); }, {"classes must be int64 [N]", "N = 2"});
  o.classes = tensor({1, 2}, {2});
  check_error([&] { ex::guided_backprop(cnn, x, o); }, {"classes must be int64"});
  o.classes = Tensor();

  o.layer = "conv9";
  check_error([&] { ex::gradcam(cnn, x, o); }, {"no module named 'conv9'", "conv1 (Conv2d)",
                                                "conv2 (Conv2d)", "fc1 (Linear)", "fc2 (Linear)"});
  o.layer = "";
  check_error([&] { ex::gradcam_pp(cnn, x, o); }, {"needs a layer"});
  o.layer = "fc1";  // not feature maps
  check_error([&] { ex::gradcam(cnn, x, o); }, {"fc1", "[N, K, h, w]"});
  o.layer = "conv2";
  check_error([&] { ex::explain("bogus", cnn, x, o); },
              {"unknown method 'bogus'", "saliency", "gradcam++", "integrated-gradients",
               "guided-gradcam", "occlusion", "cam"});
  ex::Options p;
  p.patch = 29;
  check_error([&] { ex::occlusion(cnn, x, p); }, {"patch"});
  p.patch = 4;
  p.max_batch = 0;
  check_error([&] { ex::occlusion(cnn, x, p); }, {"max_batch"});
  ex::Options b;
  b.baseline = zeros({2, 1, 14, 14});
  check_error([&] { ex::integrated_gradients(cnn, x, b); }, {"baseline", "[2, 1, 14, 14]"});
  ex::Options s;
  s.samples = 0;
  check_error([&] { ex::smoothgrad(cnn, x, s); }, {"samples"});
  ex::Options it;
  it.iterations = 0;
  check_error([&] { ex::class_model(cnn, labels({0}), {1, 28, 28}, it); }, {"iterations"});
  check_error([&] { ex::class_model(cnn, labels({0}), {28, 28}, ex::Options{}); }, {"input shape"});
}

// ---------------------------------------------------------------- the model type

TEST_CASE("model: nn::Model from a Module, from a lambda, and from a lambda with its module") {
  auto fn = [](const Tensor& t) { return mul(t, 2.0); };
  static_assert(std::is_convertible_v<nn::Linear&, nn::Model>);
  static_assert(std::is_convertible_v<decltype(fn), nn::Model>);
  static_assert(std::is_convertible_v<std::function<Tensor(const Tensor&)>, nn::Model>);
  static_assert(!std::is_constructible_v<nn::Model, int>);
  static_assert(!std::is_constructible_v<nn::Model, std::function<int(int)>>);
  static_assert(!std::is_constructible_v<nn::Model, const nn::Linear&>);

  Generator g(91);
  nn::Linear lin(3, 2, true, &g);
  int hook_calls = 0;
  nn::ForwardHookGuard hook(lin, [&](nn::Module&, const Tensor&, const Tensor&) {
    ++hook_calls;
    return std::optional<Tensor>();
  });
  Tensor x = rand({4, 3}, DType::Float32, Device::cpu(), &g);
  const std::vector<double> direct = vec(lin.forward(x));

  const nn::Model from_module = lin;  // implicit
  CHECK(bool(from_module));
  CHECK(from_module.module() == &lin);
  CHECK(&from_module.require_module("test") == &lin);
  check_close(from_module(x), direct, 0, 0);
  CHECK(hook_calls == 1);  // through the module's operator(), hooks included

  const nn::Model from_lambda = [&](const Tensor& t) { return lin(t); };
  CHECK(from_lambda.module() == nullptr);
  check_close(from_lambda(x), direct, 0, 0);
  CHECK(hook_calls == 2);
  check_error([&] { from_lambda.require_module("my_method"); },
              {"my_method", "needs a module", "plain callable", "nn::Model(fn, &net)"});

  const nn::Model composite([&](const Tensor& t) { return lin(mul(t, 2.0)); }, &lin);
  CHECK(composite.module() == &lin);
  check_close(composite(x), vec(lin.forward(mul(x, 2.0))), 0, 0);
  const nn::Model copy = composite;
  CHECK(copy.module() == &lin);
  check_close(copy(x), vec(composite(x)), 0, 0);
  // No callable: the module itself is the forward.
  const nn::Model module_only(nn::Model::Function(), &lin);
  check_close(module_only(x), direct, 0, 0);

  const nn::Model from_fn = fn;
  check_close(from_fn(x), vec(mul(x, 2.0)), 0, 0);
  const nn::Model empty;
  CHECK_FALSE(bool(empty));
  check_error([&] { empty(x); }, {"nn::Model", "empty model", "[4, 3]"});
  check_error([&] { nn::Model(nn::Model::Function(), nullptr)(x); }, {"empty model"});
}

TEST_CASE("explain: plain callables work where no layer is needed, layer methods need a module") {
  Generator gen(92);
  nets::FashionCNN cnn(&gen);
  cnn.eval();
  Tensor x = rand({2, 1, 28, 28}, DType::Float32, Device::cpu(), &gen);
  const nn::Model plain = [&](const Tensor& t) { return cnn(t); };
  ex::Options o;
  o.layer = "conv2";
  o.patch = 7;
  o.stride = 7;
  check_close(ex::saliency(plain, x, o), vec(ex::saliency(cnn, x, o)), 0, 0);
  check_close(ex::occlusion(plain, x, o), vec(ex::occlusion(cnn, x, o)), 0, 0);
  CHECK(ex::predict(plain, x).to_vector<int64_t>() == ex::predict(cnn, x).to_vector<int64_t>());
  ex::Options a;
  a.iterations = 3;
  check_close(ex::class_model(plain, labels({1}), {1, 28, 28}, a),
              vec(ex::class_model(cnn, labels({1}), {1, 28, 28}, a)), 0, 0);

  check_error([&] { ex::gradcam(plain, x, o); },
              {"explain::gradcam", "needs a module", "plain callable"});
  check_error([&] { ex::gradcam_pp(plain, x, o); }, {"explain::gradcam_pp", "needs a module"});
  check_error([&] { ex::guided_gradcam(plain, x, o); }, {"explain::gradcam", "needs a module"});
  check_error([&] { ex::explain("cam", plain, x, o); }, {"explain::cam", "needs a module"});
  a.layer = "conv2";
  check_error(
      [&] {
        ex::activation_max(plain, {1, 28, 28}, a);
      },
      {"explain::activation_max", "needs a module"});

  // A composite model (normalisation, then the network) that exposes the network: Grad-CAM
  // finds conv2 and equals Grad-CAM of the network on the normalised images; saliency gets the
  // chain rule's factor 1/0.25.
  auto normalise = [](const Tensor& t) { return div(sub(t, 0.5), 0.25); };
  const nn::Model composite([&](const Tensor& t) { return cnn(normalise(t)); }, &cnn);
  const Tensor z = normalise(x);
  check_close(ex::gradcam(composite, x, o), vec(ex::gradcam(cnn, z, o)), 0, 0);
  check_rel(ex::saliency(composite, x, o), mul(ex::saliency(cnn, z, o), 4.0), 1e-5);
}

// ---------------------------------------------------------------- module hooks

TEST_CASE("module: forward hooks run in operator(), can replace the output, and are removable") {
  nn::Linear lin(3, 2);
  Tensor x = tensor({1, 2, 3}, {1, 3});
  const std::vector<double> plain = vec(lin.forward(x));
  std::vector<std::string> calls;
  std::vector<double> seen_by_second;
  std::vector<const TensorImpl*> inputs;
  const int64_t id1 = lin.add_forward_hook([&](nn::Module& m, const Tensor& in, const Tensor& out) {
    CHECK(&m == &lin);
    inputs.push_back(in.impl());
    calls.push_back("first");
    return std::optional<Tensor>(mul(out, 2.0));
  });
  const int64_t id2 = lin.add_forward_hook([&](nn::Module&, const Tensor&, const Tensor& out) {
    seen_by_second = vec(out);
    calls.push_back("second");
    return std::optional<Tensor>();
  });
  CHECK(id1 != id2);
  const std::vector<double> doubled{2 * plain[0], 2 * plain[1]};
  check_close(lin(x), doubled, 1e-6, 0);
  CHECK(calls == std::vector<std::string>{"first", "second"});
  CHECK(inputs == std::vector<const TensorImpl*>{x.impl()});  // the hook sees the input
  check_close(from_vector<double>(seen_by_second, {2}), doubled, 1e-6, 0);  // in order
  // the replaced output is on the graph: gradients flow through the hook's op
  {
    Tensor xl = x.clone();
    xl.set_requires_grad(true);
    Tensor gx = grad({sum(lin(xl))}, {xl})[0];
    const std::vector<double> w = vec(lin.weight);
    check_close(gx, {2 * (w[0] + w[3]), 2 * (w[1] + w[4]), 2 * (w[2] + w[5])}, 1e-6, 1e-6);
  }
  // forward() itself runs no hook
  calls.clear();
  check_close(lin.forward(x), plain, 0, 0);
  CHECK(calls.empty());
  // removing the first: the output is plain again, the second still runs
  lin.remove_forward_hook(id1);
  lin.remove_forward_hook(id1);    // twice is harmless
  lin.remove_forward_hook(12345);  // unknown ids are ignored
  check_close(lin(x), plain, 0, 0);
  CHECK(calls == std::vector<std::string>{"second"});
  lin.remove_forward_hook(id2);
  calls.clear();
  lin(x);
  CHECK(calls.empty());
  // ids are not reused
  const int64_t id3 = lin.add_forward_hook([&](nn::Module&, const Tensor&, const Tensor&) {
    calls.push_back("third");
    return std::optional<Tensor>();
  });
  CHECK(id3 != id1);
  CHECK(id3 != id2);
  lin.remove_forward_hook(id3);
  check_error([&] { lin.add_forward_hook(nullptr); }, {"empty"});
}

TEST_CASE("module: ForwardHookGuard removes its hook on scope exit, exceptions included") {
  Generator gen(61);
  nets::FashionGAP net(&gen);
  net.eval();
  Tensor x = rand({2, 1, 28, 28}, DType::Float32, Device::cpu(), &gen);
  nn::Module& conv = net.submodule("features.6");
  int calls = 0;
  auto counting = [&](nn::Module&, const Tensor&, const Tensor& out) {
    ++calls;
    CHECK(out.shape() == Shape({2, 128, 7, 7}));
    return std::optional<Tensor>();
  };
  {
    nn::ForwardHookGuard g(conv, counting);
    eval_logits(net, x);  // the net calls its children through operator(): the hook runs
    CHECK(calls == 1);
  }
  eval_logits(net, x);
  CHECK(calls == 1);
  try {
    nn::ForwardHookGuard g(conv, counting);
    eval_logits(net, x);
    throw Error("boom");
  } catch (const Error&) {
  }
  CHECK(calls == 2);
  eval_logits(net, x);
  CHECK(calls == 2);
  // A hook that throws propagates; the guard still removes it.
  try {
    nn::ForwardHookGuard g(conv,
                           [](nn::Module&, const Tensor&, const Tensor&) -> std::optional<Tensor> {
                             throw Error("hook failed");
                           });
    eval_logits(net, x);
    FAIL_CHECK("the hook's error was swallowed");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("hook failed") != std::string::npos);
  }
  CHECK_NOTHROW(eval_logits(net, x));
  // A replacing hook inside the net changes the logits: zeroing the last features zeroes
  // everything but the fc bias.
  {
    nn::ForwardHookGuard g(net.submodule("features"),
                           [](nn::Module&, const Tensor&, const Tensor& out) {
                             return std::optional<Tensor>(zeros_like(out));
                           });
    const std::vector<double> l = vec(eval_logits(net, x)), b = vec(net.fc->bias);
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t k = 0; k < 10; ++k) CHECK(l[size_t(n * 10 + k)] == b[size_t(k)]);
  }
  CHECK(vec(eval_logits(net, x)) != std::vector<double>(20, 0.0));
}

TEST_CASE("module: named_modules order and submodule by dotted name") {
  Generator gen(62);
  nets::FashionGAP gap(&gen);
  std::vector<std::string> names;
  for (const auto& [n, m] : gap.named_modules()) names.push_back(n + ":" + m->type_name());
  CHECK(names == std::vector<std::string>{
                     "features:Sequential", "features.0:Conv2d", "features.1:ReLU",
                     "features.2:MaxPool2d", "features.3:Conv2d", "features.4:ReLU",
                     "features.5:MaxPool2d", "features.6:Conv2d", "features.7:ReLU", "fc:Linear"});
  nn::Module& c6 = gap.submodule("features.6");
  CHECK(&c6 == gap.features->children()[6].second.get());
  auto* conv = dynamic_cast<nn::Conv2d*>(&c6);
  REQUIRE(conv != nullptr);
  CHECK(conv->weight.shape() == Shape({128, 64, 3, 3}));
  CHECK(&gap.submodule("") == &gap);
  CHECK(&gap.submodule("fc") == gap.fc.get());
  CHECK(&gap.features->submodule("6") == &c6);
  check_error([&] { gap.submodule("features.8"); },
              {"no module named 'features.8'", "features.6 (Conv2d)", "fc (Linear)"});
  check_error([&] { gap.submodule("6"); }, {"no module named '6'"});
  nn::ReLU leaf;
  CHECK(leaf.named_modules().empty());
  check_error([&] { leaf.submodule("x"); }, {"no submodules"});

  nets::FashionCNN cnn(&gen);
  names.clear();
  for (const auto& [n, m] : cnn.named_modules()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"conv1", "conv2", "fc1", "fc2"});
}

// ---------------------------------------------------------------- cost

TEST_CASE("explain: no weight-gradient kernel runs, and the weights get no .grad") {
  Generator gen(71);
  nets::FashionCNN cnn(&gen);
  cnn.eval();
  Tensor x = rand({2, 1, 28, 28}, DType::Float32, Device::cpu(), &gen);
  ex::Options o;
  o.layer = "conv2";
  o.steps = 2;
  o.samples = 2;
  o.patch = 14;
  o.stride = 14;
  for (const char* m : {"saliency", "smoothgrad", "integrated-gradients", "gradcam", "gradcam++",
                        "guided-backprop", "guided-gradcam", "deconvnet", "occlusion"}) {
    CAPTURE(m);
    reset_kernel_counts();
    ex::explain(m, cnn, x, o);
    CHECK(kernel_count("conv2d_backward_weight") == 0);
    CHECK(kernel_count("linear_backward_weight") == 0);
    CHECK(kernel_count("linear_backward_bias") == 0);
    const std::string name = m;
    if (name == "gradcam" || name == "gradcam++") {
      // the gradient stops at conv2's output: no convolution backward at all
      CHECK(kernel_count("conv2d_backward_input") == 0);
      CHECK(kernel_count("linear_backward_input") > 0);
    } else if (name != "occlusion") {
      CHECK(kernel_count("conv2d_backward_input") > 0);  // the input gradient did run
    } else {
      CHECK(kernel_count("conv2d_backward_input") == 0);  // forward passes only
    }
  }
  reset_kernel_counts();
  ex::Options a;
  a.layer = "conv2";
  a.iterations = 2;
  ex::activation_max(cnn, {1, 28, 28}, a);
  ex::class_model(cnn, labels({0}), {1, 28, 28}, a);
  CHECK(kernel_count("conv2d_backward_weight") == 0);
  CHECK(kernel_count("linear_backward_weight") == 0);
  for (const Tensor& p : cnn.parameters()) CHECK_FALSE(p.grad().defined());
}

// ---------------------------------------------------------------- CUDA

TEST_CASE("explain: CUDA maps equal the CPU maps") {
  if (!gpu_or_skip()) return;
  Generator gen(81);
  nets::FashionCNN cpu_net(&gen);
  cpu_net.eval();
  Generator gen2(81);
  nets::FashionCNN gpu_net(&gen2);
  gpu_net.to(Device::cuda(0));
  gpu_net.eval();
  Tensor x = rand({3, 1, 28, 28}, DType::Float32, Device::cpu(), &gen);
  Tensor xg = x.to(Device::cuda(0));
  ex::Options o;
  o.layer = "conv2";
  o.steps = 4;
  o.samples = 3;
  o.patch = 7;
  o.stride = 7;
  o.classes = ex::predict(cpu_net, x);
  CHECK(ex::predict(gpu_net, xg).to_vector<int64_t>() == o.classes.to_vector<int64_t>());
  for (const std::string& m : ex::method_names()) {
    if (m == "cam") continue;  // FashionCNN does not end in GAP
    CAPTURE(m);
    const Tensor c = ex::explain(m, cpu_net, x, o), g = ex::explain(m, gpu_net, xg, o);
    check_map(g, c.shape());
    check_rel(g, c, 1e-4);
  }
}
