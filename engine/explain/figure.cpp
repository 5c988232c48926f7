// Explanation figures (see figure.h).
#include <nabla/explain/figure.h>

#include <nabla/explain/explain.h>
#include <nabla/io/heatmap.h>
#include <nabla/io/table.h>
#include <nabla/ops.h>

namespace nabla::explain {

std::string row_label(const std::vector<std::string>& names, int64_t index, int64_t explained,
                      int64_t pred, int64_t truth) {
  auto name = [&](int64_t k) {
    return k >= 0 && size_t(k) < names.size() ? names[size_t(k)] : std::to_string(k);
  };
  // Appended, not `"#" + std::to_string(...)`: GCC 12 warns (-Wrestrict, a known false positive)
  // on a string literal plus a temporary std::string.
  std::string out = "#";
  out += std::to_string(index);
  for (const auto& [label, k] : {std::pair<const char*, int64_t>{"\nexplains: ", explained},
                                 {"\npred: ", pred},
                                 {"\ntrue: ", truth}}) {
    out += label;
    out += name(k);
  }
  return out;
}

nlohmann::json save_comparison_figure(const std::string& path, nn::Module& net,
                                      const std::string& layer, const Tensor& x,
                                      const Tensor& labels, const std::vector<std::string>& names,
                                      const Tensor& classes, Device dev) {
  Options opt;
  opt.layer = layer;
  Tensor xd = x.to(dev);
  Tensor pred = predict(net, xd);
  opt.classes = classes.defined() ? classes : pred;
  const Tensor gb = guided_backprop(net, xd, opt), gc = gradcam(net, xd, opt),
               occ = occlusion(net, xd, opt);
  const Tensor ggc = mul(gb, gc);  // guided Grad-CAM, from the two maps already computed
  auto heat = [](const Tensor& m) {
    return io::apply_colormap(io::normalize_map(m, false), io::Colormap::Gray);
  };
  std::vector<io::TableRow> rows;
  for (int64_t i = 0; i < x.size(0); ++i) {
    Tensor img = x.slice(i, i + 1).squeeze(0).to(Device::cpu());
    auto m = [&](const Tensor& t) { return t.slice(i, i + 1).squeeze(0); };
    rows.push_back(
        {row_label(names, i, opt.classes.data<int64_t>()[i], pred.data<int64_t>()[i],
                   labels.data<int64_t>()[i]),
         {img, heat(m(gb)),
          io::overlay_heatmap(img, io::normalize_map(m(gc)), io::Colormap::Jet, 0.5), heat(m(ggc)),
          io::overlay_heatmap(img, io::normalize_map(m(occ)), io::Colormap::Jet, 0.5)}});
  }
  io::save_image_table(path,
                       "explanations of the class named in each row (Grad-CAM at " + layer + ")",
                       {"original", "guided backprop", "Grad-CAM", "guided Grad-CAM", "occlusion"},
                       rows, io::Colormap::Jet, false);
  return {{"figure", path},
          {"layer", layer},
          {"classes", opt.classes.to_vector<int64_t>()},
          {"predicted", pred.to_vector<int64_t>()}};
}

}  // namespace nabla::explain
