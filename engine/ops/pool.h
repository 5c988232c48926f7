// Pooling and upsampling (NCHW): max_pool2d, avg_pool2d, global_avg_pool2d,
// upsample_nearest2d, upsample_bilinear2d. Semantics follow PyTorch (kernels/pool.h):
// floor output sizes, padding <= kernel/2, avg_pool counts padding in the divisor,
// bilinear with align_corners = false by default, or true (kernels/resize.h: the corners of input
// and output coincide, src = i (in - 1) / (out - 1); U-Net's bilinear decoder).
#pragma once

#include <nabla/tensor.h>

namespace nabla {

// stride 0 means stride = kernel (PyTorch's default).
Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride = 0, int64_t padding = 0);
Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride = 0, int64_t padding = 0);
// [N, C, H, W] -> [N, C]: the mean of each plane (CAM and global-average-pool heads).
Tensor global_avg_pool2d(const Tensor& x);
Tensor upsample_nearest2d(const Tensor& x, int64_t out_h, int64_t out_w);
Tensor upsample_bilinear2d(const Tensor& x, int64_t out_h, int64_t out_w,
                           bool align_corners = false);

enum class UpsampleMode { Nearest, Bilinear };
// Scales H and W by an integer factor. align_corners applies to Bilinear only (nabla::Error with
// Nearest, as PyTorch refuses it).
Tensor upsample(const Tensor& x, int64_t scale, UpsampleMode mode = UpsampleMode::Nearest,
                bool align_corners = false);

}  // namespace nabla
