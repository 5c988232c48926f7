// `nabla gan train` and `nabla gan sample` end to end: the exit codes, the files, the numbers
// they print, --resume, and their errors.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include <nabla/data/mnist.h>
#include <nabla/io/safetensors.h>
#include <nabla/nabla.h>

#include "gradcheck.h"

using nabla::test::read_file;

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
const std::string kSmall = " --batch 32 --ngf 8 --ndf 8 --device cpu --threads 2 --quiet";

bool have_fashion_mnist() {
  if (std::filesystem::exists(nabla::data::default_fashion_mnist_dir() +
                              "/train-images-idx3-ubyte.gz"))
    return true;
  MESSAGE("skipped: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
  return false;
}

// The number printed after `label` in `text`.
double number_after(const std::string& text, const std::string& label) {
  const size_t at = text.find(label);
  REQUIRE_MESSAGE(at != std::string::npos, "'" << label << "' not in:\n" << text);
  return std::stod(text.substr(at + label.size()));
}

}  // namespace

TEST_CASE("gan train: files, curves, the printed numbers, and --resume gives the same bytes") {
  if (!have_fashion_mnist()) return;
  nabla::test::TempDir tmp;
  Run r = run(kBin + "/nabla gan train --json --epochs 2 --seed 1 --train-limit 128" + kSmall +
              " --out " + tmp / "once");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["model"] == "dcgan");
  CHECK(j["loss"] == "nonsaturating");
  CHECK(j["n_train"].get<int>() == 128);
  CHECK(j["steps"].get<int>() == 8);  // 4 batches of 32 per epoch
  REQUIRE(j["per_epoch"].size() == 2);
  // The summary's numbers are the last epoch's means; D's outputs are probabilities.
  for (const char* k : {"d_loss", "g_loss", "d_x", "d_g_z"})
    CHECK(j[k].get<double>() == doctest::Approx(j["per_epoch"][1][k].get<double>()).epsilon(1e-6));
  CHECK(j["d_x"].get<double>() > 0);
  CHECK(j["d_x"].get<double>() < 1);
  CHECK(j["d_g_z"].get<double>() > 0);
  CHECK(j["d_g_z"].get<double>() < 1);
  // A nonsaturating D loss is BCE(real, 1) + BCE(fake, 0): at least -log D(x) - log(1 - D(G(z)))
  // of the means (Jensen), and positive.
  CHECK(j["d_loss"].get<double>() >=
        -std::log(j["d_x"].get<double>()) - std::log(1 - j["d_g_z"].get<double>()) - 1e-6);
  for (const char* f : {"generator.safetensors", "discriminator.safetensors", "metrics.csv",
                        "curves.png", "summary.json", "interpolation.png", "samples/epoch_001.png",
                        "samples/epoch_002.png", "samples/epochs.png"})
    CHECK_MESSAGE(std::filesystem::exists(tmp / ("once/" + std::string(f))), f);
  std::ifstream csv(tmp / "once/metrics.csv");
  std::string line;
  int lines = 0;
  while (std::getline(csv, line)) ++lines;
  CHECK(lines == 3);
  auto g = nabla::io::load_safetensors(tmp / "once/generator.safetensors");
  CHECK(g.tensors.at("main.0.weight").shape() == nabla::Shape{100, 32, 4, 4});
  CHECK(g.tensors.at("main.9.weight").shape() == nabla::Shape{8, 1, 4, 4});
  CHECK(g.metadata.at("nz") == "100");

  // One epoch, then --resume to two: the same weights as two epochs at once.
  Run a = run(kBin + "/nabla gan train --epochs 1 --seed 1 --train-limit 128" + kSmall + " --out " +
              tmp / "twice");
  REQUIRE(a.status == 0);
  Run b = run(kBin + "/nabla gan train --resume " + tmp / "twice" + " --epochs 2 --quiet");
  REQUIRE_MESSAGE(b.status == 0, b.out);
  CHECK(read_file(tmp / "twice/generator.safetensors") ==
        read_file(tmp / "once/generator.safetensors"));
  CHECK(read_file(tmp / "twice/discriminator.safetensors") ==
        read_file(tmp / "once/discriminator.safetensors"));
  // The text report prints the same last-epoch numbers.
  CHECK(number_after(b.out, "D loss ") == doctest::Approx(j["d_loss"].get<double>()).epsilon(1e-3));
  CHECK(number_after(b.out, "G loss ") == doctest::Approx(j["g_loss"].get<double>()).epsilon(1e-3));
  CHECK(number_after(b.out, "D(x) ") == doctest::Approx(j["d_x"].get<double>()).epsilon(1e-3));
  // A resumed run keeps its options.
  Run bad = run(kBin + "/nabla gan train --resume " + tmp / "twice" + " --loss lsgan 2>&1");
  CHECK(bad.status != 0);
  CHECK(bad.out.find("--loss") != std::string::npos);

  // Sampling: the grid, z.npy and images.npy, and the printed pixel statistics.
  Run s = run(kBin + "/nabla gan sample --checkpoint " + tmp / "once/generator.safetensors" +
              " --n 20 --seed 2 --out " + tmp / "s" + " --save-npy " + tmp / "npy");
  REQUIRE_MESSAGE(s.status == 0, s.out);
  nabla::Tensor z = nabla::load_npy(tmp / "npy/z.npy");
  nabla::Tensor x = nabla::load_npy(tmp / "npy/images.npy");
  CHECK(z.shape() == nabla::Shape{20, 100, 1, 1});
  CHECK(x.shape() == nabla::Shape{20, 1, 32, 32});
  CHECK(x.dtype() == nabla::DType::Float32);
  CHECK(std::abs(number_after(s.out, "pixels mean ") - nabla::mean(x).item<double>()) <= 5.1e-5);
  CHECK(nabla::max(nabla::abs(x)).item<double>() <= 1.0);
  CHECK(std::filesystem::exists(tmp / "s/samples.png"));
  // The same seed draws the same codes; the generator is deterministic in eval mode.
  Run s2 = run(kBin + "/nabla gan sample --checkpoint " + tmp / "once/generator.safetensors" +
               " --n 20 --seed 2 --out " + tmp / "s2" + " --save-npy " + tmp / "npy2");
  REQUIRE(s2.status == 0);
  CHECK(read_file(tmp / "npy/images.npy") == read_file(tmp / "npy2/images.npy"));
  Run nc = run(kBin + "/nabla gan sample --checkpoint " + tmp / "once/generator.safetensors" +
               " --class 3 --out " + tmp / "s3" + " 2>&1");
  CHECK(nc.status != 0);
  CHECK(nc.out.find("unconditional") != std::string::npos);
}

TEST_CASE("gan train: the conditional model, the Turing-test discriminator, every loss runs") {
  if (!have_fashion_mnist()) return;
  nabla::test::TempDir tmp;
  Run r = run(
      kBin +
      "/nabla gan train --json --epochs 1 --model cgan --classes 1,8 --seed 2 --train-limit 128" +
      kSmall + " --out " + tmp / "cgan");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["classes"] == nlohmann::json::array({1, 8}));
  auto g = nabla::io::load_safetensors(tmp / "cgan/generator.safetensors");
  CHECK(g.tensors.at("main.0.weight").shape() == nabla::Shape{102, 32, 4, 4});  // nz + 2 classes
  auto d = nabla::io::load_safetensors(tmp / "cgan/discriminator.safetensors");
  CHECK(d.tensors.at("main.0.weight").shape() == nabla::Shape{8, 3, 4, 4});  // image + 2 planes
  Run s = run(kBin + "/nabla gan sample --json --checkpoint " + tmp / "cgan/generator.safetensors" +
              " --n 6 --class 8 --out " + tmp / "s" + " --save-npy " + tmp / "npy");
  REQUIRE_MESSAGE(s.status == 0, s.out);
  CHECK(nlohmann::json::parse(s.out)["classes"] == nlohmann::json::array({8, 8, 8, 8, 8, 8}));
  nabla::Tensor y = nabla::load_npy(tmp / "npy/labels.npy");
  CHECK(y.to_vector<int64_t>() == std::vector<int64_t>(6, 1));  // class 8 is index 1 of (1, 8)
  Run bad = run(kBin + "/nabla gan sample --checkpoint " + tmp / "cgan/generator.safetensors" +
                " --class 3 --out " + tmp / "s" + " 2>&1");
  CHECK(bad.status != 0);
  CHECK(bad.out.find("1,8") != std::string::npos);

  for (const char* loss : {"minimax", "lsgan", "rsgan", "rasgan", "ralsgan", "turing"}) {
    INFO(std::string(loss));
    const std::string out = tmp / loss;
    Run t = run(kBin + "/nabla gan train --json --epochs 1 --train-limit 64 --loss " + loss +
                kSmall + " --out " + out);
    REQUIRE_MESSAGE(t.status == 0, t.out);
    nlohmann::json tj = nlohmann::json::parse(t.out);
    CHECK(tj["loss"] == loss);
    CHECK(std::isfinite(tj["d_loss"].get<double>()));
    CHECK(std::isfinite(tj["g_loss"].get<double>()));
    auto dd = nabla::io::load_safetensors(out + "/discriminator.safetensors");
    // The Turing-test D reads pairs stacked along channels.
    CHECK(dd.tensors.at("main.0.weight").size(1) == (std::string(loss) == "turing" ? 2 : 1));
  }
}

TEST_CASE("gan eval: --images and --checkpoint agree, a set against itself, the printed numbers") {
  if (!have_fashion_mnist()) return;
  nabla::test::TempDir tmp;
  Run c = run(kBin + "/nabla classify train --epochs 1 --train-limit 1000 --test-limit 100 " +
              "--seed 1 --quiet --threads 2 --out " + tmp / "cls");
  REQUIRE(c.status == 0);
  Run t = run(kBin + "/nabla gan train --epochs 1 --seed 4 --train-limit 128" + kSmall + " --out " +
              tmp / "g");
  REQUIRE(t.status == 0);
  const std::string g = tmp / "g/generator.safetensors", cls = tmp / "cls/model.safetensors";
  Run s = run(kBin + "/nabla gan sample --checkpoint " + g + " --n 64 --seed 3 --out " + tmp / "s" +
              " --save-npy " + tmp / "npy");
  REQUIRE(s.status == 0);
  const std::string eval = kBin + "/nabla gan eval --json --threads 2 --classifier " + cls;
  Run a = run(eval + " --images " + tmp / "npy/images.npy" + " --n 64");
  REQUIRE_MESSAGE(a.status == 0, a.out);
  Run b = run(eval + " --checkpoint " + g + " --n 64 --seed 3");
  REQUIRE_MESSAGE(b.status == 0, b.out);
  const nlohmann::json ja = nlohmann::json::parse(a.out), jb = nlohmann::json::parse(b.out);
  for (const char* k :
       {"fd", "fd_floor", "kid", "precision", "recall", "classes_covered", "coverage_kl", "n"})
    CHECK_MESSAGE(ja[k] == jb[k], k);
  CHECK(ja["n"].get<int>() == 64);
  CHECK(ja["n_reference"].get<int>() == 64);
  int64_t total = 0;
  for (const auto& h : ja["histogram"]) total += h.get<int64_t>();
  CHECK(total == 64);
  // One epoch on 128 images is far from the data: well above the floor between real sets.
  CHECK(ja["fd"].get<double>() > 2 * ja["fd_floor"].get<double>());
  CHECK(ja["fd_floor"].get<double>() > 0);
  for (const char* k : {"precision", "recall"}) {
    CHECK(ja[k].get<double>() >= 0);
    CHECK(ja[k].get<double>() <= 1);
  }
  // The samples against themselves: FD 0, every sample in the other's balls.
  Run self =
      run(eval + " --images " + tmp / "npy/images.npy" + " --reference " + tmp / "npy/images.npy");
  REQUIRE_MESSAGE(self.status == 0, self.out);
  const nlohmann::json js = nlohmann::json::parse(self.out);
  CHECK(std::abs(js["fd"].get<double>()) < 1e-6);
  CHECK(js["precision"].get<double>() == 1.0);
  CHECK(js["recall"].get<double>() == 1.0);
  // The text report prints the same numbers.
  Run text = run(kBin + "/nabla gan eval --threads 2 --classifier " + cls + " --images " +
                 tmp / "npy/images.npy" + " --n 64");
  REQUIRE(text.status == 0);
  CHECK(number_after(text.out, "FD ") == doctest::Approx(ja["fd"].get<double>()).epsilon(1e-3));
  CHECK(number_after(text.out, "precision ") ==
        doctest::Approx(ja["precision"].get<double>()).epsilon(1e-3));
  Run both = run(eval + " --images " + tmp / "npy/images.npy" + " --checkpoint " + g + " 2>&1");
  CHECK(both.status != 0);
  CHECK(both.out.find("exactly one") != std::string::npos);
}

TEST_CASE("gan study: every run evaluated, the table's means and sds over the seeds") {
  if (!have_fashion_mnist()) return;
  nabla::test::TempDir tmp;
  Run c = run(kBin + "/nabla classify train --epochs 1 --train-limit 500 --test-limit 100 " +
              "--seed 1 --quiet --threads 2 --out " + tmp / "cls");
  REQUIRE(c.status == 0);
  Run r = run(kBin + "/nabla gan study --json --classifier " + tmp / "cls/model.safetensors" +
              " --losses nonsaturating,lsgan --seeds 2 --epochs 1 --train-limit 64 --batch 32 " +
              "--ngf 4 --ndf 4 --n 40 --threads 2 --out " + tmp / "study");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  REQUIRE(j["runs"].size() == 4);
  REQUIRE(j["table"].size() == 2);
  for (size_t l = 0; l < 2; ++l) {
    const nlohmann::json& row = j["table"][l];
    const nlohmann::json &a = j["runs"][2 * l], &b = j["runs"][2 * l + 1];
    CHECK(a["loss"] == row["loss"]);
    CHECK(a["seed"] == 0);
    CHECK(b["seed"] == 1);
    for (const char* k : {"fd", "kid", "precision", "recall", "classes_covered"}) {
      const double x = a[k].get<double>(), y = b[k].get<double>();
      CHECK(row[k]["mean"].get<double>() == doctest::Approx((x + y) / 2));
      CHECK(row[k]["sd"].get<double>() == doctest::Approx(std::abs(x - y) / std::sqrt(2.0)));
    }
    // Each run's folder holds its own evaluation, the same numbers.
    const std::string dir = tmp / ("study/" + row["loss"].get<std::string>() + "_seed1");
    std::ifstream f(dir + "/eval.json");
    const nlohmann::json e = nlohmann::json::parse(f);
    CHECK(e["fd"] == b["fd"]);
    CHECK(std::filesystem::exists(dir + "/samples/epochs.png"));
  }
  // Different seeds train different generators.
  CHECK(j["runs"][0]["fd"] != j["runs"][1]["fd"]);
  CHECK(std::filesystem::exists(tmp / "study/study.md"));
  Run bad = run(kBin + "/nabla gan study --classifier " + tmp / "cls/model.safetensors" +
                " --losses nonsaturating,wgan --out " + tmp / "bad" + " 2>&1");
  CHECK(bad.status != 0);
  CHECK(bad.out.find("wgan") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(tmp / "bad/nonsaturating_seed0"));
}

TEST_CASE("gan --help and bad flags") {
  Run h = run(kBin + "/nabla gan train --help");
  CHECK(h.status == 0);
  for (const char* flag : {"--model", "--loss", "--ngf", "--ndf", "--nz", "--epochs", "--batch",
                           "--lr", "--beta1", "--classes", "--resume", "--json"})
    CHECK_MESSAGE(h.out.find(flag) != std::string::npos, flag);
  Run hs = run(kBin + "/nabla gan sample --help");
  CHECK(hs.status == 0);
  for (const char* flag : {"--checkpoint", "--n", "--seed", "--class", "--out", "--save-npy"})
    CHECK_MESSAGE(hs.out.find(flag) != std::string::npos, flag);
  Run l = run(kBin + "/nabla gan train --loss wgan 2>&1");
  CHECK(l.status != 0);
  Run c = run(kBin + "/nabla gan train --classes 3,12 --out /tmp/nabla_gan_never 2>&1");
  CHECK(c.status != 0);
  CHECK(c.out.find("'12'") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists("/tmp/nabla_gan_never/run_state.safetensors"));
}

TEST_CASE("aae train: files, the printed numbers, --resume gives the same bytes, its errors") {
  if (!have_fashion_mnist()) return;
  nabla::test::TempDir tmp;
  const std::string small =
      " --prior mixture10 --supervised --hidden 32 --batch 50 --seed 2 "
      "--lr 0.005 --train-limit 200 --test-limit 100 --device cpu --threads 2 --quiet";
  Run r = run(kBin + "/nabla aae train --json --epochs 2" + small + " --out " + tmp / "once");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["model"] == "aae");
  CHECK(j["prior"] == "mixture10");
  CHECK(j["supervised"].get<bool>());
  CHECK(j["steps"].get<int>() == 8);  // 4 batches of 50 per epoch
  CHECK(j["n_test"].get<int>() == 100);
  REQUIRE(j["per_epoch"].size() == 2);
  for (const char* k : {"recon", "d_loss", "g_loss", "d_prior", "d_code"})
    CHECK(j[k].get<double>() == doctest::Approx(j["per_epoch"][1][k].get<double>()).epsilon(1e-6));
  // BCE per pixel starts at about log 2 = 0.693 (sigmoid(0) everywhere); eight steps bring it
  // to about 0.63.
  CHECK(j["recon"].get<double>() < j["per_epoch"][0]["recon"].get<double>());
  CHECK(j["test_recon"].get<double>() > 0.1);
  CHECK(j["test_recon"].get<double>() < 0.66);
  for (const char* k : {"d_prior", "d_code"}) {
    CHECK(j[k].get<double>() > 0);
    CHECK(j[k].get<double>() < 1);
  }
  // Non-saturating D loss: at least -log D(z_p) - log(1 - D(z_q)) of the means (Jensen).
  CHECK(j["d_loss"].get<double>() >=
        -std::log(j["d_prior"].get<double>()) - std::log(1 - j["d_code"].get<double>()) - 1e-6);
  for (const char* f : {"encoder.safetensors", "decoder.safetensors", "discriminator.safetensors",
                        "metrics.csv", "curves.png", "summary.json", "reconstructions.png",
                        "samples.png", "latent.png", "manifold.png"})
    CHECK_MESSAGE(std::filesystem::exists(tmp / ("once/" + std::string(f))), f);
  auto d = nabla::io::load_safetensors(tmp / "once/discriminator.safetensors");
  CHECK(d.tensors.at("main.0.weight").shape() == nabla::Shape{32, 12});  // 2-d code + 10 labels
  CHECK(d.metadata.at("prior") == "mixture10");

  Run a = run(kBin + "/nabla aae train --epochs 1" + small + " --out " + tmp / "twice");
  REQUIRE(a.status == 0);
  Run b = run(kBin + "/nabla aae train --resume " + tmp / "twice" + " --epochs 2 --quiet");
  REQUIRE_MESSAGE(b.status == 0, b.out);
  for (const char* f : {"encoder.safetensors", "decoder.safetensors", "discriminator.safetensors"})
    CHECK_MESSAGE(
        read_file(tmp / ("twice/" + std::string(f))) == read_file(tmp / ("once/" + std::string(f))),
        f);
  CHECK(number_after(b.out, "test recon ") ==
        doctest::Approx(j["test_recon"].get<double>()).epsilon(1e-3));
  CHECK(number_after(b.out, "D(prior) ") ==
        doctest::Approx(j["d_prior"].get<double>()).epsilon(1e-3));

  Run bad = run(kBin + "/nabla aae train --prior gaussian --supervised --quiet --out " +
                tmp / "bad 2>&1");
  CHECK(bad.status != 0);
  CHECK(bad.out.find("--supervised") != std::string::npos);
  Run bad2 = run(kBin + "/nabla aae train --prior swissroll --latent 3 --quiet --out " +
                 tmp / "bad2 2>&1");
  CHECK(bad2.status != 0);
  CHECK(bad2.out.find("--latent is 3") != std::string::npos);
}

TEST_CASE("vae train: files, the ELBO's two terms as printed, --resume gives the same bytes") {
  if (!have_fashion_mnist()) return;
  nabla::test::TempDir tmp;
  const std::string small =
      " --latent 2 --hidden 32 --batch 50 --seed 3 --train-limit 200 "
      "--lr 0.005 --test-limit 100 --device cpu --threads 2 --quiet";
  Run r = run(kBin + "/nabla vae train --json --epochs 2" + small + " --out " + tmp / "once");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["model"] == "vae");
  CHECK(j["steps"].get<int>() == 8);
  REQUIRE(j["per_epoch"].size() == 2);
  // -ELBO = recon + KL, per image; the BCE of 784 pixels starts near 784 log 2 = 543, and
  // eight steps bring it to about 480.
  for (const char* k : {"loss", "test_loss"}) {
    const std::string p = std::string(k) == "loss" ? "" : "test_";
    CHECK(j[k].get<double>() ==
          doctest::Approx(j[p + "recon"].get<double>() + j[p + "kl"].get<double>()).epsilon(1e-6));
  }
  CHECK(j["loss"].get<double>() < j["per_epoch"][0]["loss"].get<double>());
  CHECK(j["test_recon"].get<double>() < 520);
  CHECK(j["test_recon"].get<double>() > 100);
  CHECK(j["kl"].get<double>() > 0);
  CHECK(j["test_kl"].get<double>() > 0);
  for (const char* f :
       {"vae.safetensors", "metrics.csv", "curves.png", "summary.json", "reconstructions.png",
        "samples.png", "latent.png", "manifold.png", "arithmetic.png", "interpolation.png"})
    CHECK_MESSAGE(std::filesystem::exists(tmp / ("once/" + std::string(f))), f);
  auto m = nabla::io::load_safetensors(tmp / "once/vae.safetensors");
  CHECK(m.tensors.at("fc21.weight").shape() == nabla::Shape{2, 32});
  CHECK(m.tensors.at("fc4.weight").shape() == nabla::Shape{784, 32});

  Run a = run(kBin + "/nabla vae train --epochs 1" + small + " --out " + tmp / "twice");
  REQUIRE(a.status == 0);
  Run b = run(kBin + "/nabla vae train --resume " + tmp / "twice" + " --epochs 2 --quiet");
  REQUIRE_MESSAGE(b.status == 0, b.out);
  CHECK(read_file(tmp / "twice/vae.safetensors") == read_file(tmp / "once/vae.safetensors"));
  CHECK(number_after(b.out, "test: -ELBO ") ==
        doctest::Approx(j["test_loss"].get<double>()).epsilon(1e-3));
  CHECK(number_after(b.out, "+ KL ") == doctest::Approx(j["kl"].get<double>()).epsilon(1e-3));
}
