// The variational autoencoder of Kingma and Welling 2014 ("Auto-Encoding Variational Bayes",
// appendix C.2 and B), as pytorch/examples' vae/main.py builds it, with the hidden width and the
// latent dimension as arguments:
//
//   encode   x [N, 784] (or [N, 1, 28, 28]):  h1 = relu(fc1(x)),  mu = fc21(h1), logvar = fc22(h1)
//   sample   z = mu + exp(logvar / 2) * eps,  eps ~ N(0, I)   (the reparameterisation trick: z is
//            a differentiable function of mu and logvar, the noise an input)
//   decode   logits = fc4(relu(fc3(z))) [N, 784]; images sigmoid(logits) as [N, 1, 28, 28]
//
//   fc1 Linear(784, h)  fc21 Linear(h, d)  fc22 Linear(h, d)  fc3 Linear(d, h)  fc4 Linear(h, 784)
//   (the reference: h = 400, d = 20), PyTorch's default initialization, the reference's
//   parameter names, so its VAE class (scripts/torch_vae.py) loads our checkpoints strictly.
//
// The loss is the negative ELBO per image, summed over pixels and latent dimensions as in the
// reference and averaged over the batch:
//   -ELBO = recon + KL,   KL(q(z|x) || N(0, I)) = -1/2 sum_j (1 + logvar_j - mu_j^2 -
//   exp(logvar_j)) recon = sum_i BCE(sigmoid(logits_i), x_i)            (Bernoulli decoder, the
//   reference's)
//         | 1/2 sum_i (sigmoid(logits_i) - x_i)^2        (Gaussian decoder of unit variance, its
//                                                         constant (784/2) log 2 pi left out)
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include <nabla/nn/layers.h>

namespace nabla::nets {

class VAE : public nn::Module {
 public:
  // requires: hidden, latent >= 1.
  VAE(int64_t hidden = 400, int64_t latent = 20, Generator* gen = nullptr);
  // requires: x [N, 1, 28, 28] or [N, 784]. ensures: (mu, logvar), each [N, latent].
  std::pair<Tensor, Tensor> encode(const Tensor& x);
  // requires: z [N, latent]. ensures: logits [N, 784].
  Tensor decode_logits(const Tensor& z);
  // requires: z [N, latent]. ensures: images [N, 1, 28, 28] in (0, 1).
  Tensor decode(const Tensor& z);
  // The mean image of the code: decode(mu(x)) (what reconstructions show).
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<nn::Linear> fc1, fc21, fc22, fc3, fc4;
  int64_t hidden, latent;
};

// requires: mu, logvar float of one shape; eps undefined or of that shape (drawn from gen, the
//   default generator when null, otherwise).
// ensures: mu + exp(logvar / 2) * eps, differentiable in mu and logvar.
Tensor reparameterize(const Tensor& mu, const Tensor& logvar, const Tensor& eps = Tensor(),
                      Generator* gen = nullptr);

// requires: mu, logvar float [N, d] of one shape.
// ensures: the 0-dim sum over the batch of KL(N(mu, diag exp(logvar)) || N(0, I)) (above).
Tensor vae_kl(const Tensor& mu, const Tensor& logvar);

enum class VaeRecon { BCE, Gaussian };
// requires: "bce" or "gaussian" (else nabla::Error).
VaeRecon vae_recon_from_name(const std::string& name);

// requires: logits and x float [N, 784] of one shape, x in [0, 1].
// ensures: the 0-dim reconstruction term summed over the batch (above).
Tensor vae_recon(VaeRecon r, const Tensor& logits, const Tensor& x);

}  // namespace nabla::nets
