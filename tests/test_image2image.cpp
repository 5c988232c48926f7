// nets/image2image: the padding layers, the reference's state_dict keys and parameter counts of
// ResnetGenerator, UnetGenerator and NLayerDiscriminator, output shapes, init_weights, dropout in
// train and eval, rebuilding a network from a checkpoint's keys, each network fitting one batch,
// and (where python3 imports torch) PyTorch's modules with the same arguments loading our state
// dicts strictly and computing the same outputs, and ours loading theirs. Then L1/PSNR/SSIM, the
// translation data (Sobel edges, IHC rendering, jitter, the reference's folders and their errors)
// and the training recipes (the loss scales, the frozen discriminators' kernel counts, the
// learning-rate schedule, resume).
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include <nabla/data/histology.h>
#include <nabla/data/image_folder.h>
#include <nabla/data/translation.h>
#include <nabla/io/image.h>
#include <nabla/io/safetensors.h>
#include <nabla/metrics/image.h>
#include <nabla/nn/padding.h>
#include <nabla/ops.h>
#include <nabla/optim/optimizer.h>
#include <nets/image2image.h>
#include <nets/image2image_train.h>

#include "gradcheck.h"

using namespace nabla;
using namespace nabla::test;
using nets::NLayerDiscriminator;
using nets::Norm;
using nets::ResnetGenerator;
using nets::UnetGenerator;

namespace {

double min_value(const Tensor& t) {
  return -max(neg(t)).item<double>();
}

std::map<std::string, Shape> keys(const nn::Module& m) {
  std::map<std::string, Shape> out;
  for (const auto& [name, t] : m.state_dict()) out[name] = t.shape();
  return out;
}

// Adam steps on loss(); returns {first loss, last loss}.
template <typename F>
std::pair<double, double> fit(nn::Module& net, F loss, int steps, double lr) {
  optim::Adam opt(net.parameters(), {.lr = lr, .beta1 = 0.5});
  double first = 0, last = 0;
  for (int s = 0; s < steps; ++s) {
    Tensor l = loss();
    if (s == 0) first = l.item<double>();
    last = l.item<double>();
    opt.zero_grad();
    l.backward();
    opt.step();
  }
  return {first, last};
}

}  // namespace

TEST_CASE("ReflectionPad2d, ReplicationPad2d, ZeroPad2d: pad's values, gradient, errors") {
  Tensor x = uniform({2, 3, 5, 6}, -1, 1, 3);
  nn::ReflectionPad2d r(2);
  CHECK(r.repr() == "ReflectionPad2d(2)");
  check_close(r(x), pad(x, {2, 2, 2, 2}, PadMode::Reflect), 0, 0);
  CHECK(r(x).shape() == Shape{2, 3, 9, 10});
  nn::ReflectionPad2d r4({1, 3, 0, 2});
  CHECK(r4.repr() == "ReflectionPad2d((1, 3, 0, 2))");
  check_close(r4(x), pad(x, {1, 3, 0, 2}, PadMode::Reflect), 0, 0);
  // Reflect by 1 of [a b c] reads b a b c b: corner (0, 0) of the padded plane is x[1, 1].
  Tensor y = nn::ReflectionPad2d(1)(x);
  CHECK(y.to_vector<double>()[0] == x.to_vector<double>()[7]);
  check_close(nn::ReplicationPad2d(1)(x), pad(x, {1, 1, 1, 1}, PadMode::Replicate), 0, 0);
  check_close(nn::ZeroPad2d(2)(x), pad(x, {2, 2, 2, 2}), 0, 0);
  CHECK(gradcheck(
      [](const auto& v) {
        return nn::ReflectionPad2d({3, 1, 2, 4})(v[0]);
      },
      {uniform({2, 2, 5, 6}, -1, 1, 4)}));
  CHECK(gradcheck([](const auto& v) { return nn::ReplicationPad2d(2)(v[0]); },
                  {uniform({1, 2, 3, 4}, -1, 1, 5)}));
  check_error([&] { nn::ReflectionPad2d(5)(x); },
              {"ReflectionPad2d(5)", "smaller than the dim", "[2, 3, 5, 6]"});
  check_error([&] { nn::ReflectionPad2d(1)(zeros({6})); }, {"ReflectionPad2d", "[6]"});
  check_error([] { nn::ZeroPad2d({1, -1, 0, 0}); }, {"ZeroPad2d", ">= 0"});
}

TEST_CASE("ResnetGenerator: the reference's keys, shapes, parameter counts and output shape") {
  Generator gen(0);
  ResnetGenerator g(1, 1, 8, Norm::Instance, false, 2, "reflect", &gen);
  // InstanceNorm (affine=false) has no state: 2 + 2 + 2 + 2 x 4 + 2 + 2 + 2 keys, biases kept.
  const std::map<std::string, Shape> want = {
      {"model.1.weight", {8, 1, 7, 7}},
      {"model.1.bias", {8}},
      {"model.4.weight", {16, 8, 3, 3}},
      {"model.4.bias", {16}},
      {"model.7.weight", {32, 16, 3, 3}},
      {"model.7.bias", {32}},
      {"model.10.conv_block.1.weight", {32, 32, 3, 3}},
      {"model.10.conv_block.1.bias", {32}},
      {"model.10.conv_block.5.weight", {32, 32, 3, 3}},
      {"model.10.conv_block.5.bias", {32}},
      {"model.11.conv_block.1.weight", {32, 32, 3, 3}},
      {"model.11.conv_block.1.bias", {32}},
      {"model.11.conv_block.5.weight", {32, 32, 3, 3}},
      {"model.11.conv_block.5.bias", {32}},
      {"model.12.weight", {32, 16, 3, 3}},  // ConvTranspose2d: [in, out, k, k]
      {"model.12.bias", {16}},
      {"model.15.weight", {16, 8, 3, 3}},
      {"model.15.bias", {8}},
      {"model.19.weight", {1, 8, 7, 7}},
      {"model.19.bias", {1}}};
  CHECK(keys(g) == want);
  CHECK(g.submodule("model.0").type_name() == "ReflectionPad2d");
  CHECK(g.submodule("model.10.conv_block.4").type_name() == "ReflectionPad2d");
  CHECK(g.submodule("model.20").type_name() == "Tanh");
  Tensor x = rand({2, 1, 32, 24}, DType::Float32, Device::cpu(), &gen, -1, 1);
  Tensor y = g(x);
  CHECK(y.shape() == Shape{2, 1, 32, 24});
  CHECK(max(abs(y)).item<double>() < 1.0);

  // BatchNorm: convolutions before a norm lose their bias, norms carry running statistics;
  // dropout shifts the second convolution of each block to index 6.
  ResnetGenerator b(3, 3, 8, Norm::Batch, true, 1, "reflect", &gen);
  const auto kb = keys(b);
  CHECK(kb.count("model.1.bias") == 0);
  CHECK(kb.count("model.2.running_var") == 1);
  CHECK(kb.count("model.10.conv_block.6.weight") == 1);
  CHECK(kb.count("model.10.conv_block.6.bias") == 0);
  CHECK(kb.at("model.10.conv_block.7.num_batches_tracked") == Shape{});
  CHECK(kb.count("model.18.bias") == 1);  // the last convolution keeps its bias
  CHECK(b.submodule("model.10.conv_block.4").type_name() == "Dropout");
  // padding_type zero: the padding moves into the convolutions.
  ResnetGenerator z(1, 1, 4, Norm::Instance, false, 1, "zero", &gen);
  CHECK(keys(z).count("model.10.conv_block.3.weight") == 1);
  CHECK(z(x).shape() == Shape{2, 1, 32, 24});

  // The reference's resnet_9blocks CycleGAN generator (3 -> 3, ngf 64, instance norm) has
  // 11,378,179 parameters; what it prints is "11.378 M".
  CHECK(ResnetGenerator(3, 3, 64, Norm::Instance, false, 9, "reflect", &gen).num_parameters() ==
        11378179);
  check_error([&] { g(zeros({1, 1, 30, 32})); }, {"ResnetGenerator", "[1, 1, 30, 32]", "4"});
  check_error([&] { g(zeros({1, 3, 32, 32})); }, {"ResnetGenerator", "[1, 3, 32, 32]", "[N, 1"});
  check_error([&] { ResnetGenerator(1, 1, 8, Norm::Instance, false, 2, "mirror"); },
              {"ResnetBlock", "mirror", "reflect, replicate, zero"});
}

TEST_CASE("UnetGenerator: nested keys, dropout in the innermost ngf*8 blocks, counts, shapes") {
  Generator gen(1);
  UnetGenerator u(1, 2, 5, 4, Norm::Batch, true, &gen);
  const auto k = keys(u);
  // Outermost: down conv without bias (batch norm), up conv with bias and Tanh, no norms.
  CHECK(k.at("model.model.0.weight") == Shape{4, 1, 4, 4});
  CHECK(k.count("model.model.0.bias") == 0);
  CHECK(k.at("model.model.3.weight") == Shape{8, 2, 4, 4});
  CHECK(k.at("model.model.3.bias") == Shape{2});
  // Second block (ngf -> 2 ngf): LeakyReLU, down conv, norm, submodule, ReLU, up conv, norm.
  CHECK(k.at("model.model.1.model.1.weight") == Shape{8, 4, 4, 4});
  CHECK(k.at("model.model.1.model.2.running_mean") == Shape{8});
  CHECK(k.at("model.model.1.model.5.weight") == Shape{16, 4, 4, 4});
  CHECK(k.at("model.model.1.model.6.weight") == Shape{4});
  // Innermost (ngf 8 -> ngf 8 at 1x1): LeakyReLU, down conv, ReLU, up conv, norm.
  const std::string inner = "model.model.1.model.3.model.3.model.3.";
  CHECK(k.at(inner + "model.1.weight") == Shape{32, 32, 4, 4});
  CHECK(k.at(inner + "model.3.weight") == Shape{32, 32, 4, 4});
  CHECK(k.at(inner + "model.4.running_var") == Shape{32});
  CHECK(k.count(inner + "model.2.weight") == 0);
  // num_downs 5 has no middle ngf*8 block, so no dropout at all; num_downs 8 has three.
  for (const auto& [name, m] : u.named_modules()) CHECK(m->type_name() != "Dropout");
  UnetGenerator u8(3, 3, 8, 2, Norm::Batch, true, &gen);
  std::vector<std::string> drops;
  for (const auto& [name, m] : u8.named_modules())
    if (m->type_name() == "Dropout") drops.push_back(name);
  // named_modules lists a block's submodule before its own Dropout: the innermost first.
  CHECK(drops ==
        std::vector<std::string>{"model.model.1.model.3.model.3.model.3.model.3.model.3.model.7",
                                 "model.model.1.model.3.model.3.model.3.model.3.model.7",
                                 "model.model.1.model.3.model.3.model.3.model.7"});

  Tensor x = rand({2, 1, 32, 64}, DType::Float32, Device::cpu(), &gen, -1, 1);
  Tensor y = u(x);
  CHECK(y.shape() == Shape{2, 2, 32, 64});
  CHECK(max(abs(y)).item<double>() < 1.0);
  // Dropout: two training passes differ, two eval passes agree.
  UnetGenerator u6(1, 1, 6, 4, Norm::Batch, true, &gen);
  Tensor x6 = rand({1, 1, 64, 64}, DType::Float32, Device::cpu(), &gen, -1, 1);
  {
    NoGradGuard ng;
    CHECK(max(abs(sub(u6(x6), u6(x6)))).item<double>() > 1e-4);
    u6.eval();
    CHECK(max(abs(sub(u6(x6), u6(x6)))).item<double>() == 0.0);
  }
  // The reference's unet_256 pix2pix generator (3 -> 3, ngf 64, batch norm, dropout): "54.414 M".
  CHECK(UnetGenerator(3, 3, 8, 64, Norm::Batch, true, &gen).num_parameters() == 54413955);
  CHECK(nets::unet_num_downs(32) == 5);
  CHECK(nets::unet_num_downs(256) == 8);
  check_error([] { nets::unet_num_downs(48); }, {"unet_num_downs", "48", "power of two"});
  check_error([&] { u(zeros({1, 1, 48, 32})); }, {"UnetGenerator", "[1, 1, 48, 32]", "32"});
  check_error([] { UnetGenerator(1, 1, 4); }, {"UnetGenerator", "num_downs 4"});
}

TEST_CASE("NLayerDiscriminator: the PatchGAN's keys, counts and patch map sizes") {
  Generator gen(2);
  NLayerDiscriminator d(2, 8, 3, Norm::Batch, &gen);
  const std::map<std::string, Shape> k = keys(d);
  CHECK(k.at("model.0.weight") == Shape{8, 2, 4, 4});
  CHECK(k.at("model.0.bias") == Shape{8});
  CHECK(k.at("model.2.weight") == Shape{16, 8, 4, 4});
  CHECK(k.count("model.2.bias") == 0);
  CHECK(k.at("model.3.running_mean") == Shape{16});
  CHECK(k.at("model.5.weight") == Shape{32, 16, 4, 4});
  CHECK(k.at("model.8.weight") == Shape{64, 32, 4, 4});
  CHECK(k.at("model.11.weight") == Shape{1, 64, 4, 4});
  CHECK(k.at("model.11.bias") == Shape{1});
  CHECK(k.size() == 22);
  CHECK(d(zeros({3, 2, 64, 64})).shape() == Shape{3, 1, 6, 6});
  CHECK(d(zeros({1, 2, 32, 32})).shape() == Shape{1, 1, 2, 2});
  NLayerDiscriminator di(1, 8, 3, Norm::Instance, &gen);
  CHECK(keys(di).at("model.2.bias") == Shape{16});
  CHECK(keys(di).size() == 10);  // five convolutions with biases, no norm state
  // The reference's basic D: 2.765 M (CycleGAN, 3 channels, instance) and 2.769 M (pix2pix,
  // 6 channels, batch norm).
  CHECK(NLayerDiscriminator(3, 64, 3, Norm::Instance, &gen).num_parameters() == 2764737);
  CHECK(NLayerDiscriminator(6, 64, 3, Norm::Batch, &gen).num_parameters() == 2768705);
  check_error(
      [&] {
        d(zeros({1, 2, 16, 16}));
      },
      {"NLayerDiscriminator", "[1, 2, 16, 16]", "too small"});
  check_error([&] { d(zeros({1, 3, 32, 32})); }, {"NLayerDiscriminator", "[N, 2, H, W]"});
}

TEST_CASE("image2image init_weights: conv weights N(0, 0.02), biases 0, batch norm N(1, 0.02)") {
  Generator gen(4);
  UnetGenerator u(3, 3, 6, 16, Norm::Batch, false, &gen);
  const auto sd = u.state_dict();
  const Tensor& w = sd.at("model.model.1.model.3.model.1.weight");  // [128, 64, 4, 4]
  CHECK(std::abs(mean(w).item<double>()) < 1e-3);
  CHECK(std::sqrt(var(w).item<double>()) == doctest::Approx(0.02).epsilon(0.01));
  CHECK(max(abs(sd.at("model.model.3.bias"))).item<double>() == 0.0);
  const Tensor& bw = sd.at("model.model.1.model.2.weight");
  CHECK(mean(bw).item<double>() == doctest::Approx(1.0).epsilon(0.01));
  CHECK(std::sqrt(var(bw).item<double>()) == doctest::Approx(0.02).epsilon(0.35));
  ResnetGenerator g(1, 1, 8, Norm::Instance, false, 1, "reflect", &gen);
  CHECK(max(abs(g.state_dict().at("model.10.conv_block.5.bias"))).item<double>() == 0.0);
  // The same seed gives the same network.
  Generator a(9), b(9);
  check_close(NLayerDiscriminator(1, 4, 3, Norm::Batch, &a).state_dict().at("model.5.weight"),
              NLayerDiscriminator(1, 4, 3, Norm::Batch, &b).state_dict().at("model.5.weight"), 0,
              0);
}

TEST_CASE("image2image rebuild: the network and its arguments from a state dict's keys") {
  Generator gen(5);
  struct Case {
    std::shared_ptr<nn::Module> net;
    std::string padding_type, kind, args;
  };
  std::vector<Case> cases = {
      {std::make_shared<ResnetGenerator>(1, 3, 4, Norm::Instance, false, 3, "reflect", &gen),
       "reflect", "ResnetGenerator",
       "input_nc=1, output_nc=3, ngf=4, norm=instance, use_dropout=false, n_blocks=3, "
       "padding_type=reflect"},
      {std::make_shared<ResnetGenerator>(3, 1, 4, Norm::Batch, true, 2, "zero", &gen), "zero",
       "ResnetGenerator",
       "input_nc=3, output_nc=1, ngf=4, norm=batch, use_dropout=true, n_blocks=2, "
       "padding_type=zero"},
      {std::make_shared<UnetGenerator>(1, 3, 6, 4, Norm::Batch, false, &gen), "reflect",
       "UnetGenerator",
       "input_nc=1, output_nc=3, num_downs=6, ngf=4, norm=batch, use_dropout=false"},
      {std::make_shared<NLayerDiscriminator>(6, 4, 2, Norm::Instance, &gen), "reflect",
       "NLayerDiscriminator", "input_nc=6, ndf=4, n_layers=2, norm=instance"}};
  for (const auto& c : cases) {
    CAPTURE(c.args);
    nets::LoadedNet l = nets::rebuild(c.net->state_dict(), "test", c.padding_type);
    CHECK(l.kind == c.kind);
    CHECK(l.args == c.args);
    CHECK(keys(*l.net) == keys(*c.net));
  }
  nn::StateDict junk = {{"fc.weight", zeros({2, 2})}};
  check_error([&] { nets::rebuild(junk, "junk.safetensors"); },
              {"junk.safetensors", "model.0.weight"});
  // A U-Net missing a key of its innermost block: the strict load names it.
  nn::StateDict broken = cases[2].net->state_dict();
  broken.erase("model.model.1.model.3.model.3.model.3.model.3.model.4.running_var");
  check_error([&] { nets::rebuild(broken, "broken.safetensors"); },
              {"broken.safetensors", "UnetGenerator(", "running_var"});
}

TEST_CASE("image2image nets: each fits one batch") {
  Generator gen(6);
  SUBCASE("ResnetGenerator maps an image to another (L1)") {
    ResnetGenerator g(1, 1, 4, Norm::Instance, false, 1, "reflect", &gen);
    Tensor x = rand({1, 1, 16, 16}, DType::Float32, Device::cpu(), &gen, -1, 1);
    Tensor t = rand({1, 1, 16, 16}, DType::Float32, Device::cpu(), &gen, -0.9, 0.9);
    auto [first, last] = fit(
        g, [&] { return l1_loss(g(x), t); }, 60, 5e-3);
    MESSAGE("ResnetGenerator L1 " << first << " -> " << last);
    CHECK(last < 0.2 * first);
  }
  SUBCASE("UnetGenerator maps two images to two others (L1, batch norm in training mode)") {
    UnetGenerator u(1, 1, 5, 8, Norm::Batch, false, &gen);
    Tensor x = rand({2, 1, 32, 32}, DType::Float32, Device::cpu(), &gen, -1, 1);
    Tensor t = rand({2, 1, 32, 32}, DType::Float32, Device::cpu(), &gen, -0.9, 0.9);
    auto [first, last] = fit(
        u, [&] { return l1_loss(u(x), t); }, 100, 3e-3);
    MESSAGE("UnetGenerator L1 " << first << " -> " << last);
    // Noise targets through a 1x1 bottleneck: a quarter of the initial L1 in 100 steps.
    CHECK(last < 0.25 * first);
  }
  SUBCASE("NLayerDiscriminator separates two real from two fake images (LSGAN)") {
    NLayerDiscriminator d(1, 8, 3, Norm::Instance, &gen);
    Tensor real = rand({2, 1, 32, 32}, DType::Float32, Device::cpu(), &gen, -1, 1);
    Tensor fake = rand({2, 1, 32, 32}, DType::Float32, Device::cpu(), &gen, -1, 1);
    auto loss = [&] {
      Tensor r = d(real), f = d(fake);
      return add(mse_loss(r, ones_like(r)), mse_loss(f, zeros_like(f)));
    };
    auto [first, last] = fit(d, loss, 40, 2e-3);
    MESSAGE("NLayerDiscriminator LSGAN loss " << first << " -> " << last);
    CHECK(last < 0.05);
    CHECK(last < 0.1 * first);
  }
}

#ifdef NABLA_TORCH_PYTHON
TEST_CASE("image2image interop: PyTorch's modules load ours strictly, ours load theirs") {
  TempDir tmp;
  const std::string py =
      std::string(NABLA_TORCH_PYTHON) + " " + NABLA_SOURCE_DIR + "/scripts/torch_image2image.py ";
  Generator gen(7);
  struct Case {
    std::shared_ptr<nn::Module> net;
    std::string init, padding_type;  // torch_image2image.py init arguments for theirs
    Shape input;
  };
  std::vector<Case> cases = {
      {std::make_shared<ResnetGenerator>(1, 1, 8, Norm::Instance, false, 2, "reflect", &gen),
       "--net resnet --ngf 8 --n_blocks 2 --norm instance",
       "reflect",
       {2, 1, 32, 32}},
      {std::make_shared<ResnetGenerator>(3, 3, 4, Norm::Batch, true, 1, "zero", &gen),
       "--net resnet --input_nc 3 --output_nc 3 --ngf 4 --n_blocks 1 --norm batch --use_dropout "
       "--padding_type zero",
       "zero",
       {2, 3, 16, 24}},
      {std::make_shared<UnetGenerator>(1, 1, 6, 4, Norm::Batch, true, &gen),
       "--net unet --ngf 4 --num_downs 6 --norm batch --use_dropout",
       "reflect",
       {2, 1, 64, 64}},
      {std::make_shared<NLayerDiscriminator>(2, 8, 3, Norm::Batch, &gen),
       "--net nlayer --input_nc 2 --ndf 8 --norm batch",
       "reflect",
       {2, 2, 32, 32}},
      {std::make_shared<NLayerDiscriminator>(1, 4, 2, Norm::Instance, &gen),
       "--net nlayer --ndf 4 --n_layers 2 --norm instance",
       "reflect",
       {1, 1, 32, 32}}};
  // Ours, after a few steps so that biases and batch-norm statistics are not their initial
  // values, saved with their inputs; then one python3 process (torch imported once) builds a
  // fresh reference module per case (random biases and statistics), and runs the reference's
  // class on our checkpoint and on its own.
  std::vector<Tensor> xs, ours;
  nlohmann::json jobs = {{"init", nlohmann::json::array()}, {"forward", nlohmann::json::array()}};
  auto split_args = [](const std::string& a) {
    std::vector<std::string> v;
    std::istringstream is(a);
    for (std::string w; is >> w;) v.push_back(w);
    return v;
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    auto& c = cases[i];
    const std::string p = tmp / std::to_string(i);
    Tensor x = rand(c.input, DType::Float32, Device::cpu(), &gen, -1, 1);
    {
      optim::Adam opt(c.net->parameters(), {.lr = 0.01});
      for (int s = 0; s < 2; ++s) {
        Tensor l = mean(mul((*c.net)(x), (*c.net)(x)));
        opt.zero_grad();
        l.backward();
        opt.step();
      }
    }
    c.net->eval();
    io::save_safetensors(p + "ours.safetensors", c.net->state_dict(), {{"format", "pt"}});
    save_npy(p + "x.npy", x);
    {
      NoGradGuard ng;
      ours.push_back((*c.net)(x));
    }
    xs.push_back(x);
    std::vector<std::string> init = {p + "theirs.safetensors"};
    for (const std::string& w : split_args(c.init)) init.push_back(w);
    init.insert(init.end(), {"--seed", "3"});
    jobs["init"].push_back(init);
    jobs["forward"].push_back(std::vector<std::string>{p + "ours.safetensors", p + "x.npy",
                                                       p + "theirs_on_ours.npy", "--padding_type",
                                                       c.padding_type});
    jobs["forward"].push_back(std::vector<std::string>{p + "theirs.safetensors", p + "x.npy",
                                                       p + "theirs_out.npy", "--padding_type",
                                                       c.padding_type});
  }
  std::ofstream(tmp / "jobs.json") << jobs.dump();
  REQUIRE(std::system((py + "batch " + tmp / "jobs.json").c_str()) == 0);
  for (size_t i = 0; i < cases.size(); ++i) {
    auto& c = cases[i];
    CAPTURE(c.init);
    const std::string p = tmp / std::to_string(i);
    // Ours -> PyTorch: the reference's class loaded our state dict strictly, the same outputs.
    check_close(load_npy(p + "theirs_on_ours.npy"), ours[i], 1e-4, 1e-4);
    // PyTorch -> ours: the network rebuilt from their keys, the same outputs.
    nets::LoadedNet l = nets::load_net(p + "theirs.safetensors", c.padding_type,
                                       c.init.find("unet") != std::string::npos);
    CHECK(keys(*l.net) == keys(*c.net));
    l.net->eval();
    NoGradGuard ng;
    Tensor theirs = load_npy(p + "theirs_out.npy");
    check_close((*l.net)(xs[i]), theirs, 1e-4, 1e-4);
    // Two different networks do not agree: the comparison can fail.
    CHECK(max(abs(sub(theirs, ours[i]))).item<double>() > 1e-3);
  }
}
#endif

// ---------------------------------------------------------------- metrics
TEST_CASE("image metrics: L1, PSNR and SSIM by hand and against a direct 2-d window") {
  Tensor x = zeros({2, 1, 12, 12});
  Tensor y = full({2, 1, 12, 12}, 0.1);
  CHECK(metrics::l1_per_image(x, y)[1] == doctest::Approx(0.1));
  // MSE 0.01 at range 2: 10 log10(4 / 0.01).
  CHECK(metrics::psnr(x, y, 2.0)[0] == doctest::Approx(10 * std::log10(400.0)));
  CHECK(std::isinf(metrics::psnr(y, y, 2.0)[0]));
  Tensor a = uniform({2, 3, 16, 13}, -1, 1, 21), b = uniform({2, 3, 16, 13}, -1, 1, 22);
  Tensor noisy = add(a, mul(b, 0.2));
  for (double s : metrics::ssim(a, a, 2.0)) CHECK(s == doctest::Approx(1.0));
  const std::vector<double> s = metrics::ssim(a, noisy, 2.0);
  // The direct formula: an 11x11 Gaussian (sigma 1.5) at every position where it fits.
  const std::vector<double> av = a.to_vector<double>(), bv = noisy.to_vector<double>();
  double g[11][11], gs = 0;
  for (int i = 0; i < 11; ++i)
    for (int j = 0; j < 11; ++j)
      gs += g[i][j] = std::exp(-((i - 5) * (i - 5) + (j - 5) * (j - 5)) / 4.5);
  const double c1 = 0.02 * 0.02, c2 = 0.06 * 0.06;
  for (int n = 0; n < 2; ++n) {
    double total = 0;
    for (int c = 0; c < 3; ++c) {
      double sum = 0;
      int count = 0;
      for (int r = 0; r + 11 <= 16; ++r)
        for (int q = 0; q + 11 <= 13; ++q, ++count) {
          double ma = 0, mb = 0, saa = 0, sbb = 0, sab = 0;
          for (int i = 0; i < 11; ++i)
            for (int j = 0; j < 11; ++j) {
              const size_t k = size_t(((n * 3 + c) * 16 + r + i) * 13 + q + j);
              const double w = g[i][j] / gs;
              ma += w * av[k];
              mb += w * bv[k];
              saa += w * av[k] * av[k];
              sbb += w * bv[k] * bv[k];
              sab += w * av[k] * bv[k];
            }
          sum += (2 * ma * mb + c1) * (2 * (sab - ma * mb) + c2) /
                 ((ma * ma + mb * mb + c1) * (saa - ma * ma + sbb - mb * mb + c2));
        }
      total += sum / count;
    }
    CHECK(s[size_t(n)] == doctest::Approx(total / 3).epsilon(1e-9));
    CHECK(s[size_t(n)] < 0.99);
    CHECK(s[size_t(n)] > 0.5);
  }
  // Against a flat image the contrast-structure term is C2 / (s_a^2 + C2): near 0.
  CHECK(metrics::ssim(a, zeros_like(a), 2.0)[0] < 0.05);
  check_error(
      [&] {
        metrics::ssim(zeros({1, 1, 10, 12}), zeros({1, 1, 10, 12}), 2.0);
      },
      {"ssim", "[1, 1, 10, 12]", "11x11"});
  check_error(
      [&] {
        metrics::psnr(a, zeros({2, 3, 16, 12}), 2.0);
      },
      {"psnr", "[2, 3, 16, 13]", "[2, 3, 16, 12]"});
}

// ---------------------------------------------------------------- data
TEST_CASE("translation data: Sobel edges, the IHC rendering and the paired jitter") {
  // A bright square on black: edges on its border, white (1) inside and outside.
  std::vector<float> sq(16 * 16, 0.f);
  for (int r = 4; r < 12; ++r)
    for (int c = 4; c < 12; ++c) sq[size_t(r * 16 + c)] = 1.f;
  Tensor e = data::sobel_edges(from_vector(sq, {1, 1, 16, 16}));
  const std::vector<float> ev = e.to_vector<float>();
  CHECK(ev[0] == 1.f);                    // far from the square
  CHECK(ev[size_t(8 * 16 + 8)] == 1.f);   // inside it
  CHECK(ev[size_t(8 * 16 + 4)] == -1.f);  // on its left edge: the strongest gradient
  CHECK(data::sobel_edges(zeros({1, 1, 8, 8})).to_vector<float>() == std::vector<float>(64, 1.f));

  // IHC: neoplastic pixels turn brown (blue absorbed more than red), the rest keeps no eosin.
  data::Example t = data::histology_tile(0, data::HistologySplit::Train, 3, 32);
  Tensor ihc = data::ihc_render(t["image"], t["mask"]);
  CHECK(ihc.shape() == Shape{3, 32, 32});
  const std::vector<int64_t> m = t["mask"].to_vector<int64_t>();
  const std::vector<float> v = ihc.to_vector<float>();
  double brown = 0, other = 0;
  int nb = 0, no = 0;
  for (size_t k = 0; k < m.size(); ++k) {
    const double rb = double(v[k]) - double(v[2 * 1024 + k]);  // red minus blue
    if (m[k] == 1)
      brown += rb, ++nb;
    else
      other += rb, ++no;
  }
  if (nb > 0) CHECK(brown / nb > other / no + 0.05);
  CHECK(min_value(ihc) >= 0.0);

  // The jitter: one crop and flip for A and B of a pair.
  Generator gen(3);
  Tensor A = uniform({4, 1, 20, 20}, -1, 1, 5, DType::Float32);
  Tensor B = mul(A, -1.0);
  for (bool flip : {false, true}) {
    auto ab = data::jitter({A, concat({B, B}, 1)}, 24, 16, flip, gen);
    CHECK(ab[0].shape() == Shape{4, 1, 16, 16});
    CHECK(ab[1].shape() == Shape{4, 2, 16, 16});
    check_close(ab[1].narrow(1, 0, 1).contiguous(), mul(ab[0], -1.0), 1e-6, 1e-6);
  }
  // No resize and no room: the identity, or its mirror.
  auto same = data::jitter({A}, 20, 20, false, gen);
  check_close(same[0], A, 0, 0);
  check_error([&] { data::jitter({A}, 16, 20, false, gen); }, {"jitter", "crop_size 20"});
}

TEST_CASE("translation data: the reference's folders, and errors naming the file") {
  TempDir tmp;
  namespace fs = std::filesystem;
  auto png = [&](const std::string& path, int64_t c, int64_t h, int64_t w, uint64_t seed) {
    fs::create_directories(fs::path(path).parent_path());
    io::save_png(path, uniform({c, h, w}, 0, 1, seed, DType::Float32));
  };
  for (int i = 0; i < 3; ++i) png(tmp / ("u/trainA/a" + std::to_string(i) + ".png"), 1, 16, 16, i);
  for (int i = 0; i < 2; ++i)
    png(tmp / ("u/trainB/b" + std::to_string(i) + ".png"), 3, 16, 16, 9 + i);
  data::TranslationSet u = data::translation_folder(tmp / "u", "train", false, 1, 3);
  CHECK(u.A.shape() == Shape{3, 1, 16, 16});
  CHECK(u.B.shape() == Shape{2, 3, 16, 16});
  CHECK_FALSE(u.paired);
  CHECK(u.names_B == std::vector<std::string>{"b0.png", "b1.png"});
  CHECK(min_value(u.A) >= -1.0);
  CHECK(max(u.A).item<double>() <= 1.0);
  // Aligned: A | B side by side, split in the middle; B to gray by luma.
  png(tmp / "p/train/0.png", 3, 16, 32, 30);
  png(tmp / "p/train/1.png", 3, 16, 32, 31);
  data::TranslationSet p = data::translation_folder(tmp / "p", "train", true, 3, 1);
  CHECK(p.paired);
  CHECK(p.A.shape() == Shape{2, 3, 16, 16});
  CHECK(p.B.shape() == Shape{2, 1, 16, 16});
  Tensor whole = data::load_png(tmp / "p/train/0.png", 3);
  check_close(p.A.slice(0, 1).squeeze(0), sub(mul(whole.narrow(2, 0, 16), 2.0), 1.0), 1e-6, 1e-6);

  check_error([&] { data::translation_folder(tmp / "u", "test", false, 1, 1); },
              {"testA", "does not exist"});
  fs::create_directories(tmp / "e/trainA");
  fs::create_directories(tmp / "e/trainB");
  png(tmp / "e/trainB/x.png", 1, 16, 16, 1);
  check_error([&] { data::translation_folder(tmp / "e", "train", false, 1, 1); },
              {"trainA", "holds no image"});
  png(tmp / "e/trainA/1.png", 1, 16, 16, 1);
  png(tmp / "e/trainA/2.png", 1, 12, 16, 2);
  check_error([&] { data::translation_folder(tmp / "e", "train", false, 1, 1); }, {"2.png"});
  fs::remove(tmp / "e/trainA/2.png");
  { std::ofstream(tmp / "e/trainA/3.png") << "not a png"; }
  check_error([&] { data::translation_folder(tmp / "e", "train", false, 1, 1); }, {"3.png"});
  png(tmp / "o/train/0.png", 3, 16, 15, 1);
  check_error([&] { data::translation_folder(tmp / "o", "train", true, 3, 3); }, {"even", "0.png"});
  check_error([] { data::translation_task("horse2zebra", true); },
              {"horse2zebra", "edges2fashion, sneaker2boot or he2ihc"});
}

// ---------------------------------------------------------------- training
TEST_CASE("image2image adversarial terms: the reference's scale (D halved, MSE and BCE as is)") {
  Tensor r = tensor({0.5, 2.0}, {2, 1, 1, 1}), f = tensor({-1.0, 0.25}, {2, 1, 1, 1});
  auto ls = nets::adversarial_terms(gan::Loss::LSGAN, r, f);
  // D: 1/2 [m((r - 1)^2) + m(f^2)] = 1/2 [(0.25 + 1) / 2 + (1 + 0.0625) / 2]; G: m((f - 1)^2).
  CHECK(ls.d.item<double>() == doctest::Approx(0.5 * (0.625 + 0.53125)));
  CHECK(ls.g.item<double>() == doctest::Approx((4 + 0.5625) / 2));
  auto bce = [](double c, double t) {
    const double p = 1 / (1 + std::exp(-c));
    return -(t * std::log(p) + (1 - t) * std::log(1 - p));
  };
  auto ns = nets::adversarial_terms(gan::Loss::NonSaturating, r, f);
  CHECK(ns.d.item<double>() ==
        doctest::Approx(0.5 * ((bce(0.5, 1) + bce(2, 1)) / 2 + (bce(-1, 0) + bce(0.25, 0)) / 2)));
  CHECK(ns.g.item<double>() == doctest::Approx((bce(-1, 1) + bce(0.25, 1)) / 2));
}

TEST_CASE("cyclegan: the G step runs no D weight-gradient kernel, the D step no G kernel") {
  nets::Image2ImageTraining c;
  c.model = "cyclegan";
  c.task = "sneaker2boot";
  c = nets::resolve_defaults(c);
  c.input_nc = c.output_nc = 1;
  c.netG = "resnet_1blocks";
  c.ngf = 4;
  c.ndf = 4;
  Generator init(1);
  nets::CycleGANModel m(c, Device::cpu(), &init);
  Tensor a = uniform({1, 1, 32, 32}, -1, 1, 1, DType::Float32);
  Tensor b = uniform({1, 1, 32, 32}, -1, 1, 2, DType::Float32);
  auto o = m.forward(a, b);
  reset_kernel_counts();
  auto lg = m.step_G(a, b, o, /*update=*/false);
  // Six generator passes (G_A: fake_B, rec_B, identity; G_B: rec_A, fake_A, identity), each with
  // 6 convolutions and 2 transposed ones (resnet_1blocks); 5 more per D pass if D were not frozen.
  CHECK(kernel_count("conv2d_backward_weight") == 6 * 8);
  for (auto* D : {m.D_A.get(), m.D_B.get()})
    for (const Tensor& p : D->parameters()) CHECK_FALSE(p.grad().defined());
  for (const Tensor& p : m.G_A->parameters()) CHECK(p.grad().defined());
  for (const Tensor& p : m.D_A->parameters()) CHECK(p.requires_grad());  // unfrozen again
  CHECK(lg.size() == 6);
  for (const auto& kv : lg) CHECK_MESSAGE(std::isfinite(kv.second), kv.first);
  // Cycle terms are lambda * L1 of images in [-1, 1]: within [0, 20].
  CHECK(lg[2].second > 0);
  CHECK(lg[2].second < 20);
  reset_kernel_counts();
  m.G_A->zero_grad();
  auto ld = m.step_D(a, b, o, /*update=*/false);
  CHECK(kernel_count("conv2d_backward_weight") == 4 * 5);  // D_A, D_B on real and pooled fake
  for (const Tensor& p : m.G_A->parameters()) CHECK_FALSE(p.grad().defined());
  CHECK(m.pool_A.size() == 1);
  CHECK(m.pool_B.size() == 1);
  CHECK(ld[0].first == "d_A");
}

TEST_CASE("cyclegan and pix2pix train on a folder: the schedule, the files, resume") {
  TempDir tmp;
  namespace fs = std::filesystem;
  for (const char* d : {"u/trainA", "u/trainB", "p/train"}) fs::create_directories(tmp / d);
  for (int i = 0; i < 4; ++i) {
    io::save_png(tmp / ("u/trainA/" + std::to_string(i) + ".png"),
                 uniform({1, 16, 16}, 0, 1, i, DType::Float32));
    io::save_png(tmp / ("u/trainB/" + std::to_string(i) + ".png"),
                 uniform({1, 16, 16}, 0, 1, 50 + i, DType::Float32));
    io::save_png(tmp / ("p/train/" + std::to_string(i) + ".png"),
                 uniform({1, 16, 32}, 0, 1, 90 + i, DType::Float32));
  }
  fs::create_directories(tmp / "u/trainA/sub");  // sub-folders are ignored
  nets::Image2ImageTraining c;
  c.dataroot = tmp / "u";
  c.input_nc = c.output_nc = 1;
  c.netG = "resnet_1blocks";
  c.ngf = c.ndf = 4;
  c.n_layers_D = 2;
  c.n_epochs = 1;
  c.n_epochs_decay = 2;
  c.pool_size = 2;
  c.out = tmp / "once";
  nlohmann::json s = nets::train_image2image(c, Device::cpu(), false, false);
  REQUIRE(s["per_epoch"].size() == 3);
  // The rate: lr for n_epochs, then lr (1 - k / (n_epochs_decay + 1)).
  CHECK(s["per_epoch"][0]["lr"].get<double>() == doctest::Approx(2e-4));
  CHECK(s["per_epoch"][1]["lr"].get<double>() == doctest::Approx(2e-4 * 2 / 3));
  CHECK(s["per_epoch"][2]["lr"].get<double>() == doctest::Approx(2e-4 / 3));
  CHECK(s["steps"].get<int>() == 12);
  for (const char* f : {"G_A.safetensors", "G_B.safetensors", "D_A.safetensors", "D_B.safetensors",
                        "metrics.csv", "curves.png", "summary.json", "samples/epoch_003.png"})
    CHECK_MESSAGE(fs::exists(tmp / ("once/" + std::string(f))), f);
  // The saved generator rebuilds as the reference's module with these arguments.
  nets::LoadedNet g = nets::load_net(tmp / "once/G_A.safetensors");
  CHECK(g.args ==
        "input_nc=1, output_nc=1, ngf=4, norm=instance, use_dropout=false, "
        "n_blocks=1, padding_type=reflect");
  // One epoch, then resumed to three: the same bytes as three at once (pools and draws included).
  c.n_epochs_decay = 0;
  c.out = tmp / "twice";
  nets::train_image2image(c, Device::cpu(), false, false);
  c.n_epochs_decay = 2;
  nets::train_image2image(c, Device::cpu(), true, false);
  for (const char* f : {"G_A.safetensors", "G_B.safetensors", "D_A.safetensors", "D_B.safetensors"})
    CHECK_MESSAGE(
        read_file(tmp / ("twice/" + std::string(f))) == read_file(tmp / ("once/" + std::string(f))),
        f);

  // pix2pix on aligned pairs: U-Net with batch norm and dropout, D on cat(A, B).
  nets::Image2ImageTraining p;
  p.model = "pix2pix";
  p.dataroot = tmp / "p";
  p.input_nc = p.output_nc = 1;
  p.ngf = p.ndf = 4;
  p.n_layers_D = 1;
  p.crop_size = 32;  // resized from 16 to 32 (unet_32 needs 32)
  p.n_epochs = 1;
  p.n_epochs_decay = 0;
  p.batch = 2;
  p.out = tmp / "pix";
  nlohmann::json ps = nets::train_image2image(p, Device::cpu(), false, false);
  CHECK(ps["options"]["netG"] == "unet_32");
  CHECK(ps["steps"].get<int>() == 2);
  for (const char* k : {"d", "g_gan", "g_l1"}) CHECK(std::isfinite(ps["last"][k].get<double>()));
  CHECK(nets::load_net(tmp / "pix/D.safetensors").args ==
        "input_nc=2, ndf=4, n_layers=1, norm=batch");
  check_error(
      [&] {
        nets::Image2ImageTraining bad = p;
        bad.task = "sneaker2boot";
        bad.dataroot = "";
        nets::train_image2image(bad, Device::cpu(), false, false);
      },
      {"pix2pix needs paired data", "sneaker2boot"});
}
