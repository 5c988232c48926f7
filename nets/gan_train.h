// Training DCGAN (or its conditional variant) on Fashion-MNIST padded to 32x32 with any of the
// discriminator losses of engine/gan/losses.h: the recipe behind `nabla gan train`, and the
// sampler behind `nabla gan sample`.
//
//   data    the training split, optionally only --classes; 28x28 pixels p in [0, 1] padded by 2
//           on every side and mapped to 2p - 1 in [-1, 1] (the padding is -1, the background)
//   per step, batch (x, y), z ~ N(0, 1) [B, nz, 1, 1] from the run's noise generator:
//     D step   xf = G(z); (L_D, -) = loss(C(x), C(xf.detach()))  (turing: C(pair(x, xf, o)) with
//              the order o drawn per sample); Adam step on D
//     G step   with D frozen (nn::FreezeGuard: no D weight gradient is computed):
//              (-, L_G) = loss(C(x), C(xf)) through the updated D; Adam step on G
//     cgan     G gets z concatenated with onehot(y), D gets onehot(y) as constant planes
//   metrics  d_loss, g_loss, d_x = mean sigmoid(C(x)) and d_g_z = mean sigmoid(C(G(z))) of the
//            D step (turing: the mean answer "first is real" on pairs whose first is real, and
//            on pairs whose first is fake)
//   per epoch  the generator in eval mode on 64 fixed latent codes (cgan: class k of the chosen
//            classes for code k mod K) -> out/samples/epoch_<e>.png, and the strip of epochs
//            out/samples/epochs.png; at the end a latent interpolation grid out/interpolation.png
//
// Writes into `out`: generator.safetensors and discriminator.safetensors (the reference's
// parameter names; the generator's metadata holds nz, ngf, nc, the classes and the loss, which is
// what `gan sample` rebuilds it from), metrics.csv, curves.png, summary.json, samples/ and the
// run state that --resume continues from.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <nabla/device.h>

namespace nabla::nets {

struct GanTraining {
  std::string model = "dcgan";         // dcgan or cgan
  std::string loss = "nonsaturating";  // gan::loss_names()
  int64_t nz = 100, ngf = 64, ndf = 64;
  int64_t epochs = 5, batch = 64;
  double lr = 2e-4, beta1 = 0.5, beta2 = 0.999;
  std::vector<int64_t> classes;  // empty: all ten
  uint64_t seed = 0;
  std::string data;  // MNIST-format folder; empty: Fashion-MNIST
  int64_t train_limit = 0;
  std::string out = "runs/gan";
  int64_t checkpoint_every = 0;
  std::string device = "auto";
  int threads = 0;
};

void to_json(nlohmann::json& j, const GanTraining& c);
void from_json(const nlohmann::json& j, GanTraining& c);

// requires: valid options (a nabla::Error names the first bad one); resume: `c.out` holds a
//   checkpoint of a run with these options.
// ensures: the files above; returns the summary (per-epoch records, last d_loss, g_loss, d_x,
//   d_g_z, timings, paths).
nlohmann::json train_gan(const GanTraining& c, Device dev, bool resume, bool show);

struct GanSampling {
  std::string checkpoint;  // a generator.safetensors
  int64_t n = 64;
  uint64_t seed = 0;
  int64_t klass = -1;  // cgan: the class of every sample; -1: class i mod K for sample i
  std::string out = "runs/gan_samples";
  std::string save_npy;  // non-empty: also z.npy and images.npy there
  int64_t nz = 0;        // 0: from the checkpoint's metadata (or its shapes)
};

// requires: the checkpoint holds a DCGAN generator (its errors name the file and the keys).
// ensures: out/samples.png (a grid of n, 8 per row; for a conditional generator without klass
//   one column per class) and, with save_npy, z.npy float32 [n, nz, 1, 1] and
//   images.npy float32 [n, nc, 32, 32] in [-1, 1] (the generator in eval mode); returns a summary
//   (n, nz, classes, the mean and std of the pixels, paths).
nlohmann::json sample_gan(const GanSampling& s, Device dev);

struct GanEvaluation {
  std::string checkpoint;  // a generator to sample from, or
  std::string images;      // samples made elsewhere: .npy float [n, 1, 32, 32] in [-1, 1]
  std::string classifier;  // a FashionCNN checkpoint of `classify train` (the feature network)
  std::string reference = "test";  // train, test (the first n images of that split) or B.npy
  std::vector<int64_t> classes;    // the reference's classes (empty: all)
  int64_t n = 2000;                // samples drawn from --checkpoint, and reference images
  uint64_t seed = 0;
  int64_t klass = -1;  // cgan: as GanSampling::klass
  std::string data;    // MNIST-format folder of the reference; empty: Fashion-MNIST
};

// Generated and real images go through the classifier the same way: 32x32 images in [-1, 1]
// are cropped to their central 28x28 and mapped to [0, 1] (the inverse of the training data's
// padding and scaling). The features are FashionCNN's fc1 activations after ReLU (128-d).
// requires: exactly one of checkpoint and images; a FashionCNN classifier.
// ensures: {"fd", "fd_floor" (FD between the first n train and n test images of the chosen
//   classes), "kid", "precision", "recall" (k = 3), "classes_covered" (classes predicted for at
//   least a tenth of a uniform share), "coverage_kl", "classifier_score", "histogram", "n",
//   "n_reference", "reference", "source"}; the metrics are those of engine/metrics/generative.h.
nlohmann::json evaluate_gan(const GanEvaluation& e, Device dev);

// The discriminators side by side: DCGAN trained with each loss over several seeds, each run
// evaluated with evaluate_gan against the first n test images.
struct GanStudy {
  std::vector<std::string> losses;  // empty: every loss of gan::loss_names()
  int64_t seeds = 3;                // seeds 0 .. seeds - 1
  GanTraining train;                // the size of every run (model, widths, epochs, data, ...)
  std::string classifier;           // FashionCNN checkpoint for evaluate_gan
  int64_t n = 1000;                 // samples and reference images per evaluation
  std::string out = "runs/gan_study";
};

// requires: a FashionCNN classifier; the options of GanTraining and GanEvaluation.
// ensures: one run folder per (loss, seed), out/<loss>_seed<k> (gan train's files, and
//   eval.json); out/study.json {"runs": [per run: loss, seed, the evaluation, epoch_seconds],
//   "table": [per loss: mean and sd (n - 1) over the seeds of fd, kid, precision, recall,
//   classes_covered, coverage_kl, classifier_score, epoch_seconds]} and out/study.md, the table
//   as Markdown. Returns study.json's object.
nlohmann::json gan_study(const GanStudy& s, Device dev, bool show);

}  // namespace nabla::nets
