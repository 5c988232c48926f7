// nabla data histology: a look at the procedural histology set (engine/data/histology.h).
//
// Generates tiles 0..n-1 of one split and writes DIR/histology_<split>.png: per tile (the first
// 32) the H&E image, the mask in colour and the mask over the image, with a legend of the six
// classes. Prints
// the pixel share of every class over those tiles and how many types the tiles hold (--json: one
// object with "class_fraction", "tiles_with_class", "types_per_tile", "panel").
#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <nabla/data/histology.h>
#include <nabla/data/loader.h>
#include <nabla/error.h>
#include <nabla/io/files.h>
#include <nabla/io/segmentation.h>

#include "common.h"

namespace nabla::cli {

namespace {

struct DataFlags {
  Common c;
  int64_t n = 16, size = 64;
  std::string split = "train";
};

void run_histology(const DataFlags& f) {
  const int64_t K = data::kHistologyClasses;
  const auto& names = data::histology_class_names();
  auto src = std::make_shared<data::HistologySource>(data::histology_split_from_name(f.split), f.n,
                                                     f.size, f.c.seed);
  // Counted batch by batch (the tiles are generated on several threads); only the tiles the
  // panel shows are kept.
  constexpr int64_t kPerRow = 4, kShown = 32;
  const int64_t shown = std::min(f.n, kShown);
  std::vector<int64_t> pixels(size_t(K), 0), tiles(size_t(K), 0), types(size_t(K), 0);
  const int64_t hw = f.size * f.size;
  data::DataLoader loader(src, 64, false, 0);
  Tensor images, masks;
  for (int64_t b = 0; b < loader.num_batches(); ++b) {
    const data::Batch batch = loader.batch(b);
    const Tensor& m = batch["mask"];
    if (b == 0) {
      images = batch["image"].slice(0, std::min(shown, m.size(0))).contiguous();
      masks = m.slice(0, std::min(shown, m.size(0))).contiguous();
    }
    const int64_t* pm = m.data<int64_t>();
    for (int64_t i = 0; i < m.size(0); ++i) {
      std::vector<bool> seen(size_t(K), false);
      for (int64_t k = 0; k < hw; ++k) {
        ++pixels[size_t(pm[i * hw + k])];
        seen[size_t(pm[i * hw + k])] = true;
      }
      int64_t held = 0;
      for (int64_t c = 0; c < K; ++c)
        if (seen[size_t(c)]) {
          ++tiles[size_t(c)];
          held += c > 0;
        }
      ++types[size_t(held)];
    }
  }

  nabla::io::create_dirs(f.c.out, "the output folder (--out)");
  const std::string panel =
      (std::filesystem::path(f.c.out) / ("histology_" + f.split + ".png")).string();
  const auto palette = io::segmentation_palette(K);
  const Tensor col = io::colorize_mask(masks, palette),
               over = io::overlay_mask(images, masks, palette);
  std::vector<io::PanelRow> rows;
  std::vector<std::string> heads;
  for (int64_t i = 0; i < std::min(f.n, kPerRow); ++i)
    for (const char* h : {"image", "mask", "overlay"}) heads.push_back(h);
  for (int64_t i = 0; i < shown; i += kPerRow) {
    io::PanelRow row;
    row.label =
        "tiles " + std::to_string(i) + "-" + std::to_string(std::min(shown, i + kPerRow) - 1);
    for (int64_t j = i; j < std::min(shown, i + kPerRow); ++j)
      for (const Tensor* t : std::array<const Tensor*, 3>{&images, &col, &over})
        row.cells.push_back(t->slice(j, j + 1).squeeze(0));
    rows.push_back(std::move(row));
  }
  io::save_segmentation_panel(panel,
                              "histology " + f.split + " tiles 0-" + std::to_string(shown - 1) +
                                  " (seed " + std::to_string(f.c.seed) + ", " +
                                  std::to_string(f.size) + "x" + std::to_string(f.size) + ")",
                              heads, rows, names, palette, f.size <= 64 ? 2 : 1);

  nlohmann::json frac = nlohmann::json::object(), with = nlohmann::json::object();
  for (int64_t c = 0; c < K; ++c) {
    frac[names[size_t(c)]] = double(pixels[size_t(c)]) / double(f.n * hw);
    with[names[size_t(c)]] = tiles[size_t(c)];
  }
  nlohmann::json per_tile = nlohmann::json::array();
  for (int64_t t = 0; t < K; ++t) per_tile.push_back(types[size_t(t)]);
  const nlohmann::json report = {{"split", f.split},
                                 {"n", f.n},
                                 {"size", f.size},
                                 {"seed", f.c.seed},
                                 {"class_fraction", frac},
                                 {"tiles_with_class", with},
                                 {"types_per_tile", per_tile},
                                 {"panel", panel}};
  print_report(f.c, report, [&](const nlohmann::json& j) {
    std::printf("histology %s: %lld tiles of %lldx%lld, seed %llu\n", f.split.c_str(),
                (long long)f.n, (long long)f.size, (long long)f.size, (unsigned long long)f.c.seed);
    std::printf("%-14s %10s %8s\n", "class", "pixels", "tiles");
    for (int64_t c = 0; c < K; ++c)
      std::printf("%-14s %9.2f%% %8lld\n", names[size_t(c)].c_str(),
                  100 * j["class_fraction"][names[size_t(c)]].get<double>(),
                  (long long)tiles[size_t(c)]);
    std::printf("nucleus types per tile:");
    for (int64_t t = 0; t < K; ++t)
      std::printf(" %lld: %lld", (long long)t, (long long)types[size_t(t)]);
    std::printf("\nwrote %s\n", panel.c_str());
  });
}

}  // namespace

void register_data(CLI::App& app) {
  CLI::App* data = app.add_subcommand("data", "Look at the data sets the engine ships.");
  data->require_subcommand(1);
  auto f = std::make_shared<DataFlags>();
  f->c.out = "runs/data";
  CLI::App* histology = data->add_subcommand(
      "histology",
      "Procedural H&E histology tiles with five nucleus types (neoplastic, inflammatory,\n"
      "connective, dead, epithelial): writes DIR/histology_<split>.png (image, mask, overlay,\n"
      "legend) and prints the class balance of the tiles.");
  histology->add_option("--n", f->n, "tiles to generate (0..n-1 of the split)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(4096)));
  histology->add_option("--size", f->size, "tile height and width in pixels")
      ->capture_default_str()
      ->check(CLI::Range(data::kHistologyMinSize, data::kHistologyMaxSize));
  histology->add_option("--split", f->split, "train, val or test")
      ->capture_default_str()
      ->check(CLI::IsMember({"train", "val", "test"}));
  add_common_flags(
      histology, f->c, kOut | kSeed | kJson,
      {{"--seed", "seed of the generator (tile i depends on seed, split and i only)"}});
  histology->callback([f] { run_histology(*f); });
}

}  // namespace nabla::cli
