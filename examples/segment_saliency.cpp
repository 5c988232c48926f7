// nabla segment saliency: the saliency map of a segmentation model,
//   l_seg(x) = (1/|R|) sum_{(i,j) in R} CE(f(x)_:,ij, m_ij),   S(x) = max_c |d l_seg / d x_c,ij|,
// R every pixel or the --region rectangle, m the true mask (or the model's own prediction with
// --against pred), computed with one backward pass to the input (explain::dense_saliency). Writes
// a heat-map panel (image, mask, prediction, saliency, overlay), and with --save-npy the maps
// (saliency.npy, float32 [N, H, W]) and the images.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nabla/autograd.h>
#include <nabla/error.h>
#include <nabla/explain/explain.h>
#include <nabla/io/files.h>
#include <nabla/io/heatmap.h>
#include <nabla/io/segmentation.h>
#include <nabla/ops.h>
#include <nets/unet.h>
#include <nets/unet_train.h>

#include "common.h"

namespace nabla::cli {

namespace {

struct SegmentSaliencyFlags {
  Common c;
  std::string checkpoint, region, against = "truth", save_npy;
};

struct Region {
  bool whole = true;
  int64_t y0 = 0, x0 = 0, y1 = 0, x1 = 0;  // rows [y0, y1), columns [x0, x1)
};

Region parse_region(const std::string& s, int64_t H, int64_t W) {
  Region r{true, 0, 0, H, W};
  if (s.empty()) return r;
  const std::vector<std::string> parts = split_list(s);
  std::vector<int64_t> v;
  for (const auto& p : parts) {
    try {
      size_t used = 0;
      v.push_back(std::stoll(p, &used));
      NABLA_CHECK(used == p.size(), "");
    } catch (const std::exception&) {
      NABLA_CHECK(false, "segment saliency: --region '", s,
                  "' must be four integers y0,x0,y1,x1; '", p, "' is not one");
    }
  }
  NABLA_CHECK(v.size() == 4, "segment saliency: --region '", s,
              "' must be four integers y0,x0,y1,x1, got ", v.size());
  NABLA_CHECK(0 <= v[0] && v[0] < v[2] && v[2] <= H && 0 <= v[1] && v[1] < v[3] && v[3] <= W,
              "segment saliency: --region ", s, " must satisfy 0 <= y0 < y1 <= ", H,
              " and 0 <= x0 < x1 <= ", W, " (the tiles are ", H, "x", W, ")");
  return {false, v[0], v[1], v[2], v[3]};
}

void print_text(const nlohmann::json& j) {
  std::printf("checkpoint %s\ndata %s, test split, %lld images\n",
              j["checkpoint"].get<std::string>().c_str(), j["data"].get<std::string>().c_str(),
              (long long)j["n"].get<int64_t>());
  std::printf("l_seg: mean per-pixel CE against the %s over %s\n",
              j["against"].get<std::string>().c_str(), j["region_text"].get<std::string>().c_str());
  std::printf("%-6s %10s %12s %12s %14s\n", "image", "l_seg", "max S", "mean S", "S in region");
  for (const auto& im : j["images"])
    std::printf("%-6lld %10.4f %12.4e %12.4e %14.4f\n", (long long)im["index"].get<int64_t>(),
                im["loss"].get<double>(), im["max"].get<double>(), im["mean"].get<double>(),
                im["mass_in_region"].get<double>());
  std::printf(
      "(S in region: the share of the map's sum inside the region, which covers %.4f of "
      "the pixels)\n",
      j["region_area"].get<double>());
  std::printf("wrote %s\n", j["panel"].get<std::string>().c_str());
}

void run_saliency(SegmentSaliencyFlags& f) {
  const Device dev = resolve_device(f.c.device);
  apply_threads(f.c);
  std::shared_ptr<nets::UNet> net = nets::load_unet(f.checkpoint);
  net->to(dev);
  net->eval();
  const int64_t K = net->config().classes;
  nets::SegmentationDataOptions o = nets::checkpoint_data_options(f.checkpoint);
  if (!f.c.data.empty()) o.data = f.c.data;
  o.classes = K;
  o.test_limit = f.c.test_limit;
  const nets::SegmentationData d = nets::load_segmentation_data(o, /*with_train=*/false);
  const auto* ts = dynamic_cast<const data::TensorSource*>(d.test.get());
  NABLA_CHECK(ts != nullptr, "segment saliency: the test split is not in memory");
  const Tensor x = ts->tensors()["image"], y = ts->tensors()["mask"];
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3);
  const Region reg = parse_region(f.region, H, W);

  Tensor pred;
  {
    NoGradGuard ng;
    pred = argmax((*net)(x.to(dev)), 1).to(Device::cpu());
  }
  const Tensor target = f.against == "pred" ? pred : y;
  Tensor region = zeros({N, H, W}, DType::Float32);
  {
    float* p = region.data<float>();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = reg.y0; i < reg.y1; ++i)
        for (int64_t k = reg.x0; k < reg.x1; ++k) p[(n * H + i) * W + k] = 1;
  }
  const Tensor S = explain::dense_saliency(*net, x.to(dev), target.to(dev), region.to(dev));
  // l_seg per image, for the report.
  std::vector<double> loss;
  {
    NoGradGuard ng;
    const Tensor ce = cross_entropy((*net)(x.to(dev)), target.to(dev), Tensor(), Reduction::None)
                          .to(Device::cpu())
                          .to(DType::Float64);
    const std::vector<double> c = ce.to_vector<double>();
    const double cnt = double((reg.y1 - reg.y0) * (reg.x1 - reg.x0));
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t i = reg.y0; i < reg.y1; ++i)
        for (int64_t k = reg.x0; k < reg.x1; ++k) s += c[size_t((n * H + i) * W + k)];
      loss.push_back(s / cnt);
    }
  }
  nlohmann::json images = nlohmann::json::array();
  const std::vector<float> s = S.to_vector<float>();
  for (int64_t n = 0; n < N; ++n) {
    double mx = 0, sum = 0, in = 0;
    for (int64_t i = 0; i < H; ++i)
      for (int64_t k = 0; k < W; ++k) {
        const double v = s[size_t((n * H + i) * W + k)];
        mx = std::max(mx, v);
        sum += v;
        if (i >= reg.y0 && i < reg.y1 && k >= reg.x0 && k < reg.x1) in += v;
      }
    images.push_back({{"index", n},
                      {"loss", loss[size_t(n)]},
                      {"max", mx},
                      {"mean", sum / double(H * W)},
                      {"mass_in_region", sum > 0 ? in / sum : 0.0}});
  }

  nabla::io::create_dirs(f.c.out, "the output folder (--out)");
  const std::string panel = (std::filesystem::path(f.c.out) / "saliency_panel.png").string();
  {
    const auto palette = io::segmentation_palette(K);
    const Tensor s01 = io::normalize_map(S);
    std::vector<io::PanelRow> rows;
    for (int64_t n = 0; n < std::min<int64_t>(N, 16); ++n) {
      const Tensor xi = x.slice(n, n + 1).squeeze(0).to(DType::Float32);
      const Tensor mi = s01.slice(n, n + 1).squeeze(0);
      char label[64];
      std::snprintf(label, sizeof label, "#%lld\nl_seg %.3f", (long long)n, loss[size_t(n)]);
      rows.push_back({label,
                      {xi, io::colorize_mask(y.slice(n, n + 1).squeeze(0), palette),
                       io::colorize_mask(pred.slice(n, n + 1).squeeze(0), palette),
                       io::apply_colormap(mi, io::Colormap::Jet),
                       io::overlay_heatmap(xi, mi, io::Colormap::Jet, 0.5)}});
    }
    io::save_segmentation_panel(panel,
                                "segment saliency |d l_seg / dx| (max over RGB), " +
                                    std::string(reg.whole ? "every pixel" : "region " + f.region),
                                {"image", "true mask", "prediction", "saliency", "overlay"}, rows,
                                d.class_names, palette);
  }
  nlohmann::json j = {
      {"checkpoint", f.checkpoint},
      {"data", d.description},
      {"device", dev.str()},
      {"n", N},
      {"against", f.against == "pred" ? "prediction" : "true mask"},
      {"region", {reg.y0, reg.x0, reg.y1, reg.x1}},
      {"region_text", reg.whole ? std::string("every pixel")
                                : "rows " + std::to_string(reg.y0) + ".." +
                                      std::to_string(reg.y1 - 1) + ", columns " +
                                      std::to_string(reg.x0) + ".." + std::to_string(reg.x1 - 1)},
      {"region_area", double((reg.y1 - reg.y0) * (reg.x1 - reg.x0)) / double(H * W)},
      {"images", images},
      {"panel", panel}};
  if (!f.save_npy.empty()) {
    nabla::io::create_dirs(f.save_npy, "the --save-npy folder");
    const std::filesystem::path dir(f.save_npy);
    save_npy((dir / "saliency.npy").string(), S);
    save_npy((dir / "images.npy").string(), x);
    save_npy((dir / "masks.npy").string(), target);
    j["saved"] = (dir / "saliency.npy").string() + ", images.npy, masks.npy";
  }
  print_report(f.c, j, print_text);
}

}  // namespace

void register_segment_saliency(CLI::App& segment) {
  auto f = std::make_shared<SegmentSaliencyFlags>();
  CLI::App* cmd = segment.add_subcommand(
      "saliency",
      "Saliency of a U-Net checkpoint on test tiles: S = max over RGB of |d l_seg / dx|, l_seg\n"
      "the mean per-pixel cross-entropy over every pixel or --region, one backward pass.\n"
      "Writes DIR/saliency_panel.png (image, mask, prediction, heat map, overlay).");
  cmd->add_option("--checkpoint", f->checkpoint, "the U-Net .safetensors file")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--region", f->region,
                  "y0,x0,y1,x1: l_seg over rows y0..y1-1 and columns x0..x1-1 only (default: "
                  "every pixel)");
  cmd->add_option("--against", f->against,
                  "truth (the true mask) or pred (the model's own prediction)")
      ->capture_default_str()
      ->check(CLI::IsMember({"truth", "pred"}));
  cmd->add_option("--save-npy", f->save_npy,
                  "write DIR/saliency.npy (float32 [N, H, W]), DIR/images.npy and DIR/masks.npy "
                  "(the mask l_seg was taken against)");
  f->c.test_limit = 4;
  f->c.out = "runs/segment_saliency";
  add_common_flags(cmd, f->c, kData | kOut | kDevice | kJson | kQuiet | kTestLimit | kThreads,
                   {{"--data",
                     "image+mask folder as for segment train (default: the checkpoint's "
                     "data)"},
                    {"--out", "folder of the panel"},
                    {"--test-limit", "explain the first N test images (0: all)"},
                    {"--json", "print one JSON object on stdout"}});
  cmd->callback([f] { run_saliency(*f); });
}

}  // namespace nabla::cli
