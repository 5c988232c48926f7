// nabla segment study: the robust-segmentation study (nets/unet_study.h): four U-Nets (clean,
// layered-PGD data, sign-choice data, their union), Table 1 (clean test tiles) and Table 2 (PGD
// toward the full-area background, eps 0.01) with the paper's values beside ours, the figures
// and study.json. Running it again continues where a killed run stopped.
#include <cmath>
#include <cstdio>
#include <memory>

#include <nabla/data/histology.h>
#include <nets/unet_study.h>

#include "common.h"

namespace nabla::cli {

namespace {

struct SegmentStudyFlags {
  Common c;
  std::string scale = "small";
  int64_t n_train = 0, epochs = 0, layered_steps = 0, eval_steps = 0, n_test = 0, tile = 0,
          base = 0;
};

void print_table(const char* title, const nlohmann::json& rows) {
  std::printf("%s\n%-6s %8s %10s %10s %10s   %10s %14s\n", title, "U-Net", "loss", "pixel acc",
              "mIoU 1..5", "mIoU all", "paper loss", "paper accuracy");
  for (const auto& r : rows) {
    auto num = [](const nlohmann::json& v) { return v.is_number() ? v.get<double>() : NAN; };
    std::printf("%-6d %8.4f %10.4f %10.4f %10.4f   %10.4f %14.4f\n", r["model"].get<int>(),
                num(r["loss"]), num(r["pixel_accuracy"]), num(r["miou"]), num(r["miou_all"]),
                num(r["paper_loss"]), num(r["paper_accuracy"]));
  }
}

void print_text(const nlohmann::json& j) {
  const auto& o = j["options"];
  std::printf(
      "segment study, scale %s: %lldx%lld tiles, U-Net base %lld, %lld training tiles, "
      "%lld epochs (model 4: %lld), device %s\n\n",
      o["scale"].get<std::string>().c_str(), (long long)o["tile"].get<int64_t>(),
      (long long)o["tile"].get<int64_t>(), (long long)o["base"].get<int64_t>(),
      (long long)o["n_train"].get<int64_t>(), (long long)o["epochs"].get<int64_t>(),
      (long long)j["training"][3]["epochs"].get<int64_t>(), o["device"].get<std::string>().c_str());
  const auto& m1 = j["method1"];
  std::printf("method 1 (layered PGD, %lld steps per class): %.1f s, mean L-inf %.4f, max %.4f\n",
              (long long)m1["steps_per_class"].get<int64_t>(), m1["seconds"].get<double>(),
              m1["mean_linf"].get<double>(), m1["max_linf"].get<double>());
  const auto& m2 = j["method2"];
  const auto& g = m2["greedy"];
  std::printf("method 2 (sign choice, %lld candidates per tile): %.1f s, mean J %.4f -> %.4f\n",
              (long long)m2["candidates_per_tile"].get<int64_t>(), m2["seconds"].get<double>(),
              m2["mean_loss_clean"].get<double>(), m2["mean_loss_best"].get<double>());
  std::printf(
      "  greedy vs exhaustive on %lld tiles: mean J %.4f vs %.4f (clean %.4f), same "
      "choice on %.3f of the tiles, %.1f vs %.0f candidates, %.3f vs %.3f s per tile\n\n",
      (long long)g["tiles"].get<int64_t>(), g["mean_loss_greedy"].get<double>(),
      g["mean_loss_exhaustive"].get<double>(), g["mean_loss_clean"].get<double>(),
      g["same_choice"].get<double>(), g["evaluations_per_tile_greedy"].get<double>(),
      g["evaluations_per_tile_exhaustive"].get<double>(),
      g["seconds_per_tile_greedy"].get<double>(), g["seconds_per_tile_exhaustive"].get<double>());
  print_table("Table 1: clean test tiles", j["table1_clean"]);
  const auto& a = j["table2_attack"];
  char title[160];
  std::snprintf(title, sizeof title,
                "\nTable 2: PGD-%lld toward the full-area background, eps %.4g, alpha %.4g",
                (long long)a["steps"].get<int64_t>(), a["eps"].get<double>(),
                a["alpha"].get<double>());
  print_table(title, j["table2_pgd_background"]);
  std::printf("\nwrote %s", j["json"].get<std::string>().c_str());
  for (const auto& f : j["figures"]) std::printf(", %s", f.get<std::string>().c_str());
  std::printf("\n");
}

}  // namespace

void register_segment_study(CLI::App& segment) {
  auto f = std::make_shared<SegmentStudyFlags>();
  CLI::App* cmd = segment.add_subcommand(
      "study",
      "The robust-segmentation study: model 1 on clean tiles, method-1 data (layered PGD,\n"
      "Formula 2), method-2 data (the best of the 3^K sign choices, Formulas 3-5) and models 2-4,\n"
      "Tables 1 and 2 (PGD toward the background, eps 0.01) beside the paper's, figures and\n"
      "DIR/study.json. Stages already in DIR are skipped, so a killed run continues.");
  cmd->add_option("--scale", f->scale,
                  "small (2 CPU cores, under 45 minutes) or paper (the paper's sizes, a GPU)")
      ->capture_default_str()
      ->check(CLI::IsMember({"small", "paper"}));
  cmd->add_option("--tile", f->tile, "tile size (default: the scale's)")
      ->check(CLI::Range(data::kHistologyMinSize, data::kHistologyMaxSize));
  cmd->add_option("--base", f->base, "U-Net width of the first level (default: the scale's)")
      ->check(CLI::Range(int64_t(2), int64_t(256)));
  cmd->add_option("--n-train", f->n_train, "training tiles (default: the scale's)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  cmd->add_option("--n-test", f->n_test, "test tiles (default: the scale's)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  cmd->add_option("--epochs", f->epochs, "epochs of models 1-3 (default: the scale's)")
      ->check(CLI::Range(int64_t(1), int64_t(10000)));
  cmd->add_option("--layered-steps", f->layered_steps,
                  "method 1: PGD steps per class (default: the scale's)")
      ->check(CLI::Range(int64_t(1), int64_t(10000)));
  cmd->add_option("--eval-steps", f->eval_steps, "Table 2: PGD steps (default 100)")
      ->check(CLI::Range(int64_t(1), int64_t(10000)));
  f->c.out = "runs/segment_study";
  add_common_flags(cmd, f->c, kOut | kDevice | kJson | kQuiet | kSeed | kThreads,
                   {{"--out", "folder of the study (its stages are cached there)"},
                    {"--seed", "seed of the data and the weights"},
                    {"--json", "print study.json's object on stdout"}});
  cmd->callback([f] {
    nets::StudyOptions o = nets::study_preset(f->scale);
    if (f->tile > 0) o.tile = f->tile;
    if (f->base > 0) o.base = f->base;
    if (f->n_train > 0) o.n_train = f->n_train;
    if (f->n_test > 0) o.n_test = f->n_test;
    if (f->epochs > 0) o.epochs = f->epochs;
    if (f->layered_steps > 0) o.layered_steps = f->layered_steps;
    if (f->eval_steps > 0) o.eval_steps = f->eval_steps;
    o.seed = f->c.seed;
    o.out = f->c.out;
    o.device = f->c.device;
    o.threads = f->c.threads;
    apply_threads(f->c);
    const nlohmann::json j =
        nets::run_segmentation_study(o, resolve_device(f->c.device), f->c.show_progress());
    print_report(f->c, j, print_text);
  });
}

}  // namespace nabla::cli
