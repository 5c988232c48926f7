// Layers: the torch.nn modules the nets are built from, with PyTorch's names, parameter
// layouts and default initialization, so a state_dict moves between the two unchanged.
//
//   Linear(in, out)                 weight [out, in], bias [out]           y = x W^T + b
//   Conv2d(in, out, k, ...)         weight [out, in/groups, k, k], bias [out]
//   ConvTranspose2d(in, out, k,...) weight [in, out/groups, k, k], bias [out]
//   BatchNorm2d(C)                  weight, bias [C]; buffers running_mean, running_var [C],
//                                   num_batches_tracked (int64, 0-d)
//   InstanceNorm2d(C, affine=false) weight, bias [C] only when affine; no running statistics
//   ReLU, LeakyReLU(slope), Tanh, Sigmoid, MaxPool2d, AvgPool2d, Dropout(p), Flatten, Upsample
//
// Default initialization is PyTorch's: Linear and the convolutions draw weight and bias from
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a = sqrt(5)); norms start at
// weight 1, bias 0, running_mean 0, running_var 1. Draws come from `gen` (the default
// generator when null), so a seed fixes the whole network. Re-initialize with nn/init.h
// (normal(0, 0.02) for DCGAN, kaiming for deep ReLU nets).
#pragma once

#include <memory>

#include <nabla/nn/module.h>
#include <nabla/ops/pool.h>
#include <nabla/random.h>

namespace nabla::nn {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;  // x [..., in] -> [..., out]
  std::string extra_repr() const override;
  Tensor weight, bias;
  int64_t in_features, out_features;
};

class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1,
         int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1, bool bias = true,
         Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;  // [N, in, H, W] -> [N, out, P, Q]
  std::string extra_repr() const override;
  Tensor weight, bias;
  int64_t in_channels, out_channels, kernel_size, stride, padding, dilation, groups;
};

class ConvTranspose2d : public Module {
 public:
  // Argument order as torch.nn.ConvTranspose2d.
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                  int64_t stride = 1, int64_t padding = 0, int64_t output_padding = 0,
                  int64_t groups = 1, bool bias = true, int64_t dilation = 1,
                  Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  Tensor weight, bias;
  int64_t in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, dilation;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1,
                       bool affine = true, bool track_running_stats = true);
  // training: batch statistics, running statistics updated and num_batches_tracked += 1.
  // eval: running statistics (batch statistics when track_running_stats is false).
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  int64_t num_features;
  double eps, momentum;
  bool affine, track_running_stats;
};

class InstanceNorm2d : public Module {
 public:
  explicit InstanceNorm2d(int64_t num_features, double eps = 1e-5, bool affine = false);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  Tensor weight, bias;
  int64_t num_features;
  double eps;
  bool affine;
};

class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& x) override;
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double negative_slope = 0.01)
      : Module("LeakyReLU"), negative_slope(negative_slope) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  double negative_slope;
};

class Tanh : public Module {
 public:
  Tanh() : Module("Tanh") {}
  Tensor forward(const Tensor& x) override;
};

class Sigmoid : public Module {
 public:
  Sigmoid() : Module("Sigmoid") {}
  Tensor forward(const Tensor& x) override;
};

class MaxPool2d : public Module {
 public:
  // stride 0 means stride = kernel_size (PyTorch's default).
  explicit MaxPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  int64_t kernel_size, stride, padding;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  int64_t kernel_size, stride, padding;
};

class Dropout : public Module {
 public:
  // requires: 0 <= p <= 1. Masks come from gen (the default generator when null).
  explicit Dropout(double p = 0.5, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;  // identity in eval mode
  std::string extra_repr() const override;
  double p;
  Generator* gen;
};

class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1)
      : Module("Flatten"), start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& x) override;
  int64_t start_dim, end_dim;
};

class Upsample : public Module {
 public:
  // align_corners: bilinear mode only (torch.nn.Upsample's argument).
  explicit Upsample(int64_t scale_factor, UpsampleMode mode = UpsampleMode::Nearest,
                    bool align_corners = false);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  int64_t scale_factor;
  UpsampleMode mode;
  bool align_corners;
};

// Convenience: std::make_shared for a layer, for building Sequentials.
template <typename M, typename... Args>
std::shared_ptr<M> make(Args&&... args) {
  return std::make_shared<M>(std::forward<Args>(args)...);
}

}  // namespace nabla::nn
