// Training, translating with and evaluating CycleGAN (Zhu et al. 2017, "Unpaired image-to-image
// translation using cycle-consistent adversarial networks") and pix2pix (Isola et al. 2017,
// "Image-to-image translation with conditional adversarial networks"), with the reference
// implementation's networks (nets/image2image.h), options and defaults (junyanz/
// pytorch-CycleGAN-and-pix2pix): the recipes behind `nabla cyclegan` and `nabla pix2pix`.
//
// Below, G maps A to B and F maps B to A; D_B judges B images and D_A judges A images. In the
// code, which keeps the reference's names, G is G_A, F is G_B, D_B is D_A and D_A is D_B (the
// reference's netD_A judges B). docs/image2image.md states it in seed 004's notation.
//   CycleGAN, one iteration on real a, b:
//     fake_B = G(a), rec_A = F(fake_B), fake_A = F(b), rec_B = G(fake_A)
//     G step, both D frozen (nn::FreezeGuard: no D weight-gradient kernel runs):
//       L_G = V_B + V_A + lambda_A |rec_A - a|_1 + lambda_B |rec_B - b|_1
//             + lambda_idt (lambda_B |G(b) - b|_1 + lambda_A |F(a) - a|_1)
//       with V_B = g(D_B(fake_B)), V_A = g(D_A(fake_A)) the generator's adversarial terms of the
//       chosen loss (lsgan: m((D(x) - 1)^2)), |.|_1 the mean absolute difference; one Adam step
//       on the parameters of G and F together
//     D step on images from the pools (50 each: half the time an older fake):
//       L_D = 1/2 [d(D_B(b), D_B(pool_B(fake_B))) + d(D_A(a), D_A(pool_A(fake_A)))]
//       with d the discriminator's loss (lsgan: (D(real) - 1)^2 + D(fake)^2, halved as the
//       reference halves it); one Adam step on both D together
//   pix2pix, one iteration on a pair (a, b):
//     fake_B = G(a)
//     D step: 1/2 d(D(cat(a, b)), D(cat(a, fake_B.detach())))       (D first, no pool)
//     G step, D frozen: g(D(cat(a, fake_B))) + lambda_L1 |fake_B - b|_1
//   Losses (--loss): lsgan (CycleGAN's default), vanilla = nonsaturating (pix2pix's default: BCE
//   with logits), and every other loss of engine/gan/losses.h. The scale follows the reference:
//   the D step minimises half the sum of its real and fake terms (engine/gan's lsgan L_D already
//   carries the 1/2; minimax and nonsaturating get 1/2 L_D); the G step's term for lsgan is
//   2 L_G = m((D(fake) - 1)^2), the reference's MSE. The relativistic losses compare with
//   D(real) through the frozen D; turing gives each D the two images stacked along channels
//   (pix2pix: the condition a, then the pair).
//   Learning rate: lr for n_epochs, then linear decay over n_epochs_decay (the reference's
//   'linear' policy: in epoch n_epochs + k the rate is lr (1 - k / (n_epochs_decay + 1))).
//   Adam betas (beta1, 0.999). Initialization N(0, 0.02).
//
// Data: a built-in task (data/translation.h) or a folder in the reference's layout (--dataroot),
// with the reference's preprocessing: --load_size (resize), --crop_size (random crop), random
// left-right flip unless --no_flip; --serial_batches takes A and B in order (otherwise A is
// shuffled per epoch and B drawn at random, as the unaligned dataset does; an epoch has
// max(|A|, |B|) iterations). --direction BtoA swaps the domains.
//
// Writes into `out`: the networks (cyclegan: G_A, G_B, D_A, D_B; pix2pix: G, D) as
// <name>.safetensors with the reference's keys (a torch module with the same arguments loads
// them strictly), metrics.csv, curves.png (the loss terms), samples/epoch_<e>.png (cyclegan:
// rows A, G(A), F(G(A)) and B, F(B), G(F(B)) on fixed test images; pix2pix: A, G(A), B),
// summary.json and the run state that --resume continues from (the pools too).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <nabla/device.h>
#include <nabla/gan/losses.h>
#include <nabla/gan/pool.h>
#include <nabla/optim/optimizer.h>
#include <nets/image2image.h>

namespace nabla::nets {

struct Image2ImageTraining {
  std::string model = "cyclegan";        // cyclegan or pix2pix
  std::string task;                      // built-in task; empty: --dataroot, or the model's default
  std::string dataroot;                  // a folder in the reference's layout
  std::string direction = "AtoB";        // or BtoA
  int64_t input_nc = 0, output_nc = 0;   // 0: the data's channels
  int64_t load_size = 0, crop_size = 0;  // 0: the data's image size
  bool no_flip = false, serial_batches = false;
  std::string netG;  // resnet_<n>blocks or unet_<size>; empty: resnet_6blocks / unet_<crop>
  std::string norm;  // instance or batch; empty: instance (cyclegan), batch (pix2pix)
  std::string dropout = "auto";  // auto (cyclegan off, pix2pix on), on, off
  int64_t ngf = 32, ndf = 32, n_layers_D = 3;
  std::string loss;  // empty: lsgan (cyclegan), nonsaturating (pix2pix)
  double lambda_A = 10, lambda_B = 10, lambda_identity = 0.5, lambda_L1 = 100;
  int64_t pool_size = 50;
  int64_t n_epochs = 2, n_epochs_decay = 2, batch = 1;
  double lr = 2e-4, beta1 = 0.5;
  uint64_t seed = 0;
  std::string data;  // Fashion-MNIST folder; empty: the installed one
  // Images per domain; 0: the task's CPU-sized default (CycleGAN's Fashion-MNIST tasks 500,
  // pix2pix's 1000 pairs, he2ihc 200 tiles), or all of a --dataroot.
  int64_t train_limit = 0;
  std::string out;
  int64_t checkpoint_every = 0;
  std::string device = "auto";
  int threads = 0;
};

void to_json(nlohmann::json& j, const Image2ImageTraining& c);
void from_json(const nlohmann::json& j, Image2ImageTraining& c);

// The options with every default filled in from the model, the task and the data: task (the
// model's built-in one unless dataroot), netG, norm, dropout, loss, train_limit.
// requires: model cyclegan or pix2pix (nabla::Error otherwise).
Image2ImageTraining resolve_defaults(Image2ImageTraining c);

// The reference's define_G by name: resnet_<n>blocks (ResnetGenerator with n blocks) or
// unet_<size> (UnetGenerator with num_downs log2(size)).
std::shared_ptr<nn::Module> define_G(int64_t input_nc, int64_t output_nc, int64_t ngf,
                                     const std::string& netG, Norm norm, bool use_dropout,
                                     Generator* gen = nullptr);

// The generator loss term and the halved discriminator loss, scaled as described above.
// real and fake: logits of the same shape (for turing: logits of pairs and order, see below).
struct AdversarialTerms {
  Tensor d, g;
};
AdversarialTerms adversarial_terms(gan::Loss loss, const Tensor& real_logits,
                                   const Tensor& fake_logits);

// One CycleGAN: the two generators, the two discriminators, the pools and the two optimizers.
class CycleGANModel {
 public:
  // requires: c resolved (resolve_defaults) with input_nc and output_nc set.
  CycleGANModel(const Image2ImageTraining& c, Device dev, Generator* init);
  struct Outputs {
    Tensor fake_B, rec_A, fake_A, rec_B;
  };
  // fake_B = G_A(a), rec_A = G_B(fake_B), fake_A = G_B(b), rec_B = G_A(fake_A).
  Outputs forward(const Tensor& real_A, const Tensor& real_B);
  // The G step: zero grads, L_G backward with D_A and D_B frozen, optimizer step. Returns the
  // terms (g_A, g_B, cycle_A, cycle_B, idt_A, idt_B).
  std::vector<std::pair<std::string, double>> step_G(const Tensor& real_A, const Tensor& real_B,
                                                     const Outputs& o, bool update = true);
  // The D step through the pools: returns d_A, d_B.
  std::vector<std::pair<std::string, double>> step_D(const Tensor& real_A, const Tensor& real_B,
                                                     const Outputs& o, bool update = true);

  Image2ImageTraining c;
  gan::Loss loss;
  std::shared_ptr<nn::Module> G_A, G_B;
  std::shared_ptr<NLayerDiscriminator> D_A, D_B;
  gan::ImagePool pool_A, pool_B;  // of fake_A and fake_B
  std::unique_ptr<optim::Optimizer> opt_G, opt_D;
  Generator order_gen;  // turing: the pair orders

 private:
  Tensor d_logits(NLayerDiscriminator& D, const Tensor& real, const Tensor& fake,
                  const Tensor& order);
};

class Pix2PixModel {
 public:
  Pix2PixModel(const Image2ImageTraining& c, Device dev, Generator* init);
  // One iteration: D step, then G step (D frozen). Returns d, g_gan, g_l1.
  std::vector<std::pair<std::string, double>> step(const Tensor& real_A, const Tensor& real_B);
  Image2ImageTraining c;
  gan::Loss loss;
  std::shared_ptr<nn::Module> G;
  std::shared_ptr<NLayerDiscriminator> D;
  std::unique_ptr<optim::Optimizer> opt_G, opt_D;
  Generator order_gen;
};

// requires: valid options; resume: c.out holds a checkpoint of a run with these options.
// ensures: the files above; returns the summary (per-epoch records, the last losses, timings,
//   paths, the data and the resolved options).
nlohmann::json train_image2image(const Image2ImageTraining& c, Device dev, bool resume, bool show);

struct Image2ImageTranslation {
  std::string checkpoint;    // a generator (ours or the reference's state dict)
  std::string input;         // a folder of PNGs, or
  std::string task;          // a built-in task's test split
  std::string domain = "A";  // the task's side to translate (A, or B with G_B)
  std::string padding_type = "reflect";
  int64_t limit = 0;  // images (0: all; a task's test split: its default)
  std::string out;
  std::string save_npy;     // non-empty: inputs.npy and outputs.npy there
  std::string data;         // Fashion-MNIST folder
  bool train_mode = false;  // run the generator in training mode (the reference without --eval)
};

// ensures: out/<name>.png per translated image (name: the input file's, or <task>_<i>.png),
//   out/panel.png (up to 8 inputs over their outputs, enlarged to about 96 px per image), with
//   save_npy inputs.npy and outputs.npy float32 [N, C, H, W] in [-1, 1]; returns a summary (n, the
//   generator and its arguments, the output's mean and range, paths).
nlohmann::json translate_images(const Image2ImageTranslation& t, Device dev);

struct Image2ImageEvaluation {
  std::string checkpoint;  // the A -> B generator
  std::string task;        // a built-in task, or
  std::string dataroot;    // a folder: paired when aligned
  bool aligned = false;
  std::string direction = "AtoB";
  std::string classifier;  // FashionCNN checkpoint (sneaker2boot: FD and the target fraction)
  int64_t limit = 0;       // test images (0: all, he2ihc: 200)
  std::string data;
  std::string padding_type = "reflect";
};

// ensures: on the test split, with the generator in eval mode:
//   paired data and he2ihc (its hidden pairs): "l1", "psnr", "ssim" of G(A) against B (means over
//   images, data range 2), and the same for the identity baseline (A itself) when A and B have
//   the same channels;
//   sneaker2boot with a classifier: "fd" of FashionCNN fc1 features between G(A) and the test B
//   images, "fd_identity" (A against B), "target_fraction" (G(A) classified as ankle boot) and
//   "target_fraction_identity".
nlohmann::json evaluate_image2image(const Image2ImageEvaluation& e, Device dev);

}  // namespace nabla::nets
