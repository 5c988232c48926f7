// nabla classify eval: test accuracy, per-class accuracy and the confusion matrix of a
// FashionCNN checkpoint (ours, or a PyTorch state_dict saved with safetensors under the same
// names). --json prints one object with "accuracy", "n", "loss", "per_class" and "confusion".
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>

#include <nabla/autograd.h>
#include <nabla/error.h>
#include <nabla/io/progress.h>
#include <nabla/ops.h>
#include <nabla/train/evaluate.h>
#include <nets/classifier.h>

#include "common.h"

namespace nabla::cli {

namespace {

struct EvalOptions {
  Common c;
  std::string checkpoint;
  int64_t limit = 0;
};

void print_text(const train::Evaluation& r, const std::string& checkpoint) {
  std::printf("checkpoint %s\n", checkpoint.c_str());
  std::printf("test accuracy %.4f (%lld/%lld), loss %.4f\n\n", r.accuracy(),
              (long long)r.confusion.correct(), (long long)r.n, r.loss);
  const auto& counts = r.confusion.counts();
  size_t w = 5;
  for (const auto& name : r.confusion.names()) w = std::max(w, name.size());
  std::printf("%-*s  %8s  %6s\n", int(w), "class", "accuracy", "n");
  const nlohmann::json j = r.to_json();
  for (const auto& pc : j["per_class"])
    std::printf("%-*s  %8.4f  %6lld\n", int(w), pc["class"].get<std::string>().c_str(),
                pc["accuracy"].get<double>(), (long long)pc["n"].get<int64_t>());
  std::printf("\nconfusion matrix (rows: true class, columns: predicted)\n%*s", int(w) + 2, "");
  for (size_t p = 0; p < counts.size(); ++p) std::printf("%6zu", p);
  std::printf("\n");
  for (size_t t = 0; t < counts.size(); ++t) {
    std::printf("%zu %-*s", t, int(w), r.confusion.name(int64_t(t)).c_str());
    for (int64_t v : counts[t]) std::printf("%6lld", (long long)v);
    std::printf("\n");
  }
}

}  // namespace

void register_classify_eval(CLI::App& classify) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* eval = classify.add_subcommand(
      "eval",
      "Evaluate a FashionCNN checkpoint (safetensors, PyTorch's names) on the test split:\n"
      "accuracy, per-class accuracy and the confusion matrix.");
  eval->add_option("--checkpoint", o->checkpoint, "the .safetensors file to evaluate")
      ->required()
      ->check(CLI::ExistingFile);
  eval->add_option("--limit", o->limit, "use only the first N test images (0: all)")
      ->check(non_negative());
  o->c.batch = 256;
  add_common_flags(
      eval, o->c, kData | kBatch | kDevice | kJson,
      {{"--batch", "evaluation batch size"},
       {"--json", "print one JSON object (accuracy, n, loss, per_class, confusion) on stdout"}});
  eval->callback([o] {
    const Device dev = resolve_device(o->c.device);
    std::shared_ptr<nn::Module> net = nets::load_classifier(o->checkpoint);
    net->to(dev);
    data::Dataset test = data::load_mnist(o->c.data, data::Split::Test, o->limit);
    const train::Evaluation r = train::evaluate_classifier(*net, test, o->c.batch, dev, !o->c.json);
    print_report(o->c, r.to_json(), [&](const nlohmann::json&) { print_text(r, o->checkpoint); });
  });
}

}  // namespace nabla::cli
