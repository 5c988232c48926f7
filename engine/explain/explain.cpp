// Interpretability methods (see explain.h for the math of each one).
//
// Everything that needs a gradient goes through nabla::grad with exactly the tensors it needs
// (the input, or one layer's activation), so no weight gradient is ever computed. Guided
// backprop and deconvnet change ReLU's backward through the autograd node hooks of the graph
// they just recorded: the hooks live and die with that graph, so a later backward through the
// same model is untouched.
#include <nabla/explain/explain.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <tuple>

#include <nabla/autograd.h>
#include <nabla/error.h>
#include <nabla/nn/layers.h>
#include <nabla/ops.h>
#include <nabla/ops/pool.h>
#include <nabla/random.h>

namespace nabla::explain {

namespace {

// A float32, contiguous CPU copy with no history: what every method returns.
Tensor to_map(const Tensor& t) {
  return t.detach().to(Device::cpu()).to(DType::Float32).contiguous();
}

void check_images(const char* who, const Tensor& x) {
  NABLA_CHECK(x.defined() && x.dim() == 4 && is_floating(x.dtype()) && x.size(0) >= 1,
              "explain::", who, ": expects a batch of images, float [N, C, H, W] with N >= 1, got ",
              x.defined() ? x.str() : std::string("an undefined tensor"));
}

// The class explained for each sample: opt.classes when given, else the prediction.
Tensor classes_for(const char* who, const nn::Model& model, const Tensor& x, const Options& opt) {
  if (!opt.classes.defined()) return predict(model, x);
  NABLA_CHECK(opt.classes.dtype() == DType::Int64 && opt.classes.dim() == 1 &&
                  opt.classes.size(0) == x.size(0),
              "explain::", who, ": classes must be int64 [N] with N = ", x.size(0),
              " (one class per image of ", shape_str(x.shape()), "), got ", opt.classes.str());
  return opt.classes.to(Device::cpu()).contiguous();
}

// One-hot rows [N, K] in the logits' dtype and device; the error names the bad class.
Tensor one_hot(const char* who, const Tensor& classes, const Tensor& logits) {
  NABLA_CHECK(logits.dim() == 2 && logits.size(0) == classes.size(0), "explain::", who,
              ": the model must map the batch to logits [N, K] with N = ", classes.size(0),
              ", got ", shape_str(logits.shape()));
  const int64_t n = logits.size(0), k = logits.size(1);
  Tensor oh = zeros({n, k}, DType::Float64);
  const int64_t* c = classes.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    NABLA_CHECK(c[i] >= 0 && c[i] < k, "explain::", who, ": class ", c[i], " of sample ", i,
                " is outside [0, ", k, ") for logits ", shape_str(logits.shape()));
    oh.data<double>()[i * k + c[i]] = 1;
  }
  return oh.to(logits.dtype()).to(logits.device());
}

// S = sum_n logits[n, c_n]: one backward gives every sample its own dS_{c_n}/dx_n.
Tensor class_score(const char* who, const Tensor& logits, const Tensor& classes) {
  return sum(mul(logits, one_hot(who, classes, logits)));
}

enum class ReluRule { Plain, Guided, Deconv };

// Installs the ReLU rule on every relu node of the graph behind `out`.
void set_relu_rule(const Tensor& out, ReluRule rule) {
  if (rule == ReluRule::Plain) return;
  visit_graph(out, [rule](Node& n) {
    if (n.name() != "relu") return;
    if (rule == ReluRule::Guided) {
      // The plain rule gives dy [x > 0]; clamping it at 0 adds [dy > 0].
      n.add_post_hook([](const Node&, std::vector<Tensor>& gi, const std::vector<Tensor>&) {
        if (gi[0].defined()) gi[0] = relu(gi[0]);
      });
    } else {
      // Deconvnet ignores the forward's sign entirely: dx = relu(dy).
      n.set_override([](const Node&, const std::vector<Tensor>& go, const std::vector<bool>& need) {
        return std::vector<Tensor>{need[0] ? relu(go[0]) : Tensor()};
      });
    }
  });
}

// The gradient methods need the graph: say so instead of failing inside grad().
void check_grad_mode(const char* who) {
  NABLA_CHECK(grad_enabled(), "explain::", who, ": gradient recording is off (called inside a ",
              "NoGradGuard); the explanation methods need autograd");
}

// dS/dx (same shape, dtype and device as x) for the given classes and ReLU rule.
Tensor input_gradient(const char* who, const nn::Model& model, const Tensor& x,
                      const Tensor& classes, ReluRule rule = ReluRule::Plain) {
  check_grad_mode(who);
  Tensor xl = x.detach();
  xl.set_requires_grad(true);
  Tensor s = class_score(who, model(xl), classes);
  set_relu_rule(s, rule);
  return grad({s}, {xl})[0];
}

// |g| as [N, C, H, W] (per_channel) or its max over channels [N, H, W], on the CPU.
Tensor abs_map(const Tensor& g, bool per_channel) {
  NoGradGuard ng;
  Tensor a = abs(g);
  return to_map(per_channel ? a : max(a, 1).first);
}

// Runs rows(i, a, b) for every image i and row range [a, b) of `per` rows per image through
// `run` in chunks of at most max_batch rows (rows of one image may straddle two chunks), then
// hands each span of the output back with use(i, a, b, out_rows). Images are visited in order
// and rows within an image in order, so what `rows` draws does not depend on max_batch.
using Span = std::tuple<int64_t, int64_t, int64_t>;
void chunked(int64_t n, int64_t per, int64_t max_batch,
             const std::function<Tensor(int64_t i, int64_t a, int64_t b)>& rows,
             const std::function<Tensor(const Tensor& batch, const std::vector<Span>&)>& run,
             const std::function<void(int64_t i, int64_t a, int64_t b, const Tensor&)>& use) {
  NABLA_CHECK(max_batch >= 1, "explain: max_batch must be >= 1, got ", max_batch);
  std::vector<Tensor> pieces;
  std::vector<Span> spans;
  int64_t filled = 0;
  auto flush = [&] {
    if (filled == 0) return;
    Tensor out = run(pieces.size() == 1 ? pieces[0] : concat(pieces, 0), spans);
    int64_t off = 0;
    for (const auto& [i, a, b] : spans) {
      use(i, a, b, out.slice(off, off + (b - a)));
      off += b - a;
    }
    pieces.clear();
    spans.clear();
    filled = 0;
  };
  for (int64_t i = 0; i < n; ++i)
    for (int64_t a = 0; a < per;) {
      const int64_t b = std::min(per, a + (max_batch - filled));
      pieces.push_back(rows(i, a, b));
      spans.emplace_back(i, a, b);
      filled += b - a;
      a = b;
      if (filled == max_batch) flush();
    }
  flush();
}

// The class of each row of a chunk: image i's class repeated over its span.
Tensor span_classes(const Tensor& classes, const std::vector<Span>& spans) {
  int64_t rows = 0;
  for (const auto& [i, a, b] : spans) rows += b - a;
  Tensor c = empty({rows}, DType::Int64);
  int64_t r = 0;
  for (const auto& [i, a, b] : spans)
    for (int64_t k = a; k < b; ++k) c.data<int64_t>()[r++] = classes.data<int64_t>()[i];
  return c;
}

// FNV-1a over the bytes of n floats: keys an image's SmoothGrad noise to its content.
uint64_t content_hash(const float* p, int64_t n) {
  uint64_t h = 14695981039346656037ull;
  const auto* bytes = reinterpret_cast<const unsigned char*>(p);
  for (size_t k = 0; k < size_t(n) * sizeof(float); ++k) h = (h ^ bytes[k]) * 1099511628211ull;
  return h;
}

// Adds src (float32 CPU, contiguous) into dst (float64 vector) with weight w.
void accumulate(std::vector<double>& dst, int64_t offset, const Tensor& src, double w) {
  const Tensor s = to_map(src);
  const float* p = s.data<float>();
  for (int64_t k = 0; k < s.numel(); ++k) dst[size_t(offset + k)] += w * double(p[k]);
}

Tensor from_doubles(const std::vector<double>& v, const Shape& shape) {
  Tensor t = empty(shape, DType::Float32);
  for (size_t k = 0; k < v.size(); ++k) t.data<float>()[k] = float(v[k]);
  return t;
}

// The output of module `layer` during model(x), captured by a forward hook, with x a leaf that
// requires grad (so the activation has a graph even when the weights are frozen).
struct Activation {
  Tensor logits, act;
};
Activation run_with_capture(const char* who, const nn::Model& model, const Tensor& x,
                            const std::string& layer) {
  check_grad_mode(who);
  NABLA_CHECK(!layer.empty(), "explain::", who,
              ": needs a layer (the dotted module name, such as conv2)");
  nn::Module& m = model.require_module((std::string("explain::") + who).c_str()).submodule(layer);
  Activation r;
  nn::ForwardHookGuard hook(m, [&](nn::Module&, const Tensor&, const Tensor& out) {
    r.act = out;  // a layer called twice keeps its last output
    return std::optional<Tensor>();
  });
  Tensor xl = x.detach();
  xl.set_requires_grad(true);
  r.logits = model(xl);
  NABLA_CHECK(r.act.defined(), "explain::", who, ": module '", layer, "' (", m.type_name(),
              ") was not called by the model's forward, so it has no activation");
  NABLA_CHECK(r.act.dim() == 4 && r.act.size(0) == x.size(0), "explain::", who, ": module '", layer,
              "' must output feature maps [N, K, h, w] with N = ", x.size(0), ", got ",
              shape_str(r.act.shape()));
  return r;
}

// Bilinear upsampling of maps [N, h, w] to [N, H, W] (align_corners = false).
Tensor upsample_maps(const Tensor& m, int64_t h, int64_t w) {
  NoGradGuard ng;
  if (m.size(1) == h && m.size(2) == w) return m;
  return upsample_bilinear2d(m.unsqueeze(1), h, w).squeeze(1).contiguous();
}

}  // namespace

// ---------------------------------------------------------------- gradient maps
Tensor predict(const nn::Model& model, const Tensor& x) {
  check_images("predict", x);
  NoGradGuard ng;
  Tensor logits = model(x);
  NABLA_CHECK(logits.dim() == 2 && logits.size(0) == x.size(0),
              "explain::predict: the model must map ", shape_str(x.shape()), " to logits [",
              x.size(0), ", K], got ", shape_str(logits.shape()));
  return argmax(logits, 1).to(Device::cpu()).contiguous();
}

Tensor saliency(const nn::Model& model, const Tensor& x, const Options& opt) {
  check_images("saliency", x);
  Tensor c = classes_for("saliency", model, x, opt);
  return abs_map(input_gradient("saliency", model, x, c), opt.per_channel);
}

Tensor guided_backprop(const nn::Model& model, const Tensor& x, const Options& opt) {
  check_images("guided_backprop", x);
  Tensor c = classes_for("guided_backprop", model, x, opt);
  return abs_map(input_gradient("guided_backprop", model, x, c, ReluRule::Guided), opt.per_channel);
}

Tensor deconvnet(const nn::Model& model, const Tensor& x, const Options& opt) {
  check_images("deconvnet", x);
  Tensor c = classes_for("deconvnet", model, x, opt);
  return abs_map(input_gradient("deconvnet", model, x, c, ReluRule::Deconv), opt.per_channel);
}

Tensor smoothgrad(const nn::Model& model, const Tensor& x, const Options& opt) {
  check_images("smoothgrad", x);
  NABLA_CHECK(opt.samples >= 1 && opt.sigma >= 0, "explain::smoothgrad: needs samples >= 1 and ",
              "sigma >= 0, got samples ", opt.samples, ", sigma ", opt.sigma);
  Tensor c = classes_for("smoothgrad", model, x, opt);
  const int64_t n = x.size(0), ch = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t plane = (opt.per_channel ? ch : 1) * h * w;
  std::vector<double> acc(size_t(n * plane), 0.0);
  Tensor noise;  // image i's M draws, made when its first rows are
  chunked(
      n, opt.samples, opt.max_batch,
      [&](int64_t i, int64_t a, int64_t b) {
        NoGradGuard ng;
        Tensor xi = x.slice(i, i + 1);
        if (a == 0) {
          // The noise scale follows each image's own value range (Smilkov et al.).
          Tensor xc = to_map(xi);
          const float* p = xc.data<float>();
          const auto [lo, hi] = std::minmax_element(p, p + xc.numel());
          const double range = *hi > *lo ? double(*hi - *lo) : 1.0;
          // The noise is a function of (seed, image) only: an image gets the same draws alone,
          // anywhere in a batch, and whatever the chunking.
          Generator gen(opt.seed ^ content_hash(p, xc.numel()));
          noise = randn({opt.samples, ch, h, w}, x.dtype(), x.device(), &gen, 0, opt.sigma * range);
        }
        return add(xi, noise.slice(a, b));
      },
      [&](const Tensor& batch, const std::vector<Span>& spans) {
        return abs_map(input_gradient("smoothgrad", model, batch, span_classes(c, spans)),
                       opt.per_channel);
      },
      [&](int64_t i, int64_t, int64_t, const Tensor& out) {
        const Tensor s = sum(out, {0});
        accumulate(acc, i * plane, s, 1.0 / double(opt.samples));
      });
  return opt.per_channel ? from_doubles(acc, {n, ch, h, w}) : from_doubles(acc, {n, h, w});
}

Tensor integrated_gradients(const nn::Model& model, const Tensor& x, const Options& opt) {
  check_images("integrated_gradients", x);
  NABLA_CHECK(opt.steps >= 1, "explain::integrated_gradients: needs steps >= 1, got ", opt.steps);
  Tensor c = classes_for("integrated_gradients", model, x, opt);
  const int64_t n = x.size(0), ch = x.size(1), h = x.size(2), w = x.size(3);
  Tensor base;
  {
    NoGradGuard ng;
    if (!opt.baseline.defined()) {
      base = zeros_like(x);
    } else {
      const Shape one{ch, h, w};
      NABLA_CHECK(opt.baseline.shape() == x.shape() || opt.baseline.shape() == one,
                  "explain::integrated_gradients: the baseline must be shaped like x ",
                  shape_str(x.shape()), " or one image ", shape_str(one), ", got ",
                  shape_str(opt.baseline.shape()));
      base = opt.baseline.to(x.device()).to(x.dtype());
      if (base.dim() == 3) base = base.unsqueeze(0).expand(x.shape()).contiguous();
    }
  }
  const int64_t plane = ch * h * w;
  std::vector<double> gsum(size_t(n * plane), 0.0);
  chunked(
      n, opt.steps, opt.max_batch,
      [&](int64_t i, int64_t a, int64_t b) {
        NoGradGuard ng;
        // alpha_k = k / m for k = a+1 .. b: the right end points of the Riemann sum.
        Tensor alpha = empty({b - a, 1, 1, 1}, DType::Float64);
        for (int64_t k = a; k < b; ++k)
          alpha.data<double>()[k - a] = double(k + 1) / double(opt.steps);
        Tensor xi = x.slice(i, i + 1), bi = base.slice(i, i + 1);
        return add(bi, mul(alpha.to(x.dtype()).to(x.device()), sub(xi, bi)));
      },
      [&](const Tensor& batch, const std::vector<Span>& spans) {
        return to_map(input_gradient("integrated_gradients", model, batch, span_classes(c, spans)));
      },
      [&](int64_t i, int64_t, int64_t, const Tensor& out) {
        accumulate(gsum, i * plane, sum(out, {0}), 1.0 / double(opt.steps));
      });
  // attribution = (x - x') * mean gradient, per element.
  const Tensor diff = to_map(sub(x.detach(), base));
  const float* d = diff.data<float>();
  for (size_t k = 0; k < gsum.size(); ++k) gsum[k] *= double(d[k]);
  Tensor attr = from_doubles(gsum, {n, ch, h, w});
  return opt.per_channel ? attr : sum(attr, {1}).contiguous();
}

// ---------------------------------------------------------------- layer maps
namespace {
constexpr double kPlusPlusEps = 1e-7;
}  // namespace

Tensor gradcam_raw(const nn::Model& model, const Tensor& x, const Options& opt, bool pp) {
  const char* who = pp ? "gradcam_pp" : "gradcam";
  check_images(who, x);
  Tensor c = classes_for(who, model, x, opt);
  Activation r = run_with_capture(who, model, x, opt.layer);
  Tensor s = class_score(who, r.logits, c);
  const Tensor g = to_map(grad({s}, {r.act})[0]), a = to_map(r.act);
  const int64_t n = a.size(0), k = a.size(1), hw = a.size(2) * a.size(3);
  const float *pa = a.data<float>(), *pg = g.data<float>();
  Tensor cam = zeros({n, a.size(2), a.size(3)});
  float* pc = cam.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> m(size_t(hw), 0.0);
    for (int64_t ch = 0; ch < k; ++ch) {
      const float* A = pa + (i * k + ch) * hw;
      const float* G = pg + (i * k + ch) * hw;
      double alpha = 0;
      if (!pp) {
        for (int64_t j = 0; j < hw; ++j) alpha += G[j];
        alpha /= double(hw);
      } else {
        double sum_a = 0;
        for (int64_t j = 0; j < hw; ++j) sum_a += A[j];
        for (int64_t j = 0; j < hw; ++j) {
          // kPlusPlusEps keeps the denominator off zero: with activations taken before a ReLU,
          // sum_a can be negative and 2 G^2 + sum_a G^3 can cross 0.
          const double g1 = G[j], g2 = g1 * g1, g3 = g2 * g1,
                       den = 2 * g2 + sum_a * g3 + kPlusPlusEps;
          if (g1 > 0) alpha += g1 * (g2 / den);  // relu(G) a, with a = 0 at G = 0
        }
      }
      for (int64_t j = 0; j < hw; ++j) m[size_t(j)] += alpha * A[j];
    }
    for (int64_t j = 0; j < hw; ++j) pc[i * hw + j] = float(std::max(m[size_t(j)], 0.0));
  }
  return cam;
}

Tensor gradcam(const nn::Model& model, const Tensor& x, const Options& opt) {
  check_images("gradcam", x);
  return upsample_maps(gradcam_raw(model, x, opt, false), x.size(2), x.size(3));
}

Tensor gradcam_pp(const nn::Model& model, const Tensor& x, const Options& opt) {
  check_images("gradcam_pp", x);
  return upsample_maps(gradcam_raw(model, x, opt, true), x.size(2), x.size(3));
}

Tensor guided_gradcam(const nn::Model& model, const Tensor& x, const Options& opt) {
  check_images("guided_gradcam", x);
  Options o = opt;
  o.classes = classes_for("guided_gradcam", model, x, opt);  // one prediction for both maps
  o.per_channel = false;
  const Tensor gb = guided_backprop(model, x, o), gc = gradcam(model, x, o);
  NoGradGuard ng;
  return mul(gb, gc).contiguous();
}

Tensor cam(const nn::Model& model, const Tensor& x, const Options& opt) {
  check_images("cam", x);
  Tensor c = classes_for("cam", model, x, opt);
  nn::Module& net = model.require_module("explain::cam");
  auto* fc = dynamic_cast<nn::Linear*>(&net.submodule(opt.fc));
  NABLA_CHECK(fc != nullptr, "explain::cam: module '", opt.fc, "' must be a Linear (the layer ",
              "after global average pooling), it is ", net.submodule(opt.fc).type_name());
  Activation r = run_with_capture("cam", model, x, opt.layer);
  NoGradGuard ng;
  NABLA_CHECK(fc->in_features == r.act.size(1), "explain::cam: '", opt.fc, "' takes ",
              fc->in_features, " features but '", opt.layer, "' outputs ", shape_str(r.act.shape()),
              ": CAM needs a model that ends in global average pooling then a Linear");
  // CAM is only meaningful when the logits are fc(GAP(A)); check it rather than assume it.
  Tensor direct = linear(global_avg_pool2d(r.act), fc->weight, fc->bias);
  const Tensor d = to_map(abs(sub(direct, r.logits))), l = to_map(abs(r.logits));
  const float dmax = *std::max_element(d.data<float>(), d.data<float>() + d.numel());
  const float lmax = *std::max_element(l.data<float>(), l.data<float>() + l.numel());
  NABLA_CHECK(dmax <= 1e-4f * (1.0f + lmax), "explain::cam: the model's logits are not ", opt.fc,
              "(global_avg_pool(", opt.layer, ")) (they differ by ", dmax,
              "): CAM needs a model that ends in global average pooling then a Linear");
  // w_c [N, K]: the fc row of each sample's class, picked by a one-hot product.
  Tensor wc = matmul(one_hot("cam", c, r.logits), fc->weight);
  Tensor m = sum(mul(r.act, wc.reshape({x.size(0), r.act.size(1), 1, 1})), {1});
  return upsample_maps(to_map(m), x.size(2), x.size(3));
}

// ---------------------------------------------------------------- occlusion
Tensor occlusion(const nn::Model& model, const Tensor& x, const Options& opt) {
  check_images("occlusion", x);
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3), p = opt.patch, st = opt.stride;
  NABLA_CHECK(p >= 1 && p <= std::min(h, w) && st >= 1,
              "explain::occlusion: needs 1 <= patch <= ", "min(H, W) and stride >= 1; got patch ",
              p, ", stride ", st, " for images ", shape_str(x.shape()));
  Tensor c = classes_for("occlusion", model, x, opt);
  // Top-left corners along one axis: 0, st, 2 st, ..., and the last one flush with the border.
  auto corners = [&](int64_t size) {
    std::vector<int64_t> v;
    for (int64_t k = 0; k + p <= size; k += st) v.push_back(k);
    if (v.back() != size - p) v.push_back(size - p);
    return v;
  };
  const std::vector<int64_t> ys = corners(h), xs = corners(w);
  const int64_t places = int64_t(ys.size() * xs.size());
  // Placements [a, b) as masks [b - a, 1, H, W] on x's device, 1 on each square; the occluded
  // copies are x (1 - mask) + fill mask. Built per chunk, so memory stays within max_batch rows.
  auto masks = [&](int64_t a, int64_t b) {
    Tensor m = zeros({b - a, 1, h, w}, DType::Float64);
    for (int64_t q = a; q < b; ++q) {
      double* mq = m.data<double>() + (q - a) * h * w;
      const int64_t y0 = ys[size_t(q) / xs.size()], x0 = xs[size_t(q) % xs.size()];
      for (int64_t r = y0; r < y0 + p; ++r)
        for (int64_t k = x0; k < x0 + p; ++k) mq[r * w + k] = 1;
    }
    return m.to(x.dtype()).to(x.device());
  };
  NoGradGuard ng;
  auto scores = [&](const Tensor& logits, const Tensor& cls) {
    Tensor s = opt.occlusion_probability ? softmax(logits, 1) : logits;
    return to_map(sum(mul(s, one_hot("occlusion", cls, logits)), {1}));  // [rows]
  };
  const Tensor base = scores(model(x), c);
  std::vector<double> acc(size_t(n * h * w), 0.0);
  chunked(
      n, places, opt.max_batch,
      [&](int64_t i, int64_t a, int64_t b) {
        const Tensor m = masks(a, b);
        return add(mul(x.slice(i, i + 1), rsub(1.0, m)), mul(m, opt.fill));
      },
      [&](const Tensor& batch, const std::vector<Span>& spans) {
        return scores(model(batch), span_classes(c, spans));
      },
      [&](int64_t i, int64_t a, int64_t b, const Tensor& out) {
        const float s0 = base.data<float>()[i];
        for (int64_t q = a; q < b; ++q) {
          const double d = double(s0) - double(out.data<float>()[q - a]);
          const int64_t y0 = ys[size_t(q) / xs.size()], x0 = xs[size_t(q) % xs.size()];
          for (int64_t r = y0; r < y0 + p; ++r)
            for (int64_t k = x0; k < x0 + p; ++k) acc[size_t((i * h + r) * w + k)] += d;
        }
      });
  // Divide by how many placements cover each pixel (the same for every image).
  std::vector<double> cover(size_t(h * w), 0.0);
  for (int64_t y0 : ys)
    for (int64_t x0 : xs)
      for (int64_t r = y0; r < y0 + p; ++r)
        for (int64_t k = x0; k < x0 + p; ++k) cover[size_t(r * w + k)] += 1;
  for (size_t k = 0; k < acc.size(); ++k) acc[k] /= cover[k % cover.size()];
  return from_doubles(acc, {n, h, w});
}

// ---------------------------------------------------------------- synthesis
namespace {

// The dtype the model computes in: that of its module's first parameter (float32 when it has
// none, or when the model is a plain callable).
DType model_dtype(const nn::Model& model) {
  if (model.module() == nullptr) return DType::Float32;
  const std::vector<Tensor> p = model.module()->parameters();
  return p.empty() ? DType::Float32 : p[0].dtype();
}

// I <- I + lr (dJ/dI - 2 lambda I), `iterations` times; objective(I) returns J summed over the
// batch (each image's J depends on that image only).
Tensor ascend(Tensor img, const Options& opt,
              const std::function<Tensor(const Tensor&)>& objective) {
  NABLA_CHECK(opt.iterations >= 1 && opt.lr > 0 && opt.lambda >= 0, "explain: gradient ascent ",
              "needs iterations >= 1, lr > 0, lambda >= 0; got ", opt.iterations, ", ", opt.lr,
              ", ", opt.lambda);
  check_grad_mode("gradient ascent");
  for (int64_t t = 0; t < opt.iterations; ++t) {
    Tensor il = img.detach();
    il.set_requires_grad(true);
    Tensor g = grad({objective(il)}, {il})[0];
    NoGradGuard ng;
    img = add(img, mul(sub(g, mul(img, 2 * opt.lambda)), opt.lr));
  }
  return to_map(img);
}

}  // namespace

Tensor class_model(const nn::Model& model, const Tensor& classes, const Shape& input_shape,
                   const Options& opt, Device dev) {
  NABLA_CHECK(classes.defined() && classes.dtype() == DType::Int64 && classes.dim() == 1 &&
                  classes.size(0) >= 1 && input_shape.size() == 3,
              "explain::class_model: needs classes int64 [K] (K >= 1) and an input shape ",
              "[C, H, W]; got ", classes.defined() ? classes.str() : std::string("no classes"),
              " and ", shape_str(input_shape));
  const Tensor c = classes.to(Device::cpu()).contiguous();
  Shape s{c.size(0)};
  s.insert(s.end(), input_shape.begin(), input_shape.end());
  return ascend(zeros(s, model_dtype(model), dev), opt,
                [&](const Tensor& i) { return class_score("class_model", model(i), c); });
}

Tensor activation_max(const nn::Model& model, const Shape& input_shape, const Options& opt,
                      Device dev) {
  NABLA_CHECK(input_shape.size() == 3, "explain::activation_max: needs an input shape [C, H, W], ",
              "got ", shape_str(input_shape));
  NABLA_CHECK(!opt.layer.empty(), "explain::activation_max: needs a layer (the dotted module ",
              "name, such as conv2)");
  nn::Module& m = model.require_module("explain::activation_max").submodule(opt.layer);
  Shape s{1};
  s.insert(s.end(), input_shape.begin(), input_shape.end());
  Generator gen(opt.seed);
  Tensor start = randn(s, model_dtype(model), dev, &gen, 0, 0.01);
  return ascend(start, opt, [&](const Tensor& i) {
    Tensor act;
    nn::ForwardHookGuard hook(m, [&](nn::Module&, const Tensor&, const Tensor& out) {
      act = out;
      return std::optional<Tensor>();
    });
    model(i);
    NABLA_CHECK(act.defined() && act.dim() == 4, "explain::activation_max: module '", opt.layer,
                "' must be called by the forward and output [N, K, h, w]");
    NABLA_CHECK(opt.channel >= 0 && opt.channel < act.size(1), "explain::activation_max: channel ",
                opt.channel, " is outside [0, ", act.size(1), ") of '", opt.layer, "' output ",
                shape_str(act.shape()));
    return mean(act.narrow(1, opt.channel, 1));
  });
}

// ---------------------------------------------------------------- dense outputs
Tensor dense_saliency(const nn::Model& model, const Tensor& x, const Tensor& target,
                      const Tensor& region, bool per_channel) {
  check_images("dense_saliency", x);
  check_grad_mode("dense_saliency");
  Tensor xl = x.detach();
  xl.set_requires_grad(true);
  Tensor logits = model(xl);
  NABLA_CHECK(logits.dim() == 4 && logits.size(0) == x.size(0) && target.defined() &&
                  target.dtype() == DType::Int64 && target.dim() == 3 &&
                  target.size(0) == logits.size(0) && target.size(1) == logits.size(2) &&
                  target.size(2) == logits.size(3),
              "explain::dense_saliency: needs logits [N, K, H, W] and an int64 target [N, H, W]; ",
              "got logits ", shape_str(logits.shape()), " and target ",
              target.defined() ? target.str() : std::string("undefined"));
  const int64_t n = x.size(0);
  const Shape pix{n, logits.size(2), logits.size(3)};
  Tensor weight;  // per pixel: 1 / (counted pixels of its image), 0 where not counted
  {
    Tensor r = region.defined() ? region.to(Device::cpu()).to(DType::Float64).contiguous()
                                : ones(pix, DType::Float64);
    NABLA_CHECK(r.shape() == pix,
                "explain::dense_saliency: the region must be [N, H, W] = ", shape_str(pix),
                ", got ", shape_str(r.shape()));
    const int64_t plane = pix[1] * pix[2];
    for (int64_t i = 0; i < n; ++i) {
      double* p = r.data<double>() + i * plane;
      int64_t count = 0;
      for (int64_t k = 0; k < plane; ++k) count += p[k] != 0;
      NABLA_CHECK(count > 0, "explain::dense_saliency: the region of image ", i,
                  " selects no pixel");
      for (int64_t k = 0; k < plane; ++k) p[k] = p[k] != 0 ? 1.0 / double(count) : 0.0;
    }
    weight = r.to(logits.dtype()).to(logits.device());
  }
  // l = sum_n mean over image n's counted pixels of CE: each image gets its own l_seg gradient.
  Tensor loss = sum(
      mul(cross_entropy(logits, target.to(logits.device()), Tensor(), Reduction::None), weight));
  return abs_map(grad({loss}, {xl})[0], per_channel);
}

// ---------------------------------------------------------------- dispatch
const std::vector<std::string>& method_names() {
  static const std::vector<std::string> names{"saliency",
                                              "smoothgrad",
                                              "integrated-gradients",
                                              "gradcam",
                                              "gradcam++",
                                              "guided-backprop",
                                              "guided-gradcam",
                                              "deconvnet",
                                              "occlusion",
                                              "cam"};
  return names;
}

Tensor explain(const std::string& method, const nn::Model& model, const Tensor& x,
               const Options& opt) {
  using Fn = Tensor (*)(const nn::Model&, const Tensor&, const Options&);
  static const std::map<std::string, Fn> table{{"saliency", saliency},
                                               {"smoothgrad", smoothgrad},
                                               {"integrated-gradients", integrated_gradients},
                                               {"gradcam", gradcam},
                                               {"gradcam++", gradcam_pp},
                                               {"guided-backprop", guided_backprop},
                                               {"guided-gradcam", guided_gradcam},
                                               {"deconvnet", deconvnet},
                                               {"occlusion", occlusion},
                                               {"cam", cam}};
  auto it = table.find(method);
  if (it == table.end()) {
    std::string known;
    for (const auto& m : method_names()) known += (known.empty() ? "" : ", ") + m;
    throw Error("explain: unknown method '" + method + "' (known: " + known + ")");
  }
  return it->second(model, x, opt);
}

}  // namespace nabla::explain
