// What a generator's training leaves to look at: a grid of samples from fixed noise after every
// epoch, a strip that lines the epochs up, and latent interpolation grids.
//
//   save_epoch_samples(dir, e, x)  x [N, C, H, W] in [-1, 1] (tanh) -> dir/epoch_<e>.png, a grid of
//                                  nrow per row with pixels (x + 1) / 2, and dir/epoch_<e>.npy (x)
//   save_epoch_strip(dir, k)       every dir/epoch_<e>.npy in epoch order -> dir/epochs.png, one
//                                  row per epoch holding its first k samples (the same noise in
//                                  every row, so a column shows one z through training)
//   interpolate_latents(a, b, s)   a, b [R, ...] -> [R * s, ...], row r holds
//                                  (1 - t) a_r + t b_r for t = 0, 1/(s-1), ..., 1 (linear; for
//                                  Gaussian z of dimension 100 the norm along the line dips by at
//                                  most 1/sqrt(2) in the middle, which DCGAN's G tolerates)
//
// Epoch numbers are written with three digits (epoch_007.png), so file names sort in order.
#pragma once

#include <cstdint>
#include <string>

#include <nabla/tensor.h>

namespace nabla::gan {

// requires: images float [N, C, H, W], C = 1 or 3, N >= 1; epoch >= 0; dir creatable.
// ensures: the two files above (atomic writes); returns the PNG's path.
std::string save_epoch_samples(const std::string& dir, int64_t epoch, const Tensor& images,
                               int64_t nrow = 8);

// requires: dir holds at least one epoch_<e>.npy written by save_epoch_samples, all of one
//   per-image shape (else nabla::Error naming the files); per_epoch >= 1.
// ensures: dir/epochs.png as above (rows of min(per_epoch, N) samples); returns its path.
std::string save_epoch_strip(const std::string& dir, int64_t per_epoch = 8);

// requires: a and b float, the same shape [R, ...], R >= 1; steps >= 2.
// ensures: [R * steps, ...] as above, on a's device; ready for make_grid with nrow = steps.
Tensor interpolate_latents(const Tensor& a, const Tensor& b, int64_t steps);

}  // namespace nabla::gan
