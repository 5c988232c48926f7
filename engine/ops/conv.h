// Convolutions: conv2d and conv_transpose2d (NCHW), with stride, padding, dilation, groups,
// and output_padding for the transposed one. Weight layouts are PyTorch's:
//   conv2d            x [N, C, H, W], w [K, C/groups, R, S], b [K]      -> y [N, K, P, Q]
//   conv_transpose2d  x [N, C, H, W], w [C, K/groups, R, S], b [K]      -> y [N, K, Ho, Wo]
//     P  = (H + 2 pad - dil (R-1) - 1) / stride + 1
//     Ho = (H - 1) stride - 2 pad + dil (R-1) + output_padding + 1
// The transposed forward IS conv2d's backward-input, and its backward-input IS conv2d's
// forward (kernels/conv.h): each computation is written once.
#pragma once

#include <array>

#include <nabla/tensor.h>

namespace nabla {

struct Conv2dArgs {
  std::array<int64_t, 2> stride{1, 1}, padding{0, 0}, dilation{1, 1};
  std::array<int64_t, 2> output_padding{0, 0};  // conv_transpose2d only
  int64_t groups = 1;
};

// b may be undefined (no bias).
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dArgs& args);
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b = Tensor(), int64_t stride = 1,
              int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1);

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dArgs& args);
// Argument order as torch.nn.functional.conv_transpose2d.
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b = Tensor(),
                        int64_t stride = 1, int64_t padding = 0, int64_t output_padding = 0,
                        int64_t groups = 1, int64_t dilation = 1);

}  // namespace nabla
