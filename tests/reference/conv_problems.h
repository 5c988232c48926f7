// The shared conv problem list: every conv test (CPU against the reference, CUDA against
// CPU, gradient checks) runs over this one table, so a shape that breaks one path is tried
// on all of them. It covers batch 1, odd H/W, stride 2, padding, dilation, groups and
// depthwise, non-square kernels/strides/pads, channel counts that are not multiples of the
// block sizes, 1x1 convs (the pointwise fast path and the ones that are not), and the
// FashionCNN layer shapes at a small batch. Sizes stay small so the naive reference is quick.
//
// Each problem is also read as a transposed conv (x [N, C, H, W] -> y [N, K, Ho, Wo], weight
// [C, K/g, R, S]): see transposed_params().
#pragma once

#include <cstdint>

#include "kernels/conv.h"

namespace nabla::test {

struct ConvProblem {
  const char* name;
  int64_t N, C, H, W, K, R, S;
  int64_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;

  // ensures: the conv2d of this problem, finalized.
  Conv2dParams params() const {
    Conv2dParams p;
    p.N = N, p.C = C, p.H = H, p.W = W, p.K = K, p.R = R, p.S = S;
    p.stride_h = stride_h, p.stride_w = stride_w, p.pad_h = pad_h, p.pad_w = pad_w;
    p.dil_h = dil_h, p.dil_w = dil_w, p.groups = groups;
    p.finalize();
    return p;
  }

  // Output height/width of this problem read as a transposed conv with output_padding op.
  int64_t transposed_ho(int64_t op_h) const {
    return (H - 1) * stride_h - 2 * pad_h + dil_h * (R - 1) + op_h + 1;
  }
  int64_t transposed_wo(int64_t op_w) const {
    return (W - 1) * stride_w - 2 * pad_w + dil_w * (S - 1) + op_w + 1;
  }

  // requires: transposed_ho(op_h), transposed_wo(op_w) >= 1.
  // ensures:  the conv2d whose backward_input is this problem's transposed conv: its input
  //           side is the transposed output [N, K, Ho, Wo], its output side the transposed
  //           input [N, C, H, W], weight [C, K/g, R, S]. finalize() gives P = H exactly when
  //           op_h < stride_h (floor drops the extra rows); PyTorch also allows
  //           stride_h <= op_h < dil_h, where the extra rows have to be dropped by setting P = H,
  //           which this does in both cases.
  Conv2dParams transposed_params(int64_t op_h, int64_t op_w) const {
    Conv2dParams p;
    p.N = N, p.C = K, p.H = transposed_ho(op_h), p.W = transposed_wo(op_w);
    p.K = C, p.R = R, p.S = S;
    p.stride_h = stride_h, p.stride_w = stride_w, p.pad_h = pad_h, p.pad_w = pad_w;
    p.dil_h = dil_h, p.dil_w = dil_w, p.groups = groups;
    p.finalize();
    p.P = H, p.Q = W;
    return p;
  }
};

// clang-format off
inline constexpr ConvProblem kConvProblems[] = {
  // name                           N   C   H   W   K  R  S  sh sw ph pw dh dw  g
  {"3x3 valid, batch 1",            1,  1,  5,  5,  1, 3, 3,  1, 1, 0, 0, 1, 1, 1},
  {"batch 1, odd H/W, pad 1",       1,  3,  7,  9,  5, 3, 3,  1, 1, 1, 1, 1, 1, 1},
  {"stride 2, pad 1",               2,  3,  9,  8,  4, 3, 3,  2, 2, 1, 1, 1, 1, 1},
  {"dilation 2, pad 2",             2,  2, 11, 10,  3, 3, 3,  1, 1, 2, 2, 2, 2, 1},
  {"dilation 2, stride 2, no pad",  3,  2, 12,  9,  3, 3, 3,  2, 2, 0, 0, 2, 2, 1},
  {"groups 2",                      2,  4,  6,  7,  6, 3, 3,  1, 1, 1, 1, 1, 1, 2},
  {"groups 3, stride 2",            2,  6,  9,  9,  9, 3, 3,  2, 2, 1, 1, 1, 1, 3},
  {"depthwise",                     2,  5,  7,  6,  5, 3, 3,  1, 1, 1, 1, 1, 1, 5},
  {"depthwise x2 multiplier, s2",   2,  3,  8,  8,  6, 3, 3,  2, 2, 1, 1, 1, 1, 3},
  {"1x3 kernel",                    2,  3,  5,  8,  4, 1, 3,  1, 1, 0, 1, 1, 1, 1},
  {"3x1 kernel",                    2,  3,  8,  5,  2, 3, 1,  1, 1, 1, 0, 1, 1, 1},
  {"5x3 kernel",                    2,  2,  9,  7,  3, 5, 3,  1, 1, 2, 1, 1, 1, 1},
  {"stride (2,1), pad (0,1)",       2,  3, 10,  9,  4, 3, 3,  2, 1, 0, 1, 1, 1, 1},
  {"stride (1,3), pad (2,0)",       2,  2,  7, 13,  3, 3, 3,  1, 3, 2, 0, 1, 1, 1},
  {"mixed 3x2 s(3,2) p(1,2) d(2,1)", 1, 3, 12, 13,  5, 3, 2,  3, 2, 1, 2, 2, 1, 1},
  {"channels 7 -> 13",              2,  7,  6,  5, 13, 3, 3,  1, 1, 1, 1, 1, 1, 1},
  {"channels 9 -> 17, batch 5",     5,  9,  5,  6, 17, 3, 3,  1, 1, 1, 1, 1, 1, 1},
  {"1x1 (pointwise path)",          2,  6,  5,  7,  9, 1, 1,  1, 1, 0, 0, 1, 1, 1},
  {"1x1 groups 2 (pointwise)",      3,  6,  4,  5,  4, 1, 1,  1, 1, 0, 0, 1, 1, 2},
  {"1x1 stride 2",                  2,  6,  7,  7,  4, 1, 1,  2, 2, 0, 0, 1, 1, 1},
  {"1x1 pad 1",                     2,  3,  4,  5,  2, 1, 1,  1, 1, 1, 1, 1, 1, 1},
  {"kernel covers input (P = 1)",   2,  3,  4,  4,  2, 4, 4,  1, 1, 0, 0, 1, 1, 1},
  {"pad larger than half kernel",   1,  2,  3,  3,  2, 3, 3,  1, 1, 2, 2, 1, 1, 1},
  {"4x4 s2 p1 (DCGAN)",             2,  4,  8,  8,  3, 4, 4,  2, 2, 1, 1, 1, 1, 1},
  {"FashionCNN conv1",              2,  1, 28, 28, 32, 3, 3,  1, 1, 1, 1, 1, 1, 1},
  {"FashionCNN conv2",              2, 32, 14, 14, 64, 3, 3,  1, 1, 1, 1, 1, 1, 1},
  // P*Q = 132 < 256: the CPU kernels batch 2 samples per GEMM, then 1 (a remainder chunk).
  {"3 samples in chunks of 2",      3,  2, 12, 11,  3, 3, 3,  1, 1, 1, 1, 1, 1, 1},
  {"1x1, 3 samples in chunks of 2", 3,  4, 12, 11,  5, 1, 1,  1, 1, 0, 0, 1, 1, 1},
  {"groups 2, 3 samples, chunks",   3,  4, 12, 11,  6, 3, 3,  1, 1, 1, 1, 1, 1, 2},
  // Batch 1 and a col buffer big enough that im2col/col2im themselves run on the threads.
  {"FashionCNN conv2, batch 1",     1, 32, 14, 14, 64, 3, 3,  1, 1, 1, 1, 1, 1, 1},
};
// clang-format on

}  // namespace nabla::test
