// Segmentation pictures (see segmentation.h).
#include <nabla/io/segmentation.h>

#include <algorithm>

#include <nabla/error.h>

namespace nabla::io {

namespace {

// A CPU int64 copy of a [H, W] or [N, H, W] mask, every value checked to be >= 0.
Tensor mask_on_host(const Tensor& mask, const char* fn) {
  NABLA_CHECK(mask.dtype() == DType::Int64 && (mask.dim() == 2 || mask.dim() == 3), fn,
              ": mask must be int64 [H, W] or [N, H, W], got ", mask.str());
  Tensor m = mask.to(Device::cpu()).contiguous();
  const int64_t* p = m.data<int64_t>();
  for (int64_t i = 0; i < m.numel(); ++i)
    NABLA_CHECK(p[i] >= 0, fn, ": mask ", shape_str(m.shape()), " holds class ", p[i],
                " at flat position ", i, " (classes are >= 0)");
  return m;
}

}  // namespace

std::vector<Rgb> segmentation_palette(int64_t classes) {
  static const Rgb kColors[] = {{0, 0, 0},      {220, 40, 40},  {40, 180, 60},   {50, 100, 230},
                                {240, 210, 30}, {30, 200, 210}, {210, 60, 200},  {255, 140, 20},
                                {130, 80, 190}, {140, 90, 50},  {250, 150, 190}, {150, 150, 150}};
  std::vector<Rgb> p;
  for (int64_t k = 0; k < std::max<int64_t>(classes, 1); ++k) p.push_back(kColors[k % 12]);
  return p;
}

Tensor colorize_mask(const Tensor& mask, const std::vector<Rgb>& palette) {
  NABLA_CHECK(!palette.empty(), "colorize_mask: empty palette");
  const Tensor m = mask_on_host(mask, "colorize_mask");
  const bool batched = m.dim() == 3;
  const int64_t N = batched ? m.size(0) : 1, H = m.size(-2), W = m.size(-1), hw = H * W;
  Tensor out = batched ? empty({N, 3, H, W}) : empty({3, H, W});
  const int64_t* pm = m.data<int64_t>();
  float* po = out.data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < hw; ++k) {
      const Rgb c = palette[size_t(pm[n * hw + k]) % palette.size()];
      po[(n * 3 + 0) * hw + k] = c.r / 255.0f;
      po[(n * 3 + 1) * hw + k] = c.g / 255.0f;
      po[(n * 3 + 2) * hw + k] = c.b / 255.0f;
    }
  return out;
}

Tensor overlay_mask(const Tensor& image, const Tensor& mask, const std::vector<Rgb>& palette,
                    double alpha) {
  NABLA_CHECK(alpha >= 0 && alpha <= 1, "overlay_mask: alpha must be in [0, 1], got ", alpha);
  const Tensor m = mask_on_host(mask, "overlay_mask");
  const bool batched = m.dim() == 3;
  NABLA_CHECK(image.dim() == m.dim() + 1 &&
                  (image.dtype() == DType::Float32 || image.dtype() == DType::Float64),
              "overlay_mask: image ", image.str(), " does not match mask ", m.str());
  const int64_t C = image.size(-3);
  bool same = (C == 1 || C == 3) && image.size(-2) == m.size(-2) && image.size(-1) == m.size(-1);
  if (batched) same = same && image.size(0) == m.size(0);
  NABLA_CHECK(same, "overlay_mask: image ", shape_str(image.shape()), " and mask ",
              shape_str(m.shape()),
              " differ in size (image [C, H, W] with C = 1 or 3, mask [H, W])");
  const Tensor img = image.to(Device::cpu()).to(DType::Float32).contiguous();
  const Tensor col = colorize_mask(m, palette);
  const int64_t N = batched ? m.size(0) : 1, hw = m.size(-2) * m.size(-1);
  Tensor out = batched ? empty({N, 3, m.size(-2), m.size(-1)}) : empty({3, m.size(-2), m.size(-1)});
  const float* pi = img.data<float>();
  const float* pc = col.data<float>();
  const int64_t* pm = m.data<int64_t>();
  float* po = out.data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t k = 0; k < hw; ++k) {
        const float v = std::clamp(pi[(n * C + (C == 1 ? 0 : c)) * hw + k], 0.0f, 1.0f);
        const float a = pm[n * hw + k] == 0 ? 0.0f : float(alpha);
        po[(n * 3 + c) * hw + k] = (1 - a) * v + a * pc[(n * 3 + c) * hw + k];
      }
  return out;
}

void save_segmentation_panel(const std::string& path, const std::string& title,
                             const std::vector<std::string>& heads,
                             const std::vector<PanelRow>& rows,
                             const std::vector<std::string>& class_names,
                             const std::vector<Rgb>& palette, int scale) {
  NABLA_CHECK(!rows.empty() && !rows[0].cells.empty(), "save_segmentation_panel: ", path,
              ": needs at least one row with one cell");
  NABLA_CHECK(!class_names.empty() && class_names.size() == palette.size(),
              "save_segmentation_panel: ", path, ": ", class_names.size(), " class names for ",
              palette.size(), " colours");
  NABLA_CHECK(scale >= 1, "save_segmentation_panel: scale must be >= 1, got ", scale);
  const int h = int(rows[0].cells[0].size(-2)) * scale, w = int(rows[0].cells[0].size(-1)) * scale;
  size_t cols = heads.size();
  int label_w = 8;
  for (const PanelRow& r : rows) {
    cols = std::max(cols, r.cells.size());
    label_w = std::max(label_w, Canvas::text_width(r.label) + 12);
  }
  const int gap = 8, col_w = std::max(w, 6 * 14) + gap, row_h = h + gap;
  // The legend: one swatch and name per class, wrapped to the panel's width.
  const int width = std::max(label_w + int(cols) * col_w + 4, Canvas::text_width(title) + 16);
  std::vector<std::pair<int, int>> at;  // legend entry positions
  int lx = 6, ly = 22;
  for (const std::string& name : class_names) {
    const int ew = 14 + Canvas::text_width(name) + 14;
    if (lx + ew > width && lx > 6) {
      lx = 6;
      ly += 14;
    }
    at.emplace_back(lx, ly);
    lx += ew;
  }
  const int heads_y = ly + 18, top = heads_y + 14;
  Canvas c(width, top + int(rows.size()) * row_h + 4);
  c.text(6, 4, title, kBlack);
  for (size_t k = 0; k < class_names.size(); ++k) {
    c.fill_rect(at[k].first, at[k].second, 10, 10, palette[k]);
    c.rect(at[k].first, at[k].second, 10, 10, kGray);
    c.text(at[k].first + 14, at[k].second + 1, class_names[k], kBlack);
  }
  for (size_t k = 0; k < heads.size(); ++k)
    c.text(label_w + int(k) * col_w, heads_y, heads[k], kGray);
  for (size_t r = 0; r < rows.size(); ++r) {
    const int y = top + int(r) * row_h;
    c.text(6, y + 4, rows[r].label, kBlack);
    for (size_t k = 0; k < rows[r].cells.size(); ++k)
      c.blit(rows[r].cells[k], label_w + int(k) * col_w, y, scale);
  }
  c.save_png(path);
}

}  // namespace nabla::io
