// The variational autoencoder's training recipe (see vae_train.h).
#include <nets/vae_train.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <nabla/autograd.h>
#include <nabla/data/loader.h>
#include <nabla/error.h>
#include <nabla/gan/latent.h>
#include <nabla/gan/samples.h>
#include <nabla/io/image.h>
#include <nabla/ops.h>
#include <nabla/optim/factory.h>
#include <nabla/train/trainer.h>
#include <nets/autoencoder.h>
#include <nets/vae.h>

namespace nabla::nets {

using nlohmann::json;
namespace fs = std::filesystem;

void to_json(json& j, const VaeTraining& c) {
  j = {{"latent", c.latent},
       {"hidden", c.hidden},
       {"recon", c.recon},
       {"epochs", c.epochs},
       {"batch", c.batch},
       {"lr", c.lr},
       {"seed", c.seed},
       {"data", c.data},
       {"train_limit", c.train_limit},
       {"test_limit", c.test_limit},
       {"out", c.out},
       {"checkpoint_every", c.checkpoint_every},
       {"device", c.device},
       {"threads", c.threads}};
}

void from_json(const json& j, VaeTraining& c) {
  auto get = [&](const char* key, auto& field) {
    train::read_option(j, "vae options", key, field);
  };
  get("latent", c.latent);
  get("hidden", c.hidden);
  get("recon", c.recon);
  get("epochs", c.epochs);
  get("batch", c.batch);
  get("lr", c.lr);
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

constexpr int64_t kChunk = 1000, kGrid = 20;
constexpr int64_t kArithFrom = 0, kArithTo = 2;  // T-shirt/top -> Pullover

}  // namespace

json train_vae(const VaeTraining& c, Device dev, bool resume, bool show) {
  const VaeRecon rec = vae_recon_from_name(c.recon);
  NABLA_CHECK(c.epochs >= 1 && c.batch >= 1, "vae train: --epochs ", c.epochs, " and --batch ",
              c.batch, " must be >= 1");
  NABLA_CHECK(c.latent >= 1 && c.hidden >= 1, "vae train: --latent ", c.latent, " and --hidden ",
              c.hidden, " must be >= 1");
  NABLA_CHECK(c.lr > 0, "vae train: --lr ", c.lr, " must be > 0");

  data::Dataset train = autoencoder_data("vae train", c.data, data::Split::Train, c.train_limit);
  NABLA_CHECK(train.size() >= c.batch, "vae train: ", train.size(),
              " training images are fewer than one batch of ", c.batch);
  const data::Dataset test = autoencoder_data("vae train", c.data, data::Split::Test, c.test_limit);
  if (show)
    std::fprintf(stderr, "data: %lld training and %lld test images %s; device %s\n",
                 (long long)train.size(), (long long)test.size(),
                 shape_str(train.images.shape()).c_str(), dev.str().c_str());

  Generator init(c.seed);
  VAE model(c.hidden, c.latent, &init);
  model.to(dev);
  Generator noise(c.seed * 2 + 1);  // eps of every step, saved with the checkpoint
  data::DataLoader loader(train, c.batch, /*shuffle=*/true, c.seed, /*drop_last=*/true);
  loader.set_pin_memory(dev.is_cuda());
  auto opt = optim::make_optimizer("adam", model.parameters(), {.lr = c.lr});

  train::Trainer trainer(
      {.name = "vae train",
       .out = c.out,
       .epochs = c.epochs,
       .steps_per_epoch = loader.num_batches(),
       .checkpoint_every = c.checkpoint_every,
       .resume = resume,
       .show = show},
      {"epoch", "loss", "recon", "kl", "epoch_seconds", "train_images_per_s"},
      {{"negative ELBO",
        "epoch",
        "per image",
        {{"loss:running", "-ELBO (running)", io::Rgb{150, 180, 230}},
         {"loss", "-ELBO", io::Rgb{30, 90, 200}}}},
       {"its two terms",
        "epoch",
        "per image",
        {{"recon", std::string("reconstruction (") + c.recon + ")", io::Rgb{30, 90, 200}},
         {"kl", "KL(q(z|x) || N(0, I))", io::Rgb{220, 90, 30}}}}});
  trainer.add_module("vae", model);
  trainer.add_optimizer("optimizer", *opt);
  trainer.add_generator("noise", noise);
  trainer.set_options(c);
  trainer.set_metadata([&]() -> std::map<std::string, std::map<std::string, std::string>> {
    return {{"vae",
             {{"model", "VAE"},
              {"hidden", std::to_string(c.hidden)},
              {"latent", std::to_string(c.latent)},
              {"recon", c.recon},
              {"seed", std::to_string(c.seed)}}}};
  });

  json summary =
      trainer.fit([&](int64_t epoch) { loader.set_epoch(epoch - 1); },
                  [&](const train::StepInfo& s) {
                    data::Batch b = loader.batch(s.batch);
                    const int64_t B = b["image"].size(0);
                    const Tensor x = b["image"].to(dev).reshape({B, 784});
                    opt->zero_grad();
                    auto [mu, logvar] = model.encode(x);
                    const Tensor z = reparameterize(mu, logvar, Tensor(), &noise);
                    const Tensor recon = div(vae_recon(rec, model.decode_logits(z), x), double(B));
                    const Tensor kl = div(vae_kl(mu, logvar), double(B));
                    const Tensor loss = add(recon, kl);
                    loss.backward();
                    opt->step();
                    return train::StepResult{{{"loss", loss.item<double>()},
                                              {"recon", recon.item<double>()},
                                              {"kl", kl.item<double>()}},
                                             B};
                  },
                  [&](const train::EpochStats& st) {
                    return train::Record{{"epoch", double(st.epoch)},
                                         {"loss", st.mean.at("loss")},
                                         {"recon", st.mean.at("recon")},
                                         {"kl", st.mean.at("kl")},
                                         {"epoch_seconds", st.seconds},
                                         {"train_images_per_s", double(st.samples) / st.seconds}};
                  });

  // The test set: the ELBO with one eps per image, the means, the figures.
  Tensor codes, recon_images;
  double test_recon = 0, test_kl = 0;
  {
    NoGradGuard ng;
    Generator eval_gen(c.seed + 777);
    std::vector<Tensor> parts;
    for (int64_t i = 0; i < test.size(); i += kChunk) {
      const int64_t m = std::min(kChunk, test.size() - i);
      const Tensor x = test.images.narrow(0, i, m).contiguous().to(dev).reshape({m, 784});
      auto [mu, logvar] = model.encode(x);
      const Tensor z = reparameterize(mu, logvar, Tensor(), &eval_gen);
      test_recon += vae_recon(rec, model.decode_logits(z), x).item<double>();
      test_kl += vae_kl(mu, logvar).item<double>();
      parts.push_back(mu.to(Device::cpu()));
      if (i == 0) recon_images = model.decode(mu).to(Device::cpu());
    }
    test_recon /= double(test.size());
    test_kl /= double(test.size());
    codes = concat(parts, 0);
  }
  auto decode = [&](const Tensor& z) {
    NoGradGuard ng;
    return model.decode(z.to(dev)).to(Device::cpu());
  };
  fs::create_directories(c.out);
  const std::string recon_png = (fs::path(c.out) / "reconstructions.png").string();
  save_reconstructions(recon_png, test.images.narrow(0, 0, recon_images.size(0)), recon_images);
  Generator sample_gen(c.seed + 12345);
  const std::string samples_png = (fs::path(c.out) / "samples.png").string();
  io::save_image_grid(samples_png,
                      decode(randn({64, c.latent}, DType::Float32, Device::cpu(), &sample_gen)), 8);

  // Latent arithmetic as the seed describes it (encode, add the difference of two mean codes,
  // decode): the first T-shirts of the test set plus mean mu(Pullover) - mean mu(T-shirt); rows:
  // the images, decode(mu), decode(mu + difference). Needs both classes among the test images.
  const std::vector<int64_t> labels = test.labels.to_vector<int64_t>();
  const std::vector<float> mus = codes.contiguous().to_vector<float>();
  const int64_t d = c.latent;
  std::vector<double> mean_from(size_t(d), 0.0), mean_to(size_t(d), 0.0);
  std::vector<int64_t> from_rows;
  int64_t n_from = 0, n_to = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] != kArithFrom && labels[i] != kArithTo) continue;
    const bool from = labels[i] == kArithFrom;
    for (int64_t j = 0; j < d; ++j)
      (from ? mean_from : mean_to)[size_t(j)] += mus[i * size_t(d) + size_t(j)];
    ++(from ? n_from : n_to);
    if (from && from_rows.size() < 8) from_rows.push_back(int64_t(i));
  }
  std::string arith_png;
  if (n_from > 0 && n_to > 0) {
    std::vector<float> diff(size_t(d), 0.f);
    for (int64_t j = 0; j < d; ++j)
      diff[size_t(j)] =
          float(mean_to[size_t(j)] / double(n_to) - mean_from[size_t(j)] / double(n_from));
    std::vector<Tensor> xs, zs;
    for (int64_t i : from_rows) {
      xs.push_back(test.images.narrow(0, i, 1));
      zs.push_back(codes.narrow(0, i, 1));
    }
    const Tensor z = concat(zs, 0).contiguous();
    const Tensor shifted = add(z, from_vector(diff, {1, d}));
    arith_png = (fs::path(c.out) / "arithmetic.png").string();
    io::save_image_grid(arith_png, concat({concat(xs, 0), decode(z), decode(shifted)}, 0),
                        int64_t(from_rows.size()));
  }
  // Interpolation between the means of test images 2r and 2r + 1, ten steps per row.
  const int64_t pairs = std::min<int64_t>(8, test.size() / 2);
  std::string interp_png;
  if (pairs >= 1) {
    std::vector<Tensor> a, b;
    for (int64_t r = 0; r < pairs; ++r) {
      a.push_back(codes.narrow(0, 2 * r, 1));
      b.push_back(codes.narrow(0, 2 * r + 1, 1));
    }
    interp_png = (fs::path(c.out) / "interpolation.png").string();
    io::save_image_grid(interp_png,
                        decode(gan::interpolate_latents(concat(a, 0), concat(b, 0), 10)), 10);
  }

  const json records = trainer.log().records();
  const json last = records.empty() ? json::object() : records.back();
  summary.update({{"model", "vae"},
                  {"recon_kind", c.recon},
                  {"device", dev.str()},
                  {"latent", c.latent},
                  {"hidden", c.hidden},
                  {"batch", c.batch},
                  {"lr", c.lr},
                  {"seed", c.seed},
                  {"n_train", train.size()},
                  {"n_test", test.size()},
                  {"loss", last.value("loss", NAN)},
                  {"recon", last.value("recon", NAN)},
                  {"kl", last.value("kl", NAN)},
                  {"test_loss", test_recon + test_kl},
                  {"test_recon", test_recon},
                  {"test_kl", test_kl},
                  {"images_per_second", summary["samples_per_second"]},
                  {"vae", trainer.checkpoint().module_path("vae")},
                  {"reconstructions", recon_png},
                  {"samples", samples_png},
                  {"arithmetic", arith_png},
                  {"interpolation", interp_png},
                  {"metrics", trainer.log().csv_path()},
                  {"curves", trainer.log().curves_path()},
                  {"summary", trainer.log().summary_path()}});
  if (c.latent == 2) {
    Generator bg_gen(c.seed + 54321);
    const Tensor background = gan::sample_prior(gan::Prior::Gaussian, 5000, 2, bg_gen);
    summary.update(save_latent_figures(c.out, codes, test.labels, test.class_names, background,
                                       decode, kGrid, "VAE test means mu(x), prior N(0, I)"));
  }
  trainer.log().write_summary(summary);
  return summary;
}

}  // namespace nabla::nets
