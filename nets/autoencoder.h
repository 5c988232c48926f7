// What the two autoencoder recipes (nets/aae_train, nets/vae_train) share: the data, the
// reconstruction grid and the pictures of a 2-D latent space. Both train on Fashion-MNIST's
// 28x28 images with pixels in [0, 1], as 784-vectors.
//
//   reconstructions.png  rows of 16: originals, then their reconstructions below them
//   latent.png           the test codes coloured by class over prior samples (gan::latent.h)
//   manifold.png         decode(latent_grid(box, n)), n per row: the decoder's image of a
//                        regular grid over the box of the prior's samples (1 % to 99 %)
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <nabla/data/mnist.h>
#include <nabla/tensor.h>

namespace nabla::nets {

// requires: dir as data::load_mnist takes it; its images 1x28x28 (else nabla::Error naming the
//   command and the shape).
// ensures: the split, the first `limit` images when limit > 0.
data::Dataset autoencoder_data(const std::string& command, const std::string& dir,
                               data::Split split, int64_t limit);

// requires: x and recon [N, 1, 28, 28] in [0, 1], N >= 1.
// ensures: path holds rows of 16 (fewer when N < 16) originals, each followed by the row of
//   their reconstructions, for the first min(N, 32) images.
void save_reconstructions(const std::string& path, const Tensor& x, const Tensor& recon);

// requires: codes float [N, 2], labels int64 [N]; prior_samples float [M, 2] (the box and the
//   background); decode maps [K, 2] codes to [K, 1, 28, 28] images in [0, 1]; n >= 2.
// ensures: dir/latent.png and dir/manifold.png as above; returns {"latent_png", "manifold",
// "latent_box"}.
nlohmann::json save_latent_figures(const std::string& dir, const Tensor& codes,
                                   const Tensor& labels,
                                   const std::vector<std::string>& class_names,
                                   const Tensor& prior_samples,
                                   const std::function<Tensor(const Tensor&)>& decode, int64_t n,
                                   const std::string& title);

}  // namespace nabla::nets
