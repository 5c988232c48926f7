// The variational autoencoder (see vae.h).
#include <nets/vae.h>

#include <nabla/error.h>
#include <nabla/ops.h>

namespace nabla::nets {

VAE::VAE(int64_t hidden_, int64_t latent_, Generator* gen)
    : Module("VAE"), hidden(hidden_), latent(latent_) {
  NABLA_CHECK(hidden >= 1 && latent >= 1, "VAE: hidden ", hidden, " and latent ", latent,
              " must be >= 1");
  fc1 = register_module("fc1", nn::make<nn::Linear>(784, hidden, true, gen));
  fc21 = register_module("fc21", nn::make<nn::Linear>(hidden, latent, true, gen));
  fc22 = register_module("fc22", nn::make<nn::Linear>(hidden, latent, true, gen));
  fc3 = register_module("fc3", nn::make<nn::Linear>(latent, hidden, true, gen));
  fc4 = register_module("fc4", nn::make<nn::Linear>(hidden, 784, true, gen));
}

std::pair<Tensor, Tensor> VAE::encode(const Tensor& x) {
  const bool image = x.dim() == 4 && x.size(1) == 1 && x.size(2) == 28 && x.size(3) == 28;
  NABLA_CHECK(image || (x.dim() == 2 && x.size(1) == 784), "VAE: x ", shape_str(x.shape()),
              " must be [N, 1, 28, 28] or [N, 784]");
  const Tensor h1 = relu((*fc1)(image ? x.reshape({x.size(0), 784}) : x));
  return {(*fc21)(h1), (*fc22)(h1)};
}

Tensor VAE::decode_logits(const Tensor& z) {
  NABLA_CHECK(z.dim() == 2 && z.size(1) == latent, "VAE: z ", shape_str(z.shape()), " must be [N, ",
              latent, "]");
  return (*fc4)(relu((*fc3)(z)));
}

Tensor VAE::decode(const Tensor& z) {
  return sigmoid(decode_logits(z)).reshape({z.size(0), 1, 28, 28});
}

Tensor VAE::forward(const Tensor& x) {
  return decode(encode(x).first);
}

Tensor reparameterize(const Tensor& mu, const Tensor& logvar, const Tensor& eps, Generator* gen) {
  NABLA_CHECK(mu.shape() == logvar.shape() && (!eps.defined() || eps.shape() == mu.shape()),
              "reparameterize: mu ", shape_str(mu.shape()), ", logvar ", shape_str(logvar.shape()),
              " and eps ", eps.defined() ? shape_str(eps.shape()) : std::string("(drawn)"),
              " must have one shape");
  const Tensor e = eps.defined() ? eps : randn(mu.shape(), mu.dtype(), mu.device(), gen);
  return add(mu, mul(exp(mul(logvar, 0.5)), e));
}

Tensor vae_kl(const Tensor& mu, const Tensor& logvar) {
  NABLA_CHECK(mu.dim() == 2 && mu.shape() == logvar.shape(), "vae_kl: mu ", shape_str(mu.shape()),
              " and logvar ", shape_str(logvar.shape()), " must be the same [N, d]");
  return mul(sum(sub(sub(add(logvar, 1.0), mul(mu, mu)), exp(logvar))), -0.5);
}

VaeRecon vae_recon_from_name(const std::string& name) {
  if (name == "bce") return VaeRecon::BCE;
  if (name == "gaussian") return VaeRecon::Gaussian;
  throw Error("vae: reconstruction '" + name + "': expected bce or gaussian");
}

Tensor vae_recon(VaeRecon r, const Tensor& logits, const Tensor& x) {
  NABLA_CHECK(logits.dim() == 2 && logits.shape() == x.shape(), "vae_recon: logits ",
              shape_str(logits.shape()), " and x ", shape_str(x.shape()),
              " must be the same [N, 784]");
  if (r == VaeRecon::BCE)
    return binary_cross_entropy_with_logits(logits, x, Tensor(), Reduction::Sum);
  return mul(mse_loss(sigmoid(logits), x, Reduction::Sum), 0.5);
}

}  // namespace nabla::nets
