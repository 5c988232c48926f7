// CUDA bilinear upsampling with align_corners = true (kernels/cuda/resize.cu) against the CPU
// (kernels/cpu/resize.cpp): op-level parity of outputs and input gradients (check_parity:
// NaN-filled device allocations, so an element a kernel never writes shows up), in float and
// double, over the shapes of tests/test_cuda_pool_shape.cpp's resize list plus U-Net's bilinear
// decoder steps (x2 from odd sizes, as the decoder meets them when H or W is not a multiple of 16).
// Tolerances: the forward computes the CPU's taps in the same arithmetic; the backward gathers in
// another order than the CPU's scatter: 1e-5 (float) and 1e-12 (double) cover both.
// Every case starts with gpu_or_skip(): without a GPU it prints why and passes.
#include <doctest/doctest.h>

#include <string>

#include <nabla/nabla.h>

#include "cuda_parity.h"

using namespace nabla;
using nabla::test::check_parity;
using nabla::test::gpu_or_skip;
using nabla::test::ParityOptions;

TEST_CASE("cuda upsample_bilinear2d with align_corners: parity") {
  if (!gpu_or_skip()) return;
  struct Resize {
    int64_t N, C, H, W, OH, OW;
  };
  // clang-format off
  const Resize kResizes[] = {
      {2, 3, 5, 7, 10, 14},    // x2
      {1, 2, 7, 5, 16, 9},     // non-integer factors, different per axis
      {2, 4, 9, 8, 4, 3},      // downsampling
      {1, 1, 1, 1, 3, 5},      // from a single pixel
      {1, 3, 4, 4, 1, 1},      // to a single pixel
      {1, 3, 4, 4, 4, 4},      // identity size
      {2, 33, 3, 5, 6, 10},    // U-Net decoder from odd sizes, channels not a warp multiple
      {2, 128, 4, 4, 8, 8},    // U-Net base 16, bilinear, up1 at 64x64
  };
  // clang-format on
  for (DType dt : {DType::Float32, DType::Float64})
    for (const Resize& r : kResizes) {
      Generator gen(83);
      Tensor x = randn({r.N, r.C, r.H, r.W}, dt, Device::cpu(), &gen);
      ParityOptions o;
      if (dt == DType::Float64) o.atol = o.rtol = 1e-12;
      const std::string name = "upsample_bilinear2d aligned " + shape_str(x.shape()) + " -> " +
                               std::to_string(r.OH) + "x" + std::to_string(r.OW) +
                               (dt == DType::Float64 ? " f64" : " f32");
      check_parity(
          name,
          [&](const std::vector<Tensor>& v) {
            return std::vector<Tensor>{upsample_bilinear2d(v[0], r.OH, r.OW, true)};
          },
          {x}, o);
    }
}
