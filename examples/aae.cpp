// nabla aae train: the adversarial autoencoder (Makhzani et al. 2015) on Fashion-MNIST with a
// Gaussian, ten-Gaussian mixture or swiss-roll prior. The recipe is nets/aae_train.h; this file
// maps the flags onto it and prints the result.
#include <cstdio>

#include <nabla/gan/latent.h>
#include <nabla/gan/losses.h>
#include <nets/aae_train.h>

#include "common.h"

namespace nabla::cli {

namespace {

struct AaeTrainFlags {
  Common c;
  nets::AaeTraining t;
};

std::vector<std::string> latent_losses() {
  std::vector<std::string> v;
  for (const std::string& l : gan::loss_names())
    if (l != "turing") v.push_back(l);
  return v;
}

void print_train(const nlohmann::json& s) {
  std::printf("aae, prior %s%s, latent %lld, hidden %lld, %s loss: %lld epochs on %lld images\n",
              s["prior"].get<std::string>().c_str(),
              s["supervised"].get<bool>() ? " (supervised)" : "",
              (long long)s["latent"].get<int64_t>(), (long long)s["hidden"].get<int64_t>(),
              s["loss"].get<std::string>().c_str(), (long long)s["epochs"].get<int64_t>(),
              (long long)s["n_train"].get<int64_t>());
  std::printf("last epoch: recon %.4f, D loss %.4f, G loss %.4f, D(prior) %.4f, D(code) %.4f\n",
              s["recon"].get<double>(), s["d_loss"].get<double>(), s["g_loss"].get<double>(),
              s["d_prior"].get<double>(), s["d_code"].get<double>());
  std::printf("test recon %.4f (BCE per pixel, %lld test images)\n", s["test_recon"].get<double>(),
              (long long)s["n_test"].get<int64_t>());
  std::printf("trained in %.1f s (%.0f img/s on %s)\n", s["train_seconds"].get<double>(),
              s["images_per_second"].get<double>(), s["device"].get<std::string>().c_str());
  std::printf("wrote %s, %s, %s, %s", s["encoder"].get<std::string>().c_str(),
              s["decoder"].get<std::string>().c_str(),
              s["reconstructions"].get<std::string>().c_str(),
              s["samples"].get<std::string>().c_str());
  if (s.contains("latent_png"))
    std::printf(", %s, %s", s["latent_png"].get<std::string>().c_str(),
                s["manifold"].get<std::string>().c_str());
  std::printf(", %s\n", s["curves"].get<std::string>().c_str());
}

}  // namespace

void register_aae(CLI::App& app) {
  CLI::App* aae_cmd = app.add_subcommand(
      "aae",
      "The adversarial autoencoder (Makhzani et al. 2015): an MLP autoencoder whose codes a\n"
      "latent-space GAN matches to a chosen prior.");
  aae_cmd->require_subcommand(1);

  auto f = std::make_shared<AaeTrainFlags>();
  f->c.epochs = f->t.epochs;
  f->c.batch = f->t.batch;
  f->c.lr = f->t.lr;
  f->c.test_limit = f->t.test_limit;
  f->c.out = f->t.out;
  CLI::App* train = aae_cmd->add_subcommand(
      "train",
      "Train an AAE on Fashion-MNIST (784-h-h-d encoder and decoder, d-h-h-1 latent\n"
      "discriminator, h = 1000 as in the paper). Each batch runs the reconstruction phase (BCE,\n"
      "Adam on encoder and decoder), then the regularisation phase: D on prior samples against\n"
      "the codes, then the encoder against the frozen D (no D weight gradient is computed).\n"
      "--supervised gives D the one-hot label and draws the prior sample of label k from\n"
      "component k (mixture10) or segment k (swissroll). Writes DIR/encoder.safetensors,\n"
      "DIR/decoder.safetensors, DIR/discriminator.safetensors, DIR/metrics.csv, DIR/curves.png,\n"
      "DIR/reconstructions.png, DIR/samples.png (decoded prior samples) and, with --latent 2,\n"
      "DIR/latent.png (test codes by class over prior samples) and DIR/manifold.png (decoded\n"
      "regular grid); --resume DIR continues the run.");
  add_common_flags(
      train, f->c, kTrainingFlags,
      {{"--lr", "Adam learning rate of the reconstruction phase (default 1e-3)"},
       {"--test-limit", "test images encoded for the figures and the test loss (0: all)"}});
  nets::AaeTraining& t = f->t;
  train->add_option("--prior", t.prior, "gaussian (any --latent), mixture10 or swissroll (2-d)")
      ->capture_default_str()
      ->check(CLI::IsMember(gan::prior_names()));
  train->add_flag("--supervised", t.supervised,
                  "D sees the one-hot label; label k draws from part k of the prior");
  train->add_option("--latent", t.latent, "latent dimension d")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  train->add_option("--hidden", t.hidden, "width h of the hidden layers of all three networks")
      ->capture_default_str()
      ->check(CLI::Range(1, 8192));
  train->add_option("--loss", t.loss, "discriminator loss of engine/gan/losses.h (all but turing)")
      ->capture_default_str()
      ->check(CLI::IsMember(latent_losses()));
  train->add_option("--lr-reg", t.lr_reg, "Adam learning rate of the regularisation phase")
      ->capture_default_str()
      ->check(positive());
  train->add_option("--beta1", t.beta1, "Adam beta1 of the regularisation phase")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.999));
  train->callback([f, train] {
    const Common& c = f->c;
    nets::AaeTraining t = f->t;
    t.epochs = c.epochs;
    t.batch = c.batch;
    t.lr = c.lr;
    t.seed = c.seed;
    t.data = c.data;
    t.train_limit = c.train_limit;
    t.test_limit = c.test_limit;
    t.out = c.out;
    t.checkpoint_every = c.checkpoint_every;
    t.device = c.device;
    t.threads = c.threads;
    t = resume_options(*train, c, t).get<nets::AaeTraining>();
    Common run = c;
    run.threads = t.threads;
    apply_threads(run);
    const nlohmann::json s =
        nets::train_aae(t, resolve_device(t.device), !c.resume.empty(), c.show_progress());
    print_report(c, s, print_train);
  });
}

}  // namespace nabla::cli
