// The `nabla` command line: each subcommand lives in its own file and registers itself on the
// parent app; main.cpp wires them together. Functions shared between subcommands (training and
// evaluating the classifier, which `demo` reuses) are declared here.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include <nabla/attack/attack.h>
#include <nabla/data/mnist.h>
#include <nabla/nn/module.h>
#include <nabla/tensor.h>

namespace nabla::cli {

// "auto" (CUDA when this build has it and a GPU is present, else the CPU), "cpu", "cuda",
// "cuda:N". Errors name what is missing (no CUDA backend in this build, no GPU found).
Device resolve_device(const std::string& name);

// Where the data comes from: --data DIR, or the Debian package's Fashion-MNIST.
struct DataOptions {
  std::string dir;                          // empty: data::default_fashion_mnist_dir()
  int64_t train_limit = 0, test_limit = 0;  // > 0: first N samples only (quick runs, tests)
};
data::Dataset load_split(const DataOptions& d, data::Split split);

// ---- classify train ----
struct TrainConfig {
  int64_t epochs = 3, batch = 64;
  double lr = 0;  // 0: the optimizer's default (sgd 0.05, adam 1e-3)
  std::string optimizer = "sgd", schedule = "cosine";
  std::string arch = "fashioncnn";  // nets::make_classifier: fashioncnn or gap (for CAM)
  double momentum = 0.9, weight_decay = 0;
  uint64_t seed = 0;
  std::string device = "auto", out = "runs/classify";
  DataOptions data;
  bool json = false, quiet = false;
  // Adversarial training (seeds 001-003): loss = CE(x) + adv_weight * CE(x_adv)
  //   + logit_pairing * mean_n ||f(x)_n - f(x_adv)_n||^2, x_adv crafted each step against the
  //   current weights ("fgsm": one step of 1.25 eps from a random start in the eps box, "fast is
  //   better than free"; "pgd": 7 steps of eps/4 from a random start). adv = "none": plain.
  std::string adv = "none";
  double adv_eps = 0.1, adv_weight = 1.0, logit_pairing = 0;
};
// Trains FashionCNN, writes out/{metrics.csv, curves.png, model.safetensors}; returns the
// summary that `--json` prints (test accuracy, timings, paths).
nlohmann::json run_classify_train(const TrainConfig& cfg);

// ---- classify eval ----
struct EvalResult {
  int64_t n = 0, correct = 0;
  double loss = 0;                              // mean cross-entropy
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
  std::vector<std::string> class_names;
  double accuracy() const { return n ? double(correct) / double(n) : 0; }
  nlohmann::json to_json() const;
};
// Accuracy, loss and confusion matrix of `net` (logits [N, classes]) on ds, in eval mode, with
// no autograd recording.
EvalResult evaluate(nn::Module& net, const data::Dataset& ds, int64_t batch, Device dev,
                    bool progress);

// Loads a FashionCNN state dict (ours or PyTorch's, safetensors) into net; the error names the
// file and every missing, unexpected or mis-shaped key.
void load_checkpoint(nn::Module& net, const std::string& path);
// Builds the classifier whose parameter names the checkpoint holds (nets::classifier_arch:
// "fashioncnn" or "gap"), loads it and returns it in eval mode on the CPU; *arch gets the name.
// The error names the file and the keys when no known classifier matches.
std::shared_ptr<nn::Module> load_classifier(const std::string& path, std::string* arch = nullptr);

// The attack figure (nabla attack, the demo): rows of original, perturbation (scaled to be
// seen), adversarial, each with the predicted class and its confidence.
void draw_attack_figure(const std::string& path, nn::Module& net, const Tensor& x,
                        const Tensor& x_adv, const std::vector<std::string>& names, Device dev,
                        const std::string& title);

// Seed 004's comparison figure at `path`: per image of x (CPU [n, C, H, W]) the original, guided
// backprop, Grad-CAM at `layer`, guided Grad-CAM and occlusion, for `classes` (int64 [n], or
// undefined: the predicted classes). Returns {figure, layer, classes, predicted}.
nlohmann::json draw_explanation_comparison(const std::string& path, nn::Module& net,
                                           const std::string& layer, const Tensor& x,
                                           const Tensor& labels,
                                           const std::vector<std::string>& names,
                                           const Tensor& classes, Device dev);

void register_classify(CLI::App& app);
void register_classify_eval(CLI::App& classify);  // under `classify`
void register_attack(CLI::App& app);
void register_robustness(CLI::App& app);
void register_demo(CLI::App& app);
void register_explain(CLI::App& app);
void register_explain_detector(CLI::App& explain);  // `explain detector`
void register_squares(CLI::App& app);

}  // namespace nabla::cli
