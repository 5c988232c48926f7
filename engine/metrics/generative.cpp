// Metrics of generated samples (see generative.h).
#include <nabla/metrics/generative.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include <nabla/error.h>

namespace nabla::metrics {

namespace {

struct Rows {
  int64_t n = 0, d = 0;
  std::vector<double> v;  // row-major [n, d]
  const double* row(int64_t i) const { return v.data() + i * d; }
};

Rows rows(const Tensor& t, const char* fn, const char* what, int64_t min_rows) {
  NABLA_CHECK(t.defined() && t.dim() == 2 && t.size(0) >= min_rows && t.size(1) >= 1 &&
                  is_floating(t.dtype()),
              fn, ": ", what, " ", t.defined() ? shape_str(t.shape()) : "undefined",
              " must be a float [n, d] with n >= ", min_rows);
  Rows r;
  r.n = t.size(0);
  r.d = t.size(1);
  r.v = t.to(Device::cpu()).to(DType::Float64).contiguous().to_vector<double>();
  return r;
}

void same_dim(const Rows& a, const Rows& b, const char* fn) {
  NABLA_CHECK(a.d == b.d, fn, ": the sets have ", a.d, " and ", b.d, " features per sample ([", a.n,
              ", ", a.d, "] and [", b.n, ", ", b.d, "])");
}

// Sample mean and covariance (divisor n - 1).
void mean_cov(const Rows& x, std::vector<double>& mu, std::vector<double>& cov) {
  const int64_t n = x.n, d = x.d;
  mu.assign(size_t(d), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) mu[size_t(j)] += x.row(i)[j];
  for (double& m : mu) m /= double(n);
  cov.assign(size_t(d * d), 0.0);
  std::vector<double> c(static_cast<size_t>(d));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) c[size_t(j)] = x.row(i)[j] - mu[size_t(j)];
    for (int64_t p = 0; p < d; ++p)
      for (int64_t q = p; q < d; ++q) cov[size_t(p * d + q)] += c[size_t(p)] * c[size_t(q)];
  }
  for (int64_t p = 0; p < d; ++p)
    for (int64_t q = p; q < d; ++q) {
      cov[size_t(p * d + q)] /= double(n - 1);
      cov[size_t(q * d + p)] = cov[size_t(p * d + q)];
    }
}

double sq_dist(const double* a, const double* b, int64_t d) {
  double s = 0;
  for (int64_t j = 0; j < d; ++j) s += (a[j] - b[j]) * (a[j] - b[j]);
  return s;
}

// The squared radius of each point's ball: the k-th smallest squared distance to another point.
std::vector<double> knn_radii(const Rows& x, int64_t k) {
  std::vector<double> r(static_cast<size_t>(x.n)), dist(static_cast<size_t>(x.n - 1));
#pragma omp parallel for firstprivate(dist) schedule(static)
  for (int64_t i = 0; i < x.n; ++i) {
    size_t m = 0;
    for (int64_t j = 0; j < x.n; ++j)
      if (j != i) dist[m++] = sq_dist(x.row(i), x.row(j), x.d);
    std::nth_element(dist.begin(), dist.begin() + (k - 1), dist.end());
    r[size_t(i)] = dist[size_t(k - 1)];
  }
  return r;
}

// The fraction of points of q inside at least one ball of (centres, squared radii).
double fraction_inside(const Rows& q, const Rows& centres, const std::vector<double>& radii) {
  int64_t inside = 0;
#pragma omp parallel for reduction(+ : inside) schedule(static)
  for (int64_t i = 0; i < q.n; ++i)
    for (int64_t j = 0; j < centres.n; ++j)
      if (sq_dist(q.row(i), centres.row(j), q.d) <= radii[size_t(j)]) {
        ++inside;
        break;
      }
  return double(inside) / double(q.n);
}

}  // namespace

std::vector<double> symmetric_eigen(std::vector<double> a, int64_t n,
                                    std::vector<double>* vectors) {
  NABLA_CHECK(n >= 1 && int64_t(a.size()) == n * n, "symmetric_eigen: ", a.size(),
              " values for an ", n, " x ", n, " matrix");
  std::vector<double> v;
  if (vectors) {
    v.assign(size_t(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i) v[size_t(i * n + i)] = 1.0;
  }
  auto A = [&](int64_t i, int64_t j) -> double& { return a[size_t(i * n + j)]; };
  // Cyclic Jacobi: rotate away each off-diagonal element in turn until the off-diagonal mass is
  // negligible against the diagonal (quadratic convergence; a handful of sweeps for n = 128).
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0, diag = 0;
    for (int64_t i = 0; i < n; ++i) {
      diag += A(i, i) * A(i, i);
      for (int64_t j = i + 1; j < n; ++j) off += A(i, j) * A(i, j);
    }
    if (off <= 1e-30 * std::max(diag, 1e-300)) break;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        const double apq = A(p, q);
        if (apq == 0) continue;
        const double theta = (A(q, q) - A(p, p)) / (2 * apq);
        const double t =
            (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int64_t k = 0; k < n; ++k) {  // columns p and q
          const double akp = A(k, p), akq = A(k, q);
          A(k, p) = c * akp - s * akq;
          A(k, q) = s * akp + c * akq;
        }
        for (int64_t k = 0; k < n; ++k) {  // rows p and q
          const double apk = A(p, k), aqk = A(q, k);
          A(p, k) = c * apk - s * aqk;
          A(q, k) = s * apk + c * aqk;
        }
        if (vectors)
          for (int64_t k = 0; k < n; ++k) {
            const double vkp = v[size_t(k * n + p)], vkq = v[size_t(k * n + q)];
            v[size_t(k * n + p)] = c * vkp - s * vkq;
            v[size_t(k * n + q)] = s * vkp + c * vkq;
          }
      }
  }
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return A(x, x) < A(y, y); });
  std::vector<double> w(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) w[size_t(i)] = A(order[size_t(i)], order[size_t(i)]);
  if (vectors) {
    vectors->assign(size_t(n * n), 0.0);
    for (int64_t k = 0; k < n; ++k)
      for (int64_t i = 0; i < n; ++i)
        (*vectors)[size_t(k * n + i)] = v[size_t(k * n + order[size_t(i)])];
  }
  return w;
}

double frechet_distance(const Tensor& a_t, const Tensor& b_t) {
  const Rows a = rows(a_t, "frechet_distance", "a", 2), b = rows(b_t, "frechet_distance", "b", 2);
  same_dim(a, b, "frechet_distance");
  const int64_t d = a.d;
  std::vector<double> mu_a, mu_b, sa, sb;
  mean_cov(a, mu_a, sa);
  mean_cov(b, mu_b, sb);
  double fd = 0;
  for (int64_t j = 0; j < d; ++j)
    fd += (mu_a[size_t(j)] - mu_b[size_t(j)]) * (mu_a[size_t(j)] - mu_b[size_t(j)]);
  for (int64_t j = 0; j < d; ++j) fd += sa[size_t(j * d + j)] + sb[size_t(j * d + j)];
  // S_A^(1/2) = V diag(sqrt(max(w, 0))) V^T.
  std::vector<double> V;
  std::vector<double> w = symmetric_eigen(sa, d, &V);
  std::vector<double> root(size_t(d * d), 0.0);
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < d; ++j) {
      double s = 0;
      for (int64_t k = 0; k < d; ++k)
        s += V[size_t(i * d + k)] * std::sqrt(std::max(w[size_t(k)], 0.0)) * V[size_t(j * d + k)];
      root[size_t(i * d + j)] = s;
    }
  // M = root S_B root.
  std::vector<double> tmp(size_t(d * d), 0.0), m(size_t(d * d), 0.0);
  for (int64_t i = 0; i < d; ++i)
    for (int64_t k = 0; k < d; ++k) {
      const double r = root[size_t(i * d + k)];
      for (int64_t j = 0; j < d; ++j) tmp[size_t(i * d + j)] += r * sb[size_t(k * d + j)];
    }
  for (int64_t i = 0; i < d; ++i)
    for (int64_t k = 0; k < d; ++k) {
      const double t = tmp[size_t(i * d + k)];
      for (int64_t j = 0; j < d; ++j) m[size_t(i * d + j)] += t * root[size_t(k * d + j)];
    }
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = i + 1; j < d; ++j) {  // symmetrise away rounding
      const double s = 0.5 * (m[size_t(i * d + j)] + m[size_t(j * d + i)]);
      m[size_t(i * d + j)] = m[size_t(j * d + i)] = s;
    }
  double tr = 0;
  for (double lambda : symmetric_eigen(m, d)) tr += std::sqrt(std::max(lambda, 0.0));
  return fd - 2 * tr;
}

double kid(const Tensor& a_t, const Tensor& b_t) {
  const Rows a = rows(a_t, "kid", "a", 2), b = rows(b_t, "kid", "b", 2);
  same_dim(a, b, "kid");
  const double inv_d = 1.0 / double(a.d);
  auto k = [&](const double* x, const double* y) {
    double dot = 0;
    for (int64_t j = 0; j < a.d; ++j) dot += x[j] * y[j];
    const double v = dot * inv_d + 1;
    return v * v * v;
  };
  // Each row's sum is formed by one thread, then the rows are added in order: the same bits
  // for any thread count and schedule (an OpenMP reduction adds its partial sums in no fixed
  // order).
  auto in_order = [](const std::vector<double>& v) {
    double s = 0;
    for (double e : v) s += e;
    return s;
  };
  auto within = [&](const Rows& x) {
    std::vector<double> row(size_t(x.n), 0.0);
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t i = 0; i < x.n; ++i) {
      double s = 0;
      for (int64_t j = i + 1; j < x.n; ++j) s += 2 * k(x.row(i), x.row(j));
      row[size_t(i)] = s;
    }
    return in_order(row) / (double(x.n) * double(x.n - 1));
  };
  std::vector<double> row(size_t(a.n), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < a.n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < b.n; ++j) s += k(a.row(i), b.row(j));
    row[size_t(i)] = s;
  }
  return within(a) + within(b) - 2 * in_order(row) / (double(a.n) * double(b.n));
}

PrecisionRecall precision_recall(const Tensor& real_t, const Tensor& gen_t, int64_t k) {
  NABLA_CHECK(k >= 1, "precision_recall: k = ", k, " must be >= 1");
  const Rows r = rows(real_t, "precision_recall", "real", k + 1);
  const Rows g = rows(gen_t, "precision_recall", "generated", k + 1);
  same_dim(r, g, "precision_recall");
  PrecisionRecall pr;
  pr.precision = fraction_inside(g, r, knn_radii(r, k));
  pr.recall = fraction_inside(r, g, knn_radii(g, k));
  return pr;
}

Coverage class_coverage(const Tensor& probs, double threshold) {
  const Rows p = rows(probs, "class_coverage", "probs", 1);
  NABLA_CHECK(p.d >= 2 && threshold >= 0 && threshold <= 1, "class_coverage: probs ",
              shape_str(probs.shape()), " needs K >= 2 classes and threshold ", threshold,
              " in [0, 1]");
  const int64_t n = p.n, K = p.d;
  Coverage c;
  c.histogram.assign(size_t(K), 0);
  std::vector<double> marginal(size_t(K), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const double* row = p.row(i);
    c.histogram[size_t(std::max_element(row, row + K) - row)] += 1;
    for (int64_t y = 0; y < K; ++y) marginal[size_t(y)] += row[y] / double(n);
  }
  for (int64_t y = 0; y < K; ++y) {
    const double share = double(c.histogram[size_t(y)]) / double(n);
    if (c.histogram[size_t(y)] > 0 && share >= threshold / double(K)) ++c.classes_covered;
    if (share > 0) c.coverage_kl += share * std::log(share * double(K));
  }
  double mean_kl = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t y = 0; y < K; ++y) {
      const double q = p.row(i)[y];
      if (q > 0) mean_kl += q * (std::log(q) - std::log(marginal[size_t(y)])) / double(n);
    }
  c.classifier_score = std::exp(mean_kl);
  return c;
}

}  // namespace nabla::metrics
