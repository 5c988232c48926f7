// nabla robustness check: the signs of a broken robustness evaluation (Athalye et al. 2018;
// Carlini et al. 2019) measured on a FashionCNN checkpoint, as a pass/warn table
// (engine/attack/check.h): iterative >= single-step, accuracy -> 0 as eps grows, Square not
// beating APGD, transfer not beating white-box, restarts stable. Writes DIR/check.json.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include <nabla/attack/check.h>
#include <nabla/data/mnist.h>
#include <nabla/error.h>
#include <nabla/io/progress.h>
#include <nets/classifier.h>

#include "common.h"

namespace nabla::cli {

namespace {

struct CheckCliOptions {
  Common c;
  std::string checkpoint, source, norm = "linf";
  attack::CheckOptions opt;
  int64_t n = 500;
};

nlohmann::json run_check(CheckCliOptions& o) {
  const Device dev = resolve_device(o.c.device);
  o.opt.norm = o.norm == "l2" ? attack::Norm::L2 : attack::Norm::Linf;
  o.opt.batch = o.c.batch;
  o.opt.seed = o.c.seed;
  std::shared_ptr<nn::Module> net = nets::load_classifier(o.checkpoint);
  net->to(dev);
  std::shared_ptr<nn::Module> src;
  if (!o.source.empty()) {
    src = nets::load_classifier(o.source);
    src->to(dev);
  }
  data::Dataset test = data::load_mnist(o.c.data, data::Split::Test, o.n);
  const attack::Model model = [net](const Tensor& x) { return (*net)(x); };
  const attack::Model source = [src](const Tensor& x) { return (*src)(x); };
  io::ProgressBar bar("robustness check", src ? 9 : 8, o.c.show_progress());
  const attack::CheckReport r =
      attack::robustness_check(model, test.images, test.labels, o.opt, dev, src ? &source : nullptr,
                               [&](int64_t done, int64_t) { bar.update(done); });
  bar.finish();
  nlohmann::json items = nlohmann::json::array();
  for (const auto& i : r.items)
    items.push_back({{"check", i.name},
                     {"result", i.skipped ? "skip"
                                : i.pass  ? "pass"
                                          : "warn"},
                     {"detail", i.detail}});
  nlohmann::json sweep = nlohmann::json::array();
  for (size_t k = 0; k < r.sweep_eps.size(); ++k)
    sweep.push_back({{"eps", r.sweep_eps[k]}, {"apgd_accuracy", r.sweep_acc[k]}});
  nlohmann::json j = {{"checkpoint", o.checkpoint},
                      {"source", o.source},
                      {"norm", o.norm},
                      {"eps", o.opt.eps},
                      {"big_eps", o.opt.big_eps},
                      {"steps", o.opt.steps},
                      {"restarts", o.opt.restarts},
                      {"queries", o.opt.queries},
                      {"n", test.size()},
                      {"device", dev.str()},
                      {"clean_accuracy", r.clean},
                      {"single_step_accuracy", r.fgsm},
                      {"apgd_accuracy", r.apgd},
                      {"square_accuracy", r.square},
                      {"apgd_restarts_accuracy", r.apgd_restarts},
                      {"sweep", sweep},
                      {"items", items},
                      {"passed", r.passed()}};
  if (src) j["transfer_accuracy"] = r.transfer;
  std::filesystem::create_directories(o.c.out);
  std::ofstream(o.c.out + "/check.json") << j.dump(2) << "\n";
  return j;
}

}  // namespace

void register_robustness_check(CLI::App& robustness) {
  auto o = std::make_shared<CheckCliOptions>();
  CLI::App* a = robustness.add_subcommand(
      "check",
      "Signs of gradient masking (Athalye et al. 2018, Carlini et al. 2019) on a checkpoint,\n"
      "as a pass/warn table: iterative >= single-step, accuracy -> 0 as eps grows, Square\n"
      "(black-box) not beating APGD (white-box), transfer from --source not beating white-box,\n"
      "restarts stable. Exit status 0 either way; the JSON says passed true/false.");
  a->add_option("--checkpoint", o->checkpoint, "the model to check (.safetensors)")
      ->required()
      ->check(CLI::ExistingFile);
  a->add_option("--source", o->source,
                "another checkpoint to transfer APGD examples from (no transfer item without it)")
      ->check(CLI::ExistingFile);
  a->add_option("--norm", o->norm, "linf or l2")
      ->capture_default_str()
      ->check(CLI::IsMember({"linf", "l2"}));
  a->add_option("--eps", o->opt.eps, "the budget whose evaluation is checked")
      ->capture_default_str()
      ->check(CLI::Range(1e-6, 100.0));
  a->add_option("--big-eps", o->opt.big_eps, "the 'unbounded' budget (L-inf 1 reaches every image)")
      ->capture_default_str()
      ->check(CLI::Range(1e-6, 1000.0));
  a->add_option("--steps", o->opt.steps, "APGD iterations")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  a->add_option("--restarts", o->opt.restarts, "APGD restarts of the stability item")
      ->capture_default_str()
      ->check(CLI::Range(2, 1000));
  a->add_option("--queries", o->opt.queries, "Square's queries per image")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  a->add_option("--tol", o->opt.tol, "accuracy slack of the comparisons")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  a->add_option("--n", o->n, "first N test images (0: all 10,000)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  o->c.batch = 250;
  o->c.out = "robustness_out";
  add_common_flags(a, o->c, kBatch | kSeed | kData | kDevice | kOut | kJson,
                   {{"--batch", "images per batch"},
                    {"--seed", "seed of the random starts and of Square"},
                    {"--json", "print one JSON object (accuracies, items, passed) on stdout"}});
  a->callback([o] {
    print_report(o->c, run_check(*o), [](const nlohmann::json& j) {
      std::printf("robustness check of %s, %lld test images, %s eps %.4g (clean %.4f)\n",
                  j["checkpoint"].get<std::string>().c_str(), (long long)j["n"].get<int64_t>(),
                  j["norm"].get<std::string>().c_str(), j["eps"].get<double>(),
                  j["clean_accuracy"].get<double>());
      for (const auto& i : j["items"])
        std::printf("  %-26s %-5s %s\n", i["check"].get<std::string>().c_str(),
                    i["result"].get<std::string>().c_str(), i["detail"].get<std::string>().c_str());
      std::printf("%s\n", j["passed"].get<bool>() ? "all checks passed"
                                                  : "WARNING: signs of gradient masking");
    });
  });
}

}  // namespace nabla::cli
