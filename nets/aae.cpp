// The adversarial autoencoder's three networks (see aae.h).
#include <nets/aae.h>

#include <nabla/error.h>
#include <nabla/ops.h>

namespace nabla::nets {

using nn::make;

namespace {

// Linear(in, h) ReLU Linear(h, h) ReLU Linear(h, out): the paper's two hidden layers.
std::shared_ptr<nn::Sequential> mlp(int64_t in, int64_t h, int64_t out, Generator* gen) {
  return std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
      make<nn::Linear>(in, h, true, gen), make<nn::ReLU>(), make<nn::Linear>(h, h, true, gen),
      make<nn::ReLU>(), make<nn::Linear>(h, out, true, gen)});
}

}  // namespace

AAEEncoder::AAEEncoder(int64_t hidden_, int64_t latent_, Generator* gen)
    : Module("Encoder"), hidden(hidden_), latent(latent_) {
  NABLA_CHECK(hidden >= 1 && latent >= 1, "AAEEncoder: hidden ", hidden, " and latent ", latent,
              " must be >= 1");
  main = register_module("main", mlp(kAaePixels, hidden, latent, gen));
}

Tensor AAEEncoder::forward(const Tensor& x) {
  const bool image = x.dim() == 4 && x.size(1) == 1 && x.size(2) == 28 && x.size(3) == 28;
  NABLA_CHECK(image || (x.dim() == 2 && x.size(1) == kAaePixels), "AAEEncoder: x ",
              shape_str(x.shape()), " must be [N, 1, 28, 28] or [N, 784]");
  return (*main)(image ? x.reshape({x.size(0), kAaePixels}) : x);
}

AAEDecoder::AAEDecoder(int64_t hidden_, int64_t latent_, Generator* gen)
    : Module("Decoder"), hidden(hidden_), latent(latent_) {
  NABLA_CHECK(hidden >= 1 && latent >= 1, "AAEDecoder: hidden ", hidden, " and latent ", latent,
              " must be >= 1");
  main = register_module("main", mlp(latent, hidden, kAaePixels, gen));
}

Tensor AAEDecoder::logits(const Tensor& z) {
  NABLA_CHECK(z.dim() == 2 && z.size(1) == latent, "AAEDecoder: z ", shape_str(z.shape()),
              " must be [N, ", latent, "]");
  return (*main)(z);
}

Tensor AAEDecoder::forward(const Tensor& z) {
  return sigmoid(logits(z)).reshape({z.size(0), 1, 28, 28});
}

AAEDiscriminator::AAEDiscriminator(int64_t in_features_, int64_t hidden_, Generator* gen)
    : Module("Discriminator"), in_features(in_features_), hidden(hidden_) {
  NABLA_CHECK(in_features >= 1 && hidden >= 1, "AAEDiscriminator: in_features ", in_features,
              " and hidden ", hidden, " must be >= 1");
  main = register_module("main", mlp(in_features, hidden, 1, gen));
}

Tensor AAEDiscriminator::forward(const Tensor& z) {
  NABLA_CHECK(z.dim() == 2 && z.size(1) == in_features, "AAEDiscriminator: z ",
              shape_str(z.shape()), " must be [N, ", in_features, "]");
  return (*main)(z);
}

}  // namespace nabla::nets
