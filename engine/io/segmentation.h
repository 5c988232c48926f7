// Pictures of segmentation masks: class colours, mask overlays, and a panel of rows of images and
// masks with a legend of the classes.
//
//   colorize_mask   int64 [H, W] (or [N, H, W]) of class indices -> float32 [3, H, W] (or
//                   [N, 3, H, W]), class k painted palette[k % palette.size()]
//   overlay_mask    out = (1 - alpha) image + alpha colour(mask) where the mask is not background
//                   (class 0), the image unchanged where it is
//   save_segmentation_panel   a title, column heads, one row per sample (a label and its cells),
//                   and a legend: a swatch and the name of every class
#pragma once

#include <string>
#include <vector>

#include <nabla/io/image.h>
#include <nabla/tensor.h>

namespace nabla::io {

// ensures: `classes` distinct colours: black for the background (class 0), then red, green, blue,
//   yellow, cyan, magenta, orange, purple, ... (cycling after 12).
std::vector<Rgb> segmentation_palette(int64_t classes);

// requires: mask int64, [H, W] or [N, H, W], any device, values >= 0 (nabla::Error naming the value
//   and its position otherwise); palette non-empty.
// ensures: float32 CPU [3, H, W] (or [N, 3, H, W]) in [0, 1].
Tensor colorize_mask(const Tensor& mask, const std::vector<Rgb>& palette);

// requires: image float [3, H, W] or [1, H, W] (or batched [N, C, H, W]), mask int64 [H, W] (or
//   [N, H, W]) of the same H, W (and N); 0 <= alpha <= 1. Errors name both shapes.
// ensures: float32 CPU [3, H, W] (or [N, 3, H, W]) as in the file comment.
Tensor overlay_mask(const Tensor& image, const Tensor& mask, const std::vector<Rgb>& palette,
                    double alpha = 0.5);

struct PanelRow {
  std::string label;          // drawn left of the cells (several lines allowed)
  std::vector<Tensor> cells;  // float [C, H, W] (C = 1 or 3) in [0, 1], all of one H x W
};

// requires: at least one row with at least one cell; class_names and palette of one length >= 1;
//   scale >= 1.
// ensures: the panel saved atomically at path (legend under the title). Errors name the path.
void save_segmentation_panel(const std::string& path, const std::string& title,
                             const std::vector<std::string>& heads,
                             const std::vector<PanelRow>& rows,
                             const std::vector<std::string>& class_names,
                             const std::vector<Rgb>& palette, int scale = 2);

}  // namespace nabla::io
