// The classifier's training recipe (see classifier_train.h).
#include <nets/classifier_train.h>

#include <cstdio>

#include <nabla/attack/attack.h>
#include <nabla/data/loader.h>
#include <nabla/error.h>
#include <nabla/metrics/classification.h>
#include <nabla/ops.h>
#include <nabla/optim/factory.h>
#include <nabla/train/evaluate.h>
#include <nabla/train/trainer.h>
#include <nets/classifier.h>

namespace nabla::nets {

using nlohmann::json;

void to_json(json& j, const ClassifierTraining& c) {
  j = {{"arch", c.arch},
       {"optimizer", c.optimizer},
       {"schedule", c.schedule},
       {"epochs", c.epochs},
       {"batch", c.batch},
       {"lr", c.lr},
       {"momentum", c.momentum},
       {"weight_decay", c.weight_decay},
       {"seed", c.seed},
       {"data", c.data},
       {"train_limit", c.train_limit},
       {"test_limit", c.test_limit},
       {"adv", c.adv},
       {"adv_eps", c.adv_eps},
       {"adv_weight", c.adv_weight},
       {"trades_beta", c.trades_beta},
       {"logit_pairing", c.logit_pairing},
       {"out", c.out},
       {"checkpoint_every", c.checkpoint_every},
       {"device", c.device},
       {"threads", c.threads}};
}

void from_json(const json& j, ClassifierTraining& c) {
  auto get = [&](const char* key, auto& field) {
    train::read_option(j, "classifier options", key, field);
  };
  get("arch", c.arch);
  get("optimizer", c.optimizer);
  get("schedule", c.schedule);
  get("epochs", c.epochs);
  get("batch", c.batch);
  get("lr", c.lr);
  get("momentum", c.momentum);
  get("weight_decay", c.weight_decay);
  get("seed", c.seed);
  get("data", c.data);
  get("train_limit", c.train_limit);
  get("test_limit", c.test_limit);
  get("adv", c.adv);
  get("adv_eps", c.adv_eps);
  get("adv_weight", c.adv_weight);
  get("trades_beta", c.trades_beta);
  get("logit_pairing", c.logit_pairing);
  get("out", c.out);
  get("checkpoint_every", c.checkpoint_every);
  get("device", c.device);
  get("threads", c.threads);
}

json train_classifier(const ClassifierTraining& c, Device dev, bool resume, bool show) {
  NABLA_CHECK(c.epochs >= 1 && c.batch >= 1, "classify train: --epochs and --batch must be >= 1");
  NABLA_CHECK(c.adv == "none" || c.adv == "fgsm" || c.adv == "pgd" || c.adv == "trades", "--adv ",
              c.adv, ": expected none, fgsm, pgd or trades");
  const double lr = c.effective_lr();
  data::Dataset train = data::load_mnist(c.data, data::Split::Train, c.train_limit);
  data::Dataset test = data::load_mnist(c.data, data::Split::Test, c.test_limit);
  NABLA_CHECK(train.images.size(1) == 1 && train.images.size(2) == 28 && train.images.size(3) == 28,
              "classify train: FashionCNN needs 1x28x28 images, the data has ",
              shape_str(train.images.shape()));
  if (show)
    std::fprintf(
        stderr, "data: %lld train / %lld test images %s from %s; device %s\n",
        (long long)train.size(), (long long)test.size(), shape_str(train.images.shape()).c_str(),
        (c.data.empty() ? data::default_fashion_mnist_dir() : c.data).c_str(), dev.str().c_str());

  Generator gen(c.seed);
  std::shared_ptr<nn::Module> net_ptr = make_classifier(c.arch, &gen);
  nn::Module& net = *net_ptr;
  net.to(dev);
  data::DataLoader loader(train, c.batch, /*shuffle=*/true, c.seed);
  loader.set_pin_memory(dev.is_cuda());  // faster host-to-device copies of each batch
  const int64_t steps_per_epoch = loader.num_batches();
  auto opt = optim::make_optimizer(c.optimizer, net.parameters(),
                                   {.lr = lr,
                                    .momentum = c.optimizer == "sgd" ? c.momentum : 0,
                                    .weight_decay = c.weight_decay});
  auto schedule = optim::make_schedule(
      c.schedule,
      {.lr = lr, .total_steps = steps_per_epoch * c.epochs, .steps_per_epoch = steps_per_epoch});

  train::Trainer trainer({.name = "classify train",
                          .out = c.out,
                          .epochs = c.epochs,
                          .steps_per_epoch = steps_per_epoch,
                          .checkpoint_every = c.checkpoint_every,
                          .resume = resume,
                          .show = show},
                         {"epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc",
                          "epoch_seconds", "train_images_per_s"},
                         {{"loss",
                           "epoch",
                           "cross-entropy",
                           {{"loss:running", "train (running)", io::Rgb{150, 180, 230}},
                            {"train_loss", "train", io::Rgb{30, 90, 200}},
                            {"test_loss", "test", io::Rgb{220, 90, 30}}}},
                          {"accuracy",
                           "epoch",
                           "accuracy",
                           {{"train_acc", "train", io::Rgb{30, 90, 200}},
                            {"test_acc", "test", io::Rgb{220, 90, 30}}}}});
  trainer.add_module("model", net);
  trainer.add_optimizer("optimizer", *opt, schedule.get());
  trainer.set_options(c);
  trainer.set_metadata([&]() -> std::map<std::string, std::map<std::string, std::string>> {
    const json records = trainer.log().records();
    std::map<std::string, std::string> meta = {{"epoch", std::to_string(records.size())},
                                               {"seed", std::to_string(c.seed)}};
    if (!records.empty() && records.back()["test_acc"].is_number())
      meta["test_accuracy"] = std::to_string(records.back()["test_acc"].get<double>());
    return {{"model", meta}};
  });

  attack::Options aopt;
  if (c.adv != "none") {
    aopt.eps = c.adv_eps;
    aopt.random_start = true;
    aopt.early_stop = false;  // train on the attack's full strength, also where it already won
    aopt.alpha = c.adv == "fgsm" ? 1.25 * c.adv_eps : c.adv_eps / 4;
    aopt.steps = 7;
  }
  const attack::Model model = [&](const Tensor& xb) { return net(xb); };

  train::Evaluation last;
  json summary = trainer.fit(
      [&](int64_t epoch) {
        net.train();
        loader.set_epoch(epoch - 1);
      },
      [&](const train::StepInfo& s) {
        data::Batch b = loader.batch(s.batch);
        Tensor x = b["image"].to(dev), y = b["label"].to(dev);
        Tensor logits = net(x);
        Tensor loss = cross_entropy(logits, y);
        if (c.adv == "trades") {
          // TRADES: CE(f(x), y) + beta (1/N) sum_n KL(f(x)_n || f(x_adv)_n), x_adv from PGD on
          // the KL; the gradient flows through both f(x) and f(x_adv).
          aopt.seed = c.seed * 1000003 + uint64_t(s.step);
          Tensor x_adv = attack::trades_example(model, x, aopt);
          Tensor kl = attack::trades_kl(logits, net(x_adv));
          loss = add(loss, mul(div(sum(kl), double(y.size(0))), c.trades_beta));
        } else if (c.adv != "none") {
          aopt.seed = c.seed * 1000003 + uint64_t(s.step);
          Tensor x_adv = attack::run(c.adv, model, x, y, aopt).x_adv;
          Tensor logits_adv = net(x_adv);
          loss = add(loss, mul(cross_entropy(logits_adv, y), c.adv_weight));
          if (c.logit_pairing > 0)
            loss = add(loss, mul(div(sum(pow(sub(logits, logits_adv), 2.0)), double(y.size(0))),
                                 c.logit_pairing));
        }
        opt->zero_grad();
        loss.backward();
        opt->step();
        return train::StepResult{
            {{"loss", loss.item<double>()}, {"acc", metrics::accuracy(logits, b["label"])}},
            y.size(0)};
      },
      [&](const train::EpochStats& st) {
        last = train::evaluate_classifier(net, test, 256, dev, false);
        return train::Record{{"epoch", double(st.epoch)},
                             {"lr", opt->lr()},
                             {"train_loss", st.mean.at("loss")},
                             {"train_acc", st.mean.at("acc")},
                             {"test_loss", last.loss},
                             {"test_acc", last.accuracy()},
                             {"epoch_seconds", st.seconds},
                             {"train_images_per_s", double(st.samples) / st.seconds}};
      });
  if (last.n == 0) last = train::evaluate_classifier(net, test, 256, dev, false);  // resumed done

  summary.update({{"model", net.type_name()},
                  {"device", dev.str()},
                  {"optimizer", c.optimizer},
                  {"lr", lr},
                  {"schedule", c.schedule},
                  {"adv", c.adv},
                  {"adv_eps", c.adv_eps},
                  {"adv_weight", c.adv_weight},
                  {"logit_pairing", c.logit_pairing},
                  {"trades_beta", c.trades_beta},
                  {"batch", c.batch},
                  {"seed", c.seed},
                  {"n_train", train.size()},
                  {"n_test", test.size()},
                  {"test_accuracy", last.accuracy()},
                  {"accuracy", last.accuracy()},
                  {"test_loss", last.loss},
                  {"images_per_second", summary["samples_per_second"]},
                  {"checkpoint", trainer.checkpoint().module_path("model")},
                  {"metrics", trainer.log().csv_path()},
                  {"curves", trainer.log().curves_path()},
                  {"summary", trainer.log().summary_path()}});
  trainer.log().write_summary(summary);
  return summary;
}

}  // namespace nabla::nets
