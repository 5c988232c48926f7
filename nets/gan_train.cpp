// The GAN training recipe and the sampler (see gan_train.h).
#include <nets/gan_train.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include <nabla/autograd.h>
#include <nabla/data/loader.h>
#include <nabla/data/mnist.h>
#include <nabla/error.h>
#include <nabla/gan/losses.h>
#include <nabla/gan/samples.h>
#include <nabla/io/files.h>
#include <nabla/io/image.h>
#include <nabla/io/safetensors.h>
#include <nabla/metrics/generative.h>
#include <nabla/ops.h>
#include <nabla/optim/factory.h>
#include <nabla/train/trainer.h>
#include <nets/classifier.h>
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
    train::read_option(j, "gan options", key, field);
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
  for (int64_t x : v) {
    if (!s.empty()) s += ',';
    s += std::to_string(x);
  }
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

namespace {

struct Samples {
  Tensor z, images, labels;  // labels: the index within `classes` (conditional only)
  std::vector<int64_t> classes;
  int64_t nz = 0, ngf = 0;
};

// Draws n samples of the generator in `checkpoint` (eval mode) from seed.
Samples draw_samples(const std::string& checkpoint, int64_t n, uint64_t seed, int64_t klass,
                     int64_t nz_flag, Device dev) {
  NABLA_CHECK(n >= 1, "gan sample: --n ", n, " must be >= 1");
  io::SafetensorsFile f = io::load_safetensors(checkpoint);
  auto it = f.tensors.find("main.0.weight");
  auto last = f.tensors.find("main.9.weight");
  NABLA_CHECK(it != f.tensors.end() && last != f.tensors.end() && it->second.dim() == 4 &&
                  last->second.dim() == 4,
              "gan sample: ", checkpoint,
              " is not a DCGAN generator at 32x32 (no main.0.weight and main.9.weight)");
  const int64_t nz_in = it->second.size(0), ngf = it->second.size(1) / 4, nc = last->second.size(1);
  Samples out;
  if (f.metadata.count("classes") && !f.metadata["classes"].empty()) {
    const std::string list = f.metadata["classes"];
    size_t pos = 0;
    while (pos <= list.size()) {
      size_t comma = list.find(',', pos);
      if (comma == std::string::npos) comma = list.size();
      const std::string item = list.substr(pos, comma - pos);
      size_t used = 0;
      long long v = -1;
      try {
        v = std::stoll(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      NABLA_CHECK(used == item.size() && !item.empty() && v >= 0, "gan sample: ", checkpoint,
                  ": metadata 'classes' is '", list, "'; '", item, "' is not a class index");
      out.classes.push_back(v);
      pos = comma + 1;
    }
  }
  const int64_t K = int64_t(out.classes.size());
  const int64_t nz = nz_flag > 0 ? nz_flag : nz_in - K;
  NABLA_CHECK(nz >= 1 && nz + K == nz_in, "gan sample: ", checkpoint, " has main.0.weight ",
              shape_str(it->second.shape()), ": nz ", nz, " plus ", K,
              " classes does not match its ", nz_in, " input channels");
  int64_t slot = -1;
  if (klass >= 0) {
    NABLA_CHECK(K > 0, "gan sample: --class ", klass, " needs a conditional generator; ",
                checkpoint, " is unconditional");
    for (int64_t k = 0; k < K; ++k)
      if (out.classes[size_t(k)] == klass) slot = k;
    NABLA_CHECK(slot >= 0, "gan sample: --class ", klass, " is not among the classes ",
                join(out.classes), " of ", checkpoint);
  }
  DCGANGenerator G(nz_in, ngf, nc);
  G.load_state_dict(f.tensors);
  G.to(dev);
  G.eval();
  Generator gen(seed);
  out.z = randn({n, nz, 1, 1}, DType::Float32, Device::cpu(), &gen);
  if (K > 0) out.labels = sample_labels(n, K, slot);
  {
    NoGradGuard ng;
    std::vector<Tensor> parts;
    for (int64_t i = 0; i < n; i += 500) {  // in chunks: eval mode makes them independent
      const int64_t m = std::min<int64_t>(500, n - i);
      Tensor y = K > 0 ? out.labels.narrow(0, i, m) : Tensor();
      parts.push_back(G(g_input(out.z.narrow(0, i, m).to(dev), y, K)).to(Device::cpu()));
    }
    out.images = concat(parts, 0).contiguous();
  }
  out.nz = nz;
  out.ngf = ngf;
  return out;
}

// 32x32 images in [-1, 1] -> FashionCNN's 28x28 inputs in [0, 1].
Tensor to_classifier_input(const Tensor& x) {
  return mul(add(x.narrow(2, 2, 28).narrow(3, 2, 28).contiguous(), 1.0), 0.5);
}

// fc1 features after ReLU [n, 128] and class probabilities [n, 10] of x [n, 1, 28, 28].
std::pair<Tensor, Tensor> classify_features(nn::Module& net, const Tensor& x, Device dev) {
  std::vector<Tensor> feats, probs;
  Tensor captured;
  nn::ForwardHookGuard hook(net.submodule("fc1"),
                            [&](nn::Module&, const Tensor&, const Tensor& out) {
                              captured = out;
                              return std::optional<Tensor>();
                            });
  NoGradGuard ng;
  for (int64_t i = 0; i < x.size(0); i += 500) {
    const int64_t m = std::min<int64_t>(500, x.size(0) - i);
    Tensor logits = net(x.narrow(0, i, m).contiguous().to(dev));
    feats.push_back(relu(captured).to(Device::cpu()));
    probs.push_back(softmax(logits, 1).to(Device::cpu()));
  }
  return {concat(feats, 0), concat(probs, 0)};
}

// The first n images of a split, of the chosen classes, as classifier inputs [n, 1, 28, 28].
Tensor real_images(const std::string& dir, data::Split split, const std::vector<int64_t>& classes,
                   int64_t n) {
  data::Dataset ds = data::load_mnist(dir, split, 0);
  std::vector<int64_t> keep;
  const std::vector<int64_t> y = ds.labels.to_vector<int64_t>();
  for (size_t i = 0; i < y.size() && int64_t(keep.size()) < n; ++i)
    if (classes.empty() || std::find(classes.begin(), classes.end(), y[i]) != classes.end())
      keep.push_back(int64_t(i));
  std::vector<Tensor> rows;
  for (int64_t i : keep) rows.push_back(ds.images.narrow(0, i, 1));
  NABLA_CHECK(rows.size() >= 2, "gan eval: fewer than 2 reference images of the classes ",
              join(classes));
  return concat(rows, 0);
}

}  // namespace

json sample_gan(const GanSampling& s, Device dev) {
  Samples smp = draw_samples(s.checkpoint, s.n, s.seed, s.klass, s.nz, dev);
  const Tensor& images = smp.images;
  nabla::io::create_dirs(s.out, "the output folder (--out)");
  const std::string png = (fs::path(s.out) / "samples.png").string();
  // A conditional generator cycles through its classes: one column per class.
  const int64_t nrow = smp.labels.defined() && s.klass < 0 ? int64_t(smp.classes.size()) : 8;
  io::save_image_grid(png, mul(add(images, 1.0), 0.5), nrow);
  json j = {{"n", s.n},
            {"nz", smp.nz},
            {"ngf", smp.ngf},
            {"checkpoint", s.checkpoint},
            {"device", dev.str()},
            {"seed", s.seed},
            {"pixel_mean", mean(images).item<double>()},
            {"pixel_std", std::sqrt(var(images).item<double>())},
            {"pixel_min", -max(neg(images)).item<double>()},
            {"pixel_max", max(images).item<double>()},
            {"grid", png}};
  if (smp.labels.defined()) {
    std::vector<int64_t> yl = smp.labels.to_vector<int64_t>();
    for (int64_t& v : yl) v = smp.classes[size_t(v)];
    j["classes"] = yl;
  }
  if (!s.save_npy.empty()) {
    nabla::io::create_dirs(s.save_npy, "the --save-npy folder");
    const std::string zp = (fs::path(s.save_npy) / "z.npy").string();
    const std::string ip = (fs::path(s.save_npy) / "images.npy").string();
    save_npy(zp, smp.z);
    save_npy(ip, images);
    j["z_npy"] = zp;
    j["images_npy"] = ip;
    if (smp.labels.defined()) {
      const std::string lp = (fs::path(s.save_npy) / "labels.npy").string();
      save_npy(lp, smp.labels);  // the index within the generator's classes (its one-hot)
      j["labels_npy"] = lp;
    }
  }
  return j;
}

json evaluate_gan(const GanEvaluation& e, Device dev) {
  NABLA_CHECK(e.checkpoint.empty() != e.images.empty(),
              "gan eval: give exactly one of --checkpoint and --images");
  NABLA_CHECK(e.n >= 4, "gan eval: --n ", e.n, " must be >= 4");
  std::string arch;
  std::shared_ptr<nn::Module> net = load_classifier(e.classifier, &arch);
  NABLA_CHECK(arch == "fashioncnn", "gan eval: ", e.classifier, " holds a ", arch,
              " classifier; the features are FashionCNN's fc1");
  net->to(dev);
  Tensor fake;
  if (!e.checkpoint.empty()) {
    fake = draw_samples(e.checkpoint, e.n, e.seed, e.klass, 0, dev).images;
  } else {
    fake = load_npy(e.images);
    NABLA_CHECK(fake.dim() == 4 && fake.size(1) == 1 && fake.size(2) == 32 && fake.size(3) == 32 &&
                    fake.size(0) >= 4 && is_floating(fake.dtype()),
                "gan eval: ", e.images, " holds ", dtype_name(fake.dtype()), " ",
                shape_str(fake.shape()), ", expected float [n >= 4, 1, 32, 32] in [-1, 1]");
    fake = fake.to(DType::Float32);
  }
  auto [fake_feat, fake_prob] = classify_features(*net, to_classifier_input(fake), dev);

  Tensor ref;
  if (e.reference == "train" || e.reference == "test") {
    ref = real_images(e.data, e.reference == "train" ? data::Split::Train : data::Split::Test,
                      e.classes, e.n);
  } else {
    Tensor b = load_npy(e.reference);
    NABLA_CHECK(b.dim() == 4 && b.size(1) == 1 && b.size(2) == 32 && b.size(3) == 32 &&
                    is_floating(b.dtype()),
                "gan eval: --reference ", e.reference, " holds ", shape_str(b.shape()),
                ", expected train, test or a float [n, 1, 32, 32] .npy in [-1, 1]");
    ref = to_classifier_input(b.to(DType::Float32));
  }
  const Tensor ref_feat = classify_features(*net, ref, dev).first;
  const Tensor train_feat =
      classify_features(*net, real_images(e.data, data::Split::Train, e.classes, e.n), dev).first;
  const Tensor test_feat =
      classify_features(*net, real_images(e.data, data::Split::Test, e.classes, e.n), dev).first;

  const metrics::PrecisionRecall pr = metrics::precision_recall(ref_feat, fake_feat, 3);
  const metrics::Coverage cov = metrics::class_coverage(fake_prob);
  return {{"fd", metrics::frechet_distance(ref_feat, fake_feat)},
          {"fd_floor", metrics::frechet_distance(train_feat, test_feat)},
          {"kid", metrics::kid(ref_feat, fake_feat)},
          {"precision", pr.precision},
          {"recall", pr.recall},
          {"classes_covered", cov.classes_covered},
          {"coverage_kl", cov.coverage_kl},
          {"classifier_score", cov.classifier_score},
          {"histogram", cov.histogram},
          {"n", fake.size(0)},
          {"n_reference", ref.size(0)},
          {"reference", e.reference},
          {"classes", e.classes},
          {"source", e.checkpoint.empty() ? e.images : e.checkpoint},
          {"classifier", e.classifier},
          {"device", dev.str()}};
}

json gan_study(const GanStudy& s, Device dev, bool show) {
  NABLA_CHECK(s.seeds >= 1, "gan study: --seeds ", s.seeds, " must be >= 1");
  std::vector<std::string> losses = s.losses.empty() ? gan::loss_names() : s.losses;
  for (const std::string& l : losses) gan::loss_from_name(l);  // names checked before any run
  nabla::io::create_dirs(s.out, "the output folder (--out)");
  static const char* kKeys[] = {"fd",
                                "kid",
                                "precision",
                                "recall",
                                "classes_covered",
                                "coverage_kl",
                                "classifier_score",
                                "epoch_seconds"};
  json runs = json::array(), table = json::array();
  for (const std::string& l : losses) {
    std::map<std::string, std::vector<double>> values;
    for (int64_t seed = 0; seed < s.seeds; ++seed) {
      GanTraining t = s.train;
      t.loss = l;
      t.seed = uint64_t(seed);
      t.out = (fs::path(s.out) / (l + "_seed" + std::to_string(seed))).string();
      if (show) std::fprintf(stderr, "gan study: %s, seed %lld\n", l.c_str(), (long long)seed);
      const json summary = train_gan(t, dev, false, show);
      GanEvaluation e;
      e.checkpoint = summary["generator"].get<std::string>();
      e.classifier = s.classifier;
      e.n = s.n;
      e.data = s.train.data;
      e.classes = s.train.classes;
      json ev = evaluate_gan(e, dev);
      double seconds = 0;
      for (const json& r : summary["per_epoch"]) seconds += r["epoch_seconds"].get<double>();
      ev["epoch_seconds"] = seconds / double(summary["per_epoch"].size());
      std::ofstream((fs::path(t.out) / "eval.json").string()) << ev.dump(2) << "\n";
      for (const char* k : kKeys) values[k].push_back(ev[k].get<double>());
      ev["loss"] = l;
      ev["seed"] = seed;
      runs.push_back(ev);
    }
    json row = {{"loss", l}, {"seeds", s.seeds}};
    for (const char* k : kKeys) {
      const std::vector<double>& v = values[k];
      double m = 0, ss = 0;
      for (double x : v) m += x / double(v.size());
      for (double x : v) ss += (x - m) * (x - m);
      row[k] = {{"mean", m}, {"sd", v.size() > 1 ? std::sqrt(ss / double(v.size() - 1)) : 0.0}};
    }
    table.push_back(row);
  }
  const json study = {{"runs", runs},
                      {"table", table},
                      {"train", s.train},
                      {"n", s.n},
                      {"classifier", s.classifier},
                      {"markdown", (fs::path(s.out) / "study.md").string()}};
  std::ofstream((fs::path(s.out) / "study.json").string()) << study.dump(2) << "\n";
  std::ofstream md((fs::path(s.out) / "study.md").string());
  md << "| loss | FD | KID | precision | recall | classes covered | KL(p(y) ‖ U) | classifier "
        "score | s / epoch |\n|---|---|---|---|---|---|---|---|---|\n";
  char buf[128];
  for (const json& row : table) {
    md << "| " << row["loss"].get<std::string>();
    for (const char* k : kKeys) {
      std::snprintf(buf, sizeof buf, " | %.4g ± %.2g", row[k]["mean"].get<double>(),
                    row[k]["sd"].get<double>());
      md << buf;
    }
    md << " |\n";
  }
  return study;
}

}  // namespace nabla::nets
