// CPU fused attack steps; kernels/attack.h gives the exact floating-point recipe that these
// loops follow and that the CUDA twins reproduce bit for bit.
#include "kernels/attack.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace nabla::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // below this, threads cost more than they save

// out[n] = sum over i < D of double(f(n, i))^2 in the documented order: chunks of
// kAttackNormChunk elements, each summed with fma in index order, then the chunk sums in chunk
// order. f is called exactly once per element, so it may also write that element.
template <typename F>
void chunked_sq_sums(int64_t N, int64_t D, double* out, F&& f) {
  const int64_t chunks = (D + kAttackNormChunk - 1) / kAttackNormChunk;
  std::vector<double> partial(size_t(N * chunks));
  // One thread per (sample, chunk): each partial is one sequential sum, so the result is the
  // same for any thread count, and batch 1 still splits across threads.
#pragma omp parallel for schedule(static) if (N * D > kParallelMin)
  for (int64_t k = 0; k < N * chunks; ++k) {
    const int64_t n = k / chunks, begin = (k % chunks) * kAttackNormChunk;
    const int64_t end = std::min(D, begin + kAttackNormChunk);
    double acc = 0;
    for (int64_t i = begin; i < end; ++i) {
      const double v = double(f(n, i));
      acc = std::fma(v, v, acc);
    }
    partial[size_t(k)] = acc;
  }
  for (int64_t n = 0; n < N; ++n) {
    double acc = 0;
    for (int64_t c = 0; c < chunks; ++c) acc += partial[size_t(n * chunks + c)];
    out[n] = acc;
  }
}
}  // namespace

template <typename T>
void attack_step_linf(const T* x, const T* g, const T* x0, T* y, int64_t n, T alpha, T eps, T lo,
                      T hi) {
  // One element per iteration, static chunks across threads.
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const T s = T((g[i] > T(0)) - (g[i] < T(0)));
    T t = x[i] + alpha * s;
    const T lower = x0[i] - eps, upper = x0[i] + eps;
    t = t < lower ? lower : t;
    t = t > upper ? upper : t;
    t = t < lo ? lo : t;
    t = t > hi ? hi : t;
    y[i] = t;
  }
}

template <typename T>
void attack_step_apgd_linf(const T* x, const T* xp, const T* g, const T* x0, const T* eta, T* y,
                           int64_t N, int64_t D, T a, T b, T eps, T lo, T hi) {
  // One element per iteration; (n, i) collapsed so that batch 1 splits across threads too.
#pragma omp parallel for collapse(2) schedule(static) if (N * D > kParallelMin)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < D; ++i) {
      const int64_t k = n * D + i;
      const T s = T((g[k] > T(0)) - (g[k] < T(0)));
      const T lower = x0[k] - eps, upper = x0[k] + eps;
      T z = x[k] + eta[n] * s;
      z = z < lower ? lower : z;
      z = z > upper ? upper : z;
      z = z < lo ? lo : z;
      z = z > hi ? hi : z;
      const T d1 = z - x[k], d2 = x[k] - xp[k];
      T t = std::fma(b, d2, std::fma(a, d1, x[k]));
      t = t < lower ? lower : t;
      t = t > upper ? upper : t;
      t = t < lo ? lo : t;
      t = t > hi ? hi : t;
      y[k] = t;
    }
}

template <typename T>
void attack_l2_sq_norms(const T* g, double* gsq, int64_t N, int64_t D) {
  chunked_sq_sums(N, D, gsq, [&](int64_t n, int64_t i) { return g[n * D + i]; });
}

template <typename T>
void attack_step_l2_delta(const T* x, const T* g, const T* x0, const double* gsq, double alpha,
                          T* u, double* dsq, int64_t N, int64_t D) {
  // Per-sample step sizes first, so the element loop does no division or sqrt.
  std::vector<T> a(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) a[size_t(n)] = gsq[n] > 0 ? T(alpha / std::sqrt(gsq[n])) : T(0);
  chunked_sq_sums(N, D, dsq, [&](int64_t n, int64_t i) {
    const int64_t k = n * D + i;
    const T v = std::fma(a[size_t(n)], g[k], x[k]);
    u[k] = v;
    return T(v - x0[k]);
  });
}

template <typename T>
void attack_step_l2_project(const T* x0, const double* dsq, double eps, T lo, T hi, T* y, int64_t N,
                            int64_t D) {
  // Per sample: whether it left the ball, and the factor that brings it back.
  std::vector<unsigned char> outside(static_cast<size_t>(N));
  std::vector<T> c(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    const double dn = std::sqrt(dsq[n]);
    outside[size_t(n)] = dn > eps;
    c[size_t(n)] = dn > eps ? T(eps / dn) : T(1);
  }
  // One element per iteration; (n, i) collapsed so that batch 1 splits across threads too.
#pragma omp parallel for collapse(2) schedule(static) if (N * D > kParallelMin)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < D; ++i) {
      const int64_t k = n * D + i;
      T t = y[k];
      if (outside[size_t(n)]) t = std::fma(c[size_t(n)], T(t - x0[k]), x0[k]);
      t = t < lo ? lo : t;
      t = t > hi ? hi : t;
      y[k] = t;
    }
}

NABLA_ATTACK_INSTANTIATE(float)
NABLA_ATTACK_INSTANTIATE(double)

}  // namespace nabla::cpu
