// nabla segment attack: FGSM, PGD or a targeted PGD against a U-Net checkpoint on the test split,
// through engine/attack's segmentation objectives (objective.h, segmentation.h). Reports the
// loss, pixel accuracy and mIoU on the clean and on the attacked images, the norms of the
// perturbation, and writes a panel: image, perturbation, adversarial image, true mask,
// prediction before and after.
//
//   fgsm      x' = clip(x + eps sign(grad_x sum_ij CE(f(x)_ij, y_ij)))
//   pgd       x_{k+1} = Pi_{x,eps}(x_k + alpha sign(grad sum_ij CE(f(x_k)_ij, y_ij))), `steps`
//   times targeted  x_{k+1} = Pi_{x,eps}(x_k - alpha sign(grad sum_ij CE(f(x_k)_ij, t))): descends
//   the
//             CE toward the full-area mask of --target-class t (the paper's evaluation is t = 0,
//             the background, eps = 0.01 and 100 steps)
// Every attack runs its whole budget (no early stop).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nabla/attack/figure.h>
#include <nabla/attack/segmentation.h>
#include <nabla/data/histology.h>
#include <nabla/error.h>
#include <nabla/io/files.h>
#include <nabla/io/progress.h>
#include <nabla/ops.h>
#include <nabla/train/evaluate.h>
#include <nets/unet.h>
#include <nets/unet_train.h>

#include "common.h"

namespace nabla::cli {

namespace {

struct SegmentAttackFlags {
  Common c;
  std::string checkpoint, method = "pgd";
  int64_t target_class = 0, steps = 10, rows = 4;
  double eps = 0.01, alpha = 0;
  bool random_start = false;
};

std::string fmt(const nlohmann::json& v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v.is_number() ? v.get<double>() : NAN);
  return buf;
}

void print_text(const nlohmann::json& j) {
  std::printf("checkpoint %s\ndata %s, test split, %lld images\n",
              j["checkpoint"].get<std::string>().c_str(), j["data"].get<std::string>().c_str(),
              (long long)j["n"].get<int64_t>());
  std::printf("attack %s (%s), eps %s, alpha %s, %lld steps, %.1f s\n\n",
              j["method"].get<std::string>().c_str(), j["objective"].get<std::string>().c_str(),
              fmt(j["eps"]).c_str(), fmt(j["alpha"]).c_str(), (long long)j["steps"].get<int64_t>(),
              j["seconds"].get<double>());
  const bool targeted = j.contains("target_class");
  std::printf("%-10s %8s %10s %12s %12s%s\n", "images", "loss", "pixel acc", "mIoU 1..K-1",
              "mIoU all", targeted ? "  predicted as target" : "");
  for (const char* k : {"clean", "attacked"}) {
    const auto& r = j[k];
    std::printf("%-10s %8s %10s %12s %12s", k, fmt(r["loss"]).c_str(),
                fmt(r["pixel_accuracy"]).c_str(), fmt(r["miou"]).c_str(),
                fmt(r["miou_all"]).c_str());
    if (targeted) std::printf("  %s", fmt(r["target_fraction"]).c_str());
    std::printf("\n");
  }
  const auto& p = j["perturbation"];
  std::printf("\nperturbation: L-inf mean %s max %s, L2 mean %s, L0 mean %.0f of %lld values\n",
              fmt(p["mean_linf"]).c_str(), fmt(p["max_linf"]).c_str(), fmt(p["mean_l2"]).c_str(),
              p["mean_l0"].get<double>(), (long long)p["values_per_image"].get<int64_t>());
  std::printf("IoU per class (clean -> attacked):");
  for (size_t k = 0; k < j["class_names"].size(); ++k)
    std::printf(" %s %s->%s", j["class_names"][k].get<std::string>().c_str(),
                fmt(j["clean"]["per_class_iou"][k]).c_str(),
                fmt(j["attacked"]["per_class_iou"][k]).c_str());
  std::printf("\nwrote %s\n", j["panel"].get<std::string>().c_str());
}

// The summary of one evaluation, with the fraction of pixels predicted as `target` (>= 0).
nlohmann::json summary(const train::SegmentationEvaluation& e, int64_t target) {
  nlohmann::json j = e.to_json();
  nlohmann::json r = {{"loss", j["loss"]},
                      {"pixel_accuracy", j["pixel_accuracy"]},
                      {"miou", j["miou"]},
                      {"miou_all", j["miou_all"]},
                      {"per_class_iou", j["per_class_iou"]}};
  if (target >= 0) {
    const std::vector<int64_t> p = e.pred.to_vector<int64_t>();
    int64_t hit = 0;
    for (int64_t v : p) hit += v == target;
    r["target_fraction"] = double(hit) / double(std::max<size_t>(p.size(), 1));
  }
  return r;
}

void run_attack(SegmentAttackFlags& f) {
  const Device dev = resolve_device(f.c.device);
  apply_threads(f.c);
  std::shared_ptr<nets::UNet> net = nets::load_unet(f.checkpoint);
  net->to(dev);
  net->eval();
  const int64_t K = net->config().classes;
  NABLA_CHECK(f.method != "targeted" || (f.target_class >= 0 && f.target_class < K),
              "segment attack: --target-class ", f.target_class, " is outside [0, ", K,
              ") of the checkpoint ", f.checkpoint);
  nets::SegmentationDataOptions o = nets::checkpoint_data_options(f.checkpoint);
  if (!f.c.data.empty()) o.data = f.c.data;
  o.classes = K;
  o.test_limit = f.c.test_limit;
  const nets::SegmentationData d = nets::load_segmentation_data(o, /*with_train=*/false);
  const auto* ts = dynamic_cast<const data::TensorSource*>(d.test.get());
  NABLA_CHECK(ts != nullptr, "segment attack: the test split is not in memory");
  const Tensor x = ts->tensors()["image"], y = ts->tensors()["mask"];
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3);

  attack::Options opt;
  opt.eps = f.eps;
  opt.steps = f.method == "fgsm" ? 1 : int(f.steps);
  // Madry et al.'s step: 2.5 eps / steps reaches the ball's surface from anywhere inside it.
  opt.alpha = f.alpha > 0 ? f.alpha : (f.method == "fgsm" ? f.eps : 2.5 * f.eps / double(f.steps));
  opt.random_start = f.random_start;
  opt.early_stop = false;
  opt.seed = f.c.seed;
  opt.objective = f.method == "targeted"
                      ? attack::Objective::segmentation_targeted(
                            attack::full_mask(1, H, W, f.target_class).squeeze(0), 1.0)
                      : attack::Objective::segmentation();
  const std::string engine_method = f.method == "fgsm" ? "fgsm" : "pgd";
  const int64_t target = f.method == "targeted" ? f.target_class : -1;

  const train::SegmentationEvaluation clean =
      train::evaluate_segmenter(*net, d.test, d.class_names, f.c.batch, dev, true, false);
  io::ProgressBar bar("attack", N, f.c.show_progress());
  const attack::SetResult a = attack::attack_set(engine_method, *net, x, y, opt, f.c.batch, dev,
                                                 [&](int64_t done, int64_t) { bar.update(done); });
  bar.finish();
  auto adv_src = std::make_shared<data::TensorSource>(
      data::Example{{"image", a.x_adv}, {"mask", y}}, ts->item_names());
  const train::SegmentationEvaluation attacked =
      train::evaluate_segmenter(*net, adv_src, d.class_names, f.c.batch, dev, true, false);

  // The panel: the first --rows images.
  nabla::io::create_dirs(f.c.out, "the output folder (--out)");
  const std::string panel = (std::filesystem::path(f.c.out) / "attack_panel.png").string();
  {
    const int64_t R = std::min(f.rows, N);
    char title[160];
    std::snprintf(title, sizeof title, "segment attack: %s, eps %.4g, %d steps%s", f.method.c_str(),
                  opt.eps, opt.steps,
                  target >= 0 ? (", toward " + d.class_names[size_t(target)]).c_str() : "");
    attack::save_segmentation_attack_figure(
        panel, *net, x.slice(0, R).contiguous(), a.x_adv.slice(0, R).contiguous(),
        y.slice(0, R).contiguous(), d.class_names, opt.eps > 0 ? opt.eps : 1.0, dev, title);
  }

  nlohmann::json j = {{"checkpoint", f.checkpoint},
                      {"data", d.description},
                      {"device", dev.str()},
                      {"n", N},
                      {"method", f.method},
                      {"objective", opt.objective.name()},
                      {"eps", opt.eps},
                      {"alpha", opt.alpha},
                      {"steps", opt.steps},
                      {"random_start", opt.random_start},
                      {"class_names", d.class_names},
                      {"clean", summary(clean, target)},
                      {"attacked", summary(attacked, target)},
                      {"perturbation",
                       {{"mean_linf", a.mean_linf},
                        {"max_linf", a.max_linf},
                        {"mean_l2", a.mean_l2},
                        {"mean_l0", a.mean_l0},
                        {"values_per_image", x.numel() / N}}},
                      {"seconds", a.seconds},
                      {"panel", panel}};
  if (target >= 0) j["target_class"] = target;
  print_report(f.c, j, print_text);
}

}  // namespace

void register_segment_attack(CLI::App& segment) {
  auto f = std::make_shared<SegmentAttackFlags>();
  CLI::App* cmd = segment.add_subcommand(
      "attack",
      "Attack a U-Net checkpoint on the test split through the segmentation objective and\n"
      "report loss, pixel accuracy and mIoU before and after, the perturbation's norms, and a\n"
      "panel (DIR/attack_panel.png). fgsm and pgd ascend the per-pixel cross-entropy; targeted\n"
      "descends it toward the full-area mask of --target-class (PGD, the whole budget).");
  cmd->add_option("--checkpoint", f->checkpoint, "the U-Net .safetensors file")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--method", f->method, "fgsm, pgd or targeted")
      ->capture_default_str()
      ->check(CLI::IsMember({"fgsm", "pgd", "targeted"}));
  cmd->add_option("--target-class", f->target_class,
                  "targeted: the class of the full-area target mask (0: background)")
      ->capture_default_str();
  cmd->add_option("--eps", f->eps, "L-inf radius in pixel space [0, 1]")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--alpha", f->alpha,
                  "step size (default: eps for fgsm, 2.5 eps / steps for pgd and targeted)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--steps", f->steps, "iterations of pgd and targeted")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(100000)));
  cmd->add_flag("--random-start", f->random_start, "pgd: start from x + U(-eps, eps)");
  cmd->add_option("--rows", f->rows, "images in the panel")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(64)));
  f->c.batch = 16;
  f->c.test_limit = 64;
  f->c.out = "runs/segment_attack";
  add_common_flags(
      cmd, f->c, kData | kOut | kBatch | kDevice | kJson | kQuiet | kSeed | kTestLimit | kThreads,
      {{"--batch", "images attacked at a time"},
       {"--data", "image+mask folder as for segment train (default: the checkpoint's data)"},
       {"--out", "folder of the panel"},
       {"--seed", "seed of --random-start"},
       {"--test-limit", "attack only the first N test images (0: all)"},
       {"--json",
        "print one JSON object (clean and attacked: loss, pixel_accuracy, miou, miou_all, "
        "per_class_iou; perturbation norms) on stdout"}});
  cmd->callback([f] { run_attack(*f); });
}

}  // namespace nabla::cli
