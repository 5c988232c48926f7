// Pooling and upsampling as ops: hand-computed cases and gradient checks.
#include <cmath>
#include <limits>

#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;

TEST_CASE("pool: hand-computed max, avg, global average") {
  Tensor x = tensor({1, 2, 5, 0,  //
                     3, 4, 1, 1,  //
                     0, 9, 2, 2,  //
                     7, 1, 3, 8},
                    {1, 1, 4, 4});
  check_close(max_pool2d(x, 2), {4, 5, 9, 8});
  check_close(avg_pool2d(x, 2), {2.5, 1.75, 4.25, 3.75});
  check_close(max_pool2d(x, 3, 1), {9, 9, 9, 9});
  check_close(global_avg_pool2d(x), {49.0 / 16});
  CHECK(global_avg_pool2d(zeros({2, 3, 4, 5})).shape() == Shape{2, 3});
  // Padding 1 with kernel 2 stride 2: windows at -1..0 and 1..2 (padding never wins max).
  check_close(max_pool2d(x, 2, 2, 1), {1, 5, 0, 3, 9, 2, 7, 3, 8});
  // avg counts the padded zeros: corner window holds only x[0,0] = 1 -> 1/4.
  CHECK(avg_pool2d(x, 2, 2, 1).to_vector<float>()[0] == doctest::Approx(0.25));
}

TEST_CASE("pool: hand-computed upsampling") {
  Tensor x = tensor({1, 2, 3, 4}, {1, 1, 2, 2});
  check_close(upsample_nearest2d(x, 4, 4), {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  check_close(upsample(x, 2), upsample_nearest2d(x, 4, 4));
  // align_corners=false, scale 2: rows at src -0.25 (clamped to 0), 0.25, 0.75, 1.25.
  check_close(upsample_bilinear2d(x, 4, 4),
              {1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4});
}

TEST_CASE("pool: hand-computed bilinear upsampling with align_corners") {
  Tensor x = tensor({1, 2, 3, 4}, {1, 1, 2, 2});
  // 2 -> 3: sources 0, 0.5, 1 along each axis.
  check_close(upsample_bilinear2d(x, 3, 3, true), {1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4});
  // 2 -> 4: sources 0, 1/3, 2/3, 1; the corners are the input's corners.
  check_close(upsample_bilinear2d(x, 4, 4, true),
              {1, 4. / 3, 5. / 3, 2, 5. / 3, 2, 7. / 3, 8. / 3,  //
               7. / 3, 8. / 3, 3, 10. / 3, 3, 10. / 3, 11. / 3, 4});
  check_close(upsample(x, 2, UpsampleMode::Bilinear, true), upsample_bilinear2d(x, 4, 4, true));
  // Downsampling 3 -> 2 keeps the corners; one output row reads source 0.
  Tensor z = arange(9, DType::Float32).reshape({1, 1, 3, 3});
  check_close(upsample_bilinear2d(z, 2, 2, true), {0, 2, 6, 8});
  check_close(upsample_bilinear2d(z, 1, 3, true), {0, 1, 2});
  // nn::Upsample with PyTorch's arguments.
  nn::Upsample up(2, UpsampleMode::Bilinear, true);
  check_close(up(x), upsample_bilinear2d(x, 4, 4, true));
  CHECK(up.extra_repr() == "scale_factor=2, mode=bilinear, align_corners=True");
  check_error([] { nn::Upsample(2, UpsampleMode::Nearest, true); }, {"align_corners", "nearest"});
  check_error([&] { upsample(x, 2, UpsampleMode::Nearest, true); }, {"align_corners"});
}

TEST_CASE("pool: gradient checks") {
  // Distinct values so max windows have no ties.
  Tensor d = add(mul(arange(2 * 3 * 7 * 6, DType::Float64).reshape({2, 3, 7, 6}), 0.013),
                 uniform({2, 3, 7, 6}, -0.005, 0.005));
  Tensor x = uniform({2, 3, 7, 6});
  CHECK(gradcheck([](const auto& v) { return max_pool2d(v[0], 2); }, {d}));
  CHECK(gradcheck([](const auto& v) { return max_pool2d(v[0], 3, 2, 1); }, {d}));
  CHECK(gradcheck([](const auto& v) { return avg_pool2d(v[0], 2); }, {x}));
  CHECK(gradcheck([](const auto& v) { return avg_pool2d(v[0], 3, 2, 1); }, {x}));
  CHECK(gradcheck([](const auto& v) { return global_avg_pool2d(v[0]); }, {x}));
  CHECK(gradcheck([](const auto& v) { return upsample_nearest2d(v[0], 14, 12); }, {x}));
  CHECK(gradcheck([](const auto& v) { return upsample_nearest2d(v[0], 10, 9); }, {x}));
  CHECK(gradcheck([](const auto& v) { return upsample_bilinear2d(v[0], 14, 12); }, {x}));
  CHECK(gradcheck([](const auto& v) { return upsample_bilinear2d(v[0], 5, 11); }, {x}));
  CHECK(gradcheck([](const auto& v) { return upsample_bilinear2d(v[0], 14, 12, true); }, {x}));
  CHECK(gradcheck([](const auto& v) { return upsample_bilinear2d(v[0], 15, 13, true); }, {x}));
  CHECK(gradcheck([](const auto& v) { return upsample_bilinear2d(v[0], 4, 1, true); }, {x}));
}

TEST_CASE("pool: errors name the op and the shapes") {
  check_error([] { max_pool2d(zeros({2, 3, 8}), 2); }, {"max_pool2d", "[2, 3, 8]"});
  check_error([] { max_pool2d(zeros({1, 1, 4, 4}), 5); }, {"max_pool2d", "[1, 1, 4, 4]"});
  check_error([] { avg_pool2d(zeros({1, 1, 4, 4}), 2, 2, 2); }, {"avg_pool2d"});
  check_error([] { upsample_bilinear2d(zeros({1, 1, 4, 4}), 0, 3); }, {"upsample_bilinear2d"});
  check_error([] { global_avg_pool2d(zeros({4, 4})); }, {"global_avg_pool2d", "[4, 4]"});
}

TEST_CASE("max_pool2d: ties go to the first maximum, NaN propagates, on both kernel paths") {
  // kernel 2 stride 2 without padding takes the vectorized path; kernel 2 stride 1 over the same
  // 2x2 input has the same single window and takes the general path.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t stride : {2, 1}) {
    CAPTURE(stride);
    auto route = [&](std::vector<float> v) {
      Tensor x = from_vector<float>(v, {1, 1, 2, 2});
      x.set_requires_grad(true);
      Tensor y = max_pool2d(x, 2, stride);
      Tensor dx = grad({sum(y)}, {x})[0];
      return std::make_pair(y.item<float>(), dx.to_vector<float>());
    };
    auto [y1, d1] = route({3, 3, 3, 3});
    CHECK(y1 == 3);
    CHECK(d1 == std::vector<float>{1, 0, 0, 0});
    auto [y2, d2] = route({1, 2, 5, 5});
    CHECK(y2 == 5);
    CHECK(d2 == std::vector<float>{0, 0, 1, 0});
    auto [y3, d3] = route({1, nan, 3, 7});
    CHECK(std::isnan(y3));
    CHECK(d3 == std::vector<float>{0, 1, 0, 0});
    auto [y4, d4] = route({-1, -3, -2, nan});
    CHECK(std::isnan(y4));
    CHECK(d4 == std::vector<float>{0, 0, 0, 1});
  }
  // The fast path on random data with odd sizes (the last row and column are dropped).
  Tensor x = randn({3, 5, 9, 11});
  Tensor fast = max_pool2d(x, 2, 2);
  CHECK(fast.shape() == Shape{3, 5, 4, 5});
  // The max of each 2x2 block, computed here.
  std::vector<float> xv = x.to_vector<float>(), want;
  for (int64_t nc = 0; nc < 15; ++nc)
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t j = 0; j < 5; ++j) {
        const float* p = xv.data() + nc * 99 + 2 * i * 11 + 2 * j;
        want.push_back(std::max(std::max(p[0], p[1]), std::max(p[11], p[12])));
      }
  CHECK(fast.to_vector<float>() == want);
}
