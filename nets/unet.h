// U-Net (Ronneberger, Fischer & Brox, 2015) with the module structure and parameter names of
// milesial/Pytorch-UNet's UNet(n_channels, n_classes, bilinear), its widths 64..1024 scaled to
// base * (1, 2, 4, 8, 16).
//
//   DoubleConv(in, out, mid = out)   double_conv = Sequential(Conv2d(in, mid, 3, padding=1,
//                                    bias=False), BatchNorm2d(mid), ReLU, Conv2d(mid, out, 3,
//                                    padding=1, bias=False), BatchNorm2d(out), ReLU)
//   Down(in, out)                    maxpool_conv = Sequential(MaxPool2d(2), DoubleConv(in, out))
//   Up(in, out, bilinear)            bilinear: up = Upsample(2, bilinear, align_corners=True),
//                                      conv = DoubleConv(in, out, in / 2)
//                                    else:     up = ConvTranspose2d(in, in / 2, 2, stride=2),
//                                      conv = DoubleConv(in, out)
//                                    forward(x1, x2): x1 = up(x1), zero-padded to x2's size
//                                    (left/top get diff / 2, right/bottom the rest), then
//                                    conv(cat([x2, x1], dim 1))
//   OutConv(in, out)                 conv = Conv2d(in, out, 1)
//
//   UNet, b = base, f = 2 when bilinear else 1:
//     inc = DoubleConv(C, b)           x1 [N, b, H, W]
//     down1 = Down(b, 2b)              x2 [N, 2b, H/2, W/2]        (floor at every halving)
//     down2 = Down(2b, 4b)             x3
//     down3 = Down(4b, 8b)             x4
//     down4 = Down(8b, 16b / f)        x5 [N, 16b/f, H/16, W/16]
//     up1 = Up(16b, 8b / f)(x5, x4), up2 = Up(8b, 4b / f)(., x3), up3 = Up(4b, 2b / f)(., x2),
//     up4 = Up(2b, b)(., x1)           [N, b, H, W]
//     outc = OutConv(b, K)             logits [N, K, H, W]
//
// State-dict keys are PyTorch's: inc.double_conv.0.weight, inc.double_conv.1.running_mean,
// down1.maxpool_conv.1.double_conv.3.weight, up1.up.weight (not with bilinear), up4.conv.
// double_conv.4.bias, outc.conv.weight, ... so that the reference class with the same widths loads
// our checkpoints with load_state_dict(strict=True), and we load its. H and W need not be
// multiples of 16 (at least 16 each): Up pads, as the original does.
// Engine API only: the net knows nothing of devices (Module::to moves it).
#pragma once

#include <memory>
#include <string>

#include <nabla/nn/layers.h>

namespace nabla::nets {

class DoubleConv : public nn::Module {
 public:
  // requires: in, out >= 1; mid >= 1 or 0 (meaning out).
  DoubleConv(int64_t in, int64_t out, int64_t mid = 0, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<nn::Sequential> double_conv;
};

class Down : public nn::Module {
 public:
  Down(int64_t in, int64_t out, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<nn::Sequential> maxpool_conv;
};

class Up : public nn::Module {
 public:
  Up(int64_t in, int64_t out, bool bilinear, Generator* gen = nullptr);
  // requires: x1 [N, in/2, h, w] (in with bilinear), x2 [N, in/2, H, W] with H >= 2h, W >= 2w.
  // ensures: conv(cat([x2, pad(up(x1))], 1)) [N, out, H, W]. Errors name both shapes.
  Tensor forward(const Tensor& x1, const Tensor& x2);
  using nn::Module::forward;       // the one-input form stays visible (it throws: Up takes two)
  std::shared_ptr<nn::Module> up;  // ConvTranspose2d, or Upsample with bilinear
  std::shared_ptr<DoubleConv> conv;
};

class OutConv : public nn::Module {
 public:
  OutConv(int64_t in, int64_t out, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<nn::Conv2d> conv;
};

struct UNetConfig {
  int64_t in_channels = 3;  // n_channels
  int64_t classes = 6;      // n_classes
  int64_t base = 16;        // width of the first level (the original: 64)
  bool bilinear = false;    // the original's default
};

class UNet : public nn::Module {
 public:
  // requires: in_channels, classes >= 1; base >= 2 and even when bilinear (nabla::Error naming
  //   the value otherwise).
  // ensures: PyTorch's default initialization, drawn from gen (the default generator when null).
  explicit UNet(UNetConfig c = {}, Generator* gen = nullptr);
  // requires: x [N, in_channels, H, W] with H, W >= 16 (nabla::Error naming the shape otherwise).
  // ensures: logits [N, classes, H, W].
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  const UNetConfig& config() const { return c_; }

  std::shared_ptr<DoubleConv> inc;
  std::shared_ptr<Down> down1, down2, down3, down4;
  std::shared_ptr<Up> up1, up2, up3, up4;
  std::shared_ptr<OutConv> outc;

 private:
  UNetConfig c_;
};

// ensures: the configuration whose UNet has exactly sd's keys and shapes: in_channels and base
//   from inc.double_conv.0.weight, classes from outc.conv.weight, bilinear when up1.up.weight is
//   absent. Throws nabla::Error naming `what` (a file) when sd is not a UNet state dict.
UNetConfig unet_config_of(const nn::StateDict& sd, const std::string& what = "state dict");
// ensures: the UNet stored at path (ours, or a PyTorch state_dict saved as safetensors), in eval
//   mode on the CPU. Errors name the file and, for a mismatch, the keys and shapes.
std::shared_ptr<UNet> load_unet(const std::string& path);

}  // namespace nabla::nets
