// Training the adversarial autoencoder (nets/aae.h) on Fashion-MNIST: the recipe behind
// `nabla aae train`.
//
//   data    the training split, 28x28 pixels x in [0, 1] as 784-vectors, label y
//   per step, batch (x, y) of B (Makhzani et al. 2015, section 2: "both the adversarial network
//   and the autoencoder are trained jointly with SGD in two phases ... executed on each
//   mini-batch"):
//     reconstruction  L_rec = mean over pixels of BCE(Dec(E(x)), x); Adam step on E and Dec
//     regularisation  z_p ~ p(z) [B, d] (supervised: z_p from component / segment y_i);
//                     z_q = E(x), a constant here; with c = onehot(y) appended in the supervised
//                     variant (D sees [z, c] for both);
//                     D step  (L_D, -) = loss(D(z_p), D(z_q)); Adam step on D
//                     G step  with D frozen (nn::FreezeGuard: no D weight gradient is
//                     computed): (-, L_G) = loss(D(z_p), D(E(x))) through the updated D; Adam
//                     step on E (the encoder is the generator of the latent GAN)
//     `loss` is any discriminator loss of engine/gan/losses.h but the Turing test
//     (nonsaturating by default: the GAN of the paper with G maximising log D(G(z)))
//   metrics  recon (L_rec), d_loss, g_loss, d_prior = mean sigmoid(D(z_p)) and
//            d_code = mean sigmoid(D(z_q)) of the D step
//   at the end, on the first test images: the mean test L_rec; reconstructions.png; samples.png
//   (decoded prior samples; supervised: row k from component k); with d = 2 latent.png (test
//   codes by class over prior samples) and manifold.png (decoded regular grid)
//
// Writes into `out`: encoder.safetensors, decoder.safetensors, discriminator.safetensors
// (nn.Sequential keys, see aae.h; metadata: prior, latent, hidden, supervised), metrics.csv,
// curves.png, summary.json, the figures and the run state that --resume continues from.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include <nabla/device.h>

namespace nabla::nets {

struct AaeTraining {
  std::string prior = "gaussian";  // gan::prior_names()
  bool supervised = false;         // D sees the one-hot label; the label picks the prior's part
  std::string loss = "nonsaturating";
  int64_t latent = 2, hidden = 1000;
  int64_t epochs = 10, batch = 100;
  double lr = 1e-3;      // Adam, reconstruction phase (encoder and decoder)
  double lr_reg = 1e-3;  // Adam, regularisation phase (D, and the encoder as generator)
  double beta1 = 0.5;    // beta1 of the regularisation phase's two Adams (0.9 for L_rec)
  uint64_t seed = 0;
  std::string data;  // MNIST-format folder; empty: Fashion-MNIST
  int64_t train_limit = 0;
  int64_t test_limit = 10000;  // test images encoded for the figures and the test loss
  std::string out = "runs/aae";
  int64_t checkpoint_every = 0;
  std::string device = "auto";
  int threads = 0;
};

void to_json(nlohmann::json& j, const AaeTraining& c);
void from_json(const nlohmann::json& j, AaeTraining& c);

// requires: valid options (a nabla::Error names the first bad one: --supervised needs a prior
//   with ten parts, mixture10 and swissroll need --latent 2, the Turing loss is for images);
//   resume: `c.out` holds a checkpoint of a run with these options.
// ensures: the files above; returns the summary (per-epoch records, last recon, d_loss,
//   g_loss, d_prior, d_code, test_recon, timings, paths).
nlohmann::json train_aae(const AaeTraining& c, Device dev, bool resume, bool show);

}  // namespace nabla::nets
