// nabla classify train: FashionCNN (or FashionGAP) on Fashion-MNIST or any MNIST-format set.
// The recipe is nets/classifier_train.h; this file maps the flags onto it and prints the result.
#include <cstdio>

#include <nabla/optim/factory.h>
#include <nets/classifier_train.h>

#include "common.h"

namespace nabla::cli {

namespace {

struct ClassifyTrainFlags {
  Common c;
  nets::ClassifierTraining t;
};

void print_text(const nlohmann::json& s) {
  std::printf("test accuracy %.4f (%lld images), test loss %.4f\n",
              s["test_accuracy"].get<double>(), (long long)s["n_test"].get<int64_t>(),
              s["test_loss"].get<double>());
  std::printf("trained %lld epochs in %.1f s (%.0f img/s on %s)\n",
              (long long)s["epochs"].get<int64_t>(), s["train_seconds"].get<double>(),
              s["images_per_second"].get<double>(), s["device"].get<std::string>().c_str());
  std::printf("wrote %s, %s, %s\n", s["checkpoint"].get<std::string>().c_str(),
              s["metrics"].get<std::string>().c_str(), s["curves"].get<std::string>().c_str());
}

}  // namespace

void register_classify(CLI::App& app) {
  CLI::App* classify = app.add_subcommand(
      "classify", "Image classification with FashionCNN: train a model, evaluate a checkpoint.");
  classify->require_subcommand(1);

  auto f = std::make_shared<ClassifyTrainFlags>();
  f->c.epochs = 3;
  f->c.batch = 64;
  f->c.out = "runs/classify";
  CLI::App* train = classify->add_subcommand(
      "train",
      "Train FashionCNN (conv-relu-pool x2, fc 3136-128-10) on Fashion-MNIST. Pixels are\n"
      "scaled to [0,1] with no normalization. Writes DIR/metrics.csv, DIR/curves.png,\n"
      "DIR/summary.json and DIR/model.safetensors (PyTorch's parameter names: torch's\n"
      "load_state_dict reads it), and checkpoints the run so --resume DIR can continue it.");
  add_common_flags(train, f->c, kTrainingFlags,
                   {{"--lr", "peak learning rate (default: 0.05 for sgd, 0.001 for adam/adamw)"}});
  nets::ClassifierTraining& t = f->t;
  train
      ->add_option("--arch", t.arch,
                   "fashioncnn (conv-relu-pool x2, fc 3136-128-10) or gap (three convs, global "
                   "average pooling, fc 128-10: the architecture `nabla explain --method cam` "
                   "needs)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fashioncnn", "gap"}));
  train->add_option("--optimizer", t.optimizer, "sgd (momentum 0.9), adam or adamw")
      ->capture_default_str()
      ->check(CLI::IsMember(optim::optimizer_names()));
  train
      ->add_option("--schedule", t.schedule,
                   "learning-rate schedule over all steps: cosine (to 0), step (halve each "
                   "epoch), linear-decay (constant, then linearly to 0 over the second half) or "
                   "constant")
      ->capture_default_str()
      ->check(CLI::IsMember(optim::schedule_names()));
  train->add_option("--momentum", t.momentum, "SGD momentum")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.999));
  train->add_option("--weight-decay", t.weight_decay, "L2 weight decay")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  train
      ->add_option("--adv", t.adv,
                   "adversarial training: none, fgsm (random start, one step of 1.25 eps), "
                   "pgd (7 steps of eps/4) or trades (CE + beta KL(f(x) || f(x_adv)), x_adv "
                   "from 7 PGD steps of eps/4 on the KL; Zhang et al. 2019)")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "fgsm", "pgd", "trades"}));
  train->add_option("--beta", t.trades_beta, "trades: weight beta of the KL term")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1000.0));
  train->add_option("--adv-eps", t.adv_eps, "L-inf budget of the training attack")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  train->add_option("--adv-weight", t.adv_weight, "lambda: loss = CE(x) + lambda CE(x_adv)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 100.0));
  train
      ->add_option("--logit-pairing", t.logit_pairing,
                   "mu: adds mu * mean ||f(x) - f(x_adv)||^2 (adversarial logit pairing)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 100.0));
  train->callback([f, train] {
    const Common& c = f->c;
    nets::ClassifierTraining t = f->t;
    t.epochs = c.epochs;
    t.batch = c.batch;
    t.lr = c.lr;
    t.seed = c.seed;
    t.data = c.data;
    t.train_limit = c.train_limit;
    t.test_limit = c.test_limit;
    t.out = c.out;
    t.checkpoint_every = c.checkpoint_every;
    t.device = c.device;
    t.threads = c.threads;
    t = resume_options(*train, c, t).get<nets::ClassifierTraining>();
    Common run = c;
    run.threads = t.threads;
    apply_threads(run);
    const nlohmann::json s =
        nets::train_classifier(t, resolve_device(t.device), !c.resume.empty(), c.show_progress());
    print_report(c, s, print_text);
  });
  register_classify_eval(*classify);
}

}  // namespace nabla::cli
