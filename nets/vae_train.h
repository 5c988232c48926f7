// Training the variational autoencoder (nets/vae.h) on Fashion-MNIST: the recipe behind
// `nabla vae train`.
//
//   data    the training split, 28x28 pixels x in [0, 1] as 784-vectors
//   per step, batch x of B:
//     (mu, logvar) = encode(x); z = mu + exp(logvar / 2) eps with eps ~ N(0, I) from the run's
//     noise generator; loss = (recon(decode(z), x) + KL(mu, logvar)) / B, the negative ELBO per
//     image (vae.h); Adam step
//   metrics  loss, recon and kl, per image
//   at the end, on the first test images (one eps per image from a fixed seed): test_loss,
//   test_recon, test_kl; reconstructions.png (decode(mu)); samples.png (decode(z), z ~ N(0, I),
//   8 x 8); with latent 2 also latent.png (mu of the test images by class over N(0, I) samples)
//   and manifold.png (decoded regular grid over the prior's central 98 %); latent arithmetic
//   (arithmetic.png: the first 8 test T-shirts, decode(mu), and decode(mu + mean mu(Pullover) -
//   mean mu(T-shirt)), the seed's "add the difference of two mean codes") and interpolation.png
//   (decode along the line between the means of test images 2r and 2r + 1, 8 rows of 10)
//
// Writes into `out`: vae.safetensors (pytorch/examples' keys fc1, fc21, fc22, fc3, fc4; metadata
// hidden, latent, recon), metrics.csv, curves.png, summary.json, the figures and the run state
// that --resume continues from.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include <nabla/device.h>

namespace nabla::nets {

struct VaeTraining {
  int64_t latent = 20, hidden = 400;  // pytorch/examples' sizes
  std::string recon = "bce";          // bce or gaussian
  int64_t epochs = 10, batch = 128;
  double lr = 1e-3;
  uint64_t seed = 0;
  std::string data;
  int64_t train_limit = 0;
  int64_t test_limit = 10000;
  std::string out = "runs/vae";
  int64_t checkpoint_every = 0;
  std::string device = "auto";
  int threads = 0;
};

void to_json(nlohmann::json& j, const VaeTraining& c);
void from_json(const nlohmann::json& j, VaeTraining& c);

// requires: valid options (a nabla::Error names the first bad one); resume: `c.out` holds a
//   checkpoint of a run with these options.
// ensures: the files above; returns the summary (per-epoch records, last loss, recon, kl, the
//   test numbers, timings, paths).
nlohmann::json train_vae(const VaeTraining& c, Device dev, bool resume, bool show);

}  // namespace nabla::nets
