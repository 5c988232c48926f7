// Pooling and upsampling as ops: hand-computed cases and gradient checks.
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
}

TEST_CASE("pool: errors name the op and the shapes") {
  check_error([] { max_pool2d(zeros({2, 3, 8}), 2); }, {"max_pool2d", "[2, 3, 8]"});
  check_error([] { max_pool2d(zeros({1, 1, 4, 4}), 5); }, {"max_pool2d", "[1, 1, 4, 4]"});
  check_error([] { avg_pool2d(zeros({1, 1, 4, 4}), 2, 2, 2); }, {"avg_pool2d"});
  check_error([] { upsample_bilinear2d(zeros({1, 1, 4, 4}), 0, 3); }, {"upsample_bilinear2d"});
  check_error([] { global_avg_pool2d(zeros({4, 4})); }, {"global_avg_pool2d", "[4, 4]"});
}
