// Heat-map pictures for input-gradient interpretability (saliency, Grad-CAM, occlusion...):
// colormaps, per-map normalisation, overlays on the input image, and a colorbar for figures.
//
//   colormap         t in [0, 1] -> RGB, piecewise linear between control points:
//                      Jet        matplotlib's "jet" segment data (dark blue, blue, cyan, yellow,
//                                 red, dark red), exactly
//                      Inferno    30 of the 256 entries of matplotlib's "inferno" table (black,
//                                 purple, orange, pale yellow), chosen so that interpolating
//                                 between them stays within 0.5/255 of every entry
//                      Gray       (t, t, t)
//                      Hot        black -> red -> yellow -> white: (3t, 3t - 1, 3t - 2), clamped
//                      Diverging  matplotlib's "bwr": blue (0, 0, 1) at 0, white at 0.5, red
//                                 (1, 0, 0) at 1, for signed maps normalised with symmetric = true
//                    matplotlib itself looks t up in a 256-entry table (entry floor(256 t)); the
//                    maps here are the continuous curves behind those tables, so they differ
//                    from matplotlib by at most one table step (a few 8-bit levels on jet's
//                    steepest ramps) and t = 0.5 is exactly white in Diverging.
//   normalize_map    each map m of [H, W] or [N, H, W] on its own:
//                      t = (m - min m) / (max m - min m)        (a constant map gives zeros)
//                      t = 0.5 + 0.5 m / max |m|                (symmetric: zero stays at 0.5)
//   apply_colormap   [H, W] -> [3, H, W] (or [N, H, W] -> [N, 3, H, W], ready for make_grid)
//   overlay_heatmap  out = (1 - alpha) rgb(image) + alpha colormap(up(map)), where up is
//                    bilinear resizing to the image's H x W with align_corners = false (PyTorch's
//                    F.interpolate(mode="bilinear", align_corners=False), the same upsampling as
//                    Grad-CAM's), and rgb repeats a gray image's one channel three times
//   draw_colorbar    a vertical bar on a Canvas, high end at the top, with two labels
//
// Non-finite values: NaN is colored black (kNaNColor); +inf and -inf clamp to 1 and 0. Every
// tensor argument may live on any device (it is copied to the CPU); results are float32 CPU
// tensors. Every check on user input throws nabla::Error naming the function and the shapes.
#pragma once

#include <array>
#include <string>

#include <nabla/io/image.h>
#include <nabla/tensor.h>

namespace nabla::io {

enum class Colormap { Jet, Inferno, Gray, Diverging, Hot };

// The color of NaN in every colormap.
inline constexpr Rgb kNaNColor = kBlack;

// requires: nothing (t outside [0, 1] is clamped, NaN allowed).
// ensures: the colormap's color at t as components in [0, 1], unrounded: what apply_colormap and
//   overlay_heatmap write. NaN gives kNaNColor / 255.
std::array<double, 3> colormap_unit(double t, Colormap cm);
// ensures: colormap_unit(t, cm) in 8 bits, each component round(255 v); NaN gives kNaNColor.
//   Jet: 0 -> (0, 0, 128), 1 -> (128, 0, 0); Inferno: 0 -> (0, 0, 4), 1 -> (252, 255, 164).
Rgb colormap(double t, Colormap cm);
// ensures: "jet", "inferno", "gray", "diverging" or "hot".
const char* colormap_name(Colormap cm);
// requires: name is one of colormap_name's answers (throws nabla::Error listing them otherwise).
Colormap colormap_from_name(const std::string& name);

// requires: map float32 or float64, [H, W] or [N, H, W] with H, W >= 1 (N = 0 allowed); any
//   device.
// ensures: a new float32 CPU tensor of the same shape, each [H, W] map scaled by its own finite
//   values (formulas in the file comment): in [0, 1], NaN stays NaN, +inf -> 1, -inf -> 0.
//   Degenerate maps: without symmetric, a map whose finite values are all equal (or that has
//   none) gives 0 at its finite pixels; with symmetric, one whose finite values are all 0 gives
//   0.5 there.
Tensor normalize_map(const Tensor& map, bool symmetric = false);

// requires: map01 float, [H, W] or [N, H, W] with H, W >= 1; values in [0, 1] (clamped); any
//   device.
// ensures: float32 CPU [3, H, W] (or [N, 3, H, W]) holding colormap_unit(map01[.., y, x], cm).
Tensor apply_colormap(const Tensor& map01, Colormap cm);

// requires: image float, [C, H, W] with C = 1 or 3, or [H, W], values in [0, 1] (clamped, NaN
//   read as 0); map01 float [h, w] with h, w >= 1, values in [0, 1] (clamped). Batched: image
//   [N, C, H, W] with map01 [N, h, w]. 0 <= alpha <= 1. Any devices.
// ensures: float32 CPU [3, H, W] (batched: [N, 3, H, W]) equal to
//   (1 - alpha) rgb(image) + alpha colormap_unit(up(map01)) pixel by pixel, where up resizes the
//   map bilinearly (align_corners = false) to H x W when its size differs, and is the identity
//   otherwise. A NaN in the map colors kNaNColor every output pixel whose interpolation weights
//   touch it (weights of 0 do not count).
Tensor overlay_heatmap(const Tensor& image, const Tensor& map01, Colormap cm = Colormap::Jet,
                       double alpha = 0.5);

// A vertical colorbar. The bar fills the rectangle with top-left (x, y), size w x h: row r of it
// (r = 0 at the top) is colored colormap((h - 1 - r) / (h - 1), cm), so the top row is the
// colormap at 1 and the bottom row at 0. A 1-pixel black frame is drawn just outside the bar
// (x - 1, y - 1, w + 2, h + 2). The labels are written in black (scale 1) with their left edge at
// x + w + 4, 3 blank columns after the frame: hi_label with its top at y, lo_label with its text
// box ending at the bar's bottom (top at y + h - Canvas::text_height(lo_label)). They overlap
// when h < the two text heights. Everything clips at the canvas border.
// requires: 1 <= w <= 2^20, 2 <= h <= 2^20.
void draw_colorbar(Canvas& c, int x, int y, int w, int h, Colormap cm, const std::string& lo_label,
                   const std::string& hi_label);

}  // namespace nabla::io
