// The adversarial autoencoder's training recipe (see aae_train.h).
#include <nets/aae_train.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <nabla/autograd.h>
#include <nabla/data/loader.h>
#include <nabla/error.h>
#include <nabla/gan/latent.h>
#include <nabla/gan/losses.h>
#include <nabla/io/image.h>
#include <nabla/ops.h>
#include <nabla/optim/factory.h>
#include <nabla/train/trainer.h>
#include <nets/aae.h>
#include <nets/autoencoder.h>
#include <nets/dcgan.h>

namespace nabla::nets {

using nlohmann::json;
namespace fs = std::filesystem;

void to_json(json& j, const AaeTraining& c) {
  j = {{"prior", c.prior},
       {"supervised", c.supervised},
       {"loss", c.loss},
       {"latent", c.latent},
       {"hidden", c.hidden},
       {"epochs", c.epochs},
       {"batch", c.batch},
       {"lr", c.lr},
       {"lr_reg", c.lr_reg},
       {"beta1", c.beta1},
       {"seed", c.seed},
       {"data", c.data},
       {"train_limit", c.train_limit},
       {"test_limit", c.test_limit},
       {"out", c.out},
       {"checkpoint_every", c.checkpoint_every},
       {"device", c.device},
       {"threads", c.threads}};
}

void from_json(const json& j, AaeTraining& c) {
  auto get = [&](const char* key, auto& field) {
    train::read_option(j, "aae options", key, field);
  };
  get("prior", c.prior);
  get("supervised", c.supervised);
  get("loss", c.loss);
  get("latent", c.latent);
  get("hidden", c.hidden);
  get("epochs", c.epochs);
  get("batch", c.batch);
  get("lr", c.lr);
  get("lr_reg", c.lr_reg);
  get("beta1", c.beta1);
  get("seed", c.seed);
  get("data", c.data);
  get("train_limit", c.train_limit);
  get("test_limit", c.test_limit);
  get("out", c.out);
  get("checkpoint_every", c.checkpoint_every);
  get("device", c.device);
  get("threads", c.threads);
}

namespace {

constexpr int64_t kClasses = gan::kPriorClasses, kChunk = 1000, kGrid = 20;

}  // namespace

json train_aae(const AaeTraining& c, Device dev, bool resume, bool show) {
  const gan::Prior prior = gan::prior_from_name(c.prior);
  const gan::Loss loss = gan::loss_from_name(c.loss);
  NABLA_CHECK(loss != gan::Loss::Turing,
              "aae train: --loss turing compares pairs of images; "
              "the latent discriminator takes one code at a time");
  NABLA_CHECK(c.epochs >= 1 && c.batch >= 1, "aae train: --epochs ", c.epochs, " and --batch ",
              c.batch, " must be >= 1");
  NABLA_CHECK(c.latent >= 1 && c.hidden >= 1, "aae train: --latent ", c.latent, " and --hidden ",
              c.hidden, " must be >= 1");
  NABLA_CHECK(prior == gan::Prior::Gaussian || c.latent == 2, "aae train: --prior ", c.prior,
              " is a 2-d distribution; --latent is ", c.latent);
  NABLA_CHECK(!c.supervised || prior != gan::Prior::Gaussian,
              "aae train: --supervised needs a prior with ten parts for the ten labels "
              "(mixture10 or swissroll), not ",
              c.prior);
  NABLA_CHECK(c.lr > 0 && c.lr_reg > 0, "aae train: --lr ", c.lr, " and --lr-reg ", c.lr_reg,
              " must be > 0");
  const bool relativistic =
      loss == gan::Loss::RSGAN || loss == gan::Loss::RaSGAN || loss == gan::Loss::RaLSGAN;
  const int64_t K = c.supervised ? kClasses : 0;

  data::Dataset train = autoencoder_data("aae train", c.data, data::Split::Train, c.train_limit);
  NABLA_CHECK(train.size() >= c.batch, "aae train: ", train.size(),
              " training images are fewer than one batch of ", c.batch);
  const data::Dataset test = autoencoder_data("aae train", c.data, data::Split::Test, c.test_limit);
  if (show)
    std::fprintf(stderr, "data: %lld training and %lld test images %s; prior %s%s; device %s\n",
                 (long long)train.size(), (long long)test.size(),
                 shape_str(train.images.shape()).c_str(), c.prior.c_str(),
                 c.supervised ? " (supervised)" : "", dev.str().c_str());

  Generator init(c.seed);
  AAEEncoder E(c.hidden, c.latent, &init);
  AAEDecoder Dec(c.hidden, c.latent, &init);
  AAEDiscriminator D(c.latent + K, c.hidden, &init);
  E.to(dev);
  Dec.to(dev);
  D.to(dev);
  // The prior's draws come from this generator, which the checkpoint saves.
  Generator noise(c.seed * 2 + 1);
  data::DataLoader loader(train, c.batch, /*shuffle=*/true, c.seed, /*drop_last=*/true);
  loader.set_pin_memory(dev.is_cuda());
  std::vector<Tensor> ae_params = E.parameters();
  for (const Tensor& p : Dec.parameters()) ae_params.push_back(p);
  auto opt_ae = optim::make_optimizer("adam", ae_params, {.lr = c.lr});
  const optim::OptimizerOptions reg{.lr = c.lr_reg, .beta1 = c.beta1};
  auto opt_d = optim::make_optimizer("adam", D.parameters(), reg);
  auto opt_e = optim::make_optimizer("adam", E.parameters(), reg);

  train::Trainer trainer({.name = "aae train",
                          .out = c.out,
                          .epochs = c.epochs,
                          .steps_per_epoch = loader.num_batches(),
                          .checkpoint_every = c.checkpoint_every,
                          .resume = resume,
                          .show = show},
                         {"epoch", "recon", "d_loss", "g_loss", "d_prior", "d_code",
                          "epoch_seconds", "train_images_per_s"},
                         {{"reconstruction",
                           "epoch",
                           "BCE per pixel",
                           {{"recon:running", "train (running)", io::Rgb{150, 180, 230}},
                            {"recon", "train", io::Rgb{30, 90, 200}}}},
                          {"latent GAN",
                           "epoch",
                           std::string("loss (") + gan::loss_name(loss) + ")",
                           {{"d_loss:running", "D (running)", io::Rgb{150, 180, 230}},
                            {"g_loss:running", "E as G (running)", io::Rgb{240, 170, 120}},
                            {"d_loss", "D", io::Rgb{30, 90, 200}},
                            {"g_loss", "E as G", io::Rgb{220, 90, 30}}}},
                          {"discriminator outputs",
                           "epoch",
                           "mean sigmoid(D)",
                           {{"d_prior", "D(z ~ prior)", io::Rgb{30, 90, 200}},
                            {"d_code", "D(E(x))", io::Rgb{220, 90, 30}}}}});
  trainer.add_module("encoder", E);
  trainer.add_module("decoder", Dec);
  trainer.add_module("discriminator", D);
  trainer.add_optimizer("optimizer_ae", *opt_ae);
  trainer.add_optimizer("optimizer_d", *opt_d);
  trainer.add_optimizer("optimizer_e", *opt_e);
  trainer.add_generator("noise", noise);
  trainer.set_options(c);
  trainer.set_metadata([&]() -> std::map<std::string, std::map<std::string, std::string>> {
    std::map<std::string, std::string> m = {{"prior", c.prior},
                                            {"supervised", c.supervised ? "1" : "0"},
                                            {"latent", std::to_string(c.latent)},
                                            {"hidden", std::to_string(c.hidden)},
                                            {"loss", c.loss},
                                            {"seed", std::to_string(c.seed)}};
    auto with = [&](const char* model) {
      auto r = m;
      r["model"] = model;
      return r;
    };
    return {{"encoder", with("AAEEncoder")},
            {"decoder", with("AAEDecoder")},
            {"discriminator", with("AAEDiscriminator")}};
  });

  // D's input: the code, with the one-hot label appended in the supervised variant.
  auto d_input = [&](const Tensor& z, const Tensor& onehot) {
    return K > 0 ? concat({z, onehot}, 1) : z;
  };

  json summary = trainer.fit(
      [&](int64_t epoch) { loader.set_epoch(epoch - 1); },
      [&](const train::StepInfo& s) {
        data::Batch b = loader.batch(s.batch);
        const int64_t B = b["image"].size(0);
        const Tensor x = b["image"].to(dev).reshape({B, kAaePixels});
        const Tensor onehot = K > 0 ? one_hot(b["label"], K, dev) : Tensor();

        // Reconstruction phase: encoder and decoder.
        opt_ae->zero_grad();
        Tensor recon = binary_cross_entropy_with_logits(Dec.logits(E(x)), x);
        recon.backward();
        opt_ae->step();

        // Regularisation phase, D step: prior samples are "real", the codes "fake".
        const Tensor zp = d_input(
            gan::sample_prior(prior, B, c.latent, noise, K > 0 ? b["label"] : Tensor()).to(dev),
            onehot);
        Tensor zq = d_input(E(x), onehot);
        opt_d->zero_grad();
        Tensor real_logits = D(zp);
        Tensor fake_logits = D(zq.detach());
        gan::Losses ld = gan::gan_losses(loss, real_logits, fake_logits);
        ld.d.backward();
        opt_d->step();
        double d_prior = 0, d_code = 0;
        {
          NoGradGuard ng;
          d_prior = mean(sigmoid(real_logits.detach())).item<double>();
          d_code = mean(sigmoid(fake_logits.detach())).item<double>();
        }

        // G step: the encoder fools the updated, frozen D.
        opt_e->zero_grad();
        gan::Losses lg;
        {
          nn::FreezeGuard frozen(D);
          Tensor r;
          if (relativistic) {
            NoGradGuard ng;
            r = D(zp);
          } else {
            r = real_logits.detach();
          }
          lg = gan::gan_losses(loss, r, D(zq));
          lg.g.backward();
        }
        opt_e->step();
        return train::StepResult{{{"recon", recon.item<double>()},
                                  {"d_loss", ld.d.item<double>()},
                                  {"g_loss", lg.g.item<double>()},
                                  {"d_prior", d_prior},
                                  {"d_code", d_code}},
                                 B};
      },
      [&](const train::EpochStats& st) {
        return train::Record{{"epoch", double(st.epoch)},
                             {"recon", st.mean.at("recon")},
                             {"d_loss", st.mean.at("d_loss")},
                             {"g_loss", st.mean.at("g_loss")},
                             {"d_prior", st.mean.at("d_prior")},
                             {"d_code", st.mean.at("d_code")},
                             {"epoch_seconds", st.seconds},
                             {"train_images_per_s", double(st.samples) / st.seconds}};
      });

  // The test set: codes, the reconstruction loss, and the figures.
  Tensor codes, recon_images;
  double test_recon = 0;
  {
    NoGradGuard ng;
    std::vector<Tensor> parts;
    for (int64_t i = 0; i < test.size(); i += kChunk) {
      const int64_t m = std::min(kChunk, test.size() - i);
      const Tensor x = test.images.narrow(0, i, m).contiguous().to(dev).reshape({m, kAaePixels});
      const Tensor z = E(x);
      const Tensor logits = Dec.logits(z);
      test_recon +=
          binary_cross_entropy_with_logits(logits, x, Tensor(), Reduction::Sum).item<double>();
      parts.push_back(z.to(Device::cpu()));
      if (i == 0) recon_images = sigmoid(logits).reshape({m, 1, 28, 28}).to(Device::cpu());
    }
    test_recon /= double(test.size() * kAaePixels);
    codes = concat(parts, 0);
  }
  auto decode = [&](const Tensor& z) {
    NoGradGuard ng;
    return Dec(z.to(dev)).to(Device::cpu());
  };
  fs::create_directories(c.out);
  const std::string recon_png = (fs::path(c.out) / "reconstructions.png").string();
  save_reconstructions(recon_png, test.images.narrow(0, 0, recon_images.size(0)), recon_images);
  // Decoded prior samples: ten rows of ten; supervised, row k from part k of the prior.
  Generator sample_gen(c.seed + 12345);
  Tensor sample_labels;
  if (K > 0) {
    std::vector<int64_t> v;
    for (int64_t i = 0; i < 100; ++i) v.push_back(i / 10);
    sample_labels = from_vector(v, {100});
  }
  const std::string samples_png = (fs::path(c.out) / "samples.png").string();
  io::save_image_grid(
      samples_png, decode(gan::sample_prior(prior, 100, c.latent, sample_gen, sample_labels)), 10);

  const json records = trainer.log().records();
  const json last = records.empty() ? json::object() : records.back();
  summary.update({{"model", "aae"},
                  {"prior", c.prior},
                  {"supervised", c.supervised},
                  {"loss", c.loss},
                  {"device", dev.str()},
                  {"latent", c.latent},
                  {"hidden", c.hidden},
                  {"batch", c.batch},
                  {"lr", c.lr},
                  {"lr_reg", c.lr_reg},
                  {"seed", c.seed},
                  {"n_train", train.size()},
                  {"n_test", test.size()},
                  {"recon", last.value("recon", NAN)},
                  {"d_loss", last.value("d_loss", NAN)},
                  {"g_loss", last.value("g_loss", NAN)},
                  {"d_prior", last.value("d_prior", NAN)},
                  {"d_code", last.value("d_code", NAN)},
                  {"test_recon", test_recon},
                  {"images_per_second", summary["samples_per_second"]},
                  {"encoder", trainer.checkpoint().module_path("encoder")},
                  {"decoder", trainer.checkpoint().module_path("decoder")},
                  {"discriminator", trainer.checkpoint().module_path("discriminator")},
                  {"reconstructions", recon_png},
                  {"samples", samples_png},
                  {"metrics", trainer.log().csv_path()},
                  {"curves", trainer.log().curves_path()},
                  {"summary", trainer.log().summary_path()}});
  if (c.latent == 2) {
    Generator bg_gen(c.seed + 54321);
    const Tensor background = gan::sample_prior(prior, 5000, 2, bg_gen);
    summary.update(save_latent_figures(
        c.out, codes, test.labels, test.class_names, background, decode, kGrid,
        "AAE test codes, prior " + c.prior + (c.supervised ? " (supervised)" : "")));
  }
  trainer.log().write_summary(summary);
  return summary;
}

}  // namespace nabla::nets
