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
// Writes DIR/saliency.png (inputs on top, saliency heat maps below), DIR/saliency.npy
// ([n, 16, 16] float32) and DIR/report.json.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <stb/stb_image_write.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <nabla/nabla.h>

#include "commands.h"

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

struct Net {
  Tensor w1, b1, w2, b2, w3, b3;
  explicit Net(Generator& gen) {
    // He initialisation for the relu layers, 1/sqrt(fan_in) for the linear head.
    w1 = randn({8, 1, 3, 3}, DType::Float32, Device::cpu(), &gen, 0, std::sqrt(2.0 / 9));
    b1 = zeros({8});
    w2 = randn({16, 8, 3, 3}, DType::Float32, Device::cpu(), &gen, 0, std::sqrt(2.0 / 72));
    b2 = zeros({16});
    w3 = randn({2, 16}, DType::Float32, Device::cpu(), &gen, 0, std::sqrt(1.0 / 16));
    b3 = zeros({2});
    for (Tensor* p : params()) p->set_requires_grad(true);
  }
  std::vector<Tensor*> params() { return {&w1, &b1, &w2, &b2, &w3, &b3}; }
  Tensor operator()(const Tensor& x) const {
    Tensor h = relu(conv2d(relu(conv2d(x, w1, b1, 1, 1)), w2, b2, 1, 1));
    // Global max-pool: each feature map reports its strongest response, wherever it is.
    Tensor pooled = max(h.flatten(2), 2).first;
    return linear(pooled, w3, b3);
  }
};

double accuracy(const Tensor& logits, const Tensor& y) {
  std::vector<int64_t> p = argmax(logits, 1).to_vector<int64_t>(), t = y.to_vector<int64_t>();
  int64_t hit = 0;
  for (size_t i = 0; i < p.size(); ++i) hit += p[i] == t[i];
  return double(hit) / double(p.size());
}

// Two rows of n tiles: the images (grey) and their saliency maps (hot, each scaled to its max).
void write_png(const std::string& path, const Tensor& images, const Tensor& sal, int64_t n) {
  const int64_t zoom = 8, tile = kSide * zoom, gap = 4;
  const int64_t W = n * tile + (n + 1) * gap, H = 2 * tile + 3 * gap;
  std::vector<unsigned char> rgb(size_t(W * H * 3), 40);
  std::vector<float> im = images.to_vector<float>(), sm = sal.to_vector<float>();
  for (int64_t k = 0; k < n; ++k) {
    float smax = 1e-12f;
    for (int64_t i = 0; i < kSide * kSide; ++i)
      smax = std::max(smax, sm[size_t(k * kSide * kSide + i)]);
    for (int64_t row = 0; row < 2; ++row)
      for (int64_t i = 0; i < tile; ++i)
        for (int64_t j = 0; j < tile; ++j) {
          int64_t src = k * kSide * kSide + (i / zoom) * kSide + j / zoom;
          int64_t X = gap + k * (tile + gap) + j, Y = gap + row * (tile + gap) + i;
          unsigned char* px = &rgb[size_t((Y * W + X) * 3)];
          if (row == 0)
            px[0] = px[1] = px[2] = (unsigned char)(255 * std::clamp(im[size_t(src)], 0.0f, 1.0f));
          else {
            const io::Rgb c = io::colormap(sm[size_t(src)] / smax, io::Colormap::Hot);
            px[0] = c.r, px[1] = c.g, px[2] = c.b;
          }
        }
  }
  if (!stbi_write_png(path.c_str(), int(W), int(H), 3, rgb.data(), int(W * 3)))
    throw Error("input_gradient: cannot write " + path);
}

struct SquaresOptions {
  std::string out = "squares_out";
  int64_t steps = 400, batch = 32, n_show = 8, n_test = 256;
  double lr = 0.1;
  uint64_t seed = 0;
  bool json = false;
};

void run_squares(const SquaresOptions& o);

}  // namespace

void nabla::cli::register_squares(CLI::App& parent) {
  auto opt = std::make_shared<SquaresOptions>();
  CLI::App* app = parent.add_subcommand(
      "squares",
      "Warm-up: train a tiny CNN to tell squares from rings in noise, then look at its input\n"
      "gradient (saliency): how much of it falls on the shape, and no weight-gradient kernel\n"
      "run. Writes DIR/saliency.png, DIR/saliency.npy and DIR/report.json.");
  std::string& out = opt->out;
  int64_t &steps = opt->steps, &batch = opt->batch, &n_show = opt->n_show;
  double& lr = opt->lr;
  uint64_t& seed = opt->seed;
  bool& json = opt->json;
  app->add_option("--out", out, "output folder")->capture_default_str();
  app->add_option("--steps", steps, "SGD steps")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app->add_option("--batch", batch, "batch size")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app->add_option("--lr", lr, "learning rate")
      ->capture_default_str()
      ->check(CLI::Range(1e-6, 10.0));
  app->add_option("--seed", seed, "seed of the Philox generator")->capture_default_str();
  app->add_option("--show", n_show, "images in the PNG")
      ->capture_default_str()
      ->check(CLI::Range(1, 32));
  app->add_flag("--json", json, "print the report as one JSON object instead of text");
  app->callback([opt] { run_squares(*opt); });
}

namespace {

void run_squares(const SquaresOptions& o) {
  const std::string& out = o.out;
  const int64_t steps = o.steps, batch = o.batch, n_show = o.n_show, n_test = o.n_test;
  const double lr = o.lr;
  const bool json = o.json;
  {
    std::filesystem::create_directories(out);
    Generator gen(o.seed);
    Net net(gen);
    double loss_v = 0, acc_v = 0;
    auto t0 = std::chrono::steady_clock::now();
    double loss_sum = 0, acc_sum = 0;  // over the steps since the last progress line
    int64_t window = 0;
    for (int64_t step = 1; step <= steps; ++step) {
      Batch b = make_batch(batch, gen);
      Tensor logits = net(b.x);
      Tensor loss = cross_entropy(logits, b.y);
      loss.backward();
      {
        NoGradGuard ng;  // plain SGD: p <- p - lr * dL/dp
        for (Tensor* p : net.params()) {
          copy_(*p, sub(*p, mul(p->grad(), lr)));
          p->zero_grad();
        }
      }
      loss_sum += loss.item<double>();
      acc_sum += accuracy(logits, b.y);
      ++window;
      if (step % 20 == 0 || step == steps) {
        loss_v = loss_sum / double(window);
        acc_v = acc_sum / double(window);
        loss_sum = acc_sum = 0;
        window = 0;
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        int bar = int(30 * step / steps);
        if (!json)
          std::fprintf(stderr, "\rtrain [%-30s] %4lld/%lld  loss %.4f  acc %.3f  %.0f img/s",
                       std::string(size_t(bar), '#').c_str(), (long long)step, (long long)steps,
                       loss_v, acc_v, double(step * batch) / secs);
      }
    }
    if (!json) std::fprintf(stderr, "\n");

    // Held-out images: accuracy, then the saliency of the predicted class.
    Batch test = make_batch(n_test, gen);
    Tensor x = test.x.detach().set_requires_grad(true);
    Tensor logits = net(x);
    double test_acc = accuracy(logits, test.y);
    Tensor pred = argmax(logits, 1);
    // S_c = sum_b logits[b, pred_b]: a one-hot mask picks each image's predicted logit.
    Tensor onehot = zeros({n_test, 2});
    for (int64_t b = 0; b < n_test; ++b) onehot.data<float>()[b * 2 + pred.data<int64_t>()[b]] = 1;
    Tensor score = sum(mul(logits, onehot));
    reset_kernel_counts();
    Tensor dx = grad({score}, {x})[0];
    int64_t weight_kernels = kernel_count("conv2d_backward_weight") +
                             kernel_count("linear_backward_weight") +
                             kernel_count("linear_backward_bias");
    Tensor sal = abs(dx).reshape({n_test, kSide, kSide});
    // Fraction of saliency mass on the shape's 4x4 box, against the box's share of the area.
    double on_blob = sum(mul(sal, test.mask)).item<double>() / sum(sal).item<double>();
    double area = double(kBlob * kBlob) / double(kSide * kSide);

    write_png(out + "/saliency.png", test.x.slice(0, n_show), sal.slice(0, n_show), n_show);
    save_npy(out + "/saliency.npy", sal.slice(0, n_show));
    nlohmann::json report = {{"steps", steps},
                             {"train_loss", loss_v},
                             {"test_accuracy", test_acc},
                             {"n_test", n_test},
                             {"saliency_on_shape", on_blob},
                             {"shape_area_fraction", area},
                             {"weight_gradient_kernels_in_grad_x", weight_kernels},
                             {"png", out + "/saliency.png"},
                             {"npy", out + "/saliency.npy"}};
    std::ofstream(out + "/report.json") << report.dump(2) << "\n";
    if (json) {
      std::cout << report.dump() << "\n";
    } else {
      std::printf("test accuracy        %.3f on %lld held-out images\n", test_acc,
                  (long long)n_test);
      std::printf("saliency on the shape %.1f%% of |dS/dx| mass (its box is %.1f%% of the image)\n",
                  100 * on_blob, 100 * area);
      std::printf("weight-gradient kernels run by grad(S, {x}): %lld\n", (long long)weight_kernels);
      std::printf("wrote %s/saliency.png, %s/saliency.npy, %s/report.json\n", out.c_str(),
                  out.c_str(), out.c_str());
    }
  }
}

}  // namespace
