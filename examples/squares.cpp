// nabla squares: the input-gradient warm-up (the first demo of the engine).
//
// Trains a tiny CNN (two 3x3 convs with relu, a global max-pool, a linear head) for a few
// hundred SGD steps on a synthetic task: 16x16 noise images holding one bright 4x4 shape at a
// random place, class 0 for a filled square, class 1 for a hollow ring. Then it takes the
// input gradient of the predicted class score, dS_c/dx (vanilla saliency), for held-out
// images, and measures how much of the saliency mass falls on the shape, the only thing that
// decides the class.
// Only dS/dx is asked of autograd, so no weight-gradient kernel runs; the program counts them.
//
// Training runs on engine/train (progress bar, DIR/metrics.csv and curves.png, checkpoints,
// --resume). Writes DIR/saliency.png (inputs on top, saliency heat maps below),
// DIR/saliency.npy ([n, 16, 16] float32) and DIR/report.json.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <nabla/io/files.h>
#include <nabla/io/heatmap.h>
#include <nabla/metrics/classification.h>
#include <nabla/nabla.h>
#include <nabla/optim/factory.h>
#include <nabla/train/trainer.h>

#include "common.h"

using namespace nabla;

namespace {

constexpr int64_t kSide = 16, kBlob = 4;

struct Batch {
  Tensor x, y, mask;  // images [B,1,16,16], labels [B] int64, blob masks [B,16,16]
};

// Noise in [0, 0.3) plus one 4x4 shape of 0.9 at a random place: a filled square (label 0)
// or a ring, the square without its 2x2 centre (label 1).
Batch make_batch(int64_t B, Generator& gen) {
  Tensor x = rand({B, 1, kSide, kSide}, DType::Float32, Device::cpu(), &gen, 0.0, 0.3);
  Tensor pos = rand({B, 3}, DType::Float64, Device::cpu(), &gen);
  Tensor y = empty({B}, DType::Int64);
  Tensor mask = zeros({B, kSide, kSide});
  float* px = x.data<float>();
  float* pm = mask.data<float>();
  const double* pp = pos.data<double>();
  for (int64_t b = 0; b < B; ++b) {
    int64_t label = pp[3 * b] < 0.5 ? 0 : 1;
    int64_t col = int64_t(pp[3 * b + 1] * double(kSide - kBlob + 1));
    int64_t row = int64_t(pp[3 * b + 2] * double(kSide - kBlob + 1));
    for (int64_t i = row; i < row + kBlob; ++i)
      for (int64_t j = col; j < col + kBlob; ++j) {
        bool centre = i > row && i < row + kBlob - 1 && j > col && j < col + kBlob - 1;
        if (!(label == 1 && centre)) px[(b * kSide + i) * kSide + j] = 0.9f;
        pm[(b * kSide + i) * kSide + j] = 1.0f;
      }
    y.data<int64_t>()[b] = label;
  }
  return {x, y, mask};
}

// conv 1->8, relu, conv 8->16, relu, global max-pool (each feature map reports its strongest
// response, wherever it is), linear 16->2. He initialisation for the relu layers, 1/sqrt(fan_in)
// for the head, from the run's generator.
struct SquaresNet : nn::Module {
  Tensor w1, b1, w2, b2, w3, b3;
  explicit SquaresNet(Generator& gen) : Module("SquaresNet") {
    w1 = randn({8, 1, 3, 3}, DType::Float32, Device::cpu(), &gen, 0, std::sqrt(2.0 / 9));
    b1 = zeros({8});
    w2 = randn({16, 8, 3, 3}, DType::Float32, Device::cpu(), &gen, 0, std::sqrt(2.0 / 72));
    b2 = zeros({16});
    w3 = randn({2, 16}, DType::Float32, Device::cpu(), &gen, 0, std::sqrt(1.0 / 16));
    b3 = zeros({2});
    register_parameter("conv1_weight", &w1);
    register_parameter("conv1_bias", &b1);
    register_parameter("conv2_weight", &w2);
    register_parameter("conv2_bias", &b2);
    register_parameter("fc_weight", &w3);
    register_parameter("fc_bias", &b3);
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = relu(conv2d(relu(conv2d(x, w1, b1, 1, 1)), w2, b2, 1, 1));
    return linear(max(h.flatten(2), 2).first, w3, b3);
  }
};

struct SquaresOptions {
  cli::Common c;
  int64_t steps = 400, n_show = 8, n_test = 256;
};

constexpr unsigned kSquaresFlags = cli::kDevice | cli::kOut | cli::kJson | cli::kQuiet |
                                   cli::kSeed | cli::kBatch | cli::kLr | cli::kResume |
                                   cli::kCheckpointEvery | cli::kThreads;

nlohmann::json to_json(const SquaresOptions& o) {
  nlohmann::json j = cli::run_options(o.c, kSquaresFlags);
  j["steps"] = o.steps;
  return j;
}

nlohmann::json run_squares(SquaresOptions o);

}  // namespace

void nabla::cli::register_squares(CLI::App& parent) {
  auto o = std::make_shared<SquaresOptions>();
  o->c.out = "squares_out";
  o->c.batch = 32;
  o->c.lr = 0.1;
  CLI::App* app = parent.add_subcommand(
      "squares",
      "Warm-up: train a tiny CNN to tell squares from rings in noise, then look at its input\n"
      "gradient (saliency): how much of it falls on the shape, and no weight-gradient kernel\n"
      "run. Writes DIR/saliency.png, DIR/saliency.npy, DIR/report.json and the run log\n"
      "(DIR/metrics.csv, DIR/curves.png, checkpoints for --resume).");
  app->add_option("--steps", o->steps, "SGD steps")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app->add_option("--show", o->n_show, "images in the PNG")
      ->capture_default_str()
      ->check(CLI::Range(1, 32));
  add_common_flags(app, o->c, kSquaresFlags,
                   {{"--seed", "seed of the Philox generator (weights and every batch)"},
                    {"--lr", "SGD learning rate"},
                    {"--json", "print the report as one JSON object instead of text"}});
  app->callback([o, app] {
    SquaresOptions run = *o;
    const nlohmann::json saved = resume_options(*app, o->c, to_json(*o));
    read_run_options(saved, run.c, kSquaresFlags);
    run.steps = saved.at("steps");
    apply_threads(run.c);
    const nlohmann::json report = run_squares(run);
    print_report(o->c, report, [](const nlohmann::json& r) {
      std::printf("test accuracy        %.3f on %lld held-out images\n",
                  r["test_accuracy"].get<double>(), (long long)r["n_test"].get<int64_t>());
      std::printf("saliency on the shape %.1f%% of |dS/dx| mass (its box is %.1f%% of the image)\n",
                  100 * r["saliency_on_shape"].get<double>(),
                  100 * r["shape_area_fraction"].get<double>());
      std::printf("weight-gradient kernels run by grad(S, {x}): %lld\n",
                  (long long)r["weight_gradient_kernels_in_grad_x"].get<int64_t>());
      std::printf("wrote %s, %s, %s\n", r["png"].get<std::string>().c_str(),
                  r["npy"].get<std::string>().c_str(), r["report"].get<std::string>().c_str());
    });
  });
}

namespace {

nlohmann::json run_squares(SquaresOptions o) {
  const std::string& out = o.c.out;
  nabla::io::create_dirs(out, "the output folder (--out)");
  const Device dev = cli::resolve_device(o.c.device);
  Generator gen(o.c.seed);
  SquaresNet net(gen);
  net.to(dev);
  auto opt = optim::make_optimizer("sgd", net.parameters(), {.lr = o.c.lr});
  train::Trainer trainer({.name = "squares",
                          .out = out,
                          .epochs = 1,
                          .steps_per_epoch = o.steps,
                          .checkpoint_every = o.c.checkpoint_every,
                          .resume = !o.c.resume.empty(),
                          .show = o.c.show_progress()},
                         {"epoch", "train_loss", "train_acc"},
                         {{"loss", "epoch", "cross-entropy", {{"loss:running", "train (running)"}}},
                          {"accuracy", "epoch", "accuracy", {{"acc:running", "train (running)"}}}});
  trainer.add_module("model", net);
  trainer.add_optimizer("sgd", *opt);
  trainer.add_generator("data", gen);  // the batches are drawn from it, step after step
  trainer.set_options(to_json(o));
  trainer.fit([](int64_t) {},
              [&](const train::StepInfo&) {
                Batch b = make_batch(o.c.batch, gen);
                Tensor logits = net(b.x.to(dev));
                Tensor loss = cross_entropy(logits, b.y.to(dev));
                opt->zero_grad();
                loss.backward();
                opt->step();
                return train::StepResult{
                    {{"loss", loss.item<double>()}, {"acc", metrics::accuracy(logits, b.y)}},
                    o.c.batch};
              },
              [&](const train::EpochStats& st) {
                return train::Record{{"epoch", double(st.epoch)},
                                     {"train_loss", st.mean.at("loss")},
                                     {"train_acc", st.mean.at("acc")}};
              });
  const nlohmann::json epoch = trainer.log().records().back();
  // The mean loss of the last stretch of steps (the last point of the running curve).
  const double last_loss = trainer.log().state()["points"]["loss:running"][1].back();

  // Held-out images: accuracy, then the saliency of the predicted class.
  Batch test = make_batch(o.n_test, gen);
  Tensor x = test.x.to(dev).detach().set_requires_grad(true);
  Tensor logits = net(x);
  const double test_acc = metrics::accuracy(logits, test.y);
  Tensor pred = argmax(logits, 1).to(Device::cpu());
  // S_c = sum_b logits[b, pred_b]: a one-hot mask picks each image's predicted logit.
  Tensor onehot = zeros({o.n_test, 2});
  for (int64_t b = 0; b < o.n_test; ++b) onehot.data<float>()[b * 2 + pred.data<int64_t>()[b]] = 1;
  Tensor score = sum(mul(logits, onehot.to(dev)));
  reset_kernel_counts();
  Tensor dx = grad({score}, {x})[0];
  const int64_t weight_kernels = kernel_count("conv2d_backward_weight") +
                                 kernel_count("linear_backward_weight") +
                                 kernel_count("linear_backward_bias");
  Tensor sal = abs(dx).reshape({o.n_test, kSide, kSide}).to(Device::cpu());
  // Fraction of saliency mass on the shape's 4x4 box, against the box's share of the area.
  const double on_blob = sum(mul(sal, test.mask)).item<double>() / sum(sal).item<double>();
  const double area = double(kBlob * kBlob) / double(kSide * kSide);

  // Two rows of tiles: the images (gray) and their saliency maps (hot, each scaled to its max).
  const int64_t n = o.n_show;
  Tensor shown = test.x.slice(0, n).contiguous();
  Tensor heat = io::apply_colormap(io::normalize_map(sal.slice(0, n)), io::Colormap::Hot);
  io::save_image_grid(out + "/saliency.png", concat({concat({shown, shown, shown}, 1), heat}, 0), n,
                      4, 8);
  save_npy(out + "/saliency.npy", sal.slice(0, n));
  nlohmann::json report = {{"steps", o.steps},
                           {"train_loss", last_loss},
                           {"train_loss_mean", epoch["train_loss"]},
                           {"test_accuracy", test_acc},
                           {"n_test", o.n_test},
                           {"saliency_on_shape", on_blob},
                           {"shape_area_fraction", area},
                           {"weight_gradient_kernels_in_grad_x", weight_kernels},
                           {"png", out + "/saliency.png"},
                           {"npy", out + "/saliency.npy"},
                           {"report", out + "/report.json"},
                           {"metrics", trainer.log().csv_path()},
                           {"curves", trainer.log().curves_path()}};
  std::ofstream(out + "/report.json") << report.dump(2) << "\n";
  return report;
}

}  // namespace
