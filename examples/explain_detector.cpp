// nabla explain detector: tell adversarial images from clean ones by their saliency maps
// (Zhang et al. 2018, "Detecting Adversarial Perturbations with Saliency").
//
// An adversarial perturbation changes what the classifier's decision depends on, and so its
// saliency map. A small binary CNN (nets::SaliencyDetector) sees the image and the classifier's
// saliency, and learns clean (0) against adversarial (1). The pipeline, for the first --train-n
// training and --test-n test images of the data set:
//
//   1. attacks against the classifier f (true labels, no early stop: every image is perturbed)
//        FGSM       x' = clip(x + eps sign(dL/dx))
//        PGD L-inf  --pgd-steps steps of alpha = eps/4 from a random start x + U(-eps, eps)
//                   (Madry et al.), projected on the eps-ball and [0, 1]
//      training images get one adversarial version each: FGSM for even indices, PGD for odd
//      ones (balanced); test images get both.
//   2. saliency s(x) = |dS_c/dx| (explain::saliency, c = f's predicted class on x itself, clean
//      or adversarial), scaled by one global k = 1 / mean_n max_ij s(x_n) over the clean
//      training images, so a typical map peaks near 1 whatever the classifier.
//   3. detector input [x, k s(x)] as two channels; training set: every clean training image
//      (label 0) and its adversarial version (label 1); Adam, cross-entropy, shuffled batches.
//      Two one-channel baselines train on the same examples in the same order from the same
//      seed: image only (x), which shows what the saliency adds, and saliency only (k s(x)),
//      which shows what the saliency knows on its own. On Fashion-MNIST the image-only one is
//      strong: an L-inf attack lifts the exactly-black background, which a CNN sees at once.
//   4. on the held-out test images: detection accuracy on clean + FGSM (2 test-n examples,
//      balanced) and clean + PGD, for every detector; the classifier's accuracy on clean, FGSM
//      and PGD images.
//
// Writes, in --out: detector.safetensors (the two-channel detector; k and the settings in its
// metadata), detector_image_only.safetensors, detector_saliency_only.safetensors, report.json
// (what --json prints) and examples.png
// (rows of clean image, saliency, FGSM image, saliency, PGD image, saliency, with the
// classifier's prediction and the detector's P(adversarial)).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nabla/attack/attack.h>
#include <nabla/autograd.h>
#include <nabla/data/loader.h>
#include <nabla/data/mnist.h>
#include <nabla/error.h>
#include <nabla/explain/explain.h>
#include <nabla/io/files.h>
#include <nabla/io/heatmap.h>
#include <nabla/io/image.h>
#include <nabla/io/plot.h>
#include <nabla/io/progress.h>
#include <nabla/io/safetensors.h>
#include <nabla/metrics/classification.h>
#include <nabla/ops.h>
#include <nabla/optim/factory.h>
#include <nabla/train/trainer.h>
#include <nets/classifier.h>
#include <nets/detector.h>

#include "common.h"

namespace nabla::cli {

namespace {

struct DetectorOptions {
  Common c;
  std::string checkpoint;
  int64_t show = 6;
  int pgd_steps = 10;
  double eps = 0.1;
};

// The run's options, keyed like the flags (what --resume restores).
nlohmann::json to_json(const DetectorOptions& o) {
  nlohmann::json j = run_options(o.c, kTrainingFlags);
  j.update(
      {{"checkpoint", o.checkpoint}, {"eps", o.eps}, {"pgd_steps", o.pgd_steps}, {"show", o.show}});
  return j;
}

void from_json(const nlohmann::json& j, DetectorOptions& o) {
  read_run_options(j, o.c, kTrainingFlags);
  j.at("checkpoint").get_to(o.checkpoint);
  j.at("eps").get_to(o.eps);
  j.at("pgd_steps").get_to(o.pgd_steps);
  j.at("show").get_to(o.show);
}

// Rows per attack and saliency pass: bounds memory, and gives the progress bars their steps.
constexpr int64_t kWorkBatch = 250;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int64_t num_batches(int64_t n, int64_t b) {
  return (n + b - 1) / b;
}

// The rows idx of x (CPU), copied into a new contiguous tensor.
Tensor gather_rows(const Tensor& x, const std::vector<int64_t>& idx) {
  Tensor xc = x.contiguous();
  Shape s = xc.shape();
  s[0] = int64_t(idx.size());
  Tensor out = empty(s, xc.dtype());
  const size_t row = size_t(xc.numel() / xc.size(0)) * dtype_size(xc.dtype());
  const char* src = static_cast<const char*>(xc.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (size_t i = 0; i < idx.size(); ++i)
    std::memcpy(dst + i * row, src + size_t(idx[i]) * row, row);
  return out;
}

// dst[idx[i]] = src[i] for every row i of src (dst contiguous, CPU, same dtype).
void scatter_rows(Tensor& dst, const std::vector<int64_t>& idx, const Tensor& src) {
  Tensor sc = src.contiguous();
  const size_t row = size_t(dst.numel() / dst.size(0)) * dtype_size(dst.dtype());
  const char* s = static_cast<const char*>(sc.raw_data());
  char* d = static_cast<char*>(dst.raw_data());
  for (size_t i = 0; i < idx.size(); ++i) std::memcpy(d + size_t(idx[i]) * row, s + i * row, row);
}

// A phase of batched work (the attacks, the saliency maps) under one progress bar.
struct Phase {
  io::ProgressBar bar;
  int64_t done = 0;
  Phase(const std::string& label, int64_t total, bool show) : bar(label, total, show) {}

  // f applied to rows [lo, hi) of x and y (moved to dev) in batches of kWorkBatch; the results,
  // moved to the CPU, concatenated along dim 0.
  Tensor map(const Tensor& x, const Tensor& y, Device dev, const std::string& what,
             const std::function<Tensor(const Tensor&, const Tensor&)>& f) {
    std::vector<Tensor> parts;
    for (int64_t lo = 0; lo < x.size(0); lo += kWorkBatch) {
      const int64_t hi = std::min(x.size(0), lo + kWorkBatch);
      parts.push_back(f(x.slice(lo, hi).contiguous().to(dev), y.slice(lo, hi).contiguous().to(dev))
                          .to(Device::cpu())
                          .contiguous());
      bar.update(++done, what);
    }
    return parts.size() == 1 ? parts[0] : concat(parts, 0);
  }
};

// argmax of net(x) per row, int64 CPU, in batches without autograd.
Tensor predict_all(nn::Module& net, const Tensor& x, Device dev) {
  std::vector<int64_t> pred;
  for (int64_t lo = 0; lo < x.size(0); lo += 500) {
    Tensor xb = x.slice(lo, std::min(x.size(0), lo + 500)).contiguous().to(dev);
    for (int64_t c : explain::predict(net, xb).to_vector<int64_t>()) pred.push_back(c);
  }
  return from_vector(pred, {int64_t(pred.size())});
}

// The fraction of rows with pred == want (a class index for every row).
double fraction_equal(const Tensor& pred, int64_t want) {
  std::vector<int64_t> p = pred.to_vector<int64_t>();
  return p.empty() ? 0 : double(std::count(p.begin(), p.end(), want)) / double(p.size());
}

// The mean over maps [N, H, W] of each map's maximum.
double mean_max(const Tensor& maps) {
  return mean(max(maps.reshape({maps.size(0), -1}), 1).first).item<double>();
}

// What a detector sees: the paper's [x, k s] as two channels, or one of them alone (the
// baselines that show what each carries).
enum class Input { ImageAndSaliency, ImageOnly, SaliencyOnly };

Tensor detector_input(const Tensor& images, const Tensor& sal, double k, Input in) {
  if (in == Input::ImageOnly) return images;
  Tensor s = mul(sal.unsqueeze(1), k);
  if (in == Input::SaliencyOnly) return s;
  return concat({images, s}, 1);
}

// The three detectors: JSON key, table row, module name (its weights: DIR/<module>.safetensors),
// input.
struct Variant {
  const char* key;
  const char* title;
  const char* module;
  Input input;
};
constexpr Variant kVariants[] = {
    {"detector", "image + saliency", "detector", Input::ImageAndSaliency},
    {"image_only", "image only", "detector_image_only", Input::ImageOnly},
    {"saliency_only", "saliency only", "detector_saliency_only", Input::SaliencyOnly}};

// What training left of one detector: the last epoch's mean loss and accuracy, and the time
// spent in its steps.
struct TrainStats {
  double loss = 0, accuracy = 0, seconds = 0;
};

// What one detector does on the held-out sets.
struct Detection {
  double clean_kept = 0, fgsm_caught = 0, pgd_caught = 0;  // rates on each set
  double fgsm_accuracy() const { return 0.5 * (clean_kept + fgsm_caught); }
  double pgd_accuracy() const { return 0.5 * (clean_kept + pgd_caught); }
};

// The softmax probability of "adversarial" for each row of x (a few rows: the figure).
std::vector<double> p_adversarial(nn::Module& det, const Tensor& x, Device dev) {
  NoGradGuard ng;
  Tensor p = softmax(det(x.to(dev)), 1).to(Device::cpu()).contiguous();
  std::vector<double> out;
  for (int64_t i = 0; i < p.size(0); ++i) out.push_back(double(p.data<float>()[i * 2 + 1]));
  return out;
}

// One column group of the figure: an image set with its saliency maps and predictions.
struct Shown {
  std::string name;
  Tensor images, sal;         // [S, 1, 28, 28], [S, 28, 28]
  std::vector<int64_t> pred;  // classifier
  std::vector<double> p_adv;  // two-channel detector
};

void draw_figure(const std::string& path, const std::vector<Shown>& sets, const Tensor& labels,
                 const std::vector<std::string>& names, double k, double eps) {
  const int S = int(sets[0].images.size(0)), scale = 3, img = 28 * scale;
  const int cell_w = img + 18, cell_h = img + 30, x0 = 12, y0 = 40;
  const int cols = 2 * int(sets.size());
  io::Canvas canvas(x0 + cols * cell_w + 70, y0 + S * cell_h + 8);
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "saliency |dS_c/dx| x k (k = %.4g) of clean, FGSM and PGD images, eps %.3g", k,
                eps);
  canvas.text(x0, 6, buf, io::kBlack);
  canvas.text(x0, 18, "under images: classifier's prediction (red: wrong), detector's P(adv)",
              io::kGray);
  for (size_t s = 0; s < sets.size(); ++s) {
    canvas.text(x0 + int(2 * s) * cell_w, y0 - 12, sets[s].name, io::kBlack);
    canvas.text(x0 + int(2 * s + 1) * cell_w, y0 - 12, "saliency", io::kGray);
  }
  const std::vector<int64_t> y = labels.to_vector<int64_t>();
  for (int r = 0; r < S; ++r) {
    const int top = y0 + r * cell_h;
    for (size_t s = 0; s < sets.size(); ++s) {
      const Shown& sh = sets[s];
      const int left = x0 + int(2 * s) * cell_w;
      canvas.blit(sh.images.slice(r, r + 1).squeeze(0), left, top, scale);
      Tensor m = mul(sh.sal.slice(r, r + 1).squeeze(0), k);
      canvas.blit(io::apply_colormap(clamp(m, 0.0, 1.0), io::Colormap::Inferno), left + cell_w, top,
                  scale);
      const int64_t c = sh.pred[size_t(r)];
      canvas.text(left, top + img + 3, names[size_t(c)].substr(0, 16),
                  c == y[size_t(r)] ? io::kBlack : io::kRed);
      std::snprintf(buf, sizeof buf, "P(adv) %.2f", sh.p_adv[size_t(r)]);
      canvas.text(left, top + img + 14, buf, io::kGray);
      std::snprintf(buf, sizeof buf, "max %.2f", max(m).item<double>());
      canvas.text(left + cell_w, top + img + 3, buf, io::kGray);
    }
  }
  std::snprintf(buf, sizeof buf, "%.3g", 1.0 / k);
  io::draw_colorbar(canvas, x0 + cols * cell_w + 4, y0, 12, std::min(S * cell_h - 30, 200),
                    io::Colormap::Inferno, "0", std::string(">= ") + buf);
  canvas.save_png(path);
}

nlohmann::json detection_json(const Detection& d, const TrainStats& t, int64_t in_channels,
                              const std::string& checkpoint) {
  return {{"in_channels", in_channels},
          {"fgsm_accuracy", d.fgsm_accuracy()},
          {"pgd_accuracy", d.pgd_accuracy()},
          {"clean_kept", d.clean_kept},
          {"fgsm_detected", d.fgsm_caught},
          {"pgd_detected", d.pgd_caught},
          {"train_loss", t.loss},
          {"train_accuracy", t.accuracy},
          {"train_seconds", t.seconds},
          {"checkpoint", checkpoint}};
}

nlohmann::json run_detector(const DetectorOptions& o, bool resume, bool show) {
  const auto t_start = std::chrono::steady_clock::now();
  const Device dev = resolve_device(o.c.device);
  std::string arch;
  std::shared_ptr<nn::Module> net = nets::load_classifier(o.checkpoint, &arch);
  net->to(dev);
  net->eval();
  data::Dataset train = data::load_mnist(o.c.data, data::Split::Train, o.c.train_limit);
  data::Dataset test = data::load_mnist(o.c.data, data::Split::Test, o.c.test_limit);
  NABLA_CHECK(train.size() > 0 && test.size() > 0, "explain detector: no training or test images");
  NABLA_CHECK(train.images.size(1) == 1 && train.images.size(2) == 28 && train.images.size(3) == 28,
              "explain detector: the detector needs 1x28x28 images, the data has ",
              shape_str(train.images.shape()));
  const int64_t n_train = train.size(), n_test = test.size();
  if (show)
    std::fprintf(stderr, "classifier %s (%s); %lld train / %lld test images; device %s\n",
                 o.checkpoint.c_str(), arch.c_str(), (long long)n_train, (long long)n_test,
                 dev.str().c_str());

  // ---- 1. attacks
  attack::Options fgsm_opt;
  fgsm_opt.eps = o.eps;
  fgsm_opt.early_stop = false;  // every image is perturbed, also the ones it cannot flip
  attack::Options pgd_opt = fgsm_opt;
  pgd_opt.alpha = o.eps / 4;
  pgd_opt.steps = o.pgd_steps;
  pgd_opt.random_start = true;
  const attack::Model model = [&](const Tensor& x) { return (*net)(x); };
  uint64_t attack_batch = 0;  // each batch its own random start
  auto fgsm = [&](const Tensor& x, const Tensor& y) {
    return attack::fgsm(model, x, y, fgsm_opt).x_adv;
  };
  auto pgd = [&](const Tensor& x, const Tensor& y) {
    pgd_opt.seed = o.c.seed * 1000003 + attack_batch++;
    return attack::pgd_linf(model, x, y, pgd_opt).x_adv;
  };

  std::vector<int64_t> even, odd;
  for (int64_t i = 0; i < n_train; ++i) (i % 2 ? odd : even).push_back(i);
  auto t0 = std::chrono::steady_clock::now();
  Phase attacks("attacks",
                num_batches(int64_t(even.size()), kWorkBatch) +
                    num_batches(int64_t(odd.size()), kWorkBatch) +
                    2 * num_batches(n_test, kWorkBatch),
                show);
  Tensor adv_train = empty(train.images.shape());
  scatter_rows(adv_train, even,
               attacks.map(gather_rows(train.images, even), gather_rows(train.labels, even), dev,
                           "FGSM train (even)", fgsm));
  if (!odd.empty())
    scatter_rows(adv_train, odd,
                 attacks.map(gather_rows(train.images, odd), gather_rows(train.labels, odd), dev,
                             "PGD train (odd)", pgd));
  Tensor fgsm_test = attacks.map(test.images, test.labels, dev, "FGSM test", fgsm);
  Tensor pgd_test = attacks.map(test.images, test.labels, dev, "PGD test", pgd);
  attacks.bar.finish();
  const double attack_seconds = seconds_since(t0);

  // ---- 2. saliency of the predicted class, clean and adversarial
  t0 = std::chrono::steady_clock::now();
  Phase saliency("saliency",
                 2 * num_batches(n_train, kWorkBatch) + 3 * num_batches(n_test, kWorkBatch), show);
  auto sal = [&](const Tensor& x, const Tensor&) { return explain::saliency(*net, x); };
  Tensor sal_train = saliency.map(train.images, train.labels, dev, "clean train", sal);
  Tensor sal_adv_train = saliency.map(adv_train, train.labels, dev, "adversarial train", sal);
  Tensor sal_test = saliency.map(test.images, test.labels, dev, "clean test", sal);
  Tensor sal_fgsm = saliency.map(fgsm_test, test.labels, dev, "FGSM test", sal);
  Tensor sal_pgd = saliency.map(pgd_test, test.labels, dev, "PGD test", sal);
  saliency.bar.finish();
  const double saliency_seconds = seconds_since(t0);
  const double clean_peak = mean_max(sal_train);
  NABLA_CHECK(clean_peak > 0 && std::isfinite(clean_peak),
              "explain detector: the classifier's saliency is ", clean_peak,
              " on every clean training image: is the checkpoint trained?");
  const double k = 1.0 / clean_peak;

  // ---- 3. train the detectors on the same examples in the same order, from the same seed
  std::vector<int64_t> labels(static_cast<size_t>(2 * n_train), 0);
  std::fill(labels.begin() + n_train, labels.end(), 1);
  const Tensor train_labels = from_vector(labels, {2 * n_train});
  const Tensor train_images = concat({train.images, adv_train}, 0);
  const Tensor train_sal = concat({sal_train, sal_adv_train}, 0);
  // In lockstep: every step trains each detector on the same batch of its own input, so the
  // three see the same examples in the same order (each loader's order depends on the seed
  // only) and the run checkpoints as one.
  std::vector<std::unique_ptr<nets::SaliencyDetector>> dets;
  std::vector<std::unique_ptr<optim::Optimizer>> opts;
  std::vector<data::DataLoader> loaders;
  std::vector<TrainStats> stats(std::size(kVariants));
  for (const Variant& v : kVariants) {
    const data::Dataset ds{detector_input(train_images, train_sal, k, v.input), train_labels, {}};
    Generator gen(o.c.seed);
    dets.push_back(std::make_unique<nets::SaliencyDetector>(ds.images.size(1), &gen));
    dets.back()->to(dev);
    opts.push_back(optim::make_optimizer("adam", dets.back()->parameters(), {.lr = o.c.lr}));
    loaders.emplace_back(ds, o.c.batch, /*shuffle=*/true, o.c.seed);
  }
  std::vector<std::string> columns = {"epoch"};
  std::vector<train::CurvePanel> panels;
  for (const Variant& v : kVariants) {
    columns.push_back(std::string("loss_") + v.key);
    columns.push_back(std::string("acc_") + v.key);
  }
  for (const char* what : {"loss", "acc"}) {
    train::CurvePanel p{std::string(what) + " (training)", "epoch", what, {}};
    for (size_t i = 0; i < std::size(kVariants); ++i)
      p.curves.push_back({std::string(what) + "_" + kVariants[i].key + ":running",
                          kVariants[i].title, io::palette_color(i)});
    panels.push_back(p);
  }
  train::Trainer trainer({.name = "explain detector",
                          .out = o.c.out,
                          .epochs = o.c.epochs,
                          .steps_per_epoch = loaders[0].num_batches(),
                          .checkpoint_every = o.c.checkpoint_every,
                          .resume = resume,
                          .show = show},
                         columns, panels);
  for (size_t i = 0; i < dets.size(); ++i) {
    trainer.add_module(kVariants[i].module, *dets[i]);
    trainer.add_optimizer(std::string("adam_") + kVariants[i].key, *opts[i]);
  }
  trainer.set_options(to_json(o));
  trainer.set_metadata([&] {
    std::map<std::string, std::map<std::string, std::string>> meta;
    for (size_t i = 0; i < dets.size(); ++i) {
      meta[kVariants[i].module] = {{"classifier", o.checkpoint},
                                   {"eps", std::to_string(o.eps)},
                                   {"pgd_steps", std::to_string(o.pgd_steps)},
                                   {"seed", std::to_string(o.c.seed)},
                                   {"saliency_scale", std::to_string(k)},
                                   {"input", kVariants[i].title},
                                   {"in_channels", std::to_string(dets[i]->in_channels())}};
    }
    return meta;
  });
  trainer.fit(
      [&](int64_t epoch) {
        for (size_t i = 0; i < dets.size(); ++i) {
          dets[i]->train();
          loaders[i].set_epoch(epoch - 1);
        }
      },
      [&](const train::StepInfo& st) {
        train::StepResult r;
        for (size_t i = 0; i < dets.size(); ++i) {
          const auto t = std::chrono::steady_clock::now();
          data::Batch b = loaders[i].batch(st.batch);
          Tensor logits = (*dets[i])(b["image"].to(dev));
          Tensor loss = cross_entropy(logits, b["label"].to(dev));
          opts[i]->zero_grad();
          loss.backward();
          opts[i]->step();
          r.metrics.push_back({std::string("loss_") + kVariants[i].key, loss.item<double>()});
          r.metrics.push_back(
              {std::string("acc_") + kVariants[i].key, metrics::accuracy(logits, b["label"])});
          r.n = b["label"].size(0);
          stats[i].seconds += seconds_since(t);
        }
        return r;
      },
      [&](const train::EpochStats& st) {
        train::Record rec{{"epoch", double(st.epoch)}};
        for (const auto& c : columns)
          if (c != "epoch") rec[c] = st.mean.at(c);
        return rec;
      });
  // The last epoch's means, from the log (also right after a resume that had nothing left to do).
  const nlohmann::json last = trainer.log().records().back();
  double train_seconds = 0;
  for (size_t i = 0; i < dets.size(); ++i) {
    dets[i]->eval();
    stats[i].loss = last[std::string("loss_") + kVariants[i].key].get<double>();
    stats[i].accuracy = last[std::string("acc_") + kVariants[i].key].get<double>();
    train_seconds += stats[i].seconds;
  }
  nets::SaliencyDetector& det = *dets[0];

  // ---- 4. evaluation on the held-out test images
  t0 = std::chrono::steady_clock::now();
  std::vector<Detection> detections;
  for (size_t i = 0; i < dets.size(); ++i) {
    const Input in = kVariants[i].input;
    Detection r;
    r.clean_kept =
        fraction_equal(predict_all(*dets[i], detector_input(test.images, sal_test, k, in), dev), 0);
    r.fgsm_caught =
        fraction_equal(predict_all(*dets[i], detector_input(fgsm_test, sal_fgsm, k, in), dev), 1);
    r.pgd_caught =
        fraction_equal(predict_all(*dets[i], detector_input(pgd_test, sal_pgd, k, in), dev), 1);
    detections.push_back(r);
  }
  const Tensor pred_clean = predict_all(*net, test.images, dev),
               pred_fgsm = predict_all(*net, fgsm_test, dev),
               pred_pgd = predict_all(*net, pgd_test, dev);
  const double eval_seconds = seconds_since(t0);

  // ---- outputs
  nabla::io::create_dirs(o.c.out, "the output folder (--out)");
  const std::string report_path = o.c.out + "/report.json", fig_path = o.c.out + "/examples.png";
  nlohmann::json detectors_json;
  for (size_t i = 0; i < dets.size(); ++i) {
    const Variant& v = kVariants[i];
    const std::string path = trainer.checkpoint().module_path(v.module);
    detectors_json[v.key] = detection_json(detections[i], stats[i], dets[i]->in_channels(), path);
    detectors_json[v.key]["input"] = v.title;
  }

  const int64_t S = std::min(o.show, n_test);
  if (S > 0) {
    auto shown = [&](const std::string& name, const Tensor& x, const Tensor& s, const Tensor& p) {
      Tensor xs = x.slice(0, S).contiguous(), ss = s.slice(0, S).contiguous();
      std::vector<int64_t> all = p.to_vector<int64_t>();
      return Shown{name, xs, ss, std::vector<int64_t>(all.begin(), all.begin() + S),
                   p_adversarial(det, detector_input(xs, ss, k, Input::ImageAndSaliency), dev)};
    };
    const std::string pgd_name = "PGD (" + std::to_string(o.pgd_steps) + " steps)";
    draw_figure(fig_path,
                {shown("clean", test.images, sal_test, pred_clean),
                 shown("FGSM", fgsm_test, sal_fgsm, pred_fgsm),
                 shown(pgd_name, pgd_test, sal_pgd, pred_pgd)},
                test.labels.slice(0, S), test.class_names, k, o.eps);
  }

  nlohmann::json j = {{"checkpoint", o.checkpoint},
                      {"classifier_arch", arch},
                      {"device", dev.str()},
                      {"train_n", n_train},
                      {"test_n", n_test},
                      {"eps", o.eps},
                      {"pgd_steps", o.pgd_steps},
                      {"pgd_alpha", pgd_opt.alpha},
                      {"pgd_random_start", pgd_opt.random_start},
                      {"epochs", o.c.epochs},
                      {"batch", o.c.batch},
                      {"lr", o.c.lr},
                      {"seed", o.c.seed},
                      {"saliency_scale", k},
                      {"mean_max_saliency",
                       {{"clean_train", clean_peak},
                        {"clean_test", mean_max(sal_test)},
                        {"fgsm_test", mean_max(sal_fgsm)},
                        {"pgd_test", mean_max(sal_pgd)}}},
                      {"classifier",
                       {{"clean_accuracy", metrics::accuracy(pred_clean, test.labels)},
                        {"fgsm_accuracy", metrics::accuracy(pred_fgsm, test.labels)},
                        {"pgd_accuracy", metrics::accuracy(pred_pgd, test.labels)}}},
                      {"detector", detectors_json["detector"]},
                      {"image_only", detectors_json["image_only"]},
                      {"saliency_only", detectors_json["saliency_only"]},
                      {"seconds",
                       {{"attacks", attack_seconds},
                        {"saliency", saliency_seconds},
                        {"train", train_seconds},
                        {"eval", eval_seconds},
                        {"total", seconds_since(t_start)}}},
                      {"report", report_path},
                      {"figure", S > 0 ? fig_path : ""}};
  std::ofstream(report_path) << j.dump(2) << "\n";
  return j;
}

void print_text(const nlohmann::json& j) {
  const auto& c = j["classifier"];
  std::printf("classifier on %lld test images (eps %.4g; PGD %d steps of %.4g, random start)\n",
              (long long)j["test_n"].get<int64_t>(), j["eps"].get<double>(),
              j["pgd_steps"].get<int>(), j["pgd_alpha"].get<double>());
  std::printf("  accuracy  clean %.4f   FGSM %.4f   PGD %.4f\n", c["clean_accuracy"].get<double>(),
              c["fgsm_accuracy"].get<double>(), c["pgd_accuracy"].get<double>());
  const auto& m = j["mean_max_saliency"];
  std::printf(
      "saliency scale k = 1 / %.4g = %.4g (mean peak of |dS/dx|: clean %.4g, FGSM %.4g, "
      "PGD %.4g)\n",
      m["clean_train"].get<double>(), j["saliency_scale"].get<double>(),
      m["clean_test"].get<double>(), m["fgsm_test"].get<double>(), m["pgd_test"].get<double>());
  std::printf(
      "\ndetectors trained on %lld clean + %lld adversarial images, %lld epochs; "
      "tested on %lld clean + %lld FGSM / PGD\n",
      (long long)j["train_n"].get<int64_t>(), (long long)j["train_n"].get<int64_t>(),
      (long long)j["epochs"].get<int64_t>(), (long long)j["test_n"].get<int64_t>(),
      (long long)j["test_n"].get<int64_t>());
  std::printf("  %-18s %11s %11s %11s %11s %11s\n", "input", "clean+FGSM", "clean+PGD",
              "clean kept", "FGSM caught", "PGD caught");
  for (const Variant& v : kVariants) {
    const auto& d = j[v.key];
    std::printf("  %-18s %11.4f %11.4f %11.4f %11.4f %11.4f\n", v.title,
                d["fgsm_accuracy"].get<double>(), d["pgd_accuracy"].get<double>(),
                d["clean_kept"].get<double>(), d["fgsm_detected"].get<double>(),
                d["pgd_detected"].get<double>());
  }
  const auto& s = j["seconds"];
  std::printf("\ntime %.1f s (attacks %.1f, saliency %.1f, training %.1f) on %s\n",
              s["total"].get<double>(), s["attacks"].get<double>(), s["saliency"].get<double>(),
              s["train"].get<double>(), j["device"].get<std::string>().c_str());
  std::printf("wrote");
  for (const Variant& v : kVariants)
    std::printf(" %s,", j[v.key]["checkpoint"].get<std::string>().c_str());
  std::printf(" %s", j["report"].get<std::string>().c_str());
  if (!j["figure"].get<std::string>().empty())
    std::printf(", %s", j["figure"].get<std::string>().c_str());
  std::printf("\n");
}

}  // namespace

void register_explain_detector(CLI::App& explain) {
  auto o = std::make_shared<DetectorOptions>();
  CLI::App* d = explain.add_subcommand(
      "detector",
      "Detect adversarial examples from saliency maps (Zhang et al. 2018). Crafts FGSM and PGD\n"
      "images against a classifier checkpoint, computes the classifier's saliency |dS_c/dx| of\n"
      "its predicted class on clean and adversarial images, and trains a small CNN on\n"
      "[image, k * saliency] to tell clean (0) from adversarial (1). Image-only and\n"
      "saliency-only detectors trained on the same examples show what each input carries.\n"
      "Reports detection accuracy on held-out clean+FGSM and clean+PGD test images, and\n"
      "writes DIR/detector{,_image_only,_saliency_only}.safetensors, DIR/report.json and\n"
      "DIR/examples.png (clean, FGSM and PGD images with their saliency maps).");
  d->add_option("--checkpoint", o->checkpoint,
                "classifier weights (.safetensors), the attacked model (required unless --resume)")
      ->check(CLI::ExistingFile);
  d->add_option("--eps", o->eps, "L-inf budget of both attacks, in pixel units ([0, 1] images)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  d->add_option("--pgd-steps", o->pgd_steps,
                "PGD iterations (step eps/4, random start in the eps-ball)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  d->add_option("--show", o->show, "test images in examples.png (0: no figure)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(0), int64_t(32)));
  o->c.train_limit = 5000;
  o->c.test_limit = 1000;
  o->c.epochs = 3;
  o->c.batch = 64;
  o->c.lr = 1e-3;
  o->c.out = "runs/detector";
  add_common_flags(
      d, o->c, kTrainingFlags,
      {{"--train-limit",
        "first N training images: each gives a clean example and an adversarial one (FGSM for "
        "even indices, PGD for odd; 0: all)"},
       {"--test-limit", "first N test images: each is tested clean, as FGSM and as PGD (0: all)"},
       {"--epochs", "passes of each detector over its training set"},
       {"--batch", "detector mini-batch size"},
       {"--lr", "Adam learning rate of the detectors"},
       {"--seed", "seed of the detectors' weights, the shuffling and PGD's starts"},
       {"--resume",
        "continue the run checkpointed in DIR: the attacks and saliency maps are recomputed (they "
        "are deterministic), then the detectors' training goes on from the last checkpoint"},
       {"--json",
        "print one JSON object on stdout (classifier and detector accuracies, k, timings, paths), "
        "no progress bars"}});
  d->callback([o, d] {
    NABLA_CHECK(!o->checkpoint.empty() || !o->c.resume.empty(),
                "explain detector: --checkpoint is required (see --help)");
    DetectorOptions run = *o;
    from_json(resume_options(*d, o->c, to_json(*o)), run);
    apply_threads(run.c);
    print_report(o->c, run_detector(run, !o->c.resume.empty(), o->c.show_progress()), print_text);
  });
}

}  // namespace nabla::cli
