// Parameter initializers, in place and seeded, with PyTorch's formulas (torch.nn.init).
//
//   fan_in  = size(1) * receptive field,  fan_out = size(0) * receptive field
//             (receptive field = product of dims 2..; a 1-d tensor has fan_in = fan_out = size(0))
//   gain(nonlinearity): linear/sigmoid 1, tanh 5/3, relu sqrt(2), leaky_relu sqrt(2 / (1 + a^2))
//   kaiming_uniform  U(-b, b),  b = gain * sqrt(3 / fan)         fan = fan_in or fan_out (mode)
//   kaiming_normal   N(0, std), std = gain / sqrt(fan)
//   xavier_uniform   U(-b, b),  b = gain * sqrt(6 / (fan_in + fan_out))
//   xavier_normal    N(0, std), std = gain * sqrt(2 / (fan_in + fan_out))
//   normal           N(mean, std)   (DCGAN: mean 0, std 0.02)
//
// Every function draws from gen (the default generator when null) and overwrites t's values
// without recording autograd history; t stays whatever leaf it was. The draws are the engine's
// Philox stream, so the same seed gives the same weights on every device (not PyTorch's).
#pragma once

#include <string>

#include <nabla/random.h>
#include <nabla/tensor.h>

namespace nabla::nn::init {

enum class FanMode { FanIn, FanOut };

// requires: t.dim() >= 1. ensures: {fan_in, fan_out} as above.
std::pair<int64_t, int64_t> fans(const Tensor& t);
// requires: nonlinearity one of linear, conv2d, sigmoid, tanh, relu, leaky_relu (param = slope).
double calculate_gain(const std::string& nonlinearity, double param = 0.01);

void uniform_(Tensor& t, double lo, double hi, Generator* gen = nullptr);
void normal_(Tensor& t, double mean = 0, double std = 1, Generator* gen = nullptr);
void constant_(Tensor& t, double value);
void zeros_(Tensor& t);
void ones_(Tensor& t);
// a: the negative slope for leaky_relu (PyTorch's default a = 0 with nonlinearity leaky_relu).
void kaiming_uniform_(Tensor& t, double a = 0, FanMode mode = FanMode::FanIn,
                      const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
void kaiming_normal_(Tensor& t, double a = 0, FanMode mode = FanMode::FanIn,
                     const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
void xavier_uniform_(Tensor& t, double gain = 1, Generator* gen = nullptr);
void xavier_normal_(Tensor& t, double gain = 1, Generator* gen = nullptr);

}  // namespace nabla::nn::init
