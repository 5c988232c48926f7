// A table of image cells as a PNG: a title, column heads, and per row a text label (several
// lines allowed) and one [C, H, W] image per column (values in [0, 1], C = 1 or 3), each pixel
// drawn as scale x scale, with a colorbar at the right for the maps' colormap. The explanation
// panels and comparison figures are drawn with it.
#pragma once

#include <string>
#include <vector>

#include <nabla/io/heatmap.h>
#include <nabla/io/image.h>
#include <nabla/tensor.h>

namespace nabla::io {

struct TableRow {
  std::string label;
  std::vector<Tensor> cells;  // [C, H, W] each, all of the first cell's H x W
  Rgb color = kBlack;         // of the label
};

// requires: at least one row with at least one cell.
// ensures: the table saved atomically at path; the colorbar's ends read "-" / "+" when
//   colorbar_signed, else "low" / "high". Errors name the path.
void save_image_table(const std::string& path, const std::string& title,
                      const std::vector<std::string>& heads, const std::vector<TableRow>& rows,
                      Colormap cm, bool colorbar_signed, int scale = 3);

}  // namespace nabla::io
