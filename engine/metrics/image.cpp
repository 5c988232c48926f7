// L1, PSNR and SSIM per image (see image.h).
#include <nabla/metrics/image.h>

#include <cmath>
#include <limits>

#include <nabla/error.h>

namespace nabla::metrics {

namespace {

struct Pair {
  std::vector<double> x, y;
  int64_t n, c, h, w;
};

Pair host_pair(const char* fn, const Tensor& x, const Tensor& y) {
  NABLA_CHECK(x.defined() && y.defined() && x.dim() == 4 && x.shape() == y.shape() &&
                  is_floating(x.dtype()) && is_floating(y.dtype()) && x.numel() > 0,
              fn, ": x ", x.defined() ? shape_str(x.shape()) : "undefined", " and y ",
              y.defined() ? shape_str(y.shape()) : "undefined",
              " must be float [N, C, H, W] of the same shape");
  return {x.to(Device::cpu()).contiguous().to_vector<double>(),
          y.to(Device::cpu()).contiguous().to_vector<double>(),
          x.size(0),
          x.size(1),
          x.size(2),
          x.size(3)};
}

}  // namespace

std::vector<double> l1_per_image(const Tensor& x, const Tensor& y) {
  const Pair p = host_pair("l1_per_image", x, y);
  const int64_t m = p.c * p.h * p.w;
  std::vector<double> out(size_t(p.n));
  for (int64_t i = 0; i < p.n; ++i) {
    double s = 0;
    for (int64_t k = i * m; k < (i + 1) * m; ++k) s += std::abs(p.x[size_t(k)] - p.y[size_t(k)]);
    out[size_t(i)] = s / double(m);
  }
  return out;
}

std::vector<double> psnr(const Tensor& x, const Tensor& y, double data_range) {
  NABLA_CHECK(data_range > 0, "psnr: data_range ", data_range, " must be > 0");
  const Pair p = host_pair("psnr", x, y);
  const int64_t m = p.c * p.h * p.w;
  std::vector<double> out(size_t(p.n));
  for (int64_t i = 0; i < p.n; ++i) {
    double s = 0;
    for (int64_t k = i * m; k < (i + 1) * m; ++k) {
      const double d = p.x[size_t(k)] - p.y[size_t(k)];
      s += d * d;
    }
    const double mse = s / double(m);
    out[size_t(i)] = mse == 0 ? std::numeric_limits<double>::infinity()
                              : 10 * std::log10(data_range * data_range / mse);
  }
  return out;
}

std::vector<double> ssim(const Tensor& x, const Tensor& y, double data_range) {
  NABLA_CHECK(data_range > 0, "ssim: data_range ", data_range, " must be > 0");
  const Pair p = host_pair("ssim", x, y);
  constexpr int64_t kWin = 11;
  constexpr double kSigma = 1.5;
  NABLA_CHECK(p.h >= kWin && p.w >= kWin, "ssim: images ", shape_str(x.shape()),
              " are smaller than the 11x11 window");
  double g[kWin], gs = 0;
  for (int64_t k = 0; k < kWin; ++k) {
    const double d = double(k - kWin / 2);
    g[k] = std::exp(-d * d / (2 * kSigma * kSigma));
    gs += g[k];
  }
  for (double& v : g) v /= gs;
  const double c1 = (0.01 * data_range) * (0.01 * data_range);
  const double c2 = (0.03 * data_range) * (0.03 * data_range);
  const int64_t oh = p.h - kWin + 1, ow = p.w - kWin + 1;
  // The window is separable: filter the five fields along rows, then along columns.
  std::vector<double> rows(size_t(5 * p.h * ow));
  std::vector<double> out(size_t(p.n));
  for (int64_t i = 0; i < p.n; ++i) {
    double total = 0;
    for (int64_t ch = 0; ch < p.c; ++ch) {
      const double* a = p.x.data() + (i * p.c + ch) * p.h * p.w;
      const double* b = p.y.data() + (i * p.c + ch) * p.h * p.w;
      for (int64_t r = 0; r < p.h; ++r)
        for (int64_t q = 0; q < ow; ++q) {
          double s[5] = {0, 0, 0, 0, 0};
          for (int64_t k = 0; k < kWin; ++k) {
            const double u = a[r * p.w + q + k], v = b[r * p.w + q + k];
            s[0] += g[k] * u;
            s[1] += g[k] * v;
            s[2] += g[k] * u * u;
            s[3] += g[k] * v * v;
            s[4] += g[k] * u * v;
          }
          for (int j = 0; j < 5; ++j) rows[size_t((j * p.h + r) * ow + q)] = s[j];
        }
      double sum = 0;
      for (int64_t r = 0; r < oh; ++r)
        for (int64_t q = 0; q < ow; ++q) {
          double s[5] = {0, 0, 0, 0, 0};
          for (int j = 0; j < 5; ++j)
            for (int64_t k = 0; k < kWin; ++k)
              s[j] += g[k] * rows[size_t((j * p.h + r + k) * ow + q)];
          const double mu_a = s[0], mu_b = s[1];
          const double va = s[2] - mu_a * mu_a, vb = s[3] - mu_b * mu_b, cov = s[4] - mu_a * mu_b;
          sum += (2 * mu_a * mu_b + c1) * (2 * cov + c2) /
                 ((mu_a * mu_a + mu_b * mu_b + c1) * (va + vb + c2));
        }
      total += sum / double(oh * ow);
    }
    out[size_t(i)] = total / double(p.c);
  }
  return out;
}

}  // namespace nabla::metrics
