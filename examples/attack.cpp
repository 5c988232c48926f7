// nabla attack: adversarial examples against a FashionCNN checkpoint, on the first N test
// images, with any attack of engine/attack. Prints clean and adversarial accuracy, success rate
// and mean perturbation norms (--json: one object), and draws a figure in the style of the
// panda/gibbon example: original, perturbation (scaled to be seen), adversarial, each with the
// predicted class and its confidence.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include <nabla/attack/attack.h>
#include <nabla/attack/figure.h>
#include <nabla/autograd.h>
#include <nabla/data/mnist.h>
#include <nabla/error.h>
#include <nabla/io/files.h>
#include <nabla/io/image.h>
#include <nabla/io/progress.h>
#include <nabla/metrics/classification.h>
#include <nabla/ops.h>
#include <nets/classifier.h>

#include "common.h"

namespace nabla::cli {

namespace {

struct AttackOptions {
  Common c;
  std::string checkpoint, method = "fgsm", target = "none", norm = "linf", loss = "ce";
  attack::Options opt;
  int64_t n = 0, show = 6;
};

attack::TargetMode parse_target(const std::string& s, attack::Options& o) {
  if (s == "none") return attack::TargetMode::None;
  if (s == "random") return attack::TargetMode::Random;
  if (s == "least-likely") return attack::TargetMode::LeastLikely;
  try {
    size_t used = 0;
    o.target_class = std::stoll(s, &used);
    if (used == s.size()) return attack::TargetMode::Given;
  } catch (const std::exception&) {
  }
  throw Error("--target " + s + ": expected none, random, least-likely or a class index");
}

nlohmann::json run_attack(AttackOptions& o) {
  const Device dev = resolve_device(o.c.device);
  o.opt.target_mode = parse_target(o.target, o.opt);
  o.opt.norm = o.norm == "l2" ? attack::Norm::L2 : attack::Norm::Linf;
  o.opt.apgd_loss = o.loss == "dlr" ? attack::ApgdLoss::DLR : attack::ApgdLoss::CE;
  const bool aa = o.method == "autoattack";
  std::vector<attack::AutoAttackStage> stages_total;
  int64_t queries_total = 0;
  bool has_queries = false;
  std::shared_ptr<nn::Module> net_ptr = nets::load_classifier(o.checkpoint);  // FashionCNN or GAP
  nn::Module& net = *net_ptr;
  net.to(dev);
  data::Dataset test = data::load_mnist(o.c.data, data::Split::Test, o.n);
  const attack::Model model = [&](const Tensor& x) { return net(x); };

  const int64_t N = test.size();
  int64_t clean_correct = 0, adv_correct = 0, successes = 0;
  double sum_linf = 0, sum_l2 = 0, sum_l0 = 0;
  Tensor shown_x, shown_adv;
  const int64_t B = o.c.batch;
  io::ProgressBar bar(o.method, (N + B - 1) / B, o.c.show_progress());
  for (int64_t lo = 0; lo < N; lo += B) {
    const int64_t hi = std::min(N, lo + B);
    Tensor x = test.images.slice(lo, hi).contiguous().to(dev);
    Tensor y = test.labels.slice(lo, hi).contiguous();
    {
      NoGradGuard ng;
      clean_correct += metrics::count_correct(net(x), y);
    }
    std::vector<attack::AutoAttackStage> stages;
    attack::Result r = aa ? attack::autoattack(model, x, y.to(dev), o.opt, &stages)
                          : attack::run(o.method, model, x, y.to(dev), o.opt);
    for (size_t k = 0; k < stages.size(); ++k) {
      if (stages_total.size() <= k) stages_total.push_back({stages[k].name, 0, 0, 0});
      stages_total[k].attacked += stages[k].attacked;
      stages_total[k].robust += stages[k].robust;
      stages_total[k].queries += stages[k].queries;
    }
    has_queries = has_queries || !r.queries.empty();
    for (int64_t q : r.queries) queries_total += q;
    adv_correct += int64_t(std::llround(r.accuracy(y) * double(hi - lo)));
    for (size_t i = 0; i < r.success.size(); ++i) {
      successes += r.success[i];
      sum_linf += r.linf[i];
      sum_l2 += r.l2[i];
      sum_l0 += r.l0[i];
    }
    if (!shown_x.defined()) {
      const int64_t k = std::min<int64_t>(o.show, hi - lo);
      shown_x = x.slice(0, k).to(Device::cpu());
      shown_adv = r.x_adv.slice(0, k).to(Device::cpu());
    }
    char post[96];
    std::snprintf(post, sizeof post, "adv acc %.3f", double(adv_correct) / double(hi));
    bar.update(hi / B + (hi % B != 0), post);
  }
  bar.finish();

  nabla::io::create_dirs(o.c.out, "the output folder (--out)");
  const std::string fig = o.c.out + "/" + o.method + ".png";
  char title[160];
  std::snprintf(title, sizeof title, "%s, eps %.4g: clean (left), perturbation, adversarial",
                o.method.c_str(), o.opt.eps);
  if (o.show > 0)
    attack::save_attack_figure(fig, net, shown_x, shown_adv, test.class_names, dev, title);
  nlohmann::json j = {{"method", o.method},
                      {"target", o.target},
                      {"eps", o.opt.eps},
                      {"alpha", o.opt.alpha},
                      {"steps", o.opt.steps},
                      {"restarts", o.opt.restarts},
                      {"random_start", o.opt.random_start},
                      {"early_stop", o.opt.early_stop},
                      {"n", N},
                      {"device", dev.str()},
                      {"clean_accuracy", double(clean_correct) / double(N)},
                      {"adv_accuracy", double(adv_correct) / double(N)},
                      {"success_rate", double(successes) / double(N)},
                      {"mean_linf", sum_linf / double(N)},
                      {"mean_l2", sum_l2 / double(N)},
                      {"mean_l0", sum_l0 / double(N)},
                      {"figure", o.show > 0 ? fig : ""}};
  if (o.method == "deepfool") j["overshoot"] = o.opt.overshoot;
  if (o.method == "cw") {
    j["cw_c"] = o.opt.cw_c;
    j["cw_search"] = o.opt.cw_search;
    j["kappa"] = o.opt.cw_kappa;
  }
  if (o.method.rfind("apgd", 0) == 0 || o.method == "square" || aa || o.method == "deepfool") {
    j["norm"] = o.norm;
    if (o.method == "apgd") j["loss"] = o.loss;
    if (o.method == "apgd-t" || aa) j["target_classes"] = o.opt.target_classes;
    if (o.method == "square" || aa) {
      j["queries"] = o.opt.queries;
      j["p_init"] = o.opt.p_init;
    }
  }
  // The model evaluations spent: gradient evaluations (APGD) or forward passes (Square).
  if (has_queries) {
    j["queries_total"] = queries_total;
    j["queries_mean"] = double(queries_total) / double(N);
  }
  if (aa) {
    j["name"] = attack::kAutoAttackName;
    nlohmann::json st = nlohmann::json::array();
    for (const auto& s : stages_total)
      st.push_back({{"attack", s.name},
                    {"attacked", s.attacked},
                    {"robust_after", s.robust},
                    {"queries", s.queries}});
    j["stages"] = st;
  }
  std::ofstream(o.c.out + "/" + o.method + ".json") << j.dump(2) << "\n";
  return j;
}

}  // namespace

void register_attack(CLI::App& app) {
  auto o = std::make_shared<AttackOptions>();
  CLI::App* a = app.add_subcommand(
      "attack",
      "Adversarial examples against a FashionCNN checkpoint on the first N test images:\n"
      "clean and adversarial accuracy, success rate, mean L-inf/L2/L0 of the perturbation,\n"
      "and DIR/<method>.png (original, perturbation, adversarial, with predictions).");
  a->add_option("--checkpoint", o->checkpoint,
                "classifier weights (.safetensors): FashionCNN, or FashionGAP (--arch gap)")
      ->required()
      ->check(CLI::ExistingFile);
  a->add_option("--method", o->method,
                "fgsm, bim, pgd, pgd-l2, mifgsm, targeted (CE(target) + lambda ||x - x0||^2), "
                "onepixel (differential evolution), noise (random signs of size eps: the "
                "control), apgd (APGD, --loss ce or dlr), apgd-dlr, apgd-t (APGD on the targeted "
                "DLR loss over --target-classes targets), square (the Square attack: forward "
                "passes only, --queries) or autoattack (APGD-CE, APGD-T, Square on the points "
                "still robust: 'AutoAttack (no FAB)'; defaults --steps 100 --queries 5000), "
                "deepfool (minimal perturbation, --norm, --overshoot; --steps iterations) or cw "
                "(Carlini-Wagner L2: --steps Adam steps per c, --cw-search, --cw-c, --kappa)")
      ->capture_default_str()
      ->check(CLI::IsMember(attack::method_names()));
  a->add_option("--norm", o->norm,
                "threat model of apgd, apgd-dlr, apgd-t, square, autoattack: linf or l2 (eps "
                "is then the L2 radius)")
      ->capture_default_str()
      ->check(CLI::IsMember({"linf", "l2"}));
  a->add_option("--loss", o->loss, "apgd: ce (cross-entropy) or dlr (difference of logits ratio)")
      ->capture_default_str()
      ->check(CLI::IsMember({"ce", "dlr"}));
  a->add_option("--target-classes", o->opt.target_classes,
                "apgd-t, autoattack: target classes tried (ranked 2, 3, ... by the clean logits)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  a->add_option("--queries", o->opt.queries,
                "square, autoattack: model evaluations per image at most (default 5000)")
      ->check(CLI::Range(1, 10000000));
  a->add_option("--p-init", o->opt.p_init,
                "square: initial fraction of pixels changed per step (halved by the paper's "
                "schedule)")
      ->capture_default_str()
      ->check(CLI::Range(1e-6, 1.0));
  a->add_option("--rho", o->opt.apgd_rho,
                "apgd: halve the step when fewer than rho of the steps since the last checkpoint "
                "raised the loss")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  a->add_option("--overshoot", o->opt.overshoot, "deepfool: x0 + (1 + overshoot) r")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 10.0));
  a->add_option("--cw-c", o->opt.cw_c, "cw: initial weight c of the margin term")
      ->capture_default_str()
      ->check(CLI::Range(1e-12, 1e12));
  a->add_option("--cw-search", o->opt.cw_search, "cw: binary-search steps over c")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  a->add_option("--kappa", o->opt.cw_kappa, "cw: confidence kappa of the f6 margin")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1000.0));
  a->add_option("--cw-lr", o->opt.cw_lr, "cw: Adam's learning rate")
      ->capture_default_str()
      ->check(CLI::Range(1e-9, 10.0));
  a->add_option("--eps", o->opt.eps, "perturbation budget in pixel units (L2 radius for pgd-l2)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 100.0));
  a->add_option("--alpha", o->opt.alpha, "step size of the iterative attacks")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 100.0));
  a->add_option("--steps", o->opt.steps,
                "iterations of bim, pgd, pgd-l2, mifgsm, targeted, apgd (default 10; 100 for "
                "autoattack)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  a->add_option("--restarts", o->opt.restarts,
                "random restarts of pgd, pgd-l2, apgd (apgd-t: per target class)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  a->add_flag("--random-start", o->opt.random_start,
              "start pgd/pgd-l2 (and fgsm: the 'fast' variant) at a random point of the ball");
  a->add_flag(
      "--no-early-stop", [o](int64_t) { o->opt.early_stop = false; },
      "keep attacking samples that already fool the model (plain FGSM/PGD, as most "
      "reference implementations; by default a sample is frozen once it succeeds)");
  a->add_option("--target", o->target,
                "none (untargeted), a class index, random (a class other than the label) or "
                "least-likely")
      ->capture_default_str();
  a->add_option("--lambda", o->opt.lambda, "targeted: weight of ||x - x0||^2")
      ->capture_default_str();
  a->add_option("--pixels", o->opt.pixels, "onepixel: pixels changed per image")
      ->capture_default_str()
      ->check(CLI::Range(1, 784));
  a->add_option("--n", o->n, "attack the first N test images (0: all 10,000)")
      ->check(non_negative());
  a->add_option("--show", o->show, "images in the figure (0: no figure)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(0), int64_t(32)));
  o->c.batch = 500;
  o->c.out = "attack_out";
  add_common_flags(a, o->c, kBatch | kSeed | kData | kDevice | kOut | kJson,
                   {{"--batch", "images per batch"},
                    {"--seed", "seed of random starts, targets and noise"},
                    {"--out", "output folder (figure and JSON report)"},
                    {"--json",
                     "print one JSON object (clean_accuracy, adv_accuracy, success_rate, n, "
                     "mean_linf, mean_l2, ...) on stdout"}});
  a->callback([o, a] {
    o->opt.seed = o->c.seed;
    if (o->method == "autoattack" && a->get_option("--steps")->count() == 0) o->opt.steps = 100;
    nlohmann::json j = run_attack(*o);
    if (o->c.json) {
      std::cout << j.dump() << "\n";
      return;
    }
    std::printf("%s (eps %.4g) on %lld test images\n", j.value("name", o->method).c_str(),
                o->opt.eps, (long long)j["n"].get<int64_t>());
    std::printf("clean accuracy        %.4f\n", j["clean_accuracy"].get<double>());
    std::printf("adversarial accuracy  %.4f\n", j["adv_accuracy"].get<double>());
    std::printf("success rate          %.4f\n", j["success_rate"].get<double>());
    std::printf("mean |d|_inf %.4f  |d|_2 %.4f  |d|_0 %.1f\n", j["mean_linf"].get<double>(),
                j["mean_l2"].get<double>(), j["mean_l0"].get<double>());
    if (j.contains("stages"))
      for (const auto& s : j["stages"])
        std::printf("  %-8s on %6lld robust: %6lld left, %lld queries\n",
                    s["attack"].get<std::string>().c_str(), (long long)s["attacked"].get<int64_t>(),
                    (long long)s["robust_after"].get<int64_t>(),
                    (long long)s["queries"].get<int64_t>());
    if (j.contains("queries_mean"))
      std::printf("model evaluations     %.1f per image (%lld in all)\n",
                  j["queries_mean"].get<double>(), (long long)j["queries_total"].get<int64_t>());
    if (o->show > 0) std::printf("figure: %s\n", j["figure"].get<std::string>().c_str());
  });
}

}  // namespace nabla::cli
