// FashionCNN: the Fashion-MNIST classifier, exactly as PyTorch would spell it.
//
//   x [N, 1, 28, 28]
//   conv1 = Conv2d(1, 32, 3, padding=1) -> ReLU -> MaxPool2d(2)     [N, 32, 14, 14]
//   conv2 = Conv2d(32, 64, 3, padding=1) -> ReLU -> MaxPool2d(2)    [N, 64, 7, 7]
//   Flatten -> fc1 = Linear(3136, 128) -> ReLU                      [N, 128]
//   fc2 = Linear(128, 10)                                           logits [N, 10]
//
// Parameter names and layouts are PyTorch's (conv1.weight [32, 1, 3, 3], conv1.bias [32],
// conv2.weight [64, 32, 3, 3], conv2.bias [64], fc1.weight [128, 3136], fc1.bias [128],
// fc2.weight [10, 128], fc2.bias [10]): a torch.nn.Module with attributes conv1, conv2, fc1, fc2
// of those types loads our state_dict with load_state_dict, and we load its.
// Engine API only: the net knows nothing of devices (Module::to moves it).
#pragma once

#include <memory>
#include <string>

#include <nabla/nn/layers.h>

namespace nabla::nets {

class FashionCNN : public nn::Module {
 public:
  static constexpr int64_t kClasses = 10, kChannels = 1, kSize = 28;

  // Weights from gen (the default generator when null), PyTorch's default initialization.
  explicit FashionCNN(Generator* gen = nullptr);
  // requires: x [N, 1, 28, 28]. ensures: logits [N, 10].
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::Linear> fc1, fc2;
};

// FashionGAP: a classifier that ends in global average pooling, the architecture CAM needs
// (Zhou et al.: the class score is a weighted sum of the pooled feature maps).
//
//   features = Sequential(Conv2d(1, 32, 3, padding=1), ReLU, MaxPool2d(2),
//                         Conv2d(32, 64, 3, padding=1), ReLU, MaxPool2d(2),
//                         Conv2d(64, 128, 3, padding=1), ReLU)              [N, 128, 7, 7]
//   global average pooling                                                 [N, 128]
//   fc = Linear(128, 10)                                                   logits [N, 10]
//
// Names as PyTorch spells them: features.0.weight, features.3.weight, features.6.weight, fc.weight.
class FashionGAP : public nn::Module {
 public:
  static constexpr int64_t kClasses = 10, kChannels = 1, kSize = 28, kFeatures = 128;
  explicit FashionGAP(Generator* gen = nullptr);
  // requires: x [N, 1, 28, 28]. ensures: logits [N, 10].
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<nn::Sequential> features;
  std::shared_ptr<nn::Linear> fc;
};

// The Fashion-MNIST classifiers by name: "fashioncnn" or "gap" (else nabla::Error).
std::shared_ptr<nn::Module> make_classifier(const std::string& arch, Generator* gen = nullptr);
// The name of the classifier whose state dict has exactly sd's keys, or "" when none has.
std::string classifier_arch(const nn::StateDict& sd);
// Builds the classifier whose parameter names the checkpoint at `path` holds (classifier_arch),
// loads it and returns it in eval mode on the CPU; *arch gets its name. When no known classifier
// matches, the error names the file and, against FashionCNN, every missing and unexpected key.
std::shared_ptr<nn::Module> load_classifier(const std::string& path, std::string* arch = nullptr);

}  // namespace nabla::nets
