// TRADES (Zhang, Yu, Jiao, Xing, El Ghaoui, Jordan 2019, "Theoretically principled trade-off
// between robustness and accuracy"): the KL term and its inner maximisation, as a custom
// objective of the PGD attack. The contract is in attack.h.
#include <nabla/attack/attack.h>
#include <nabla/autograd.h>
#include <nabla/ops.h>

namespace nabla::attack {

Tensor trades_kl(const Tensor& clean, const Tensor& adv) {
  NABLA_CHECK(clean.defined() && adv.defined() && clean.dim() == 2 && clean.shape() == adv.shape(),
              "trades_kl: needs clean and adversarial logits [N, K] of the same shape, got ",
              clean.defined() ? clean.str() : std::string("undefined"), " and ",
              adv.defined() ? adv.str() : std::string("undefined"));
  const Tensor lp = log_softmax(clean, 1);
  return sum(mul(exp(lp), sub(lp, log_softmax(adv, 1))), {1});
}

Tensor trades_example(const Model& model, const Tensor& x, const Options& opt) {
  NABLA_CHECK(x.defined() && x.dim() >= 2, "trades_example: x must be a batch [N, ...], got ",
              x.defined() ? x.str() : std::string("undefined"));
  Tensor clean;
  {
    NoGradGuard ng;
    clean = model(x.detach()).detach();
  }
  Options o = opt;
  o.random_start = true;
  o.early_stop = false;
  o.target_mode = TargetMode::None;
  // The "labels" handed to the objective are the clean logits themselves.
  o.objective = Objective::custom(
      [](const Tensor& out, const Tensor& c) { return trades_kl(c, out); },
      [](const Tensor& out, const Tensor&) { return std::vector<bool>(size_t(out.size(0))); }, {},
      "trades-kl");
  return pgd_linf(model, x, clean, o).x_adv;
}

}  // namespace nabla::attack
