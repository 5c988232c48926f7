// Discriminator losses (see losses.h for the formulas and their sources).
#include <nabla/gan/losses.h>

#include <nabla/error.h>
#include <nabla/ops.h>

namespace nabla::gan {

namespace {

constexpr Loss kAll[] = {Loss::Minimax, Loss::NonSaturating, Loss::LSGAN, Loss::RSGAN,
                         Loss::RaSGAN,  Loss::RaLSGAN,       Loss::Turing};

// BCE(c, t) with a constant target t in {0, 1}, averaged over every element.
Tensor bce(const Tensor& c, double t) {
  return binary_cross_entropy_with_logits(c, full_like(c, t));
}

// mean((c - t)^2) for a constant t.
Tensor mean_sq(const Tensor& c, double t) {
  return mean(pow(sub(c, t), 2.0));
}

}  // namespace

const char* loss_name(Loss l) {
  switch (l) {
    case Loss::Minimax:
      return "minimax";
    case Loss::NonSaturating:
      return "nonsaturating";
    case Loss::LSGAN:
      return "lsgan";
    case Loss::RSGAN:
      return "rsgan";
    case Loss::RaSGAN:
      return "rasgan";
    case Loss::RaLSGAN:
      return "ralsgan";
    case Loss::Turing:
      return "turing";
  }
  return "?";
}

std::vector<std::string> loss_names() {
  std::vector<std::string> out;
  for (Loss l : kAll) out.push_back(loss_name(l));
  return out;
}

Loss loss_from_name(const std::string& name) {
  for (Loss l : kAll)
    if (name == loss_name(l)) return l;
  std::string known;
  for (const std::string& n : loss_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("gan loss '" + name + "': expected one of " + known);
}

Losses gan_losses(Loss l, const Tensor& real_logits, const Tensor& fake_logits) {
  NABLA_CHECK(l != Loss::Turing,
              "gan_losses: the turing loss needs pairs of samples; use turing_pair and "
              "turing_losses");
  NABLA_CHECK(real_logits.defined() && fake_logits.defined() &&
                  real_logits.shape() == fake_logits.shape() && real_logits.numel() >= 1,
              "gan_losses(", loss_name(l), "): real logits ",
              real_logits.defined() ? shape_str(real_logits.shape()) : "undefined",
              " and fake logits ",
              fake_logits.defined() ? shape_str(fake_logits.shape()) : "undefined",
              " must have the same non-empty shape");
  const Tensor& r = real_logits;
  const Tensor& f = fake_logits;
  switch (l) {
    case Loss::Minimax: {
      Tensor fake_term = bce(f, 0);
      return {add(bce(r, 1), fake_term), neg(fake_term)};
    }
    case Loss::NonSaturating:
      return {add(bce(r, 1), bce(f, 0)), bce(f, 1)};
    case Loss::LSGAN:
      return {mul(add(mean_sq(r, 1), mean_sq(f, 0)), 0.5), mul(mean_sq(f, 1), 0.5)};
    case Loss::RSGAN:
      return {bce(sub(r, f), 1), bce(sub(f, r), 1)};
    case Loss::RaSGAN: {
      Tensor dr = sub(r, mean(f)), df = sub(f, mean(r));
      return {mul(add(bce(dr, 1), bce(df, 0)), 0.5), mul(add(bce(dr, 0), bce(df, 1)), 0.5)};
    }
    case Loss::RaLSGAN: {
      Tensor dr = sub(r, mean(f)), df = sub(f, mean(r));
      return {mul(add(mean_sq(dr, 1), mean_sq(df, -1)), 0.5),
              mul(add(mean_sq(dr, -1), mean_sq(df, 1)), 0.5)};
    }
    case Loss::Turing:
      break;
  }
  throw Error("gan_losses: unknown loss");
}

Tensor turing_order(int64_t n, Generator& gen) {
  NABLA_CHECK(n >= 1, "turing_order: n = ", n, " must be >= 1");
  return gt(rand({n}, DType::Float32, Device::cpu(), &gen), 0.5);
}

Tensor turing_pair(const Tensor& real, const Tensor& fake, const Tensor& order) {
  NABLA_CHECK(real.defined() && fake.defined() && order.defined() && real.dim() >= 2 &&
                  real.shape() == fake.shape() && order.dim() == 1 && order.size(0) == real.size(0),
              "turing_pair: real ", real.defined() ? shape_str(real.shape()) : "undefined",
              " and fake ", fake.defined() ? shape_str(fake.shape()) : "undefined",
              " must have the same shape [N, C, ...] and order ",
              order.defined() ? shape_str(order.shape()) : "undefined", " must be [N]");
  Shape bshape(size_t(real.dim()), 1);
  bshape[0] = real.size(0);
  Tensor o = order.to(real.dtype()).to(real.device()).reshape(bshape).expand(real.shape());
  Tensor first = where(o, real, fake), second = where(o, fake, real);
  return concat({first, second}, 1);
}

Losses turing_losses(const Tensor& logits, const Tensor& order) {
  NABLA_CHECK(logits.defined() && order.defined() && order.dim() == 1 &&
                  logits.numel() == order.numel() && order.numel() >= 1,
              "turing_losses: logits ", logits.defined() ? shape_str(logits.shape()) : "undefined",
              " must have one element per sample of order ",
              order.defined() ? shape_str(order.shape()) : "undefined");
  Tensor c = logits.reshape({logits.numel()});
  Tensor t = order.to(c.dtype()).to(c.device());
  return {binary_cross_entropy_with_logits(c, t),
          binary_cross_entropy_with_logits(c, rsub(1.0, t))};
}

}  // namespace nabla::gan
