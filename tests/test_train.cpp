// engine/train and what it builds on: run checkpoints (and their journal), the run log, the
// shared loop with resume and divergence, optimizers and schedules by name, module freezing.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nabla/io/safetensors.h>
#include <nabla/nn/layers.h>
#include <nabla/optim/factory.h>
#include <nabla/train/checkpoint.h>
#include <nabla/train/log.h>
#include <nabla/train/trainer.h>

#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;
namespace fs = std::filesystem;

namespace {

// A small net with dropout, so that its forward passes draw from the default generator.
struct Net : nn::Module {
  std::shared_ptr<nn::Linear> fc1, fc2;
  std::shared_ptr<nn::Dropout> drop;
  explicit Net(Generator* gen) : Module("Net") {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(4, 8, true, gen));
    drop = register_module("drop", std::make_shared<nn::Dropout>(0.25));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(8, 2, true, gen));
  }
  Tensor forward(const Tensor& x) override { return (*fc2)((*drop)(relu((*fc1)(x)))); }
};

std::vector<float> flat_params(const nn::Module& m) {
  std::vector<float> out;
  for (const Tensor& p : m.parameters()) {
    std::vector<float> v = p.contiguous().to_vector<float>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

// One training run of Net on data keyed by (epoch, batch), with SGD momentum under a cosine
// schedule. `stop_at`: throw from inside the step that would be global step stop_at (a crash
// after some checkpoints); `resume`: continue the run in dir. Returns the final parameters.
std::vector<float> run_net(const std::string& dir, int64_t stop_at, bool resume,
                           nlohmann::json* summary = nullptr, uint64_t init_seed = 1) {
  manual_seed(11);  // the dropout masks' stream; a resumed run gets it back from the checkpoint
  Generator init(init_seed);
  Net net(&init);
  auto opt = optim::make_optimizer("sgd", net.parameters(), {.lr = 0.1, .momentum = 0.9});
  const int64_t epochs = 3, steps = 5;
  auto sched = optim::make_schedule("cosine", {.lr = 0.1, .total_steps = epochs * steps});
  train::Options o{.name = "test run",
                   .out = dir,
                   .epochs = epochs,
                   .steps_per_epoch = steps,
                   .checkpoint_every = 3,
                   .resume = resume,
                   .show = false};
  train::Trainer t(o, {"epoch", "loss", "lr"},
                   {{"loss", "epoch", "mse", {{"loss:running", "running"}, {"loss", "epoch"}}}});
  t.add_module("net", net);
  t.add_optimizer("opt", *opt, sched.get());
  t.set_options({{"lr", 0.1}});
  net.train();
  nlohmann::json s =
      t.fit([](int64_t) {},
            [&](const train::StepInfo& info) {
              if (info.step == stop_at) throw std::runtime_error("crash");
              Generator data(uint64_t(info.epoch * 100 + info.batch));
              Tensor x = randn({6, 4}, DType::Float32, Device::cpu(), &data);
              Tensor y = randn({6, 2}, DType::Float32, Device::cpu(), &data);
              Tensor loss = mse_loss(net(x), y);
              opt->zero_grad();
              loss.backward();
              opt->step();
              return train::StepResult{{{"loss", loss.item<double>()}}, 6};
            },
            [&](const train::EpochStats& st) {
              return train::Record{
                  {"epoch", double(st.epoch)}, {"loss", st.mean.at("loss")}, {"lr", opt->lr()}};
            });
  if (summary) *summary = s;
  return flat_params(net);
}

}  // namespace

TEST_CASE("Checkpoint: modules, optimizer state and generators come back exactly") {
  TempDir tmp;
  Generator init(3), g(5);
  nn::Linear lin(3, 2, true, &init);
  optim::Adam adam(lin.parameters(), {.lr = 0.01});
  Tensor x = uniform({4, 3}).to(DType::Float32);
  for (int i = 0; i < 3; ++i) {
    adam.zero_grad();
    sum(mul(lin(x), lin(x))).backward();
    adam.step();
  }
  rand({10}, DType::Float32, Device::cpu(), &g);  // advances g
  train::Checkpoint ck(tmp / "run");
  ck.add_module("model", lin);
  ck.add_optimizer("adam", adam);
  ck.add_generator("data", g);
  ck.save({2, 7, 19}, {{"options", {{"lr", 0.01}}}}, {{"model", {{"note", "hello"}}}});
  const std::vector<float> w = flat_params(lin);
  const optim::StateList st = adam.state();
  const uint64_t g_offset = g.offset();

  // A plain PyTorch-style file with our metadata and the step tag.
  io::SafetensorsFile f = io::load_safetensors(tmp / "run/model.safetensors");
  CHECK(f.tensors.count("weight") == 1);
  CHECK(f.metadata.at("note") == "hello");
  CHECK(f.metadata.at("nabla_run_step") == "19");
  CHECK(train::Checkpoint::read_state(tmp / "run")["options"]["lr"] == 0.01);

  // A fresh module, optimizer and generator get everything back.
  Generator init2(99), g2(5);
  nn::Linear lin2(3, 2, true, &init2);
  optim::Adam adam2(lin2.parameters(), {.lr = 0.5});
  CHECK(flat_params(lin2) != w);
  train::Checkpoint ck2(tmp / "run");
  ck2.add_module("model", lin2);
  ck2.add_optimizer("adam", adam2);
  ck2.add_generator("data", g2);
  auto [pos, state] = ck2.load();
  CHECK(pos.epoch == 2);
  CHECK(pos.batch == 7);
  CHECK(pos.step == 19);
  CHECK(flat_params(lin2) == w);
  CHECK(adam2.lr() == 0.01);
  CHECK(g2.offset() == g_offset);
  const optim::StateList st2 = adam2.state();
  REQUIRE(st2.size() == st.size());
  for (size_t i = 0; i < st.size(); ++i) {
    CHECK(st2[i].first == st[i].first);
    CHECK(st2[i].second.to_vector<double>() == st[i].second.to_vector<double>());
  }

  // A run of other modules is refused, naming both lists.
  train::Checkpoint other(tmp / "run");
  other.add_module("generator", lin2);
  check_error([&] { other.load(); }, {"run_state.safetensors", "[\"model\"]", "[\"generator\"]"});
  check_error([&] { train::Checkpoint::read_state(tmp / "nothing"); }, {"no run to resume"});
}

TEST_CASE("Checkpoint: an interrupted save rolls forward or back to one consistent step") {
  TempDir tmp;
  Generator init(1);
  nn::Linear lin(2, 2, true, &init);
  train::Checkpoint ck(tmp / "a");
  ck.add_module("model", lin);
  ck.save({1, 1, 10}, {});
  const std::vector<float> w10 = flat_params(lin);
  fs::copy(tmp / "a", tmp / "at10", fs::copy_options::recursive);
  {
    NoGradGuard ng;
    copy_(lin.weight, add(lin.weight, 1.0));
  }
  ck.save({1, 2, 20}, {});
  const std::vector<float> w20 = flat_params(lin);
  REQUIRE(w10 != w20);

  auto load_into = [&](const std::string& dir) {
    Generator g(7);
    nn::Linear fresh(2, 2, true, &g);
    train::Checkpoint c(dir);
    c.add_module("model", fresh);
    const int64_t step = c.load().first.step;
    return std::make_pair(step, flat_params(fresh));
  };
  // Killed after writing the step-20 module but before the commit: back to step 10.
  fs::copy(tmp / "at10", tmp / "back", fs::copy_options::recursive);
  fs::copy_file(tmp / "a/model.safetensors", tmp / "back/model.safetensors.next");
  auto [s1, p1] = load_into(tmp / "back");
  CHECK(s1 == 10);
  CHECK(p1 == w10);
  CHECK(!fs::exists(tmp / "back/model.safetensors.next"));
  // Killed after the commit but before the rename: forward to step 20.
  fs::copy(tmp / "at10", tmp / "fwd", fs::copy_options::recursive);
  fs::copy_file(tmp / "a/model.safetensors", tmp / "fwd/model.safetensors.next");
  fs::copy_file(tmp / "a/run_state.safetensors", tmp / "fwd/run_state.safetensors",
                fs::copy_options::overwrite_existing);
  auto [s2, p2] = load_into(tmp / "fwd");
  CHECK(s2 == 20);
  CHECK(p2 == w20);
  // A module file of another step without a pending rename: two runs mixed, refused.
  fs::copy(tmp / "at10", tmp / "mixed", fs::copy_options::recursive);
  fs::copy_file(tmp / "a/model.safetensors", tmp / "mixed/model.safetensors",
                fs::copy_options::overwrite_existing);
  check_error([&] { load_into(tmp / "mixed"); }, {"holds step 20", "holds step 10", "mixes"});
}

TEST_CASE("RunLog: CSV rows, curves, summary, and a restore that rewrites the CSV") {
  TempDir tmp;
  train::RunLog log(tmp / "log", {"epoch", "loss", "acc"},
                    {{"loss", "epoch", "loss", {{"loss", "train"}, {"loss:running", "running"}}},
                     {"acc", "epoch", "acc", {{"acc", "train"}}}});
  log.point("loss:running", 0.5, 2.0);
  log.record({{"epoch", 1}, {"loss", 1.5}, {"acc", 0.25}}, 1);
  const nlohmann::json saved = log.state();
  log.record({{"epoch", 2}, {"loss", 0.5}, {"acc", std::nan("")}}, 2);
  CHECK(read_file(log.csv_path()) == "epoch,loss,acc\n1,1.5,0.25\n2,0.5,nan\n");
  CHECK(fs::file_size(log.curves_path()) > 1000);
  CHECK(log.records().size() == 2);
  CHECK(log.records()[1]["acc"].is_null());
  check_error([&] { log.record({{"epoch", 3}, {"loss", 1}}, 3); }, {"missing columns: acc"});
  check_error(
      [&] {
        log.record({{"epoch", 3}, {"loss", 1}, {"acc", 1}, {"lr", 1}}, 3);
      },
      {"unknown columns: lr"});
  log.write_summary({{"accuracy", 0.5}});
  CHECK(nlohmann::json::parse(read_file(log.summary_path()))["accuracy"] == 0.5);

  log.restore(saved);
  CHECK(read_file(log.csv_path()) == "epoch,loss,acc\n1,1.5,0.25\n");
  CHECK(log.state() == saved);
  train::RunLog other(tmp / "other", {"epoch"}, {});
  check_error([&] { other.restore(saved); }, {"columns"});
}

TEST_CASE("Trainer: a run stopped mid-epoch and resumed ends bit for bit like an unbroken one") {
  TempDir tmp;
  nlohmann::json full_summary, resumed_summary;
  const std::vector<float> full = run_net(tmp / "full", -1, false, &full_summary);
  CHECK(full_summary["steps"] == 15);
  CHECK(full_summary["per_epoch"].size() == 3);
  CHECK(full_summary["resumed_from_step"].is_null());

  // Crash inside step 8 (of 15): the last checkpoint is step 6 (checkpoint_every 3), mid epoch 2.
  CHECK_THROWS_WITH(run_net(tmp / "broken", 8, false), "crash");
  CHECK(train::Checkpoint::exists(tmp / "broken"));
  CHECK(train::saved_options(tmp / "broken")["lr"] == 0.1);
  // Resumed with freshly initialised weights (another seed): the checkpoint overrides them.
  const std::vector<float> resumed = run_net(tmp / "broken", -1, true, &resumed_summary, 77);
  CHECK(resumed_summary["resumed_from_step"] == 6);
  CHECK(resumed == full);
  CHECK(resumed_summary["per_epoch"] == full_summary["per_epoch"]);
  CHECK(read_file(tmp / "broken/metrics.csv") == read_file(tmp / "full/metrics.csv"));
  CHECK(read_file(tmp / "broken/net.safetensors") == read_file(tmp / "full/net.safetensors"));

  // Resuming a finished run runs nothing and reports the same epochs.
  nlohmann::json again;
  CHECK(run_net(tmp / "full", -1, true, &again) == full);
  CHECK(again["per_epoch"] == full_summary["per_epoch"]);
}

TEST_CASE("Trainer: a diverged loss stops the run, names the step, keeps the last checkpoint") {
  TempDir tmp;
  Generator init(2);
  nn::Linear lin(2, 1, true, &init);
  auto opt = optim::make_optimizer("sgd", lin.parameters(), {.lr = 0.1});
  train::Trainer t({.name = "toy train",
                    .out = tmp / "run",
                    .epochs = 2,
                    .steps_per_epoch = 4,
                    .checkpoint_every = 2,
                    .show = false},
                   {"epoch"}, {});
  t.add_module("model", lin);
  t.add_optimizer("opt", *opt);
  std::string saved_before;
  check_error(
      [&] {
        t.fit([](int64_t) {},
              [&](const train::StepInfo& s) {
                if (s.step == 5) saved_before = read_file(tmp / "run/model.safetensors");
                return train::StepResult{{{"loss", s.step == 5 ? std::nan("") : 1.0}}, 1};
              },
              [](const train::EpochStats& st) {
                return train::Record{{"epoch", double(st.epoch)}};
              });
      },
      {"toy train", "loss became nan", "epoch 2, batch 1", "step 6", "last checkpoint (step 4)",
       tmp / "run"});
  CHECK(read_file(tmp / "run/model.safetensors") == saved_before);
  CHECK(train::Checkpoint::read_state(tmp / "run")["running"]["samples"] == 0);

  // A finite loss over weights that the step made infinite: the state is not saved either.
  train::Trainer t2({.name = "toy train",
                     .out = tmp / "run2",
                     .epochs = 1,
                     .steps_per_epoch = 3,
                     .checkpoint_every = 1,
                     .show = false},
                    {"epoch"}, {});
  t2.add_module("model", lin);
  check_error(
      [&] {
        t2.fit([](int64_t) {},
               [&](const train::StepInfo& s) {
                 if (s.step == 1) {
                   NoGradGuard ng;
                   copy_(lin.bias, full({1}, INFINITY));
                 }
                 return train::StepResult{{{"loss", 1.0}}, 1};
               },
               [](const train::EpochStats& st) {
                 return train::Record{{"epoch", double(st.epoch)}};
               });
      },
      {"model.bias became non-finite", "step 2", "last checkpoint (step 1)"});
}

TEST_CASE("optimizers and schedules by name") {
  Generator g(1);
  nn::Linear lin(2, 2, true, &g);
  CHECK(dynamic_cast<optim::SGD*>(optim::make_optimizer("sgd", lin.parameters(), {}).get()));
  CHECK(dynamic_cast<optim::AdamW*>(optim::make_optimizer("adamw", lin.parameters(), {}).get()));
  auto adam = optim::make_optimizer("adam", lin.parameters(), {.lr = 0.02, .beta1 = 0.5});
  REQUIRE(dynamic_cast<optim::Adam*>(adam.get()));
  CHECK(dynamic_cast<optim::Adam*>(adam.get())->options().beta1 == 0.5);
  check_error([&] { optim::make_optimizer("lbfgs", lin.parameters(), {}); },
              {"unknown optimizer 'lbfgs'", "sgd, adam, adamw"});

  auto cosine = optim::make_schedule("cosine", {.lr = 1, .total_steps = 10});
  CHECK(cosine->lr_at(0) == doctest::Approx(1));
  CHECK(cosine->lr_at(5) == doctest::Approx(0.5));
  auto step = optim::make_schedule("step", {.lr = 1, .total_steps = 10, .steps_per_epoch = 4});
  CHECK(step->lr_at(3) == 1);
  CHECK(step->lr_at(4) == 0.5);
  auto lin_decay = optim::make_schedule("linear-decay", {.lr = 1, .total_steps = 10});
  CHECK(lin_decay->lr_at(4) == 1);  // constant for the first half
  CHECK(lin_decay->lr_at(9) == doctest::Approx(1 - 5.0 / 6));
  CHECK(optim::make_schedule("constant", {.lr = 0.3})->lr_at(100) == 0.3);
  check_error([&] { optim::make_schedule("exp", {}); }, {"unknown schedule 'exp'", "cosine"});
}

namespace {

// A generator (linear, z -> 1x6x6 image) and a discriminator (conv, then linear to a logit).
struct G : nn::Module {
  std::shared_ptr<nn::Linear> fc;
  explicit G(Generator* gen) : Module("G") {
    fc = register_module("fc", std::make_shared<nn::Linear>(3, 36, true, gen));
  }
  Tensor forward(const Tensor& z) override { return tanh((*fc)(z)).reshape({z.size(0), 1, 6, 6}); }
};
struct D : nn::Module {
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::Linear> fc;
  explicit D(Generator* gen) : Module("D") {
    conv = register_module("conv", std::make_shared<nn::Conv2d>(1, 2, 3, 1, 1, 1, 1, true, gen));
    fc = register_module("fc", std::make_shared<nn::Linear>(72, 1, true, gen));
  }
  Tensor forward(const Tensor& x) override {
    return (*fc)(relu((*conv)(x)).reshape({x.size(0), 72}));
  }
};

}  // namespace

TEST_CASE(
    "freezing: a generator step through a frozen discriminator computes no D weight gradient") {
  Generator gen(4);
  G g(&gen);
  D d(&gen);
  const Tensor z = randn({5, 3}, DType::Float32, Device::cpu(), &gen);
  auto generator_step = [&] {
    g.zero_grad();
    d.zero_grad();
    reset_kernel_counts();
    // Non-saturating generator loss: -mean log sigmoid(D(G(z))) = BCE(D(G(z)), 1).
    Tensor logit = d(g(z));
    Tensor loss = binary_cross_entropy_with_logits(logit, ones_like(logit));
    loss.backward();
  };
  {
    nn::FreezeGuard frozen(d);
    generator_step();
    CHECK(kernel_count("conv2d_backward_weight") == 0);
    CHECK(kernel_count("linear_backward_weight") == 1);  // G's only
    CHECK(kernel_count("conv2d_backward_input") == 1);   // the gradient crosses D to G
    for (const Tensor& p : d.parameters()) CHECK_FALSE(p.grad().defined());
    for (const Tensor& p : g.parameters()) CHECK(p.grad().defined());
    // Freezing survives a move.
    d.to(DType::Float64);
    d.to(DType::Float32);
    for (const Tensor& p : d.parameters()) CHECK_FALSE(p.requires_grad());
  }
  // The guard restored the flags: the same step now pays for D's weight gradients too.
  for (const Tensor& p : d.parameters()) CHECK(p.requires_grad());
  generator_step();
  CHECK(kernel_count("conv2d_backward_weight") == 1);
  CHECK(kernel_count("linear_backward_weight") == 2);
  for (const Tensor& p : d.parameters()) CHECK(p.grad().defined());

  nn::set_requires_grad(g, false);
  for (const Tensor& p : g.parameters()) CHECK_FALSE(p.requires_grad());
  nn::set_requires_grad(g, true);
  for (const Tensor& p : g.parameters()) CHECK(p.requires_grad());
}

TEST_CASE(
    "read_option: a present key is read, a missing one keeps the default, a wrong type names it") {
  const nlohmann::json j = {{"epochs", 7}, {"lr", "fast"}};
  int64_t epochs = 1, batch = 64;
  double lr = 0.1;
  train::read_option(j, "test options", "epochs", epochs);
  train::read_option(j, "test options", "batch", batch);
  CHECK(epochs == 7);
  CHECK(batch == 64);
  check_error([&] { train::read_option(j, "test options", "lr", lr); },
              {"test options: 'lr' = \"fast\""});
  CHECK(lr == 0.1);
}
