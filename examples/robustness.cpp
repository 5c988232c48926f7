// nabla robustness: how accuracy falls with the attack budget, and how attacks transfer.
//
//   eps sweep       accuracy of --checkpoint under each --methods attack at each --eps (PGD:
//                   --steps steps of eps/4 from a random start), as a table, DIR/robustness.png
//                   (accuracy against eps, one line per method) and DIR/robustness.json
//   transferability with --models G,H,...: adversarial examples crafted on each model at
//                   --transfer-eps (FGSM) and evaluated on every model; row = source, column =
//                   target, entry = target accuracy (the diagonal is the white-box attack)
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include <nabla/attack/attack.h>
#include <nabla/autograd.h>
#include <nabla/data/mnist.h>
#include <nabla/error.h>
#include <nabla/io/files.h>
#include <nabla/io/plot.h>
#include <nabla/io/progress.h>
#include <nabla/ops.h>
#include <nets/classifier.h>

#include "common.h"

namespace nabla::cli {

namespace {

struct RobustnessOptions {
  Common c;
  std::string checkpoint, models, eps = "0,0.02,0.05,0.1,0.15,0.2", methods = "fgsm,pgd";
  double transfer_eps = 0.1;
  int steps = 10;
  int64_t n = 1000;
};

std::vector<double> parse_eps(const std::string& s) {
  std::vector<double> out;
  for (const std::string& e : split_list(s)) {
    size_t used = 0;
    double v = -1;
    try {
      v = std::stod(e, &used);
    } catch (const std::exception&) {
    }
    NABLA_CHECK(used == e.size() && v >= 0, "--eps: '", e, "' is not a number >= 0 (in '", s, "')");
    out.push_back(v);
  }
  NABLA_CHECK(!out.empty(), "--eps: no value in '", s, "'");
  return out;
}

nlohmann::json run_robustness(const RobustnessOptions& o) {
  const Device dev = resolve_device(o.c.device);
  const std::vector<double> eps = parse_eps(o.eps);
  const std::vector<std::string> methods = split_list(o.methods);
  for (const std::string& m : methods)
    NABLA_CHECK(m == "fgsm" || m == "pgd" || m == "bim" || m == "mifgsm" || m == "noise",
                "--methods: '", m, "' is not an L-inf attack (fgsm, pgd, bim, mifgsm, noise)");
  std::vector<std::string> paths = {o.checkpoint};
  for (const std::string& m : split_list(o.models)) paths.push_back(m);
  std::vector<std::shared_ptr<nn::Module>> nets;  // FashionCNN or FashionGAP, in eval mode
  for (const std::string& p : paths) {
    nets.push_back(nets::load_classifier(p));
    nets.back()->to(dev);
  }
  data::Dataset test = data::load_mnist(o.c.data, data::Split::Test, o.n);

  nlohmann::json sweep = nlohmann::json::array();
  std::vector<io::PlotPanel> panels(1);
  panels[0] = {
      "robust accuracy, " + std::to_string(test.size()) + " test images", "eps", "accuracy", {}};
  io::ProgressBar bar("eps sweep", int64_t(eps.size() * methods.size()), o.c.show_progress());
  int64_t done = 0;
  for (size_t mi = 0; mi < methods.size(); ++mi) {
    io::Series series{methods[mi], {}, {}, io::palette_color(mi)};
    for (double e : eps) {
      attack::Options opt;
      opt.eps = e;
      opt.alpha = methods[mi] == "fgsm" ? e : e / 4;
      opt.steps = o.steps;
      opt.random_start = methods[mi] == "pgd";
      opt.seed = o.c.seed;
      const double acc = attack::adversarial_accuracy(*nets[0], *nets[0], test.images, test.labels,
                                                      methods[mi], opt, o.c.batch, dev);
      series.x.push_back(e);
      series.y.push_back(acc);
      sweep.push_back({{"method", methods[mi]}, {"eps", e}, {"accuracy", acc}});
      bar.update(++done);
    }
    panels[0].series.push_back(series);
  }
  bar.finish();
  nabla::io::create_dirs(o.c.out, "the output folder (--out)");
  const std::string png = o.c.out + "/robustness.png";
  io::save_plot(png, panels, 640, 420);

  nlohmann::json transfer;
  if (nets.size() > 1) {
    attack::Options opt;
    opt.eps = opt.alpha = o.transfer_eps;
    std::vector<std::vector<double>> m(nets.size(), std::vector<double>(nets.size()));
    for (size_t s = 0; s < nets.size(); ++s)
      for (size_t t = 0; t < nets.size(); ++t)
        m[s][t] = attack::adversarial_accuracy(*nets[s], *nets[t], test.images, test.labels, "fgsm",
                                               opt, o.c.batch, dev);
    transfer = {{"method", "fgsm"}, {"eps", o.transfer_eps}, {"models", paths}, {"accuracy", m}};
  }
  nlohmann::json j = {{"checkpoint", o.checkpoint},
                      {"n", test.size()},
                      {"device", dev.str()},
                      {"sweep", sweep},
                      {"plot", png}};
  if (!transfer.is_null()) j["transfer"] = transfer;
  std::ofstream(o.c.out + "/robustness.json") << j.dump(2) << "\n";
  return j;
}

void print_text(const nlohmann::json& j, const RobustnessOptions& o) {
  std::printf("robust accuracy of %s on %lld test images\n%-8s", o.checkpoint.c_str(),
              (long long)j["n"].get<int64_t>(), "eps");
  const std::vector<std::string> methods = split_list(o.methods);
  for (const std::string& m : methods) std::printf("%10s", m.c_str());
  std::printf("\n");
  const std::vector<double> eps = parse_eps(o.eps);
  for (size_t e = 0; e < eps.size(); ++e) {
    std::printf("%-8.4g", eps[e]);
    for (size_t m = 0; m < methods.size(); ++m)
      std::printf("%10.4f", j["sweep"][m * eps.size() + e]["accuracy"].get<double>());
    std::printf("\n");
  }
  std::printf("plot: %s\n", j["plot"].get<std::string>().c_str());
  if (!j.contains("transfer")) return;
  const auto& t = j["transfer"];
  std::printf(
      "\ntransferability (FGSM, eps %.4g): accuracy of the column model on examples "
      "crafted against the row model\n",
      t["eps"].get<double>());
  const auto& models = t["models"];
  for (size_t s = 0; s < models.size(); ++s) {
    std::printf("%zu %-40s", s, models[s].get<std::string>().c_str());
    for (size_t c = 0; c < models.size(); ++c)
      std::printf("%9.4f", t["accuracy"][s][c].get<double>());
    std::printf("\n");
  }
}

}  // namespace

void register_robustness(CLI::App& app) {
  auto o = std::make_shared<RobustnessOptions>();
  CLI::App* r = app.add_subcommand(
      "robustness",
      "Robust accuracy of a FashionCNN checkpoint against the attack budget eps (a table,\n"
      "DIR/robustness.png and DIR/robustness.json) and, with --models, the transferability\n"
      "matrix: FGSM examples crafted on each model, evaluated on every model.");
  r->add_option("--checkpoint", o->checkpoint, "the model to sweep (.safetensors)")
      ->check(CLI::ExistingFile);
  r->add_option("--models", o->models, "more checkpoints, comma-separated, for transferability");
  r->add_option("--eps", o->eps, "comma-separated budgets (pixel units)")->capture_default_str();
  r->add_option("--methods", o->methods,
                "comma-separated L-inf attacks: fgsm, pgd, bim, "
                "mifgsm, noise")
      ->capture_default_str();
  r->add_option("--steps", o->steps, "iterations of pgd/bim/mifgsm (step eps/4)")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  r->add_option("--transfer-eps", o->transfer_eps, "FGSM budget of the transferability matrix")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  r->add_option("--n", o->n, "first N test images (0: all 10,000)")
      ->capture_default_str()
      ->check(non_negative());
  o->c.batch = 500;
  o->c.out = "robustness_out";
  add_common_flags(r, o->c, kBatch | kSeed | kData | kDevice | kOut | kJson,
                   {{"--batch", "images per batch"},
                    {"--seed", "seed of PGD's random starts"},
                    {"--json", "print one JSON object (sweep, transfer, paths) on stdout"}});
  register_robustness_check(*r);
  r->require_subcommand(0, 1);
  r->callback([o, r] {
    if (!r->get_subcommands().empty()) return;  // `robustness check` ran its own callback
    NABLA_CHECK(!o->checkpoint.empty(), "robustness: --checkpoint is required (see --help)");
    print_report(o->c, run_robustness(*o), [&](const nlohmann::json& j) { print_text(j, *o); });
  });
}

}  // namespace nabla::cli
