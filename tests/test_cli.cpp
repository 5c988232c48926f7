// End-to-end runs of the example programs, as a user would run them: the exit code, the
// files they write, and the numbers they print.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include <nabla/data/histology.h>
#include <nabla/data/mnist.h>
#include <nabla/io/image.h>
#include <nabla/io/safetensors.h>
#include <nabla/nabla.h>
#include <nets/unet.h>

#include "gradcheck.h"

namespace {

struct Run {
  int status = -1;
  std::string out;
};

// Runs `cmd` through the shell, capturing stdout (stderr goes to the test log).
Run run(const std::string& cmd) {
  Run r;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE_MESSAGE(p != nullptr, "cannot run " << cmd);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  r.status = pclose(p);
  return r;
}

const std::string kBin = NABLA_BIN_DIR;

// A path under /tmp unique to this process: two test runs (two build trees) never share files.
std::string scratch(const std::string& name) {
  return "/tmp/nabla_test_" + std::to_string(getpid()) + "_" + name;
}

}  // namespace

// The Debian package's Fashion-MNIST, which scripts/install_deps.sh installs.
bool have_fashion_mnist() {
  if (std::filesystem::exists(nabla::data::default_fashion_mnist_dir() +
                              "/t10k-images-idx3-ubyte.gz"))
    return true;
  MESSAGE("skipped: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
  return false;
}

TEST_CASE("nabla squares: trains, localises the saliency, runs no weight-gradient kernel") {
  const std::string dir = scratch("squares");
  std::filesystem::remove_all(dir);
  Run r = run(kBin + "/nabla squares --json --steps 150 --seed 3 --out " + dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["test_accuracy"].get<double>() >= 0.95);
  CHECK(j["weight_gradient_kernels_in_grad_x"].get<int>() == 0);
  // The shape's box is 1/16 of the image; a saliency map that ignored it would put ~6% there.
  CHECK(j["saliency_on_shape"].get<double>() > 4 * j["shape_area_fraction"].get<double>());
  CHECK(std::filesystem::file_size(dir + "/saliency.png") > 1000);
  nabla::Tensor maps = nabla::load_npy(dir + "/saliency.npy");
  CHECK(maps.shape() == nabla::Shape{8, 16, 16});
  std::vector<float> v = maps.to_vector<float>();
  CHECK(*std::min_element(v.begin(), v.end()) >= 0.0f);  // |dS/dx|
  CHECK(std::filesystem::exists(dir + "/report.json"));
}

TEST_CASE("--help explains every command and flag, bad flags fail cleanly") {
  Run top = run(kBin + "/nabla --help");
  CHECK(top.status == 0);
  for (const char* cmd : {"classify", "demo", "squares"})
    CHECK_MESSAGE(top.out.find(cmd) != std::string::npos, cmd);
  Run train = run(kBin + "/nabla classify train --help");
  CHECK(train.status == 0);
  for (const char* flag : {"--epochs", "--batch", "--lr", "--optimizer", "--seed", "--device",
                           "--data", "--out", "--json", "--schedule", "--train-limit"})
    CHECK_MESSAGE(train.out.find(flag) != std::string::npos, flag);
  Run eval = run(kBin + "/nabla classify eval --help");
  for (const char* flag : {"--checkpoint", "--data", "--json", "--limit", "--device"})
    CHECK_MESSAGE(eval.out.find(flag) != std::string::npos, flag);
  Run demo = run(kBin + "/nabla demo --help");
  for (const char* flag : {"--out", "--epochs", "--device", "--json"})
    CHECK_MESSAGE(demo.out.find(flag) != std::string::npos, flag);
  Run sq = run(kBin + "/nabla squares --help");
  for (const char* flag : {"--out", "--steps", "--batch", "--lr", "--seed", "--show", "--json"})
    CHECK_MESSAGE(sq.out.find(flag) != std::string::npos, flag);

  Run bad = run(kBin + "/nabla squares --steps 0 2>&1");
  CHECK(bad.status != 0);
  CHECK(bad.out.find("--steps") != std::string::npos);
  Run opt = run(kBin + "/nabla classify train --optimizer lbfgs 2>&1");
  CHECK(opt.status != 0);
  CHECK(opt.out.find("--optimizer") != std::string::npos);
  Run none = run(kBin + "/nabla 2>&1");
  CHECK(none.status != 0);
}

TEST_CASE("missing data, missing or foreign checkpoints: one clear line, non-zero exit") {
  Run data = run(kBin + "/nabla classify train --data /nonexistent/mnist --out /tmp/nabla_x 2>&1");
  CHECK(data.status != 0);
  CHECK(data.out.find("/nonexistent/mnist") != std::string::npos);
  Run ck = run(kBin + "/nabla classify eval --checkpoint /nonexistent.safetensors 2>&1");
  CHECK(ck.status != 0);
  CHECK(ck.out.find("/nonexistent.safetensors") != std::string::npos);
  // A valid safetensors file that holds something else.
  const std::string other = scratch("other.safetensors");
  nabla::io::save_safetensors(other, {{"w", nabla::zeros({2, 2})}});
  Run foreign = run(kBin + "/nabla classify eval --checkpoint " + other + " 2>&1");
  CHECK(foreign.status != 0);
  CHECK(foreign.out.find("does not hold a FashionCNN") != std::string::npos);
  CHECK(foreign.out.find("missing keys: conv1.weight, conv1.bias") != std::string::npos);
  if (nabla::cuda_available()) return;
  Run dev = run(kBin + "/nabla classify train --device cuda --out /tmp/nabla_x 2>&1");
  CHECK(dev.status != 0);
  CHECK(dev.out.find("--device cuda") != std::string::npos);
}

TEST_CASE("classify train on a subset, then eval of its checkpoint: the printed accuracy") {
  if (!have_fashion_mnist()) return;
  const std::string dir = scratch("classify");
  std::filesystem::remove_all(dir);
  Run r = run(kBin + "/nabla classify train --json --epochs 2 --train-limit 4000 " +
              "--test-limit 1000 --seed 1 --out " + dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  nlohmann::json j = nlohmann::json::parse(r.out);
  // Chance is 0.10; two epochs on 4000 images reach about 0.75.
  CHECK(j["test_accuracy"].get<double>() >= 0.65);
  CHECK(j["n_test"].get<int>() == 1000);
  CHECK(j["n_train"].get<int>() == 4000);
  CHECK(j["per_epoch"].size() == 2);
  CHECK(j["per_epoch"][1]["train_loss"].get<double>() <
        j["per_epoch"][0]["train_loss"].get<double>());
  // metrics.csv: a header and one row per epoch.
  std::ifstream csv(dir + "/metrics.csv");
  std::string line;
  int lines = 0;
  while (std::getline(csv, line)) ++lines;
  CHECK(lines == 3);
  CHECK(std::filesystem::file_size(dir + "/curves.png") > 2000);
  // The checkpoint holds PyTorch's names and layouts.
  auto file = nabla::io::load_safetensors(dir + "/model.safetensors");
  CHECK(file.tensors.size() == 8);
  CHECK(file.tensors.at("fc1.weight").shape() == nabla::Shape{128, 3136});
  CHECK(file.metadata.at("format") == "pt");

  Run e = run(kBin + "/nabla classify eval --json --limit 1000 --checkpoint " + dir +
              "/model.safetensors");
  REQUIRE_MESSAGE(e.status == 0, e.out);
  nlohmann::json ej = nlohmann::json::parse(e.out);
  CHECK(ej["n"].get<int>() == 1000);
  CHECK(ej["accuracy"].get<double>() == doctest::Approx(j["test_accuracy"].get<double>()));
  int64_t total = 0, diag = 0;
  for (size_t t = 0; t < 10; ++t)
    for (size_t p = 0; p < 10; ++p) {
      total += ej["confusion"][t][p].get<int64_t>();
      if (t == p) diag += ej["confusion"][t][p].get<int64_t>();
    }
  CHECK(total == 1000);
  CHECK(double(diag) / 1000 == doctest::Approx(ej["accuracy"].get<double>()));
  CHECK(ej["per_class"][1]["class"] == "Trouser");
  Run text = run(kBin + "/nabla classify eval --limit 200 --checkpoint " + dir +
                 "/model.safetensors 2>/dev/null");
  CHECK(text.status == 0);
  CHECK(text.out.find("confusion matrix") != std::string::npos);
  CHECK(text.out.find("Ankle boot") != std::string::npos);
}

namespace {

using nabla::test::read_file;

// The checkpointed position of the run in dir: its "nabla_run" metadata, or null while there is
// no checkpoint yet. The run state is replaced by a rename, so a read sees a whole file.
nlohmann::json checkpointed_position(const std::string& dir) {
  const std::string path = dir + "/run_state.safetensors";
  if (!std::filesystem::exists(path)) return nullptr;
  try {
    auto f = nabla::io::load_safetensors(path);
    return nlohmann::json::parse(f.metadata.at("nabla_run"))["position"];
  } catch (const std::exception&) {
    return nullptr;  // replaced between the exists() and the read
  }
}

// Starts `cmd` (a program and its arguments, run by the shell) and kills it with SIGKILL as soon as
// the run folder `dir` holds a checkpoint at step >= min_step. Returns that checkpoint's position;
// fails the test when the command ended first.
nlohmann::json run_and_kill(const std::string& cmd, const std::string& dir, int64_t min_step) {
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const std::string line = "exec " + cmd + " >/dev/null 2>&1";  // exec: the kill hits nabla
    execl("/bin/sh", "sh", "-c", line.c_str(), (char*)nullptr);
    _exit(127);
  }
  bool killed = false;
  nlohmann::json at;
  for (int i = 0; i < 30000 && !killed; ++i) {  // 10 minutes at most
    at = checkpointed_position(dir);
    if (!at.is_null() && at["step"].get<int64_t>() >= min_step) {
      kill(pid, SIGKILL);
      killed = true;
    } else {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) break;  // ended before we could kill it
      usleep(20000);
    }
  }
  int status = 0;
  if (killed) waitpid(pid, &status, 0);
  REQUIRE_MESSAGE(killed, cmd << ": ended before a checkpoint at step >= " << min_step);
  CHECK(WIFSIGNALED(status));
  return at;
}

// metrics.csv without its timing columns (the last two), which a resumed run cannot reproduce.
std::string metrics_without_timings(const std::string& path) {
  std::ifstream f(path);
  std::string line, out;
  while (std::getline(f, line)) {
    for (int k = 0; k < 2; ++k) line = line.substr(0, line.rfind(','));
    out += line + "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("classify train killed with SIGKILL mid-epoch, then --resume: the same bytes") {
  if (!have_fashion_mnist()) return;
  const std::string a = scratch("resume_whole"), b = scratch("resume_killed");
  std::filesystem::remove_all(a);
  std::filesystem::remove_all(b);
  const std::string args =
      " --epochs 2 --train-limit 1500 --test-limit 200 --batch 32 --seed 3 "
      "--checkpoint-every 7 --threads 2 --quiet --out ";
  Run whole = run(kBin + "/nabla classify train" + args + a);
  REQUIRE_MESSAGE(whole.status == 0, whole.out);

  // The same run in the background, killed as soon as a mid-epoch checkpoint of epoch 1 exists.
  const nlohmann::json at = run_and_kill(kBin + "/nabla classify train" + args + b, b, 14);
  CHECK(at["epoch"].get<int64_t>() == 1);  // 47 steps per epoch: killed mid-epoch
  // The killed run stopped at or after that checkpoint.
  const nlohmann::json last = checkpointed_position(b);
  CHECK(last["step"].get<int64_t>() >= at["step"].get<int64_t>());

  Run resumed = run(kBin + "/nabla classify train --json --resume " + b);
  REQUIRE_MESSAGE(resumed.status == 0, resumed.out);
  nlohmann::json j = nlohmann::json::parse(resumed.out);
  CHECK(j["resumed_from_step"].get<int64_t>() == last["step"].get<int64_t>());
  CHECK(j["n_train"].get<int>() == 1500);  // the options came from the run, not the defaults
  CHECK(read_file(b + "/model.safetensors") == read_file(a + "/model.safetensors"));
  CHECK(metrics_without_timings(b + "/metrics.csv") == metrics_without_timings(a + "/metrics.csv"));

  // A flag that contradicts the run being resumed is refused; --epochs may grow it.
  Run clash = run(kBin + "/nabla classify train --resume " + b + " --lr 0.3 2>&1");
  CHECK(clash.status != 0);
  CHECK(clash.out.find("--lr 0.3") != std::string::npos);
  CHECK(clash.out.find("started with 0.0") != std::string::npos);
  Run longer = run(kBin + "/nabla classify train --json --resume " + b + " --epochs 3");
  REQUIRE_MESSAGE(longer.status == 0, longer.out);
  CHECK(nlohmann::json::parse(longer.out)["per_epoch"].size() == 3);
}

TEST_CASE("classify train: a diverging loss stops with the step named, the checkpoint kept") {
  if (!have_fashion_mnist()) return;
  const std::string dir = scratch("diverge");
  std::filesystem::remove_all(dir);
  Run r = run(kBin + "/nabla classify train --epochs 1 --train-limit 2000 --test-limit 100 " +
              "--lr 50 --checkpoint-every 2 --quiet --out " + dir + " 2>&1");
  CHECK(r.status != 0);
  CHECK(r.out.find("loss became") != std::string::npos);
  CHECK(r.out.find("(step ") != std::string::npos);
  CHECK(r.out.find("the last checkpoint (step ") != std::string::npos);
  // What stays is a loadable checkpoint of finite weights.
  auto file = nabla::io::load_safetensors(dir + "/model.safetensors");
  for (const auto& kv : file.tensors)  // not a structured binding: the message captures the name
    for (float v : kv.second.to_vector<float>()) REQUIRE_MESSAGE(std::isfinite(v), kv.first);
}

TEST_CASE("nabla demo: report folder, reloaded accuracy, zero weight-gradient kernels") {
  if (!have_fashion_mnist()) return;
  const std::string dir = scratch("demo");
  std::filesystem::remove_all(dir);
  Run r = run(kBin + "/nabla demo --json --train-limit 6000 --out " + dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  nlohmann::json j = nlohmann::json::parse(r.out);
  // Chance is 0.10; one epoch on 6000 images reaches about 0.75.
  CHECK(j["accuracy"].get<double>() >= 0.65);
  CHECK(j["n"].get<int>() == 10000);
  // The checkpoint written and reloaded gives the accuracy measured during training.
  CHECK(j["accuracy"].get<double>() == doctest::Approx(j["train"]["test_accuracy"].get<double>()));
  CHECK(j["weight_gradient_kernels_in_grad_x"].get<int>() == 0);
  for (const char* f :
       {"/report.md", "/report.json", "/predictions.png", "/saliency.png", "/classify/curves.png",
        "/classify/metrics.csv", "/classify/model.safetensors", "/segment_attack.png",
        "/segment/val_predictions.png", "/segment/model.safetensors"})
    CHECK_MESSAGE(std::filesystem::exists(dir + f), f);
  // The segmentation section: the U-Net finds nuclei, and the attack toward the background
  // takes mIoU away.
  CHECK(j["segment"]["n_test"].get<int64_t>() == 32);
  CHECK(j["segment"]["test_miou"].get<double>() > 0.15);
  CHECK(j["segment"]["attacked_miou"].get<double>() < j["segment"]["test_miou"].get<double>());
  // The generative section: the AAE reconstructs well below log 2 = 0.693 per pixel (about 0.4
  // after 5 epochs of 6000 images), and both discriminators output probabilities.
  const nlohmann::json& ga = j["generative"]["aae"];
  CHECK(ga["test_recon"].get<double>() < 0.5);
  CHECK(ga["test_recon"].get<double>() > 0.2);
  for (const char* k : {"d_prior", "d_code"}) {
    CHECK(ga[k].get<double>() > 0);
    CHECK(ga[k].get<double>() < 1);
  }
  const nlohmann::json& gg = j["generative"]["gan"];
  CHECK(gg["n_train"].get<int64_t>() == 2048);
  CHECK(gg["d_x"].get<double>() > gg["d_g_z"].get<double>());
  for (const char* f : {"/aae/latent.png", "/aae/manifold.png", "/gan/samples/epochs.png"})
    CHECK_MESSAGE(std::filesystem::exists(dir + f), f);
  // The translation section: pix2pix maps edges to items far better than the edges themselves
  // match them (their L1 to the items is about 1.37).
  CHECK(std::filesystem::exists(dir + "/pix2pix_panel.png"));
  CHECK(j["translation"]["l1"].get<double>() < 0.5);
  CHECK(j["translation"]["ssim"].get<double>() > 0.25);
}

TEST_CASE("classify train --device cuda: the GPU run reaches the CPU run's accuracy") {
  if (!nabla::cuda_available()) {
    MESSAGE("skipped: no CUDA GPU on this machine");
    return;
  }
  if (!have_fashion_mnist()) return;
#ifdef NABLA_CUDA_EMU
  // The emulated GPU runs every CUDA thread on the host: a third of the data, the same path.
  const std::string args = " --json --epochs 1 --train-limit 1000 --test-limit 500 --seed 4 ";
#else
  const std::string args = " --json --epochs 1 --train-limit 3000 --test-limit 1000 --seed 4 ";
#endif
  Run cpu = run(kBin + "/nabla classify train --device cpu" + args + "--out " + scratch("c"));
  Run gpu = run(kBin + "/nabla classify train --device cuda" + args + "--out " + scratch("g"));
  REQUIRE_MESSAGE(cpu.status == 0, cpu.out);
  REQUIRE_MESSAGE(gpu.status == 0, gpu.out);
  nlohmann::json jc = nlohmann::json::parse(cpu.out), jg = nlohmann::json::parse(gpu.out);
  CHECK(jg["device"] == "cuda:0");
  // Same seed, same data order and Philox draws: the runs differ only by float rounding.
  CHECK(jg["test_accuracy"].get<double>() ==
        doctest::Approx(jc["test_accuracy"].get<double>()).epsilon(0.02));
}

TEST_CASE("nabla attack and robustness: FGSM and PGD hurt, noise barely does, norms stay in eps") {
  if (!have_fashion_mnist()) return;
  const std::string dir = scratch("attack");
  Run t = run(kBin + "/nabla classify train --json --epochs 1 --train-limit 4000 --test-limit " +
              "200 --seed 5 --out " + dir);
  REQUIRE_MESSAGE(t.status == 0, t.out);
  const std::string ck = " --json --n 300 --checkpoint " + dir + "/model.safetensors --out " + dir;
  auto attack = [&](const std::string& args) {
    Run r = run(kBin + "/nabla attack" + ck + " " + args);
    REQUIRE_MESSAGE(r.status == 0, r.out);
    return nlohmann::json::parse(r.out);
  };
  nlohmann::json fgsm = attack("--method fgsm --eps 0.1");
  nlohmann::json pgd = attack("--method pgd --eps 0.1 --alpha 0.02 --steps 10 --random-start");
  nlohmann::json noise = attack("--method noise --eps 0.1");
  CHECK(fgsm["n"].get<int>() == 300);
  const double clean = fgsm["clean_accuracy"].get<double>();
  CHECK(clean >= 0.6);
  CHECK(fgsm["adv_accuracy"].get<double>() < clean - 0.2);
  CHECK(pgd["adv_accuracy"].get<double>() <= fgsm["adv_accuracy"].get<double>());
  CHECK(noise["adv_accuracy"].get<double>() > clean - 0.1);
  for (const auto* j : {&fgsm, &pgd, &noise}) {
    CHECK((*j)["mean_linf"].get<double>() <= 0.1 + 1e-6);
    CHECK((*j)["success_rate"].get<double>() >= 1 - (*j)["adv_accuracy"].get<double>() - 1e-9);
  }
  CHECK(std::filesystem::file_size(dir + "/fgsm.png") > 2000);

  // robustness: the eps sweep starts at the clean accuracy and falls; the transferability
  // matrix of a model with itself is the white-box FGSM accuracy everywhere.
  const std::string model = dir + "/model.safetensors";
  Run rb = run(kBin + "/nabla robustness --json --n 300 --eps 0,0.05,0.1 --methods fgsm" +
               " --checkpoint " + model + " --models " + model + " --out " + dir);
  REQUIRE_MESSAGE(rb.status == 0, rb.out);
  nlohmann::json rj = nlohmann::json::parse(rb.out);
  REQUIRE(rj["sweep"].size() == 3);
  CHECK(rj["sweep"][0]["accuracy"].get<double>() == doctest::Approx(clean));
  CHECK(rj["sweep"][2]["accuracy"].get<double>() ==
        doctest::Approx(fgsm["adv_accuracy"].get<double>()));
  CHECK(rj["sweep"][1]["accuracy"].get<double>() < clean);
  CHECK(rj["transfer"]["accuracy"][0][1].get<double>() ==
        doctest::Approx(fgsm["adv_accuracy"].get<double>()));
  CHECK(std::filesystem::file_size(dir + "/robustness.png") > 2000);
  Run bad =
      run(kBin + "/nabla attack --checkpoint " + dir + "/model.safetensors --target cat 2>&1");
  CHECK(bad.status != 0);
  CHECK(bad.out.find("--target cat") != std::string::npos);
}

TEST_CASE("classify train --adv fgsm: the adversarially trained model resists FGSM better") {
  if (!have_fashion_mnist()) return;
  const std::string args = " --json --epochs 1 --train-limit 4000 --test-limit 200 --seed 1 ";
  const std::string plain = scratch("plain"), robust = scratch("robust");
  Run p = run(kBin + "/nabla classify train" + args + "--out " + plain);
  Run r = run(kBin + "/nabla classify train" + args + "--adv fgsm --adv-eps 0.1 --out " + robust);
  REQUIRE_MESSAGE(p.status == 0, p.out);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(nlohmann::json::parse(r.out)["adv"] == "fgsm");
  auto fgsm_acc = [&](const std::string& dir) {
    Run a = run(kBin + "/nabla attack --json --method fgsm --eps 0.1 --n 1000 --show 0 " +
                "--checkpoint " + dir + "/model.safetensors --out " + dir);
    REQUIRE_MESSAGE(a.status == 0, a.out);
    return nlohmann::json::parse(a.out)["adv_accuracy"].get<double>();
  };
  const double a_plain = fgsm_acc(plain), a_robust = fgsm_acc(robust);
  MESSAGE("FGSM eps 0.1 accuracy: plain " << a_plain << ", adversarially trained " << a_robust);
  CHECK(a_robust > a_plain + 0.05);
}

TEST_CASE("nabla explain: every method writes its maps and panel, classes, errors, CAM on GAP") {
  if (!have_fashion_mnist()) return;
  const std::string dir = scratch("explain");
  std::filesystem::remove_all(dir);
  const std::string args = " --json --epochs 1 --train-limit 2000 --test-limit 100 --seed 2 ";
  Run t = run(kBin + "/nabla classify train" + args + "--out " + dir + "/cnn");
  Run g = run(kBin + "/nabla classify train" + args + "--arch gap --out " + dir + "/gap");
  REQUIRE_MESSAGE(t.status == 0, t.out);
  REQUIRE_MESSAGE(g.status == 0, g.out);
  CHECK(nlohmann::json::parse(g.out)["model"] == "FashionGAP");
  const std::string cnn = " --checkpoint " + dir + "/cnn/model.safetensors --out " + dir;
  auto explain = [&](const std::string& a) {
    Run r = run(kBin + "/nabla explain --json" + a);
    REQUIRE_MESSAGE(r.status == 0, a << "\n" << r.out);
    return nlohmann::json::parse(r.out);
  };

  // saliency: [B-A, 28, 28] maps of |dS/dx| for the predicted classes, and a panel.
  nlohmann::json s =
      explain(cnn + " --method saliency --indices 3:8 --save-npy " + dir + "/s/sal.npy");
  nabla::Tensor m = nabla::load_npy(dir + "/s/sal.npy");
  CHECK(m.shape() == nabla::Shape{5, 28, 28});
  std::vector<float> v = m.to_vector<float>();
  CHECK(*std::min_element(v.begin(), v.end()) >= 0.0f);
  CHECK(*std::max_element(v.begin(), v.end()) > 0.0f);
  CHECK(s["classes"] == s["predicted"]);
  CHECK(s["indices"] == nlohmann::json::array({3, 8}));
  CHECK(std::filesystem::file_size(dir + "/saliency.png") > 2000);

  // Every per-image method, and --class fixing the class explained.
  for (const char* method : {"smoothgrad", "integrated-gradients", "gradcam", "gradcam++",
                             "guided-backprop", "guided-gradcam", "deconvnet", "occlusion"}) {
    const std::string npy = dir + "/" + method + ".npy";
    nlohmann::json j = explain(cnn + " --method " + method + " --indices 0:3 --class 4 " +
                               "--samples 4 --steps 8 --save-npy " + npy);
    nabla::Tensor mm = nabla::load_npy(npy);
    CHECK_MESSAGE((mm.shape() == nabla::Shape{3, 28, 28}), method);
    for (float x : mm.to_vector<float>()) REQUIRE_MESSAGE(std::isfinite(x), method);
    CHECK_MESSAGE(j["classes"] == nlohmann::json::array({4, 4, 4}), method);
    CHECK_MESSAGE(std::filesystem::exists(dir + "/" + method + ".png"), method);
  }
  // The saliency maps of one image are the same whichever range it is explained in.
  explain(cnn + " --method saliency --indices 5:6 --save-npy " + dir + "/one.npy");
  std::vector<float> one = nabla::load_npy(dir + "/one.npy").to_vector<float>();
  for (size_t k = 0; k < one.size(); ++k)
    REQUIRE(one[k] == doctest::Approx(v[2 * 784 + k]).epsilon(1e-5));

  explain(cnn + " --method compare --indices 0:4");
  CHECK(std::filesystem::file_size(dir + "/compare.png") > 5000);
  explain(cnn + " --method class-model --iterations 20 --save-npy " + dir + "/cm.npy");
  CHECK(nabla::load_npy(dir + "/cm.npy").shape() == nabla::Shape{10, 28, 28});
  explain(cnn + " --method activation --layer conv1 --channel 3 --iterations 10");

  // CAM needs global average pooling: FashionCNN is refused with a hint, FashionGAP works.
  Run bad_cam = run(kBin + "/nabla explain" + cnn + " --method cam 2>&1");
  CHECK(bad_cam.status != 0);
  CHECK(bad_cam.out.find("--arch gap") != std::string::npos);
  nlohmann::json c = explain(" --checkpoint " + dir + "/gap/model.safetensors --out " + dir +
                             " --method cam --indices 0:4 --save-npy " + dir + "/cam.npy");
  CHECK(c["layer"] == "features");
  CHECK(nabla::load_npy(dir + "/cam.npy").shape() == nabla::Shape{4, 28, 28});

  for (const std::string& bad : {std::string("--indices 8:3"), std::string("--indices 0:20000"),
                                 std::string("--method gradcam --layer conv9")}) {
    Run r = run(kBin + "/nabla explain" + cnn + " " + bad + " 2>&1");
    CHECK_MESSAGE(r.status != 0, bad);
    CHECK_MESSAGE(r.out.find(bad.substr(bad.rfind(' ') + 1)) != std::string::npos, r.out);
  }
  Run help = run(kBin + "/nabla explain --help");
  for (const char* flag : {"--checkpoint", "--method", "--indices", "--class", "--layer", "--out",
                           "--save-npy", "detector"})
    CHECK_MESSAGE(help.out.find(flag) != std::string::npos, flag);
}

TEST_CASE("nabla explain detector: tells FGSM and PGD images from clean ones") {
  if (!have_fashion_mnist()) return;
  const std::string dir = scratch("detector");
  std::filesystem::remove_all(dir);
  Run t = run(kBin + "/nabla classify train --json --epochs 1 --train-limit 4000 --test-limit " +
              "200 --seed 6 --out " + dir);
  REQUIRE_MESSAGE(t.status == 0, t.out);
  Run r = run(kBin + "/nabla explain detector --json --train-limit 1000 --test-limit 200 " +
              "--epochs 3 " + "--device cpu --checkpoint " + dir + "/model.safetensors --out " +
              dir + "/det");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  nlohmann::json j = nlohmann::json::parse(r.out);
  // The attacks work (the classifier falls far below its clean accuracy)...
  const double clean = j["classifier"]["clean_accuracy"].get<double>();
  CHECK(clean > 0.6);
  CHECK(j["classifier"]["fgsm_accuracy"].get<double>() < clean - 0.25);
  CHECK(j["classifier"]["pgd_accuracy"].get<double>() < clean - 0.25);
  // ...and the detector, chance being 0.5 on these balanced sets, sees them.
  for (const char* set : {"fgsm_accuracy", "pgd_accuracy"}) {
    CHECK_MESSAGE(j["detector"][set].get<double>() > 0.85, set);
    CHECK_MESSAGE(j["saliency_only"][set].get<double>() > 0.6, set);
  }
  for (const char* f : {"/det/detector.safetensors", "/det/detector_image_only.safetensors",
                        "/det/report.json", "/det/examples.png"})
    CHECK_MESSAGE(std::filesystem::exists(dir + f), f);
}

TEST_CASE("explain detector and squares: a run extended with --resume equals a longer run") {
  if (!have_fashion_mnist()) return;
  const std::string dir = scratch("resume_small");
  std::filesystem::remove_all(dir);
  Run t = run(kBin + "/nabla classify train --json --epochs 1 --train-limit 1000 --test-limit " +
              "100 --seed 6 --quiet --out " + dir);
  REQUIRE_MESSAGE(t.status == 0, t.out);
  // The detectors: 1 epoch, resumed to 2, against 2 epochs at once. The attacks and saliency
  // maps are recomputed on resume; the detectors' training continues from the checkpoint.
  const std::string det = kBin + "/nabla explain detector --json --train-limit 200 --test-limit " +
                          "50 --show 0 --device cpu --threads 2 --checkpoint " + dir +
                          "/model.safetensors";
  Run once = run(det + " --epochs 2 --out " + dir + "/once");
  REQUIRE_MESSAGE(once.status == 0, once.out);
  Run first = run(det + " --epochs 1 --out " + dir + "/twice");
  REQUIRE_MESSAGE(first.status == 0, first.out);
  Run second = run(kBin + "/nabla explain detector --json --resume " + dir + "/twice --epochs 2");
  REQUIRE_MESSAGE(second.status == 0, second.out);
  for (const char* f : {"/detector.safetensors", "/detector_image_only.safetensors",
                        "/detector_saliency_only.safetensors"})
    CHECK_MESSAGE(read_file(dir + "/once" + f) == read_file(dir + "/twice" + f), f);
  const nlohmann::json a = nlohmann::json::parse(once.out), b = nlohmann::json::parse(second.out);
  CHECK(a["detector"]["fgsm_accuracy"] == b["detector"]["fgsm_accuracy"]);
  CHECK(b["epochs"] == 2);

  // squares draws every batch from its generator: resumed mid-run, the draws continue where the
  // checkpoint left them.
  const std::string sq = kBin + "/nabla squares --steps 400 --checkpoint-every 10 --threads 2 " +
                         "--quiet --out " + dir;
  Run whole = run(sq + "/sq_whole >/dev/null");
  REQUIRE(whole.status == 0);
  const nlohmann::json at = run_and_kill(sq + "/sq_killed", dir + "/sq_killed", 20);
  CHECK(at["epoch"].get<int64_t>() == 1);
  Run resumed = run(kBin + "/nabla squares --quiet --resume " + dir + "/sq_killed >/dev/null");
  REQUIRE(resumed.status == 0);
  CHECK(read_file(dir + "/sq_killed/model.safetensors") ==
        read_file(dir + "/sq_whole/model.safetensors"));
  CHECK(read_file(dir + "/sq_killed/saliency.npy") == read_file(dir + "/sq_whole/saliency.npy"));
}

TEST_CASE("nabla data histology: the printed class balance is the tiles' own, the panel file") {
  const std::string dir = scratch("histology");
  std::filesystem::remove_all(dir);
  Run r =
      run(kBin + "/nabla data histology --json --n 10 --size 40 --split val --seed 4 --out " + dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["n"].get<int64_t>() == 10);
  // Recount the classes of the same tiles here.
  std::vector<int64_t> pixels(6, 0), tiles(6, 0);
  for (int64_t i = 0; i < 10; ++i) {
    const std::vector<int64_t> m =
        nabla::data::histology_tile(4, nabla::data::HistologySplit::Val, i, 40)["mask"]
            .to_vector<int64_t>();
    std::vector<bool> seen(6, false);
    for (int64_t c : m) {
      ++pixels[size_t(c)];
      seen[size_t(c)] = true;
    }
    for (size_t c = 0; c < 6; ++c) tiles[c] += seen[c];
  }
  int64_t tiles_by_types = 0;
  for (const auto& v : j["types_per_tile"]) tiles_by_types += v.get<int64_t>();
  CHECK(tiles_by_types == 10);
  for (size_t c = 0; c < 6; ++c) {
    const std::string name = nabla::data::histology_class_names()[c];
    CAPTURE(name);
    CHECK(j["class_fraction"][name].get<double>() ==
          doctest::Approx(double(pixels[c]) / (10.0 * 40 * 40)));
    CHECK(j["tiles_with_class"][name].get<int64_t>() == tiles[c]);
  }
  CHECK(std::filesystem::file_size(dir + "/histology_val.png") > 5000);
  Run text = run(kBin + "/nabla data histology --n 4 --out " + dir);
  CHECK(text.status == 0);
  CHECK(text.out.find("background") != std::string::npos);
  CHECK(std::filesystem::exists(dir + "/histology_train.png"));
  Run bad = run(kBin + "/nabla data histology --size 8 --out " + dir + " 2>&1");
  CHECK(bad.status != 0);
  CHECK(bad.out.find("--size") != std::string::npos);
  std::filesystem::remove_all(dir);
}

namespace {

// IoU of class c from predictions and masks, counted here: NaN when c is in neither.
double iou_of(const std::vector<int64_t>& pred, const std::vector<int64_t>& mask, int64_t c) {
  int64_t inter = 0, uni = 0;
  for (size_t k = 0; k < pred.size(); ++k) {
    inter += pred[k] == c && mask[k] == c;
    uni += pred[k] == c || mask[k] == c;
  }
  return uni ? double(inter) / double(uni) : std::nan("");
}

// One thread: a busy machine slows OpenMP teams that spin-wait far more than one thread.
const std::string kSegmentSmall = " --tile 32 --base 4 --batch 8 --n-val 16 --threads 1 ";

}  // namespace

TEST_CASE("segment train, then segment eval --save-npy: the printed mIoU is the masks' own") {
  const std::string dir = scratch("segment");
  std::filesystem::remove_all(dir);
  Run r =
      run(kBin + "/nabla segment train --json --epochs 4 --n-train 256 --n-val 16 " +
          "--n-test 24 --tile 32 --base 8 --batch 8 --lr 0.01 --threads 1 --seed 1 --out " + dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["n_train"].get<int64_t>() == 256);
  CHECK(j["n_test"].get<int64_t>() == 24);
  CHECK(j["per_epoch"].size() == 4);
  CHECK(j["per_epoch"][3]["train_loss"].get<double>() <
        j["per_epoch"][0]["train_loss"].get<double>());
  // Four short epochs already find nuclei: the all-background answer scores mIoU 0 and a pixel
  // accuracy near 0.8 (seeds 1, 2, 3 reach mIoU 0.29, 0.34, 0.43 and accuracy 0.91 to 0.94).
  CHECK(j["test_miou"].get<double>() > 0.15);
  CHECK(j["test_pixel_accuracy"].get<double>() > 0.85);
  // metrics.csv: a header and one row per epoch, with the IoU of every class.
  const std::string csv = nabla::test::read_file(dir + "/metrics.csv");
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 5);
  for (const char* col :
       {"val_miou", "val_miou_all", "val_iou_background", "val_iou_dead", "val_iou_epithelial"})
    CHECK_MESSAGE(csv.find(col) != std::string::npos, col);
  CHECK(std::filesystem::file_size(dir + "/val_predictions.png") > 5000);
  CHECK(std::filesystem::file_size(dir + "/curves.png") > 5000);
  const auto file = nabla::io::load_safetensors(dir + "/model.safetensors");
  CHECK(file.tensors.at("up4.conv.double_conv.4.bias").shape() == nabla::Shape{8});
  CHECK(file.tensors.at("outc.conv.weight").shape() == nabla::Shape{6, 8, 1, 1});
  CHECK(file.metadata.at("model") == "UNet");

  // eval reads the tile size, test-set size and seed from the checkpoint.
  Run e = run(kBin + "/nabla segment eval --json --checkpoint " + dir +
              "/model.safetensors --save-npy " + dir + "/npy");
  REQUIRE_MESSAGE(e.status == 0, e.out);
  const nlohmann::json ej = nlohmann::json::parse(e.out);
  CHECK(ej["n"].get<int64_t>() == 24);
  CHECK(ej["pixel_accuracy"].get<double>() ==
        doctest::Approx(j["test_pixel_accuracy"].get<double>()));
  CHECK(ej["miou"].get<double>() == doctest::Approx(j["test_miou"].get<double>()));
  const nabla::Tensor images = nabla::load_npy(dir + "/npy/images.npy");
  const nabla::Tensor masks = nabla::load_npy(dir + "/npy/masks.npy");
  const nabla::Tensor pred = nabla::load_npy(dir + "/npy/pred.npy");
  CHECK(images.shape() == nabla::Shape{24, 3, 32, 32});
  CHECK(images.dtype() == nabla::DType::Float32);
  CHECK(masks.shape() == nabla::Shape{24, 32, 32});
  CHECK(pred.shape() == nabla::Shape{24, 32, 32});
  CHECK(pred.dtype() == nabla::DType::Int64);
  // The tiles are the test split's, and the printed numbers are recomputed from the arrays.
  CHECK(masks.slice(5, 6).to_vector<int64_t>() ==
        nabla::data::histology_tile(1, nabla::data::HistologySplit::Test, 5, 32)["mask"]
            .to_vector<int64_t>());
  const std::vector<int64_t> p = pred.to_vector<int64_t>(), m = masks.to_vector<int64_t>();
  double sum = 0, sum_all = 0;
  int64_t n = 0, n_all = 0, correct = 0;
  for (size_t k = 0; k < p.size(); ++k) correct += p[k] == m[k];
  for (int64_t c = 0; c < 6; ++c) {
    const double iou = iou_of(p, m, c);
    CAPTURE(c);
    if (std::isnan(iou)) {
      CHECK(ej["per_class_iou"][size_t(c)].is_null());
      continue;
    }
    CHECK(ej["per_class_iou"][size_t(c)].get<double>() == doctest::Approx(iou));
    sum_all += iou;
    ++n_all;
    if (c > 0) {
      sum += iou;
      ++n;
    }
  }
  CHECK(ej["miou"].get<double>() == doctest::Approx(sum / double(n)));
  CHECK(ej["miou_all"].get<double>() == doctest::Approx(sum_all / double(n_all)));
  CHECK(ej["pixel_accuracy"].get<double>() == doctest::Approx(double(correct) / double(p.size())));
  int64_t total = 0;
  for (const auto& row : ej["confusion"])
    for (const auto& v : row) total += v.get<int64_t>();
  CHECK(total == int64_t(p.size()));

  Run text = run(kBin + "/nabla segment eval --checkpoint " + dir +
                 "/model.safetensors --split val --quiet");
  CHECK(text.status == 0);
  for (const char* s :
       {"mIoU", "background excluded", "confusion matrix", "epithelial", "val split"})
    CHECK_MESSAGE(text.out.find(s) != std::string::npos, s);
  std::filesystem::remove_all(dir);
}

TEST_CASE("segment train killed with SIGKILL mid-run, then --resume: the same bytes") {
  const std::string a = scratch("segment_whole"), b = scratch("segment_killed");
  std::filesystem::remove_all(a);
  std::filesystem::remove_all(b);
  const std::string cmd = kBin + "/nabla segment train --quiet --epochs 2 --n-train 256 " +
                          "--n-test 8 --checkpoint-every 3 --seed 4" + kSegmentSmall + "--out ";
  Run whole = run(cmd + a + " >/dev/null");
  REQUIRE(whole.status == 0);
  const nlohmann::json at = run_and_kill(cmd + b, b, 3);
  CHECK(at["step"].get<int64_t>() < 64);
  Run resumed = run(kBin + "/nabla segment train --quiet --resume " + b + " >/dev/null");
  REQUIRE(resumed.status == 0);
  CHECK(read_file(b + "/model.safetensors") == read_file(a + "/model.safetensors"));
  CHECK(metrics_without_timings(b + "/metrics.csv") == metrics_without_timings(a + "/metrics.csv"));
  Run changed = run(kBin + "/nabla segment train --quiet --resume " + b + " --base 8 2>&1");
  CHECK(changed.status != 0);
  CHECK(changed.out.find("--base") != std::string::npos);
  std::filesystem::remove_all(a);
  std::filesystem::remove_all(b);
}

TEST_CASE("segment train --data: an image+mask folder split 8/1/1, and bad input fails clearly") {
  const std::string dir = scratch("segment_folder");
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/images");
  std::filesystem::create_directories(dir + "/masks");
  // Twelve generated tiles as PNGs: class k is stored as gray level k.
  for (int64_t i = 0; i < 12; ++i) {
    const auto t = nabla::data::histology_tile(9, nabla::data::HistologySplit::Train, i, 16);
    const std::string name = "tile" + std::to_string(10 + i) + ".png";
    nabla::io::save_png(dir + "/images/" + name, t["image"]);
    nabla::io::save_png(dir + "/masks/" + name,
                        nabla::div(t["mask"].to(nabla::DType::Float32), 255.0));
  }
  Run r = run(kBin + "/nabla segment train --json --epochs 1 --base 2 --batch 4 --threads 1 " +
              "--data " + dir + " --out " + dir + "/run");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["n_train"].get<int64_t>() == 10);
  CHECK(j["n_val"].get<int64_t>() == 1);
  CHECK(j["n_test"].get<int64_t>() == 1);
  CHECK(j["data"].get<std::string>() == dir);

  // Class indices beyond --classes, a missing mask, a missing folder, a wrong weight count, a
  // checkpoint that is not a U-Net: one line naming the problem, a non-zero exit.
  Run classes = run(kBin + "/nabla segment train --epochs 1 --classes 3 --data " + dir + " --out " +
                    dir + "/run2 2>&1");
  CHECK(classes.status != 0);
  CHECK(classes.out.find("masks/tile1") != std::string::npos);
  std::filesystem::remove(dir + "/masks/tile15.png");
  Run missing =
      run(kBin + "/nabla segment train --epochs 1 --data " + dir + " --out " + dir + "/run3 2>&1");
  CHECK(missing.status != 0);
  CHECK(missing.out.find("tile15.png") != std::string::npos);
  Run nodir =
      run(kBin + "/nabla segment train --data /nonexistent/histo --out " + dir + "/run4 2>&1");
  CHECK(nodir.status != 0);
  CHECK(nodir.out.find("/nonexistent/histo") != std::string::npos);
  Run weights = run(kBin + "/nabla segment train --class-weights 1,2 --n-train 4 --out " + dir +
                    "/run5 2>&1");
  CHECK(weights.status != 0);
  CHECK(weights.out.find("2 weights for 6 classes") != std::string::npos);
  Run help = run(kBin + "/nabla segment train --help");
  for (const char* flag : {"--base", "--bilinear", "--loss", "--class-weights", "--tile",
                           "--n-train", "--n-val", "--n-test", "--classes", "--resume", "--data"})
    CHECK_MESSAGE(help.out.find(flag) != std::string::npos, flag);
  Run ehelp = run(kBin + "/nabla segment eval --help");
  for (const char* flag : {"--checkpoint", "--save-npy", "--json", "--split", "--data"})
    CHECK_MESSAGE(ehelp.out.find(flag) != std::string::npos, flag);
  Run tile = run(kBin + "/nabla segment train --tile 8 2>&1");
  CHECK(tile.status != 0);
  CHECK(tile.out.find("--tile") != std::string::npos);
  const std::string other = dir + "/other.safetensors";
  nabla::io::save_safetensors(other, {{"conv1.weight", nabla::zeros({2, 1, 3, 3})}});
  Run foreign = run(kBin + "/nabla segment eval --checkpoint " + other + " 2>&1");
  CHECK(foreign.status != 0);
  CHECK(foreign.out.find("does not hold a UNet") != std::string::npos);
  std::filesystem::remove_all(dir);
}

namespace {

// A small U-Net checkpoint trained once per test process (three epochs on 32x32 tiles: it finds
// the background and the large nuclei), shared by the segment attack and saliency tests.
std::string tiny_segmenter() {
  const std::string dir = scratch("segment_tiny");
  const std::string model = dir + "/model.safetensors";
  if (!std::filesystem::exists(model)) {
    Run r = run(kBin + "/nabla segment train --quiet --epochs 3 --n-train 192 --n-val 16 " +
                "--n-test 16 --tile 32 --base 8 --batch 8 --lr 0.01 --threads 1 --seed 1 --device "
                "cpu --out " +
                dir + " >/dev/null");
    REQUIRE(r.status == 0);
  }
  return model;
}

// The numbers of a text line after its first word, e.g. "clean 0.2266 0.9189 ..." -> {0.2266, ...}.
std::vector<double> numbers_of_line(const std::string& text, const std::string& first_word) {
  const size_t at = text.find("\n" + first_word + " ");
  REQUIRE_MESSAGE(at != std::string::npos, first_word << " in " << text);
  const std::string line = text.substr(at + 1, text.find('\n', at + 1) - at - 1);
  std::vector<double> v;
  const char* p = line.c_str() + first_word.size();
  char* end = nullptr;
  for (double d = std::strtod(p, &end); end != p; d = std::strtod(p, &end)) {
    v.push_back(d);
    p = end;
  }
  return v;
}

}  // namespace

TEST_CASE("segment attack: pgd and targeted lower the scores within eps, the text is the json") {
  const std::string model = tiny_segmenter(), out = scratch("segment_attack");
  const std::string common = kBin + "/nabla segment attack --checkpoint " + model +
                             " --test-limit 8 --threads 1 --eps 0.05 --steps 5 --out " + out;
  Run j = run(common + " --method pgd --json");
  REQUIRE_MESSAGE(j.status == 0, j.out);
  const nlohmann::json pj = nlohmann::json::parse(j.out);
  CHECK(pj["n"].get<int64_t>() == 8);
  CHECK(pj["alpha"].get<double>() == doctest::Approx(2.5 * 0.05 / 5));
  // Untargeted PGD ascends the per-pixel CE: the loss rises, the scores fall.
  CHECK(pj["attacked"]["loss"].get<double>() > pj["clean"]["loss"].get<double>());
  CHECK(pj["attacked"]["pixel_accuracy"].get<double>() <
        pj["clean"]["pixel_accuracy"].get<double>());
  CHECK(pj["attacked"]["miou_all"].get<double>() < pj["clean"]["miou_all"].get<double>());
  CHECK(pj["perturbation"]["max_linf"].get<double>() <= 0.05 + 1e-6);
  CHECK(pj["perturbation"]["mean_linf"].get<double>() > 0.045);
  CHECK(std::filesystem::file_size(out + "/attack_panel.png") > 5000);

  // The text report prints the same numbers.
  Run t = run(common + " --method pgd --quiet");
  REQUIRE(t.status == 0);
  for (const char* row : {"clean", "attacked"}) {
    const std::vector<double> v = numbers_of_line(t.out, row);
    REQUIRE(v.size() >= 4);
    CHECK(std::fabs(v[0] - pj[row]["loss"].get<double>()) < 6e-5);
    CHECK(std::fabs(v[1] - pj[row]["pixel_accuracy"].get<double>()) < 6e-5);
    CHECK(std::fabs(v[2] - pj[row]["miou"].get<double>()) < 6e-5);
    CHECK(std::fabs(v[3] - pj[row]["miou_all"].get<double>()) < 6e-5);
  }

  // Targeted toward the background: more pixels predicted as background, the nuclei's mIoU falls.
  Run tg = run(common + " --method targeted --target-class 0 --json");
  REQUIRE_MESSAGE(tg.status == 0, tg.out);
  const nlohmann::json tj = nlohmann::json::parse(tg.out);
  CHECK(tj["target_class"].get<int64_t>() == 0);
  CHECK(tj["attacked"]["target_fraction"].get<double>() >
        tj["clean"]["target_fraction"].get<double>());
  CHECK(tj["attacked"]["miou"].get<double>() < tj["clean"]["miou"].get<double>());
  CHECK(tj["perturbation"]["max_linf"].get<double>() <= 0.05 + 1e-6);

  Run fg = run(common + " --method fgsm --json");
  REQUIRE(fg.status == 0);
  const nlohmann::json fj = nlohmann::json::parse(fg.out);
  CHECK(fj["steps"].get<int64_t>() == 1);
  CHECK(fj["perturbation"]["mean_linf"].get<double>() > 0.045);

  Run bad = run(common + " --method targeted --target-class 9 2>&1");
  CHECK(bad.status != 0);
  CHECK_MESSAGE(bad.out.find("--target-class 9 is outside [0, 6)") != std::string::npos, bad.out);
  Run none = run(kBin + "/nabla segment attack --checkpoint /nonexistent.safetensors 2>&1");
  CHECK(none.status != 0);
  CHECK(none.out.find("/nonexistent.safetensors") != std::string::npos);
  std::filesystem::remove_all(out);
}

TEST_CASE("segment saliency: the map is |d l_seg / dx| by central differences in float64") {
  const std::string model = tiny_segmenter(), out = scratch("segment_saliency");
  Run r = run(kBin + "/nabla segment saliency --json --checkpoint " + model +
              " --test-limit 2 --threads 1 --region 4,6,20,26 --out " + out + " --save-npy " + out);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["n"].get<int64_t>() == 2);
  CHECK(j["region_area"].get<double>() == doctest::Approx(16.0 * 20 / (32 * 32)));
  CHECK(std::filesystem::file_size(out + "/saliency_panel.png") > 3000);
  const nabla::Tensor S = nabla::load_npy(out + "/saliency.npy");
  const nabla::Tensor x = nabla::load_npy(out + "/images.npy");
  const nabla::Tensor m = nabla::load_npy(out + "/masks.npy");
  REQUIRE(S.shape() == nabla::Shape{2, 32, 32});
  // The same loss in float64 through the checkpoint: l(x) = mean CE over the region's pixels.
  std::shared_ptr<nabla::nets::UNet> net = nabla::nets::load_unet(model);
  net->eval();
  net->to(nabla::DType::Float64);
  const nabla::Tensor x64 = x.to(nabla::DType::Float64).contiguous();
  auto l_seg = [&](const nabla::Tensor& xi, int64_t n) {
    nabla::NoGradGuard ng;
    const nabla::Tensor ce = nabla::cross_entropy((*net)(xi), m.slice(n, n + 1).contiguous(),
                                                  nabla::Tensor(), nabla::Reduction::None);
    const std::vector<double> c = ce.to_vector<double>();
    double s = 0;
    for (int64_t i = 4; i < 20; ++i)
      for (int64_t k = 6; k < 26; ++k) s += c[size_t(i * 32 + k)];
    return s / (16.0 * 20.0);
  };
  const double h = 1e-5;
  double worst = 0, scale = 0;
  for (int64_t n = 0; n < 2; ++n) {
    CHECK(j["images"][size_t(n)]["loss"].get<double>() ==
          doctest::Approx(l_seg(x64.slice(n, n + 1).contiguous(), n)).epsilon(1e-4));
    // Pixels inside the region, on its border and far outside it (where the map is small but,
    // through the receptive field, not zero).
    for (auto [i, k] :
         std::vector<std::pair<int64_t, int64_t>>{{10, 10}, {4, 6}, {19, 25}, {0, 31}, {28, 2}}) {
      double fd = 0;
      for (int64_t c = 0; c < 3; ++c) {
        nabla::Tensor xp = x64.slice(n, n + 1).clone(), xm = x64.slice(n, n + 1).clone();
        xp.data<double>()[(c * 32 + i) * 32 + k] += h;
        xm.data<double>()[(c * 32 + i) * 32 + k] -= h;
        fd = std::max(fd, std::fabs((l_seg(xp, n) - l_seg(xm, n)) / (2 * h)));
      }
      const double got = S.data<float>()[(n * 32 + i) * 32 + k];
      MESSAGE("image ", n, " pixel (", i, ", ", k, "): S ", got, ", central difference ", fd);
      worst = std::max(worst, std::fabs(got - fd));
      scale = std::max(scale, fd);
    }
  }
  CHECK(worst < 2e-3 * scale + 1e-7);
  // The region concentrates the map: most of its sum lies inside the rectangle.
  CHECK(j["images"][0]["mass_in_region"].get<double>() > j["region_area"].get<double>());

  Run text = run(kBin + "/nabla segment saliency --checkpoint " + model +
                 " --test-limit 1 --threads 1 --out " + out);
  CHECK(text.status == 0);
  CHECK(text.out.find("every pixel") != std::string::npos);
  Run bad = run(kBin + "/nabla segment saliency --checkpoint " + model +
                " --region 4,6,40,26 --out " + out + " 2>&1");
  CHECK(bad.status != 0);
  CHECK_MESSAGE(bad.out.find("y1 <= 32") != std::string::npos, bad.out);
  Run three = run(kBin + "/nabla segment saliency --checkpoint " + model +
                  " --region 1,2,3 --out " + out + " 2>&1");
  CHECK(three.status != 0);
  CHECK(three.out.find("four integers") != std::string::npos);
  std::filesystem::remove_all(out);
}

TEST_CASE(
    "segment study: both tables beside the paper's, the figures, and a rerun reads the cache") {
  const std::string out = scratch("segment_study");
  std::filesystem::remove_all(out);
  const std::string base = kBin +
                           "/nabla segment study --tile 16 --base 4 --n-train 6 --n-test 4 "
                           "--layered-steps 2 --eval-steps 3 --threads 1 --out " +
                           out;
  const std::string cmd = base + " --epochs 3";
  Run r = run(cmd + " --json");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  for (const char* t : {"table1_clean", "table2_pgd_background"}) {
    REQUIRE(j[t].size() == 4);
    for (int m = 0; m < 4; ++m) {
      CAPTURE(m);
      CHECK(j[t][size_t(m)]["model"].get<int>() == m + 1);
      CHECK(j[t][size_t(m)]["loss"].get<double>() > 0);
      CHECK(j[t][size_t(m)]["pixel_accuracy"].get<double>() >= 0);
      CHECK(j[t][size_t(m)]["pixel_accuracy"].get<double>() <= 1);
    }
  }
  CHECK(j["table1_clean"][0]["paper_loss"].get<double>() == 0.4959);
  CHECK(j["table2_pgd_background"][3]["paper_accuracy"].get<double>() == 0.8726);
  // Table 2's attack stays in the eps ball and moves the predictions toward the background.
  for (const auto& row : j["table2_pgd_background"])
    CHECK(row["max_linf"].get<double>() <= 0.01 + 1e-6);
  CHECK(j["table2_attack"]["steps"].get<int64_t>() == 3);
  // Method 1 stacks one eps ball per class present; method 2 never raises the loss, and greedy
  // never beats the exhaustive search.
  CHECK(j["method1"]["max_linf"].get<double>() > 0.01 + 1e-6);
  CHECK(j["method1"]["max_linf"].get<double>() <= 6 * 0.01 + 1e-6);
  CHECK(j["method2"]["candidates_per_tile"].get<int64_t>() == 729);
  CHECK(j["method2"]["mean_loss_best"].get<double>() <=
        j["method2"]["mean_loss_clean"].get<double>() + 1e-6);
  CHECK(j["method2"]["greedy"]["mean_loss_greedy"].get<double>() >=
        j["method2"]["greedy"]["mean_loss_exhaustive"].get<double>() - 1e-6);
  int64_t tiles = 0;
  for (const auto& [key, n] : j["method2"]["choice_histogram"].items()) {
    CHECK(key.size() == 6);
    tiles += n.get<int64_t>();
  }
  CHECK(tiles == 6);
  // Model 4 trains on three copies of the set for a third of the epochs.
  CHECK(j["training"][3]["epochs"].get<int64_t>() == 1);
  CHECK(j["training"][0]["epochs"].get<int64_t>() == 3);
  const nabla::Tensor u = nabla::load_npy(out + "/data/union/images.npy");
  CHECK(u.shape() == nabla::Shape{18, 3, 16, 16});
  for (const auto& f : j["figures"]) CHECK(std::filesystem::file_size(f.get<std::string>()) > 3000);

  // A second run finds every stage in the folder: the same numbers, printed as text.
  Run t = run(cmd + " --quiet");
  REQUIRE(t.status == 0);
  const std::vector<double> row1 = numbers_of_line(t.out, "1");
  REQUIRE(row1.size() == 6);
  CHECK(std::fabs(row1[0] - j["table1_clean"][0]["loss"].get<double>()) < 6e-5);
  CHECK(std::fabs(row1[1] - j["table1_clean"][0]["pixel_accuracy"].get<double>()) < 6e-5);
  CHECK(row1[4] == 0.4959);
  CHECK(t.out.find("Table 2: PGD-3 toward the full-area background") != std::string::npos);
  // Other options in the same folder would mix stages of two studies: refused, naming the option.
  Run other = run(base + " --epochs 2 --quiet 2>&1");
  CHECK(other.status != 0);
  CHECK_MESSAGE(other.out.find("epochs = 3, not 2") != std::string::npos, other.out);
  std::filesystem::remove_all(out);
}

TEST_CASE("segment attack and saliency --device cuda: the GPU reports the CPU's numbers") {
  if (!nabla::cuda_available()) {
    MESSAGE("skipped: no CUDA GPU on this machine");
    return;
  }
  const std::string model = tiny_segmenter(), out = scratch("segment_cuda");
  const std::string attack = kBin + "/nabla segment attack --checkpoint " + model +
                             " --method targeted --eps 0.03 --steps 3 --test-limit 4 --threads 1 "
                             "--json --out " +
                             out + " --device ";
  Run c = run(attack + "cpu"), g = run(attack + "cuda");
  REQUIRE_MESSAGE(c.status == 0, c.out);
  REQUIRE_MESSAGE(g.status == 0, g.out);
  const nlohmann::json jc = nlohmann::json::parse(c.out), jg = nlohmann::json::parse(g.out);
  CHECK(jg["device"] == "cuda:0");
  for (const char* k : {"clean", "attacked"}) {
    CAPTURE(k);
    CHECK(jg[k]["loss"].get<double>() ==
          doctest::Approx(jc[k]["loss"].get<double>()).epsilon(1e-4));
    // A pixel whose two top logits are within rounding may flip: allow 1 in 1000.
    CHECK(jg[k]["pixel_accuracy"].get<double>() ==
          doctest::Approx(jc[k]["pixel_accuracy"].get<double>()).epsilon(1e-3));
  }
  CHECK(jg["perturbation"]["max_linf"].get<double>() <= 0.03 + 1e-6);
  const std::string saliency = kBin + "/nabla segment saliency --checkpoint " + model +
                               " --test-limit 2 --region 4,4,20,20 --threads 1 --json --out " +
                               out + " --device ";
  Run sc = run(saliency + "cpu"), sg = run(saliency + "cuda");
  REQUIRE_MESSAGE(sc.status == 0, sc.out);
  REQUIRE_MESSAGE(sg.status == 0, sg.out);
  const nlohmann::json a = nlohmann::json::parse(sc.out), b = nlohmann::json::parse(sg.out);
  for (size_t i = 0; i < 2; ++i)
    for (const char* k : {"loss", "max", "mean", "mass_in_region"}) {
      CAPTURE(k);
      CHECK(b["images"][i][k].get<double>() ==
            doctest::Approx(a["images"][i][k].get<double>()).epsilon(1e-4));
    }
  std::filesystem::remove_all(out);
}

TEST_CASE("nabla attack: apgd, square, autoattack, deepfool, cw, robustness check, --adv trades") {
  if (!have_fashion_mnist()) return;
  const std::string dir = scratch("attacks2");
  std::filesystem::remove_all(dir);
  const std::string args = " --json --epochs 1 --train-limit 2000 --test-limit 100 --seed 3 ";
  Run t = run(kBin + "/nabla classify train" + args + "--out " + dir + "/plain");
  REQUIRE_MESSAGE(t.status == 0, t.out);
  const std::string ck = " --checkpoint " + dir + "/plain/model.safetensors --out " + dir;
  auto attack = [&](const std::string& a) {
    Run r = run(kBin + "/nabla attack --json --n 100 --show 0 --eps 0.1" + ck + " " + a);
    REQUIRE_MESSAGE(r.status == 0, a << "\n" << r.out);
    return nlohmann::json::parse(r.out);
  };
  const nlohmann::json fgsm = attack("--method fgsm");
  const nlohmann::json apgd = attack("--method apgd --steps 20");
  const nlohmann::json sq = attack("--method square --queries 100");
  const nlohmann::json aa =
      attack("--method autoattack --steps 10 --queries 50 --target-classes 3");
  const nlohmann::json df = attack("--method deepfool --steps 20");
  const nlohmann::json cw = attack("--method cw --steps 30 --restarts 1");
  const double clean = fgsm["clean_accuracy"].get<double>();
  MESSAGE("clean " << clean << ", fgsm " << fgsm["adv_accuracy"] << ", apgd "
                   << apgd["adv_accuracy"] << ", square " << sq["adv_accuracy"] << ", aa "
                   << aa["adv_accuracy"] << ", deepfool " << df["success_rate"] << " success");
  CHECK(apgd["adv_accuracy"].get<double>() <= fgsm["adv_accuracy"].get<double>());
  CHECK(apgd["mean_linf"].get<double>() <= 0.1 + 1e-6);
  CHECK(sq["mean_linf"].get<double>() <= 0.1 + 1e-6);
  CHECK(sq["queries_mean"].get<double>() <= 100);
  CHECK(sq["queries_mean"].get<double>() >= 1);
  CHECK(sq["adv_accuracy"].get<double>() < clean);
  CHECK(aa["name"] == "AutoAttack (no FAB)");
  REQUIRE(aa["stages"].size() == 3);
  CHECK(aa["stages"][2]["robust_after"].get<int64_t>() ==
        std::llround(aa["adv_accuracy"].get<double>() * 100));
  CHECK(aa["adv_accuracy"].get<double>() <= apgd["adv_accuracy"].get<double>() + 0.02);
  CHECK(df["success_rate"].get<double>() >= clean - 0.01);  // minimal perturbation: all fooled
  CHECK(cw["mean_l2"].get<double>() > 0);

  Run c = run(kBin + "/nabla robustness check --json --n 100 --steps 10 --queries 100 " +
              "--restarts 2 --eps 0.05" + ck);
  REQUIRE_MESSAGE(c.status == 0, c.out);
  const nlohmann::json cj = nlohmann::json::parse(c.out);
  REQUIRE(cj["items"].size() == 5);
  CHECK(cj["items"][3]["result"] == "skip");  // no --source
  CHECK(cj["passed"].get<bool>());
  CHECK(std::filesystem::exists(dir + "/check.json"));

  Run tr = run(kBin + "/nabla classify train --json --epochs 1 --train-limit 500 " +
               "--test-limit 100 --seed 3 --adv trades --beta 6 --out " + dir + "/trades");
  REQUIRE_MESSAGE(tr.status == 0, tr.out);
  CHECK(nlohmann::json::parse(tr.out)["adv"] == "trades");
  CHECK(nlohmann::json::parse(tr.out)["trades_beta"].get<double>() == 6);
}
