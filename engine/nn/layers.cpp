// Layers: construction (PyTorch's default initialization) and forward through the ops.
#include <nabla/nn/layers.h>

#include <cmath>
#include <sstream>

#include <nabla/error.h>
#include <nabla/nn/init.h>
#include <nabla/ops.h>

namespace nabla::nn {

namespace {

// PyTorch's reset_parameters for Linear and the convolutions: kaiming_uniform(a = sqrt(5)) for
// the weight, which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias.
void default_init(Tensor& weight, Tensor* bias, Generator* gen) {
  init::kaiming_uniform_(weight, std::sqrt(5.0), init::FanMode::FanIn, "leaky_relu", gen);
  if (bias && bias->defined()) {
    const double bound = 1.0 / std::sqrt(double(init::fans(weight).first));
    init::uniform_(*bias, -bound, bound, gen);
  }
}

void check_positive(const char* layer, const char* what, int64_t v) {
  NABLA_CHECK(v > 0, layer, ": ", what, " must be positive, got ", v);
}

template <typename... Parts>
std::string cat(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

}  // namespace

Linear::Linear(int64_t in, int64_t out, bool has_bias, Generator* gen)
    : Module("Linear"), in_features(in), out_features(out) {
  check_positive("Linear", "in_features", in);
  check_positive("Linear", "out_features", out);
  weight = empty({out, in});
  if (has_bias) bias = empty({out});
  default_init(weight, &bias, gen);
  register_parameter("weight", &weight);
  if (has_bias) register_parameter("bias", &bias);
}

Tensor Linear::forward(const Tensor& x) {
  NABLA_CHECK(x.dim() >= 1 && x.size(-1) == in_features, "Linear(", in_features, ", ", out_features,
              "): expects input [..., ", in_features, "], got ", shape_str(x.shape()));
  return linear(x, weight, bias);
}

std::string Linear::extra_repr() const {
  return cat("in_features=", in_features, ", out_features=", out_features,
             ", bias=", bias.defined() ? "true" : "false");
}

Conv2d::Conv2d(int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, int64_t d, int64_t g,
               bool has_bias, Generator* gen)
    : Module("Conv2d"),
      in_channels(in),
      out_channels(out),
      kernel_size(k),
      stride(s),
      padding(p),
      dilation(d),
      groups(g) {
  check_positive("Conv2d", "in_channels", in);
  check_positive("Conv2d", "out_channels", out);
  check_positive("Conv2d", "kernel_size", k);
  check_positive("Conv2d", "groups", g);
  NABLA_CHECK(in % g == 0 && out % g == 0, "Conv2d: in_channels ", in, " and out_channels ", out,
              " must be divisible by groups ", g);
  weight = empty({out, in / g, k, k});
  if (has_bias) bias = empty({out});
  default_init(weight, &bias, gen);
  register_parameter("weight", &weight);
  if (has_bias) register_parameter("bias", &bias);
}

Tensor Conv2d::forward(const Tensor& x) {
  NABLA_CHECK(x.dim() == 4 && x.size(1) == in_channels, "Conv2d(", in_channels, ", ", out_channels,
              "): expects input [N, ", in_channels, ", H, W], got ", shape_str(x.shape()));
  return conv2d(x, weight, bias, stride, padding, dilation, groups);
}

std::string Conv2d::extra_repr() const {
  std::string s = cat(in_channels, ", ", out_channels, ", kernel_size=", kernel_size);
  if (stride != 1) s += cat(", stride=", stride);
  if (padding != 0) s += cat(", padding=", padding);
  if (dilation != 1) s += cat(", dilation=", dilation);
  if (groups != 1) s += cat(", groups=", groups);
  if (!bias.defined()) s += ", bias=false";
  return s;
}

ConvTranspose2d::ConvTranspose2d(int64_t in, int64_t out, int64_t k, int64_t s, int64_t p,
                                 int64_t op, int64_t g, bool has_bias, int64_t d, Generator* gen)
    : Module("ConvTranspose2d"),
      in_channels(in),
      out_channels(out),
      kernel_size(k),
      stride(s),
      padding(p),
      output_padding(op),
      groups(g),
      dilation(d) {
  check_positive("ConvTranspose2d", "in_channels", in);
  check_positive("ConvTranspose2d", "out_channels", out);
  check_positive("ConvTranspose2d", "kernel_size", k);
  check_positive("ConvTranspose2d", "groups", g);
  NABLA_CHECK(in % g == 0 && out % g == 0, "ConvTranspose2d: in_channels ", in,
              " and out_channels ", out, " must be divisible by groups ", g);
  weight = empty({in, out / g, k, k});
  if (has_bias) bias = empty({out});
  default_init(weight, &bias, gen);
  register_parameter("weight", &weight);
  if (has_bias) register_parameter("bias", &bias);
}

Tensor ConvTranspose2d::forward(const Tensor& x) {
  NABLA_CHECK(x.dim() == 4 && x.size(1) == in_channels, "ConvTranspose2d(", in_channels, ", ",
              out_channels, "): expects input [N, ", in_channels, ", H, W], got ",
              shape_str(x.shape()));
  return conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation);
}

std::string ConvTranspose2d::extra_repr() const {
  std::string s = cat(in_channels, ", ", out_channels, ", kernel_size=", kernel_size);
  if (stride != 1) s += cat(", stride=", stride);
  if (padding != 0) s += cat(", padding=", padding);
  if (output_padding != 0) s += cat(", output_padding=", output_padding);
  if (groups != 1) s += cat(", groups=", groups);
  if (dilation != 1) s += cat(", dilation=", dilation);
  if (!bias.defined()) s += ", bias=false";
  return s;
}

BatchNorm2d::BatchNorm2d(int64_t c, double eps, double momentum, bool affine, bool track)
    : Module("BatchNorm2d"),
      num_features(c),
      eps(eps),
      momentum(momentum),
      affine(affine),
      track_running_stats(track) {
  check_positive("BatchNorm2d", "num_features", c);
  NABLA_CHECK(eps > 0, "BatchNorm2d: eps must be positive, got ", eps);
  NABLA_CHECK(momentum >= 0 && momentum <= 1, "BatchNorm2d: momentum must be in [0, 1], got ",
              momentum);
  if (affine) {
    weight = ones({c});
    bias = zeros({c});
    register_parameter("weight", &weight);
    register_parameter("bias", &bias);
  }
  if (track) {
    running_mean = zeros({c});
    running_var = ones({c});
    num_batches_tracked = zeros({}, DType::Int64);
    register_buffer("running_mean", &running_mean);
    register_buffer("running_var", &running_var);
    register_buffer("num_batches_tracked", &num_batches_tracked);
  }
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  NABLA_CHECK(x.dim() == 4 && x.size(1) == num_features, "BatchNorm2d(", num_features,
              "): expects input [N, ", num_features, ", H, W], got ", shape_str(x.shape()));
  if (!track_running_stats) return batch_norm2d(x, weight, bias, Tensor(), Tensor(), true, 0, eps);
  if (is_training()) {
    // The running statistics are updated in place by the op; the counter is PyTorch's
    // bookkeeping (kept so that state dicts match).
    if (num_batches_tracked.device().is_cpu()) {
      num_batches_tracked.data<int64_t>()[0] += 1;
    } else {
      const int64_t n = num_batches_tracked.to(Device::cpu()).data<int64_t>()[0];
      copy_(num_batches_tracked, full({}, double(n + 1), DType::Int64));
    }
  }
  return batch_norm2d(x, weight, bias, running_mean, running_var, is_training(), momentum, eps);
}

std::string BatchNorm2d::extra_repr() const {
  return cat(num_features, ", eps=", eps, ", momentum=", momentum,
             ", affine=", affine ? "true" : "false",
             ", track_running_stats=", track_running_stats ? "true" : "false");
}

InstanceNorm2d::InstanceNorm2d(int64_t c, double eps, bool affine)
    : Module("InstanceNorm2d"), num_features(c), eps(eps), affine(affine) {
  check_positive("InstanceNorm2d", "num_features", c);
  NABLA_CHECK(eps > 0, "InstanceNorm2d: eps must be positive, got ", eps);
  if (affine) {
    weight = ones({c});
    bias = zeros({c});
    register_parameter("weight", &weight);
    register_parameter("bias", &bias);
  }
}

Tensor InstanceNorm2d::forward(const Tensor& x) {
  NABLA_CHECK(x.dim() == 4 && x.size(1) == num_features, "InstanceNorm2d(", num_features,
              "): expects input [N, ", num_features, ", H, W], got ", shape_str(x.shape()));
  return instance_norm2d(x, weight, bias, eps);
}

std::string InstanceNorm2d::extra_repr() const {
  return cat(num_features, ", eps=", eps, ", affine=", affine ? "true" : "false");
}

Tensor ReLU::forward(const Tensor& x) {
  return relu(x);
}
Tensor LeakyReLU::forward(const Tensor& x) {
  return leaky_relu(x, negative_slope);
}
std::string LeakyReLU::extra_repr() const {
  return cat("negative_slope=", negative_slope);
}
Tensor Tanh::forward(const Tensor& x) {
  return nabla::tanh(x);
}
Tensor Sigmoid::forward(const Tensor& x) {
  return sigmoid(x);
}

MaxPool2d::MaxPool2d(int64_t k, int64_t s, int64_t p)
    : Module("MaxPool2d"), kernel_size(k), stride(s == 0 ? k : s), padding(p) {
  check_positive("MaxPool2d", "kernel_size", k);
}
Tensor MaxPool2d::forward(const Tensor& x) {
  return max_pool2d(x, kernel_size, stride, padding);
}
std::string MaxPool2d::extra_repr() const {
  return cat("kernel_size=", kernel_size, ", stride=", stride, ", padding=", padding);
}

AvgPool2d::AvgPool2d(int64_t k, int64_t s, int64_t p)
    : Module("AvgPool2d"), kernel_size(k), stride(s == 0 ? k : s), padding(p) {
  check_positive("AvgPool2d", "kernel_size", k);
}
Tensor AvgPool2d::forward(const Tensor& x) {
  return avg_pool2d(x, kernel_size, stride, padding);
}
std::string AvgPool2d::extra_repr() const {
  return cat("kernel_size=", kernel_size, ", stride=", stride, ", padding=", padding);
}

Dropout::Dropout(double p, Generator* gen) : Module("Dropout"), p(p), gen(gen) {
  NABLA_CHECK(p >= 0 && p <= 1, "Dropout: p must be in [0, 1], got ", p);
}
Tensor Dropout::forward(const Tensor& x) {
  return dropout(x, p, is_training(), gen);
}
std::string Dropout::extra_repr() const {
  return cat("p=", p);
}

Tensor Flatten::forward(const Tensor& x) {
  return x.flatten(start_dim, end_dim);
}

Upsample::Upsample(int64_t s, UpsampleMode m, bool ac)
    : Module("Upsample"), scale_factor(s), mode(m), align_corners(ac) {
  check_positive("Upsample", "scale_factor", s);
  NABLA_CHECK(!(ac && m == UpsampleMode::Nearest),
              "Upsample: align_corners applies to bilinear mode only, not nearest");
}
Tensor Upsample::forward(const Tensor& x) {
  return upsample(x, scale_factor, mode, align_corners);
}
std::string Upsample::extra_repr() const {
  return cat("scale_factor=", scale_factor,
             ", mode=", mode == UpsampleMode::Nearest ? "nearest" : "bilinear",
             align_corners ? ", align_corners=True" : "");
}

}  // namespace nabla::nn
