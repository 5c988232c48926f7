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
#include <nabla/io/safetensors.h>
#include <nabla/ops.h>
#include <nets/classifier.h>

#include "commands.h"

namespace nabla::cli {

nlohmann::json EvalResult::to_json() const {
  nlohmann::json per_class = nlohmann::json::array();
  for (size_t t = 0; t < confusion.size(); ++t) {
    int64_t total = 0;
    for (int64_t v : confusion[t]) total += v;
    per_class.push_back({{"class", t < class_names.size() ? class_names[t] : std::to_string(t)},
                         {"n", total},
                         {"accuracy", total ? double(confusion[t][t]) / double(total) : 0.0}});
  }
  return {{"accuracy", accuracy()},    {"n", n},
          {"correct", correct},        {"loss", loss},
          {"per_class", per_class},    {"confusion", confusion},
          {"class_names", class_names}};
}

void load_checkpoint(nn::Module& net, const std::string& path) {
  io::SafetensorsFile file = io::load_safetensors(path);
  try {
    net.load_state_dict(file.tensors);
  } catch (const Error& e) {
    throw Error(path + " does not hold a " + net.type_name() + " state dict: " + e.what());
  }
}

std::shared_ptr<nn::Module> load_classifier(const std::string& path, std::string* arch) {
  io::SafetensorsFile file = io::load_safetensors(path);
  // No exact match: load as FashionCNN anyway, so the error lists its missing and unexpected keys.
  std::string name = nets::classifier_arch(file.tensors);
  if (name.empty()) name = "fashioncnn";
  auto net = nets::make_classifier(name);
  try {
    net->load_state_dict(file.tensors);
  } catch (const Error& e) {
    throw Error(path + " does not hold a " + net->type_name() + " state dict: " + e.what());
  }
  net->eval();
  if (arch) *arch = name;
  return net;
}

EvalResult evaluate(nn::Module& net, const data::Dataset& ds, int64_t batch, Device dev,
                    bool progress) {
  NABLA_CHECK(ds.size() > 0, "evaluate: the data set is empty");
  const bool was_training = net.is_training();
  net.eval();
  NoGradGuard ng;
  EvalResult r;
  r.class_names = ds.class_names;
  const size_t k = std::max<size_t>(ds.class_names.size(), 1);
  r.confusion.assign(k, std::vector<int64_t>(k, 0));
  const int64_t nb = (ds.size() + batch - 1) / batch;
  io::ProgressBar bar("eval", nb, progress);
  double loss_sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const int64_t lo = i * batch, hi = std::min(ds.size(), lo + batch);
    Tensor x = ds.images.slice(lo, hi).to(dev);
    Tensor y = ds.labels.slice(lo, hi).contiguous();
    Tensor logits = net(x);
    NABLA_CHECK(logits.dim() == 2 && size_t(logits.size(1)) == k, "evaluate: the net gives ",
                shape_str(logits.shape()), " logits for ", k, " classes");
    loss_sum += cross_entropy(logits, y.to(dev), Tensor(), Reduction::Sum).item<double>();
    Tensor pred = argmax(logits, 1).to(Device::cpu());
    const int64_t* pp = pred.data<int64_t>();
    const int64_t* yy = y.data<int64_t>();
    for (int64_t j = 0; j < hi - lo; ++j) {
      r.confusion[size_t(yy[j])][size_t(pp[j])] += 1;
      r.correct += pp[j] == yy[j];
    }
    r.n += hi - lo;
    bar.update(i + 1);
  }
  bar.finish();
  r.loss = loss_sum / double(r.n);
  net.train(was_training);
  return r;
}

namespace {

struct EvalOptions {
  std::string checkpoint, device = "auto";
  DataOptions data;
  int64_t batch = 256;
  bool json = false;
};

void print_report(const EvalResult& r, const std::string& checkpoint) {
  std::printf("checkpoint %s\n", checkpoint.c_str());
  std::printf("test accuracy %.4f (%lld/%lld), loss %.4f\n\n", r.accuracy(), (long long)r.correct,
              (long long)r.n, r.loss);
  size_t w = 5;
  for (const auto& name : r.class_names) w = std::max(w, name.size());
  std::printf("%-*s  %8s  %6s\n", int(w), "class", "accuracy", "n");
  const nlohmann::json j = r.to_json();
  for (const auto& pc : j["per_class"])
    std::printf("%-*s  %8.4f  %6lld\n", int(w), pc["class"].get<std::string>().c_str(),
                pc["accuracy"].get<double>(), (long long)pc["n"].get<int64_t>());
  std::printf("\nconfusion matrix (rows: true class, columns: predicted)\n%*s", int(w) + 2, "");
  for (size_t p = 0; p < r.confusion.size(); ++p) std::printf("%6zu", p);
  std::printf("\n");
  for (size_t t = 0; t < r.confusion.size(); ++t) {
    std::printf("%zu %-*s", t, int(w), t < r.class_names.size() ? r.class_names[t].c_str() : "");
    for (int64_t v : r.confusion[t]) std::printf("%6lld", (long long)v);
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
  eval->add_option("--data", o->data.dir,
                   "folder with MNIST-format IDX files; default: Fashion-MNIST from the Debian "
                   "package dataset-fashion-mnist");
  eval->add_option("--limit", o->data.test_limit, "use only the first N test images (0: all)")
      ->check(CLI::NonNegativeNumber);
  eval->add_option("--batch", o->batch, "evaluation batch size")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(65536)));
  eval->add_option("--device", o->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  eval->add_flag("--json", o->json,
                 "print one JSON object (accuracy, n, loss, per_class, confusion) on stdout");
  eval->callback([o] {
    const Device dev = resolve_device(o->device);
    std::shared_ptr<nn::Module> net = load_classifier(o->checkpoint);
    net->to(dev);
    data::Dataset test = load_split(o->data, data::Split::Test);
    EvalResult r = evaluate(*net, test, o->batch, dev, !o->json);
    if (o->json)
      std::cout << r.to_json().dump() << "\n";
    else
      print_report(r, o->checkpoint);
  });
}

}  // namespace nabla::cli
