// nabla segment eval: loss, pixel accuracy, IoU and Dice per class, the mean IoU over the nucleus
// classes and over all classes, and the confusion matrix of a U-Net checkpoint (ours, or a PyTorch
// state_dict of milesial/Pytorch-UNet's UNet saved as safetensors) on the test split. --json
// prints one object with at least "pixel_accuracy", "miou" (classes 1..K-1), "miou_all",
// "per_class_iou" and "n"; --save-npy DIR writes images.npy (float32 [N, 3, H, W]), masks.npy and
// pred.npy (int64 [N, H, W]).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <nabla/data/histology.h>
#include <nabla/error.h>
#include <nabla/io/files.h>
#include <nabla/io/safetensors.h>
#include <nabla/train/evaluate.h>
#include <nets/unet.h>
#include <nets/unet_train.h>

#include "common.h"

namespace nabla::cli {

namespace {

struct SegmentEvalFlags {
  Common c;
  std::string checkpoint, save_npy, split = "test";
  int64_t tile = 64, n_test = 256;
  CLI::Option *tile_opt = nullptr, *n_opt = nullptr, *seed_opt = nullptr;
};

std::string fmt(const nlohmann::json& v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v.is_number() ? v.get<double>() : NAN);
  return buf;
}

void print_text(const nlohmann::json& j) {
  std::printf("checkpoint %s\ndata %s, %s split\n", j["checkpoint"].get<std::string>().c_str(),
              j["data"].get<std::string>().c_str(), j["split"].get<std::string>().c_str());
  std::printf("%lld images, %lld pixels: loss %.4f, pixel accuracy %.4f\n",
              (long long)j["n"].get<int64_t>(), (long long)j["pixels"].get<int64_t>(),
              j["loss"].get<double>(), j["pixel_accuracy"].get<double>());
  const size_t K = j["class_names"].size();
  std::printf(
      "mIoU %s over classes 1..%zu (background excluded), %s over all %zu classes; mean "
      "Dice %s (classes 1..%zu)\n\n",
      fmt(j["miou"]).c_str(), K - 1, fmt(j["miou_all"]).c_str(), K, fmt(j["mean_dice"]).c_str(),
      K - 1);
  std::printf("%-14s %7s %7s %10s %10s\n", "class", "IoU", "Dice", "pixels", "predicted");
  for (const auto& pc : j["per_class"])
    std::printf("%-14s %7s %7s %10lld %10lld\n", pc["class"].get<std::string>().c_str(),
                fmt(pc["iou"]).c_str(), fmt(pc["dice"]).c_str(),
                (long long)pc["pixels"].get<int64_t>(), (long long)pc["predicted"].get<int64_t>());
  std::printf("\nconfusion matrix (rows: true class, columns: predicted)\n%16s", "");
  const auto& conf = j["confusion"];
  for (size_t p = 0; p < conf.size(); ++p) std::printf("%10zu", p);
  std::printf("\n");
  for (size_t t = 0; t < conf.size(); ++t) {
    std::printf("%zu %-14s", t, j["class_names"][t].get<std::string>().c_str());
    for (const auto& v : conf[t]) std::printf("%10lld", (long long)v.get<int64_t>());
    std::printf("\n");
  }
  if (j.contains("saved")) std::printf("\nwrote %s\n", j["saved"].get<std::string>().c_str());
}

// A metadata value of the checkpoint as an integer, or `fallback`.
int64_t meta_int(const std::map<std::string, std::string>& m, const char* key, int64_t fallback) {
  const auto it = m.find(key);
  if (it == m.end()) return fallback;
  try {
    return std::stoll(it->second);
  } catch (const std::exception&) {
    return fallback;
  }
}

void run_eval(SegmentEvalFlags& f) {
  const Device dev = resolve_device(f.c.device);
  apply_threads(f.c);
  std::shared_ptr<nets::UNet> net = nets::load_unet(f.checkpoint);
  net->to(dev);
  // The generator's tile size, test-set size and seed default to the training run's.
  const auto meta = io::load_safetensors(f.checkpoint).metadata;
  nets::SegmentationDataOptions o;
  o.data = f.c.data;
  o.classes = net->config().classes;
  o.tile = f.tile_opt->count() ? f.tile : meta_int(meta, "tile", f.tile);
  o.n_test = f.n_opt->count() ? f.n_test : meta_int(meta, "n_test", f.n_test);
  o.n_val = f.n_opt->count() ? f.n_test : meta_int(meta, "n_val", o.n_test);
  o.seed = f.seed_opt->count() ? f.c.seed : uint64_t(meta_int(meta, "seed", 0));
  o.test_limit = f.c.test_limit;
  const nets::SegmentationData d = nets::load_segmentation_data(o, /*with_train=*/false);
  const auto& src = f.split == "val" ? d.val : d.test;
  const train::SegmentationEvaluation r = train::evaluate_segmenter(
      *net, src, d.class_names, f.c.batch, dev, !f.save_npy.empty(), f.c.show_progress());
  nlohmann::json j = r.to_json();
  j["checkpoint"] = f.checkpoint;
  j["data"] = d.description;
  j["split"] = f.split;
  if (!f.save_npy.empty()) {
    nabla::io::create_dirs(f.save_npy, "the --save-npy folder");
    const auto* ts = dynamic_cast<const data::TensorSource*>(src.get());
    NABLA_CHECK(ts != nullptr, "segment eval: the ", f.split, " split is not in memory");
    const std::filesystem::path dir(f.save_npy);
    save_npy((dir / "images.npy").string(), ts->tensors()["image"]);
    save_npy((dir / "masks.npy").string(), ts->tensors()["mask"]);
    save_npy((dir / "pred.npy").string(), r.pred);
    j["saved"] = (dir / "images.npy").string() + ", masks.npy, pred.npy";
  }
  print_report(f.c, j, print_text);
}

}  // namespace

void register_segment_eval(CLI::App& segment) {
  auto f = std::make_shared<SegmentEvalFlags>();
  CLI::App* eval = segment.add_subcommand(
      "eval",
      "Evaluate a U-Net checkpoint (safetensors, milesial/Pytorch-UNet's names; the widths are\n"
      "read from it) on the test split: loss, pixel accuracy, IoU and Dice per class, mIoU over\n"
      "the nucleus classes (background excluded) and over all classes, confusion matrix.");
  eval->add_option("--checkpoint", f->checkpoint, "the .safetensors file to evaluate")
      ->required()
      ->check(CLI::ExistingFile);
  eval->add_option("--save-npy", f->save_npy,
                   "write DIR/images.npy (float32 [N, 3, H, W]), DIR/masks.npy and DIR/pred.npy "
                   "(int64 [N, H, W]) of the evaluated split");
  eval->add_option("--split", f->split, "test or val")
      ->capture_default_str()
      ->check(CLI::IsMember({"test", "val"}));
  f->tile_opt = eval->add_option("--tile", f->tile,
                                 "generated tile size (default: the checkpoint's run, else 64)")
                    ->check(CLI::Range(data::kHistologyMinSize, data::kHistologyMaxSize));
  f->n_opt = eval->add_option("--n-test", f->n_test,
                              "generated tiles of the evaluated split (default: the checkpoint's "
                              "run, else 256)")
                 ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  f->c.batch = 64;
  add_common_flags(
      eval, f->c, kData | kBatch | kDevice | kJson | kQuiet | kSeed | kTestLimit | kThreads,
      {{"--batch", "evaluation batch size"},
       {"--data", "image+mask folder as for segment train (default: the histology generator)"},
       {"--seed", "seed of the generated tiles (default: the checkpoint's run, else 0)"},
       {"--test-limit", "use only the first N test images (0: all)"},
       {"--json",
        "print one JSON object (pixel_accuracy, miou, miou_all, per_class_iou, n, loss, "
        "confusion, ...) on stdout"}});
  f->seed_opt = eval->get_option("--seed");
  eval->callback([f] { run_eval(*f); });
}

}  // namespace nabla::cli
