// The attack figure (see figure.h).
#include <nabla/attack/figure.h>

#include <algorithm>
#include <cstdio>

#include <nabla/autograd.h>
#include <nabla/error.h>
#include <nabla/io/image.h>
#include <nabla/io/segmentation.h>
#include <nabla/ops.h>

namespace nabla::attack {

namespace {

// Predicted class and its softmax probability for each image of x.
std::vector<std::pair<int64_t, double>> predictions(nn::Module& net, const Tensor& x, Device dev) {
  NoGradGuard ng;
  Tensor p = softmax(net(x.to(dev)), 1).to(Device::cpu()).to(DType::Float32).contiguous();
  std::vector<std::pair<int64_t, double>> out;
  const int64_t K = p.size(1);
  const float* pp = p.data<float>();
  for (int64_t i = 0; i < p.size(0); ++i) {
    const float* row = pp + i * K;
    const int64_t c = std::max_element(row, row + K) - row;
    out.emplace_back(c, double(row[c]));
  }
  return out;
}

}  // namespace

void save_attack_figure(const std::string& path, nn::Module& net, const Tensor& x,
                        const Tensor& x_adv, const std::vector<std::string>& names, Device dev,
                        const std::string& title) {
  NABLA_CHECK(x.defined() && x_adv.defined() && x.shape() == x_adv.shape() && x.dim() == 4,
              "save_attack_figure: ", path, ": x and x_adv must be [n, C, H, W] of one shape, got ",
              x.defined() ? x.str() : "undefined", " and ",
              x_adv.defined() ? x_adv.str() : "undefined");
  const int n = int(x.size(0)), side = int(x.size(3)), scale = 4, cell_w = side * scale + 40,
            cell_h = int(x.size(2)) * scale + 34;
  auto clean = predictions(net, x, dev), adv = predictions(net, x_adv, dev);
  auto name = [&](int64_t c) {
    return c >= 0 && size_t(c) < names.size() ? names[size_t(c)] : std::to_string(c);
  };
  io::Canvas canvas(3 * cell_w + 40, n * cell_h + 40);
  canvas.text(6, 4, title, io::kBlack);
  const char* heads[3] = {"original", "perturbation (scaled)", "adversarial"};
  for (int c = 0; c < 3; ++c) canvas.text(20 + c * cell_w, 20, heads[c], io::kGray);
  Tensor delta = sub(x_adv, x);
  const int text_y = int(x.size(2)) * scale + 4;
  for (int i = 0; i < n; ++i) {
    const int y = 34 + i * cell_h;
    Tensor xi = x.slice(i, i + 1).squeeze(0), ai = x_adv.slice(i, i + 1).squeeze(0);
    Tensor di = delta.slice(i, i + 1).squeeze(0);
    const double m = std::max(1e-12, max(abs(di)).item<double>());
    canvas.blit(xi, 20, y, scale);
    canvas.blit(add(mul(di, 0.5 / m), 0.5), 20 + cell_w, y, scale);
    canvas.blit(ai, 20 + 2 * cell_w, y, scale);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s %.0f%%", name(clean[size_t(i)].first).c_str(),
                  100 * clean[size_t(i)].second);
    canvas.text(20, y + text_y, buf, io::kBlack);
    std::snprintf(buf, sizeof buf, "x %.3f (Linf)", m);
    canvas.text(20 + cell_w, y + text_y, buf, io::kGray);
    const bool flipped = adv[size_t(i)].first != clean[size_t(i)].first;
    std::snprintf(buf, sizeof buf, "%s %.0f%%", name(adv[size_t(i)].first).c_str(),
                  100 * adv[size_t(i)].second);
    canvas.text(20 + 2 * cell_w, y + text_y, buf, flipped ? io::kRed : io::kBlack);
  }
  canvas.save_png(path);
}

void save_segmentation_attack_figure(const std::string& path, nn::Module& net, const Tensor& x,
                                     const Tensor& x_adv, const Tensor& masks,
                                     const std::vector<std::string>& class_names, double eps,
                                     Device dev, const std::string& title) {
  NABLA_CHECK(x.dim() == 4 && x.shape() == x_adv.shape() && masks.dim() == 3 &&
                  masks.dtype() == DType::Int64 && masks.size(0) == x.size(0) &&
                  masks.size(1) == x.size(2) && masks.size(2) == x.size(3) && eps > 0,
              "save_segmentation_attack_figure ", path,
              ": needs x and x_adv [n, C, H, W] and masks ", "int64 [n, H, W] and eps > 0, got x ",
              x.str(), ", x_adv ", x_adv.str(), ", masks ", masks.str(), ", eps ", eps);
  Tensor p0, p1;
  {
    NoGradGuard ng;
    p0 = argmax(net(x.to(dev)), 1).to(Device::cpu());
    p1 = argmax(net(x_adv.to(dev)), 1).to(Device::cpu());
  }
  const auto palette = io::segmentation_palette(int64_t(class_names.size()));
  auto accuracy = [&](const Tensor& pred, int64_t i) {
    const auto p = pred.slice(i, i + 1).to_vector<int64_t>();
    const auto m = masks.slice(i, i + 1).to_vector<int64_t>();
    int64_t c = 0;
    for (size_t k = 0; k < m.size(); ++k) c += p[k] == m[k];
    return double(c) / double(std::max<size_t>(m.size(), 1));
  };
  std::vector<io::PanelRow> rows;
  for (int64_t i = 0; i < x.size(0); ++i) {
    const Tensor xi = x.slice(i, i + 1).squeeze(0).to(DType::Float32);
    const Tensor ai = x_adv.slice(i, i + 1).squeeze(0).to(DType::Float32);
    const Tensor delta = clamp(add(mul(sub(ai, xi), 0.5 / eps), 0.5), 0.0, 1.0);
    char label[96];
    std::snprintf(label, sizeof label, "#%lld\npixel acc\n%.3f -> %.3f", (long long)i,
                  accuracy(p0, i), accuracy(p1, i));
    rows.push_back({label,
                    {xi, delta, ai, io::colorize_mask(masks.slice(i, i + 1).squeeze(0), palette),
                     io::colorize_mask(p0.slice(i, i + 1).squeeze(0), palette),
                     io::colorize_mask(p1.slice(i, i + 1).squeeze(0), palette)}});
  }
  io::save_segmentation_panel(
      path, title,
      {"image", "perturbation", "adversarial", "true mask", "pred clean", "pred attacked"}, rows,
      class_names, palette, x.size(2) <= 32 ? 3 : 2);
}

}  // namespace nabla::attack
