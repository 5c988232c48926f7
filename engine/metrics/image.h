// Full-reference image quality: L1, PSNR and SSIM of images x against references y, per image.
//
//   l1(x, y)          mean_i |x_i - y_i| over the C*H*W values of one image
//   psnr(x, y, R)     10 log10(R^2 / MSE), MSE = mean_i (x_i - y_i)^2 over one image; +inf when
//                     the two are equal. R is the data range (2 for images in [-1, 1])
//   ssim(x, y, R)     Wang, Bovik, Sheikh and Simoncelli 2004 ("Image quality assessment: from
//                     error visibility to structural similarity"), eq. 13 with their constants:
//                       SSIM(a, b) = (2 mu_a mu_b + C1)(2 s_ab + C2) /
//                                    ((mu_a^2 + mu_b^2 + C1)(s_a^2 + s_b^2 + C2))
//                     C1 = (0.01 R)^2, C2 = (0.03 R)^2; the local statistics weighted by an 11x11
//                     Gaussian window (sigma 1.5, normalised to sum 1) at every position where
//                     it fits inside the image ('valid', as the authors' MATLAB ssim_index), the
//                     map averaged over positions and then over channels
//
// x and y: float [N, C, H, W] of the same shape on any device (computed in double on the host);
// SSIM needs H, W >= 11. Errors name the function and both shapes.
#pragma once

#include <vector>

#include <nabla/tensor.h>

namespace nabla::metrics {

std::vector<double> l1_per_image(const Tensor& x, const Tensor& y);
std::vector<double> psnr(const Tensor& x, const Tensor& y, double data_range);
std::vector<double> ssim(const Tensor& x, const Tensor& y, double data_range);

}  // namespace nabla::metrics
