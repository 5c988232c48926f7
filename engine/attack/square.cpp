// The Square attack (Andriushchenko, Croce, Flammarion, Hein 2020, "Square Attack: a
// query-efficient black-box adversarial attack via random search"), L-inf and L2. Forward
// passes only: no gradient is taken, so it is blind to gradient masking.
//
// Per sample n the attack keeps its best point x_n (start: L-inf, vertical stripes of
// x0 +- eps with a random sign per channel and column; L2, a grid of pseudo-Gaussian squares
// with random signs, scaled to ||delta|| = eps) and its margin m_n (attack.h). Each iteration i
// draws, for every sample not yet fooled, a square window of side s at a random position:
//   L-inf: s = round(sqrt(p H W)) (1 <= s < min(H, W)); inside the window and per channel c,
//          x'_c = clip(x0_c + r_c eps) with one random sign r_c (redrawn, up to 10 times,
//          while the proposal equals x_n);
//   L2:    s = max(round(sqrt(p H W)), 3), made odd; a second window w2 as well. Per channel,
//          the window w1 of delta = x_n - x0 gets r_c G_s + delta_w1 / ||delta_w1||, scaled to
//          sqrt(max(eps^2 - ||delta||^2, 0) / C + ||delta_{w1 u w2}||^2), w2 is zeroed, and
//          x' = clip(x0 + eps delta / ||delta||); G_s is the pseudo-Gaussian square of the
//          paper (two rectangles of opposite sign, each a sum of nested rings weighted 1/k^2,
//          transposed with probability 1/2);
// and keeps x' when its margin is lower (or it succeeds). p follows square_p. The host holds
// the points (in double, rounded through x's dtype so that what is evaluated is what is kept);
// the model runs on x's device, on the samples still open, one forward pass per iteration.
#include <algorithm>
#include <cmath>

#include <nabla/attack/attack.h>
#include <nabla/autograd.h>
#include <nabla/ops.h>

#include "detail.h"

namespace nabla::attack {

using namespace detail;

namespace {

// The pseudo-Gaussian rectangle [x, y]: nested rings centred at (x/2, y/2), ring k weighted
// 1 / (k + 1)^2, normalised to unit L2 norm.
std::vector<double> rings(int64_t x, int64_t y) {
  std::vector<double> d(size_t(x * y), 0);
  int64_t cx = x / 2, cy = y / 2;
  for (int64_t k = 0; k < std::max(x / 2 + 1, y / 2 + 1); ++k) {
    const int64_t r0 = std::max<int64_t>(cx, 0), r1 = std::min(cx + 2 * k + 1, x);
    const int64_t c0 = std::max<int64_t>(cy, 0), c1 = std::min(cy + 2 * k + 1, y);
    for (int64_t i = r0; i < r1; ++i)
      for (int64_t j = c0; j < c1; ++j) d[size_t(i * y + j)] += 1.0 / double((k + 1) * (k + 1));
    --cx;
    --cy;
  }
  double s = 0;
  for (double v : d) s += v * v;
  s = std::sqrt(s);
  if (s > 0)
    for (double& v : d) v /= s;
  return d;
}

// G_s: the top half rings(s/2, s), the bottom half -rings(s - s/2, s), unit norm; transposed
// when flip.
std::vector<double> pseudo_gaussian(int64_t s, bool flip) {
  std::vector<double> d(size_t(s * s), 0);
  const int64_t h = s / 2;
  if (h > 0) {
    const std::vector<double> top = rings(h, s);
    for (int64_t i = 0; i < h * s; ++i) d[size_t(i)] = top[size_t(i)];
  }
  const std::vector<double> bottom = rings(s - h, s);
  for (int64_t i = 0; i < (s - h) * s; ++i) d[size_t(h * s + i)] = -bottom[size_t(i)];
  double n = 0;
  for (double v : d) n += v * v;
  n = std::sqrt(n);
  if (n > 0)
    for (double& v : d) v /= n;
  if (flip) {
    std::vector<double> t(d.size());
    for (int64_t i = 0; i < s; ++i)
      for (int64_t j = 0; j < s; ++j) t[size_t(j * s + i)] = d[size_t(i * s + j)];
    d = t;
  }
  return d;
}

// Uniform draws from the run's generator, consumed in order.
struct Draws {
  std::vector<double> u;
  size_t at = 0;
  double next() { return u[at++]; }
  int64_t below(int64_t k) { return std::min<int64_t>(int64_t(next() * double(k)), k - 1); }
  double sign() { return next() < 0.5 ? -1.0 : 1.0; }
};

Draws draw(Generator& gen, int64_t count) {
  Draws d;
  d.u =
      rand({std::max<int64_t>(count, 1)}, DType::Float64, Device::cpu(), &gen).to_vector<double>();
  return d;
}

struct Square {
  const Run& run;
  const Model& model;
  const Options& opt;
  int64_t N, C, H, W, D;
  std::vector<double> x0;  // [N, D]

  // Rounds v through x's dtype, as the model will see it.
  double round_t(double v) const { return run.x0.dtype() == DType::Float32 ? double(float(v)) : v; }

  // The margins and successes of the rows idx of points pts ([idx.size(), D]).
  void evaluate(const std::vector<int64_t>& idx, const std::vector<double>& pts,
                std::vector<double>& m, std::vector<bool>& ok) const {
    const int64_t M = int64_t(idx.size());
    Shape s = run.x0.shape();
    s[0] = M;
    const Tensor xb = from_vector<double>(pts, s).to(run.x0.dtype()).to(run.x0.device());
    const Run sub = rows(run, idx);
    NoGradGuard ng;
    const Tensor out = checked_output(sub, model(xb), xb).detach();
    ok = successes(sub, out);
    m.assign(size_t(M), 0);
    if (sub.classification()) {
      const std::vector<double> z = out.to(Device::cpu()).contiguous().to_vector<double>();
      const int64_t K = sub.K;
      for (int64_t r = 0; r < M; ++r) {
        const double* zr = z.data() + r * K;
        const int64_t c = sub.targeted ? sub.target[size_t(r)] : sub.y_host[size_t(r)];
        double other = -std::numeric_limits<double>::infinity();
        for (int64_t k = 0; k < K; ++k)
          if (k != c) other = std::max(other, zr[k]);
        m[size_t(r)] = sub.targeted ? other - zr[c] : zr[c] - other;
      }
    } else {
      const std::vector<double> l =
          sample_losses(sub, out).to(Device::cpu()).to(DType::Float64).to_vector<double>();
      for (int64_t r = 0; r < M; ++r) m[size_t(r)] = -l[size_t(r)];
    }
  }
};

}  // namespace

double square_p(double p_init, int it, int budget) {
  const int i = budget > 0 ? int(double(it) / double(budget) * 10000) : 0;
  if (i <= 10) return p_init;
  if (i <= 50) return p_init / 2;
  if (i <= 200) return p_init / 4;
  if (i <= 500) return p_init / 8;
  if (i <= 1000) return p_init / 16;
  if (i <= 2000) return p_init / 32;
  if (i <= 4000) return p_init / 64;
  if (i <= 6000) return p_init / 128;
  if (i <= 8000) return p_init / 256;
  return p_init / 512;
}

Result square(const Model& model, const Tensor& x, const Tensor& y, const Options& opt) {
  const char* name = "square";
  NABLA_CHECK(x.defined() && x.dim() == 4, name, ": x must be images [N, C, H, W], got ",
              x.defined() ? x.str() : std::string("undefined"));
  NABLA_CHECK(opt.queries >= 1, name, ": queries must be >= 1, got ", opt.queries);
  NABLA_CHECK(opt.p_init > 0 && opt.p_init <= 1, name, ": p_init must be in (0, 1], got ",
              opt.p_init);
  Generator gen(opt.seed);
  const Run run = prepare(name, model, x, y, opt, gen, false);
  Square sq{run, model, opt, run.N, x.size(1), x.size(2), x.size(3), 0, {}};
  sq.D = sq.C * sq.H * sq.W;
  const int64_t N = sq.N, C = sq.C, H = sq.H, W = sq.W, D = sq.D;
  const double eps = opt.eps;
  const bool linf = opt.norm == Norm::Linf;
  sq.x0 = run.x0.to(Device::cpu()).to(DType::Float64).contiguous().to_vector<double>();
  const std::vector<double>& x0 = sq.x0;
  const auto clip = [&](double v) { return sq.round_t(std::min(1.0, std::max(0.0, v))); };

  std::vector<double> best = x0;  // [N, D]
  std::vector<double> mbest(size_t(N), std::numeric_limits<double>::infinity());
  std::vector<bool> done = run.clean_success;
  std::vector<int64_t> queries(size_t(N), 0);
  std::vector<int64_t> open;
  for (int64_t n = 0; n < N; ++n)
    if (!done[size_t(n)]) open.push_back(n);

  // x' = clip(x0 + eps delta / ||delta||) for an L2 perturbation delta of sample n.
  const auto l2_point = [&](int64_t n, const std::vector<double>& delta, double* out) {
    double s = 0;
    for (double v : delta) s += v * v;
    const double f = s > 0 ? eps / std::sqrt(s) : 0;
    for (int64_t i = 0; i < D; ++i) out[i] = clip(x0[size_t(n * D + i)] + f * delta[size_t(i)]);
  };

  // The start.
  {
    const int64_t s0 = std::max<int64_t>(std::min(H, W) / 5, 1);
    const int64_t cells = (H / s0) * (W / s0);
    Draws r = draw(gen, int64_t(open.size()) * (linf ? C * W : 1 + cells * (C + 1)));
    for (int64_t n : open) {
      double* b = best.data() + n * D;
      const double* a = x0.data() + n * D;
      if (linf) {
        for (int64_t c = 0; c < C; ++c)
          for (int64_t w = 0; w < W; ++w) {
            const double sg = r.sign();
            for (int64_t h = 0; h < H; ++h) {
              const int64_t i = (c * H + h) * W + w;
              b[i] = clip(a[i] + sg * eps);
            }
          }
      } else {
        std::vector<double> delta(size_t(D), 0);
        const int64_t sp = (std::min(H, W) - s0 * (std::min(H, W) / s0)) / 2;
        for (int64_t vh = sp; vh + s0 <= H; vh += s0)
          for (int64_t vw = sp; vw + s0 <= W; vw += s0) {
            const std::vector<double> gsq = pseudo_gaussian(s0, r.next() < 0.5);
            for (int64_t c = 0; c < C; ++c) {
              const double sg = r.sign();
              for (int64_t i = 0; i < s0; ++i)
                for (int64_t j = 0; j < s0; ++j)
                  delta[size_t((c * H + vh + i) * W + vw + j)] += sg * gsq[size_t(i * s0 + j)];
            }
          }
        l2_point(n, delta, b);
      }
    }
    if (!open.empty()) {
      std::vector<double> pts(open.size() * size_t(D)), m;
      std::vector<bool> ok;
      for (size_t r2 = 0; r2 < open.size(); ++r2)
        std::copy_n(best.data() + open[r2] * D, D, pts.data() + r2 * size_t(D));
      sq.evaluate(open, pts, m, ok);
      for (size_t r2 = 0; r2 < open.size(); ++r2) {
        const int64_t n = open[r2];
        ++queries[size_t(n)];
        mbest[size_t(n)] = m[r2];
        done[size_t(n)] = ok[r2];
      }
    }
  }

  const int64_t side_max = std::max<int64_t>(std::min(H, W) - 1, 1);
  for (int it = 1; it < opt.queries; ++it) {
    open.clear();
    for (int64_t n = 0; n < N; ++n)
      if (!done[size_t(n)]) open.push_back(n);
    if (open.empty()) break;
    const double p = square_p(opt.p_init, it - 1, opt.queries);
    int64_t s;
    if (linf) {
      s = std::min(std::max<int64_t>(int64_t(std::lround(std::sqrt(p * double(H * W)))), 1),
                   side_max);
    } else {
      s = std::max<int64_t>(int64_t(std::lround(std::sqrt(p * double(H * W)))), 3);
      if (s % 2 == 0) ++s;
      s = std::min(s, std::min(H, W));
    }
    const int64_t M = int64_t(open.size());
    Draws r = draw(gen, M * (linf ? 2 + 10 * C : 5 + C));
    std::vector<double> pts(size_t(M * D));
    for (int64_t k = 0; k < M; ++k) {
      const int64_t n = open[size_t(k)];
      const double* a = x0.data() + n * D;
      const double* b = best.data() + n * D;
      double* q = pts.data() + k * D;
      std::copy_n(b, D, q);
      const int64_t vh = r.below(H - s + 1), vw = r.below(W - s + 1);
      if (linf) {
        for (int tries = 0; tries < 10; ++tries) {
          bool changed = false;
          for (int64_t c = 0; c < C; ++c) {
            const double sg = r.sign();
            for (int64_t i = 0; i < s; ++i)
              for (int64_t j = 0; j < s; ++j) {
                const int64_t e = (c * H + vh + i) * W + vw + j;
                q[e] = clip(a[e] + sg * eps);
                changed = changed || q[e] != b[e];
              }
          }
          if (changed) break;
        }
      } else {
        const int64_t vh2 = r.below(H - s + 1), vw2 = r.below(W - s + 1);
        const bool flip = r.next() < 0.5;
        const std::vector<double> gs = pseudo_gaussian(s, flip);
        std::vector<double> delta(static_cast<size_t>(D));
        double total = 0;
        for (int64_t i = 0; i < D; ++i) {
          delta[size_t(i)] = b[i] - a[i];
          total += delta[size_t(i)] * delta[size_t(i)];
        }
        const auto in1 = [&](int64_t h, int64_t w) {
          return h >= vh && h < vh + s && w >= vw && w < vw + s;
        };
        const auto in2 = [&](int64_t h, int64_t w) {
          return h >= vh2 && h < vh2 + s && w >= vw2 && w < vw2 + s;
        };
        for (int64_t c = 0; c < C; ++c) {
          const double sg = r.sign();
          double n1 = 0, nw = 0;
          for (int64_t h = 0; h < H; ++h)
            for (int64_t w = 0; w < W; ++w) {
              const double v = delta[size_t((c * H + h) * W + w)];
              if (in1(h, w)) n1 += v * v;
              if (in1(h, w) || in2(h, w)) nw += v * v;
            }
          n1 = std::sqrt(n1);
          std::vector<double> nd(size_t(s * s));
          double nn = 0;
          for (int64_t i = 0; i < s; ++i)
            for (int64_t j = 0; j < s; ++j) {
              const double old = delta[size_t((c * H + vh + i) * W + vw + j)] / (1e-12 + n1);
              const double v = sg * gs[size_t(i * s + j)] + old;
              nd[size_t(i * s + j)] = v;
              nn += v * v;
            }
          const double mass = std::sqrt(std::max(eps * eps - total, 0.0) / double(C) + nw);
          const double f = mass / (1e-12 + std::sqrt(nn));
          for (int64_t i = 0; i < s; ++i)
            for (int64_t j = 0; j < s; ++j) delta[size_t((c * H + vh2 + i) * W + vw2 + j)] = 0;
          for (int64_t i = 0; i < s; ++i)
            for (int64_t j = 0; j < s; ++j)
              delta[size_t((c * H + vh + i) * W + vw + j)] = f * nd[size_t(i * s + j)];
        }
        l2_point(n, delta, q);
      }
    }
    std::vector<double> m;
    std::vector<bool> ok;
    sq.evaluate(open, pts, m, ok);
    for (int64_t k = 0; k < M; ++k) {
      const int64_t n = open[size_t(k)];
      ++queries[size_t(n)];
      if (m[size_t(k)] < mbest[size_t(n)] || ok[size_t(k)]) {
        mbest[size_t(n)] = m[size_t(k)];
        std::copy_n(pts.data() + k * D, D, best.data() + n * D);
        done[size_t(n)] = ok[size_t(k)];
      }
    }
  }
  const Tensor x_adv =
      from_vector<double>(best, run.x0.shape()).to(run.x0.dtype()).to(run.x0.device());
  Result res = finish(run, model, x_adv);
  res.queries = queries;
  return res;
}

}  // namespace nabla::attack
