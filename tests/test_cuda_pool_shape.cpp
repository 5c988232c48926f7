// CUDA pooling, upsampling, concat/split and padding (kernels/cuda/pool.cu, shape.cu) against
// the CPU: op-level parity of outputs and input gradients (check_parity: NaN-filled device
// allocations, so an element a kernel never writes shows up), in float and double.
//
// Shapes: batch 1, odd H/W, stride 2, padding, kernels as large as the padded input, ties in
// the max-pool windows (integer-valued data: the first maximum must win on both sides),
// non-integer resize factors, downsampling, 1x1 inputs, empty pieces in concat/split, negative
// (cropping) constant pads, reflect/replicate pads of one and two dims up to the largest
// allowed, and the FashionCNN pooling shape.
// Tolerances: max pooling, nearest upsampling, concat/split and padding move or add the same
// numbers in the same order as the CPU (the GPU gathers where the CPU scatters, in the same
// order), and avg pooling sums each window in the CPU's order: for those the results agree to
// rounding of the contracted multiply-adds at most. Bilinear backward and the global average
// add in another order: 1e-5 (float) covers it.
// Every case starts with gpu_or_skip(): without a GPU it prints why and passes.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include <nabla/nabla.h>

#include "cuda_parity.h"

namespace {

using namespace nabla;
using nabla::test::check_parity;
using nabla::test::gpu_or_skip;
using nabla::test::ParityOptions;

ParityOptions tolerance(DType dt) {
  ParityOptions o;
  if (dt == DType::Float64) {
    o.atol = 1e-12;
    o.rtol = 1e-12;
  }  // float32: the defaults, atol 1e-5, rtol 1e-4
  return o;
}

std::string dims(std::initializer_list<int64_t> v) {
  std::string s = "[";
  for (int64_t d : v) {
    if (s.size() > 1) s += ",";
    s += std::to_string(d);
  }
  return s + "]";
}

const char* dt_name(DType dt) {
  return dt == DType::Float64 ? " f64" : " f32";
}

struct PoolProblem {
  int64_t N, C, H, W, k, s, p;
};

// clang-format off
const PoolProblem kPools[] = {
    {1, 3,  7,  9, 2, 2, 0},   // batch 1, odd H/W: the last row/column is dropped
    {2, 5,  9, 11, 3, 2, 1},   // stride 2, padding 1
    {2, 3,  8,  8, 3, 1, 1},   // overlapping windows
    {1, 2, 13,  6, 5, 3, 2},   // large kernel, pad = k/2
    {2, 3,  4,  4, 4, 1, 0},   // the window covers the input: P = Q = 1
    {3, 33, 6,  7, 2, 1, 0},   // channels not a warp multiple, stride 1
    {8, 32, 28, 28, 2, 2, 0},  // FashionCNN pool 1
};
// clang-format on

}  // namespace

TEST_CASE("cuda max_pool2d and avg_pool2d: parity, with ties in the windows") {
  if (!gpu_or_skip()) return;
  for (DType dt : {DType::Float32, DType::Float64})
    for (const PoolProblem& q : kPools) {
      Generator gen(61);
      const std::string name = dims({q.N, q.C, q.H, q.W}) + " k" + std::to_string(q.k) + " s" +
                               std::to_string(q.s) + " p" + std::to_string(q.p) + dt_name(dt);
      Tensor x = randn({q.N, q.C, q.H, q.W}, dt, Device::cpu(), &gen);
      // Integer values in [-2, 2]: most windows hold ties, which must go to the first maximum.
      Tensor xt = randint(-2, 3, {q.N, q.C, q.H, q.W}, &gen).to(dt);
      for (const Tensor& in : {x, xt}) {
        check_parity(
            "max_pool2d " + name,
            [&](const std::vector<Tensor>& v) {
              return std::vector<Tensor>{max_pool2d(v[0], q.k, q.s, q.p)};
            },
            {in}, tolerance(dt));
        check_parity(
            "avg_pool2d " + name,
            [&](const std::vector<Tensor>& v) {
              return std::vector<Tensor>{avg_pool2d(v[0], q.k, q.s, q.p)};
            },
            {in}, tolerance(dt));
      }
    }
}

TEST_CASE("cuda global_avg_pool2d: parity") {
  if (!gpu_or_skip()) return;
  for (DType dt : {DType::Float32, DType::Float64})
    for (auto s : std::vector<std::vector<int64_t>>{
             {2, 5, 7, 9}, {3, 64, 7, 7}, {1, 3, 1, 1}, {2, 4, 33, 35}, {1, 1, 1, 77}}) {
      Generator gen(71);
      Tensor x = rand(s, dt, Device::cpu(), &gen, -1, 3);
      check_parity(
          "global_avg_pool2d " + dims({s[0], s[1], s[2], s[3]}) + dt_name(dt),
          [](const std::vector<Tensor>& v) { return std::vector<Tensor>{global_avg_pool2d(v[0])}; },
          {x}, tolerance(dt));
    }
}

TEST_CASE("cuda upsample_nearest2d and upsample_bilinear2d: parity") {
  if (!gpu_or_skip()) return;
  struct Resize {
    int64_t N, C, H, W, OH, OW;
  };
  // clang-format off
  const Resize kResizes[] = {
      {2, 3, 5, 7, 10, 14},   // x2
      {1, 2, 7, 5, 16, 9},    // non-integer factors, different per axis
      {2, 4, 9, 8, 4, 3},     // downsampling
      {1, 1, 1, 1, 3, 5},     // from a single pixel
      {1, 3, 4, 4, 4, 4},     // identity size
      {1, 2, 6, 5, 13, 11},   // odd factors
      {2, 64, 8, 8, 16, 16},  // a U-Net decoder step
  };
  // clang-format on
  for (DType dt : {DType::Float32, DType::Float64})
    for (const Resize& r : kResizes) {
      Generator gen(81);
      Tensor x = randn({r.N, r.C, r.H, r.W}, dt, Device::cpu(), &gen);
      const std::string name = dims({r.N, r.C, r.H, r.W}) + " -> " + std::to_string(r.OH) + "x" +
                               std::to_string(r.OW) + dt_name(dt);
      check_parity(
          "upsample_nearest2d " + name,
          [&](const std::vector<Tensor>& v) {
            return std::vector<Tensor>{upsample_nearest2d(v[0], r.OH, r.OW)};
          },
          {x}, tolerance(dt));
      check_parity(
          "upsample_bilinear2d " + name,
          [&](const std::vector<Tensor>& v) {
            return std::vector<Tensor>{upsample_bilinear2d(v[0], r.OH, r.OW)};
          },
          {x}, tolerance(dt));
    }
}

TEST_CASE("cuda concat and split: parity along every dim, with empty pieces") {
  if (!gpu_or_skip()) return;
  for (DType dt : {DType::Float32, DType::Float64})
    for (int64_t dim = 0; dim < 4; ++dim) {
      Generator gen(91);
      std::vector<Tensor> xs;
      for (int64_t len : {2, 0, 3}) {
        Shape s{3, 4, 5, 6};
        s[size_t(dim)] = len;
        xs.push_back(randn(s, dt, Device::cpu(), &gen));
      }
      const std::string name = " dim " + std::to_string(dim) + dt_name(dt);
      check_parity(
          "concat" + name,
          [&](const std::vector<Tensor>& v) { return std::vector<Tensor>{concat(v, dim)}; }, xs,
          tolerance(dt));
      Shape s{3, 4, 5, 6};
      s[size_t(dim)] = 7;
      Tensor x = randn(s, dt, Device::cpu(), &gen);
      check_parity(
          "split by sizes" + name,
          [&](const std::vector<Tensor>& v) {
            return split(v[0], std::vector<int64_t>{2, 0, 5}, dim);
          },
          {x}, tolerance(dt));
      check_parity(
          "split by chunk" + name,
          [&](const std::vector<Tensor>& v) { return split(v[0], int64_t(3), dim); }, {x},
          tolerance(dt));
    }
}

TEST_CASE("cuda pad: constant (with cropping), reflect and replicate parity") {
  if (!gpu_or_skip()) return;
  struct PadProblem {
    std::vector<int64_t> shape, pads;
    PadMode mode;
    double value;
  };
  const std::vector<PadProblem> problems = {
      {{2, 3, 5, 7}, {1, 2, 3, 0}, PadMode::Constant, 0.5},
      {{2, 3, 5, 7}, {-1, 2, 1, -2, 1, 1}, PadMode::Constant, -1},  // crops, three dims
      {{4, 6}, {0, 0, 2, 3}, PadMode::Constant, 0},
      {{3}, {-1, -1}, PadMode::Constant, 0},
      {{2, 3, 5, 7}, {2, 3, 1, 4}, PadMode::Reflect, 0},
      {{2, 3, 5, 7}, {6, 6, 4, 4}, PadMode::Reflect, 0},  // the largest pads reflect allows
      {{2, 3, 9}, {3, 1}, PadMode::Reflect, 0},           // one padded dim
      {{2, 3, 5, 7}, {2, 3, 1, 4}, PadMode::Replicate, 0},
      {{2, 3, 1, 1}, {2, 2, 3, 1}, PadMode::Replicate, 0},  // one element read by all
      {{2, 3, 9}, {5, 0}, PadMode::Replicate, 0},
      {{8, 64, 14, 14}, {1, 1, 1, 1}, PadMode::Reflect, 0},  // a CycleGAN-style reflect pad
  };
  for (DType dt : {DType::Float32, DType::Float64})
    for (const PadProblem& p : problems) {
      Generator gen(101);
      Tensor x = randn(p.shape, dt, Device::cpu(), &gen);
      const std::string name = std::string("pad ") + pad_mode_name(p.mode) + " " +
                               shape_str(p.shape) + " by " + shape_str(p.pads) + dt_name(dt);
      check_parity(
          name,
          [&](const std::vector<Tensor>& v) {
            return std::vector<Tensor>{pad(v[0], p.pads, p.mode, p.value)};
          },
          {x}, tolerance(dt));
    }
}
