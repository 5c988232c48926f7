// The GAN training recipe and the sampler (see gan_train.h).
#include <nets/gan_train.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include <nabla/autograd.h>
#include <nabla/data/loader.h>
#include <nabla/data/mnist.h>
#include <nabla/error.h>
#include <nabla/gan/losses.h>
#include <nabla/gan/samples.h>
#include <nabla/io/image.h>
#include <nabla/io/safetensors.h>
#include <nabla/ops.h>
#include <nabla/optim/factory.h>
#include <nabla/train/trainer.h>
#include <nets/dcgan.h>

namespace nabla::nets {

using nlohmann::json;
namespace fs = std::filesystem;

void to_json(json& j, const GanTraining& c) {
  j = {{"model", c.model},     {"loss", c.loss},
       {"nz", c.nz},           {"ngf", c.ngf},
       {"ndf", c.ndf},         {"epochs", c.epochs},
       {"batch", c.batch},     {"lr", c.lr},
       {"beta1", c.beta1},     {"beta2", c.beta2},
       {"classes", c.classes}, {"seed", c.seed},
       {"data", c.data},       {"train_limit", c.train_limit},
       {"out", c.out},         {"checkpoint_every", c.checkpoint_every},
       {"device", c.device},   {"threads", c.threads}};
}

void from_json(const json& j, GanTraining& c) {
  auto get = [&](const char* key, auto& field) {
    if (!j.contains(key)) return;
    try {
      j.at(key).get_to(field);
    } catch (const json::exception& e) {
      throw Error(std::string("gan options: '") + key + "' = " + j.at(key).dump() + ": " +
                  e.what());
    }
  };
  get("model", c.model);
  get("loss", c.loss);
  get("nz", c.nz);
  get("ngf", c.ngf);
  get("ndf", c.ndf);
  get("epochs", c.epochs);
  get("batch", c.batch);
  get("lr", c.lr);
  get("beta1", c.beta1);
  get("beta2", c.beta2);
  get("classes", c.classes);
  get("seed", c.seed);
  get("data", c.data);
  get("train_limit", c.train_limit);
  get("out", c.out);
  get("checkpoint_every", c.checkpoint_every);
  get("device", c.device);
  get("threads", c.threads);
}

namespace {

constexpr int64_t kFixedSamples = 64, kStripPerEpoch = 8, kInterpRows = 8, kInterpSteps = 10;

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (int64_t x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

// The training images of the chosen classes, padded to 32x32 and mapped to [-1, 1]; labels are
// the index of the class within `classes` (what the one-hot of the cgan encodes).
data::Dataset gan_data(const GanTraining& c, const std::vector<int64_t>& classes) {
  data::Dataset ds = data::load_mnist(c.data, data::Split::Train, 0);
  NABLA_CHECK(ds.images.size(1) == 1 && ds.images.size(2) == 28 && ds.images.size(3) == 28,
              "gan train: DCGAN at 32x32 needs 1x28x28 images, the data has ",
              shape_str(ds.images.shape()));
  std::vector<int64_t> slot(10, -1);
  for (size_t k = 0; k < classes.size(); ++k) slot[size_t(classes[k])] = int64_t(k);
  const std::vector<int64_t> y = ds.labels.to_vector<int64_t>();
  const std::vector<float> px = ds.images.contiguous().to_vector<float>();
  std::vector<float> out;
  std::vector<int64_t> labels;
  for (size_t i = 0; i < y.size(); ++i) {
    if (y[i] < 0 || y[i] >= 10 || slot[size_t(y[i])] < 0) continue;
    if (c.train_limit > 0 && int64_t(labels.size()) >= c.train_limit) break;
    labels.push_back(slot[size_t(y[i])]);
    out.insert(out.end(), px.begin() + int64_t(i) * 784, px.begin() + int64_t(i + 1) * 784);
  }
  NABLA_CHECK(!labels.empty(), "gan train: no training image of the classes ", join(classes));
  const int64_t n = int64_t(labels.size());
  Tensor x = from_vector(out, {n, 1, 28, 28});
  data::Dataset r;
  r.images = sub(mul(pad(x, {2, 2, 2, 2}), 2.0), 1.0);
  r.labels = from_vector(labels, {n});
  for (int64_t k : classes) r.class_names.push_back(ds.class_names.at(size_t(k)));
  return r;
}

// The classes of a cgan sample batch: sample i gets class i mod K, or `klass` when >= 0.
Tensor sample_labels(int64_t n, int64_t k, int64_t klass) {
  std::vector<int64_t> v{};
  v.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = klass >= 0 ? klass : i % k;
  return from_vector(v, {n});
}

// G's input: z, with the one-hot of y appended for the conditional model (k > 0).
Tensor g_input(const Tensor& z, const Tensor& y, int64_t k) {
  return k > 0 ? condition_latent(z, one_hot(y, k, z.device())) : z;
}

}  // namespace

json train_gan(const GanTraining& c, Device dev, bool resume, bool show) {
  NABLA_CHECK(c.model == "dcgan" || c.model == "cgan", "gan train: --model ", c.model,
              ": expected dcgan or cgan");
  const gan::Loss loss = gan::loss_from_name(c.loss);
  NABLA_CHECK(c.epochs >= 1 && c.batch >= 2, "gan train: --epochs ", c.epochs,
              " must be >= 1 and --batch ", c.batch, " >= 2 (batch norm)");
  NABLA_CHECK(c.nz >= 1 && c.ngf >= 1 && c.ndf >= 1, "gan train: --nz ", c.nz, ", --ngf ", c.ngf,
              ", --ndf ", c.ndf, " must be >= 1");
  NABLA_CHECK(c.lr > 0, "gan train: --lr ", c.lr, " must be > 0");
  std::vector<int64_t> classes = c.classes;
  if (classes.empty())
    for (int64_t k = 0; k < 10; ++k) classes.push_back(k);
  for (size_t i = 0; i < classes.size(); ++i) {
    NABLA_CHECK(classes[i] >= 0 && classes[i] < 10, "gan train: --classes: ", classes[i],
                " is not a Fashion-MNIST class (0..9)");
    for (size_t j = 0; j < i; ++j)
      NABLA_CHECK(classes[j] != classes[i], "gan train: --classes lists ", classes[i], " twice");
  }
  const bool conditional = c.model == "cgan";
  const int64_t K = conditional ? int64_t(classes.size()) : 0;
  const bool turing = loss == gan::Loss::Turing;
  const bool relativistic =
      loss == gan::Loss::RSGAN || loss == gan::Loss::RaSGAN || loss == gan::Loss::RaLSGAN;

  data::Dataset train = gan_data(c, classes);
  NABLA_CHECK(train.size() >= c.batch, "gan train: ", train.size(),
              " training images are fewer than one batch of ", c.batch);
  if (show)
    std::fprintf(stderr, "data: %lld images %s of classes %s; device %s\n", (long long)train.size(),
                 shape_str(train.images.shape()).c_str(), join(classes).c_str(), dev.str().c_str());

  Generator init(c.seed);
  DCGANGenerator G(c.nz + K, c.ngf, 1, &init);
  DCGANDiscriminator D((turing ? 2 : 1) + K, c.ndf, &init);
  G.to(dev);
  D.to(dev);
  // Every draw of the step (z, the Turing orders) comes from this generator, which the
  // checkpoint saves, so --resume continues with the same numbers.
  Generator noise(c.seed * 2 + 1);
  data::DataLoader loader(train, c.batch, /*shuffle=*/true, c.seed, /*drop_last=*/true);
  loader.set_pin_memory(dev.is_cuda());
  const int64_t steps_per_epoch = loader.num_batches();
  const optim::OptimizerOptions oo{.lr = c.lr, .beta1 = c.beta1, .beta2 = c.beta2};
  auto opt_g = optim::make_optimizer("adam", G.parameters(), oo);
  auto opt_d = optim::make_optimizer("adam", D.parameters(), oo);

  // The fixed codes of the per-epoch grids and the ends of the interpolation rows.
  Generator fixed_gen(c.seed + 12345);
  const Tensor fixed_z = randn({kFixedSamples, c.nz, 1, 1}, DType::Float32, dev, &fixed_gen);
  const Tensor fixed_y = sample_labels(kFixedSamples, std::max<int64_t>(K, 1), -1);
  const Tensor interp_a = randn({kInterpRows, c.nz, 1, 1}, DType::Float32, dev, &fixed_gen);
  const Tensor interp_b = randn({kInterpRows, c.nz, 1, 1}, DType::Float32, dev, &fixed_gen);

  train::Trainer trainer(
      {.name = "gan train",
       .out = c.out,
       .epochs = c.epochs,
       .steps_per_epoch = steps_per_epoch,
       .checkpoint_every = c.checkpoint_every,
       .resume = resume,
       .show = show},
      {"epoch", "d_loss", "g_loss", "d_x", "d_g_z", "epoch_seconds", "train_images_per_s"},
      {{"losses",
        "epoch",
        std::string("loss (") + gan::loss_name(loss) + ")",
        {{"d_loss:running", "D (running)", io::Rgb{150, 180, 230}},
         {"g_loss:running", "G (running)", io::Rgb{240, 170, 120}},
         {"d_loss", "D", io::Rgb{30, 90, 200}},
         {"g_loss", "G", io::Rgb{220, 90, 30}}}},
       {"discriminator outputs",
        "epoch",
        "mean sigmoid(C)",
        {{"d_x:running", "D(x) (running)", io::Rgb{150, 180, 230}},
         {"d_g_z:running", "D(G(z)) (running)", io::Rgb{240, 170, 120}},
         {"d_x", "D(x)", io::Rgb{30, 90, 200}},
         {"d_g_z", "D(G(z))", io::Rgb{220, 90, 30}}}}});
  trainer.add_module("generator", G);
  trainer.add_module("discriminator", D);
  trainer.add_optimizer("optimizer_g", *opt_g);
  trainer.add_optimizer("optimizer_d", *opt_d);
  trainer.add_generator("noise", noise);
  trainer.set_options(c);
  trainer.set_metadata([&]() -> std::map<std::string, std::map<std::string, std::string>> {
    std::map<std::string, std::string> g = {
        {"model", "DCGANGenerator"},
        {"gan_model", c.model},
        {"loss", c.loss},
        {"nz", std::to_string(c.nz)},
        {"ngf", std::to_string(c.ngf)},
        {"nc", "1"},
        {"classes", conditional ? join(classes) : ""},
        {"epoch", std::to_string(trainer.log().records().size())},
        {"seed", std::to_string(c.seed)}};
    return {{"generator", g},
            {"discriminator",
             {{"model", "DCGANDiscriminator"},
              {"loss", c.loss},
              {"ndf", std::to_string(c.ndf)},
              {"in_channels", std::to_string(D.in_channels)}}}};
  });

  const std::string samples_dir = (fs::path(c.out) / "samples").string();
  auto d_input = [&](const Tensor& img, const Tensor& onehot) {
    return K > 0 ? condition_image(img, onehot) : img;
  };
  auto generate = [&](const Tensor& z, const Tensor& y) {
    NoGradGuard ng;
    G.eval();
    Tensor x = G(g_input(z, y.defined() ? y : Tensor(), K));
    G.train();
    return x;
  };

  json summary = trainer.fit(
      [&](int64_t epoch) {
        G.train();
        D.train();
        loader.set_epoch(epoch - 1);
      },
      [&](const train::StepInfo& s) {
        data::Batch b = loader.batch(s.batch);
        const Tensor x = b["image"].to(dev);
        const int64_t B = x.size(0);
        const Tensor onehot = K > 0 ? one_hot(b["label"], K, dev) : Tensor();
        Tensor z = randn({B, c.nz, 1, 1}, DType::Float32, dev, &noise);
        Tensor fake = G(K > 0 ? condition_latent(z, onehot) : z);
        Tensor order = turing ? gan::turing_order(B, noise).to(dev) : Tensor();

        // D step: the fake batch is a constant here.
        opt_d->zero_grad();
        double d_x = 0, d_g_z = 0;
        gan::Losses ld;
        Tensor real_logits;
        if (turing) {
          Tensor logits = D(d_input(gan::turing_pair(x, fake.detach(), order), onehot));
          ld = gan::turing_losses(logits, order);
          NoGradGuard ng;
          Tensor p = sigmoid(logits.reshape({B}).detach());
          const double n_real_first = sum(order).item<double>();
          d_x = n_real_first > 0 ? sum(mul(p, order)).item<double>() / n_real_first : 0;
          d_g_z = n_real_first < double(B)
                      ? sum(mul(p, rsub(1.0, order))).item<double>() / (double(B) - n_real_first)
                      : 0;
        } else {
          real_logits = D(d_input(x, onehot));
          Tensor fake_logits = D(d_input(fake.detach(), onehot));
          ld = gan::gan_losses(loss, real_logits, fake_logits);
          NoGradGuard ng;
          d_x = mean(sigmoid(real_logits.detach())).item<double>();
          d_g_z = mean(sigmoid(fake_logits.detach())).item<double>();
        }
        ld.d.backward();
        opt_d->step();

        // G step through the updated, frozen D: no weight gradient of D is computed.
        opt_g->zero_grad();
        gan::Losses lg;
        {
          nn::FreezeGuard frozen(D);
          if (turing) {
            lg = gan::turing_losses(D(d_input(gan::turing_pair(x, fake, order), onehot)), order);
          } else {
            Tensor fake_logits = D(d_input(fake, onehot));
            // The relativistic losses compare with the real logits of the updated D (the
            // official code recomputes them); the others do not use them in L_G.
            Tensor r = relativistic ? D(d_input(x, onehot)).detach() : real_logits.detach();
            lg = gan::gan_losses(loss, r, fake_logits);
          }
          lg.g.backward();
        }
        opt_g->step();
        return train::StepResult{{{"d_loss", ld.d.item<double>()},
                                  {"g_loss", lg.g.item<double>()},
                                  {"d_x", d_x},
                                  {"d_g_z", d_g_z}},
                                 B};
      },
      [&](const train::EpochStats& st) {
        gan::save_epoch_samples(samples_dir, st.epoch,
                                generate(fixed_z, K > 0 ? fixed_y : Tensor()));
        gan::save_epoch_strip(samples_dir, kStripPerEpoch);
        return train::Record{{"epoch", double(st.epoch)},
                             {"d_loss", st.mean.at("d_loss")},
                             {"g_loss", st.mean.at("g_loss")},
                             {"d_x", st.mean.at("d_x")},
                             {"d_g_z", st.mean.at("d_g_z")},
                             {"epoch_seconds", st.seconds},
                             {"train_images_per_s", double(st.samples) / st.seconds}};
      });

  // The interpolation grid: row r walks from code a_r to b_r (cgan: class r mod K on the row).
  const Tensor path = gan::interpolate_latents(interp_a, interp_b, kInterpSteps);
  Tensor path_y;
  if (K > 0) {
    std::vector<int64_t> v;
    for (int64_t r = 0; r < kInterpRows; ++r)
      for (int64_t s = 0; s < kInterpSteps; ++s) v.push_back(r % K);
    path_y = from_vector(v, {int64_t(v.size())});
  }
  const std::string interp_png = (fs::path(c.out) / "interpolation.png").string();
  io::save_image_grid(interp_png, mul(add(generate(path, path_y), 1.0), 0.5), kInterpSteps);

  const json records = trainer.log().records();
  const json last = records.empty() ? json::object() : records.back();
  summary.update({{"model", c.model},
                  {"loss", c.loss},
                  {"device", dev.str()},
                  {"nz", c.nz},
                  {"ngf", c.ngf},
                  {"ndf", c.ndf},
                  {"batch", c.batch},
                  {"lr", c.lr},
                  {"beta1", c.beta1},
                  {"seed", c.seed},
                  {"classes", classes},
                  {"n_train", train.size()},
                  {"d_loss", last.value("d_loss", NAN)},
                  {"g_loss", last.value("g_loss", NAN)},
                  {"d_x", last.value("d_x", NAN)},
                  {"d_g_z", last.value("d_g_z", NAN)},
                  {"images_per_second", summary["samples_per_second"]},
                  {"generator", trainer.checkpoint().module_path("generator")},
                  {"discriminator", trainer.checkpoint().module_path("discriminator")},
                  {"samples", (fs::path(samples_dir) / "epochs.png").string()},
                  {"interpolation", interp_png},
                  {"metrics", trainer.log().csv_path()},
                  {"curves", trainer.log().curves_path()},
                  {"summary", trainer.log().summary_path()}});
  trainer.log().write_summary(summary);
  return summary;
}

json sample_gan(const GanSampling& s, Device dev) {
  NABLA_CHECK(s.n >= 1, "gan sample: --n ", s.n, " must be >= 1");
  io::SafetensorsFile f = io::load_safetensors(s.checkpoint);
  auto it = f.tensors.find("main.0.weight");
  auto last = f.tensors.find("main.9.weight");
  NABLA_CHECK(it != f.tensors.end() && last != f.tensors.end() && it->second.dim() == 4 &&
                  last->second.dim() == 4,
              "gan sample: ", s.checkpoint,
              " is not a DCGAN generator at 32x32 (no main.0.weight and main.9.weight)");
  const int64_t nz_in = it->second.size(0), ngf = it->second.size(1) / 4, nc = last->second.size(1);
  std::vector<int64_t> classes;
  if (f.metadata.count("classes") && !f.metadata["classes"].empty()) {
    std::string list = f.metadata["classes"];
    size_t pos = 0;
    while (pos <= list.size()) {
      size_t comma = list.find(',', pos);
      if (comma == std::string::npos) comma = list.size();
      classes.push_back(std::stoll(list.substr(pos, comma - pos)));
      pos = comma + 1;
    }
  }
  const int64_t K = int64_t(classes.size());
  const int64_t nz = s.nz > 0 ? s.nz : nz_in - K;
  NABLA_CHECK(nz >= 1 && nz + K == nz_in, "gan sample: ", s.checkpoint, " has main.0.weight ",
              shape_str(it->second.shape()), ": nz ", nz, " plus ", K,
              " classes does not match its ", nz_in, " input channels");
  int64_t slot = -1;
  if (s.klass >= 0) {
    NABLA_CHECK(K > 0, "gan sample: --class ", s.klass, " needs a conditional generator; ",
                s.checkpoint, " is unconditional");
    for (int64_t k = 0; k < K; ++k)
      if (classes[size_t(k)] == s.klass) slot = k;
    std::string list;
    for (int64_t c : classes) list += (list.empty() ? "" : ",") + std::to_string(c);
    NABLA_CHECK(slot >= 0, "gan sample: --class ", s.klass, " is not among the classes ", list,
                " of ", s.checkpoint);
  }
  DCGANGenerator G(nz_in, ngf, nc);
  G.load_state_dict(f.tensors);
  G.to(dev);
  G.eval();
  Generator gen(s.seed);
  const Tensor z = randn({s.n, nz, 1, 1}, DType::Float32, Device::cpu(), &gen);
  const Tensor y = K > 0 ? sample_labels(s.n, K, slot) : Tensor();
  Tensor images;
  {
    NoGradGuard ng;
    images = G(g_input(z.to(dev), y, K)).to(Device::cpu()).contiguous();
  }
  fs::create_directories(s.out);
  const std::string png = (fs::path(s.out) / "samples.png").string();
  io::save_image_grid(png, mul(add(images, 1.0), 0.5), 8);
  json j = {{"n", s.n},
            {"nz", nz},
            {"ngf", ngf},
            {"checkpoint", s.checkpoint},
            {"device", dev.str()},
            {"seed", s.seed},
            {"pixel_mean", mean(images).item<double>()},
            {"pixel_std", std::sqrt(var(images).item<double>())},
            {"pixel_min", -max(neg(images)).item<double>()},
            {"pixel_max", max(images).item<double>()},
            {"grid", png}};
  if (K > 0) {
    std::vector<int64_t> yl = y.to_vector<int64_t>();
    for (int64_t& v : yl) v = classes[size_t(v)];
    j["classes"] = yl;
  }
  if (!s.save_npy.empty()) {
    fs::create_directories(s.save_npy);
    const std::string zp = (fs::path(s.save_npy) / "z.npy").string();
    const std::string ip = (fs::path(s.save_npy) / "images.npy").string();
    save_npy(zp, z);
    save_npy(ip, images);
    j["z_npy"] = zp;
    j["images_npy"] = ip;
    if (K > 0) {
      const std::string lp = (fs::path(s.save_npy) / "labels.npy").string();
      save_npy(lp, y);  // the index within the generator's classes, what its one-hot encodes
      j["labels_npy"] = lp;
    }
  }
  return j;
}

}  // namespace nabla::nets
