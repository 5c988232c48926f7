// The adversarial autoencoder of Makhzani et al. 2015 ("Adversarial Autoencoders", section 2 and
// appendix A): an MLP autoencoder on 28x28 images whose codes are matched to a prior by a GAN in
// the latent space.
//
//   Encoder        x [N, 1, 28, 28] or [N, 784] -> z [N, d]
//     main.0 Linear(784, h)  main.1 ReLU  main.2 Linear(h, h)  main.3 ReLU  main.4 Linear(h, d)
//   Decoder        z [N, d] -> logits [N, 784]; forward gives sigmoid(logits) as [N, 1, 28, 28]
//     main.0 Linear(d, h)    main.1 ReLU  main.2 Linear(h, h)  main.3 ReLU  main.4 Linear(h, 784)
//   Discriminator  z [N, d + K] -> logit [N, 1] (K = 10 in the supervised variant: the one-hot
//                  label appended to the code, 0 otherwise)
//     main.0 Linear(d + K, h) main.1 ReLU main.2 Linear(h, h) main.3 ReLU main.4 Linear(h, 1)
//
// The paper's MNIST networks are 784-1000-1000-d with ReLU (h = 1000, d = 2 for its figures);
// the reconstruction is a Bernoulli likelihood here, so the decoder's last layer gives logits
// and the loss applies the sigmoid (binary_cross_entropy_with_logits); the discriminator's
// logit goes to the losses of engine/gan/losses.h in the same way. Layers start with PyTorch's
// default initialization (nn/layers.h). Parameter names are nn.Sequential's ("main.2.weight"),
// so torch modules built the same way (scripts/torch_aae.py) load the checkpoints strictly.
#pragma once

#include <cstdint>
#include <memory>

#include <nabla/nn/layers.h>

namespace nabla::nets {

constexpr int64_t kAaePixels = 784;

class AAEEncoder : public nn::Module {
 public:
  // requires: hidden, latent >= 1.
  AAEEncoder(int64_t hidden, int64_t latent, Generator* gen = nullptr);
  // requires: x [N, 1, 28, 28] or [N, 784]. ensures: z [N, latent].
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<nn::Sequential> main;
  int64_t hidden, latent;
};

class AAEDecoder : public nn::Module {
 public:
  // requires: hidden, latent >= 1.
  AAEDecoder(int64_t hidden, int64_t latent, Generator* gen = nullptr);
  // requires: z [N, latent]. ensures: logits [N, 784].
  Tensor logits(const Tensor& z);
  // requires: z [N, latent]. ensures: images sigmoid(logits) [N, 1, 28, 28] in (0, 1).
  Tensor forward(const Tensor& z) override;
  std::shared_ptr<nn::Sequential> main;
  int64_t hidden, latent;
};

class AAEDiscriminator : public nn::Module {
 public:
  // requires: in_features, hidden >= 1 (in_features = latent + K).
  AAEDiscriminator(int64_t in_features, int64_t hidden, Generator* gen = nullptr);
  // requires: z [N, in_features]. ensures: logits [N, 1].
  Tensor forward(const Tensor& z) override;
  std::shared_ptr<nn::Sequential> main;
  int64_t in_features, hidden;
};

}  // namespace nabla::nets
