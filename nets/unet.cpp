// U-Net (see unet.h).
#include <nets/unet.h>

#include <nabla/error.h>
#include <nabla/io/safetensors.h>
#include <nabla/ops.h>

namespace nabla::nets {

namespace {

using nn::make;

std::shared_ptr<nn::Module> up_layer(int64_t in, bool bilinear, Generator* gen) {
  if (bilinear) return make<nn::Upsample>(2, UpsampleMode::Bilinear, /*align_corners=*/true);
  return make<nn::ConvTranspose2d>(in, in / 2, 2, 2, 0, 0, 1, true, 1, gen);
}

}  // namespace

DoubleConv::DoubleConv(int64_t in, int64_t out, int64_t mid, Generator* gen)
    : nn::Module("DoubleConv") {
  if (mid == 0) mid = out;
  double_conv = register_module(
      "double_conv",
      std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
          make<nn::Conv2d>(in, mid, 3, 1, 1, 1, 1, /*bias=*/false, gen), make<nn::BatchNorm2d>(mid),
          make<nn::ReLU>(), make<nn::Conv2d>(mid, out, 3, 1, 1, 1, 1, /*bias=*/false, gen),
          make<nn::BatchNorm2d>(out), make<nn::ReLU>()}));
}

Tensor DoubleConv::forward(const Tensor& x) {
  return (*double_conv)(x);
}

Down::Down(int64_t in, int64_t out, Generator* gen) : nn::Module("Down") {
  maxpool_conv = register_module(
      "maxpool_conv", std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
                          make<nn::MaxPool2d>(2), std::make_shared<DoubleConv>(in, out, 0, gen)}));
}

Tensor Down::forward(const Tensor& x) {
  return (*maxpool_conv)(x);
}

Up::Up(int64_t in, int64_t out, bool bilinear, Generator* gen) : nn::Module("Up") {
  up = register_module("up", up_layer(in, bilinear, gen));
  conv = register_module("conv", std::make_shared<DoubleConv>(in, out, bilinear ? in / 2 : 0, gen));
}

Tensor Up::forward(const Tensor& x1, const Tensor& x2) {
  Tensor u = (*up)(x1);
  NABLA_CHECK(x2.dim() == 4 && u.size(0) == x2.size(0) && x2.size(2) >= u.size(2) &&
                  x2.size(3) >= u.size(3),
              "Up: the skip connection ", shape_str(x2.shape()),
              " is smaller than the upsampled input ", shape_str(u.shape()));
  const int64_t dy = x2.size(2) - u.size(2), dx = x2.size(3) - u.size(3);
  if (dy != 0 || dx != 0) u = pad(u, {dx / 2, dx - dx / 2, dy / 2, dy - dy / 2});
  return (*conv)(concat({x2, u}, 1));
}

OutConv::OutConv(int64_t in, int64_t out, Generator* gen) : nn::Module("OutConv") {
  conv = register_module("conv", make<nn::Conv2d>(in, out, 1, 1, 0, 1, 1, true, gen));
}

Tensor OutConv::forward(const Tensor& x) {
  return (*conv)(x);
}

UNet::UNet(UNetConfig c, Generator* gen) : nn::Module("UNet"), c_(c) {
  NABLA_CHECK(c.in_channels >= 1 && c.classes >= 1, "UNet: in_channels ", c.in_channels,
              " and classes ", c.classes, " must be >= 1");
  NABLA_CHECK(c.base >= 2 && (!c.bilinear || c.base % 2 == 0), "UNet: base ", c.base,
              " must be >= 2", c.bilinear ? " and even with bilinear upsampling" : "");
  const int64_t b = c.base, f = c.bilinear ? 2 : 1;
  inc = register_module("inc", std::make_shared<DoubleConv>(c.in_channels, b, 0, gen));
  down1 = register_module("down1", std::make_shared<Down>(b, 2 * b, gen));
  down2 = register_module("down2", std::make_shared<Down>(2 * b, 4 * b, gen));
  down3 = register_module("down3", std::make_shared<Down>(4 * b, 8 * b, gen));
  down4 = register_module("down4", std::make_shared<Down>(8 * b, 16 * b / f, gen));
  up1 = register_module("up1", std::make_shared<Up>(16 * b, 8 * b / f, c.bilinear, gen));
  up2 = register_module("up2", std::make_shared<Up>(8 * b, 4 * b / f, c.bilinear, gen));
  up3 = register_module("up3", std::make_shared<Up>(4 * b, 2 * b / f, c.bilinear, gen));
  up4 = register_module("up4", std::make_shared<Up>(2 * b, b, c.bilinear, gen));
  outc = register_module("outc", std::make_shared<OutConv>(b, c.classes, gen));
}

Tensor UNet::forward(const Tensor& x) {
  NABLA_CHECK(x.dim() == 4 && x.size(1) == c_.in_channels && x.size(2) >= 16 && x.size(3) >= 16,
              "UNet: expects images [N, ", c_.in_channels, ", H, W] with H, W >= 16, got ",
              shape_str(x.shape()));
  const Tensor x1 = (*inc)(x);
  const Tensor x2 = (*down1)(x1);
  const Tensor x3 = (*down2)(x2);
  const Tensor x4 = (*down3)(x3);
  const Tensor x5 = (*down4)(x4);
  Tensor y = up1->forward(x5, x4);
  y = up2->forward(y, x3);
  y = up3->forward(y, x2);
  y = up4->forward(y, x1);
  return (*outc)(y);
}

std::string UNet::extra_repr() const {
  return detail::concat("n_channels=", c_.in_channels, ", n_classes=", c_.classes,
                        ", base=", c_.base, ", bilinear=", c_.bilinear ? "True" : "False");
}

UNetConfig unet_config_of(const nn::StateDict& sd, const std::string& what) {
  const auto in = sd.find("inc.double_conv.0.weight");
  const auto out = sd.find("outc.conv.weight");
  NABLA_CHECK(in != sd.end() && out != sd.end() && in->second.dim() == 4 && out->second.dim() == 4,
              what,
              " does not hold a UNet state dict: it needs inc.double_conv.0.weight and "
              "outc.conv.weight (4-d)");
  UNetConfig c;
  c.base = in->second.size(0);
  c.in_channels = in->second.size(1);
  c.classes = out->second.size(0);
  c.bilinear = sd.find("up1.up.weight") == sd.end();
  return c;
}

std::shared_ptr<UNet> load_unet(const std::string& path) {
  io::SafetensorsFile file = io::load_safetensors(path);
  const UNetConfig c = unet_config_of(file.tensors, path);
  std::shared_ptr<UNet> net;
  try {
    Generator gen(0);
    net = std::make_shared<UNet>(c, &gen);
    net->load_state_dict(file.tensors);
  } catch (const Error& e) {
    throw Error(path + " does not hold a UNet(n_channels=" + std::to_string(c.in_channels) +
                ", n_classes=" + std::to_string(c.classes) + ", base=" + std::to_string(c.base) +
                (c.bilinear ? ", bilinear" : "") + ") state dict: " + e.what());
  }
  net->eval();
  return net;
}

}  // namespace nabla::nets
