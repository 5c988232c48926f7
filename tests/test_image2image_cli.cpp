// `nabla cyclegan` and `nabla pix2pix` end to end: train, translate and eval on the built-in
// tasks, the numbers they print checked against values recomputed here, --resume, and errors.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include <nabla/data/mnist.h>
#include <nabla/data/translation.h>
#include <nabla/io/safetensors.h>
#include <nabla/metrics/generative.h>
#include <nabla/metrics/image.h>
#include <nabla/nabla.h>
#include <nets/classifier.h>
#include <nets/image2image.h>

#include "gradcheck.h"

using namespace nabla;
using nabla::test::read_file;

namespace {

struct Run {
  int status = -1;
  std::string out;
};

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

const std::string kBin = std::string(NABLA_BIN_DIR) + "/nabla ";
const std::string kTiny = " --n_epochs 1 --ngf 4 --ndf 4 --device cpu --threads 2 --quiet";

bool have_fashion_mnist() {
  if (std::filesystem::exists(data::default_fashion_mnist_dir() + "/train-images-idx3-ubyte.gz"))
    return true;
  MESSAGE("skipped: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
  return false;
}

double number_after(const std::string& text, const std::string& label) {
  const size_t at = text.find(label);
  REQUIRE_MESSAGE(at != std::string::npos, "'" << label << "' not in:\n" << text);
  return std::stod(text.substr(at + label.size()));
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

Tensor generate(const std::string& checkpoint, const Tensor& x) {
  nets::LoadedNet g = nets::load_net(checkpoint);
  g.net->eval();
  NoGradGuard ng;
  return (*g.net)(x);
}

}  // namespace

TEST_CASE("pix2pix train, translate and eval on edges2fashion: files and printed numbers") {
  if (!have_fashion_mnist()) return;
  test::TempDir tmp;
  Run r = run(
      kBin +
      "pix2pix train --task edges2fashion --train-limit 12 --batch 3 --json --n_epochs_decay 0" +
      kTiny + " --out " + tmp / "p");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["model"] == "pix2pix");
  CHECK(j["options"]["netG"] == "unet_32");
  CHECK(j["options"]["norm"] == "batch");
  CHECK(j["options"]["loss"] == "nonsaturating");
  CHECK(j["options"]["dropout"] == "on");
  CHECK(j["paired"] == true);
  CHECK(j["steps"].get<int>() == 4);
  // L1 term: lambda_L1 = 100 times a mean absolute difference of [-1, 1] images.
  CHECK(j["last"]["g_l1"].get<double>() > 0);
  CHECK(j["last"]["g_l1"].get<double>() < 200);
  for (const char* f : {"G.safetensors", "D.safetensors", "metrics.csv", "curves.png",
                        "summary.json", "samples/epoch_001.png"})
    CHECK_MESSAGE(std::filesystem::exists(tmp / ("p/" + std::string(f))), f);
  CHECK(nets::load_net(tmp / "p/D.safetensors").args ==
        "input_nc=2, ndf=4, n_layers=3, norm=batch");

  Run t = run(kBin + "pix2pix translate --checkpoint " + tmp / "p/G.safetensors" +
              " --task edges2fashion --limit 5 --device cpu --out " + tmp / "t" + " --save-npy " +
              tmp / "npy");
  REQUIRE_MESSAGE(t.status == 0, t.out);
  Tensor in = load_npy(tmp / "npy/inputs.npy"), out = load_npy(tmp / "npy/outputs.npy");
  CHECK(in.shape() == Shape{5, 1, 32, 32});
  CHECK(out.shape() == Shape{5, 1, 32, 32});
  data::TranslationSet test = data::translation_task("edges2fashion", false, 5);
  test::check_close(in, test.A, 0, 0);
  test::check_close(out, generate(tmp / "p/G.safetensors", in), 1e-6, 1e-6);
  CHECK(number_after(t.out, "outputs mean ") ==
        doctest::Approx(mean(out).item<double>()).epsilon(1e-3));
  CHECK(std::filesystem::exists(tmp / "t/panel.png"));
  CHECK(std::filesystem::exists(tmp / "t/edges2fashion_A_4.png"));

  Run e = run(kBin + "pix2pix eval --checkpoint " + tmp / "p/G.safetensors" +
              " --task edges2fashion --limit 20 --device cpu");
  REQUIRE_MESSAGE(e.status == 0, e.out);
  data::TranslationSet t20 = data::translation_task("edges2fashion", false, 20);
  Tensor y = generate(tmp / "p/G.safetensors", t20.A);
  CHECK(number_after(e.out, "L1 ") ==
        doctest::Approx(mean_of(metrics::l1_per_image(y, t20.B))).epsilon(1e-3));
  CHECK(number_after(e.out, "SSIM ") ==
        doctest::Approx(mean_of(metrics::ssim(y, t20.B, 2.0))).epsilon(1e-3));
  CHECK(number_after(e.out, "PSNR ") ==
        doctest::Approx(mean_of(metrics::psnr(y, t20.B, 2.0))).epsilon(1e-3));
  CHECK(number_after(e.out, "identity baseline (A itself): L1 ") ==
        doctest::Approx(mean_of(metrics::l1_per_image(t20.A, t20.B))).epsilon(1e-3));

  Run bad = run(kBin + "pix2pix train --task sneaker2boot --out " + tmp / "bad" + " 2>&1");
  CHECK(bad.status != 0);
  CHECK(bad.out.find("unpaired") != std::string::npos);
  Run disc = run(kBin + "pix2pix translate --checkpoint " + tmp / "p/D.safetensors" +
                 " --task edges2fashion --out " + tmp / "x 2>&1");
  CHECK(disc.status != 0);
  CHECK(disc.out.find("discriminator") != std::string::npos);
}

TEST_CASE("cyclegan train on sneaker2boot: --resume extends the decay, eval with a classifier") {
  if (!have_fashion_mnist()) return;
  test::TempDir tmp;
  const std::string opts =
      " --task sneaker2boot --train-limit 6 --netG resnet_1blocks --seed 4" + kTiny;
  Run once = run(kBin + "cyclegan train --n_epochs_decay 1" + opts + " --out " + tmp / "once");
  REQUIRE_MESSAGE(once.status == 0, once.out);
  Run a = run(kBin + "cyclegan train --n_epochs_decay 0" + opts + " --out " + tmp / "twice");
  REQUIRE(a.status == 0);
  Run b = run(kBin + "cyclegan train --resume " + tmp / "twice" + " --n_epochs_decay 1 --quiet");
  REQUIRE_MESSAGE(b.status == 0, b.out);
  for (const char* f : {"G_A.safetensors", "G_B.safetensors", "D_A.safetensors", "D_B.safetensors"})
    CHECK_MESSAGE(
        read_file(tmp / ("twice/" + std::string(f))) == read_file(tmp / ("once/" + std::string(f))),
        f);
  // The printed last-epoch terms are the CSV's.
  const nlohmann::json s = nlohmann::json::parse(read_file(tmp / "once/summary.json"));
  CHECK(number_after(b.out, "cycle_A ") ==
        doctest::Approx(s["last"]["cycle_A"].get<double>()).epsilon(1e-3));
  CHECK(number_after(b.out, "d_B ") ==
        doctest::Approx(s["last"]["d_B"].get<double>()).epsilon(1e-3));
  Run other = run(kBin + "cyclegan train --resume " + tmp / "twice" + " --loss turing 2>&1");
  CHECK(other.status != 0);
  CHECK(other.out.find("--loss") != std::string::npos);

  // Eval against the B images on the features of a (here untrained) FashionCNN.
  Generator gen(0);
  nets::FashionCNN cnn(&gen);
  io::save_safetensors(tmp / "cnn.safetensors", cnn.state_dict());
  Run e =
      run(kBin + "cyclegan eval --json --checkpoint " + tmp / "once/G_A.safetensors" +
          " --task sneaker2boot --limit 40 --device cpu --classifier " + tmp / "cnn.safetensors");
  REQUIRE_MESSAGE(e.status == 0, e.out);
  const nlohmann::json ev = nlohmann::json::parse(e.out);
  data::TranslationSet t = data::translation_task("sneaker2boot", false, 40);
  Tensor y = generate(tmp / "once/G_A.safetensors", t.A);
  Tensor feat_y, feat_b;
  {
    Tensor captured;
    nn::ForwardHookGuard hook(cnn.submodule("fc1"),
                              [&](nn::Module&, const Tensor&, const Tensor& o) {
                                captured = o;
                                return std::optional<Tensor>();
                              });
    NoGradGuard ng;
    auto crop = [](const Tensor& x) {
      return mul(add(x.narrow(2, 2, 28).narrow(3, 2, 28).contiguous(), 1.0), 0.5);
    };
    cnn(crop(y));
    feat_y = relu(captured);
    cnn(crop(t.B));
    feat_b = relu(captured);
  }
  CHECK(ev["fd"].get<double>() ==
        doctest::Approx(metrics::frechet_distance(feat_y, feat_b)).epsilon(1e-4));
  CHECK(ev["target_fraction"].get<double>() >= 0);
  CHECK(ev["target_fraction"].get<double>() <= 1);
  CHECK(ev["n"].get<int>() == 40);
}

TEST_CASE("cyclegan he2ihc: trains on unpaired tiles, evaluated against the hidden pairs") {
  test::TempDir tmp;
  Run r =
      run(kBin +
          "cyclegan train --task he2ihc --train-limit 4 --n_epochs_decay 0 --netG resnet_1blocks" +
          kTiny + " --out " + tmp / "h");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  Run e = run(kBin + "cyclegan eval --json --checkpoint " + tmp / "h/G_A.safetensors" +
              " --task he2ihc --limit 6 --device cpu");
  REQUIRE_MESSAGE(e.status == 0, e.out);
  const nlohmann::json j = nlohmann::json::parse(e.out);
  CHECK(j["reference"] == "hidden pairs");
  data::TranslationSet t = data::translation_task("he2ihc", false, 6);
  REQUIRE(t.B_of_A.defined());
  Tensor y = generate(tmp / "h/G_A.safetensors", t.A);
  CHECK(j["l1"].get<double>() ==
        doctest::Approx(mean_of(metrics::l1_per_image(y, t.B_of_A))).epsilon(1e-4));
  CHECK(j["ssim_identity"].get<double>() ==
        doctest::Approx(mean_of(metrics::ssim(t.A, t.B_of_A, 2.0))).epsilon(1e-4));
}
