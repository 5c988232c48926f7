// Initializers: fan computation and draws from the engine's generator (see init.h).
#include <nabla/nn/init.h>

#include <cmath>

#include <nabla/autograd.h>
#include <nabla/error.h>

namespace nabla::nn::init {

std::pair<int64_t, int64_t> fans(const Tensor& t) {
  NABLA_CHECK(t.defined() && t.dim() >= 1, "init: fan_in/fan_out need at least 1 dim, got ",
              t.defined() ? t.str() : std::string("an undefined tensor"));
  if (t.dim() == 1) return {t.size(0), t.size(0)};
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

double calculate_gain(const std::string& nl, double param) {
  if (nl == "linear" || nl == "conv2d" || nl == "sigmoid") return 1.0;
  if (nl == "tanh") return 5.0 / 3.0;
  if (nl == "relu") return std::sqrt(2.0);
  if (nl == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  throw Error("init.calculate_gain: unknown nonlinearity '" + nl +
              "' (linear, conv2d, sigmoid, tanh, relu, leaky_relu)");
}

namespace {

void check_float(const Tensor& t, const char* fn) {
  NABLA_CHECK(t.defined() && t.dtype() != DType::Int64, "init.", fn,
              ": expects a defined floating tensor, got ",
              t.defined() ? t.str() : std::string("undefined"));
}

// Writes values into t without history: t may be a leaf that requires grad.
void assign(Tensor& t, const Tensor& values) {
  NoGradGuard ng;
  copy_(t, values);
}

int64_t fan_of(const Tensor& t, FanMode mode) {
  auto [fi, fo] = fans(t);
  const int64_t fan = mode == FanMode::FanIn ? fi : fo;
  NABLA_CHECK(fan > 0, "init: zero fan for ", t.str());
  return fan;
}

}  // namespace

void uniform_(Tensor& t, double lo, double hi, Generator* gen) {
  check_float(t, "uniform_");
  NABLA_CHECK(lo <= hi, "init.uniform_: lo ", lo, " > hi ", hi);
  assign(t, rand(t.shape(), t.dtype(), t.device(), gen, lo, hi));
}

void normal_(Tensor& t, double mean, double std, Generator* gen) {
  check_float(t, "normal_");
  NABLA_CHECK(std >= 0, "init.normal_: std must be >= 0, got ", std);
  assign(t, randn(t.shape(), t.dtype(), t.device(), gen, mean, std));
}

void constant_(Tensor& t, double value) {
  check_float(t, "constant_");
  NoGradGuard ng;
  fill_(t, value);
}
void zeros_(Tensor& t) {
  constant_(t, 0);
}
void ones_(Tensor& t) {
  constant_(t, 1);
}

void kaiming_uniform_(Tensor& t, double a, FanMode mode, const std::string& nl, Generator* gen) {
  check_float(t, "kaiming_uniform_");
  const double bound = calculate_gain(nl, a) * std::sqrt(3.0 / double(fan_of(t, mode)));
  uniform_(t, -bound, bound, gen);
}

void kaiming_normal_(Tensor& t, double a, FanMode mode, const std::string& nl, Generator* gen) {
  check_float(t, "kaiming_normal_");
  normal_(t, 0, calculate_gain(nl, a) / std::sqrt(double(fan_of(t, mode))), gen);
}

void xavier_uniform_(Tensor& t, double gain, Generator* gen) {
  check_float(t, "xavier_uniform_");
  auto [fi, fo] = fans(t);
  const double bound = gain * std::sqrt(6.0 / double(fi + fo));
  uniform_(t, -bound, bound, gen);
}

void xavier_normal_(Tensor& t, double gain, Generator* gen) {
  check_float(t, "xavier_normal_");
  auto [fi, fo] = fans(t);
  normal_(t, 0, gain * std::sqrt(2.0 / double(fi + fo)), gen);
}

}  // namespace nabla::nn::init
