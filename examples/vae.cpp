// nabla vae train: the variational autoencoder (Kingma and Welling 2014) on Fashion-MNIST. The
// recipe is nets/vae_train.h; this file maps the flags onto it and prints the result.
#include <cstdio>

#include <nets/vae_train.h>

#include "common.h"

namespace nabla::cli {

namespace {

struct VaeTrainFlags {
  Common c;
  nets::VaeTraining t;
};

void print_train(const nlohmann::json& s) {
  std::printf("vae, latent %lld, hidden %lld, %s reconstruction: %lld epochs on %lld images\n",
              (long long)s["latent"].get<int64_t>(), (long long)s["hidden"].get<int64_t>(),
              s["recon_kind"].get<std::string>().c_str(), (long long)s["epochs"].get<int64_t>(),
              (long long)s["n_train"].get<int64_t>());
  std::printf("last epoch: -ELBO %.4f = recon %.4f + KL %.4f per image\n", s["loss"].get<double>(),
              s["recon"].get<double>(), s["kl"].get<double>());
  std::printf("test: -ELBO %.4f = recon %.4f + KL %.4f per image (%lld test images)\n",
              s["test_loss"].get<double>(), s["test_recon"].get<double>(),
              s["test_kl"].get<double>(), (long long)s["n_test"].get<int64_t>());
  std::printf("trained in %.1f s (%.0f img/s on %s)\n", s["train_seconds"].get<double>(),
              s["images_per_second"].get<double>(), s["device"].get<std::string>().c_str());
  std::printf("wrote %s, %s, %s", s["vae"].get<std::string>().c_str(),
              s["reconstructions"].get<std::string>().c_str(),
              s["samples"].get<std::string>().c_str());
  for (const char* k : {"arithmetic", "interpolation"})
    if (!s[k].get<std::string>().empty()) std::printf(", %s", s[k].get<std::string>().c_str());
  if (s.contains("latent_png"))
    std::printf(", %s, %s", s["latent_png"].get<std::string>().c_str(),
                s["manifold"].get<std::string>().c_str());
  std::printf(", %s\n", s["curves"].get<std::string>().c_str());
}

}  // namespace

void register_vae(CLI::App& app) {
  CLI::App* vae_cmd = app.add_subcommand(
      "vae", "The variational autoencoder (Kingma and Welling 2014) on Fashion-MNIST.");
  vae_cmd->require_subcommand(1);

  auto f = std::make_shared<VaeTrainFlags>();
  f->c.epochs = f->t.epochs;
  f->c.batch = f->t.batch;
  f->c.lr = f->t.lr;
  f->c.test_limit = f->t.test_limit;
  f->c.out = f->t.out;
  CLI::App* train = vae_cmd->add_subcommand(
      "train",
      "Train pytorch/examples' VAE (fc1 784-h, fc21 and fc22 h-d for mu and log sigma^2, fc3\n"
      "d-h, fc4 h-784; h = 400, d = 20 by default) by the reparameterisation trick on the\n"
      "negative ELBO: the reconstruction term (Bernoulli BCE, or a unit-variance Gaussian)\n"
      "plus the analytic KL(q(z|x) || N(0, I)), summed per image. Adam. Writes\n"
      "DIR/vae.safetensors (the reference's keys), DIR/metrics.csv, DIR/curves.png (-ELBO,\n"
      "reconstruction and KL), DIR/reconstructions.png, DIR/samples.png (z ~ N(0, I)),\n"
      "DIR/arithmetic.png (test T-shirts, decoded, and decoded after adding mean mu(Pullover) -\n"
      "mean mu(T-shirt)), DIR/interpolation.png (between pairs of test means) and, with\n"
      "--latent 2, DIR/latent.png (test means by class) and DIR/manifold.png (decoded grid);\n"
      "--resume DIR continues the run.");
  add_common_flags(train, f->c, kTrainingFlags,
                   {{"--lr", "Adam learning rate (default 1e-3)"},
                    {"--test-limit", "test images for the test ELBO and the figures (0: all)"}});
  nets::VaeTraining& t = f->t;
  train->add_option("--latent", t.latent, "latent dimension d")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  train->add_option("--hidden", t.hidden, "hidden width h")
      ->capture_default_str()
      ->check(CLI::Range(1, 8192));
  train->add_option("--recon", t.recon, "reconstruction term: bce (Bernoulli) or gaussian")
      ->capture_default_str()
      ->check(CLI::IsMember({"bce", "gaussian"}));
  train->callback([f, train] {
    const Common& c = f->c;
    nets::VaeTraining t = f->t;
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
    t = resume_options(*train, c, t).get<nets::VaeTraining>();
    Common run = c;
    run.threads = t.threads;
    apply_threads(run);
    const nlohmann::json s =
        nets::train_vae(t, resolve_device(t.device), !c.resume.empty(), c.show_progress());
    print_report(c, s, print_train);
  });
}

}  // namespace nabla::cli
