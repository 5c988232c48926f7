// DCGAN (Radford et al. 2016) as pytorch/examples' dcgan/main.py builds it, with one up/down stage
// fewer for 32x32 images (Fashion-MNIST padded from 28 to 32, pixels in [-1, 1]), and the
// conditional GAN of Mirza and Osindero 2014 on top of it.
//
//   Generator:     z [N, nz_in, 1, 1]
//     main.0  ConvTranspose2d(nz_in, 4 ngf, 4, 1, 0)  main.1 BatchNorm2d  main.2 ReLU   [4 ngf, 4,
//     4] main.3  ConvTranspose2d(4 ngf, 2 ngf, 4, 2, 1)  main.4 BatchNorm2d  main.5 ReLU   [2 ngf,
//     8, 8] main.6  ConvTranspose2d(2 ngf, ngf, 4, 2, 1)    main.7 BatchNorm2d  main.8 ReLU   [ngf,
//     16, 16] main.9  ConvTranspose2d(ngf, nc, 4, 2, 1)       main.10 Tanh [nc, 32, 32]
//   Discriminator: x [N, in_channels, 32, 32]
//     main.0  Conv2d(in_channels, ndf, 4, 2, 1)       main.1 LeakyReLU(0.2)             [ndf, 16,
//     16] main.2  Conv2d(ndf, 2 ndf, 4, 2, 1)             main.3 BatchNorm2d  main.4 LReLU  [2 ndf,
//     8, 8] main.5  Conv2d(2 ndf, 4 ndf, 4, 2, 1)           main.6 BatchNorm2d  main.7 LReLU  [4
//     ndf, 4, 4] main.8  Conv2d(4 ndf, 1, 4, 1, 0)               the logit C(x) [1, 1, 1]
//   The reference ends D in a Sigmoid (main.9, no parameters); here the loss applies it
//   (engine/gan/losses.h), so the state dicts are the same.
//
// No convolution has a bias. Initialization is the reference's weights_init: convolution weights
// N(0, 0.02), batch-norm weights N(1, 0.02), batch-norm biases 0, drawn from `gen`. Parameter and
// buffer names are the reference's state_dict keys (main.0.weight, main.1.running_var, ...), so
// a torch module with the same nn.Sequential `main` loads our checkpoints with strict=True.
//
// Conditional GAN: the class label y is one-hot encoded (K classes) and concatenated to z for G
// (nz_in = nz + K) and given to D as K constant extra input channels (in_channels = nc + K). The
// Turing-test discriminator sees two images stacked along channels (in_channels = 2 nc, plus K
// for the conditional model: the pair carries its condition).
#pragma once

#include <cstdint>
#include <memory>

#include <nabla/nn/layers.h>

namespace nabla::nets {

class DCGANGenerator : public nn::Module {
 public:
  static constexpr int64_t kSize = 32;
  // requires: nz_in, ngf, nc >= 1.
  DCGANGenerator(int64_t nz_in, int64_t ngf, int64_t nc = 1, Generator* gen = nullptr);
  // requires: z [N, nz_in, 1, 1] or [N, nz_in]. ensures: [N, nc, 32, 32] in (-1, 1).
  Tensor forward(const Tensor& z) override;
  std::shared_ptr<nn::Sequential> main;
  int64_t nz_in, ngf, nc;
};

class DCGANDiscriminator : public nn::Module {
 public:
  // requires: in_channels, ndf >= 1.
  DCGANDiscriminator(int64_t in_channels, int64_t ndf, Generator* gen = nullptr);
  // requires: x [N, in_channels, 32, 32]. ensures: logits [N, 1, 1, 1].
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<nn::Sequential> main;
  int64_t in_channels, ndf;
};

// Re-initializes every Conv2d, ConvTranspose2d and BatchNorm2d below m as the reference's
// weights_init does (see above).
void dcgan_init(nn::Module& m, Generator* gen = nullptr);

// requires: labels int64 [N] in [0, k); k >= 1.
// ensures: float32 [N, k] one-hot rows on dev (else nabla::Error naming the label and k).
Tensor one_hot(const Tensor& labels, int64_t k, Device dev = Device::cpu());
// requires: z [N, nz, 1, 1], onehot [N, K] of z's dtype and device. ensures: [N, nz + K, 1, 1].
Tensor condition_latent(const Tensor& z, const Tensor& onehot);
// requires: x [N, C, H, W], onehot [N, K] of x's dtype and device.
// ensures: [N, C + K, H, W], channel C + k constant onehot[n, k].
Tensor condition_image(const Tensor& x, const Tensor& onehot);

}  // namespace nabla::nets
