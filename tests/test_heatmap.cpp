// engine/io/heatmap: colormaps against matplotlib's published data, per-map normalisation,
// colormapped maps, overlays (blending, bilinear resizing, batching), the colorbar, and every
// shape error.
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include <nabla/io/heatmap.h>

#include "cuda_parity.h"
#include "gradcheck.h"

using namespace nabla;
using namespace nabla::io;
using namespace nabla::test;

namespace {

constexpr Colormap kAll[] = {Colormap::Jet, Colormap::Inferno, Colormap::Gray, Colormap::Diverging,
                             Colormap::Hot};

// Checks colormap_unit(t, cm) * 255 against an expected color in 8-bit units.
void check_unit(double t, Colormap cm, std::array<double, 3> expected255, double tol255) {
  const auto c = colormap_unit(t, cm);
  for (size_t k = 0; k < 3; ++k) {
    CAPTURE(t);
    CAPTURE(colormap_name(cm));
    CAPTURE(k);
    CHECK(std::abs(c[k] * 255 - expected255[k]) <= tol255);
  }
}

// The expected [3, H, W] (or [N, 3, H, W]) picture of apply_colormap, built from colormap_unit.
std::vector<double> colored(const std::vector<double>& map, int64_t n, int64_t hw, Colormap cm) {
  std::vector<double> out(size_t(n * 3 * hw));
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < hw; ++i) {
      const auto c = colormap_unit(map[size_t(b * hw + i)], cm);
      for (int64_t k = 0; k < 3; ++k) out[size_t((b * 3 + k) * hw + i)] = c[size_t(k)];
    }
  return out;
}

// The same gray map repeated in three planes.
std::vector<double> three(const std::vector<double>& plane) {
  std::vector<double> out;
  for (int k = 0; k < 3; ++k) out.insert(out.end(), plane.begin(), plane.end());
  return out;
}

}  // namespace

// ---------------------------------------------------------------- colormaps

TEST_CASE("colormap: jet follows matplotlib's segment data") {
  CHECK(colormap(0, Colormap::Jet) == Rgb{0, 0, 128});  // (0, 0, 0.5)
  CHECK(colormap(1, Colormap::Jet) == Rgb{128, 0, 0});  // (0.5, 0, 0)
  // Knots and points between them, from _jet_data by hand (in units of 1/255).
  check_unit(0.11, Colormap::Jet, {0, 0, 255}, 1e-9);
  check_unit(0.125, Colormap::Jet, {0, 0, 255}, 1e-9);
  check_unit(0.055, Colormap::Jet, {0, 0, 0.75 * 255}, 1e-9);  // blue halfway 0.5 -> 1
  check_unit(0.25, Colormap::Jet, {0, 0.5 * 255, 255}, 1e-9);  // green halfway 0.125 -> 0.375
  check_unit(0.375, Colormap::Jet, {0.025 / 0.31 * 255, 255, (1 - 0.035 / 0.31) * 255}, 1e-9);
  check_unit(0.5, Colormap::Jet, {0.15 / 0.31 * 255, 255, (1 - 0.16 / 0.31) * 255}, 1e-9);
  check_unit(0.66, Colormap::Jet, {255, (1 - 0.02 / 0.27) * 255, 0}, 1e-9);
  check_unit(0.89, Colormap::Jet, {255, (1 - 0.25 / 0.27) * 255, 0}, 1e-9);
  check_unit(0.91, Colormap::Jet, {(1 - 0.5 * 0.02 / 0.11) * 255, 0, 0}, 1e-9);
  // matplotlib's own jet(0.5) = (0.490196, 1, 0.477546) samples table entry 128, at t = 128/255:
  // the continuous curve is within 2 levels of it at 0.5 and equal to it at 128/255.
  check_unit(0.5, Colormap::Jet, {0.490196 * 255, 255, 0.477546 * 255}, 2);
  check_unit(128 / 255.0, Colormap::Jet, {0.490196 * 255, 255, 0.477546 * 255}, 1e-3);
  CHECK(colormap(0.5, Colormap::Jet) == Rgb{123, 255, 123});
}

TEST_CASE("colormap: inferno matches matplotlib's 256-entry table within half a level") {
  CHECK(colormap(0, Colormap::Inferno) == Rgb{0, 0, 4});
  CHECK(colormap(1, Colormap::Inferno) == Rgb{252, 255, 164});
  // Entries of _inferno_data times 255, at t = i / 255; none of these i is a control point
  // except 191, so the table's interpolation is what is checked.
  struct Entry {
    int i;
    std::array<double, 3> rgb;
  };
  const Entry entries[] = {{1, {0.58, 0.32, 4.74}},        {64, {87.08, 15.89, 109.50}},
                           {100, {144.29, 36.61, 104.11}}, {128, {187.60, 55.06, 84.21}},
                           {191, {249.16, 140.47, 9.96}},  {199, {251.26, 155.15, 6.17}},
                           {230, {245.92, 215.18, 69.71}}, {254, {250.48, 253.50, 160.91}}};
  for (const Entry& e : entries) check_unit(e.i / 255.0, Colormap::Inferno, e.rgb, 0.51);
  // Lightness grows along inferno: its relative luminance never falls.
  double prev = -1;
  int falls = 0;
  for (int i = 0; i <= 1000; ++i) {
    const auto c = colormap_unit(i / 1000.0, Colormap::Inferno);
    const double s = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    falls += s < prev;
    prev = s;
  }
  CHECK(falls == 0);
}

TEST_CASE("colormap: gray, diverging (blue, white, red) and hot") {
  CHECK(colormap(0, Colormap::Gray) == Rgb{0, 0, 0});
  CHECK(colormap(0.2, Colormap::Gray) == Rgb{51, 51, 51});
  CHECK(colormap(0.5, Colormap::Gray) == Rgb{128, 128, 128});  // round(127.5)
  CHECK(colormap(1, Colormap::Gray) == Rgb{255, 255, 255});
  CHECK(colormap(0, Colormap::Diverging) == Rgb{0, 0, 255});
  CHECK(colormap(0.25, Colormap::Diverging) == Rgb{128, 128, 255});
  CHECK(colormap(0.5, Colormap::Diverging) == Rgb{255, 255, 255});  // zero of a signed map
  CHECK(colormap(0.75, Colormap::Diverging) == Rgb{255, 128, 128});
  CHECK(colormap(1, Colormap::Diverging) == Rgb{255, 0, 0});
  check_unit(0.1, Colormap::Diverging, {0.2 * 255, 0.2 * 255, 255}, 1e-9);
  check_unit(0.9, Colormap::Diverging, {255, 0.2 * 255, 0.2 * 255}, 1e-9);
  // hot: black -> red (t = 1/3) -> yellow (2/3) -> white.
  CHECK(colormap(0, Colormap::Hot) == Rgb{0, 0, 0});
  CHECK(colormap(1.0 / 3, Colormap::Hot) == Rgb{255, 0, 0});
  CHECK(colormap(0.5, Colormap::Hot) == Rgb{255, 128, 0});
  CHECK(colormap(2.0 / 3, Colormap::Hot) == Rgb{255, 255, 0});
  CHECK(colormap(5.0 / 6, Colormap::Hot) == Rgb{255, 255, 128});
  CHECK(colormap(1, Colormap::Hot) == Rgb{255, 255, 255});
}

TEST_CASE("colormap: clamping, infinities, NaN and names") {
  for (Colormap cm : kAll) {
    CAPTURE(colormap_name(cm));
    CHECK(colormap(-0.5, cm) == colormap(0, cm));
    CHECK(colormap(-INFINITY, cm) == colormap(0, cm));
    CHECK(colormap(7, cm) == colormap(1, cm));
    CHECK(colormap(INFINITY, cm) == colormap(1, cm));
    CHECK(colormap(NAN, cm) == kNaNColor);
    CHECK(colormap_unit(NAN, cm) == std::array<double, 3>{0, 0, 0});
    // The ends differ, so clamping to the wrong end would show.
    CHECK(colormap(0, cm) != colormap(1, cm));
    CHECK(colormap_from_name(colormap_name(cm)) == cm);
  }
  CHECK(std::string(colormap_name(Colormap::Inferno)) == "inferno");
  check_error([] { colormap_from_name("viridis"); },
              {"colormap_from_name", "'viridis'", "jet, inferno, gray, diverging or hot"});
}

// ---------------------------------------------------------------- normalize_map

TEST_CASE("normalize_map: each map by its own min and max, a constant map gives zeros") {
  const Tensor one = tensor({1, 3, 5, 2, 9, 1}, {2, 3}, DType::Float64);
  const Tensor t = normalize_map(one);
  CHECK(t.dtype() == DType::Float32);
  CHECK(t.device() == Device::cpu());
  CHECK(t.shape() == Shape{2, 3});
  check_close(t, {0, 0.25, 0.5, 0.125, 1, 0}, 1e-7);
  check_close(one, {1, 3, 5, 2, 9, 1}, 0);  // the input is left alone

  // Per map, not over the batch: the second map is constant and the third only negative.
  const Tensor batch = tensor({0, 10, 20, 30, -1, -1, -1, -1, -8, -6, -4, -2}, {3, 2, 2});
  check_close(normalize_map(batch), {0, 1 / 3., 2 / 3., 1, 0, 0, 0, 0, 0, 1 / 3., 2 / 3., 1}, 1e-7);
  check_close(normalize_map(full({1, 1}, 5.0)), std::vector<double>{0}, 0);
  // Non-finite values leave the range of the others alone: NaN stays, infinities clamp.
  check_close(normalize_map(tensor({NAN, 2, INFINITY, 4, -INFINITY, 6}, {1, 6})),
              {NAN, 0, 1, 0.5, 0, 1}, 1e-7);
  check_close(normalize_map(tensor({NAN, INFINITY}, {1, 2})), {NAN, 1}, 0);
  // Empty batch: an empty result of the same shape.
  CHECK(normalize_map(zeros({0, 3, 2})).shape() == Shape{0, 3, 2});
}

TEST_CASE("normalize_map: symmetric keeps zero at 0.5") {
  check_close(normalize_map(tensor({-2, 1, 0, 4}, {2, 2}), true), {0.25, 0.625, 0.5, 1}, 1e-7);
  check_close(normalize_map(tensor({-4, 1, 0, 2}, {2, 2}), true), {0, 0.625, 0.5, 0.75}, 1e-7);
  // Per map: max |v| is 4 in the first and 0.5 in the second.
  check_close(normalize_map(tensor({4, -1, 0.5, -0.25}, {2, 1, 2}), true), {1, 0.375, 1, 0.25},
              1e-7);
  check_close(normalize_map(zeros({2, 2}), true), {0.5, 0.5, 0.5, 0.5}, 0);
  check_close(normalize_map(full({1, 2}, -3.0), true), {0, 0}, 0);
  check_close(normalize_map(tensor({NAN, -INFINITY, 2, -1}, {2, 2}), true), {NAN, 0, 1, 0.25},
              1e-7);
}

TEST_CASE("normalize_map: errors name the function and the shape") {
  check_error([] { normalize_map(ones({4})); }, {"normalize_map", "[H, W] or [N, H, W]", "[4]"});
  check_error([] { normalize_map(ones({1, 2, 3, 4})); }, {"normalize_map", "[1, 2, 3, 4]"});
  check_error([] { normalize_map(zeros({2, 2}, DType::Int64)); }, {"normalize_map", "int64[2, 2]"});
  check_error([] { normalize_map(zeros({2, 0, 3})); }, {"normalize_map", "[2, 0, 3]", "empty"});
  check_error([] { normalize_map(Tensor()); }, {"normalize_map", "undefined"});
}

// ---------------------------------------------------------------- apply_colormap

TEST_CASE("apply_colormap: one color per pixel in planes [3, H, W], batched [N, 3, H, W]") {
  // By hand: diverging at 0, 0.5, 1 is blue, white, red.
  const Tensor d = apply_colormap(tensor({0, 0.5, 1}, {1, 3}), Colormap::Diverging);
  CHECK(d.dtype() == DType::Float32);
  CHECK(d.shape() == Shape{3, 1, 3});
  check_close(d, {0, 1, 1, /**/ 0, 1, 0, /**/ 1, 1, 0}, 0);

  const std::vector<double> m = {0, 0.1, 0.3, 0.5, 0.9, 1, -2, 3};  // the last two clamp
  const Tensor jet = apply_colormap(from_vector(m, {2, 4}), Colormap::Jet);
  CHECK(jet.shape() == Shape{3, 2, 4});
  check_close(jet, colored(m, 1, 8, Colormap::Jet), 1e-7, 1e-6);

  // Batched: map n becomes picture n, planes in order.
  const Tensor b =
      apply_colormap(tensor({0, 1, 0.5, 0.25}, {2, 1, 2}, DType::Float64), Colormap::Gray);
  CHECK(b.shape() == Shape{2, 3, 1, 2});
  check_close(b, {0, 1, 0, 1, 0, 1, 0.5, 0.25, 0.5, 0.25, 0.5, 0.25}, 0);
  const Tensor inf = apply_colormap(from_vector(m, {2, 1, 4}), Colormap::Inferno);
  check_close(inf, colored(m, 2, 4, Colormap::Inferno), 1e-7, 1e-6);

  check_error([] { apply_colormap(ones({3}), Colormap::Jet); }, {"apply_colormap", "[3]"});
  check_error(
      [] {
        apply_colormap(ones({2, 1, 2, 2}), Colormap::Jet);
      },
      {"apply_colormap", "[2, 1, 2, 2]"});
}

// ---------------------------------------------------------------- overlay_heatmap

TEST_CASE("overlay_heatmap: alpha 0 gives the image in RGB, alpha 1 the colormap") {
  const std::vector<double> gray = {0.1, 0.2, 0.3, 0.4};
  const Tensor img = from_vector(gray, {1, 2, 2});
  const Tensor map = tensor({0, 0.25, 0.5, 1}, {2, 2});
  for (Colormap cm : kAll) {
    CAPTURE(colormap_name(cm));
    const Tensor a0 = overlay_heatmap(img, map, cm, 0.0);
    CHECK(a0.dtype() == DType::Float32);
    CHECK(a0.shape() == Shape{3, 2, 2});
    check_close(a0, three(gray), 1e-7);
    check_close(overlay_heatmap(img.reshape({2, 2}), map, cm, 0.0), three(gray), 1e-7);
    check_close(overlay_heatmap(img, map, cm, 1.0), apply_colormap(map, cm), 1e-7);
  }
  // An RGB image keeps its channels.
  const std::vector<double> rgb = {0.2, 0.4, 0.6, 0.8, 1.0, 0.0};
  check_close(
      overlay_heatmap(from_vector(rgb, {3, 1, 2}), tensor({0, 1}, {1, 2}), Colormap::Jet, 0.0), rgb,
      1e-7);
}

TEST_CASE("overlay_heatmap: blends (1 - alpha) image + alpha color, image clamped to [0, 1]") {
  // Gray colormap: the color is (t, t, t). By hand, 0.75 * image + 0.25 * t.
  const Tensor img = tensor({0.2, 0.4, 0.6, 0.8, 1.0, 0.0}, {3, 1, 2});
  check_close(overlay_heatmap(img, tensor({0, 1}, {1, 2}), Colormap::Gray, 0.25),
              {0.15, 0.55, 0.45, 0.85, 0.75, 0.25}, 1e-7);
  // Jet at t = 0.25 is (0, 0.5, 1); half of it on a gray image of 0.4.
  check_close(overlay_heatmap(full({1, 1}, 0.4), full({1, 1}, 0.25), Colormap::Jet, 0.5),
              {0.2, 0.45, 0.7}, 1e-7);
  // Out-of-range image values are clamped, NaN read as 0; the default is jet at alpha 0.5.
  const Tensor wild = tensor({-1, 2, NAN}, {1, 3});
  check_close(overlay_heatmap(wild, zeros({1, 3}), Colormap::Gray, 0.0), three({0, 1, 0}), 0);
  check_close(overlay_heatmap(wild, zeros({1, 3})), {0, 0.5, 0, 0, 0.5, 0, 0.25, 0.75, 0.25}, 1e-7);
}

TEST_CASE("overlay_heatmap: a smaller map is resized bilinearly with align_corners = false") {
  // 2x2 -> 4x4. Per axis the outputs sample the input at max(0, (o + 0.5) / 2 - 0.5) =
  // 0, 0.25, 0.75, 1.25 -> (clamped to the last row) weights (1, 0), (0.75, 0.25), (0.25, 0.75),
  // (0, 1). Map [[0, 0.4], [0.8, 1]]: rows of the result worked out by hand.
  const std::vector<double> expected = {
      0,   0.1,    0.3,    0.4,   //
      0.2, 0.2875, 0.4625, 0.55,  //
      0.6, 0.6625, 0.7875, 0.85,  //
      0.8, 0.85,   0.95,   1.0,
  };
  const Tensor map = tensor({0, 0.4, 0.8, 1}, {2, 2});
  check_close(overlay_heatmap(zeros({4, 4}), map, Colormap::Gray, 1.0), three(expected), 1e-6);
  // Resizing comes before coloring: jet of the resized values, half blended on a gray image.
  const Tensor img = full({3, 4, 4}, 0.5);
  std::vector<double> want = colored(expected, 1, 16, Colormap::Jet);
  for (double& v : want) v = 0.3 * 0.5 + 0.7 * v;
  check_close(overlay_heatmap(img, map, Colormap::Jet, 0.7), want, 1e-6);

  // Non-square, and a single input row: 1x2 -> 2x3 samples columns at 0, 0.5, 1 (clamped).
  check_close(overlay_heatmap(zeros({2, 3}), tensor({0.2, 0.6}, {1, 2}), Colormap::Gray, 1.0),
              three({0.2, 0.4, 0.6, 0.2, 0.4, 0.6}), 1e-6);
  // Shrinking 4x4 -> 2x2 by two samples at 0.5 and 2.5: each output averages a 2x2 block.
  std::vector<double> ramp(16);
  for (int i = 0; i < 16; ++i) ramp[size_t(i)] = i / 15.0;
  check_close(overlay_heatmap(zeros({2, 2}), from_vector(ramp, {4, 4}), Colormap::Gray, 1.0),
              three({2.5 / 15, 4.5 / 15, 10.5 / 15, 12.5 / 15}), 1e-6);
  // A NaN reaches only the output pixels whose weights touch it, and colors them black. 3 -> 6
  // samples at 0 (weight 0 on input 1), 0.25, 0.75, 1.25, 1.75, 2.25: outputs 1..4 touch input 1.
  const Tensor nan_map = tensor({1, 1, 1, 1, NAN, 1, 1, 1, 1}, {3, 3});
  const std::vector<float> o =
      overlay_heatmap(zeros({6, 6}), nan_map, Colormap::Gray, 1.0).to_vector<float>();
  for (int yy = 0; yy < 6; ++yy)
    for (int xx = 0; xx < 6; ++xx) {
      CAPTURE(yy);
      CAPTURE(xx);
      const bool touches = yy >= 1 && yy <= 4 && xx >= 1 && xx <= 4;
      CHECK(o[size_t(yy * 6 + xx)] == (touches ? 0.0f : 1.0f));
    }
}

TEST_CASE("overlay_heatmap: batches [N, C, H, W] with maps [N, h, w]") {
  const Tensor imgs = tensor({0.1, 0.2, 0.3, 0.4}, {2, 1, 1, 2});
  const Tensor maps = tensor({0, 1, 1, 0}, {2, 1, 2});
  const Tensor out = overlay_heatmap(imgs, maps, Colormap::Gray, 0.5);
  CHECK(out.shape() == Shape{2, 3, 1, 2});
  check_close(out, {0.05, 0.6, 0.05, 0.6, 0.05, 0.6, 0.65, 0.2, 0.65, 0.2, 0.65, 0.2}, 1e-7);
  // Each picture equals the unbatched overlay of its own pair, also when resizing.
  const Tensor big = uniform({2, 3, 5, 4}, 0, 1, 1);
  const Tensor small = uniform({2, 2, 3}, 0, 1, 2);
  const Tensor both = overlay_heatmap(big, small, Colormap::Inferno, 0.3);
  for (int64_t n = 0; n < 2; ++n)
    check_close(both.narrow(0, n, 1).reshape({3, 5, 4}),
                overlay_heatmap(big.narrow(0, n, 1).reshape({3, 5, 4}),
                                small.narrow(0, n, 1).reshape({2, 3}), Colormap::Inferno, 0.3),
                0, 0);
}

TEST_CASE("overlay_heatmap: errors name the function and both shapes") {
  const Tensor map = ones({4, 4});
  check_error(
      [&] {
        overlay_heatmap(ones({2, 4, 4}), map);
      },
      {"overlay_heatmap", "float32[2, 4, 4]", "float32[4, 4]", "C = 1 or 3"});
  check_error(
      [&] {
        overlay_heatmap(ones({3, 4, 4}), ones({1, 4, 4}));
      },
      {"overlay_heatmap", "[3, 4, 4]", "[1, 4, 4]"});
  check_error(
      [&] {
        overlay_heatmap(ones({2, 1, 4, 4}), ones({3, 4, 4}));
      },
      {"overlay_heatmap", "[2, 1, 4, 4]", "[3, 4, 4]"});
  check_error([&] { overlay_heatmap(ones({2, 1, 4, 4}), map); }, {"[2, 1, 4, 4]", "[4, 4]"});
  check_error([&] { overlay_heatmap(ones({4}), map); }, {"overlay_heatmap", "[4]"});
  check_error(
      [&] {
        overlay_heatmap(ones({3, 4, 4}), zeros({0, 4}));
      },
      {"overlay_heatmap", "[0, 4]"});
  check_error([&] { overlay_heatmap(zeros({4, 4}, DType::Int64), map); }, {"int64[4, 4]"});
  check_error(
      [&] {
        overlay_heatmap(ones({4, 4}), map, Colormap::Jet, 1.5);
      },
      {"overlay_heatmap", "alpha", "1.5"});
  check_error([&] { overlay_heatmap(ones({4, 4}), map, Colormap::Jet, NAN); }, {"alpha", "nan"});
  check_error([&] { overlay_heatmap(Tensor(), map); }, {"overlay_heatmap", "undefined"});
}

// ---------------------------------------------------------------- draw_colorbar

TEST_CASE("draw_colorbar: high end on top, frame outside the bar, labels to the right") {
  Canvas c(60, 40, kWhite);
  const int x = 3, y = 4, w = 5, h = 21;
  draw_colorbar(c, x, y, w, h, Colormap::Jet, "0", "1.5");
  for (int r = 0; r < h; ++r)
    for (int j = 0; j < w; ++j) {
      CAPTURE(r);
      CHECK(c.pixel(x + j, y + r) == colormap((h - 1 - r) / double(h - 1), Colormap::Jet));
    }
  CHECK(c.pixel(x, y) == Rgb{128, 0, 0});          // jet(1) on top
  CHECK(c.pixel(x, y + h - 1) == Rgb{0, 0, 128});  // jet(0) at the bottom
  CHECK(c.pixel(x, y + 10) == colormap(0.5, Colormap::Jet));
  // The frame: one black pixel all around, and white beyond it.
  for (int j = -1; j <= w; ++j) {
    CHECK(c.pixel(x + j, y - 1) == kBlack);
    CHECK(c.pixel(x + j, y + h) == kBlack);
    CHECK(c.pixel(x + j, y - 2) == kWhite);
  }
  for (int r = -1; r <= h; ++r) {
    CHECK(c.pixel(x - 1, y + r) == kBlack);
    CHECK(c.pixel(x + w, y + r) == kBlack);
    CHECK(c.pixel(x - 2, y + r) == kWhite);
    for (int k = 1; k <= 3; ++k) CHECK(c.pixel(x + w + k, y + r) == kWhite);
  }
  // The labels, exactly where text() puts them on a blank canvas.
  Canvas ref(60, 40, kWhite);
  ref.text(x + w + 4, y, "1.5", kBlack);
  ref.text(x + w + 4, y + h - Canvas::text_height("0"), "0", kBlack);
  int label_px = 0, bad = 0;
  for (int yy = 0; yy < 40; ++yy)
    for (int xx = x + w + 1; xx < 60; ++xx) {
      label_px += ref.pixel(xx, yy) == kBlack;
      bad += c.pixel(xx, yy) != ref.pixel(xx, yy);
    }
  CHECK(label_px > 10);
  CHECK(bad == 0);
}

TEST_CASE("draw_colorbar: clipping and errors") {
  // Partly above the canvas: row r still gets its own color; nothing throws.
  Canvas c(20, 10, kWhite);
  draw_colorbar(c, 15, -10, 8, 100, Colormap::Gray, "lo", "hi");
  CHECK(c.pixel(15, 0) == colormap(89 / 99.0, Colormap::Gray));
  CHECK(c.pixel(19, 9) == colormap(80 / 99.0, Colormap::Gray));
  CHECK(c.pixel(14, 5) == kBlack);  // the left side of the frame
  draw_colorbar(c, -1000000, 2000000000, 3, 5, Colormap::Jet, "a", "b");  // far away: no-op
  draw_colorbar(c, 2147483000, -2147483000, 3, 5, Colormap::Jet, "a", "b");
  CHECK(c.pixel(0, 0) == kWhite);
  check_error([&] { draw_colorbar(c, 0, 0, 4, 1, Colormap::Jet, "", ""); },
              {"draw_colorbar", "4x1"});
  check_error([&] { draw_colorbar(c, 0, 0, 0, 9, Colormap::Jet, "", ""); },
              {"draw_colorbar", "0x9"});
}

// ---------------------------------------------------------------- devices

TEST_CASE("heat maps: tensors on a GPU give the same pictures as on the CPU") {
  if (!gpu_or_skip()) return;
  const Tensor img = uniform({2, 3, 6, 5}, 0, 1, 3).to(DType::Float32);
  const Tensor map = uniform({2, 3, 4}, -1, 2, 4).to(DType::Float32);
  const Device g = Device::cuda(0);
  check_close(normalize_map(map.to(g), true), normalize_map(map, true), 0, 0);
  check_close(apply_colormap(map.to(g), Colormap::Inferno), apply_colormap(map, Colormap::Inferno),
              0, 0);
  const Tensor out = overlay_heatmap(img.to(g), map.to(g), Colormap::Jet, 0.4);
  CHECK(out.device() == Device::cpu());
  check_close(out, overlay_heatmap(img, map, Colormap::Jet, 0.4), 0, 0);
}
