// SaliencyDetector: a small binary classifier that tells clean images from adversarial ones,
// given the image and the attacked classifier's saliency map stacked as channels (Zhang et al.
// 2018, "Detecting Adversarial Perturbations with Saliency"). With one input channel it is the
// image-only baseline, which shows what the saliency channel adds.
//
//   x [N, C, 28, 28]                      C = 2: [image, k |dS_c/dx|]; C = 1: image only
//   conv1 = Conv2d(C, 16, 3, padding=1) -> ReLU -> MaxPool2d(2)      [N, 16, 14, 14]
//   conv2 = Conv2d(16, 32, 3, padding=1) -> ReLU -> MaxPool2d(2)     [N, 32, 7, 7]
//   Flatten -> fc1 = Linear(1568, 64) -> ReLU                        [N, 64]
//   fc2 = Linear(64, 2)                                              logits [N, 2]: 0 clean,
//                                                                    1 adversarial
//
// Parameter names and layouts are PyTorch's (conv1.weight [16, C, 3, 3], conv1.bias [16],
// conv2.weight [32, 16, 3, 3], conv2.bias [32], fc1.weight [64, 1568], fc1.bias [64],
// fc2.weight [2, 64], fc2.bias [2]), as for FashionCNN in classifier.h.
// Engine API only: the net knows nothing of devices (Module::to moves it).
#pragma once

#include <memory>

#include <nabla/nn/layers.h>

namespace nabla::nets {

class SaliencyDetector : public nn::Module {
 public:
  static constexpr int64_t kClasses = 2, kSize = 28;

  // requires: in_channels >= 1 (2: image + saliency, 1: image only).
  // ensures:  weights from gen (the default generator when null), PyTorch's default init.
  explicit SaliencyDetector(int64_t in_channels = 2, Generator* gen = nullptr);
  // requires: x [N, in_channels, 28, 28]. ensures: logits [N, 2].
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  int64_t in_channels() const { return in_channels_; }

  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::Linear> fc1, fc2;

 private:
  int64_t in_channels_;
};

}  // namespace nabla::nets
