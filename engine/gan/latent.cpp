// Priors and 2-D latent pictures (see latent.h).
#include <nabla/gan/latent.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include <nabla/error.h>
#include <nabla/io/image.h>
#include <nabla/io/plot.h>

namespace nabla::gan {

const char* prior_name(Prior p) {
  switch (p) {
    case Prior::Gaussian:
      return "gaussian";
    case Prior::Mixture10:
      return "mixture10";
    case Prior::SwissRoll:
      return "swissroll";
  }
  return "?";
}

std::vector<std::string> prior_names() {
  return {"gaussian", "mixture10", "swissroll"};
}

Prior prior_from_name(const std::string& name) {
  for (Prior p : {Prior::Gaussian, Prior::Mixture10, Prior::SwissRoll})
    if (name == prior_name(p)) return p;
  throw Error("prior '" + name + "': expected gaussian, mixture10 or swissroll");
}

Tensor sample_prior(Prior p, int64_t n, int64_t d, Generator& gen, const Tensor& labels) {
  NABLA_CHECK(n >= 1 && d >= 1, "sample_prior(", prior_name(p), "): n ", n, " and d ", d,
              " must be >= 1");
  NABLA_CHECK(p == Prior::Gaussian || d == 2, "sample_prior(", prior_name(p),
              "): the prior is 2-d, the latent has d = ", d);
  if (p == Prior::Gaussian) {
    NABLA_CHECK(!labels.defined(),
                "sample_prior(gaussian): the Gaussian has no components to "
                "pick with labels");
    return randn({n, d}, DType::Float32, Device::cpu(), &gen);
  }
  std::vector<int64_t> k;
  if (labels.defined()) {
    NABLA_CHECK(labels.dtype() == DType::Int64 && labels.dim() == 1 && labels.size(0) == n,
                "sample_prior(", prior_name(p), "): labels ", shape_str(labels.shape()),
                " must be int64 [", n, "]");
    k = labels.to(Device::cpu()).contiguous().to_vector<int64_t>();
    for (size_t i = 0; i < k.size(); ++i)
      NABLA_CHECK(k[i] >= 0 && k[i] < kPriorClasses, "sample_prior(", prior_name(p), "): label ",
                  k[i], " at position ", i, " is outside [0, ", kPriorClasses, ")");
  } else {
    k = randint(0, kPriorClasses, {n}, &gen).to_vector<int64_t>();
  }
  std::vector<float> out(size_t(n) * 2);
  const double two_pi = 2 * std::numbers::pi;
  if (p == Prior::Mixture10) {
    const std::vector<double> e =
        randn({n, 2}, DType::Float64, Device::cpu(), &gen).to_vector<double>();
    for (int64_t i = 0; i < n; ++i) {
      const double a = 1.4 + 0.5 * e[size_t(2 * i)], b = 0.05 * e[size_t(2 * i + 1)];
      const double t = two_pi * double(k[size_t(i)]) / double(kPriorClasses);
      out[size_t(2 * i)] = float(a * std::cos(t) - b * std::sin(t));
      out[size_t(2 * i + 1)] = float(a * std::sin(t) + b * std::cos(t));
    }
  } else {
    const std::vector<double> v =
        rand({n}, DType::Float64, Device::cpu(), &gen).to_vector<double>();
    for (int64_t i = 0; i < n; ++i) {
      const double u = (double(k[size_t(i)]) + v[size_t(i)]) / double(kPriorClasses);
      const double s = std::sqrt(u), r = 3 * s, t = 2 * two_pi * s;
      out[size_t(2 * i)] = float(r * std::cos(t));
      out[size_t(2 * i + 1)] = float(r * std::sin(t));
    }
  }
  return from_vector(out, {n, 2});
}

LatentBox latent_box(const Tensor& points, double q) {
  NABLA_CHECK(points.defined() && points.dim() == 2 && points.size(1) == 2 && points.size(0) >= 1 &&
                  is_floating(points.dtype()) && q >= 0 && q < 0.5,
              "latent_box: points ", points.defined() ? shape_str(points.shape()) : "undefined",
              " must be float [N >= 1, 2] and q = ", q, " in [0, 0.5)");
  const std::vector<double> v =
      points.to(Device::cpu()).to(DType::Float64).contiguous().to_vector<double>();
  const size_t n = v.size() / 2;
  double lo[2], hi[2];
  for (int a = 0; a < 2; ++a) {
    std::vector<double> c(n);
    for (size_t i = 0; i < n; ++i) c[i] = v[2 * i + size_t(a)];
    std::sort(c.begin(), c.end());
    lo[a] = c[size_t(std::floor(q * double(n - 1)))];
    hi[a] = c[size_t(std::ceil((1 - q) * double(n - 1)))];
    if (!(hi[a] > lo[a])) {
      lo[a] -= 1;
      hi[a] += 1;
    }
    const double pad = 0.05 * (hi[a] - lo[a]);
    lo[a] -= pad;
    hi[a] += pad;
  }
  return {lo[0], hi[0], lo[1], hi[1]};
}

Tensor latent_grid(const LatentBox& box, int64_t n) {
  NABLA_CHECK(n >= 2, "latent_grid: n ", n, " must be >= 2");
  std::vector<float> g(size_t(n * n) * 2);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < n; ++c) {
      const size_t i = size_t(r * n + c);
      g[2 * i] = float(box.x0 + (box.x1 - box.x0) * double(c) / double(n - 1));
      g[2 * i + 1] = float(box.y1 - (box.y1 - box.y0) * double(r) / double(n - 1));
    }
  return from_vector(g, {n * n, 2});
}

namespace {

std::vector<double> host_points(const Tensor& t, const char* what, const std::string& path) {
  NABLA_CHECK(t.dim() == 2 && t.size(1) == 2 && is_floating(t.dtype()), "save_latent_scatter(",
              path, "): ", what, " ", shape_str(t.shape()), " must be float [N, 2]");
  return t.to(Device::cpu()).to(DType::Float64).contiguous().to_vector<double>();
}

}  // namespace

void save_latent_scatter(const std::string& path, const Tensor& codes, const Tensor& labels,
                         const std::vector<std::string>& class_names, const Tensor& background,
                         const LatentBox& box, const std::string& title) {
  const std::vector<double> z = host_points(codes, "codes", path);
  NABLA_CHECK(labels.defined() && labels.dtype() == DType::Int64 && labels.dim() == 1 &&
                  labels.size(0) == codes.size(0),
              "save_latent_scatter(", path, "): labels ",
              labels.defined() ? shape_str(labels.shape()) : "undefined", " must be int64 [",
              codes.size(0), "]");
  const std::vector<int64_t> y = labels.to(Device::cpu()).contiguous().to_vector<int64_t>();
  for (size_t i = 0; i < y.size(); ++i)
    NABLA_CHECK(y[i] >= 0 && y[i] < int64_t(class_names.size()), "save_latent_scatter(", path,
                "): label ", y[i], " at position ", i, " has no class name (", class_names.size(),
                " given)");
  const std::vector<double> bg =
      background.defined() ? host_points(background, "background", path) : std::vector<double>();

  // A square view: both axes span the larger of the box's two sides, centred on the box.
  const double side = std::max(box.x1 - box.x0, box.y1 - box.y0);
  const double cx = 0.5 * (box.x0 + box.x1), cy = 0.5 * (box.y0 + box.y1);
  const io::Ticks tx = io::nice_ticks(cx - side / 2, cx + side / 2, 7);
  const io::Ticks ty = io::nice_ticks(cy - side / 2, cy + side / 2, 7);
  const double span = std::max(tx.last - tx.first, ty.last - ty.first);
  const double x0 = tx.first, y0 = ty.first;

  constexpr int kLeft = 56, kTop = 34, kPlot = 440, kLegend = 150;
  io::Canvas cv(kLeft + kPlot + 20 + kLegend, kTop + kPlot + 46);
  auto px = [&](double v) { return kLeft + int(std::lround((v - x0) / span * kPlot)); };
  auto py = [&](double v) { return kTop + kPlot - int(std::lround((v - y0) / span * kPlot)); };
  auto inside = [&](double a, double b) {
    return a >= x0 && a <= x0 + span && b >= y0 && b <= y0 + span;
  };
  cv.text(kLeft, 10, title, io::kBlack, 1);
  // Grid and tick labels.
  for (double v = tx.first; v <= x0 + span + 1e-9 * span; v += tx.step) {
    cv.line(px(v), kTop, px(v), kTop + kPlot, io::Rgb{235, 235, 235});
    const std::string s = io::format_tick(v, tx.decimals);
    cv.text(px(v) - io::Canvas::text_width(s) / 2, kTop + kPlot + 6, s, io::kBlack);
  }
  for (double v = ty.first; v <= y0 + span + 1e-9 * span; v += ty.step) {
    cv.line(kLeft, py(v), kLeft + kPlot, py(v), io::Rgb{235, 235, 235});
    const std::string s = io::format_tick(v, ty.decimals);
    cv.text(kLeft - 6 - io::Canvas::text_width(s), py(v) - 3, s, io::kBlack);
  }
  cv.rect(kLeft, kTop, kPlot + 1, kPlot + 1, io::kGray);
  cv.text(kLeft + kPlot / 2 - 6, kTop + kPlot + 22, "z1", io::kBlack);
  cv.text_vertical(12, kTop + kPlot / 2 - 6, "z2", io::kBlack);

  for (size_t i = 0; i + 1 < bg.size(); i += 2)
    if (inside(bg[i], bg[i + 1])) cv.set_pixel(px(bg[i]), py(bg[i + 1]), io::Rgb{200, 200, 200});
  for (size_t i = 0; i < y.size(); ++i)
    if (inside(z[2 * i], z[2 * i + 1]))
      cv.fill_circle(px(z[2 * i]), py(z[2 * i + 1]), 1, io::palette_color(size_t(y[i])));

  const int lx = kLeft + kPlot + 20;
  for (size_t k = 0; k < class_names.size(); ++k) {
    const int ly = kTop + 6 + int(k) * 16;
    cv.fill_circle(lx + 4, ly + 3, 3, io::palette_color(k));
    cv.text(lx + 12, ly, std::to_string(k) + " " + class_names[k], io::kBlack);
  }
  if (!bg.empty()) {
    const int ly = kTop + 6 + int(class_names.size()) * 16 + 6;
    cv.fill_circle(lx + 4, ly + 3, 3, io::Rgb{200, 200, 200});
    cv.text(lx + 12, ly, "prior samples", io::kBlack);
  }
  cv.save_png(path);
}

}  // namespace nabla::gan
