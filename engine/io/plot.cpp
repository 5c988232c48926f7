// Training-curve plots on an io::Canvas (see plot.h).
#include <nabla/io/plot.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace nabla::io {

namespace {

bool finite_point(const Series& s, size_t i) {
  return std::isfinite(s.x[i]) && std::isfinite(s.y[i]);
}

// Data-to-pixel mapping of one panel's plot area.
struct Axes {
  int left, top, w, h;
  Ticks xt, yt;
  // Points on the axis limits land kInset pixels inside the frame, so markers stay visible.
  static constexpr int kInset = 4;
  int px(double x) const {
    return left + kInset +
           int(std::lround((x - xt.first) / (xt.last - xt.first) * (w - 1 - 2 * kInset)));
  }
  int py(double y) const {
    return top + h - 1 - kInset -
           int(std::lround((y - yt.first) / (yt.last - yt.first) * (h - 1 - 2 * kInset)));
  }
};

constexpr Rgb kAxis{60, 60, 60};
constexpr Rgb kGrid{230, 230, 230};
constexpr int kTickLen = 4;

void draw_panel(Canvas& cv, const PlotPanel& p, int ox, int pw, int ph, const std::string& where) {
  const int s = std::max(1, std::min(pw / 480, ph / 360));  // text scale: grows with the panel
  const int line_h = Canvas::text_height("", s);
  const int lt = 1 + s, mr = 1 + s;  // line thickness and marker radius

  // Data ranges over the finite points; an all-gap panel shows [0, 1] x [0, 1].
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  bool x_integers = true;
  for (const Series& se : p.series)
    for (size_t i = 0; i < se.x.size(); ++i) {
      if (!finite_point(se, i)) continue;
      xlo = std::min(xlo, se.x[i]), xhi = std::max(xhi, se.x[i]);
      ylo = std::min(ylo, se.y[i]), yhi = std::max(yhi, se.y[i]);
      x_integers = x_integers && se.x[i] == std::round(se.x[i]);
    }
  if (xlo > xhi) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
  if (!std::isfinite(xhi - xlo) || !std::isfinite(yhi - ylo))
    throw Error(where + ": panel '" + p.title + "' has values too far apart to plot");

  int y = 6 * s;
  if (!p.title.empty()) {
    cv.text(ox + (pw - Canvas::text_width(p.title, 2 * s)) / 2, y, p.title, kBlack, 2 * s);
    y += Canvas::text_height(p.title, 2 * s) + 6 * s;
  }

  Axes ax;
  ax.yt = nice_ticks(ylo, yhi, std::clamp((ph - 100 * s) / (40 * s), 3, 11));
  int ylabel_w = 0;
  for (double v : ax.yt.values)
    ylabel_w = std::max(ylabel_w, Canvas::text_width(format_tick(v, ax.yt.decimals), s));
  ax.left = ox + 6 * s + (p.ylabel.empty() ? 0 : line_h + 6 * s) + ylabel_w + 4 * s + kTickLen;
  ax.w = ox + pw - 16 * s - ax.left;

  // Legend: "-o- name" entries left to right from the plot's left edge, wrapping.
  const int seg = 16 * s, gap = 12 * s;
  int lx = ax.left;
  for (const Series& se : p.series) {
    const int ew = seg + 4 * s + Canvas::text_width(se.name, s);
    if (lx > ax.left && lx + ew > ox + pw - 8 * s) lx = ax.left, y += line_h + 4 * s;
    const int mid = y + 3 * s;  // middle of the capitals
    cv.line(lx, mid, lx + seg - 1, mid, se.color, lt);
    cv.fill_circle(lx + seg / 2, mid, mr, se.color);
    cv.text(lx + seg + 4 * s, y, se.name, kBlack, s);
    lx += ew + gap;
  }
  ax.top = y + line_h + 8 * s;
  const int bottom_margin =
      kTickLen + 4 * s + line_h + (p.xlabel.empty() ? 0 : 6 * s + line_h) + 8 * s;
  ax.h = ph - bottom_margin - ax.top;
  if (ax.w < 40 || ax.h < 40)
    throw Error(where + ": panel '" + p.title + "' leaves no room for the axes in " +
                std::to_string(pw) + "x" + std::to_string(ph) + " pixels (long legend or labels?)");
  ax.xt = nice_ticks(xlo, xhi, std::clamp(ax.w / (55 * s), 3, 13), x_integers);
  const int bottom = ax.top + ax.h - 1;

  // Grid, frame, ticks and tick labels.
  for (double v : ax.yt.values) {
    const int py = ax.py(v);
    cv.fill_rect(ax.left, py, ax.w, 1, kGrid);
    cv.fill_rect(ax.left - kTickLen, py, kTickLen, 1, kAxis);
    const std::string t = format_tick(v, ax.yt.decimals);
    cv.text(ax.left - kTickLen - 4 * s - Canvas::text_width(t, s), py - 3 * s, t, kAxis, s);
  }
  for (double v : ax.xt.values) {
    const int px = ax.px(v);
    cv.fill_rect(px, ax.top, 1, ax.h, kGrid);
    cv.fill_rect(px, bottom + 1, 1, kTickLen, kAxis);
    const std::string t = format_tick(v, ax.xt.decimals);
    cv.text(px - Canvas::text_width(t, s) / 2, bottom + kTickLen + 4 * s, t, kAxis, s);
  }
  cv.rect(ax.left, ax.top, ax.w, ax.h, kAxis);
  if (!p.xlabel.empty())
    cv.text(ax.left + (ax.w - Canvas::text_width(p.xlabel, s)) / 2,
            bottom + kTickLen + 4 * s + line_h + 6 * s, p.xlabel, kBlack, s);
  if (!p.ylabel.empty())
    cv.text_vertical(ox + 6 * s, ax.top + (ax.h - Canvas::text_width(p.ylabel, s)) / 2, p.ylabel,
                     kBlack, s);

  // Lines first, then markers on top, so every point stays visible where lines cross.
  for (const Series& se : p.series)
    for (size_t i = 1; i < se.x.size(); ++i)
      if (finite_point(se, i - 1) && finite_point(se, i))
        cv.line(ax.px(se.x[i - 1]), ax.py(se.y[i - 1]), ax.px(se.x[i]), ax.py(se.y[i]), se.color,
                lt);
  for (const Series& se : p.series)
    for (size_t i = 0; i < se.x.size(); ++i)
      if (finite_point(se, i)) cv.fill_circle(ax.px(se.x[i]), ax.py(se.y[i]), mr, se.color);
}

Canvas draw_plot(const std::vector<PlotPanel>& panels, int pw, int ph, const std::string& where) {
  NABLA_CHECK(!panels.empty(), where, ": no panels to plot");
  NABLA_CHECK(pw >= 200 && ph >= 150, where, ": panel size ", pw, "x", ph,
              " is too small (need at least 200x150)");
  NABLA_CHECK(int64_t(pw) * int64_t(panels.size()) <= 16384, where, ": ", panels.size(),
              " panels of width ", pw, " exceed 16384 pixels");
  for (size_t i = 0; i < panels.size(); ++i) {
    const PlotPanel& p = panels[i];
    NABLA_CHECK(!p.series.empty(), where, ": panel ", i, " ('", p.title, "') has no series");
    for (const Series& se : p.series)
      NABLA_CHECK(se.x.size() == se.y.size(), where, ": series '", se.name, "' of panel ", i, " ('",
                  p.title, "') has ", se.x.size(), " x values but ", se.y.size(), " y values");
  }
  Canvas cv(pw * int(panels.size()), ph, kWhite);
  for (size_t i = 0; i < panels.size(); ++i) draw_panel(cv, panels[i], int(i) * pw, pw, ph, where);
  return cv;
}

}  // namespace

Rgb palette_color(size_t i) {
  static constexpr Rgb kTab10[10] = {
      {31, 119, 180}, {255, 127, 14},  {44, 160, 44},   {214, 39, 40},  {148, 103, 189},
      {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
  return kTab10[i % 10];
}

Ticks nice_ticks(double lo, double hi, int max_ticks, bool integers) {
  NABLA_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi && std::isfinite(hi - lo) &&
                  max_ticks >= 3,
              "nice_ticks: need finite lo <= hi and max_ticks >= 3, got [", lo, ", ", hi,
              "] and max_ticks ", max_ticks);
  if (hi - lo <= 1e-12 * std::max(std::abs(lo), std::abs(hi))) {
    const double d = lo != 0 ? 0.1 * std::abs(lo) : 1;
    lo -= d, hi += d;
  }
  // The smallest step of the form {1, 2, 5} x 10^k whose ticks, from the multiple of step at or
  // below lo to the one at or above hi, number at most max_ticks. Starting one decade below the
  // even split, the loop ends within a few rounds: once step >= hi - lo there are at most 3 ticks.
  Ticks t;
  double base = std::pow(10.0, std::floor(std::log10((hi - lo) / (max_ticks - 1))) - 1);
  for (int i = 0;; ++i) {
    // Only ranges near the denormal limit get here without a usable step.
    NABLA_CHECK(i < 60 && base > 0, "nice_ticks: no usable step for [", lo, ", ", hi, "]");
    t.step = base * (i % 3 == 0 ? 1 : i % 3 == 1 ? 2 : 5);
    if (i % 3 == 2) base *= 10;
    if (integers && t.step < 1) continue;
    t.first = std::floor(lo / t.step) * t.step;
    t.last = std::ceil(hi / t.step) * t.step;
    if (std::llround((t.last - t.first) / t.step) + 1 <= max_ticks) break;
  }
  const int64_t n = std::llround((t.last - t.first) / t.step);
  for (int64_t i = 0; i <= n; ++i) {
    const double v = t.first + double(i) * t.step;
    t.values.push_back(std::abs(v) < 1e-9 * t.step ? 0.0 : v);
  }
  t.decimals = std::max(0, -int(std::floor(std::log10(t.step) + 1e-9)));
  return t;
}

std::string format_tick(double v, int decimals) {
  char buf[64];
  if (std::abs(v) >= 1e6 || decimals > 6)
    std::snprintf(buf, sizeof buf, "%.3g", v);
  else
    std::snprintf(buf, sizeof buf, "%.*f", std::max(decimals, 0), v);
  std::string out = buf;
  // "-0.00" from a value that rounds to zero reads as a sign error on an axis.
  if (out[0] == '-' && out.find_first_of("123456789") == std::string::npos) out.erase(0, 1);
  return out;
}

Canvas render_plot(const std::vector<PlotPanel>& panels, int panel_w, int panel_h) {
  return draw_plot(panels, panel_w, panel_h, "render_plot");
}

void save_plot(const std::string& path, const std::vector<PlotPanel>& panels, int panel_w,
               int panel_h) {
  draw_plot(panels, panel_w, panel_h, "save_plot: " + path).save_png(path);
}

}  // namespace nabla::io
