// nabla explain: input-gradient explanations of a classifier checkpoint (engine/explain).
//
//   nabla explain --checkpoint F --method M --indices A:B [--class C] [--layer NAME]
//                 [--out DIR] [--save-npy FILE] [--json]
//
// For test images A..B-1 it computes one map per image with method M, writes a PNG panel
// (original, heat map, overlay, with the class explained and the prediction) to DIR/M.png and,
// with --save-npy, the raw maps as float32 [B-A, H, W]. `--method compare` draws the
// comparison figure (original, guided backprop, Grad-CAM, guided Grad-CAM, occlusion);
// `--method class-model` and `--method activation` synthesize images by gradient ascent.
// `nabla explain detector` (explain_detector.cpp) trains the saliency-based adversarial
// detector.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include <nabla/data/mnist.h>
#include <nabla/error.h>
#include <nabla/explain/explain.h>
#include <nabla/explain/figure.h>
#include <nabla/io/files.h>
#include <nabla/io/heatmap.h>
#include <nabla/io/image.h>
#include <nabla/io/progress.h>
#include <nabla/io/table.h>
#include <nabla/ops.h>
#include <nets/classifier.h>

#include "common.h"

namespace nabla::cli {

namespace {

struct ExplainOptions {
  Common c;
  std::string checkpoint, method = "saliency", indices = "0:8";
  std::string save_npy, colormap = "jet";
  int64_t cls = -1, show = 8;
  explain::Options opt;
};

// Methods whose maps are signed (drawn with a diverging colormap centred on zero).
bool is_signed(const std::string& method) {
  return method == "integrated-gradients" || method == "cam";
}

const char* method_title(const std::string& m) {
  if (m == "saliency") return "vanilla saliency |dS_c/dx|";
  if (m == "smoothgrad") return "SmoothGrad: mean |dS_c/dx| over noisy copies";
  if (m == "integrated-gradients") return "integrated gradients (signed: red +, blue -)";
  if (m == "gradcam") return "Grad-CAM";
  if (m == "gradcam++") return "Grad-CAM++";
  if (m == "guided-backprop") return "guided backprop";
  if (m == "guided-gradcam") return "guided Grad-CAM";
  if (m == "deconvnet") return "deconvnet";
  if (m == "occlusion") return "occlusion: drop of the class score";
  if (m == "cam") return "CAM (signed: red +, blue -)";
  return m.c_str();
}

std::pair<int64_t, int64_t> parse_indices(const std::string& s, int64_t n) {
  const size_t colon = s.find(':');
  int64_t a = -1, b = -1;
  try {
    if (colon != std::string::npos) {
      size_t ua = 0, ub = 0;
      a = std::stoll(s.substr(0, colon), &ua);
      b = std::stoll(s.substr(colon + 1), &ub);
      if (ua != colon || ub != s.size() - colon - 1) a = b = -1;
    }
  } catch (const std::exception&) {
    a = b = -1;
  }
  NABLA_CHECK(a >= 0 && b > a, "--indices ", s, ": expected A:B with 0 <= A < B (test images A to ",
              "B-1)");
  NABLA_CHECK(b <= n, "--indices ", s, ": the test set has ", n, " images (indices 0 to ", n - 1,
              ")");
  return {a, b};
}

struct ImageBatch {
  Tensor x, labels;  // CPU
};

// Runs `method` on the images in batches of o.batch, on dev, with a progress bar.
// ensures: maps [n, H, W] (CPU float32), classes explained and predictions (int64 [n]).
struct Maps {
  Tensor maps, classes, pred;
};
Maps run_method(const std::string& method, nn::Module& net, const ImageBatch& ib,
                const ExplainOptions& o, Device dev) {
  const int64_t n = ib.x.size(0), nb = (n + o.c.batch - 1) / o.c.batch;
  io::ProgressBar bar(method, nb, o.c.show_progress() && nb > 1);
  std::vector<Tensor> maps;
  std::vector<int64_t> classes, preds;
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t lo = b * o.c.batch, hi = std::min(n, lo + o.c.batch);
    Tensor x = ib.x.slice(lo, hi).to(dev);
    explain::Options opt = o.opt;
    Tensor pred = explain::predict(net, x);
    opt.classes = o.cls >= 0 ? full({hi - lo}, double(o.cls), DType::Int64) : pred;
    maps.push_back(explain::explain(method, net, x, opt));
    for (int64_t v : opt.classes.to_vector<int64_t>()) classes.push_back(v);
    for (int64_t v : pred.to_vector<int64_t>()) preds.push_back(v);
    bar.update(b + 1);
  }
  bar.finish();
  return {concat(maps, 0).contiguous(), from_vector(classes, {n}), from_vector(preds, {n})};
}

Tensor heat(const Tensor& map, io::Colormap cm, bool signed_map) {
  return io::apply_colormap(io::normalize_map(map, signed_map), cm);
}

std::pair<double, double> min_max(const Tensor& t) {
  const Tensor c = t.to(Device::cpu()).to(DType::Float32).contiguous();
  const float* p = c.data<float>();
  const auto [lo, hi] = std::minmax_element(p, p + c.numel());
  return {double(*lo), double(*hi)};
}

nlohmann::json int_list(const Tensor& t) {
  nlohmann::json j = nlohmann::json::array();
  for (int64_t v : t.to_vector<int64_t>()) j.push_back(v);
  return j;
}

nlohmann::json run_explain(const ExplainOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const Device dev = resolve_device(o.c.device);
  std::string arch;
  std::shared_ptr<nn::Module> net = nets::load_classifier(o.checkpoint, &arch);
  net->to(dev);
  nabla::io::create_dirs(o.c.out, "the output folder (--out)");
  ExplainOptions e = o;
  if (e.opt.layer.empty()) e.opt.layer = arch == "gap" ? "features" : "conv2";
  NABLA_CHECK(o.method != "cam" || arch == "gap", "--method cam needs a model that ends in global ",
              "average pooling; ", o.checkpoint, " holds a ", net->type_name(),
              ". Train one with `nabla classify train --arch gap`.");
  data::Dataset test = data::load_mnist(o.c.data, data::Split::Test);
  const io::Colormap cm = io::colormap_from_name(o.colormap);
  const std::string png = o.c.out + "/" + o.method + ".png";
  nlohmann::json j = {{"method", o.method},
                      {"checkpoint", o.checkpoint},
                      {"model", net->type_name()},
                      {"device", dev.str()},
                      {"figure", png}};
  const int64_t classes = int64_t(test.class_names.size());
  NABLA_CHECK(o.cls < classes, "--class ", o.cls, ": the model has classes 0 to ", classes - 1);

  Tensor maps;  // what --save-npy writes
  if (o.method == "class-model" || o.method == "activation") {
    const Shape in{test.images.size(1), test.images.size(2), test.images.size(3)};
    std::vector<std::string> labels;
    Tensor images;
    if (o.method == "class-model") {
      Tensor cls = o.cls >= 0 ? full({1}, double(o.cls), DType::Int64)
                              : arange(0.0, double(classes), 1.0, DType::Int64);
      images = explain::class_model(*net, cls, in, e.opt, dev);
      for (int64_t c : cls.to_vector<int64_t>()) labels.push_back(test.class_names[size_t(c)]);
      j["classes"] = int_list(cls);
    } else {
      images = explain::activation_max(*net, in, e.opt, dev);
      labels.push_back(e.opt.layer + " ch " + std::to_string(e.opt.channel));
      j["layer"] = e.opt.layer;
      j["channel"] = e.opt.channel;
    }
    maps = images.reshape({images.size(0), in[1], in[2]}).contiguous();
    // Each synthesized image is shown on its own scale: their ranges are arbitrary.
    std::vector<io::TableRow> rows;
    for (int64_t i = 0; i < images.size(0); ++i) {
      Tensor m = maps.slice(i, i + 1).squeeze(0);
      rows.push_back({labels[size_t(i)],
                      {io::normalize_map(m).unsqueeze(0), heat(m, io::Colormap::Diverging, true)}});
    }
    io::save_image_table(
        png,
        o.method == "class-model"
            ? "class model: arg max_I S_c(I) - lambda |I|^2, gradient ascent from I = 0"
            : "activation maximisation: arg max_I mean A_k(I) - lambda |I|^2",
        {"image (min-max)", "signed (red +)"}, rows, io::Colormap::Diverging, true);
    j["lambda"] = e.opt.lambda;
    j["iterations"] = e.opt.iterations;
    j["lr"] = e.opt.lr;
  } else {
    const auto [a, b] = parse_indices(o.indices, test.size());
    ImageBatch ib{test.images.slice(a, b).contiguous(), test.labels.slice(a, b).contiguous()};
    j["indices"] = {a, b};
    j["n"] = b - a;
    const Tensor ex = o.cls >= 0 ? full({b - a}, double(o.cls), DType::Int64) : Tensor();
    const int64_t shown = std::min<int64_t>(o.show, b - a);
    if (o.method == "compare") {
      NABLA_CHECK(o.save_npy.empty(), "--save-npy needs one method; --method compare draws four");
      nlohmann::json f = explain::save_comparison_figure(
          png, *net, e.opt.layer, ib.x.slice(0, shown), ib.labels.slice(0, shown), test.class_names,
          ex.defined() ? ex.slice(0, shown).contiguous() : Tensor(), dev);
      j["layer"] = e.opt.layer;
      j["classes"] = f["classes"];
      j["predicted"] = f["predicted"];
    } else {
      Maps r = run_method(o.method, *net, ib, e, dev);
      maps = r.maps;
      std::vector<io::TableRow> rows;
      const bool sgn = is_signed(o.method);
      const io::Colormap mcm = sgn ? io::Colormap::Diverging : cm;
      for (int64_t i = 0; i < shown; ++i) {
        Tensor img = ib.x.slice(i, i + 1).squeeze(0), m = maps.slice(i, i + 1).squeeze(0);
        const int64_t c = r.classes.data<int64_t>()[i], p = r.pred.data<int64_t>()[i];
        rows.push_back(
            {explain::row_label(test.class_names, a + i, c, p, ib.labels.data<int64_t>()[i]),
             {img, heat(m, mcm, sgn),
              io::overlay_heatmap(img, io::normalize_map(m, sgn), mcm, 0.5)},
             p == ib.labels.data<int64_t>()[i] ? io::kBlack : io::kRed});
      }
      if (shown > 0)
        io::save_image_table(
            png, std::string(method_title(o.method)) + " (each map scaled to its own range)",
            {"image", "map", "overlay"}, rows, mcm, sgn);
      else
        j["figure"] = "";
      const std::vector<std::string> layered{"gradcam", "gradcam++", "guided-gradcam", "cam"};
      if (std::find(layered.begin(), layered.end(), o.method) != layered.end())
        j["layer"] = e.opt.layer;
      j["classes"] = int_list(r.classes);
      j["predicted"] = int_list(r.pred);
      j["labels"] = int_list(ib.labels);
      const auto [lo, hi] = min_max(maps);
      j["map_min"] = lo;
      j["map_max"] = hi;
    }
  }
  if (!o.save_npy.empty()) {
    const auto parent = std::filesystem::path(o.save_npy).parent_path();
    if (!parent.empty()) nabla::io::create_dirs(parent, "the folder of the output file");
    save_npy(o.save_npy, maps);
    j["npy"] = o.save_npy;
    j["npy_shape"] = maps.shape();
  }
  j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::ofstream(o.c.out + "/" + o.method + ".json") << j.dump(2) << "\n";
  return j;
}

}  // namespace

void register_explain(CLI::App& app) {
  auto o = std::make_shared<ExplainOptions>();
  CLI::App* e = app.add_subcommand(
      "explain",
      "Explain a classifier checkpoint's decisions on test images A..B-1 with input-gradient\n"
      "methods (engine/explain; the math is in docs/explain.md). Writes DIR/<method>.png\n"
      "(image, heat map, overlay per row) and DIR/<method>.json; --save-npy FILE writes the raw\n"
      "maps as float32 [B-A, H, W]. `nabla explain detector --help`: the saliency-based\n"
      "adversarial detector.");
  e->add_option("--checkpoint", o->checkpoint,
                "classifier weights (.safetensors): FashionCNN, or FashionGAP from `classify "
                "train --arch gap`");
  e->add_option("--method", o->method,
                "saliency, smoothgrad, integrated-gradients, gradcam, gradcam++, "
                "guided-backprop, guided-gradcam, deconvnet, occlusion, cam (FashionGAP only), "
                "compare (guided backprop, Grad-CAM, guided Grad-CAM, occlusion side by side), "
                "class-model (one synthesized image per class), activation (one channel of "
                "--layer)")
      ->capture_default_str()
      ->check([](const std::string& m) {
        const auto& k = explain::method_names();
        if (std::find(k.begin(), k.end(), m) != k.end() || m == "compare" || m == "class-model" ||
            m == "activation")
          return std::string();
        return "unknown method " + m;
      });
  e->add_option("--indices", o->indices, "test images A:B (A included, B excluded)")
      ->capture_default_str();
  e->add_option("--class", o->cls,
                "explain this class for every image (default: the predicted one)")
      ->check(CLI::Range(int64_t(0), int64_t(1000)));
  e->add_option("--layer", o->opt.layer,
                "module for Grad-CAM, CAM and activation, by its dotted name (default: conv2 "
                "for FashionCNN, features for FashionGAP)");
  e->add_option("--samples", o->opt.samples, "smoothgrad: noisy copies per image")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(100000)));
  e->add_option("--sigma", o->opt.sigma, "smoothgrad: noise std as a fraction of the image range")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 10.0));
  e->add_option("--steps", o->opt.steps, "integrated-gradients: Riemann steps from the black image")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(100000)));
  e->add_option("--patch", o->opt.patch, "occlusion: side of the square patch")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(4096)));
  e->add_option("--stride", o->opt.stride, "occlusion: step between patch positions")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(4096)));
  e->add_option("--fill", o->opt.fill, "occlusion: value of the patch")->capture_default_str();
  e->add_option("--iterations", o->opt.iterations, "class-model, activation: ascent steps")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(1000000)));
  e->add_option("--lr", o->opt.lr, "class-model, activation: ascent step size")
      ->capture_default_str()
      ->check(positive());
  e->add_option("--lambda", o->opt.lambda, "class-model, activation: weight of |I|^2")
      ->capture_default_str()
      ->check(non_negative());
  e->add_option("--channel", o->opt.channel, "activation: channel of --layer")
      ->capture_default_str()
      ->check(non_negative());
  e->add_option("--max-rows", o->opt.max_batch,
                "rows per forward inside smoothgrad, integrated-gradients and occlusion (bounds "
                "memory)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(1000000)));
  e->add_option("--show", o->show, "images drawn in the PNG panel")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(0), int64_t(64)));
  e->add_option("--colormap", o->colormap, "jet, inferno or gray for unsigned maps")
      ->capture_default_str()
      ->check(CLI::IsMember({"jet", "inferno", "gray"}));
  e->add_option("--save-npy", o->save_npy, "write the raw maps as float32 .npy [B-A, H, W]");
  o->c.out = "explain_out";
  add_common_flags(e, o->c, kSeed | kBatch | kData | kDevice | kOut | kJson,
                   {{"--seed", "smoothgrad noise, activation start"},
                    {"--batch",
                     "images per forward/backward (smoothgrad, integrated-gradients and occlusion "
                     "multiply it internally, bounded by --max-rows)"},
                    {"--out", "output folder (PNG panel and JSON report)"},
                    {"--json", "print one JSON object (method, classes, predictions, paths...)"}});
  register_explain_detector(*e);
  e->require_subcommand(0, 1);
  e->callback([o, e] {
    if (!e->get_subcommands().empty()) return;  // `explain detector` ran its own callback
    NABLA_CHECK(!o->checkpoint.empty(), "explain: --checkpoint is required (see --help)");
    NABLA_CHECK(std::filesystem::is_regular_file(o->checkpoint), "explain: --checkpoint ",
                o->checkpoint, ": no such file");
    o->opt.seed = o->c.seed;
    nlohmann::json j = run_explain(*o);
    if (o->c.json) {
      std::cout << j.dump() << "\n";
      return;
    }
    std::printf("%s on %s (%s, %s)\n", o->method.c_str(), o->checkpoint.c_str(),
                j["model"].get<std::string>().c_str(), j["device"].get<std::string>().c_str());
    if (j.contains("n"))
      std::printf("test images %lld..%lld (%lld)\n", (long long)j["indices"][0].get<int64_t>(),
                  (long long)j["indices"][1].get<int64_t>() - 1, (long long)j["n"].get<int64_t>());
    if (j.contains("map_min"))
      std::printf("map range [%.4g, %.4g]\n", j["map_min"].get<double>(),
                  j["map_max"].get<double>());
    if (!j["figure"].get<std::string>().empty())
      std::printf("figure: %s\n", j["figure"].get<std::string>().c_str());
    if (j.contains("npy"))
      std::printf("maps: %s %s\n", j["npy"].get<std::string>().c_str(),
                  shape_str(j["npy_shape"].get<Shape>()).c_str());
    std::printf("%.2f s\n", j["seconds"].get<double>());
  });
}

}  // namespace nabla::cli
