// DCGAN's generator and discriminator (see dcgan.h).
#include <nets/dcgan.h>

#include <nabla/error.h>
#include <nabla/nn/init.h>
#include <nabla/ops.h>

namespace nabla::nets {

using nn::make;

DCGANGenerator::DCGANGenerator(int64_t nz_in_, int64_t ngf_, int64_t nc_, Generator* gen)
    : Module("Generator"), nz_in(nz_in_), ngf(ngf_), nc(nc_) {
  NABLA_CHECK(nz_in >= 1 && ngf >= 1 && nc >= 1, "DCGANGenerator: nz_in ", nz_in, ", ngf ", ngf,
              ", nc ", nc, " must be >= 1");
  auto convt = [&](int64_t in, int64_t out, int64_t stride, int64_t pad) {
    return make<nn::ConvTranspose2d>(in, out, 4, stride, pad, 0, 1, /*bias=*/false, 1, gen);
  };
  main = register_module(
      "main", std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
                  convt(nz_in, 4 * ngf, 1, 0), make<nn::BatchNorm2d>(4 * ngf), make<nn::ReLU>(),
                  convt(4 * ngf, 2 * ngf, 2, 1), make<nn::BatchNorm2d>(2 * ngf), make<nn::ReLU>(),
                  convt(2 * ngf, ngf, 2, 1), make<nn::BatchNorm2d>(ngf), make<nn::ReLU>(),
                  convt(ngf, nc, 2, 1), make<nn::Tanh>()}));
  dcgan_init(*this, gen);
}

Tensor DCGANGenerator::forward(const Tensor& z) {
  const bool flat = z.dim() == 2;
  NABLA_CHECK((flat || (z.dim() == 4 && z.size(2) == 1 && z.size(3) == 1)) && z.size(1) == nz_in,
              "DCGANGenerator: z ", shape_str(z.shape()), " must be [N, ", nz_in, ", 1, 1] or [N, ",
              nz_in, "]");
  return (*main)(flat ? z.reshape({z.size(0), nz_in, 1, 1}) : z);
}

DCGANDiscriminator::DCGANDiscriminator(int64_t in_channels_, int64_t ndf_, Generator* gen)
    : Module("Discriminator"), in_channels(in_channels_), ndf(ndf_) {
  NABLA_CHECK(in_channels >= 1 && ndf >= 1, "DCGANDiscriminator: in_channels ", in_channels,
              ", ndf ", ndf, " must be >= 1");
  auto conv = [&](int64_t in, int64_t out, int64_t stride, int64_t pad) {
    return make<nn::Conv2d>(in, out, 4, stride, pad, 1, 1, /*bias=*/false, gen);
  };
  main = register_module(
      "main",
      std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
          conv(in_channels, ndf, 2, 1), make<nn::LeakyReLU>(0.2), conv(ndf, 2 * ndf, 2, 1),
          make<nn::BatchNorm2d>(2 * ndf), make<nn::LeakyReLU>(0.2), conv(2 * ndf, 4 * ndf, 2, 1),
          make<nn::BatchNorm2d>(4 * ndf), make<nn::LeakyReLU>(0.2), conv(4 * ndf, 1, 1, 0)}));
  dcgan_init(*this, gen);
}

Tensor DCGANDiscriminator::forward(const Tensor& x) {
  NABLA_CHECK(x.dim() == 4 && x.size(1) == in_channels && x.size(2) == 32 && x.size(3) == 32,
              "DCGANDiscriminator: x ", shape_str(x.shape()), " must be [N, ", in_channels,
              ", 32, 32]");
  return (*main)(x);
}

void dcgan_init(nn::Module& m, Generator* gen) {
  for (const auto& [name, sub] : m.named_modules()) {
    if (auto* c = dynamic_cast<nn::Conv2d*>(sub.get())) {
      nn::init::normal_(c->weight, 0.0, 0.02, gen);
    } else if (auto* t = dynamic_cast<nn::ConvTranspose2d*>(sub.get())) {
      nn::init::normal_(t->weight, 0.0, 0.02, gen);
    } else if (auto* b = dynamic_cast<nn::BatchNorm2d*>(sub.get())) {
      nn::init::normal_(b->weight, 1.0, 0.02, gen);
      nn::init::zeros_(b->bias);
    }
  }
}

Tensor one_hot(const Tensor& labels, int64_t k, Device dev) {
  NABLA_CHECK(labels.defined() && labels.dtype() == DType::Int64 && labels.dim() == 1 && k >= 1,
              "one_hot: labels ", labels.defined() ? shape_str(labels.shape()) : "undefined",
              " must be int64 [N] and k = ", k, " >= 1");
  std::vector<int64_t> y = labels.to(Device::cpu()).contiguous().to_vector<int64_t>();
  std::vector<float> v(y.size() * size_t(k), 0.f);
  for (size_t n = 0; n < y.size(); ++n) {
    NABLA_CHECK(y[n] >= 0 && y[n] < k, "one_hot: label ", y[n], " at position ", n,
                " is outside [0, ", k, ")");
    v[n * size_t(k) + size_t(y[n])] = 1.f;
  }
  return from_vector(v, {int64_t(y.size()), k}, dev);
}

Tensor condition_latent(const Tensor& z, const Tensor& onehot) {
  NABLA_CHECK(z.dim() == 4 && z.size(2) == 1 && z.size(3) == 1 && onehot.dim() == 2 &&
                  onehot.size(0) == z.size(0),
              "condition_latent: z ", shape_str(z.shape()), " must be [N, nz, 1, 1] and onehot ",
              shape_str(onehot.shape()), " [N, K]");
  return concat({z, onehot.reshape({onehot.size(0), onehot.size(1), 1, 1})}, 1);
}

Tensor condition_image(const Tensor& x, const Tensor& onehot) {
  NABLA_CHECK(x.dim() == 4 && onehot.dim() == 2 && onehot.size(0) == x.size(0),
              "condition_image: x ", shape_str(x.shape()), " must be [N, C, H, W] and onehot ",
              shape_str(onehot.shape()), " [N, K]");
  Tensor planes = onehot.reshape({onehot.size(0), onehot.size(1), 1, 1})
                      .expand({x.size(0), onehot.size(1), x.size(2), x.size(3)})
                      .contiguous();
  return concat({x, planes}, 1);
}

}  // namespace nabla::nets
