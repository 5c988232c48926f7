// The procedural histology generator (see histology.h).
#include <nabla/data/histology.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include <nabla/error.h>

#include "kernels/random.h"

namespace nabla::data {

namespace {

constexpr double kPi = 3.14159265358979323846;

enum Class : int64_t {
  kBackground = 0,
  kNeoplastic = 1,
  kInflammatory = 2,
  kConnective = 3,
  kDead = 4,
  kEpithelial = 5
};

// The parts of a tile draw from separate streams, so that a change in how many numbers one part
// draws leaves the others as they were.
enum Part : uint64_t { kStromaPart = 0, kNucleiPart = 1, kTexturePart = 2, kColourPart = 3 };

constexpr int64_t kMaxIndex = int64_t(1) << 48;

// Uniform and normal numbers for one part of one tile: Philox4x32-10 blocks with the seed as key
// and counter (draw, split | part | index), read one 32-bit word at a time.
class TileRng {
 public:
  TileRng(uint64_t seed, HistologySplit split, Part part, int64_t index)
      : key_(seed), hi_((uint64_t(split) << 56) | (uint64_t(part) << 48) | uint64_t(index)) {}

  uint32_t word() {
    if (k_ == 4) {
      block_ = philox4x32_10(ctr_++, hi_, key_);
      k_ = 0;
    }
    return block_.w[k_++];
  }
  // [0, 1)
  double uniform() {
    const uint32_t hi = word();
    const uint32_t lo = word();
    return philox_to_double(hi, lo);
  }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // An integer in [lo, hi], both included.
  int64_t integer(int64_t lo, int64_t hi) {
    return std::min(hi, lo + int64_t(uniform() * double(hi - lo + 1)));
  }
  bool chance(double p) { return uniform() < p; }
  double normal() {
    const double u1 = 1.0 - uniform();  // (0, 1]: log stays finite
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
  }

 private:
  uint64_t key_, hi_, ctr_ = 0;
  Philox4x32 block_{};
  int k_ = 4;
};

// An S x S field of doubles, row-major (y, x).
struct Plane {
  int64_t S = 0;
  std::vector<double> v;
  explicit Plane(int64_t s, double fill = 0) : S(s), v(size_t(s * s), fill) {}
  double& at(int64_t x, int64_t y) { return v[size_t(y * S + x)]; }
  double at(int64_t x, int64_t y) const { return v[size_t(y * S + x)]; }
  // Bilinear at a continuous position (pixel centres at integers), edges clamped.
  double sample(double x, double y) const {
    x = std::clamp(x, 0.0, double(S - 1));
    y = std::clamp(y, 0.0, double(S - 1));
    const int64_t x0 = std::min(int64_t(x), S - 2), y0 = std::min(int64_t(y), S - 2);  // S >= 16
    const double fx = x - double(x0), fy = y - double(y0);
    const int64_t x1 = x0 + 1, y1 = y0 + 1;
    return (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x1, y0)) +
           fy * ((1 - fx) * at(x0, y1) + fx * at(x1, y1));
  }
};

// Scales a field to zero mean and unit standard deviation (a constant field becomes 0).
void standardize(Plane& p) {
  double m = 0, s = 0;
  for (double x : p.v) m += x;
  m /= double(p.v.size());
  for (double x : p.v) s += (x - m) * (x - m);
  s = std::sqrt(s / double(p.v.size()));
  for (double& x : p.v) x = s > 0 ? (x - m) / s : 0;
}

// Separable Gaussian blur with clamped borders; sigma <= 0 leaves p as it is.
void gaussian_blur(Plane& p, double sigma) {
  if (sigma <= 0) return;
  const int64_t r = int64_t(std::ceil(3 * sigma)), S = p.S;
  std::vector<double> w(size_t(2 * r + 1));
  double total = 0;
  for (int64_t k = -r; k <= r; ++k)
    total += w[size_t(k + r)] = std::exp(-0.5 * k * k / (sigma * sigma));
  for (double& x : w) x /= total;
  Plane tmp(S);
  for (int64_t y = 0; y < S; ++y)
    for (int64_t x = 0; x < S; ++x) {
      double acc = 0;
      for (int64_t k = -r; k <= r; ++k)
        acc += w[size_t(k + r)] * p.at(std::clamp(x + k, int64_t(0), S - 1), y);
      tmp.at(x, y) = acc;
    }
  for (int64_t y = 0; y < S; ++y)
    for (int64_t x = 0; x < S; ++x) {
      double acc = 0;
      for (int64_t k = -r; k <= r; ++k)
        acc += w[size_t(k + r)] * tmp.at(x, std::clamp(y + k, int64_t(0), S - 1));
      p.at(x, y) = acc;
    }
}

// A smooth random field: the sum of three plane waves of wavelengths 40-110 px (a fixed physical
// scale, whatever the tile size), amplitude about 1.
Plane smooth_field(TileRng& r, int64_t S) {
  Plane f(S);
  for (int k = 0; k < 3; ++k) {
    const double psi = r.uniform(0, 2 * kPi), lambda = r.uniform(40, 110),
                 ph = r.uniform(0, 2 * kPi);
    const double amp = r.uniform(0.3, 0.6), cx = std::cos(psi), cy = std::sin(psi);
    for (int64_t y = 0; y < S; ++y)
      for (int64_t x = 0; x < S; ++x)
        f.at(x, y) += amp * std::sin(2 * kPi * (double(x) * cx + double(y) * cy) / lambda + ph);
  }
  return f;
}

struct Stroma {
  Plane theta, fibre, density;
  explicit Stroma(int64_t S) : theta(S), fibre(S), density(S) {}
};

// Fibres: white noise averaged along the local orientation (line-integral convolution over
// +-kHalf pixels with triangular weights) gives streaks that follow theta.
Stroma make_stroma(TileRng& r, int64_t S) {
  Stroma st(S);
  const double theta0 = r.uniform(0, kPi), bend = r.uniform(0, 0.7);
  const double psi = r.uniform(0, 2 * kPi), lambda = r.uniform(50, 120), ph = r.uniform(0, 2 * kPi);
  for (int64_t y = 0; y < S; ++y)
    for (int64_t x = 0; x < S; ++x)
      st.theta.at(x, y) =
          theta0 +
          bend *
              std::sin(2 * kPi * (double(x) * std::cos(psi) + double(y) * std::sin(psi)) / lambda +
                       ph);
  Plane noise(S);
  for (double& v : noise.v) v = r.uniform(-1, 1);
  constexpr int kHalf = 6;
  for (int64_t y = 0; y < S; ++y)
    for (int64_t x = 0; x < S; ++x) {
      const double dx = std::cos(st.theta.at(x, y)), dy = std::sin(st.theta.at(x, y));
      double acc = 0, wsum = 0;
      for (int t = -kHalf; t <= kHalf; ++t) {
        const double w = double(kHalf + 1 - std::abs(t));
        acc += w * noise.sample(double(x) + t * dx, double(y) + t * dy);
        wsum += w;
      }
      st.fibre.at(x, y) = acc / wsum;
    }
  standardize(st.fibre);
  st.density = smooth_field(r, S);
  return st;
}

// A nucleus outline: rho(x, y) < 1 inside, 1 on the boundary, growing outwards.
struct Outline {
  double cx = 0, cy = 0, a = 1, b = 1, phi = 0;  // centre, semi-axes (a along phi), rotation
  bool spindle = false;                  // |u/a|^1.15 + (v/b)^2: pointed ends instead of an ellipse
  std::array<double, 4> amp{}, phase{};  // boundary harmonics k = 2..5 of an ellipse

  double rho(double x, double y) const {
    const double dx = x - cx, dy = y - cy, c = std::cos(phi), s = std::sin(phi);
    const double u = (c * dx + s * dy) / a, v = (-s * dx + c * dy) / b;
    if (spindle) return std::sqrt(std::pow(std::abs(u), 1.15) + v * v);
    double f = 1;
    const double alpha = std::atan2(v, u);
    for (int k = 0; k < 4; ++k) f += amp[size_t(k)] * std::cos((k + 2) * alpha + phase[size_t(k)]);
    return std::sqrt(u * u + v * v) / f;
  }
  double extent() const {
    double f = 1;
    for (double x : amp) f += std::abs(x);
    return std::max(a, b) * f + 1;
  }
};

struct Nucleus {
  Outline o;
  int64_t cls = kBackground;
  double hema = 1;                                 // base hematoxylin concentration
  std::vector<std::pair<int64_t, double>> pixels;  // (flat index, rho)
};

// Rejection sampling on a pixel grid: a candidate is accepted when at least half of its pixels lie
// in the tile (at least min_pixels of them), and none of them or of their eight neighbours belongs
// to another nucleus or to a reserved area (a lumen).
class Placer {
 public:
  explicit Placer(int64_t S) : S_(S), owner_(size_t(S * S), 0), reserved_(size_t(S * S), 0) {}

  bool place(Nucleus n, int64_t min_pixels = 3) {
    const Outline& o = n.o;
    const double e = o.extent();
    const int64_t x0 = int64_t(std::floor(o.cx - e)), x1 = int64_t(std::ceil(o.cx + e));
    const int64_t y0 = int64_t(std::floor(o.cy - e)), y1 = int64_t(std::ceil(o.cy + e));
    int64_t total = 0;
    n.pixels.clear();
    for (int64_t y = y0; y <= y1; ++y)
      for (int64_t x = x0; x <= x1; ++x) {
        const double rho = o.rho(double(x) + 0.5, double(y) + 0.5);
        if (rho >= 1) continue;
        ++total;
        if (x < 0 || y < 0 || x >= S_ || y >= S_) continue;
        if (reserved_[size_t(y * S_ + x)]) return false;
        for (int64_t ny = std::max(y - 1, int64_t(0)); ny <= std::min(y + 1, S_ - 1); ++ny)
          for (int64_t nx = std::max(x - 1, int64_t(0)); nx <= std::min(x + 1, S_ - 1); ++nx)
            if (owner_[size_t(ny * S_ + nx)] != 0) return false;
        n.pixels.emplace_back(y * S_ + x, rho);
      }
    const int64_t inside = int64_t(n.pixels.size());
    if (inside < min_pixels || 2 * inside < total) return false;
    const int64_t id = int64_t(nuclei_.size()) + 1;
    for (const auto& [k, rho] : n.pixels) owner_[size_t(k)] = id;
    nuclei_.push_back(std::move(n));
    return true;
  }
  void reserve_disc(double cx, double cy, double radius) {
    for_disc(cx, cy, radius, [&](int64_t k) {
      reserved_[size_t(k)] = 1;
      return true;
    });
  }
  // True when a disc intersects no nucleus and no reserved pixel.
  bool disc_free(double cx, double cy, double radius) const {
    return for_disc(cx, cy, radius,
                    [&](int64_t k) { return owner_[size_t(k)] == 0 && !reserved_[size_t(k)]; });
  }
  const std::vector<Nucleus>& nuclei() const { return nuclei_; }
  const std::vector<int64_t>& owner() const { return owner_; }

 private:
  // Calls f(flat index) for every tile pixel whose centre lies in the disc, while f returns true;
  // returns false when f stopped it.
  template <typename F>
  bool for_disc(double cx, double cy, double radius, F&& f) const {
    const int64_t y0 = std::max<int64_t>(0, int64_t(std::floor(cy - radius)));
    const int64_t y1 = std::min<int64_t>(S_ - 1, int64_t(std::ceil(cy + radius)));
    const int64_t x0 = std::max<int64_t>(0, int64_t(std::floor(cx - radius)));
    const int64_t x1 = std::min<int64_t>(S_ - 1, int64_t(std::ceil(cx + radius)));
    for (int64_t y = y0; y <= y1; ++y)
      for (int64_t x = x0; x <= x1; ++x)
        if (std::hypot(double(x) + 0.5 - cx, double(y) + 0.5 - cy) < radius && !f(y * S_ + x))
          return false;
    return true;
  }

  int64_t S_;
  std::vector<int64_t> owner_;
  std::vector<uint8_t> reserved_;
  std::vector<Nucleus> nuclei_;
};

// A lumen with its ring of epithelial cells: pale inside, pink cytoplasm band around it.
struct Gland {
  double cx, cy, inner, outer;  // the lumen's radius and the band's outer radius
};

Outline ellipse(double cx, double cy, double a, double b, double phi) {
  Outline o;
  o.cx = cx, o.cy = cy, o.a = a, o.b = b, o.phi = phi;
  return o;
}

// ensures: the number of structures for a tile of area factor A: round(A * U(lo, hi)), at least 1.
int64_t count(TileRng& r, double A, double lo, double hi) {
  return std::max<int64_t>(1, std::llround(A * r.uniform(lo, hi)));
}

struct Tissue {
  std::vector<Nucleus> nuclei;
  std::vector<int64_t> owner;
  std::vector<Gland> glands;
  std::vector<std::pair<double, double>> dead_centres;  // for the eosinophilic halo
};

Tissue place_nuclei(TileRng& r, const Stroma& st, int64_t S) {
  const double A = double(S * S) / (64.0 * 64.0);
  // Which types this tile holds: each with a fixed probability, at least one.
  constexpr std::array<double, 6> kPresence = {0, 0.55, 0.6, 0.6, 0.35, 0.45};
  std::array<bool, 6> present{};
  bool any = false;
  for (int64_t c = 1; c < kHistologyClasses; ++c)
    any |= present[size_t(c)] = r.chance(kPresence[size_t(c)]);
  if (!any) present[size_t(r.integer(1, kHistologyClasses - 1))] = true;

  Placer pl(S);
  Tissue t;
  const auto uniform_xy = [&](double& x, double& y) {
    x = r.uniform(0, double(S));
    y = r.uniform(0, double(S));
  };

  if (present[kEpithelial]) {
    const int64_t rings = count(r, A, 0.8, 1.8);
    for (int64_t g = 0; g < rings; ++g)
      for (int attempt = 0; attempt < 20; ++attempt) {
        double cx, cy;
        uniform_xy(cx, cy);
        const double R = r.uniform(7, 12), a = r.uniform(3.0, 4.0), b = a * r.uniform(0.6, 0.8);
        if (!pl.disc_free(cx, cy, R + a + 1.5)) continue;
        const double inner = R - a - 1;
        pl.reserve_disc(cx, cy, inner);
        t.glands.push_back({cx, cy, inner, R + a + 1.5});
        const int64_t k = std::max<int64_t>(4, int64_t(2 * kPi * R / (2 * b + 1.8)));
        const double start = r.uniform(0, 2 * kPi);
        for (int64_t j = 0; j < k; ++j)
          for (int tries = 0; tries < 4; ++tries) {
            const double ang = start + 2 * kPi * double(j) / double(k) + 0.05 * r.normal();
            const double rad = R + 0.5 * r.normal();
            Nucleus n{ellipse(cx + rad * std::cos(ang), cy + rad * std::sin(ang), a, b, ang),
                      kEpithelial,
                      r.uniform(0.7, 0.9),
                      {}};
            if (pl.place(std::move(n))) break;
          }
        break;
      }
  }
  if (present[kNeoplastic]) {
    const int64_t clusters = count(r, A, 1.0, 2.2);
    for (int64_t c = 0; c < clusters; ++c) {
      double cx, cy;
      uniform_xy(cx, cy);
      const int64_t members = r.integer(3, 8);
      const double spread = 6 + 1.2 * double(members);
      for (int64_t m = 0; m < members; ++m)
        for (int tries = 0; tries < 25; ++tries) {
          const double a = r.uniform(4.5, 7.0);
          Nucleus n{ellipse(cx + spread * r.normal(), cy + spread * r.normal(), a,
                            a * r.uniform(0.6, 0.9), r.uniform(0, kPi)),
                    kNeoplastic,
                    r.uniform(0.6, 0.8),
                    {}};
          for (int k = 0; k < 4; ++k) {
            n.o.amp[size_t(k)] = r.uniform(0, 0.12 / (1 + 0.5 * k));
            n.o.phase[size_t(k)] = r.uniform(0, 2 * kPi);
          }
          if (pl.place(std::move(n))) break;
        }
    }
  }
  if (present[kConnective]) {
    const int64_t n_conn = count(r, A, 5, 14);
    for (int64_t i = 0; i < n_conn; ++i)
      for (int tries = 0; tries < 20; ++tries) {
        double cx, cy;
        uniform_xy(cx, cy);
        const double a = r.uniform(5.5, 9.0), aspect = r.uniform(3.0, 5.0);
        const double phi = st.theta.sample(cx, cy) + 0.12 * r.normal();
        Nucleus n{ellipse(cx, cy, a, a / aspect, phi), kConnective, r.uniform(0.8, 1.0), {}};
        n.o.spindle = true;
        if (pl.place(std::move(n))) break;
      }
  }
  if (present[kDead]) {
    const int64_t n_dead = count(r, A, 2, 6);
    for (int64_t i = 0; i < n_dead; ++i)
      for (int tries = 0; tries < 20; ++tries) {
        double cx, cy;
        uniform_xy(cx, cy);
        const double rc = r.uniform(1.6, 2.4);
        Nucleus core{ellipse(cx, cy, rc, rc * r.uniform(0.85, 1.0), r.uniform(0, kPi)),
                     kDead,
                     r.uniform(1.4, 1.7),
                     {}};
        if (!pl.place(std::move(core))) continue;
        t.dead_centres.emplace_back(cx, cy);
        const int64_t fragments = r.integer(1, 3);
        for (int64_t f = 0; f < fragments; ++f)
          for (int ftries = 0; ftries < 6; ++ftries) {
            const double ang = r.uniform(0, 2 * kPi), d = r.uniform(3.0, 5.5),
                         rf = r.uniform(0.8, 1.3);
            Nucleus frag{ellipse(cx + d * std::cos(ang), cy + d * std::sin(ang), rf, rf, 0),
                         kDead,
                         r.uniform(1.3, 1.6),
                         {}};
            if (pl.place(std::move(frag), 2)) break;
          }
        break;
      }
  }
  if (present[kInflammatory]) {
    const int64_t n_inf = count(r, A, 6, 22);
    // Half of the tiles have an infiltrate: the cells gather around one point.
    const bool infiltrate = r.chance(0.5);
    double gx, gy;
    uniform_xy(gx, gy);
    for (int64_t i = 0; i < n_inf; ++i)
      for (int tries = 0; tries < 20; ++tries) {
        double cx, cy;
        if (infiltrate) {
          cx = gx + 9 * r.normal();
          cy = gy + 9 * r.normal();
        } else {
          uniform_xy(cx, cy);
        }
        const double a = r.uniform(2.0, 3.0);
        Nucleus n{ellipse(cx, cy, a, a * r.uniform(0.85, 1.0), r.uniform(0, kPi)),
                  kInflammatory,
                  r.uniform(1.15, 1.35),
                  {}};
        if (pl.place(std::move(n))) break;
      }
  }
  t.nuclei = pl.nuclei();
  t.owner = pl.owner();
  return t;
}

double smoothstep(double e0, double e1, double x) {
  const double t = std::clamp((x - e0) / (e1 - e0), 0.0, 1.0);
  return t * t * (3 - 2 * t);
}

}  // namespace

const char* histology_split_name(HistologySplit s) {
  switch (s) {
    case HistologySplit::Train:
      return "train";
    case HistologySplit::Val:
      return "val";
    case HistologySplit::Test:
      return "test";
  }
  return "?";
}

HistologySplit histology_split_from_name(const std::string& name) {
  if (name == "train") return HistologySplit::Train;
  if (name == "val") return HistologySplit::Val;
  if (name == "test") return HistologySplit::Test;
  throw Error("histology: unknown split '" + name + "' (train, val or test)");
}

const std::vector<std::string>& histology_class_names() {
  static const std::vector<std::string> names = {"background", "neoplastic", "inflammatory",
                                                 "connective", "dead",       "epithelial"};
  return names;
}

Example histology_tile(uint64_t seed, HistologySplit split, int64_t index, int64_t S) {
  NABLA_CHECK(S >= kHistologyMinSize && S <= kHistologyMaxSize, "histology: tile size ", S,
              " is outside [", kHistologyMinSize, ", ", kHistologyMaxSize, "]");
  NABLA_CHECK(index >= 0 && index < kMaxIndex, "histology: tile index ", index,
              " is outside [0, 2^48)");

  TileRng rs(seed, split, kStromaPart, index), rn(seed, split, kNucleiPart, index);
  TileRng rt(seed, split, kTexturePart, index), rc(seed, split, kColourPart, index);
  const Stroma st = make_stroma(rs, S);
  const Tissue tissue = place_nuclei(rn, st, S);

  // Stain concentrations: stroma first, then glands, halos and nuclei painted over it.
  Plane ch(S), ce(S), speckle(S), chromatin(S);
  for (double& v : speckle.v) v = rt.normal();
  gaussian_blur(speckle, 1.5);
  standardize(speckle);
  for (double& v : chromatin.v) v = rt.normal();
  gaussian_blur(chromatin, 0.7);
  standardize(chromatin);
  const double eosin_level = rt.uniform(0.15, 0.3);
  for (int64_t y = 0; y < S; ++y)
    for (int64_t x = 0; x < S; ++x) {
      const double e = eosin_level * (1 + 0.35 * st.fibre.at(x, y) + 0.25 * st.density.at(x, y));
      ce.at(x, y) = std::clamp(e, 0.03, 0.9);
      ch.at(x, y) = std::max(0.0, 0.08 + 0.03 * speckle.at(x, y));
    }
  for (const Gland& g : tissue.glands)
    for (int64_t y = 0; y < S; ++y)
      for (int64_t x = 0; x < S; ++x) {
        const double d = std::hypot(double(x) + 0.5 - g.cx, double(y) + 0.5 - g.cy);
        if (d < g.inner) {
          ce.at(x, y) = 0.04 + 0.02 * smoothstep(g.inner - 2, g.inner, d);
          ch.at(x, y) = 0.02;
        } else if (d < g.outer) {
          ce.at(x, y) = 0.55 + 0.05 * speckle.at(x, y);
          ch.at(x, y) = 0.1;
        }
      }
  for (const auto& [cx, cy] : tissue.dead_centres)
    for (int64_t y = std::max<int64_t>(0, int64_t(cy) - 6);
         y < std::min<int64_t>(S, int64_t(cy) + 7); ++y)
      for (int64_t x = std::max<int64_t>(0, int64_t(cx) - 6);
           x < std::min<int64_t>(S, int64_t(cx) + 7); ++x) {
        const double d = std::hypot(double(x) + 0.5 - cx, double(y) + 0.5 - cy);
        ce.at(x, y) += 0.3 * (1 - smoothstep(3.0, 5.5, d));
      }

  Tensor mask = zeros({S, S}, DType::Int64), instances = zeros({S, S}, DType::Int64);
  int64_t* pm = mask.data<int64_t>();
  int64_t* pi = instances.data<int64_t>();
  for (size_t k = 0; k < tissue.nuclei.size(); ++k) {
    const Nucleus& n = tissue.nuclei[k];
    // Nucleoli of neoplastic nuclei: one or two dark dots inside.
    std::vector<std::pair<double, double>> nucleoli;
    if (n.cls == kNeoplastic)
      for (int64_t j = rt.integer(1, 2); j > 0; --j) {
        const double ang = rt.uniform(0, 2 * kPi), d = rt.uniform(0, 0.4);
        nucleoli.emplace_back(n.o.cx + d * n.o.a * std::cos(ang),
                              n.o.cy + d * n.o.b * std::sin(ang));
      }
    for (const auto& [flat, rho] : n.pixels) {
      const int64_t x = flat % S, y = flat / S;
      pm[flat] = n.cls;
      pi[flat] = int64_t(k) + 1;
      const double chrom = chromatin.at(x, y);
      double h = n.hema;
      switch (n.cls) {
        case kNeoplastic: {  // vesicular: pale centre, dark membrane, coarse chromatin, nucleoli
          h *= (0.7 + 0.5 * smoothstep(0.6, 1.0, rho)) * (1 + 0.25 * chrom);
          for (const auto& [nx, ny] : nucleoli)
            if (std::hypot(double(x) + 0.5 - nx, double(y) + 0.5 - ny) < 1.0) h += 0.6;
          break;
        }
        case kEpithelial:
          h *= (0.85 + 0.25 * smoothstep(0.5, 1.0, rho)) * (1 + 0.15 * chrom);
          break;
        case kConnective:
          h *= 1 + 0.12 * chrom;
          break;
        default:  // inflammatory and dead: dense, nearly uniform chromatin
          h *= 1 + 0.06 * chrom;
      }
      ch.at(x, y) = std::max(h, 0.05);
      ce.at(x, y) = 0.12;
    }
  }

  // Beer-Lambert with jittered Ruifrok stain vectors, then blur and noise.
  std::array<double, 3> hv = {0.650, 0.704, 0.286}, ev = {0.072, 0.990, 0.105}, i0{};
  for (auto* v : {&hv, &ev}) {
    double norm = 0;
    for (double& c : *v) {
      c = std::max(0.01, c + 0.03 * rc.normal());
      norm += c * c;
    }
    for (double& c : *v) c /= std::sqrt(norm);
  }
  const double sh = rc.uniform(0.8, 1.2), se = rc.uniform(0.8, 1.2), light = rc.uniform(0.9, 1.0);
  for (double& c : i0) c = std::min(1.0, light + 0.01 * rc.normal());
  const double blur = rc.uniform(0.4, 0.9), noise = rc.uniform(0.005, 0.02);
  Tensor image = empty({3, S, S});
  float* img = image.data<float>();
  for (int64_t c = 0; c < 3; ++c) {
    Plane p(S);
    for (int64_t k = 0; k < S * S; ++k) {
      const double od = sh * ch.v[size_t(k)] * hv[size_t(c)] + se * ce.v[size_t(k)] * ev[size_t(c)];
      p.v[size_t(k)] = i0[size_t(c)] * std::pow(10.0, -od);
    }
    gaussian_blur(p, blur);
    for (int64_t k = 0; k < S * S; ++k)
      img[c * S * S + k] = float(std::clamp(p.v[size_t(k)] + noise * rc.normal(), 0.0, 1.0));
  }
  return Example{{"image", image}, {"mask", mask}, {"instances", instances}};
}

HistologySource::HistologySource(HistologySplit split, int64_t n, int64_t size, uint64_t seed)
    : split_(split), n_(n), tile_(size), seed_(seed) {
  NABLA_CHECK(n >= 0, "HistologySource: the number of tiles must be >= 0, got ", n);
  NABLA_CHECK(size >= kHistologyMinSize && size <= kHistologyMaxSize, "HistologySource: tile size ",
              size, " is outside [", kHistologyMinSize, ", ", kHistologyMaxSize, "]");
}

Example HistologySource::get(int64_t i) const {
  NABLA_CHECK(i >= 0 && i < n_, "HistologySource: item ", i, " out of range [0, ", n_, ") of the ",
              histology_split_name(split_), " split");
  return histology_tile(seed_, split_, i, tile_);
}

std::string HistologySource::describe(int64_t i) const {
  return std::string("histology ") + histology_split_name(split_) + " tile " + std::to_string(i) +
         " (seed " + std::to_string(seed_) + ", " + std::to_string(tile_) + "x" +
         std::to_string(tile_) + ")";
}

}  // namespace nabla::data
