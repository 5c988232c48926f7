// PNG output, image grids and the Canvas with its bitmap font (see image.h). This file holds the
// project's one STB_IMAGE_WRITE_IMPLEMENTATION; everything else includes stb_image_write.h plainly.
#include <nabla/io/image.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include <nabla/io/safetensors.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

namespace nabla::io {

namespace {

// The font: ASCII 32..126, five column bytes per glyph, left to right. Bit r of a column is the
// pixel in row r (bit 0 = top row); rows 0..6 hold capitals and digits, bit 7 the descenders of
// g, j, p, q, y, ',' and '_'.
// clang-format off
constexpr uint8_t kFont[95 * 5] = {
    0x00,0x00,0x00,0x00,0x00, 0x00,0x00,0x5F,0x00,0x00, 0x00,0x07,0x00,0x07,0x00,  // ' ' '!' '"'
    0x14,0x7F,0x14,0x7F,0x14, 0x24,0x2A,0x7F,0x2A,0x12, 0x23,0x13,0x08,0x64,0x62,  // '#' '$' '%'
    0x36,0x49,0x55,0x22,0x50, 0x00,0x00,0x07,0x00,0x00, 0x00,0x1C,0x22,0x41,0x00,  // '&' "'" '('
    0x00,0x41,0x22,0x1C,0x00, 0x14,0x08,0x3E,0x08,0x14, 0x08,0x08,0x3E,0x08,0x08,  // ')' '*' '+'
    0x00,0x80,0x60,0x00,0x00, 0x08,0x08,0x08,0x08,0x08, 0x00,0x60,0x60,0x00,0x00,  // ',' '-' '.'
    0x20,0x10,0x08,0x04,0x02, 0x3E,0x51,0x49,0x45,0x3E, 0x00,0x42,0x7F,0x40,0x00,  // '/' '0' '1'
    0x42,0x61,0x51,0x49,0x46, 0x21,0x41,0x45,0x4B,0x31, 0x18,0x14,0x12,0x7F,0x10,  // '2' '3' '4'
    0x27,0x45,0x45,0x45,0x39, 0x3C,0x4A,0x49,0x49,0x30, 0x01,0x71,0x09,0x05,0x03,  // '5' '6' '7'
    0x36,0x49,0x49,0x49,0x36, 0x06,0x49,0x49,0x29,0x1E, 0x00,0x36,0x36,0x00,0x00,  // '8' '9' ':'
    0x00,0x56,0x36,0x00,0x00, 0x08,0x14,0x22,0x41,0x00, 0x14,0x14,0x14,0x14,0x14,  // ';' '<' '='
    0x00,0x41,0x22,0x14,0x08, 0x02,0x01,0x51,0x09,0x06, 0x32,0x49,0x79,0x41,0x3E,  // '>' '?' '@'
    0x7E,0x11,0x11,0x11,0x7E, 0x7F,0x49,0x49,0x49,0x36, 0x3E,0x41,0x41,0x41,0x22,  // 'A' 'B' 'C'
    0x7F,0x41,0x41,0x22,0x1C, 0x7F,0x49,0x49,0x49,0x41, 0x7F,0x09,0x09,0x09,0x01,  // 'D' 'E' 'F'
    0x3E,0x41,0x49,0x49,0x7A, 0x7F,0x08,0x08,0x08,0x7F, 0x00,0x41,0x7F,0x41,0x00,  // 'G' 'H' 'I'
    0x20,0x40,0x41,0x3F,0x01, 0x7F,0x08,0x14,0x22,0x41, 0x7F,0x40,0x40,0x40,0x40,  // 'J' 'K' 'L'
    0x7F,0x02,0x0C,0x02,0x7F, 0x7F,0x04,0x08,0x10,0x7F, 0x3E,0x41,0x41,0x41,0x3E,  // 'M' 'N' 'O'
    0x7F,0x09,0x09,0x09,0x06, 0x3E,0x41,0x51,0x21,0x5E, 0x7F,0x09,0x19,0x29,0x46,  // 'P' 'Q' 'R'
    0x46,0x49,0x49,0x49,0x31, 0x01,0x01,0x7F,0x01,0x01, 0x3F,0x40,0x40,0x40,0x3F,  // 'S' 'T' 'U'
    0x1F,0x20,0x40,0x20,0x1F, 0x3F,0x40,0x38,0x40,0x3F, 0x63,0x14,0x08,0x14,0x63,  // 'V' 'W' 'X'
    0x07,0x08,0x70,0x08,0x07, 0x61,0x51,0x49,0x45,0x43, 0x00,0x7F,0x41,0x41,0x00,  // 'Y' 'Z' '['
    0x02,0x04,0x08,0x10,0x20, 0x00,0x41,0x41,0x7F,0x00, 0x04,0x02,0x01,0x02,0x04,  // '\\' ']' '^'
    0x80,0x80,0x80,0x80,0x80, 0x00,0x01,0x02,0x04,0x00, 0x20,0x54,0x54,0x54,0x78,  // '_' '`' 'a'
    0x7F,0x48,0x44,0x44,0x38, 0x38,0x44,0x44,0x44,0x20, 0x38,0x44,0x44,0x48,0x7F,  // 'b' 'c' 'd'
    0x38,0x54,0x54,0x54,0x18, 0x08,0x7E,0x09,0x01,0x02, 0x18,0xA4,0xA4,0xA4,0x7C,  // 'e' 'f' 'g'
    0x7F,0x08,0x04,0x04,0x78, 0x00,0x44,0x7D,0x40,0x00, 0x40,0x80,0x84,0x7D,0x00,  // 'h' 'i' 'j'
    0x7F,0x10,0x28,0x44,0x00, 0x00,0x41,0x7F,0x40,0x00, 0x7C,0x04,0x18,0x04,0x78,  // 'k' 'l' 'm'
    0x7C,0x08,0x04,0x04,0x78, 0x38,0x44,0x44,0x44,0x38, 0xFC,0x24,0x24,0x24,0x18,  // 'n' 'o' 'p'
    0x18,0x24,0x24,0x24,0xFC, 0x7C,0x08,0x04,0x04,0x08, 0x48,0x54,0x54,0x54,0x20,  // 'q' 'r' 's'
    0x04,0x3F,0x44,0x40,0x20, 0x3C,0x40,0x40,0x20,0x7C, 0x1C,0x20,0x40,0x20,0x1C,  // 't' 'u' 'v'
    0x3C,0x40,0x30,0x40,0x3C, 0x44,0x28,0x10,0x28,0x44, 0x1C,0xA0,0xA0,0xA0,0x7C,  // 'w' 'x' 'y'
    0x44,0x64,0x54,0x4C,0x44, 0x00,0x08,0x36,0x41,0x00, 0x00,0x00,0x7F,0x00,0x00,  // 'z' '{' '|'
    0x00,0x41,0x36,0x08,0x00, 0x08,0x04,0x08,0x10,0x08,  // '}' '~'
};
// clang-format on

uint8_t to_byte(double v) {
  if (!(v > 0)) return 0;  // also NaN
  if (v >= 1) return 255;
  return static_cast<uint8_t>(std::lround(v * 255));
}

// Checks an image argument and returns it as a contiguous float CPU tensor [C, H, W].
Tensor as_chw(const Tensor& x, const std::string& op) {
  NABLA_CHECK(x.defined(), op, ": the image is undefined");
  NABLA_CHECK(is_floating(x.dtype()), op, ": expected a float image, got ", x.str());
  Tensor t = x.detach();
  if (t.dim() == 2) t = t.unsqueeze(0);
  NABLA_CHECK(t.dim() == 3 && (t.size(0) == 1 || t.size(0) == 3), op,
              ": expected an image [C, H, W] with C = 1 or 3, or [H, W], got ", x.str());
  NABLA_CHECK(t.size(1) >= 1 && t.size(2) >= 1 && t.size(1) <= (1 << 24) && t.size(2) <= (1 << 24),
              op, ": image size ", shape_str(x.shape()), " is empty or too large");
  return t.to(Device::cpu()).contiguous().to(DType::Float32);
}

void write_png(const std::string& path, const std::string& op, int w, int h, int comp,
               const uint8_t* pixels) {
  std::string png;
  auto append = [](void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), size_t(size));
  };
  NABLA_CHECK(stbi_write_png_to_func(append, &png, w, h, comp, pixels, w * comp) != 0, op,
              ": cannot encode ", w, "x", h, " PNG for ", path);
  write_file_atomic(path, op, [&](std::FILE* f) { std::fwrite(png.data(), 1, png.size(), f); });
}

}  // namespace

void save_png(const std::string& path, const Tensor& x) {
  const Tensor t = as_chw(x, "save_png: " + path);
  const int C = int(t.size(0)), H = int(t.size(1)), W = int(t.size(2));
  const float* p = t.data<float>();
  std::vector<uint8_t> px(size_t(C) * H * W);
  for (int c = 0; c < C; ++c)
    for (int64_t i = 0; i < int64_t(H) * W; ++i) px[size_t(i * C + c)] = to_byte(p[c * H * W + i]);
  write_png(path, "save_png", W, H, C, px.data());
}

Tensor make_grid(const Tensor& images, int64_t nrow, int64_t padding, double pad_value,
                 int64_t scale) {
  NABLA_CHECK(images.defined(), "make_grid: images are undefined");
  NABLA_CHECK(images.dim() == 4 && images.size(0) >= 1 &&
                  (images.size(1) == 1 || images.size(1) == 3) && is_floating(images.dtype()),
              "make_grid: expected float images [N, C, H, W] with N >= 1 and C = 1 or 3, got ",
              images.str());
  NABLA_CHECK(nrow >= 1 && padding >= 0 && scale >= 1, "make_grid: need nrow >= 1, padding >= 0, ",
              "scale >= 1, got nrow ", nrow, ", padding ", padding, ", scale ", scale);
  const int64_t N = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
  const int64_t cols = std::min(nrow, N), rows = (N + cols - 1) / cols;
  // Guard against a typo in scale or padding asking for gigabytes (sized in double: no overflow).
  const double pixels =
      double(C) * (double(rows) * (double(H) * double(scale) + double(padding)) + double(padding)) *
      (double(cols) * (double(W) * double(scale) + double(padding)) + double(padding));
  NABLA_CHECK(pixels <= double(int64_t(1) << 28), "make_grid: a grid of ", rows, "x", cols, " ",
              images.str(), " with scale ", scale, " and padding ", padding, " is too large (",
              pixels, " values)");
  const int64_t cell_h = H * scale + padding, cell_w = W * scale + padding;
  const int64_t GH = rows * cell_h + padding, GW = cols * cell_w + padding;
  Tensor src = images.detach().to(Device::cpu()).contiguous().to(DType::Float32);
  Tensor grid = full({C, GH, GW}, pad_value);
  const float* s = src.data<float>();
  float* g = grid.data<float>();
  for (int64_t n = 0; n < N; ++n) {
    const int64_t y0 = (n / cols) * cell_h + padding, x0 = (n % cols) * cell_w + padding;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t y = 0; y < H * scale; ++y) {
        const float* srow = s + ((n * C + c) * H + y / scale) * W;
        float* grow = g + (c * GH + y0 + y) * GW + x0;
        for (int64_t x = 0; x < W * scale; ++x) grow[x] = srow[x / scale];
      }
  }
  return grid;
}

void save_image_grid(const std::string& path, const Tensor& images, int64_t nrow, int64_t padding,
                     int64_t scale) {
  save_png(path, make_grid(images, nrow, padding, 1.0, scale));
}

// ---------------------------------------------------------------- Canvas

Canvas::Canvas(int width, int height, Rgb background) : w_(width), h_(height) {
  NABLA_CHECK(width >= 1 && height >= 1 && width <= 16384 && height <= 16384, "Canvas: size ",
              width, "x", height, " is outside 1..16384");
  rgb_.resize(size_t(w_) * h_ * 3);
  for (size_t i = 0; i < rgb_.size(); i += 3) {
    rgb_[i] = background.r;
    rgb_[i + 1] = background.g;
    rgb_[i + 2] = background.b;
  }
}

Rgb Canvas::pixel(int x, int y) const {
  NABLA_CHECK(x >= 0 && y >= 0 && x < w_ && y < h_, "Canvas::pixel: (", x, ", ", y,
              ") is outside the ", w_, "x", h_, " canvas");
  const uint8_t* p = &rgb_[(size_t(y) * w_ + x) * 3];
  return {p[0], p[1], p[2]};
}

void Canvas::set_pixel(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
  uint8_t* p = &rgb_[(size_t(y) * w_ + x) * 3];
  p[0] = c.r;
  p[1] = c.g;
  p[2] = c.b;
}

void Canvas::fill_rect(int x, int y, int w, int h, Rgb c) {
  // Clip in 64 bits: x + w may overflow int for far-away rectangles.
  const int x0 = int(std::max<int64_t>(x, 0)), y0 = int(std::max<int64_t>(y, 0));
  const int x1 = int(std::min<int64_t>(int64_t(x) + w, w_));
  const int y1 = int(std::min<int64_t>(int64_t(y) + h, h_));
  for (int yy = y0; yy < y1; ++yy)
    for (int xx = x0; xx < x1; ++xx) set_pixel(xx, yy, c);
}

void Canvas::rect(int x, int y, int w, int h, Rgb c, int thickness) {
  const int t = std::max(1, std::min({thickness, w, h}));
  fill_rect(x, y, w, t, c);
  fill_rect(x, y + h - t, w, t, c);
  fill_rect(x, y, t, h, c);
  fill_rect(x + w - t, y, t, h, c);
}

void Canvas::line(int x0, int y0, int x1, int y1, Rgb c, int thickness) {
  // A brush wider than the canvas already covers all of it; capping it keeps coordinates small.
  const int t = std::clamp(thickness, 1, 2 * (w_ + h_)), half = (t - 1) / 2;
  // Clip the segment (Liang-Barsky) to the canvas grown by the brush size, so a segment with
  // far-away ends costs no more than one across the canvas. Interior pixels of a clipped segment
  // may shift by one from the unclipped walk; its visible part is the same line.
  const double lo_x = -t, lo_y = -t, hi_x = w_ + t, hi_y = h_ + t;
  const double dxf = double(x1) - x0, dyf = double(y1) - y0;
  double ta = 0, tb = 1;
  const double p[4] = {-dxf, dxf, -dyf, dyf};
  const double q[4] = {x0 - lo_x, hi_x - x0, y0 - lo_y, hi_y - y0};
  for (int k = 0; k < 4; ++k) {
    if (p[k] == 0) {
      if (q[k] < 0) return;  // parallel to this edge and outside it
      continue;
    }
    const double r = q[k] / p[k];
    if (p[k] < 0)
      ta = std::max(ta, r);
    else
      tb = std::min(tb, r);
  }
  if (ta > tb) return;
  if (ta > 0 || tb < 1) {
    const double ax = x0 + ta * dxf, ay = y0 + ta * dyf, bx = x0 + tb * dxf, by = y0 + tb * dyf;
    x0 = int(std::lround(ax)), y0 = int(std::lround(ay));
    x1 = int(std::lround(bx)), y1 = int(std::lround(by));
  }
  const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
  const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  int err = dx + dy, x = x0, y = y0;
  while (true) {
    fill_rect(x - half, y - half, t, t, c);
    if (x == x1 && y == y1) break;
    const int e2 = 2 * err;
    if (e2 >= dy) err += dy, x += sx;
    if (e2 <= dx) err += dx, y += sy;
  }
}

void Canvas::fill_circle(int cx, int cy, int r, Rgb c) {
  // A pixel is inside when its centre lies within r + 0.5: dx^2 + dy^2 <= r^2 + r. The loops
  // stay on the canvas, so a huge radius costs at most one pass over it.
  const int64_t r2 = int64_t(r) * r + r;
  const int64_t y0 = std::max<int64_t>(int64_t(cy) - r, 0),
                y1 = std::min<int64_t>(int64_t(cy) + r, h_ - 1);
  const int64_t x0 = std::max<int64_t>(int64_t(cx) - r, 0),
                x1 = std::min<int64_t>(int64_t(cx) + r, w_ - 1);
  for (int64_t y = y0; y <= y1; ++y)
    for (int64_t x = x0; x <= x1; ++x)
      if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r2) set_pixel(int(x), int(y), c);
}

int Canvas::text_width(const std::string& s, int scale) {
  size_t longest = 0, cur = 0;
  for (char ch : s) {
    cur = ch == '\n' ? 0 : cur + 1;
    longest = std::max(longest, cur);
  }
  return longest ? int(longest) * kAdvance * scale - scale : 0;
}

int Canvas::text_height(const std::string& s, int scale) {
  const int lines = 1 + int(std::count(s.begin(), s.end(), '\n'));
  return ((lines - 1) * kLineH + kGlyphH) * scale;
}

void Canvas::draw_text(int x, int y, const std::string& s, Rgb c, int scale, bool vertical) {
  NABLA_CHECK(scale >= 1, "Canvas::text: scale must be >= 1, got ", scale);
  const int box_w = text_width(s, scale);
  int u = 0, v = 0;  // top-left of the current glyph in the unrotated text box
  for (char ch : s) {
    if (ch == '\n') {
      u = 0;
      v += kLineH * scale;
      continue;
    }
    const int code = (ch >= 32 && ch <= 126) ? ch - 32 : '?' - 32;
    for (int col = 0; col < kGlyphW; ++col) {
      const uint8_t bits = kFont[code * kGlyphW + col];
      for (int row = 0; row < kGlyphH; ++row) {
        if (!((bits >> row) & 1)) continue;
        const int pu = u + col * scale, pv = v + row * scale;
        // Rotating counter-clockwise sends text-box pixel (u, v) to (v, box_w - 1 - u).
        if (vertical)
          fill_rect(x + pv, y + box_w - pu - scale, scale, scale, c);
        else
          fill_rect(x + pu, y + pv, scale, scale, c);
      }
    }
    u += kAdvance * scale;
  }
}

void Canvas::text(int x, int y, const std::string& s, Rgb c, int scale) {
  draw_text(x, y, s, c, scale, false);
}

void Canvas::text_vertical(int x, int y, const std::string& s, Rgb c, int scale) {
  draw_text(x, y, s, c, scale, true);
}

void Canvas::blit(const Tensor& img, int x, int y, int scale) {
  NABLA_CHECK(scale >= 1, "Canvas::blit: scale must be >= 1, got ", scale);
  const Tensor t = as_chw(img, "Canvas::blit");
  const int64_t C = t.size(0), H = t.size(1), W = t.size(2);
  const float* p = t.data<float>();
  for (int64_t i = 0; i < H; ++i)
    for (int64_t j = 0; j < W; ++j) {
      const int64_t k = i * W + j;
      const uint8_t r = to_byte(p[k]);
      const Rgb c =
          C == 1 ? Rgb{r, r, r} : Rgb{r, to_byte(p[H * W + k]), to_byte(p[2 * H * W + k])};
      fill_rect(int(x + j * scale), int(y + i * scale), scale, scale, c);
    }
}

Tensor Canvas::to_tensor() const {
  Tensor t = empty({3, h_, w_});
  float* p = t.data<float>();
  const size_t hw = size_t(w_) * h_;
  for (size_t i = 0; i < hw; ++i)
    for (size_t c = 0; c < 3; ++c) p[c * hw + i] = rgb_[i * 3 + c] / 255.0f;
  return t;
}

void Canvas::save_png(const std::string& path) const {
  write_png(path, "Canvas::save_png", w_, h_, 3, rgb_.data());
}

}  // namespace nabla::io
