// Pictures out of the engine: PNG files, image grids, and an RGB canvas with a bitmap font.
//
//   save_png         float [C, H, W] or [H, W] in [0, 1] -> 8-bit PNG (gray or RGB)
//   make_grid        [N, C, H, W] -> [C, rows * (H*s + p) + p, cols * (W*s + p) + p], torchvision's
//                    layout: image k at row k / nrow, column k % nrow, p pixels of padding around
//                    every image, each pixel repeated s x s (nearest) so 28x28 digits stay visible
//   Canvas           8-bit RGB drawing surface: rectangles, thick lines, discs, text in a 5x7 font
//                    (ASCII 32..126, lower case with descenders in an 8th row), tensor blits
//
// Every file is written atomically (temp file + rename, see write_file_atomic), and every
// check on user input throws nabla::Error naming the function, the path and the shapes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nabla/tensor.h>

namespace nabla::io {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};
inline constexpr Rgb kWhite{255, 255, 255};
inline constexpr Rgb kBlack{0, 0, 0};
inline constexpr Rgb kGray{128, 128, 128};
inline constexpr Rgb kLightGray{220, 220, 220};
inline constexpr Rgb kRed{214, 39, 40};
inline constexpr Rgb kGreen{44, 160, 44};
inline constexpr Rgb kBlue{31, 119, 180};
inline constexpr Rgb kOrange{255, 127, 14};

// requires: x is float32 or float64, [C, H, W] with C = 1 or 3, or [H, W]; H, W >= 1; any device.
// ensures: an 8-bit PNG at `path` (gray for one channel), value v stored as round(255 * v) after
//   clamping to [0, 1] (NaN stored as 0). Atomic: an error leaves an existing file untouched.
void save_png(const std::string& path, const Tensor& x);

// requires: images float [N, C, H, W] with N >= 1 and C = 1 or 3; nrow >= 1, padding >= 0,
//   scale >= 1; any device.
// ensures: a float32 CPU tensor [C, Hg, Wg] with min(nrow, N) images per row (layout in the file
//   comment), pad_value everywhere else; values copied as they are (save_png clamps).
Tensor make_grid(const Tensor& images, int64_t nrow = 8, int64_t padding = 2,
                 double pad_value = 1.0, int64_t scale = 1);
// ensures: save_png(path, make_grid(images, nrow, padding, 1.0, scale)).
void save_image_grid(const std::string& path, const Tensor& images, int64_t nrow = 8,
                     int64_t padding = 2, int64_t scale = 1);

// An RGB image in memory to draw figures on. Coordinates are pixels, (0, 0) is the top-left
// corner, x grows right, y grows down. Drawing clips at the border: nothing drawn outside the
// canvas is an error.
class Canvas {
 public:
  static constexpr int kGlyphW = 5;   // font cell: 5 columns
  static constexpr int kGlyphH = 8;   // rows 0..6 for capitals, row 7 for descenders
  static constexpr int kAdvance = 6;  // one column of spacing between characters
  static constexpr int kLineH = 10;   // baseline-to-baseline for multi-line text

  // requires: 1 <= width, height <= 16384.
  Canvas(int width, int height, Rgb background = kWhite);

  int width() const { return w_; }
  int height() const { return h_; }
  // requires: 0 <= x < width, 0 <= y < height (throws otherwise).
  Rgb pixel(int x, int y) const;
  void set_pixel(int x, int y, Rgb c);  // ignored outside the canvas

  // Filled rectangle with top-left (x, y), size w x h (nothing when w or h <= 0).
  void fill_rect(int x, int y, int w, int h, Rgb c);
  // Outline of the same rectangle, `thickness` pixels drawn inwards.
  void rect(int x, int y, int w, int h, Rgb c, int thickness = 1);
  // Segment from (x0, y0) to (x1, y1), both ends included: Bresenham with a square brush of
  // thickness x thickness pixels centred on the line; ends far outside the canvas are clipped.
  void line(int x0, int y0, int x1, int y1, Rgb c, int thickness = 1);
  // Filled disc of radius r >= 0 (r = 0 is one pixel) centred on (cx, cy).
  void fill_circle(int cx, int cy, int r, Rgb c);

  // Text with its top-left corner at (x, y), each font pixel drawn as scale x scale. '\n' starts
  // a new line kLineH * scale lower; characters outside ASCII 32..126 are drawn as '?'.
  // requires: scale >= 1.
  void text(int x, int y, const std::string& s, Rgb c, int scale = 1);
  // The same text rotated 90 degrees counter-clockwise (read bottom to top, as a y-axis label),
  // occupying the box with top-left (x, y), width text_height(scale), height text_width(s, scale).
  void text_vertical(int x, int y, const std::string& s, Rgb c, int scale = 1);
  // Size of the box text() fills: the longest line's width, and the height of all lines.
  static int text_width(const std::string& s, int scale = 1);
  static int text_height(const std::string& s, int scale = 1);

  // requires: img float [C, H, W] (C = 1 or 3) or [H, W], values in [0, 1] (clamped); any device.
  // ensures: img drawn with its top-left at (x, y), each pixel as scale x scale, clipped.
  void blit(const Tensor& img, int x, int y, int scale = 1);

  // ensures: float32 [3, H, W] in [0, 1] (value / 255).
  Tensor to_tensor() const;
  // ensures: an RGB PNG at `path`, written atomically.
  void save_png(const std::string& path) const;
  const std::vector<uint8_t>& rgb() const { return rgb_; }  // H x W x 3, row-major

 private:
  int w_, h_;
  std::vector<uint8_t> rgb_;
  void draw_text(int x, int y, const std::string& s, Rgb c, int scale, bool vertical);
};

}  // namespace nabla::io
