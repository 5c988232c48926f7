// The procedural histology set (engine/data/histology.h): determinism whatever the order and the
// thread count, class balance and presence, masks consistent with the instance maps, the stain
// colours, shapes, errors, and the mask pictures of engine/io/segmentation.h.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include <nabla/data/histology.h>
#include <nabla/data/loader.h>
#include <nabla/io/segmentation.h>

#include "gradcheck.h"

using namespace nabla;
using namespace nabla::data;
using namespace nabla::test;

namespace {

bool same(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor x = a.contiguous(), y = b.contiguous();
  return std::memcmp(x.raw_data(), y.raw_data(), size_t(x.numel()) * dtype_size(x.dtype())) == 0;
}

bool same_tile(const Example& a, const Example& b) {
  return same(a["image"], b["image"]) && same(a["mask"], b["mask"]) &&
         same(a["instances"], b["instances"]);
}

}  // namespace

TEST_CASE("histology: a tile depends only on (seed, split, index, size), not on order or threads") {
  const int saved = omp_get_max_threads();
  std::vector<Example> direct;
  for (int64_t i = 0; i < 12; ++i) direct.push_back(histology_tile(5, HistologySplit::Val, i, 48));
  // Backwards, interleaved with other splits and sizes, on one thread.
  omp_set_num_threads(1);
  for (int64_t i = 11; i >= 0; --i) {
    histology_tile(5, HistologySplit::Train, i, 64);
    CHECK(same_tile(histology_tile(5, HistologySplit::Val, i, 48), direct[size_t(i)]));
  }
  // Shuffled batches of a loader, whose items are generated on several threads.
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    auto src = std::make_shared<HistologySource>(HistologySplit::Val, 12, 48, 5);
    DataLoader loader(src, 5, /*shuffle=*/true, 17);
    loader.set_epoch(2);
    for (const Batch& b : loader)
      for (size_t r = 0; r < b.indices.size(); ++r) {
        const Example& want = direct[size_t(b.indices[r])];
        CHECK(same(b["image"].slice(int64_t(r), int64_t(r) + 1).squeeze(0), want["image"]));
        CHECK(same(b["mask"].slice(int64_t(r), int64_t(r) + 1).squeeze(0), want["mask"]));
      }
  }
  omp_set_num_threads(saved);
  // Seeds and splits are different streams; neighbouring tiles differ.
  CHECK(!same(histology_tile(6, HistologySplit::Val, 0, 48)["image"], direct[0]["image"]));
  CHECK(!same(histology_tile(5, HistologySplit::Test, 0, 48)["image"], direct[0]["image"]));
  CHECK(!same(histology_tile(5, HistologySplit::Train, 0, 48)["image"], direct[0]["image"]));
  CHECK(!same(direct[1]["image"], direct[0]["image"]));
}

TEST_CASE("histology: shapes, dtypes, value ranges, and the Source interface") {
  for (int64_t S : {16, 37, 64, 256}) {
    CAPTURE(S);
    const Example t = histology_tile(0, HistologySplit::Train, 3, S);
    CHECK(t.names() == std::vector<std::string>{"image", "mask", "instances"});
    CHECK(t["image"].shape() == Shape{3, S, S});
    CHECK(t["image"].dtype() == DType::Float32);
    CHECK(t["mask"].shape() == Shape{S, S});
    CHECK(t["mask"].dtype() == DType::Int64);
    CHECK(t["instances"].shape() == Shape{S, S});
    CHECK(t["instances"].dtype() == DType::Int64);
    const std::vector<float> v = t["image"].to_vector<float>();
    CHECK(*std::min_element(v.begin(), v.end()) >= 0.0f);
    CHECK(*std::max_element(v.begin(), v.end()) <= 1.0f);
    const std::vector<int64_t> m = t["mask"].to_vector<int64_t>();
    CHECK(*std::min_element(m.begin(), m.end()) >= 0);
    CHECK(*std::max_element(m.begin(), m.end()) < kHistologyClasses);
  }
  HistologySource src(HistologySplit::Test, 7, 32, 9);
  CHECK(src.size() == 7);
  CHECK(src.fields() == std::vector<std::string>{"image", "mask", "instances"});
  CHECK(same_tile(src.get(4), histology_tile(9, HistologySplit::Test, 4, 32)));
  CHECK(src.describe(4) == "histology test tile 4 (seed 9, 32x32)");
  CHECK(histology_class_names() == std::vector<std::string>{"background", "neoplastic",
                                                            "inflammatory", "connective", "dead",
                                                            "epithelial"});
  CHECK(histology_split_from_name("val") == HistologySplit::Val);
  CHECK(std::string(histology_split_name(HistologySplit::Test)) == "test");
}

TEST_CASE("histology: materialized into a TensorSource, the chosen fields equal get()") {
  auto src = std::make_shared<HistologySource>(HistologySplit::Train, 300, 16, 2);
  auto ts = materialize(src, {"image", "mask"});
  CHECK(ts->size() == 300);
  CHECK(ts->fields() == std::vector<std::string>{"image", "mask"});
  CHECK(ts->tensors()["image"].shape() == Shape{300, 3, 16, 16});
  for (int64_t i : {0, 255, 256, 299}) {  // both sides of the 256-item chunk boundary
    const Example want = src->get(i);
    CHECK(same(ts->get(i)["image"], want["image"]));
    CHECK(same(ts->get(i)["mask"], want["mask"]));
  }
  CHECK(ts->describe(7) == src->describe(7));
  check_error([&] { materialize(src, {"label"}); }, {"label", "image, mask, instances"});
  check_error([] { materialize(std::make_shared<HistologySource>(HistologySplit::Train, 0)); },
              {"empty"});
}

TEST_CASE("histology: about 80% background, every type in every split, several types per tile") {
  for (HistologySplit split : {HistologySplit::Train, HistologySplit::Val, HistologySplit::Test}) {
    CAPTURE(histology_split_name(split));
    std::vector<int64_t> pixels(kHistologyClasses, 0), tiles(kHistologyClasses, 0);
    int64_t several = 0;
    const int64_t n = 48, S = 64;
    for (int64_t i = 0; i < n; ++i) {
      const std::vector<int64_t> m = histology_tile(0, split, i, S)["mask"].to_vector<int64_t>();
      std::set<int64_t> seen(m.begin(), m.end());
      for (int64_t c : m) ++pixels[size_t(c)];
      for (int64_t c : seen) ++tiles[size_t(c)];
      several += int64_t(seen.size()) - int64_t(seen.count(0)) >= 2;
    }
    const double background = double(pixels[0]) / double(n * S * S);
    CHECK(background > 0.72);
    CHECK(background < 0.88);
    for (int64_t c = 1; c < kHistologyClasses; ++c) {
      CAPTURE(histology_class_names()[size_t(c)]);
      CHECK(tiles[size_t(c)] >= 3);
      CHECK(pixels[size_t(c)] > 0);
    }
    CHECK(several >= n / 2 + 1);  // most tiles hold two types or more
  }
}

TEST_CASE("histology: the instance map refines the mask, nuclei never touch") {
  for (int64_t i = 0; i < 6; ++i) {
    const int64_t S = 64;
    const Example t = histology_tile(1, HistologySplit::Train, i, S);
    const std::vector<int64_t> m = t["mask"].to_vector<int64_t>();
    const std::vector<int64_t> inst = t["instances"].to_vector<int64_t>();
    std::map<int64_t, std::set<int64_t>> classes_of;  // instance -> classes of its pixels
    int64_t disagree = 0;
    for (size_t k = 0; k < m.size(); ++k) {
      disagree += (m[k] == 0) != (inst[k] == 0);
      if (inst[k] > 0) classes_of[inst[k]].insert(m[k]);
    }
    CHECK(disagree == 0);
    REQUIRE(!classes_of.empty());
    // Ids 1..M, each with exactly one class.
    CHECK(classes_of.begin()->first == 1);
    CHECK(classes_of.rbegin()->first == int64_t(classes_of.size()));
    for (const auto& [id, cls] : classes_of) CHECK(cls.size() == 1);
    // A one-pixel gap: no two 8-neighbours belong to different nuclei.
    int64_t touching = 0;
    for (int64_t y = 0; y < S; ++y)
      for (int64_t x = 0; x < S; ++x) {
        const int64_t a = inst[size_t(y * S + x)];
        if (a == 0) continue;
        for (int64_t dy = -1; dy <= 1; ++dy)
          for (int64_t dx = -1; dx <= 1; ++dx) {
            const int64_t yy = y + dy, xx = x + dx;
            if (yy < 0 || xx < 0 || yy >= S || xx >= S) continue;
            const int64_t b = inst[size_t(yy * S + xx)];
            touching += b != 0 && b != a;
          }
      }
    CHECK(touching == 0);
  }
}

TEST_CASE("histology: H&E colours, nuclei dark and blue-purple, stroma pink") {
  // Mean colour of nucleus and background pixels over a few tiles.
  double nuc[3] = {0, 0, 0}, bg[3] = {0, 0, 0};
  int64_t n_nuc = 0, n_bg = 0;
  for (int64_t i = 0; i < 8; ++i) {
    const Example t = histology_tile(0, HistologySplit::Test, i, 64);
    const std::vector<float> img = t["image"].to_vector<float>();
    const std::vector<int64_t> m = t["mask"].to_vector<int64_t>();
    const size_t hw = m.size();
    for (size_t k = 0; k < hw; ++k) {
      double* acc = m[k] ? nuc : bg;
      for (size_t c = 0; c < 3; ++c) acc[c] += img[c * hw + k];
      ++(m[k] ? n_nuc : n_bg);
    }
  }
  for (int c = 0; c < 3; ++c) {
    nuc[c] /= double(n_nuc);
    bg[c] /= double(n_bg);
  }
  // Hematoxylin absorbs red and green far more than blue; eosin absorbs mostly green.
  CHECK(nuc[0] + nuc[1] + nuc[2] < 0.75 * (bg[0] + bg[1] + bg[2]));
  CHECK(nuc[2] > nuc[0]);
  CHECK(nuc[2] > nuc[1]);
  CHECK(bg[0] > bg[1] + 0.1);
  CHECK(bg[2] > bg[1] + 0.1);
}

TEST_CASE("histology: errors name the value") {
  check_error([] { histology_tile(0, HistologySplit::Train, 0, 15); },
              {"tile size 15", "16", "256"});
  check_error([] { histology_tile(0, HistologySplit::Train, 0, 257); }, {"tile size 257"});
  check_error([] { histology_tile(0, HistologySplit::Train, -1); }, {"index -1"});
  check_error([] { HistologySource(HistologySplit::Train, -2); }, {"-2"});
  check_error([] { HistologySource(HistologySplit::Train, 4, 300); }, {"300"});
  check_error([] { HistologySource(HistologySplit::Val, 4).get(4); }, {"item 4", "[0, 4)", "val"});
  check_error([] { histology_split_from_name("validation"); },
              {"validation", "train, val or test"});
}

TEST_CASE("segmentation pictures: palette colours, overlays, the panel file") {
  const auto pal = io::segmentation_palette(3);
  REQUIRE(pal.size() == 3);
  CHECK(pal[0] == io::Rgb{0, 0, 0});
  Tensor mask = from_vector<int64_t>({0, 1, 2, 1}, {2, 2});
  const Tensor col = io::colorize_mask(mask, pal);
  CHECK(col.shape() == Shape{3, 2, 2});
  check_close(col.slice(0, 1).flatten(0),
              {0, pal[1].r / 255.0, pal[2].r / 255.0, pal[1].r / 255.0});
  Tensor img = full({3, 2, 2}, 0.5);
  const Tensor over = io::overlay_mask(img, mask, pal, 0.5);
  // Background unchanged, elsewhere halfway between the image and the class colour.
  check_close(over.slice(1, 2).flatten(0),
              {0.5, 0.25 + 0.5 * pal[1].g / 255.0, 0.25 + 0.5 * pal[2].g / 255.0,
               0.25 + 0.5 * pal[1].g / 255.0});
  CHECK(io::colorize_mask(from_vector<int64_t>({0, 1}, {2, 1, 1}), pal).shape() ==
        Shape{2, 3, 1, 1});
  check_error([&] { io::colorize_mask(from_vector<int64_t>({0, -3}, {1, 2}), pal); }, {"-3"});
  check_error([&] { io::overlay_mask(full({3, 3, 2}, 0.5), mask, pal); }, {"[3, 3, 2]", "[2, 2]"});
  TempDir tmp;
  io::save_segmentation_panel(tmp / "p.png", "t", {"image", "mask"}, {{"row", {img, col}}},
                              {"a", "b", "c"}, pal);
  CHECK(std::filesystem::file_size(tmp / "p.png") > 100);
  check_error([&] { io::save_segmentation_panel(tmp / "q.png", "t", {}, {}, {"a"}, pal); },
              {"q.png"});
}
