// Colormaps, map normalisation, heat-map overlays and colorbars (see heatmap.h). Everything runs
// on the CPU in double precision and writes float32; one pass per pixel, no kernels.
#include <nabla/io/heatmap.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <vector>

namespace nabla::io {

namespace {

// A control point of one channel: value v at position t.
struct Knot {
  double t, v;
};

// matplotlib's _jet_data (lib/matplotlib/_cm.py), one knot list per channel.
constexpr Knot kJetRed[] = {{0, 0}, {0.35, 0}, {0.66, 1}, {0.89, 1}, {1, 0.5}};
constexpr Knot kJetGreen[] = {{0, 0}, {0.125, 0}, {0.375, 1}, {0.64, 1}, {0.91, 0}, {1, 0}};
constexpr Knot kJetBlue[] = {{0, 0.5}, {0.11, 1}, {0.34, 1}, {0.65, 0}, {1, 0}};

// Entries of matplotlib's _inferno_data (lib/matplotlib/_cm_listed.py), copied verbatim with
// their index i in the 256-entry table; entry i sits at t = i / 255. The indices are the fewest
// that keep linear interpolation within 0.5/255 of all 256 entries: dense where the curve bends
// (the blue channel's dip near i = 200), sparse where it is nearly straight.
struct TableEntry {
  int index;
  double r, g, b;
};
constexpr TableEntry kInferno[] = {
    {0, 0.001462, 0.000466, 0.013866},   {2, 0.003299, 0.002249, 0.024239},
    {8, 0.013995, 0.011225, 0.071862},   {15, 0.037668, 0.025921, 0.132232},
    {26, 0.092990, 0.045583, 0.234358},  {34, 0.142378, 0.046242, 0.308553},
    {40, 0.183429, 0.040329, 0.354971},  {46, 0.224763, 0.036405, 0.388129},
    {53, 0.271347, 0.040922, 0.411976},  {63, 0.335217, 0.060060, 0.428524},
    {76, 0.416331, 0.090203, 0.432943},  {91, 0.509730, 0.123769, 0.422156},
    {106, 0.603139, 0.157151, 0.395891}, {121, 0.694627, 0.195021, 0.354388},
    {137, 0.785929, 0.247056, 0.295477}, {151, 0.855992, 0.307038, 0.235133},
    {165, 0.912966, 0.381636, 0.169755}, {178, 0.952075, 0.462178, 0.105031},
    {191, 0.977092, 0.550850, 0.039050}, {196, 0.982881, 0.586606, 0.024661},
    {200, 0.985952, 0.615750, 0.025592}, {204, 0.987622, 0.645320, 0.039886},
    {210, 0.987464, 0.690366, 0.079990}, {218, 0.982228, 0.751442, 0.147565},
    {226, 0.971468, 0.813122, 0.227658}, {233, 0.958720, 0.866624, 0.310820},
    {239, 0.948683, 0.910473, 0.395289}, {245, 0.947937, 0.949318, 0.491426},
    {250, 0.961812, 0.975924, 0.571925}, {255, 0.988362, 0.998364, 0.644924},
};

// Linear interpolation between the knots around t, for t in [0, 1] (knots span [0, 1]).
template <size_t N>
double piecewise(const Knot (&k)[N], double t) {
  size_t i = 1;
  while (i < N - 1 && t > k[i].t) ++i;
  const double u = (t - k[i - 1].t) / (k[i].t - k[i - 1].t);
  return k[i - 1].v + (k[i].v - k[i - 1].v) * u;
}

std::array<double, 3> inferno(double t) {
  const double x = t * 255;  // position in table entries
  // Binary search for b, the first entry after entry 0 whose index is >= x (x <= 255, the last
  // index), so that x lies in [a.index, b.index].
  size_t lo = 1, hi = std::size(kInferno) - 1;
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (kInferno[mid].index < x)
      lo = mid + 1;
    else
      hi = mid;
  }
  const TableEntry &a = kInferno[lo - 1], &b = kInferno[lo];
  const double u = (x - a.index) / (b.index - a.index);
  return {a.r + (b.r - a.r) * u, a.g + (b.g - a.g) * u, a.b + (b.b - a.b) * u};
}

uint8_t to_byte(double v) {
  if (!(v > 0)) return 0;
  if (v >= 1) return 255;
  return static_cast<uint8_t>(std::lround(v * 255));
}

// Values read from an image: clamped to [0, 1], NaN as 0 (as save_png stores them).
double clamp01(double v) {
  return v > 0 ? (v < 1 ? v : 1) : 0;
}

// Checks a map argument ([H, W] or [N, H, W], float, H, W >= 1) and returns it as a contiguous
// float64 CPU tensor [N, H, W] (N = 1 for [H, W]).
Tensor as_maps(const Tensor& map, const char* op, const char* what) {
  NABLA_CHECK(map.defined(), op, ": the ", what, " is undefined");
  NABLA_CHECK(is_floating(map.dtype()) && (map.dim() == 2 || map.dim() == 3), op,
              ": expected a float ", what, " [H, W] or [N, H, W], got ", map.str());
  NABLA_CHECK(map.size(-1) >= 1 && map.size(-2) >= 1, op, ": the ", what, " ",
              shape_str(map.shape()), " is empty (H and W must be >= 1)");
  Tensor t = map.detach().to(Device::cpu()).contiguous().to(DType::Float64);
  return map.dim() == 2 ? t.unsqueeze(0) : t;
}

// Bilinear resize of one h x w map to H x W with align_corners = false: output pixel i samples
// the input at s = (i + 0.5) h / H - 0.5, clamped below at 0; the upper neighbour is clamped to
// the last row (PyTorch's upsample_bilinear2d).
struct Tap {
  int64_t i0, i1;
  double l;  // weight of i1
};
std::vector<Tap> taps(int64_t in, int64_t out) {
  std::vector<Tap> t(static_cast<size_t>(out));
  const double scale = double(in) / double(out);
  for (int64_t o = 0; o < out; ++o) {
    const double s = std::max(0.0, (double(o) + 0.5) * scale - 0.5);
    const int64_t i0 = std::min(int64_t(s), in - 1);
    t[size_t(o)] = {i0, std::min(i0 + 1, in - 1), s - double(i0)};
  }
  return t;
}
// (1 - l) a + l b, leaving out a term whose weight is 0 so that a NaN there does not spread.
double lerp(double a, double b, double l) {
  if (l == 0) return a;
  if (l == 1) return b;
  return a + (b - a) * l;
}
void resize_bilinear(const double* src, int64_t h, int64_t w, double* dst, int64_t H, int64_t W) {
  const std::vector<Tap> ty = taps(h, H), tx = taps(w, W);
  for (int64_t y = 0; y < H; ++y) {
    const Tap& a = ty[size_t(y)];
    const double *r0 = src + a.i0 * w, *r1 = src + a.i1 * w;
    for (int64_t x = 0; x < W; ++x) {
      const Tap& b = tx[size_t(x)];
      dst[y * W + x] = lerp(lerp(r0[b.i0], r0[b.i1], b.l), lerp(r1[b.i0], r1[b.i1], b.l), a.l);
    }
  }
}

}  // namespace

std::array<double, 3> colormap_unit(double t, Colormap cm) {
  if (std::isnan(t)) return {kNaNColor.r / 255.0, kNaNColor.g / 255.0, kNaNColor.b / 255.0};
  t = std::clamp(t, 0.0, 1.0);
  switch (cm) {
    case Colormap::Jet:
      return {piecewise(kJetRed, t), piecewise(kJetGreen, t), piecewise(kJetBlue, t)};
    case Colormap::Inferno:
      return inferno(t);
    case Colormap::Gray:
      return {t, t, t};
    case Colormap::Diverging:
      // bwr: blue (0, 0, 1) -> white -> red (1, 0, 0); 2t and 2 - 2t are exact at 0.5.
      if (t <= 0.5) return {2 * t, 2 * t, 1};
      return {1, 2 - 2 * t, 2 - 2 * t};
    case Colormap::Hot:
      return {std::min(1.0, 3 * t), std::clamp(3 * t - 1, 0.0, 1.0),
              std::clamp(3 * t - 2, 0.0, 1.0)};
  }
  NABLA_CHECK(false, "colormap: unknown Colormap value ", int(cm));
  return {};
}

Rgb colormap(double t, Colormap cm) {
  const auto c = colormap_unit(t, cm);
  return {to_byte(c[0]), to_byte(c[1]), to_byte(c[2])};
}

const char* colormap_name(Colormap cm) {
  switch (cm) {
    case Colormap::Jet:
      return "jet";
    case Colormap::Inferno:
      return "inferno";
    case Colormap::Gray:
      return "gray";
    case Colormap::Diverging:
      return "diverging";
    case Colormap::Hot:
      return "hot";
  }
  return "unknown";
}

Colormap colormap_from_name(const std::string& name) {
  for (Colormap cm :
       {Colormap::Jet, Colormap::Inferno, Colormap::Gray, Colormap::Diverging, Colormap::Hot})
    if (name == colormap_name(cm)) return cm;
  NABLA_CHECK(false, "colormap_from_name: unknown colormap '", name,
              "' (expected jet, inferno, gray, diverging or hot)");
  return Colormap::Jet;
}

Tensor normalize_map(const Tensor& map, bool symmetric) {
  const Tensor m = as_maps(map, "normalize_map", "map");
  const int64_t N = m.size(0), hw = m.size(1) * m.size(2);
  Tensor out = empty(map.shape());
  const double* src = m.data<double>();
  float* dst = out.data<float>();
  for (int64_t n = 0; n < N; ++n) {
    const double* s = src + n * hw;
    float* d = dst + n * hw;
    // Range over the finite values only: one inf or NaN must not flatten the rest of the map.
    double lo = std::numeric_limits<double>::infinity(), hi = -lo, amax = 0;
    for (int64_t i = 0; i < hw; ++i)
      if (std::isfinite(s[i])) {
        lo = std::min(lo, s[i]);
        hi = std::max(hi, s[i]);
        amax = std::max(amax, std::abs(s[i]));
      }
    for (int64_t i = 0; i < hw; ++i) {
      const double v = s[i];
      double t;
      if (std::isnan(v))
        t = v;
      else if (std::isinf(v))
        t = v > 0 ? 1 : 0;
      else if (symmetric)
        t = amax > 0 ? 0.5 + 0.5 * (v / amax) : 0.5;
      else
        t = hi > lo ? (v - lo) / (hi - lo) : 0;
      d[i] = float(t);
    }
  }
  return out;
}

Tensor apply_colormap(const Tensor& map01, Colormap cm) {
  const Tensor m = as_maps(map01, "apply_colormap", "map");
  const int64_t N = m.size(0), H = m.size(1), W = m.size(2), hw = H * W;
  Tensor out = map01.dim() == 2 ? empty({3, H, W}) : empty({N, 3, H, W});
  const double* src = m.data<double>();
  float* dst = out.data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < hw; ++i) {
      const auto c = colormap_unit(src[n * hw + i], cm);
      for (int64_t k = 0; k < 3; ++k) dst[(n * 3 + k) * hw + i] = float(c[size_t(k)]);
    }
  return out;
}

Tensor overlay_heatmap(const Tensor& image, const Tensor& map01, Colormap cm, double alpha) {
  NABLA_CHECK(image.defined() && map01.defined(), "overlay_heatmap: the image or the map is ",
              "undefined");
  NABLA_CHECK(alpha >= 0 && alpha <= 1, "overlay_heatmap: alpha must be in [0, 1], got ", alpha);
  const bool batched = image.dim() == 4;
  const Tensor img = image.detach();
  const Tensor img4 = img.dim() == 2   ? img.unsqueeze(0).unsqueeze(0)
                      : img.dim() == 3 ? img.unsqueeze(0)
                                       : img;
  const bool shapes_ok =
      is_floating(image.dtype()) && is_floating(map01.dtype()) && img4.dim() == 4 &&
      (img4.size(1) == 1 || img4.size(1) == 3) && img4.size(2) >= 1 && img4.size(3) >= 1 &&
      map01.dim() == (batched ? 3 : 2) && (!batched || map01.size(0) == img4.size(0)) &&
      map01.size(-1) >= 1 && map01.size(-2) >= 1;
  NABLA_CHECK(shapes_ok,
              "overlay_heatmap: expected a float image [C, H, W] (C = 1 or 3) or [H, W] with a "
              "float map [h, w], or an image [N, C, H, W] with a map [N, h, w]; got image ",
              image.str(), " and map ", map01.str());
  const int64_t N = img4.size(0), C = img4.size(1), H = img4.size(2), W = img4.size(3);
  const int64_t h = map01.size(-2), w = map01.size(-1), hw = H * W;
  const Tensor x = img4.to(Device::cpu()).contiguous().to(DType::Float64);
  const Tensor m = as_maps(map01, "overlay_heatmap", "map");
  Tensor out = batched ? empty({N, 3, H, W}) : empty({3, H, W});
  const double* px = x.data<double>();
  const double* pm = m.data<double>();
  float* po = out.data<float>();
  std::vector<double> up(size_t(h == H && w == W ? 0 : hw));
  for (int64_t n = 0; n < N; ++n) {
    const double* mp = pm + n * h * w;
    if (!up.empty()) {
      resize_bilinear(mp, h, w, up.data(), H, W);
      mp = up.data();
    }
    const double* xp = px + n * C * hw;
    for (int64_t i = 0; i < hw; ++i) {
      const auto c = colormap_unit(mp[i], cm);
      for (int64_t k = 0; k < 3; ++k) {
        const double v = clamp01(xp[(C == 1 ? 0 : k) * hw + i]);
        po[(n * 3 + k) * hw + i] = float((1 - alpha) * v + alpha * c[size_t(k)]);
      }
    }
  }
  return out;
}

void draw_colorbar(Canvas& c, int x, int y, int w, int h, Colormap cm, const std::string& lo_label,
                   const std::string& hi_label) {
  constexpr int kMax = 1 << 20;
  NABLA_CHECK(w >= 1 && h >= 2 && w <= kMax && h <= kMax, "draw_colorbar: the bar must be 1..",
              kMax, " wide and 2..", kMax, " high, got ", w, "x", h);
  // Clip in 64 bits: coordinates near INT_MAX must not overflow, and only visible rows are drawn.
  auto to_int = [](int64_t v) { return int(std::clamp<int64_t>(v, INT_MIN / 2, INT_MAX / 2)); };
  c.rect(to_int(int64_t(x) - 1), to_int(int64_t(y) - 1), w + 2, h + 2, kBlack);
  const int64_t r0 = std::max<int64_t>(0, -int64_t(y));
  const int64_t r1 = std::min<int64_t>(h, int64_t(c.height()) - y);
  for (int64_t r = r0; r < r1; ++r)
    c.fill_rect(x, int(y + r), w, 1, colormap(double(h - 1 - r) / double(h - 1), cm));
  const int tx = to_int(int64_t(x) + w + 4);
  c.text(tx, to_int(y), hi_label, kBlack);
  c.text(tx, to_int(int64_t(y) + h - Canvas::text_height(lo_label)), lo_label, kBlack);
}

}  // namespace nabla::io
