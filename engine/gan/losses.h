// Discriminator losses of a GAN, as functions of the discriminator's logits C(x) on a batch of
// real samples xr and a batch of generated samples xf = G(z). Each returns the loss that the
// discriminator step minimises and the loss that the generator step minimises. sigma is the
// logistic sigmoid, BCE(c, t) = mean_n -[t log sigma(c_n) + (1 - t) log(1 - sigma(c_n))] (with
// logits, numerically stable), and m(.) is the mean over the batch.
//
//   minimax        Goodfellow et al. 2014, "Generative adversarial nets", eq. 1: D maximises
//                  E log D(xr) + E log(1 - D(xf)) with D = sigma(C), G minimises E log(1 - D(xf)):
//                    L_D = BCE(C(xr), 1) + BCE(C(xf), 0)
//                    L_G = -BCE(C(xf), 0) = m(log(1 - sigma(C(xf))))
//                  (the zero-sum game J(G) = -J(D); the real term does not depend on G)
//   nonsaturating  the same paper, section 3: G maximises log D(xf) instead
//                    L_D = BCE(C(xr), 1) + BCE(C(xf), 0),  L_G = BCE(C(xf), 1)
//                  (pytorch/examples' DCGAN: errD = errD_real + errD_fake, errG = BCE(D(G(z)), 1))
//   lsgan          Mao et al. 2017, "Least squares generative adversarial networks", eq. 2 with
//                  a = 0, b = c = 1; C is used as the output, no sigmoid:
//                    L_D = 1/2 m((C(xr) - 1)^2) + 1/2 m(C(xf)^2),  L_G = 1/2 m((C(xf) - 1)^2)
//   rsgan          Jolicoeur-Martineau 2018, "The relativistic discriminator: a key element
//                  missing from standard GAN", eq. 12 and the official code
//                  (github.com/AlexiaJM/RelativisticGAN, GAN_losses_iter.py):
//                    L_D = BCE(C(xr) - C(xf), 1),  L_G = BCE(C(xf) - C(xr), 1)   (pairwise, n by n)
//   rasgan         the relativistic average standard GAN, eq. 16 and the official code:
//                    L_D = 1/2 [BCE(C(xr) - m(C(xf)), 1) + BCE(C(xf) - m(C(xr)), 0)]
//                    L_G = 1/2 [BCE(C(xr) - m(C(xf)), 0) + BCE(C(xf) - m(C(xr)), 1)]
//   ralsgan        the relativistic average LSGAN, eq. 17 and the official code:
//                    L_D = 1/2 [m((C(xr) - m(C(xf)) - 1)^2) + m((C(xf) - m(C(xr)) + 1)^2)]
//                    L_G = 1/2 [m((C(xr) - m(C(xf)) + 1)^2) + m((C(xf) - m(C(xr)) - 1)^2)]
//                  The second terms use C(xf) - m(C(xr)), the corrected form of the official
//                  repository's README (its first version had m(C(xr)) - ... there). PyTorch-GAN's
//                  relativistic_gan.py overwrites its relativistic G loss with the standard one
//                  and is not a reference for these formulas.
//   turing         Tom and Sheet, "Turing test adversarial networks" (ISBI 2019): D sees a pair
//                  of samples stacked along channels, (xr, xf) or (xf, xr) with the order drawn
//                  per sample (o_n = 1: the real one is first), and answers "is the first one
//                  real?". A two-alternative forced choice, relativistic by construction:
//                    L_D = BCE(C(pair), o),  L_G = BCE(C(pair), 1 - o)
//                  For conditional models the condition travels with the pair (stack it too).
//
// Logits may have any shape (DCGAN's D gives [N, 1, 1, 1]); real and fake must have the same
// shape, since rsgan pairs them sample by sample. In the D step the fake logits come from
// G(z).detach(); in the G step both come through a frozen D (nn::FreezeGuard).
#pragma once

#include <string>
#include <vector>

#include <nabla/random.h>
#include <nabla/tensor.h>

namespace nabla::gan {

enum class Loss { Minimax, NonSaturating, LSGAN, RSGAN, RaSGAN, RaLSGAN, Turing };

// "minimax", "nonsaturating", "lsgan", "rsgan", "rasgan", "ralsgan", "turing".
const char* loss_name(Loss l);
std::vector<std::string> loss_names();
// requires: a name of loss_names() (else nabla::Error listing them).
Loss loss_from_name(const std::string& name);

struct Losses {
  Tensor d;  // 0-dim: what the discriminator step minimises
  Tensor g;  // 0-dim: what the generator step minimises
};

// requires: l is not Turing (use turing_losses); real_logits and fake_logits float, same shape,
//   same dtype and device, at least one element (else nabla::Error naming both shapes).
// ensures: the formulas above; differentiable in both inputs.
Losses gan_losses(Loss l, const Tensor& real_logits, const Tensor& fake_logits);

// requires: n >= 1. ensures: float32 [n] of 0 and 1 (1: the real sample goes first), each 1 with
//   probability 1/2, drawn from gen.
Tensor turing_order(int64_t n, Generator& gen);

// requires: real and fake [N, C, ...] of the same shape, dtype and device; order [N] of 0/1.
// ensures: [N, 2C, ...]: sample n is concat(real_n, fake_n) along dim 1 where order_n = 1, else
//   concat(fake_n, real_n); differentiable in real and fake (the generator's gradient flows).
Tensor turing_pair(const Tensor& real, const Tensor& fake, const Tensor& order);

// requires: logits with N elements (any shape, e.g. [N, 1, 1, 1]) and order [N] of 0/1.
// ensures: {BCE(logits, order), BCE(logits, 1 - order)}.
Losses turing_losses(const Tensor& logits, const Tensor& order);

}  // namespace nabla::gan
