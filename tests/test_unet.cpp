// nets/unet: shapes (odd sizes included), PyTorch's state-dict keys and shapes for both decoders,
// an input-gradient check through the whole net in float64, one batch overfitted with a fixed
// seed, checkpoint round trips and errors, and, where python3 imports torch, the reference
// module of scripts/torch_unet.py computing the same logits from our checkpoint and we from its.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>

#include <unistd.h>

#include <nabla/data/histology.h>
#include <nabla/data/loader.h>
#include <nabla/io/safetensors.h>
#include <nabla/metrics/classification.h>
#include <nabla/nabla.h>
#include <nabla/optim/optimizer.h>
#include <nabla/train/evaluate.h>
#include <nets/unet.h>
#include <nets/unet_train.h>

#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;
using nets::UNet;
using nets::UNetConfig;

namespace {

std::map<std::string, Shape> shapes_of(const nn::StateDict& sd) {
  std::map<std::string, Shape> m;
  for (const auto& [k, v] : sd) m[k] = v.shape();
  return m;
}

}  // namespace

TEST_CASE("UNet: output [N, K, H, W] for sizes divisible by 16 and odd ones, both decoders") {
  for (bool bilinear : {false, true}) {
    Generator g(1);
    UNet net({.in_channels = 3, .classes = 5, .base = 4, .bilinear = bilinear}, &g);
    for (const auto& hw : std::vector<std::pair<int64_t, int64_t>>{
             {64, 64}, {16, 16}, {17, 33}, {37, 45}, {31, 16}, {50, 23}}) {
      const int64_t h = hw.first, w = hw.second;  // not a binding: CAPTURE takes it in a lambda
      CAPTURE(bilinear);
      CAPTURE(h);
      CAPTURE(w);
      Tensor y = net(randn({2, 3, h, w}, DType::Float32, Device::cpu(), &g));
      CHECK(y.shape() == Shape{2, 5, h, w});
    }
  }
  check_error([] { UNet({.base = 4})(zeros({1, 3, 15, 32})); }, {"UNet", "[1, 3, 15, 32]"});
  check_error([] { UNet({.base = 4})(zeros({1, 1, 32, 32})); }, {"UNet", "[1, 1, 32, 32]"});
  check_error([] { UNet({.base = 5, .bilinear = true}); }, {"base 5", "even"});
  check_error([] { UNet({.classes = 0}); }, {"classes 0"});
}

TEST_CASE("UNet: PyTorch's state-dict keys and shapes, transposed-convolution decoder") {
  const int64_t b = 4, K = 6;
  UNet net({.in_channels = 3, .classes = K, .base = b});
  const auto s = shapes_of(net.state_dict());
  // 9 DoubleConvs of 2 convs + 2 batch norms (5 tensors each), 4 transposed convs, the 1x1 conv.
  CHECK(s.size() == 9 * 12 + 4 * 2 + 2);
  CHECK(s.at("inc.double_conv.0.weight") == Shape{b, 3, 3, 3});
  CHECK(s.count("inc.double_conv.0.bias") == 0);  // bias=False before batch norm
  CHECK(s.at("inc.double_conv.1.weight") == Shape{b});
  CHECK(s.at("inc.double_conv.1.running_mean") == Shape{b});
  CHECK(s.at("inc.double_conv.1.running_var") == Shape{b});
  CHECK(s.at("inc.double_conv.1.num_batches_tracked") == Shape{});
  CHECK(s.at("down1.maxpool_conv.1.double_conv.0.weight") == Shape{2 * b, b, 3, 3});
  CHECK(s.at("down1.maxpool_conv.1.double_conv.3.weight") == Shape{2 * b, 2 * b, 3, 3});
  CHECK(s.at("down4.maxpool_conv.1.double_conv.3.weight") == Shape{16 * b, 16 * b, 3, 3});
  CHECK(s.at("up1.up.weight") == Shape{16 * b, 8 * b, 2, 2});
  CHECK(s.at("up1.up.bias") == Shape{8 * b});
  CHECK(s.at("up1.conv.double_conv.0.weight") == Shape{8 * b, 16 * b, 3, 3});
  CHECK(s.at("up4.up.weight") == Shape{2 * b, b, 2, 2});
  CHECK(s.at("up4.conv.double_conv.0.weight") == Shape{b, 2 * b, 3, 3});
  CHECK(s.at("up4.conv.double_conv.4.bias") == Shape{b});
  CHECK(s.at("outc.conv.weight") == Shape{K, b, 1, 1});
  CHECK(s.at("outc.conv.bias") == Shape{K});
  CHECK(net.extra_repr() == "n_channels=3, n_classes=6, base=4, bilinear=False");
}

TEST_CASE("UNet: PyTorch's state-dict keys and shapes, bilinear decoder with halved widths") {
  const int64_t b = 8, K = 2;
  UNet net({.in_channels = 1, .classes = K, .base = b, .bilinear = true});
  const auto s = shapes_of(net.state_dict());
  CHECK(s.size() == 9 * 12 + 2);  // nn.Upsample has no parameters
  CHECK(s.count("up1.up.weight") == 0);
  CHECK(s.at("down4.maxpool_conv.1.double_conv.0.weight") == Shape{8 * b, 8 * b, 3, 3});
  // Up(16b, 4b): DoubleConv(16b, 4b, mid 8b) on cat(x4 [8b], up(x5) [8b]).
  CHECK(s.at("up1.conv.double_conv.0.weight") == Shape{8 * b, 16 * b, 3, 3});
  CHECK(s.at("up1.conv.double_conv.3.weight") == Shape{4 * b, 8 * b, 3, 3});
  CHECK(s.at("up3.conv.double_conv.3.weight") == Shape{b, 2 * b, 3, 3});
  CHECK(s.at("up4.conv.double_conv.0.weight") == Shape{b, 2 * b, 3, 3});
  CHECK(s.at("up4.conv.double_conv.3.weight") == Shape{b, b, 3, 3});
  CHECK(s.at("outc.conv.weight") == Shape{K, b, 1, 1});
  // The widths of the original (base 64, three channels, two classes): its parameter counts.
  CHECK(UNet({.in_channels = 3, .classes = 2, .base = 64}).num_parameters() == 31037698);
  CHECK(UNet({.in_channels = 3, .classes = 2, .base = 64, .bilinear = true}).num_parameters() ==
        17263042);
}

TEST_CASE("UNet: input gradient through pads, concats and both decoders, in float64") {
  for (bool bilinear : {false, true}) {
    CAPTURE(bilinear);
    Generator g(3);
    UNet net({.in_channels = 2, .classes = 3, .base = 2, .bilinear = bilinear}, &g);
    net.to(DType::Float64);
    net.eval();  // batch norm on running statistics: smooth in the input
    GradcheckOptions o;
    o.atol = 1e-6;
    o.rtol = 1e-4;
    CHECK(gradcheck([&](const auto& v) { return net(v[0]); }, {uniform({1, 2, 17, 18})}, o));
  }
}

TEST_CASE("UNet: overfits one batch of histology tiles with a fixed seed") {
  Generator g(0);
  UNet net({.in_channels = 3, .classes = 6, .base = 4}, &g);
  auto src = std::make_shared<data::HistologySource>(data::HistologySplit::Train, 2, 32, 0);
  const data::Batch batch = data::DataLoader(src, 2, false, 0).batch(0);
  const Tensor x = batch["image"], y = batch["mask"];
  optim::Adam opt(net.parameters(), {.lr = 0.02});
  double first = 0, last = 0;
  for (int step = 0; step < 160; ++step) {
    Tensor loss = cross_entropy(net(x), y);
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  CHECK(last < 0.2 * first);
  net.eval();
  NoGradGuard ng;
  const double acc = metrics::accuracy(net(x), y);
  CHECK(acc > 0.95);
}

TEST_CASE("UNet: checkpoint round trip, the configuration read from the keys, errors") {
  TempDir tmp;
  for (bool bilinear : {false, true}) {
    Generator g(5);
    UNet net({.in_channels = 3, .classes = 4, .base = 6, .bilinear = bilinear}, &g);
    net.train();
    net(randn({2, 3, 32, 32}, DType::Float32, Device::cpu(), &g));  // running statistics move
    net.eval();
    io::save_safetensors(tmp / "u.safetensors", net.state_dict());
    auto back = nets::load_unet(tmp / "u.safetensors");
    const UNetConfig c = back->config();
    CHECK(c.in_channels == 3);
    CHECK(c.classes == 4);
    CHECK(c.base == 6);
    CHECK(c.bilinear == bilinear);
    CHECK(!back->is_training());
    Tensor x = rand({1, 3, 19, 21});
    check_close(net(x), (*back)(x), 0, 0);
  }
  io::save_safetensors(tmp / "other.safetensors", {{"w", zeros({2})}});
  check_error([&] { nets::load_unet(tmp / "other.safetensors"); },
              {"other.safetensors", "UNet", "inc.double_conv.0.weight"});
  // The right keys with a wrong shape: the error lists it.
  nn::StateDict sd = UNet({.base = 4}).state_dict();
  sd["up2.conv.double_conv.3.weight"] = zeros({1, 1, 3, 3});
  io::save_safetensors(tmp / "bad.safetensors", sd);
  check_error([&] { nets::load_unet(tmp / "bad.safetensors"); },
              {"bad.safetensors", "up2.conv.double_conv.3.weight"});
}

#ifdef NABLA_TORCH_PYTHON
TEST_CASE("UNet interop: PyTorch's reference module, strict loads both ways, the same logits") {
  TempDir tmp;
  const std::string py =
      std::string(NABLA_TORCH_PYTHON) + " " + NABLA_SOURCE_DIR + "/scripts/torch_unet.py ";
  for (bool bilinear : {false, true}) {
    CAPTURE(bilinear);
    // Ours -> PyTorch: trained a few steps so that weights and batch-norm statistics are not the
    // initial ones; an odd input size exercises the padding in Up.
    Generator g(11);
    UNet net({.in_channels = 3, .classes = 6, .base = 4, .bilinear = bilinear}, &g);
    optim::Adam opt(net.parameters(), {.lr = 0.01});
    Tensor xt = rand({2, 3, 32, 32}, DType::Float32, Device::cpu(), &g);
    Tensor yt = randint(0, 6, {2, 32, 32}, &g);
    for (int step = 0; step < 3; ++step) {
      Tensor loss = cross_entropy(net(xt), yt);
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
    net.eval();
    io::save_safetensors(tmp / "ours.safetensors", net.state_dict(), {{"format", "pt"}});
    Tensor x = rand({2, 3, 37, 45}, DType::Float32, Device::cpu(), &g);
    save_npy(tmp / "x.npy", x);
    REQUIRE(std::system((py + "logits " + tmp / "ours.safetensors" + " " + tmp / "x.npy" + " " +
                         tmp / "theirs_on_ours.npy")
                            .c_str()) == 0);
    Tensor ours;
    {
      NoGradGuard ng;
      ours = net(x);
    }
    check_close(load_npy(tmp / "theirs_on_ours.npy"), ours, 1e-4, 1e-4);

    // PyTorch -> ours: a fresh reference module with random batch-norm statistics.
    REQUIRE(std::system((py + "init " + tmp / "theirs.safetensors" + " --base 4 --classes 6" +
                         (bilinear ? " --bilinear" : "") + " --seed 3")
                            .c_str()) == 0);
    REQUIRE(std::system((py + "logits " + tmp / "theirs.safetensors" + " " + tmp / "x.npy" + " " +
                         tmp / "theirs_logits.npy")
                            .c_str()) == 0);
    auto theirs = nets::load_unet(tmp / "theirs.safetensors");
    CHECK(theirs->config().bilinear == bilinear);
    NoGradGuard ng;
    check_close((*theirs)(x), load_npy(tmp / "theirs_logits.npy"), 1e-4, 1e-4);
  }
}
#endif

namespace {

// A "net" that answers class 0 everywhere with logit c (every other class 0), for numbers by hand.
struct ConstantNet : nn::Module {
  double c;
  explicit ConstantNet(double c) : nn::Module("ConstantNet"), c(c) {}
  Tensor forward(const Tensor& x) override {
    Tensor y = zeros({x.size(0), 6, x.size(2), x.size(3)});
    float* p = y.data<float>();
    const int64_t hw = x.size(2) * x.size(3);
    for (int64_t n = 0; n < x.size(0); ++n)
      for (int64_t k = 0; k < hw; ++k) p[n * 6 * hw + k] = float(c);
    return y;
  }
};

}  // namespace

TEST_CASE("evaluate_segmenter: a constant answer's loss, pixel accuracy and IoUs by hand") {
  auto src = data::materialize(
      std::make_shared<data::HistologySource>(data::HistologySplit::Val, 10, 24, 3),
      {"image", "mask"});
  const std::vector<int64_t> m = src->tensors()["mask"].to_vector<int64_t>();
  double bg = 0;
  for (int64_t v : m) bg += v == 0;
  bg /= double(m.size());
  ConstantNet net(2.0);
  const auto r = train::evaluate_segmenter(net, src, data::histology_class_names(), 4,
                                           Device::cpu(), /*keep_predictions=*/true);
  CHECK(r.n == 10);
  CHECK(r.pred.shape() == Shape{10, 24, 24});
  CHECK(r.pred.to_vector<int64_t>() == std::vector<int64_t>(m.size(), 0));
  // CE = log(e^2 + 5) - 2 at background pixels, log(e^2 + 5) elsewhere.
  CHECK(r.loss == doctest::Approx(std::log(std::exp(2.0) + 5) - 2 * bg));
  CHECK(r.metrics.pixel_accuracy() == doctest::Approx(bg));
  CHECK(r.metrics.iou()[0] == doctest::Approx(bg));  // TP / (TP + FP): every pixel predicted 0
  CHECK(r.metrics.miou() == 0);                      // every nucleus class present, never found
  CHECK(r.metrics.miou_all() == doctest::Approx(bg / 6));
  const nlohmann::json j = r.to_json();
  CHECK(j["n"] == 10);
  CHECK(j["loss"].get<double>() == doctest::Approx(r.loss));
  check_error(
      [&] {
        train::evaluate_segmenter(net, src, {"a", "b"}, 4, Device::cpu());
      },
      {"evaluate_segmenter", "[4, 6, 24, 24]", "2 classes"});
}

TEST_CASE("parse_class_weights: K non-negative numbers") {
  check_close(nets::parse_class_weights("0.5,1,1,2,4,1", 6), {0.5, 1, 1, 2, 4, 1});
  CHECK(!nets::parse_class_weights("", 6).defined());
  check_error([] { nets::parse_class_weights("1,2", 6); }, {"2 weights for 6 classes"});
  check_error([] { nets::parse_class_weights("1,x", 2); }, {"'x'"});
  check_error([] { nets::parse_class_weights("1,-1", 2); }, {"'-1'"});
  check_error([] { nets::parse_class_weights("0,0", 2); }, {"all 0"});
}

TEST_CASE(
    "load_segmentation_data: train_npy replaces the training split; bad arrays name the file") {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("nabla_unet_npy_" + std::to_string(::getpid())))
          .string();
  std::filesystem::create_directories(dir);
  Generator g(3);
  const Tensor images = rand({5, 3, 16, 16}, DType::Float32, Device::cpu(), &g);
  const Tensor masks = randint(0, 6, {5, 16, 16}, &g);
  save_npy(dir + "/images.npy", images);
  save_npy(dir + "/masks.npy", masks);
  nets::SegmentationDataOptions o;
  o.tile = 16;
  o.n_train = 3;
  o.n_val = 2;
  o.n_test = 2;
  o.train_npy = dir;
  const nets::SegmentationData d = nets::load_segmentation_data(o);
  REQUIRE(d.train->size() == 5);
  CHECK(d.train->get(4)["image"].to_vector<float>() == images.slice(4, 5).to_vector<float>());
  CHECK(d.train->get(2)["mask"].to_vector<int64_t>() == masks.slice(2, 3).to_vector<int64_t>());
  CHECK(d.val->size() == 2);
  CHECK(d.description.find("training split from " + dir) != std::string::npos);
  // The val split's tiles are 16x16: 32x32 arrays are refused, naming the file and both shapes.
  o.tile = 32;
  check_error([&] { nets::load_segmentation_data(o); },
              {dir + "/images.npy", "[5, 3, 16, 16]", "[3, 32, 32]"});
  o.tile = 16;
  save_npy(dir + "/masks.npy", full({5, 16, 16}, 7.0, DType::Int64));
  check_error([&] { nets::load_segmentation_data(o); }, {dir + "/masks.npy", "class 7", "[0, 6)"});
  std::filesystem::remove_all(dir);
}
