// Image tables (see table.h).
#include <nabla/io/table.h>

#include <algorithm>

#include <nabla/error.h>

namespace nabla::io {

void save_image_table(const std::string& path, const std::string& title,
                      const std::vector<std::string>& heads, const std::vector<TableRow>& rows,
                      Colormap cm, bool colorbar_signed, int scale) {
  NABLA_CHECK(!rows.empty() && !rows[0].cells.empty(), "save_image_table: ", path,
              ": needs at least one row with one cell");
  const int h = int(rows[0].cells[0].size(-2)) * scale, w = int(rows[0].cells[0].size(-1)) * scale,
            gap = 10, label_w = 150;
  const int col_w = std::max(w, 6 * 16) + gap, row_h = h + gap;
  const int width = label_w + int(heads.size()) * col_w + 60, top = 36;
  Canvas c(std::max(width, Canvas::text_width(title) + 16), top + int(rows.size()) * row_h + 8);
  c.text(6, 4, title, kBlack);
  for (size_t k = 0; k < heads.size(); ++k) c.text(label_w + int(k) * col_w, 22, heads[k], kGray);
  for (size_t r = 0; r < rows.size(); ++r) {
    const int y = top + int(r) * row_h;
    c.text(6, y + 4, rows[r].label, rows[r].color);
    for (size_t k = 0; k < rows[r].cells.size(); ++k)
      c.blit(rows[r].cells[k], label_w + int(k) * col_w, y, scale);
  }
  draw_colorbar(c, width - 44, top, 10, std::max(40, int(rows.size()) * row_h - gap), cm,
                colorbar_signed ? "-" : "low", colorbar_signed ? "+" : "high");
  c.save_png(path);
}

}  // namespace nabla::io
