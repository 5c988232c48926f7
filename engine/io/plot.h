// Line plots for training curves (loss and accuracy per epoch), drawn on an io::Canvas.
//
// Each panel is a box of panel_w x panel_h pixels: a title, a legend row (one entry per series),
// the axes with a light grid at "nice" ticks (1, 2 or 5 times a power of ten, see nice_ticks),
// tick labels, and the x/y labels. Series are lines with a dot at every point. A NaN or infinite
// x or y is a gap: the line stops before it and starts again after it, so a diverged run or a
// metric measured only on some epochs still plots. Panels sit side by side in one PNG.
#pragma once

#include <string>
#include <vector>

#include <nabla/io/image.h>

namespace nabla::io {

struct Series {
  std::string name;
  std::vector<double> x, y;  // same length; non-finite values are gaps
  Rgb color = kBlue;
};

struct PlotPanel {
  std::string title, xlabel, ylabel;
  std::vector<Series> series;
};

// A distinct line color for series i (the matplotlib "tab10" cycle).
Rgb palette_color(size_t i);

// Axis ticks covering [lo, hi]: the smallest step of the form 1, 2 or 5 times a power of ten that
// needs at most `max_ticks` ticks; the axis runs from `first` to `last`, the multiples of step at
// or below lo and at or above hi.
struct Ticks {
  double first = 0, last = 1, step = 1;
  std::vector<double> values;  // first, first + step, ..., last
  int decimals = 0;            // digits after the point that tell the ticks apart
};
// requires: lo <= hi, both finite, hi - lo finite; max_ticks >= 3. A zero-width range [v, v] is
//   widened to [v - |v|/10, v + |v|/10] ([-1, 1] for v = 0). With `integers` (an epoch axis) the
//   step is at least 1.
Ticks nice_ticks(double lo, double hi, int max_ticks = 7, bool integers = false);
// ensures: v printed with `decimals` digits after the point ("0.25"), or in %g form once
//   |v| >= 1e6 or decimals > 6; never "-0".
std::string format_tick(double v, int decimals);

// requires: at least one panel; every panel has at least one series; x.size() == y.size() in
//   every series; panel_w >= 200, panel_h >= 150, and the picture at most 16384 pixels wide.
// ensures: the plot as a canvas panels.size() * panel_w wide and panel_h high; otherwise throws
//   nabla::Error naming the panel and series at fault.
Canvas render_plot(const std::vector<PlotPanel>& panels, int panel_w = 480, int panel_h = 360);
// ensures: render_plot(panels, panel_w, panel_h) saved as a PNG at `path` (atomically); errors
//   name the path.
void save_plot(const std::string& path, const std::vector<PlotPanel>& panels, int panel_w = 480,
               int panel_h = 360);

}  // namespace nabla::io
